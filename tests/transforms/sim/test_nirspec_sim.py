"""The NIRSpec simulator: readout tables, science-frame orientation, references."""

import numpy as np
import pytest

from transforms.instruments.nirspec import detector as nrs
from transforms.sim import readout as ro
from transforms.sim.detector import Effects
from transforms.sim.nirspec import NirspecExposureSpec, simulate_nirspec, window


@pytest.mark.parametrize("name,nf,gg", [("NRSRAPID", 1, 0), ("NRS", 4, 0), ("NRSRAPIDD1", 1, 1),
                                        ("NRSRAPIDD2", 1, 2), ("NRSRAPIDD6", 1, 6),
                                        ("NRSIRS2RAPID", 1, 0), ("NRSIRS2", 5, 0)])
def test_nirspec_patterns(name, nf, gg):
    p = ro.pattern("NIRSPEC", name)
    assert (p.nframes, p.groupgap) == (nf, gg)


@pytest.mark.parametrize("sub,tframe", [("FULL", 10.73677), ("SUB2048", 0.90156),
                                        ("ALLSLITS", 5.49132), ("SUBS200A1", 1.55724)])
def test_frame_times_read_along_y(sub, tframe):
    """NIRSpec's fast axis is science y: (ysize/nout + 12) * (xsize + 1) * 10 us."""
    assert ro.frame_time("NIRSPEC", ro.subarray("NIRSPEC", sub)) == pytest.approx(tframe, abs=1e-5)


def test_irs2_is_full_frame_with_its_own_frame_time():
    t = ro.timing("NIRSPEC", "NRSIRS2", ro.subarray("NIRSPEC", "FULL"), 3, 1)
    assert t.tframe == pytest.approx(14.58889) and t.tgroup == pytest.approx(5 * 14.58889)
    with pytest.raises(ro.ReadoutError, match="full frame only"):
        ro.timing("NIRSPEC", "NRSIRS2RAPID", ro.subarray("NIRSPEC", "SUB2048"), 3, 1)


def test_subarrays_sit_where_each_detector_has_them():
    assert {"FULL", "ALLSLITS", "SUBS200A1", "SUBS400A1", "SUB2048"} <= set(ro.SUBARRAYS["NIRSPEC"])
    a1, a2 = window("SUBS200A1", "NRS1"), window("SUBS200A1", "NRS2")
    assert (a1.xsize, a1.ysize, a1.noutputs) == (2048, 64, 1)
    assert (a1.ystart, a2.ystart) == (1054, 930)
    assert window("FULL", "NRS2").noutputs == 4


@pytest.mark.parametrize("det", ["NRS1", "NRS2"])
def test_one_over_f_runs_along_science_y(det):
    """1/f noise is read along detector rows, i.e. science columns: group differences of a
    dark exposure have column-to-column structure, not row-to-row."""
    eff = Effects.noiseless(one_over_f=True, one_over_f_rms=5.0)
    e = simulate_nirspec(NirspecExposureSpec(detector=det, subarray="ALLSLITS", ngroups=2),
                         seed=4, effects=eff, light_rate_e=np.zeros((256, 2048)))
    d = e.uncal["data"][0, 1].astype(float) - e.uncal["data"][0, 0]
    cols, rows = d.mean(axis=0), d.mean(axis=1)
    assert cols.std() > 5 * rows.std()
    meta = e.uncal.meta
    assert (meta["subarray.fastaxis"], meta["subarray.slowaxis"]) == nrs.axes(det)
    assert meta["exposure.frame_time"] == pytest.approx(5.49132, abs=1e-5)


def test_truth_is_in_the_science_frame():
    """A single bright pixel of light comes out where it went in, on both detectors, and the
    noiseless ramp equals the truth (bias removed) to ADC rounding."""
    for det in nrs.DETECTORS:
        light = np.zeros((64, 2048))
        light[10, 300] = 500.0
        e = simulate_nirspec(NirspecExposureSpec(detector=det, ngroups=3), seed=5,
                             effects=Effects.noiseless(nonlinearity=False, dark=False),
                             light_rate_e=light)
        ramp = e.uncal["data"][0].astype(float) - e.props.superbias
        peak = np.unravel_index(np.argmax(ramp[-1]), ramp[-1].shape)
        assert peak == (10, 300)
        assert e.truth.light_rate_e[10, 300] == pytest.approx(500.0 * e.props.flat[10, 300])
        assert e.refs["superbias"]["data"].shape == (64, 2048)


def test_references_are_jwst_layouts_stdatamodels_opens(tmp_path):
    dm = pytest.importorskip("stdatamodels.jwst.datamodels")
    from store.fits import write_reference, write_uncal

    e = simulate_nirspec(NirspecExposureSpec(detector="NRS2", subarray="SUB2048", ngroups=3),
                         seed=6)
    p = write_uncal(e.uncal, tmp_path / e.uncal.meta["filename"])
    with dm.RampModel(str(p)) as m:
        assert m.meta.instrument.name == "NIRSPEC" and m.meta.subarray.fastaxis == -2
        assert m.meta.instrument.grating == "G235M" and m.data.shape == (1, 3, 32, 2048)
    classes = {"mask": dm.MaskModel, "saturation": dm.SaturationModel,
               "superbias": dm.SuperBiasModel, "linearity": dm.LinearityModel,
               "dark": dm.DarkModel, "gain": dm.GainModel, "readnoise": dm.ReadnoiseModel}
    for rt, model in e.refs.items():
        path = write_reference(model, tmp_path / f"{rt}.fits")
        with classes[rt](str(path)) as m:
            m.validate()
            assert m.meta.instrument.detector == "NRS2"
