"""MIRI in the simulator: geometry and clocks as JWST's, ramps that the steps can undo, and
references in the JWST layouts that stdatamodels opens and the real rmap parameters select."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from transforms import dq
from transforms.instruments.miri import detector as md
from transforms.sim import miri as sm
from transforms.sim import readout as ro
from transforms.sim import references as rf
from transforms.sim.detector import Effects, apply_linearity

UA = "2022-01-01T00:00:00"


# --- geometry and timing -------------------------------------------------------------------

@pytest.mark.parametrize("name,readpatt,tframe", [
    ("FULL", "FAST", 2.77504), ("FULL", "SLOW", 23.88992), ("BRIGHTSKY", "FAST", 0.86528),
    ("SUB256", "FAST", 0.29952), ("SUB128", "FAST", 0.11904), ("SUB64", "FAST", 0.08512),
    ("SLITLESSPRISM", "FAST", 0.15904), ("MASK1550", "FAST", 0.23968),
    ("MASKLYOT", "FAST", 0.324)])
def test_frame_times_are_jwst_values(name, readpatt, tframe):
    """TFRAME from the row clocks equals JWST's frame times (jwst.emicorr's frame clocks)."""
    sub = ro.subarray("MIRI", name)
    t = ro.timing("MIRI", readpatt, sub, 5, 2)
    assert t.tframe == pytest.approx(tframe, abs=1e-9)
    assert (t.nframes, t.groupgap, t.tgroup) == (1, 0, t.tframe)


def test_subarrays_sit_on_the_1032x1024_frame_with_interleaved_outputs():
    assert set(md.SUBARRAYS) >= {"FULL", "BRIGHTSKY", "SUB256", "SUB128", "SUB64",
                                 "SLITLESSPRISM", "MASK1065", "MASK1140", "MASK1550", "MASKLYOT"}
    for s in md.SUBARRAYS.values():
        md.check_window(s.xstart, s.ystart, s.xsize, s.ysize)
        assert s.xsize % 4 == 0
    full = ro.subarray("MIRI", "FULL")
    assert (full.xsize, full.ysize, full.noutputs) == (1032, 1024, 4)
    amp = md.amplifiers(1, 1032)
    assert np.array_equal(amp, np.arange(1032) % 4)
    assert np.array_equal(md.amplifiers(413, 8), [0, 1, 2, 3, 0, 1, 2, 3])
    ref = md.reference_columns(1, 1032)
    assert np.flatnonzero(ref).tolist() == [0, 1, 2, 3, 1028, 1029, 1030, 1031]
    # each output has one reference column on each side
    assert sorted(amp[ref].tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert not md.reference_columns(413, 256).any()  # SUB256 has none
    assert md.reference_columns(1, 72).sum() == 4  # SLITLESSPRISM / SUB64: the left ones
    assert md.subarray("SUBPRISM") == md.subarray("SLITLESSPRISM")
    with pytest.raises(md.MiriError, match="unknown MIRI subarray"):
        md.subarray("SUB160")
    with pytest.raises(md.MiriError, match="FAST mode only"):
        md.row_clocks("SUB256", 256, "SLOW")
    with pytest.raises(md.MiriError, match="does not fit"):
        md.check_window(1000, 1, 64, 64)


def test_emi_subarray_cases_follow_jwst_layout():
    cases = md.emi_subarray_cases()
    assert cases["FULL_FAST"]["frameclocks"] == 277504 and cases["FULL_SLOW"]["rowclocks"] == 2333
    assert cases["FULL_FAST"]["freqs"]["FAST"] == ["Hz10"]
    assert "FAST" not in cases["FULL_SLOW"]["freqs"]
    assert cases["SUB256"]["frameclocks"] == 29952
    assert cases["MASK1550"]["freqs"]["SLOW"]["MIRIMAGE"] == ["Hz390", "Hz10_slow_MIRIMAGE"]
    assert md.EMI_FREQUENCIES["Hz390"] == 390.625 and md.EMI_FREQUENCIES["Hz10"] == 10.039216


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(md.DETECTORS), st.integers(1, 950), st.integers(1, 950),
       st.integers(1, 40), st.integers(1, 40), st.integers(0, 20), st.integers(0, 20))
def test_properties_do_not_depend_on_the_window(det, x0, y0, nx, ny, dx, dy):
    big = ro.custom_subarray(x0, y0, nx + dx + 5, ny + dy + 5)
    small = ro.custom_subarray(x0 + dx, y0 + dy, nx, ny)
    a = rf.detector_properties(det, 7, big)
    b = rf.detector_properties(det, 7, small)
    for name in ("superbias", "gain", "read_noise", "dark_rate", "flat", "well", "refpix"):
        assert np.array_equal(getattr(a, name)[dy:dy + ny, dx:dx + nx], getattr(b, name))
    ma, mb = sm.miri_properties(a, 7), sm.miri_properties(b, 7)
    for name in ("reset", "first_frame", "last_frame", "dark_transient"):
        assert np.array_equal(getattr(ma, name)[dy:dy + ny, dx:dx + nx], getattr(mb, name))
    cols = np.arange(x0 + dx - 1, x0 + dx - 1 + nx)
    refcol = (cols < 4) | (cols >= 1028)
    assert np.array_equal(b.refpix, np.broadcast_to(refcol, (ny, nx)))
    m = rf.mask_ref(b, UA)["dq"]
    assert np.array_equal((m & dq.REFERENCE_PIXEL) != 0, b.refpix)
    assert np.all(b.dark_rate[b.refpix] == 0) and np.all(mb.reset[b.refpix] == 0)


# --- ramps ---------------------------------------------------------------------------------

def _window(name="SLITLESSPRISM", ngroups=8, nints=2, readpatt="FAST"):
    sub = ro.subarray("MIRI", name)
    # a small window keeps the test fast; the LRS slitless strip has reference columns
    sub = replace(sub, ysize=32) if name == "SLITLESSPRISM" else sub
    return sub, ro.timing("MIRI", readpatt, sub, ngroups, nints)


def test_noiseless_ramp_linearises_to_the_analytic_truth():
    sub, tim = _window()
    props = rf.detector_properties("MIRIMAGE", 5, sub)
    rate = np.full((sub.ysize, sub.xsize), 300.0)
    data, truth = sm.synthesize(rate, props, sub, tim, np.random.default_rng(0),
                                Effects.noiseless(), sm.MiriEffects.off(dark_transient=True),
                                seed=5)
    ana = sm.analytic_ramp(rate, props, sub, tim, sm.MiriEffects.off(dark_transient=True), seed=5)
    sci = ~props.refpix
    lin = apply_linearity(data.astype(float), props.lin_coeffs.astype(float))
    # science pixels: the linearity polynomial recovers bias + light + dark within ADC rounding
    assert np.abs((lin - ana)[..., sci]).max() < 0.6
    # reference columns: raw = bias + fixed offset, no light, no dark, no non-linearity
    assert np.abs((data - ana)[..., ~sci]).max() <= 0.5
    assert sci.sum() < sci.size and truth.saturation_group.max() == -1
    # the dark is not a straight line: steeper at the start, steeper in integration 1
    mp = sm.miri_properties(props, 5)
    d = np.array([[sm.dark_electrons((g + 1) * tim.tframe, props.dark_rate, mp.dark_transient,
                                     i, sm.MiriEffects())[sci].mean() for g in range(8)]
                  for i in range(2)])
    steps = np.diff(d, axis=1)
    assert np.all(steps[:, 0] > steps[:, -1]) and np.all(d[0] > d[1])


def test_each_miri_effect_is_where_its_reference_says():
    sub, tim = _window(ngroups=10, nints=3)
    props = rf.detector_properties("MIRIMAGE", 5, sub)
    rate = np.full((sub.ysize, sub.xsize), 20000.0)  # ~5800 DN by the last group
    sci = ~props.refpix

    def ramp(**on):
        d, t = sm.synthesize(rate, props, sub, tim, np.random.default_rng(1), Effects.noiseless(),
                             sm.MiriEffects.off(**on), seed=5)
        return d.astype(float), t

    base, _ = ramp()
    # reset anomaly: exactly the RESET reference (raw DN), first RESET_NGROUPS groups only
    r, _ = ramp(reset_anomaly=True)
    ref = sm.reset_ref(props, UA, "FAST", 10, 5, sm.MiriEffects.off(reset_anomaly=True))
    assert not sm.reset_ref(props, UA, "FAST", 10, 5, sm.MiriEffects.off())["data"].any()
    assert ref["data"].shape == (2, sm.RESET_NGROUPS) + sci.shape
    for i in range(3):
        want = ref["data"][min(i, 1)]
        got = (r - base)[i, :sm.RESET_NGROUPS]
        assert np.abs(got - want)[..., sci].max() <= 1.0
    assert np.all(r[:, sm.RESET_NGROUPS:] == base[:, sm.RESET_NGROUPS:])
    # first/last frame: group 0 and the last group only
    f, _ = ramp(first_frame=True, last_frame=True)
    diff = np.abs(f - base)[..., sci].max(axis=-1)
    assert np.all(diff[:, 1:-1] == 0) and np.all(diff[:, [0, -1]] > 5)
    # RSCD: integrations 2+ start low, decaying within the groups the reference flags
    c, _ = ramp(rscd=True)
    d = (c - base)[..., sci].mean(axis=-1)
    assert np.all(d[0] == 0) and d[1, 0] < -50
    skip1, skip = sm.RSCD_SKIP[("SLITLESSPRISM", "FAST")]
    assert abs(d[1, skip]) < 0.02 * abs(d[1, 0])
    # EMI: the same sine at each sample time on the four outputs, reference columns included
    e, t = ramp(emi=True)
    (name, hz, amp, phi), = [s for s in t.extra["emi"] if s[0] == "Hz390"]
    assert [s[0] for s in t.extra["emi"]] == md.emi_frequencies("SLITLESSPRISM", "FAST",
                                                                "MIRIMAGE")
    model = sm.emi_signal(sub, "FAST", "MIRIMAGE", tim, 2, 7, t.extra["emi"])
    assert np.abs((e - base)[2, 7] - model).max() <= 1.0
    assert np.ptp(model[:, :4]) > amp  # the reference columns see it too
    # reference-column drift: one value per output and row parity, same in reference columns
    k, t = ramp(refcol_drift=True)
    amp_of = md.amplifiers(sub.xstart, sub.xsize)
    dd = (k - base)[1, 5]
    for a in range(4):
        for par in range(2):
            v = dd[par::2][:, amp_of == a]
            want = t.extra["drift"][1, 5, a, (sub.ystart - 1 + par) % 2]
            assert np.abs(v - want).max() <= 1.5


def test_miri_synthesis_refuses_what_it_cannot_do():
    sub, tim = _window()
    nir = rf.detector_properties("NRCA1", 1, ro.subarray("NIRCAM", "SUB64P"))
    with pytest.raises(ValueError, match="not a MIRI detector"):
        sm.synthesize(np.zeros((64, 64)), nir, sub, tim, np.random.default_rng(0))
    props = rf.detector_properties("MIRIMAGE", 1, sub)
    with pytest.raises(ValueError, match="same shape"):
        sm.synthesize(np.zeros((3, 3)), props, sub, tim, np.random.default_rng(0))


# --- references and CRDS -------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_miri_program():
    from transforms.sim.program import miri_program, simulate_program

    spec = miri_program()
    spec = replace(spec, exposures=spec.exposures[:1], nstars=4, ngalaxies=2)
    return simulate_program(spec, seed=3)


def test_references_open_in_stdatamodels_and_round_trip(tmp_path, small_miri_program):
    sdm = pytest.importorskip("stdatamodels.jwst.datamodels")
    from catalogs.crds_cache import write_reference_file
    from store import fits as sf

    want = {"mask": "MaskModel", "saturation": "SaturationModel", "linearity": "LinearityModel",
            "gain": "GainModel", "readnoise": "ReadnoiseModel", "photom": "MirImgPhotomModel",
            "area": "PixelAreaModel", "flat": "FlatModel", "distortion": "DistortionModel",
            "dark": "DarkMIRIModel", "reset": "ResetModel", "rscd": "RSCDModel",
            "emicorr": "EmiModel"}
    seen = set()
    for r in small_miri_program.contexts[0]:
        if r.model is None:
            assert (r.reftype, r.filename) == ("superbias", "N/A")
            continue
        p = write_reference_file(r.model, tmp_path / r.filename)
        back = sf.read_reference(p)
        assert back.kind == r.model.kind and dict(back.meta) == dict(r.model.meta)
        for k, a in r.model.arrays.items():
            assert np.array_equal(back[k], a), (r.reftype, k)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with sdm.open(str(p)) as s:
                assert type(s).__name__ == want[r.reftype]
                s.validate()
                if r.reftype == "emicorr":
                    assert s.frequencies.Hz390.frequency == 390.625  # as jwst reads it
                    assert list(s.subarray_cases.SUB256.freqs.FAST) == ["Hz390", "Hz10"]
                if r.reftype == "rscd":
                    row = [t for t in s.rscd_group_skip_table if t["subarray"] == "SUB256"][0]
                    assert (row["group_skip1"], row["group_skip"]) == sm.RSCD_SKIP[("SUB256",
                                                                                     "FAST")]
        seen.add(r.reftype)
    assert seen == set(want)


def test_crds_selects_every_miri_reference_by_the_real_parkeys(tmp_path, small_miri_program):
    from catalogs import crds_resolve
    from catalogs.crds_cache import contexts_from_program, spec_for, write_cache

    write_cache(tmp_path, contexts_from_program(small_miri_program))
    e = small_miri_program.exposures[0]
    expected = small_miri_program.expected[0][e.truth.name]
    got = crds_resolve.resolve(e.uncal.meta, sorted(expected), "jwst_0001.pmap", tmp_path)
    assert {k: v if v == "N/A" else v.rsplit("/", 1)[-1] for k, v in got.items()} == expected
    assert got["superbias"] == "N/A"  # as the real MIRI contexts say
    # every match key is a parameter of the shipped MIRI rmap spec
    for r in small_miri_program.contexts[0]:
        if r.filename == "N/A":
            continue
        keys = {k.lower().removeprefix("meta.") for k in spec_for("miri", r.reftype)["parkey"][0]}
        assert set(r.match) <= keys, r.reftype
    # a different subarray selects nothing: the dark and reset are per subarray and pattern
    other = {**e.uncal.meta, "subarray.name": "SUB128"}
    with pytest.raises(crds_resolve.CrdsResolutionError, match="dark"):
        crds_resolve.resolve(other, ["dark"], "jwst_0001.pmap", tmp_path)
