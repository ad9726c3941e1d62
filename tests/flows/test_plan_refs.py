"""References of a stage run are read when a step first asks for one and dropped after the
last step that reads it (flows.runner.PlanRefs): the products are those of an eager load."""

from __future__ import annotations

import gc

import numpy as np

from flows import runner
from store import fits as F
from transforms.detector1 import default_plan, run
from transforms.model import DataModel
from transforms.sim import references as R


def _small_refs(tmp_path, n=64):
    props = R.detector_properties("NRCA1", 1)
    ua = "2022-01-01T00:00:00"
    refs = {"mask": R.mask_ref(props, ua), "saturation": R.saturation_ref(props, ua),
            "superbias": R.superbias_ref(props, ua), "linearity": R.linearity_ref(props, ua),
            "dark": R.dark_ref(props, ua, 10.73676, 4, "NRC_IMAGE"),
            "gain": R.gain_ref(props, ua), "readnoise": R.readnoise_ref(props, ua)}
    paths = {}
    for rt, m in refs.items():
        win = {k: np.ascontiguousarray(v[..., :n, :n]) if getattr(v, "ndim", 0) >= 2 else v
               for k, v in m.arrays.items()}
        meta = {**m.meta, "subarray.name": "SUB64", "subarray.xstart": 1, "subarray.ystart": 1,
                "subarray.xsize": n, "subarray.ysize": n}
        paths[rt] = str(F.write_reference(DataModel(m.kind, win, meta), tmp_path / f"{rt}.fits"))
    return paths


def _uncal(n=64, ngroups=4):
    rng = np.random.default_rng(0)
    data = (10000 + np.cumsum(rng.integers(0, 200, (1, ngroups, n, n)), axis=1)).astype(np.uint16)
    meta = {"instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
            "exposure.readpatt": "RAPID", "exposure.nframes": 1, "exposure.groupgap": 0,
            "exposure.ngroups": ngroups, "exposure.nints": 1, "exposure.frame_time": 10.73676,
            "exposure.group_time": 10.73676, "subarray.name": "SUB64", "subarray.xstart": 1,
            "subarray.ystart": 1, "subarray.xsize": n, "subarray.ysize": n,
            "subarray.fastaxis": -1, "subarray.slowaxis": 2}
    return DataModel("uncal", {"data": data}, meta)


def test_lazy_references_give_the_eager_products_and_are_dropped_after_last_use(tmp_path):
    paths = _small_refs(tmp_path)
    eager = {rt: F.read_reference(p) for rt, p in paths.items()}
    plan = default_plan(eager, skip={"clean_flicker_noise": True})
    want = run(_uncal(), plan)

    steps = [(p, {rt: paths[rt] for rt in p.spec.reftypes + p.spec.optional_reftypes
                  if rt in paths}) for p in plan]
    refs = runner.PlanRefs(steps)
    held: dict[str, list[str]] = {}

    def on_step(name, _snap):
        refs.done(name)
        held[name] = refs.loaded()

    got = run(_uncal(), refs.plan(), on_step)
    for name in ("rate", "rateints"):
        for k, a in want[name].arrays.items():
            np.testing.assert_array_equal(got[name][k], a, err_msg=f"{name}.{k}")
    assert refs.loaded() == []
    # superbias is read by saturation and superbias: kept between them, dropped after
    assert paths["superbias"] in held["saturation"]
    assert paths["superbias"] not in held["superbias"]
    assert paths["dark"] not in held["dark_current"]
    assert paths["readnoise"] in held["jump"] and paths["readnoise"] not in held["ramp_fit"]
    assert paths["gain"] in held["ramp_fit"]  # gain_scale reads it after the fit


def test_load_reference_shares_a_live_model_and_keeps_only_small_ones(tmp_path, monkeypatch):
    p = _small_refs(tmp_path)["gain"]
    monkeypatch.setattr(runner, "_KEEP", runner.OrderedDict())
    a = runner.load_reference(p)
    assert runner.load_reference(p) is a  # shared while held (and small: kept)
    monkeypatch.setattr(runner, "KEEP_MAX_BYTES", 0)
    runner._KEEP.clear()
    q = _small_refs(tmp_path / "b")["dark"]
    b = runner.load_reference(q)
    ident = id(b)
    assert runner.load_reference(q) is b
    del b
    gc.collect()
    assert not any(k[0] == q for k in runner._LIVE.keys()), ident  # not kept once unused
