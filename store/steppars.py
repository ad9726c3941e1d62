"""Step parameter files as jwst writes them (stpipe's ASDF step configuration), in and out.

jwst keeps a step's parameters in an ASDF tree ``{class, name, parameters, [steps], [meta]}``:
``class`` is the step's Python class (``jwst.jump.jump_step.JumpStep``), ``name`` its alias,
``parameters`` a mapping of values, ``steps`` (pipelines only) a list of the same trees for
each of its steps, and ``meta`` the reference-file header when the file is a CRDS ``pars-*``
reference (``meta.reftype = "pars-jumpstep"``, instrument, useafter...). ``strun --config``
takes the same files. This module reads and writes that layout with plain ``asdf`` (stpipe is
a test-only dependency): ``read_step_pars(path) -> StepPars`` and ``write_step_pars(...)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.errors import CalopsError


class BadStepPars(CalopsError, ValueError):
    """A file that is not a step parameter file (the message names the file)."""


@dataclass(frozen=True)
class StepPars:
    """One step's (or pipeline's) parameters, and its steps' for a pipeline."""

    class_name: str
    name: str
    parameters: Mapping[str, Any]
    steps: Mapping[str, "StepPars"] = field(default_factory=dict)  # by step name (alias)
    meta: Mapping[str, Any] = field(default_factory=dict)


def _plain(v: Any) -> Any:
    """ASDF/numpy scalars and sequences as plain Python values."""
    import numpy as np

    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _from_tree(tree: Mapping[str, Any], where: str) -> StepPars:
    if not isinstance(tree, Mapping) or "parameters" not in tree:
        raise BadStepPars(f"{where}: not a step parameter file (an ASDF tree with 'class', "
                          "'name' and 'parameters', as jwst writes with --save-parameters)")
    params = tree.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise BadStepPars(f"{where}: 'parameters' must be a mapping, not {type(params).__name__}")
    steps = {}
    for s in tree.get("steps") or []:
        sp = _from_tree(s, where)
        steps[sp.name] = sp
    return StepPars(str(tree.get("class") or ""), str(tree.get("name") or ""),
                    _plain(dict(params)), steps, _plain(dict(tree.get("meta") or {})))


def read_step_pars(path: str | os.PathLike) -> StepPars:
    """A jwst step parameter file (ASDF) as StepPars."""
    import asdf

    where = os.fspath(path)
    if not os.path.isfile(where):
        raise BadStepPars(f"{where}: no such file")
    try:
        with asdf.open(where, lazy_load=False, memmap=False) as af:
            tree = {k: af.tree[k] for k in ("class", "name", "parameters", "steps", "meta")
                    if k in af.tree}
            return _from_tree(_plain(tree), where)
    except BadStepPars:
        raise
    except Exception as exc:  # asdf raises many kinds for a file that is not ASDF
        raise BadStepPars(f"{where}: not a readable ASDF step parameter file ({exc})") from None


def _to_tree(p: StepPars) -> dict[str, Any]:
    tree: dict[str, Any] = {"class": p.class_name, "name": p.name,
                            "parameters": dict(p.parameters)}
    if p.steps:
        tree["steps"] = [_to_tree(s) for s in p.steps.values()]
    return tree


def write_step_pars(pars: StepPars, path: str | os.PathLike) -> Path:
    """Write ``pars`` as jwst does (with its ``meta`` when it is a CRDS pars-* reference)."""
    import asdf

    tree = _to_tree(pars)
    if pars.meta:
        tree["meta"] = dict(pars.meta)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        asdf.AsdfFile(tree).write_to(tmp)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p
