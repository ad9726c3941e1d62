"""Readout patterns and timing against JWST's published numbers and formula."""

import pytest
from hypothesis import given, settings, strategies as st

from transforms.sim import readout as ro

# The near-IR frame-time formula. NIRSpec reads along y and its IRS2 patterns are full-frame
# only (test_nirspec_sim.py); MIRI's clocks are tested in tests/transforms/sim/test_miri.py.
PATTERNS = [(i, p) for i in ro.PATTERNS for p in ro.PATTERNS[i] if i not in ("NIRSPEC", "MIRI")]


def test_full_frame_times_are_jwst_values():
    assert ro.frame_time("NIRCAM", ro.subarray("NIRCAM", "FULL")) == pytest.approx(10.73676)
    assert ro.frame_time("NIRISS", ro.subarray("NIRISS", "FULL")) == pytest.approx(10.7368)
    # The standard formula gives the same full-frame value.
    assert (2048 / 4 + 12) * (2048 + 1) * 10e-6 == pytest.approx(10.73676)


@pytest.mark.parametrize("name,nf,gg", [("RAPID", 1, 0), ("BRIGHT1", 1, 1), ("BRIGHT2", 2, 0),
                                        ("SHALLOW2", 2, 3), ("SHALLOW4", 4, 1), ("MEDIUM2", 2, 8),
                                        ("MEDIUM8", 8, 2), ("DEEP2", 2, 18), ("DEEP8", 8, 12)])
def test_nircam_patterns(name, nf, gg):
    p = ro.pattern("NIRCAM", name)
    assert (p.nframes, p.groupgap) == (nf, gg)


def test_unknown_names_give_clear_errors():
    with pytest.raises(ro.ReadoutError, match="NIRCAM readout pattern 'FAST'"):
        ro.pattern("NIRCAM", "FAST")
    with pytest.raises(ro.ReadoutError, match="subarray"):
        ro.subarray("NIRISS", "SUB64P")
    with pytest.raises(ro.ReadoutError, match="does not fit"):
        ro.custom_subarray(2000, 1, 100, 10)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(PATTERNS), st.integers(1, 10), st.integers(1, 3),
       st.integers(1, 2048), st.integers(1, 2048))
def test_timing_properties(ip, ngroups, nints, xs, ys):
    inst, name = ip
    sub = ro.custom_subarray(1, 1, xs, ys)
    p = ro.pattern(inst, name)
    ngroups = min(ngroups, p.max_ngroups)
    t = ro.timing(inst, name, sub, ngroups, nints)
    assert t.tframe == pytest.approx((xs + 12) * (ys + 1) * 10e-6)
    assert t.tgroup == pytest.approx((p.nframes + p.groupgap) * t.tframe)
    assert t.nframes_per_integration == ngroups * (p.nframes + p.groupgap) - p.groupgap
    times = [t.group_mean_time(g) for g in range(ngroups)]
    assert all(b - a == pytest.approx(t.tgroup) for a, b in zip(times, times[1:]))
    assert t.integration_time == pytest.approx(t.tframe * t.nframes_per_integration)
