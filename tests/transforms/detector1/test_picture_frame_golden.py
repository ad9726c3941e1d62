"""Golden id of picture_frame 1.0 (a NIRSpec full frame: the step does nothing on anything
else), and what it must do: take out a scaled copy of the reference pattern per group."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = str(Path(__file__).resolve().parents[1])
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from golden_ids import check  # noqa: E402

from transforms import registry  # noqa: E402
from transforms.model import DataModel  # noqa: E402
from transforms.sim.nirspec import picture_frame_pattern  # noqa: E402

identity = pytest.importorskip("store.identity", reason="product ids come from store.identity")
PINNED = ("picture_frame==1.0",)


def _inputs(detector="NRS1", amp=(0.0, 2.0, 4.5)):
    """Three groups: background ramp + integer noise + a scaled picture frame (a glow of
    about the noise per pixel, as on the detectors: much brighter and the background mask
    keeps only its low-noise edge pixels, which biases the edge level)."""
    rng = np.random.default_rng(7)
    pat = picture_frame_pattern(detector).astype(np.float64)
    base = 100 + rng.integers(0, 8, (2048, 2048))
    data = np.stack([base + 20 * g + rng.integers(0, 8, (2048, 2048)) + a * pat
                     for g, a in enumerate(amp)])[None].astype(np.float32)
    meta = {"instrument.name": "NIRSPEC", "instrument.detector": detector,
            "subarray.name": "FULL", "subarray.xstart": 1, "subarray.ystart": 1,
            "subarray.xsize": 2048, "subarray.ysize": 2048, "exposure.ngroups": 3,
            "exposure.nints": 1, "exposure.nframes": 1, "exposure.groupgap": 0,
            "exposure.frame_time": 10.0, "exposure.group_time": 10.0,
            "subarray.fastaxis": 2, "subarray.slowaxis": 1}
    ramp = DataModel("ramp", {"data": data, "groupdq": np.zeros(data.shape, np.uint8),
                              "pixeldq": np.zeros((2048, 2048), np.uint32)}, meta)
    one = np.ones((2048, 2048), np.float32)
    refs = {"pictureframe": DataModel("ref.pictureframe", {"data": pat.astype(np.float32)}),
            "gain": DataModel("ref.gain", {"data": one}),
            "readnoise": DataModel("ref.readnoise", {"data": 3 * one})}
    return ramp, refs


def test_golden_product_ids():
    ramp, refs = _inputs()
    spec = registry.get("picture_frame", "1.0")
    out = spec.apply(ramp, refs, spec.make_params())
    assert out.get("cal_step.picture_frame") == "COMPLETE"
    check({"picture_frame==1.0": identity.product_id(out)}, PINNED)


def test_the_pattern_goes_and_the_edge_level_with_it():
    ramp, refs = _inputs()
    spec = registry.get("picture_frame", "1.0")
    out = spec.apply(ramp, refs, spec.make_params())
    pat = refs["pictureframe"]["data"]
    before = ramp["data"][0, 2] - ramp["data"][0, 0]
    after = out["data"][0, 2] - out["data"][0, 0]
    edge = (pat > 0.5) & (pat < 2)
    centre = np.zeros_like(edge)
    centre[900:1100, 900:1100] = True
    glow = np.median(before[edge]) - np.median(before[centre])
    left = np.median(after[edge]) - np.median(after[centre])
    assert glow > 3 and abs(left) < 0.15 * glow  # measured: 3.42 -> 0.35 DN
    assert abs(np.median(after[edge])) < 0.5  # jwst subtracts the edge level too
    assert np.array_equal(out["data"][0, 0], ramp["data"][0, 0])


def test_only_nirspec_full_frames():
    spec = registry.get("picture_frame", "1.0")
    assert spec.skip_by_default and spec.instruments == frozenset({"NIRSPEC"})
    assert spec.keyword == "S_PCTFRM" and "pictureframe" in spec.reftypes
    ramp, refs = _inputs()
    sub = ramp.replace(meta={"subarray.name": "SUBS200A1"})
    assert spec.apply(sub, refs, spec.make_params()).get("cal_step.picture_frame") == "SKIPPED"
    assert not spec.applies_to({"instrument.name": "NIRCAM"})
