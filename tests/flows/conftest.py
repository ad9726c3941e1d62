"""Shared fixtures for flow and runner tests: one small simulated program, real workspaces."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from flows import prefect_env

prefect_env.configure()


@pytest.fixture(scope="session")
def sim_program():
    """Three small exposures: a NIRCam dither pair and one NIRISS exposure, with truth."""
    from transforms.sim.program import simulate_program, small_program

    spec = small_program()
    spec = replace(spec, exposures=spec.exposures[:2] + spec.exposures[5:6], nstars=40,
                   ngalaxies=10)
    return simulate_program(spec, seed=3)


def _contexts(program):
    """Context 1 and 2 as simulated, and context 3 = context 1 with only context 2's flats:
    a change that touches stage 2 and nothing of stage 1."""
    from catalogs.crds_cache import ContextSpec, contexts_from_program

    c1, c2 = contexts_from_program(program)[:2]
    flats2 = {(r.instrument, tuple(sorted(r.match.items()))): r for r in c2.references
              if r.reftype == "flat"}
    c3 = tuple(flats2.get((r.instrument, tuple(sorted(r.match.items()))), r)
               if r.reftype == "flat" else r for r in c1.references)
    assert c3 != c1.references, "the simulator's context 2 must change a flat"
    return [c1, c2, ContextSpec(c3)]


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory, sim_program):
    """uncal files and a CRDS cache (contexts 1-3) written once per session."""
    from catalogs.crds_cache import write_cache
    from store.fits import write_uncal

    d = tmp_path_factory.mktemp("sim")
    (d / "uncal").mkdir()
    for e in sim_program.exposures:
        write_uncal(e.uncal, d / "uncal" / e.truth.name)
    write_cache(d / "crds", _contexts(sim_program))
    return d


def make_workspace(root: Path, sim_dir: Path, ingest: bool = True):
    from flows.ingest import ingest_file
    from flows.workspace import Workspace

    ws, _ = Workspace.init(root)
    shutil.rmtree(ws.crds_path)
    shutil.copytree(sim_dir / "crds", ws.crds_path)
    if ingest:
        rid = uuid.uuid4().hex[:8]
        for f in sorted((sim_dir / "uncal").glob("*.fits")):
            ingest_file(ws, f, rid)
    return ws


@pytest.fixture
def sim_ws(tmp_path, sim_dir):
    """A fresh workspace with the simulated CRDS cache and every exposure ingested."""
    return make_workspace(tmp_path / "home", sim_dir)
