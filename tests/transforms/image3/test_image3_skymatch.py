"""skymatch: sky statistics, the four methods, subtraction, degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from image3_synth import make_program
from transforms import dq as DQ
from transforms.image3.skymatch import (SkymatchError, SkymatchParams, sky_statistic, skymatch,
                                        solve_offsets)


@pytest.mark.parametrize("stat", ["mode", "median", "midpt", "mean"])
def test_sky_statistic_ignores_sources(stat):
    rng = np.random.default_rng(0)
    v = rng.normal(3.0, 0.5, 20000)
    v[:400] += rng.uniform(5, 100, 400)  # sources: 2% of the pixels, bright
    s = sky_statistic(v, stat)
    assert abs(s - 3.0) < 0.05
    assert np.isnan(sky_statistic(np.array([np.nan, np.inf]), stat))


def test_solve_offsets_recovers_levels_per_connected_group():
    true = np.array([1.0, 3.0, 2.5, 7.0])
    diffs = {(0, 1): (true[0] - true[1], 10.0), (1, 2): (true[1] - true[2], 5.0),
             (0, 2): (true[0] - true[2], 1.0)}
    down = solve_offsets(4, diffs, match_down=True)
    assert np.allclose(down[:3], true[:3] - 1.0) and down[3] == 0.0
    up = solve_offsets(4, diffs, match_down=False)
    assert np.allclose(up[:3], true[:3] - 3.0)


@pytest.fixture(scope="module")
def program():
    return make_program(seed=2, n_exp=3, sky=(1.0, 3.0, 2.5), max_err=0.0)


@pytest.mark.parametrize("method,expected", [
    ("local", [1.0, 3.0, 2.5]), ("global", [1.0, 1.0, 1.0]), ("match", [0.0, 2.0, 1.5]),
    ("global+match", [1.0, 3.0, 2.5])])
def test_methods_give_jwst_levels(program, method, expected):
    out = skymatch(program.truths, {}, SkymatchParams(skymethod=method))
    levels = [m.get("background.level") for m in out]
    assert np.allclose(levels, expected, atol=0.01)
    for m, raw in zip(out, program.truths):
        assert m.get("background.subtracted") is False
        assert np.array_equal(m["data"], raw["data"])  # subtract=False leaves data alone


def test_subtract_removes_the_level_and_keeps_inputs(program):
    before = [np.array(m["data"]) for m in program.truths]
    out = skymatch(program.truths, {}, SkymatchParams(skymethod="local", subtract=True))
    for m, raw, b in zip(out, program.truths, before):
        assert m.get("background.subtracted") is True
        assert np.allclose(m["data"], raw["data"] - np.float32(m.get("background.level")))
        assert np.array_equal(raw["data"], b)


def test_bad_parameters_are_refused(program):
    with pytest.raises(SkymatchError, match="skymethod"):
        skymatch(program.truths, {}, SkymatchParams(skymethod="nope"))
    with pytest.raises(SkymatchError, match="skylist"):
        skymatch(program.truths, {}, SkymatchParams(skymethod="user"))
    with pytest.raises(SkymatchError, match="skystat"):
        skymatch(program.truths, {}, SkymatchParams(skystat="max"))


@settings(max_examples=12, deadline=None)
@given(method=st.sampled_from(["local", "global", "match", "global+match"]),
       flagged=st.booleans(), nanfill=st.booleans())
def test_all_flagged_or_empty_data_does_not_crash(program, method, flagged, nanfill):
    ms = []
    for m in program.truths[:2]:
        d = np.full(m.shape, np.nan, np.float32) if nanfill else np.asarray(m["data"])
        dq = np.full(m.shape, DQ.DO_NOT_USE, np.uint32) if flagged else np.asarray(m["dq"])
        ms.append(m.replace(arrays={"data": d, "dq": dq}))
    out = skymatch(tuple(ms), {}, SkymatchParams(skymethod=method))
    levels = [m.get("background.level") for m in out]
    assert all(np.isfinite(levels))
    if flagged or nanfill:
        assert levels == [0.0, 0.0]
