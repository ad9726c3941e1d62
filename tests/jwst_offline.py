"""Run jwst 3.0's Detector1Pipeline offline on calops' exposures (a helper other tests import).

How (FIELD-NOTES.md, "Running jwst's own pipelines offline"): no CRDS server and no CRDS cache;
every reference is given to the pipeline as an override, written here with stdatamodels' own
reference models (not with calops' writer, so a calops writing bug cannot hide); steps whose
references a mode does not have get "N/A"; the MIRI-only steps (emicorr, rscd, reset,
firstframe, lastframe) are skipped for the near-IR, because the pipeline prefetches the
references of every step it does not skip. jwst runs in a child process (its environment:
``CRDS_MODE=local``, a "serverless" server URL, an empty cache with a ``server_config``, no
step-parameter references), so its 2.7 GB for a full frame and its logging stay out of the
caller; the child writes ``_rate``/``_rateints`` (and ``_ramp`` on request) and the parent
reads them back with astropy.

    from jwst_offline import detector1   # tests/ on sys.path
    out = detector1(uncal, refs, tmp_path)        # uncal: calops DataModel, refs: reftype -> model
    out["rate"]["data"], out["rate"]["dq"], out["rateints"]["data"], out["ramp"]["groupdq"]

``write_references``, ``write_uncal`` and ``run_detector1`` are the pieces. Nothing here is
imported by calops itself (jwst is test-only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# The Detector1Pipeline steps that only MIRI runs: skipped for the near-IR detectors.
MIRI_ONLY = ("emicorr", "rscd", "reset", "firstframe", "lastframe")
# reftype -> (stdatamodels class, arrays it holds)
REF_MODELS = {
    "mask": ("MaskModel", ("dq",)),
    "saturation": ("SaturationModel", ("data", "dq")),
    "superbias": ("SuperBiasModel", ("data", "err", "dq")),
    "linearity": ("LinearityModel", ("coeffs", "dq")),
    "dark": ("DarkModel", ("data", "dq", "err")),
    "gain": ("GainModel", ("data",)),
    "readnoise": ("ReadnoiseModel", ("data",)),
    "ipc": ("IPCModel", ("data",)),
}
_META = {  # calops meta key -> stdatamodels attribute path
    "instrument.name": "instrument.name", "instrument.detector": "instrument.detector",
    "instrument.channel": "instrument.channel", "instrument.module": "instrument.module",
    "subarray.name": "subarray.name", "subarray.xstart": "subarray.xstart",
    "subarray.ystart": "subarray.ystart", "subarray.xsize": "subarray.xsize",
    "subarray.ysize": "subarray.ysize", "exposure.nframes": "exposure.nframes",
    "exposure.groupgap": "exposure.groupgap", "exposure.ngroups": "exposure.ngroups",
    "exposure.type": "exposure.type", "exposure.readpatt": "exposure.readpatt",
}


def _set(model: Any, path: str, value: Any) -> None:
    node = model.meta
    parts = path.split(".")
    for p in parts[:-1]:
        node = getattr(node, p)
    setattr(node, parts[-1], value)


def write_references(refs: Mapping[str, Any], outdir: str | os.PathLike) -> dict[str, str]:
    """Each calops ``ref.<reftype>`` model written as the stdatamodels reference model JWST
    reads; returns reftype -> path. Reftypes jwst's Detector1Pipeline does not read are left
    out (flat, photom...)."""
    from stdatamodels.jwst import datamodels as dm

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for reftype, ref in refs.items():
        if reftype not in REF_MODELS:
            continue
        cls, names = REF_MODELS[reftype]
        arrays = {n: np.asarray(ref.arrays[n]) for n in names if n in ref.arrays}
        if reftype == "dark" and arrays.get("dq") is not None and arrays["dq"].ndim == 2:
            arrays["dq"] = arrays["dq"].astype(np.uint32)
        model = getattr(dm, cls)(**arrays)
        meta = ref.meta
        model.meta.telescope = "JWST"
        model.meta.reftype = reftype.upper()
        model.meta.useafter = str(meta.get("useafter", "2022-01-01T00:00:00"))
        model.meta.pedigree = "GROUND"
        model.meta.description = str(meta.get("description", f"calops {reftype}"))
        model.meta.author = "calops tests/jwst_offline.py"
        for key, path in _META.items():
            if meta.get(key) is not None:
                _set(model, path, meta[key])
        if reftype == "dark":
            _set(model, "exposure.ngroups", int(np.asarray(ref.arrays["data"]).shape[-3]))
        p = out / f"calops_{reftype}.fits"
        model.save(p)
        model.close()
        paths[reftype] = str(p)
    return paths


def write_uncal(uncal: Any, path: str | os.PathLike) -> str:
    """The uncal as the SDP writes it (calops' writer; it validates in stdatamodels, tested)."""
    from store.fits import write_uncal as _write

    return str(_write(uncal, path))


def crds_environment(root: str | os.PathLike) -> dict[str, str]:
    """Environment for a child process running jwst with no CRDS server and no cache."""
    root = Path(root)
    cfg = root / "config" / "jwst"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "server_config").write_text(repr({
        "observatory": "jwst", "operational_context": "jwst_0000.pmap",
        "edit_context": "jwst_0000.pmap", "bad_files_list": [], "force_remote_mode": False,
        "last_synced": "calops-tests", "mappings": [],
        "crds_version": {"str": "calops-tests"}}) + "\n")
    env = dict(os.environ)
    env.update({"CRDS_PATH": str(root), "CRDS_MODE": "local", "CRDS_OBSERVATORY": "jwst",
                "CRDS_SERVER_URL": "https://localhost:9/jwst-serverless-mode",
                "CRDS_CONTEXT": "jwst_0000.pmap", "CRDS_READONLY_CACHE": "1",
                "STPIPE_DISABLE_CRDS_STEPPARS": "True", "DO_NOT_TRACK": "1"})
    return env


def run_detector1(uncal_path: str, ref_paths: Mapping[str, str], outdir: str | os.PathLike, *,
                  skip: Sequence[str] = (), params: Mapping[str, Mapping[str, Any]] | None = None,
                  save_ramp: bool = False, timeout: float = 900.0) -> dict[str, dict[str, np.ndarray]]:
    """Run Detector1Pipeline on ``uncal_path`` in a child process; returns {"rate": {...},
    "rateints": {...}[, "ramp": {...}]} with each product's arrays (data, dq, err, var_*;
    the ramp's data, groupdq, pixeldq). ``skip``: more steps to skip; ``params``: step ->
    {parameter: value}."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    job = {"uncal": str(uncal_path), "refs": dict(ref_paths), "out": str(out),
           "skip": list(skip), "params": {k: dict(v) for k, v in (params or {}).items()},
           "save_ramp": bool(save_ramp)}
    env = crds_environment(out / "crds")
    here = str(Path(__file__).resolve().parent)
    root = str(Path(here).parent)
    env["PYTHONPATH"] = os.pathsep.join([root, here, env.get("PYTHONPATH", "")])
    code = "import sys, json, jwst_offline; jwst_offline._child(json.loads(sys.argv[1]))"
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(job)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"jwst Detector1Pipeline failed:\n{proc.stderr[-4000:]}")
    stem = Path(uncal_path).name.replace("_uncal.fits", "")
    result = {"rate": _read(out / f"{stem}_rate.fits"),
              "rateints": _read(out / f"{stem}_rateints.fits")}
    if save_ramp:
        result["ramp"] = _read(out / f"{stem}_ramp.fits")
    result["log"] = {"stderr": proc.stderr}
    return result


def _read(path: Path) -> dict[str, Any]:
    from astropy.io import fits

    out: dict[str, Any] = {}
    with fits.open(path) as hdul:
        for hdu in hdul[1:]:
            if hdu.data is not None and hdu.is_image:
                out[hdu.name.lower().replace("sci", "data")] = np.array(hdu.data)
        out["header"] = dict(hdul[0].header)
    return out


def _child(job: Mapping[str, Any]) -> None:
    """In the child: configure and run the pipeline (environment already set)."""
    import logging

    from jwst.pipeline import Detector1Pipeline

    logging.getLogger("stpipe").setLevel(logging.WARNING)
    logging.getLogger("jwst").setLevel(logging.WARNING)
    pipe = Detector1Pipeline()
    refs = job["refs"]
    from stdatamodels.jwst import datamodels as dm

    with dm.open(job["uncal"]) as m:
        inst = m.meta.instrument.name
    skip = set(job["skip"]) | (set() if inst == "MIRI" else set(MIRI_ONLY))
    for name in pipe.step_defs:
        step = getattr(pipe, name)
        if name in skip:
            step.skip = True
        for key, value in job["params"].get(name, {}).items():
            setattr(step, key, value)
        for rt in step.reference_file_types:
            setattr(step, f"override_{rt}", refs.get(rt, "N/A"))
    pipe.save_results = True
    pipe.output_dir = job["out"]
    pipe.save_calibrated_ramp = bool(job["save_ramp"])
    pipe.run(job["uncal"])


def detector1(uncal: Any, refs: Mapping[str, Any], workdir: str | os.PathLike,
              **kw: Any) -> dict[str, dict[str, np.ndarray]]:
    """Write ``uncal`` and ``refs`` (calops models) under ``workdir`` and run jwst on them."""
    work = Path(workdir)
    name = str(uncal.meta.get("filename") or "jw01234001001_01101_00001_nrca1_uncal.fits")
    path = write_uncal(uncal, work / name)
    paths = write_references(refs, work / "refs")
    return run_detector1(path, paths, work / "jwst", **kw)
