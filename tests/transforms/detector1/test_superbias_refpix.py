"""superbias and refpix: truth recovery and agreement with jwst's reference_pixels."""

import numpy as np
import pytest

from d1_helpers import ramp, ref, same, snapshot
from transforms import dq as DQ
from transforms.detector1 import refpix, superbias
from transforms.detector1.refpix import RefPixParams
from transforms.detector1.superbias import SuperbiasParams


def test_superbias_subtracts_bias_treats_nan_as_zero_and_ors_dq():
    rng = np.random.default_rng(0)
    bias = rng.uniform(9000, 11000, (6, 7)).astype(np.float32)
    bias[2, 3] = np.nan
    bdq = np.zeros((6, 7), np.uint32)
    bdq[1, 1] = DQ.UNRELIABLE_BIAS
    signal = rng.uniform(0, 100, (2, 3, 6, 7)).astype(np.float32)
    raw = signal + np.nan_to_num(bias)
    model = ramp(raw)
    before = snapshot(model)
    out = superbias.apply(model, {"superbias": ref("superbias", data=bias, dq=bdq)},
                          SuperbiasParams())
    np.testing.assert_allclose(out["data"], signal, atol=1e-3)
    assert out["pixeldq"][1, 1] == DQ.UNRELIABLE_BIAS and out["pixeldq"].sum() == bdq.sum()
    assert same(model, before)


def _detector_frame(ng=2, seed=3):
    """A full frame with per-amplifier even/odd offsets, a slow row drift and noise."""
    rng = np.random.default_rng(seed)
    ny = nx = 2048
    data = rng.normal(0, 3, (1, ng, ny, nx)).astype(np.float32)
    offsets = rng.uniform(-40, 40, (ng, 4, 2))
    cols = np.arange(nx)
    drift = 5 * np.sin(np.arange(ny) / 300.0)
    for g in range(ng):
        data[0, g] += offsets[g, cols // 512, cols % 2][None, :] + drift[:, None]
    signal = np.zeros((ny, nx), np.float32)
    signal[4:-4, 4:-4] = rng.uniform(0, 500, (ny - 8, nx - 8))
    data[0] += signal
    pdq = np.zeros((ny, nx), np.uint32)
    pdq[:4, :] = pdq[-4:, :] = pdq[:, :4] = pdq[:, -4:] = DQ.REFERENCE_PIXEL
    data[0, :, 1, 100] = 5000.0  # a hot reference pixel, flagged DO_NOT_USE
    pdq[1, 100] |= DQ.DO_NOT_USE
    return data, pdq, signal


def test_fullframe_refpix_recovers_signal():
    data, pdq, signal = _detector_frame()
    model = ramp(data, pixeldq=pdq, **{"subarray.xsize": 2048, "subarray.ysize": 2048})
    before = snapshot(model)
    out = refpix.apply(model, {}, RefPixParams())
    assert same(model, before) and out.get("cal_step.refpix") == "COMPLETE"
    resid = out["data"][0, :, 4:-4, 4:-4] - signal[4:-4, 4:-4]
    raw = data[0, :, 4:-4, 4:-4] - signal[4:-4, 4:-4]
    assert np.abs(np.median(resid)) < 0.5
    assert resid.std() < 0.3 * raw.std()  # offsets and drift gone, noise remains


def test_fullframe_refpix_matches_jwst():
    dm = pytest.importorskip("stdatamodels.jwst.datamodels", reason="test-only reference")
    rp = pytest.importorskip("jwst.refpix.reference_pixels", reason="test-only reference")
    data, pdq, _ = _detector_frame()
    m = dm.RampModel(data=data.copy(), groupdq=np.zeros(data.shape, np.uint8), pixeldq=pdq.copy())
    m.meta.instrument.name, m.meta.instrument.detector = "NIRCAM", "NRCA1"
    m.meta.subarray.name = "FULL"
    m.meta.subarray.xstart = m.meta.subarray.ystart = 1
    m.meta.subarray.xsize = m.meta.subarray.ysize = 2048
    m.meta.subarray.fastaxis, m.meta.subarray.slowaxis = -1, 2
    m.meta.exposure.readpatt, m.meta.exposure.noutputs = "RAPID", 4
    m.meta.exposure.type = "NRC_IMAGE"
    rp.correct_model(m, True, True, 11, 1.0, True,
                     {"refpix_algorithm": "median", "sirs_kernel_model": None, "sigreject": 4.0,
                      "gaussmooth": 1.0, "halfwidth": 30}, 3.0)
    ours = refpix.apply(ramp(data, pixeldq=pdq, **{"subarray.xsize": 2048, "subarray.ysize": 2048,
                                           "subarray.fastaxis": -1}), {}, RefPixParams())
    np.testing.assert_allclose(ours["data"], m.data, atol=2e-3)


def test_transposed_detector_equals_transposed_correction():
    data, pdq, _ = _detector_frame(ng=1, seed=5)
    a = refpix.apply(ramp(data, pixeldq=pdq, **{"subarray.fastaxis": 1}), {}, RefPixParams())
    b = refpix.apply(ramp(np.ascontiguousarray(data.transpose(0, 1, 3, 2)), pixeldq=pdq.T.copy(),
                          **{"subarray.fastaxis": 2}), {}, RefPixParams())
    np.testing.assert_allclose(a["data"], b["data"].transpose(0, 1, 3, 2), atol=1e-4)


def test_subarray_uses_flagged_reference_pixels_per_column_parity():
    rng = np.random.default_rng(1)
    ny, nx = 64, 64
    data = rng.normal(0, 1, (1, 3, ny, nx)).astype(np.float32)
    data[..., 0::2] += 30.0
    data[..., 1::2] -= 12.0
    pdq = np.zeros((ny, nx), np.uint32)
    pdq[:4, :] = pdq[:, :4] = DQ.REFERENCE_PIXEL  # corner subarray: bottom and left border
    out = refpix.apply(ramp(data, pixeldq=pdq), {}, RefPixParams())
    assert out.get("cal_step.refpix") == "COMPLETE"
    assert abs(out["data"][..., 0::2].mean()) < 0.2 and abs(out["data"][..., 1::2].mean()) < 0.2
    none = refpix.apply(ramp(data), {}, RefPixParams())
    assert none.get("cal_step.refpix") == "SKIPPED" and np.array_equal(none["data"], data)
