"""Simulated spectroscopic programs shared by the spec2 tests (built once per process) and a
simple extraction to compare calibrated spectra with the truth."""

from __future__ import annotations

import warnings
from dataclasses import replace
from functools import lru_cache

import numpy as np

from transforms import plans
from transforms.model import DataModel
from transforms.sim import slit_program as SPG
from transforms.sim import spectra as SP
from transforms.spec2 import _common as C

warnings.filterwarnings("ignore", category=RuntimeWarning)


@lru_cache(maxsize=None)
def fs_nod(grating: str = "G140M", filt: str = "F100LP"):
    return SPG.simulate_spec_program(SPG.fs_program(grating, filt), seed=11)


@lru_cache(maxsize=None)
def fs_offcentre(xpos: float = 0.33, ypos: float = 0.17):
    """A fixed-slit point source placed off the slit centre (xpos across, ypos along the slit,
    slit units), no nod, no sky: the path loss and wavecorr cases."""
    base = SPG.fs_program(nod=None)
    # the target is the pointing reference; the source sits (x, y) from it on the MSA plane
    from transforms.instruments.nirspec import slits as N

    e = base.exposures[0]
    meta = SPG.pointing(base, e)
    fs = N.fixed_slit(N.msa_geometry(), "S200A1")
    ra, dec = SPG.msa_to_sky(meta, fs["x"] + xpos * fs["width"], fs["y"] + ypos * fs["height"])
    src = SP.SpecSource(1, "offcentre", float(ra), float(dec), SPG.demo_spectrum(500.0))
    spec = replace(base, sources=(src,), sky=False)
    return SPG.simulate_spec_program(spec, seed=12)


@lru_cache(maxsize=None)
def lrs_nod():
    return SPG.simulate_spec_program(SPG.lrs_program(), seed=21)


@lru_cache(maxsize=None)
def lrs_single():
    return SPG.simulate_spec_program(SPG.lrs_program(nod=False, sky=False), seed=22)


@lru_cache(maxsize=None)
def mos():
    return SPG.simulate_spec_program(SPG.mos_program(), seed=31)


def plan_for(prog, ex, skip=(), **overrides):
    refs = prog.refs[ex.truth.name]
    return plans.default_plan("spec2", refs, overrides=overrides,
                              skip={s: True for s in skip}, meta=ex.model.meta)


def run(prog, ex, members=None, skip=(), **overrides) -> DataModel:
    from transforms import spec2

    return spec2.run_members(ex.model, plan_for(prog, ex, skip, **overrides), members)["cal"]


def extract_rows(data: np.ndarray, wl: np.ndarray, centre: int, half: int):
    """Sum of ``data`` over rows centre +- half (horizontal dispersion) and the mean wavelength."""
    box = slice(max(centre - half, 0), centre + half + 1)
    return np.nansum(data[box], axis=0), np.nanmean(wl[box], axis=0)


def continuum_mask(lam: np.ndarray, spectrum: SP.Spectrum, width: float) -> np.ndarray:
    m = np.isfinite(lam)
    for c in spectrum.centroids():
        m &= np.abs(lam - c) > width
    return m


def slit(model, name):
    return C.slit_arrays(model, name), C.slit_meta(model, name)
