"""ipc and persistence: equal to jwst 3.0 on the same arrays; purity, skips and properties."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms import dq as DQ
from transforms import registry
from transforms.detector1 import ipc, persistence
from transforms.model import DataModel

ipc_corr = pytest.importorskip("jwst.ipc.ipc_corr", reason="jwst is the reference")


def ramp(data, meta):
    data = np.asarray(data, np.float32)
    return DataModel("ramp", {"data": data, "groupdq": np.zeros(data.shape, np.uint8),
                              "pixeldq": np.zeros(data.shape[-2:], np.uint32)}, meta)


def window(x0, y0, nx, ny, inst="NIRCAM"):
    return {"instrument.name": inst, "subarray.xstart": x0, "subarray.ystart": y0,
            "subarray.xsize": nx, "subarray.ysize": ny}


def jwst_ipc(data, kernel, meta):
    """jwst's own convolution, as ipc_correction drives it (without the datamodel plumbing)."""
    nref = ipc_corr.NumRefPixels(*ipc.reference_border(meta, data.shape[-2:]))
    out = data.copy()
    k = kernel
    if k.ndim == 4:
        x0, y0 = meta["subarray.xstart"] - 1, meta["subarray.ystart"] - 1
        ny, nx = data.shape[-2:]
        full = (1024, 1032) if meta["instrument.name"] == "MIRI" else (2048, 2048)
        if ny < full[0] or nx < full[1]:
            k = k[:, :, y0:y0 + ny, x0:x0 + nx]
    for i in range(out.shape[0]):
        for g in range(out.shape[1]):
            ipc_corr.ipc_convolve(out[i, g], k, nref)
    return out


def test_reference_border_is_jwsts():
    from stdatamodels.jwst import datamodels as dm

    for meta, shape in ((window(1, 1, 2048, 2048), (2048, 2048)),
                        (window(1, 1, 64, 64), (64, 64)),
                        (window(2000, 1990, 49, 59), (59, 49)),
                        (window(3, 2043, 100, 6), (6, 100)),
                        (window(1, 1, 1032, 1024, "MIRI"), (1024, 1032)),
                        (window(1000, 1, 33, 100, "MIRI"), (100, 33))):
        m = dm.RampModel(data=np.zeros((1, 1) + shape, np.float32))
        m.meta.instrument.name = meta["instrument.name"]
        m.meta.subarray.xstart, m.meta.subarray.ystart = meta["subarray.xstart"], meta["subarray.ystart"]
        m.meta.subarray.xsize, m.meta.subarray.ysize = meta["subarray.xsize"], meta["subarray.ysize"]
        assert tuple(ipc_corr.get_num_ref_pixels(m)) == ipc.reference_border(meta, shape)


@pytest.mark.parametrize("kdim,meta,shape", [
    (2, window(1, 1, 40, 30), (30, 40)),
    (4, window(1, 1, 40, 30), (30, 40)),
    (2, window(2000, 5, 49, 12), (12, 49)),
    (4, window(1020, 2030, 20, 19), (19, 20)),
    (2, window(1, 1, 24, 16, "MIRI"), (16, 24)),
    (4, window(1010, 200, 23, 9, "MIRI"), (9, 23)),
    (5, window(7, 9, 20, 20), (20, 20)),  # a 5x4 kernel: jwst accepts any size
])
def test_ipc_equals_jwst_bit_for_bit(kdim, meta, shape):
    rng = np.random.default_rng(kdim + shape[0])
    data = rng.normal(12000.0, 400.0, (2, 3) + shape).astype(np.float32)
    full = (1024, 1032) if meta["instrument.name"] == "MIRI" else (2048, 2048)
    if kdim == 4:
        kern = rng.normal(0.0, 0.01, (3, 3) + full).astype(np.float32)
        kern[1, 1] += 1.0
    else:
        kern = rng.normal(0.0, 0.01, (3, 3) if kdim == 2 else (5, 4)).astype(np.float32)
        kern[kern.shape[0] // 2, kern.shape[1] // 2] = 1.03
    ref = DataModel("ref.ipc", {"data": kern}, {"reftype": "ipc"})
    model = ramp(data, meta)
    out = ipc.apply(model, {"ipc": ref}, ipc.IPCParams())
    expected = jwst_ipc(data, kern, meta)
    assert np.array_equal(out["data"], expected)
    assert np.array_equal(np.signbit(out["data"]), np.signbit(expected))
    assert out.get("cal_step.ipc") == "COMPLETE"
    assert np.array_equal(model["data"], data)  # the input is not touched


def test_ipc_without_reference_is_skipped_and_shares_arrays():
    model = ramp(np.ones((1, 2, 8, 8)), window(1, 1, 8, 8))
    out = ipc.apply(model, {}, ipc.IPCParams())
    assert out.get("cal_step.ipc") == "SKIPPED"
    assert np.shares_memory(out["data"], model["data"])
    spec = registry.get("ipc")
    assert spec.reftypes == () and spec.optional_reftypes == ("ipc",) and spec.keyword == "S_IPC"


def test_ipc_refuses_bad_kernels_and_irs2():
    model = ramp(np.ones((1, 2, 8, 8)), window(1, 1, 8, 8))
    with pytest.raises(ValueError, match="2-D"):
        ipc.apply(model, {"ipc": DataModel("ref.ipc", {"data": np.ones((3, 3, 3))}, {})},
                  ipc.IPCParams())
    irs2 = model.replace(meta={"exposure.readpatt": "NRSIRS2RAPID"})
    with pytest.raises(ValueError, match="IRS2"):
        ipc.apply(irs2, {"ipc": DataModel("ref.ipc", {"data": np.eye(3)}, {})}, ipc.IPCParams())


def test_ipc_undoes_the_simulators_coupling():
    """The simulator's IPC (on the raw signal) and its ipc reference: a point source and the
    uniform sky come back to within the 3x3 kernel's truncation (2e-4 of the peak)."""
    from transforms.sim import references as rf
    from transforms.sim.detector import ipc_forward

    props = rf.detector_properties("NRCA1", 3, None)
    k = rf.ipc_kernel("NRCA1")
    img = np.full((40, 40), 100.0)
    img[20, 20] = 1e4
    sci = np.ones(img.shape, bool)
    coupled = ipc_forward(img, k, sci)
    assert abs(coupled[20, 21] - 100.0 - 1e4 * k[1, 2]) < 1.0  # the neighbour got its share
    model = ramp(coupled[None, None], window(101, 101, 40, 40))
    out = ipc.apply(model, {"ipc": rf.ipc_ref(props, "2022-01-01T00:00:00")}, ipc.IPCParams())
    err = np.abs(out["data"][0, 0, 1:-1, 1:-1] - img[1:-1, 1:-1])
    assert err.max() < 2.5e-4 * 1e4


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9),
       st.integers(1, 2040), st.integers(1, 2040), st.booleans())
def test_ipc_properties(nints, ngroups, ny, nx, x0, y0, per_pixel):
    """Any shape and position: reference pixels unchanged, same result as jwst, pure and
    deterministic."""
    rng = np.random.default_rng(nx * 31 + ny)
    data = rng.normal(1000.0, 50.0, (nints, ngroups, ny, nx)).astype(np.float32)
    meta = window(x0, y0, nx, ny)
    if per_pixel:
        kern = rng.normal(0.0, 0.01, (3, 3, ny, nx)).astype(np.float32)
        meta_ref = {"subarray.xstart": x0, "subarray.ystart": y0}
    else:
        kern = rng.normal(0.0, 0.01, (3, 3)).astype(np.float32)
        meta_ref = {}
    kern[1, 1] += 1.0
    ref = DataModel("ref.ipc", {"data": kern}, meta_ref)
    model = ramp(data, meta)
    a = ipc.apply(model, {"ipc": ref}, ipc.IPCParams())
    b = ipc.apply(model, {"ipc": ref}, ipc.IPCParams())
    assert np.array_equal(a["data"], b["data"]) and np.array_equal(model["data"], data)
    bt, tp, lf, rt = ipc.reference_border(meta, (ny, nx))
    refmask = np.ones((ny, nx), bool)
    refmask[bt:ny - tp, lf:nx - rt] = False
    assert np.array_equal(a["data"][..., refmask], data[..., refmask])
    if refmask.all():  # no science pixel: unchanged (jwst's convolution fails on these)
        assert np.array_equal(a["data"], data)
        return
    full = np.zeros((3, 3, 2048, 2048), np.float32) if per_pixel else kern
    if per_pixel:
        full[:, :, y0 - 1:y0 - 1 + ny, x0 - 1:x0 - 1 + nx] = kern
    assert np.array_equal(a["data"], jwst_ipc(data, full, meta))


# --- persistence -----------------------------------------------------------------------------

def jwst_persistence(data, gdq, meta, int_start=None, **kw):
    from stdatamodels.jwst import datamodels as dm

    from jwst.persistence.persistence_step import PersistenceStep

    m = dm.RampModel(data=data.copy(), groupdq=gdq.copy(),
                     pixeldq=np.zeros(data.shape[-2:], np.uint32))
    m.meta.instrument.name, m.meta.instrument.detector = "NIRCAM", "NRCA1"
    m.meta.exposure.group_time = meta["exposure.group_time"]
    m.meta.exposure.integration_time = meta["exposure.integration_time"]
    m.meta.exposure.start_time = meta["exposure.start_time"]
    m.meta.exposure.ngroups, m.meta.exposure.nints = data.shape[1], data.shape[0]
    m.meta.exposure.nframes, m.meta.exposure.groupgap = 1, 0
    m.meta.subarray.xstart = m.meta.subarray.ystart = 1
    m.meta.filename = "x_uncal.fits"
    if int_start is not None:
        from astropy.io import fits

        cols = [fits.Column(name=n, format="D" if n != "integration_number" else "J",
                            array=(np.arange(1, len(int_start) + 1) if n == "integration_number"
                                   else np.asarray(int_start)))
                for n in ("integration_number", "int_start_MJD_UTC", "int_mid_MJD_UTC",
                          "int_end_MJD_UTC", "int_start_BJD_TDB", "int_mid_BJD_TDB",
                          "int_end_BJD_TDB")]
        m.int_times = fits.FITS_rec.from_columns(cols)
    logging.getLogger("jwst").setLevel(logging.ERROR)
    logging.getLogger("stpipe").setLevel(logging.ERROR)
    res = PersistenceStep(skip=False, **kw).run(m)
    return np.asarray(res.groupdq), res.meta.cal_step.persistence


def persistence_case(seed, nints=2, ngroups=7, n=12):
    rng = np.random.default_rng(seed)
    data = rng.uniform(0, 12000, (nints, ngroups, n, n)).astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    for _ in range(n):  # pixels that saturate from some group on
        i, y, x = rng.integers(0, nints), rng.integers(0, n), rng.integers(0, n)
        gdq[i, rng.integers(0, ngroups):, y, x] |= DQ.SATURATED
    gdq[rng.random(data.shape) < 0.02] |= DQ.DO_NOT_USE
    meta = {"exposure.group_time": 21.47354, "exposure.integration_time": 7 * 21.47354,
            "exposure.start_time": 59672.47338658912, "instrument.name": "NIRCAM",
            "subarray.xstart": 1, "subarray.ystart": 1, "subarray.xsize": n,
            "subarray.ysize": n}
    return data, gdq, meta


@pytest.mark.parametrize("kw,with_int_times", [
    ({"persistence_time": 70}, False),
    ({"persistence_time": 70}, True),
    ({"persistence_time": 300, "dn_threshold": 9000.0}, False),
    ({"persistence_time": 40, "persistence_dnu": True}, True),
    ({"persistence_time": 1000, "dn_threshold": 11000.0, "persistence_dnu": True}, False),
])
def test_persistence_equals_jwst(kw, with_int_times):
    data, gdq, meta = persistence_case(len(kw) * 7 + with_int_times)
    int_start = None
    if with_int_times:
        int_start = np.array([meta["exposure.start_time"] + 0.0007 * i for i in range(2)])
    expected, status = jwst_persistence(data, gdq, meta, int_start, **kw)
    model = DataModel("ramp", {"data": data, "groupdq": gdq,
                               "pixeldq": np.zeros(data.shape[-2:], np.uint32)}, meta)
    if int_start is not None:
        model = model.replace(arrays={"int_times.int_start_MJD_UTC": int_start})
    params = registry.get("persistence").make_params(kw)
    out = persistence.apply(model, {}, params)
    assert status == "COMPLETE" == out.get("cal_step.persistence")
    assert np.array_equal(out["groupdq"], expected)
    assert np.any(out["groupdq"] & DQ.PERSISTENCE)
    assert np.array_equal(model["groupdq"], gdq)  # the input is not touched


@pytest.mark.parametrize("ptime", [None, 0, -100])
def test_persistence_without_a_window_fails_as_jwst(ptime):
    data, gdq, meta = persistence_case(3)
    expected, status = jwst_persistence(data, gdq, meta, persistence_time=ptime)
    model = DataModel("ramp", {"data": data, "groupdq": gdq,
                               "pixeldq": np.zeros(data.shape[-2:], np.uint32)}, meta)
    out = persistence.apply(model, {}, persistence.PersistenceParams(persistence_time=ptime))
    assert status == "FAILED" == out.get("cal_step.persistence")
    assert np.array_equal(out["groupdq"], expected)
    assert np.shares_memory(out["groupdq"], model["groupdq"])


def test_persistence_is_skipped_by_default_and_refuses_files():
    from transforms.plans import default_plan

    spec = registry.get("persistence")
    assert spec.skip_by_default and spec.reftypes == () and spec.keyword == "S_PERSIS"
    plan = {p.name: p for p in default_plan("detector1", {}, meta={"instrument.name": "NIRCAM"})}
    assert plan["persistence"].skip and not plan["ipc"].skip
    for bad in ({"save_persistence": "p.asdf"}, {"persistence_array_file": "p.asdf"}):
        with pytest.raises(registry.UnknownStep, match="transforms read and write none"):
            spec.make_params(bad)


def test_persistence_state_carries_windows_into_the_next_exposure():
    """The value flag_persistence returns is the next exposure's open windows (what jwst keeps
    in its persistence_array_file); the second exposure starts 10 s after the first ends."""
    data, gdq, meta = persistence_case(5, nints=1)
    gdq[:] = 0
    gdq[0, 3:, 4, 4] = DQ.SATURATED
    params = persistence.PersistenceParams(persistence_time=400)
    g1 = gdq.copy()
    status, state = persistence.flag_persistence(data, g1, meta, params)
    assert status == "COMPLETE" and state[4, 4] > 0 and np.count_nonzero(state) == 1
    later = dict(meta)
    t_end = meta["exposure.start_time"] + (7 * 21.47354 + 10.0) / 86400.0
    later["exposure.start_time"] = t_end
    g2 = np.zeros_like(gdq)
    _, state2 = persistence.flag_persistence(data, g2, later, params, state=state)
    flagged = np.nonzero(g2[0, :, 4, 4] & DQ.PERSISTENCE)[0]
    # the window opened at group 3 of the first exposure (t = 4 groups) and lasts 400 s
    t_open = persistence.mjd_to_epoch(meta["exposure.start_time"]) + 4 * 21.47354
    t2 = persistence.mjd_to_epoch(t_end) + (np.arange(7) + 1) * 21.47354
    assert np.array_equal(flagged, np.nonzero(t2 <= t_open + 400)[0]) and flagged.size > 0
    g3 = np.zeros_like(gdq)
    persistence.flag_persistence(data, g3, later, params)  # without the state: nothing
    assert not np.any(g3 & DQ.PERSISTENCE)


def test_chain_with_ipc_recovers_bright_pixels_of_a_noiseless_exposure():
    """Noiseless simulated stars (IPC, non-linearity): the detector1 chain with the ipc
    reference gives the true rate of unsaturated bright pixels to 1e-3 (the 3x3 kernel's
    truncation), and is off by up to several percent without the ipc step."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from d1_helpers import sim_exposure

    from transforms.detector1 import default_plan, run
    from transforms.sim import readout as ro
    from transforms.sim.detector import Effects

    sub = ro.subarray("NIRCAM", "SUB160")
    rate = np.full((160, 160), 1.0)
    yy, xx = np.mgrid[0:160, 0:160]
    rng = np.random.default_rng(3)
    for _ in range(60):
        y0, x0 = rng.uniform(8, 152, 2)
        rate += 10 ** rng.uniform(2.5, 3.8) * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / 0.92)
    uncal, refs, truth, _, _ = sim_exposure(sub=sub, readpatt="BRIGHT2", ngroups=8,
                                            effects=Effects.noiseless(), rate_e=rate)
    errs = {}
    for skip in (False, True):
        out = run(uncal, default_plan(refs, meta=uncal.meta, skip={"ipc": skip}))["rate"]
        lt = truth.light_rate_dn
        m = (lt > 200) & np.isfinite(out["data"]) & (
            (out["dq"] & (DQ.SATURATED | DQ.DO_NOT_USE)) == 0)
        assert m.sum() > 100
        errs[skip] = (out["data"][m] - lt[m]) / lt[m]
    assert np.abs(errs[False]).max() < 1e-3 and abs(np.median(errs[False])) < 3e-4
    assert np.abs(errs[True]).max() > 0.02
