"""Locked builds cannot drift: a lock pins every step of every stage, and nothing registered or
changed later moves it; development builds float and say so."""

from __future__ import annotations

import dataclasses
import json

import pytest

from catalogs import builds as buildlib
from catalogs.builds import BuildBook, BuildError
from transforms import registry

LOCKED_SHIPPED = ("9.3.1", "11.0.1", "11.1.1", "11.2")


@pytest.fixture
def book(tmp_path):
    return BuildBook(tmp_path / "builds")


@pytest.fixture
def newer_ramp_fit():
    """A ramp_fit version newer than any shipped one, registered for one test only."""
    base = registry.get("ramp_fit", "1.1")

    @dataclasses.dataclass(frozen=True)
    class Params(base.params):  # a changed default too: it must not reach a lock either
        suppress_one_group: bool = False

    registry.register("ramp_fit", "9.9", "detector1", Params, base.reftypes, keyword="S_RAMP",
                      fit=base.fit, exec_only=base.exec_only)(base.apply)
    yield registry.get("ramp_fit", "9.9")
    del registry._REGISTRY[("ramp_fit", "9.9")]


def test_every_shipped_non_development_build_is_locked_over_every_step(book):
    for name in LOCKED_SHIPPED:
        b = book.get(name)
        assert b.locked and b.lock_hash.startswith("sha256:")
        lock = b.lock["stages"]
        for st in registry.stages().values():
            implemented = [n for n in st.all_steps if n in registry.steps()]
            assert sorted(lock[st.name]["steps"]) == sorted(implemented), (name, st.name)
            for entry in lock[st.name]["steps"].values():
                assert set(entry) == {"version", "skip", "params"}
    assert not book.get("11.3").locked


def test_operations_build_pins_ramp_fit_1_0_and_says_why(book):
    ops = book.get("11.1.1")
    assert ops.lock["stages"]["detector1"]["steps"]["ramp_fit"]["version"] == "1.0"
    assert "1.1" in ops.steps["ramp_fit"].note


def test_a_lock_writes_out_every_science_parameter_and_no_execution_only_one(book):
    entry = book.get("11.1.1").lock["stages"]["detector1"]["steps"]["jump"]
    fields = {f.name for f in dataclasses.fields(registry.get("jump", entry["version"]).params)}
    assert set(entry["params"]) == fields - {"maximum_cores"}


def test_a_new_version_or_default_never_changes_a_locked_plan(book, newer_ramp_fit):
    for name in LOCKED_SHIPPED:
        b = book.get(name)
        rf = next(p for p in buildlib.plan(b, "detector1") if p.spec.name == "ramp_fit")
        assert rf.spec.version == b.lock["stages"]["detector1"]["steps"]["ramp_fit"]["version"]
        assert rf.params.suppress_one_group is True


def test_a_development_build_floats_to_the_newest_version(book, newer_ramp_fit):
    dev = {p.spec.name: p for p in buildlib.plan(book.get("11.3"), "detector1")}
    assert dev["ramp_fit"].spec.version == "9.9"
    assert dev["ramp_fit"].params.suppress_one_group is False


def test_promotion_to_candidate_freezes_the_plan(book, newer_ramp_fit):
    book.new("12.0", base="11.3", crds_context="jwst_0002.pmap")
    cand, _ = book.promote("12.0", "2026-12-03")
    assert cand.status == "candidate" and cand.locked
    assert (book.dir / "12.0.lock.json").exists()
    again = book.get("12.0")
    assert again.lock == cand.lock
    assert again.lock["stages"]["detector1"]["steps"]["ramp_fit"]["version"] == "9.9"


def test_a_changed_lock_file_is_refused_naming_it(book):
    path = book.dir / "11.1.1.lock.json"
    lock = json.loads(path.read_text())
    lock["stages"]["detector1"]["steps"]["jump"]["params"]["rejection_threshold"] = 3.0
    path.write_text(buildlib.lock_text(lock))
    with pytest.raises(BuildError, match="11.1.1.lock.json .*changed"):
        book.get("11.1.1")


def test_a_missing_lock_file_is_refused(book):
    (book.dir / "11.2.lock.json").unlink()
    with pytest.raises(BuildError, match="lock file 11.2.lock.json is missing"):
        book.get("11.2")


def test_a_locked_status_without_a_lock_is_refused():
    text = ('name = "x"\nstatus = "candidate"\npipeline_version = "1"\nsdp_version = "1"\n'
            'crds_context = "jwst_0001.pmap"\n')
    with pytest.raises(BuildError, match="must carry its lock"):
        buildlib.parse_manifest(text, "x.toml")


def test_a_stage_newer_than_the_lock_is_refused_not_guessed(book):
    b = book.get("11.1.1")
    lock = dict(b.lock, stages={k: v for k, v in b.lock["stages"].items() if k != "image3"})
    b = dataclasses.replace(b, lock=lock)
    with pytest.raises(BuildError, match="locked before stage image3 existed"):
        buildlib.plan(b, "image3")


def test_build_as_dict_shows_every_step_of_every_stage(book):
    d = book.get("11.1.1").as_dict()
    for k in ("name", "status", "pipeline_version", "sdp_version", "crds_context",
              "candidate_date", "operations_date", "locked", "steps"):
        assert k in d
    assert d["locked"] is True
    assert set(d["steps"]) == set(registry.stage_names())
    assert d["steps"]["detector1"]["ramp_fit"]["version"] == "1.0"
    json.dumps(d)  # plain data


def test_relocking_a_shipped_build_only_adds_what_its_lock_did_not_name():
    from catalogs.relock_shipped import extend

    old = {"lock_version": 1, "build": "x", "stages": {"detector1": {
        "orders": {"*": ["dq_init", "ramp_fit"]},
        "steps": {"dq_init": {"version": "1.0", "skip": False, "params": {}},
                  "ramp_fit": {"version": "1.0", "skip": False, "params": {"a": 1}}}}}}
    new = {"lock_version": 1, "build": "x", "stages": {
        "detector1": {"orders": {"*": ["dq_init", "ipc", "ramp_fit"]},
                      "steps": {"dq_init": {"version": "1.0", "skip": False, "params": {}},
                                "ipc": {"version": "1.0", "skip": False, "params": {}},
                                "ramp_fit": {"version": "1.1", "skip": True, "params": {"a": 2}}}},
        "spec2": {"orders": {"*": ["srctype"]},
                  "steps": {"srctype": {"version": "1.0", "skip": False, "params": {}}}}}}
    got = extend(old, new)
    d1 = got["stages"]["detector1"]
    assert d1["steps"]["ramp_fit"] == old["stages"]["detector1"]["steps"]["ramp_fit"]
    assert d1["steps"]["ipc"]["version"] == "1.0"
    assert d1["orders"]["*"] == ["dq_init", "ipc", "ramp_fit"]
    assert got["stages"]["spec2"] == new["stages"]["spec2"]
