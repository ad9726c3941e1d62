"""Properties of the spec2 front half: an empty slit, a source on (or beyond) the slit edge and
every pixel flagged run through without a crash; NaN and DO_NOT_USE agree in every output;
steps are pure (inputs untouched) and deterministic."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spec2_helpers as H
from store.identity import product_id
from transforms import dq as DQ
from transforms.sim import slit_program as SPG
from transforms.spec2 import _common as C


@lru_cache(maxsize=None)
def _fs_empty():
    spec = replace(SPG.fs_program(nod=None), sources=(), sky=False)
    return SPG.simulate_spec_program(spec, seed=41)


def _check(model):
    names = C.slit_names(model) or [None]
    for n in names:
        arr = C.slit_arrays(model, n) if n is not None else dict(model.arrays)
        d, q = arr["data"], arr["dq"]
        assert d.shape == q.shape
        nan = np.isnan(d)
        assert np.all((q[nan] & DQ.DO_NOT_USE) != 0)  # every NaN is DO_NOT_USE
        for v in ("err", "var_poisson", "var_rnoise", "var_flat"):
            if v in arr and arr[v].shape == d.shape:
                assert np.all(np.isnan(arr[v][nan]))


def _with(ex, data=None, dq=None, **meta):
    arrays = {}
    if data is not None:
        arrays["data"] = data.astype(np.float32)
    if dq is not None:
        arrays["dq"] = dq.astype(np.uint32)
    return type(ex)(ex.spec, ex.model.replace(arrays=arrays, meta=meta), ex.truth)


def test_empty_slit_runs_and_stays_empty():
    prog = _fs_empty()
    ex = prog.exposures[0]
    cal = H.run(prog, ex)
    _check(cal)
    arr, sm = H.slit(cal, "S200A1")
    assert sm["srctype"] == "POINT"  # the APT type is unknown: jwst's default
    assert abs(np.nanmedian(arr["data"])) < 5 * np.nanmedian(arr["err"])


@settings(max_examples=12, deadline=None)
@given(st.floats(-0.75, 0.75), st.floats(-0.75, 0.75),
       st.sampled_from([None, "POINT", "EXTENDED"]), st.floats(0.0, 1.0))
def test_fs_source_anywhere_and_any_flags(xpos, ypos, user_type, frac_bad):
    """A source position on, inside or beyond the slit edges (via the dither offsets), user
    source types and a random fraction of DO_NOT_USE pixels."""
    prog = H.fs_nod()
    ex = prog.exposures[0]
    rng = np.random.default_rng(int(frac_bad * 1000))
    bad = rng.random(ex.model["data"].shape) < frac_bad
    dq = np.where(bad, np.uint32(DQ.DO_NOT_USE), ex.model["dq"])
    data = np.where(bad, np.nan, ex.model["data"])
    e = _with(ex, data, dq, **{"dither.x_offset": xpos * 0.2, "dither.y_offset": ypos * 3.3})
    cal = H.run(prog, e, srctype={"source_type": user_type})
    _check(cal)
    arr, sm = H.slit(cal, "S200A1")
    inside = abs(xpos) < 0.5 and abs(ypos) < 0.5
    if (user_type or "POINT") == "POINT" and not inside:
        # outside the path-loss grid: jwst leaves the slit uncorrected
        assert sm.get("pathloss_correction_type") is None
    assert cal.get("cal_step.photom") in ("COMPLETE", "SKIPPED")


def test_every_pixel_flagged():
    prog = H.fs_nod()
    ex = prog.exposures[0]
    shape = ex.model["data"].shape
    e = _with(ex, np.full(shape, np.nan), np.full(shape, DQ.DO_NOT_USE))
    cal = H.run(prog, e, {"background": [prog.exposures[1].model]})
    _check(cal)
    arr, _ = H.slit(cal, "S200A1")
    assert np.all(np.isnan(arr["data"])) and np.all(arr["dq"] & DQ.DO_NOT_USE)


def test_lrs_target_outside_slit_uses_the_centre_and_all_flagged_runs():
    prog = H.lrs_single()
    ex = prog.exposures[0]
    far = _with(ex, **{"target.ra": prog.spec.ra + 5.0 / 3600.0})
    cal = H.run(prog, far)
    assert cal.get("calops.pathloss_centred") is True
    _check(cal)
    shape = ex.model["data"].shape
    cal = H.run(prog, _with(ex, np.full(shape, np.nan), np.full(shape, DQ.DO_NOT_USE)))
    _check(cal)
    # user_slit_loc moves the target across the slit: a different correction
    a = H.run(prog, ex)
    b = H.run(prog, ex, pathloss={"user_slit_loc": 0.15})
    ra = a["pathloss_point"][200:300, 320:330]
    rb = b["pathloss_point"][200:300, 320:330]
    assert np.nanmedian(rb / ra) > 1.05


def test_steps_are_pure_and_deterministic():
    prog = H.fs_nod()
    ex = prog.exposures[0]
    before = product_id(ex.model)
    a = H.run(prog, ex, {"background": [prog.exposures[1].model]})
    b = H.run(prog, ex, {"background": [prog.exposures[1].model]})
    assert product_id(ex.model) == before
    assert product_id(a) == product_id(b)
    with pytest.raises(ValueError):
        a["S200A1:data"][0, 0] = 1.0  # read-only outputs
