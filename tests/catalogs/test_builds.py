"""Builds as data: manifests parse, the registry checks pins, the lifecycle refuses what it must."""

from __future__ import annotations

import pytest

from catalogs import builds as buildlib
from catalogs.builds import BuildBook, BuildError
from transforms.registry import UnknownStep


@pytest.fixture
def book(tmp_path):
    return BuildBook(tmp_path / "builds")


def test_shipped_manifests_tell_a_quarterly_history(book):
    by_name = {b.name: b for b in book.all()}
    assert [b.status for b in book.all()].count("operations") == 1
    assert by_name["11.0.1"].status == "archived"
    assert by_name["11.2"].status == "candidate"
    assert by_name["11.2"].crds_context != by_name["11.1.1"].crds_context  # a new context
    assert by_name["11.1.1"].steps["saturation"].params == {"use_readpatt": False}  # workaround
    assert by_name["11.3"].crds_context == "latest"


def test_plan_applies_pins_and_defaults(book):
    ops = book.get("11.1.1")
    steps = {p.spec.name: p for p in buildlib.plan(ops, "detector1")}
    assert steps["saturation"].params.use_readpatt is False
    assert steps["clean_flicker_noise"].skip is True
    dev = {p.spec.name: p for p in buildlib.plan(book.get("11.3"), "detector1")}
    assert dev["clean_flicker_noise"].skip is False
    assert dev["saturation"].params.use_readpatt is True  # JWST's default


def test_an_archived_build_pins_an_older_version_of_a_step(book):
    old = {p.spec.name: p for p in buildlib.plan(book.get("9.3.1"), "detector1")}
    new = {p.spec.name: p for p in buildlib.plan(book.get("11.1.1"), "detector1")}
    assert old["charge_migration"].spec.version == "0.9"
    assert new["charge_migration"].spec.version == "1.0"
    assert old["charge_migration"].spec.apply is not new["charge_migration"].spec.apply


def test_manifest_round_trips_through_toml(book):
    for b in book.all():
        lock = buildlib.lock_text(b.lock) if b.lock is not None else None
        again = buildlib.parse_manifest(buildlib.dump_manifest(b), b.name, lock)
        assert again == b and again.lock == b.lock


@pytest.mark.parametrize("text, message", [
    ('name = "x"\nstatus = "operations"\npipeline_version = "1"\nsdp_version = "1"\n'
     'crds_context = "latest"\n', "fixed CRDS context"),
    ('name = "x"\nstatus = "shipped"\npipeline_version = "1"\nsdp_version = "1"\n'
     'crds_context = "jwst_0001.pmap"\n', "status"),
    ('name = "x"\nstatus = "development"\n', "missing"),
    ('name = "x"\nstatus = "development"\npipeline_version = "1"\nsdp_version = "1"\n'
     'crds_context = "jwst_0001.pmap"\n[steps.no_such_step]\nskip = true\n', "unknown step"),
    ('name = "x"\nstatus = "development"\npipeline_version = "1"\nsdp_version = "1"\n'
     'crds_context = "jwst_0001.pmap"\n[steps.jump]\nversion = "99.0"\n', "no version"),
    ('name = "x"\nstatus = "development"\npipeline_version = "1"\nsdp_version = "1"\n'
     'crds_context = "jwst_0001.pmap"\n[steps.jump]\nparams = { bogus = 1 }\n', "no parameter bogus"),
    ("not toml [", "not valid TOML"),
])
def test_bad_manifests_are_refused_with_a_clear_message(text, message):
    with pytest.raises((BuildError, UnknownStep), match=message):
        buildlib.parse_manifest(text, "x.toml")


def test_unknown_step_lists_what_exists():
    with pytest.raises(BuildError) as exc:
        buildlib.parse_manifest(
            'name = "x"\nstatus = "development"\npipeline_version = "1"\nsdp_version = "1"\n'
            'crds_context = "jwst_0001.pmap"\n[steps.jmup]\nskip = true\n', "x.toml")
    assert "jump" in str(exc.value) and "ramp_fit" in str(exc.value)


def test_promotion_keeps_one_operations_build(book):
    _, events = book.promote("11.2", "2025-03-01", "ops", "validated")
    statuses = {b.name: b.status for b in book.all()}
    assert statuses["11.2"] == "operations"
    assert statuses["11.1.1"] == "archived"
    assert list(statuses.values()).count("operations") == 1
    assert [(e["build"], e["to_status"]) for e in events] == [("11.1.1", "archived"),
                                                             ("11.2", "operations")]
    assert all(e["at"] is not None for e in events)


def test_latest_context_cannot_become_candidate(book):
    with pytest.raises(BuildError, match="fixed context"):
        book.promote("11.3", "2025-03-01")


def test_archived_builds_run_nothing_new(book):
    with pytest.raises(BuildError, match="archived"):
        buildlib.require_runnable(book.get("11.0.1"))
    with pytest.raises(BuildError, match="only development and candidate"):
        book.promote("11.0.1", "2025-03-01")


def test_new_build_copies_operations_and_refuses_duplicates(book):
    b, events = book.new("12.0", crds_context="jwst_0002.pmap")
    assert b.status == "development" and b.crds_context == "jwst_0002.pmap"
    ops = book.get("11.1.1")
    # it runs exactly what the operations build runs (its lock, pinned), the context aside
    from catalogs.builds import resolve_lock
    assert resolve_lock(b)["stages"] == ops.lock["stages"]
    assert b.steps["ramp_fit"].note == ops.steps["ramp_fit"].note
    assert events[0]["event"] == "created"
    with pytest.raises(BuildError, match="exists already"):
        book.new("12.0")


def test_unknown_build_lists_known(book):
    with pytest.raises(BuildError, match="known builds: 9.3.1, 11.0.1, 11.1.1, 11.2, 11.3"):
        book.get("10.0")


def test_latest_resolves_to_newest_context(book):
    assert buildlib.resolve_context(book.get("11.3"), ["jwst_0001.pmap", "jwst_0002.pmap"]) == "jwst_0002.pmap"
    with pytest.raises(BuildError, match="does not have"):
        buildlib.resolve_context(book.get("11.2"), ["jwst_0001.pmap"])
