"""Golden product ids of the image3 steps: a silent change to tweakreg, skymatch,
outlier_detection or source_catalog output fails here (then bump the step's version).

Inputs are built here, seeded, and made bit-identical on every CPU: sky positions and header
pointings are dyadic offsets (no trigonometry in the inputs' metadata), star positions from the
WCS are rounded to 1/64 pixel, the rendered images to 2**-10 and the noise is integers / 256.

The steps themselves evaluate WCSs (numpy's SIMD sin/cos/arctan2 differ in the last bit between
CPU generations) and least squares (OpenBLAS kernels differ by CPU), so the float64 values they
produce are pinned in canonical form (``golden_ids.canonical``, ``CASES`` below), as measured
with other kernels (golden_ids.py docstring): tweakreg's ``wcs.tweak`` moved by up to 1.2e-11
absolute, so its floats are rounded to 32 significant bits and to multiples of 2**-16 (15
micro-arcsec); skymatch's levels moved by <1e-15 relative: 32 significant bits;
source_catalog's columns by <6e-16 relative, except near-zero ellipticities and orientations
(2e-16 / 2.5e-12 absolute): 28 significant bits; float32 arrays are exact. outlier_detection's output is integers (DQ flags, a
count): pinned exactly.
Each step gets its own fixed input (not the previous step's output), so a change in one step
fails only that step's golden. A second run of each step must give the same EXACT id (calops'
realisations treat two ids for one recipe as nondeterminism).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erf

_HERE = str(Path(__file__).resolve().parents[1])  # tests/transforms: the shared golden table
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from golden_ids import Canon, golden_cases  # noqa: E402

from transforms.image3.outlier_detection import OutlierParams, outlier_detection  # noqa: E402
from transforms.image3.skymatch import SkymatchParams, skymatch  # noqa: E402
from transforms.image3.source_catalog import SourceCatalogParams, source_catalog  # noqa: E402
from transforms.image3.tweakreg import TweakregParams, tweakreg  # noqa: E402
from transforms.model import DataModel  # noqa: E402
from transforms.wcs import distortion_ref, tangent_plane_meta, wcs_meta, wcs_of  # noqa: E402

pytest.importorskip("store.identity", reason="product ids come from store.identity")

SCALE = 0.031  # arcsec / pixel
RA0, DEC0 = 53.125, -27.75  # dyadic-friendly field centre (deg)
SHAPE = (72, 72)
FWHM = 2.0
DEG = 2.0 ** -20  # dyadic sky-offset unit, ~3.4 mas


def _meta(ra: float, dec: float, roll: float, k: int) -> dict:
    ny, nx = SHAPE
    dref = distortion_ref(v2_ref=0.0, v3_ref=0.0, crpix1=(nx - 1) / 2, crpix2=(ny - 1) / 2,
                          scale_x=SCALE, scale_y=SCALE, naxis1=nx, naxis2=ny)
    meta = {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
            "instrument.filter": "F200W", "instrument.pupil": "CLEAR",
            "observation.program_number": "01234", "observation.observation_number": "001",
            "observation.visit_number": "001", "observation.exposure_number": str(k + 1),
            "exposure.exposure_time": 100.0, "exposure.type": "NRC_IMAGE",
            "wcsinfo.v2_ref": 0.0, "wcsinfo.v3_ref": 0.0, "wcsinfo.roll_ref": roll,
            "wcsinfo.ra_ref": ra, "wcsinfo.dec_ref": dec,
            "photometry.pixelarea_steradians": 2.2587e-14, "bunit_data": "MJy/sr"}
    meta.update(wcs_meta(meta, dref, SHAPE))
    return meta


def _render(shape, x, y, flux) -> np.ndarray:
    """Pixel-integrated Gaussian stars at 0-based (x, y), quantised to 2**-10."""
    ny, nx = shape
    s = FWHM / 2.3548
    xe, ye = np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5
    img = np.zeros(shape)
    for xi, yi, fi in zip(x, y, flux):
        ex = np.diff(0.5 * erf((xe - xi) / (np.sqrt(2) * s)))
        ey = np.diff(0.5 * erf((ye - yi) / (np.sqrt(2) * s)))
        img += fi * np.outer(ey, ex)
    return np.round(img * 1024.0) / 1024.0


def _stars(rng, n: int, half: int, min_sep: int):
    """``n`` star offsets (integer DEG units, at least ``min_sep`` apart) and integer fluxes."""
    pts: list[tuple[int, int]] = []
    while len(pts) < n:
        p = tuple(int(v) for v in rng.integers(-half, half + 1, 2))
        if all(max(abs(p[0] - a), abs(p[1] - b)) >= min_sep for a, b in pts):
            pts.append(p)
    off = np.array(pts, np.float64)
    return RA0 + off[:, 0] * DEG, DEC0 + off[:, 1] * DEG, rng.integers(60, 600, n).astype(float)


def _program(seed: int, n_exp: int = 3, pointing_error: bool = True, sky=(0.0,), n_cr: int = 0):
    """Cal exposures of one field: (header-pointing cals, true-pointing cals)."""
    rng = np.random.default_rng(seed)
    # field half-width ~1.1" (336 DEG units), stars >= 0.3" apart
    ra, dec, flux = _stars(rng, 22, 300, 90)
    cals, truths = [], []
    for k in range(n_exp):
        tra = RA0 + int(rng.integers(-40, 41)) * DEG
        tdec = DEC0 + int(rng.integers(-40, 41)) * DEG
        tmeta = _meta(tra, tdec, 30.0, k)
        x, y = wcs_of(tmeta).invert(ra, dec, with_bounding_box=False)
        x, y = np.round(np.asarray(x) * 64) / 64, np.round(np.asarray(y) * 64) / 64
        img = _render(SHAPE, x, y, flux) + sky[k % len(sky)]
        img = img + rng.integers(-8, 9, SHAPE) / 256.0
        if n_cr:
            iy, ix = rng.integers(4, SHAPE[0] - 4, n_cr), rng.integers(4, SHAPE[1] - 4, n_cr)
            img[iy, ix] += rng.integers(8, 64, n_cr)
        if pointing_error:  # up to ~0.1" and 0.03 deg of roll, all dyadic
            hmeta = _meta(tra + int(rng.integers(-30, 31)) * DEG,
                          tdec + int(rng.integers(-30, 31)) * DEG,
                          30.0 + int(rng.integers(-8, 9)) / 256.0, k)
        else:
            hmeta = tmeta
        err = np.full(SHAPE, 0.03125, np.float32)
        arrays = {"data": img.astype(np.float32), "err": err,
                  "dq": np.zeros(SHAPE, np.uint32),
                  "var_poisson": np.zeros(SHAPE, np.float32), "var_rnoise": err * err}
        cals.append(DataModel("cal", arrays, hmeta))
        truths.append(DataModel("cal", arrays, tmeta))
    return tuple(cals), tuple(truths)


def _mosaic(seed: int) -> DataModel:
    """An i2d: stars and a faint galaxy on a north-up tangent plane, with wht and err."""
    rng = np.random.default_rng(seed)
    shape = (80, 80)
    n = 12
    pts: list[tuple[int, int]] = []
    while len(pts) < n:
        p = tuple(int(v) for v in rng.integers(8, 72, 2))
        if all(max(abs(p[0] - a), abs(p[1] - b)) >= 12 for a, b in pts):
            pts.append(p)
    xy = np.array(pts, float) + rng.integers(0, 64, (n, 2)) / 64.0
    img = _render(shape, xy[:, 0], xy[:, 1], rng.integers(40, 800, n).astype(float))
    yy, xx = np.mgrid[0:80, 0:80]
    galaxy = 0.25 * np.exp(-(((xx - 40.25) / 6.0) ** 2 + ((yy - 20.5) / 3.0) ** 2))
    img = img + np.round(galaxy * 1024.0) / 1024.0 + 0.125 + rng.integers(-8, 9, shape) / 256.0
    wht = np.ones(shape, np.float32)
    wht[:, :3] = 0.0  # an uncovered edge
    data = np.where(wht > 0, img, np.nan).astype(np.float32)
    err = np.full(shape, 0.03125, np.float32)
    meta = {"instrument.name": "NIRCAM", "instrument.filter": "F200W",
            "observation.program_number": "01234", "cal_step.resample": "COMPLETE",
            **tangent_plane_meta(RA0, DEC0, SCALE, shape)}
    return DataModel("i2d", {"data": data, "err": err, "wht": wht,
                             "con": np.ones((1,) + shape, np.int32)}, meta)


# --- the steps on their inputs (params: JWST defaults unless the small input needs less) ---

# a 2.2" field holds no stars 1" apart (the default isolation): closer stars, fewer of them
TWEAK_PARAMS = TweakregParams(kernel_fwhm=FWHM, minobj=6, separation=0.25, tolerance=0.25)


def _tweakreg():
    cals, _ = _program(seed=11, pointing_error=True)
    return tweakreg(cals, {}, TWEAK_PARAMS)


def _skymatch():
    _, truths = _program(seed=12, pointing_error=False, sky=(0.5, 0.875, 0.625))
    return skymatch(truths, {}, SkymatchParams())


def _outlier_detection():
    _, truths = _program(seed=13, pointing_error=False, n_cr=12)
    return outlier_detection(truths, {}, OutlierParams())


def _source_catalog():
    return source_catalog(_mosaic(seed=14), {}, SourceCatalogParams())


# How each output is canonicalised before hashing (None: exact). See the module docstring.
CASES = {
    "tweakreg==1.0": (_tweakreg, Canon(bits=32, quantum=2.0 ** -16)),
    "skymatch==1.0": (_skymatch, Canon(bits=32)),
    "outlier_detection==1.0": (_outlier_detection, None),
    "source_catalog==1.0": (_source_catalog, Canon(bits=28)),
}
PINNED = tuple(CASES)  # the keys of tests/transforms/golden_ids.py this file pins


_first, test_golden_product_id = golden_cases(CASES)


def test_golden_inputs_exercise_the_steps():
    """The fixed inputs make each step do real work (else a golden pins a no-op)."""
    tw = _first("tweakreg==1.0")
    assert all(m.get("cal_step.tweakreg") == "COMPLETE" for m in tw)
    assert all(m.get("wcs.tweak")["nmatch"] >= 6 for m in tw)
    sk = _first("skymatch==1.0")
    levels = [m.get("background.level") for m in sk]
    assert min(levels) == 0.0 and max(levels) > 0.3, levels
    od = _first("outlier_detection==1.0")
    assert all(m.get("outlier_detection.nflagged") > 0 for m in od)
    cat = _first("source_catalog==1.0")
    assert cat.get("source_catalog.nsources") >= 10


def test_canonical_form_still_sees_small_real_changes():
    """The rounding that absorbs CPU noise keeps real changes visible: a 3.4 mas header
    pointing change, a 2**-8 sky step and a 1% bump of one star pixel all change the
    canonicalised values the steps compute."""
    from golden_ids import canonical

    cals, _ = _program(seed=11, pointing_error=True)
    p = TWEAK_PARAMS
    base = _first("tweakreg==1.0")
    moved = cals[1].replace(meta={"wcsinfo.ra_ref": cals[1].get("wcsinfo.ra_ref") + DEG})
    bumped = tweakreg((cals[0], moved, cals[2]), {}, p)
    canon = CASES["tweakreg==1.0"][1]
    assert (canonical(bumped[1], canon).get("wcs.tweak")
            != canonical(base[1], canon).get("wcs.tweak"))

    _, truths = _program(seed=12, pointing_error=False, sky=(0.5, 0.875, 0.625))
    m = truths[2]
    stepped = m.replace(arrays={"data": m["data"] + np.float32(2.0 ** -8)})
    a = _first("skymatch==1.0")[2]
    b = skymatch((truths[0], truths[1], stepped), {}, SkymatchParams())[2]
    canon = CASES["skymatch==1.0"][1]
    assert canonical(a, canon).get("background.level") != canonical(b, canon).get(
        "background.level")

    mosaic = _mosaic(seed=14)
    cat = _first("source_catalog==1.0")
    x, y = int(round(cat["xcentroid"][0])), int(round(cat["ycentroid"][0]))
    data = np.array(mosaic["data"])
    data[y, x + 1] *= np.float32(1.01)
    cat2 = source_catalog(mosaic.replace(arrays={"data": data}), {}, SourceCatalogParams())
    canon = CASES["source_catalog==1.0"][1]
    assert not np.array_equal(canonical(cat, canon)["xcentroid"],
                              canonical(cat2, canon)["xcentroid"])
