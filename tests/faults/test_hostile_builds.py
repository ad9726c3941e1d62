"""Hostile builds: malformed manifests, hand edits of recorded ones, lifecycle changes that
are not allowed, a context that is not there or does not resolve, promotion without a
candidate run, interrupted and concurrent changes, a full disk. Each is one clear line; the
other builds still list; nothing recorded changes."""

from __future__ import annotations

import errno
import json
import re
import shutil
import threading
from pathlib import Path

import pytest

from catalogs import builds as buildlib
from tests.faults.conftest import BUILD, assert_intact, cli, one_error, snapshot

LOCK_RE = re.compile(r'^lock = ".*"$', re.M)


def _manifest(ws, name: str) -> Path:
    return Path(ws.builds_dir) / f"{name}.toml"


def _edit(ws, name: str, *pairs: tuple[str, str]) -> None:
    p = _manifest(ws, name)
    text = p.read_text()
    for old, new in pairs:
        assert old in text or old == "", (old, name)
        text = text.replace(old, new, 1) if old else text + new
    p.write_text(text)


def _listed(out: str) -> set[str]:
    return {ln.split()[0] for ln in out.splitlines()[2:] if ln and not ln.startswith("(")}


# --- malformed manifests -------------------------------------------------------------------

BASE = ('name = "{name}"\nstatus = "development"\npipeline_version = "1"\nsdp_version = "1"\n'
        'crds_context = "jwst_0001.pmap"\n')

BAD = {
    "not-toml": "name = \n[[[",
    "empty": "",
    "binary": "\x00\x01\x02garbage\xff",
    "missing-status": 'name = "{name}"\npipeline_version = "1"\nsdp_version = "1"\n'
                      'crds_context = "jwst_0001.pmap"\n',
    "missing-context": 'name = "{name}"\nstatus = "development"\npipeline_version = "1"\n'
                       'sdp_version = "1"\n',
    "missing-everything": 'description = "nothing else"\n',
    "unknown-field": BASE + 'colour = "blue"\n',
    "unknown-step": BASE + "[steps.no_such_step]\nskip = true\n",
    "unknown-version": BASE + '[steps.jump]\nversion = "9.9"\n',
    "unknown-parameter": BASE + "[steps.jump]\nparams = { no_such_parameter = 1 }\n",
    "params-not-a-table": BASE + '[steps.jump]\nparams = "loud"\n',
    "pin-not-a-table": BASE + "[steps]\njump = 3\n",
    "steps-not-a-table": BASE + "steps = 3\n",
    "skip-not-a-bool": BASE + '[steps.jump]\nskip = "yes"\n',
    "version-a-table": BASE + "[steps.jump]\nversion = { a = 1 }\n",
    "pin-unknown-field": BASE + "[steps.jump]\nspeed = 11\n",
    "bad-status": BASE.replace("development", "production"),
    "bad-context": BASE.replace("jwst_0001.pmap", "../../etc/passwd"),
    "name-is-a-list": BASE.replace('name = "{name}"', 'name = ["{name}"]'),
    "names-another-build": BASE.replace('"{name}"', '"someone-else"'),
    "latest-candidate": BASE.replace("development", "candidate").replace("jwst_0001.pmap",
                                                                          "latest"),
    "candidate-without-lock": BASE.replace("development", "candidate"),
    "lock-file-missing": BASE + 'lock = "sha256:' + "0" * 64 + '"\n',
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_malformed_manifest_is_named_and_the_others_still_list(workspace, case):
    ws = workspace
    ws.builds.names()
    name = f"bad-{case}"
    _manifest(ws, name).write_text(BAD[case].replace("{name}", name))
    rc, out, err = cli("--home", ws.root, "build", "list")
    one_error(rc, err, f"{name}", code=1)
    assert {"9.3.1", "11.0.1", "11.1.1", "11.2", "11.3"} <= _listed(out)
    rc, out, err = cli("--home", ws.root, "build", "show", name)
    one_error(rc, err, name)
    rc, out, err = cli("--home", ws.root, "export", name, ws.root / "out")
    one_error(rc, err, name)
    assert not (ws.root / "out").exists()


def _lock_variant(ws, tmp: str, mutate) -> str:
    """A copy of 11.2 named ``tmp`` (development, so no tamper check) with its lock mutated."""
    d = Path(ws.builds_dir)
    lock = json.loads((d / "11.2.lock.json").read_text())
    text = mutate(lock)
    (d / f"{tmp}.lock.json").write_text(text)
    manifest = (d / "11.2.toml").read_text().replace('name = "11.2"', f'name = "{tmp}"')
    manifest = manifest.replace('status = "candidate"', 'status = "development"')
    manifest = LOCK_RE.sub(f'lock = "{buildlib.lock_hash(text)}"', manifest)
    (d / f"{tmp}.toml").write_text(manifest)
    return tmp


def _bad_version(lock):
    lock["lock_version"] = 99
    return buildlib.lock_text(lock)


def _unknown_step(lock):
    lock["stages"]["detector1"]["steps"]["nosuch"] = {"version": "1.0", "skip": False, "params": {}}
    return buildlib.lock_text(lock)


def _malformed_entry(lock):
    lock["stages"]["detector1"]["steps"]["jump"] = "fast"
    return buildlib.lock_text(lock)


def _bad_order(lock):
    lock["stages"]["detector1"]["orders"]["*"].append("nosuch")
    return buildlib.lock_text(lock)


LOCKS = {"not-json": lambda lock: "{not json", "a-list": lambda lock: "[1, 2]\n",
         "wrong-version": _bad_version, "unknown-step": _unknown_step,
         "malformed-entry": _malformed_entry, "order-names-unknown-step": _bad_order}


@pytest.mark.parametrize("case", sorted(LOCKS))
def test_a_bad_lock_is_named(workspace, case):
    ws = workspace
    ws.builds.names()
    name = _lock_variant(ws, f"lock-{case}", LOCKS[case])
    rc, out, err = cli("--home", ws.root, "build", "show", name)
    one_error(rc, err, name)
    rc, out, err = cli("--home", ws.root, "build", "list")
    one_error(rc, err, name, code=1)
    assert BUILD in _listed(out)


def test_a_lock_that_does_not_match_its_manifest(workspace):
    ws = workspace
    ws.builds.names()
    d = Path(ws.builds_dir)
    (d / "11.2.lock.json").write_text((d / "11.2.lock.json").read_text().replace("false", "true", 1))
    rc, out, err = cli("--home", ws.root, "build", "show", "11.2")
    one_error(rc, err, "11.2.lock.json", "does not match")


# --- hand edits of recorded manifests ------------------------------------------------------

TAMPER = {
    "archived-back-to-candidate": ("11.0.1", [('status = "archived"', 'status = "candidate"')]),
    "archived-to-development-new-context": ("11.0.1", [
        ('status = "archived"', 'status = "development"'),
        ('crds_context = "jwst_0001.pmap"', 'crds_context = "jwst_0002.pmap"')]),
    "second-operations-build": ("11.2", [('status = "candidate"', 'status = "operations"')]),
    "candidate-context-changed": ("11.2", [('crds_context = "jwst_0002.pmap"',
                                            'crds_context = "jwst_0001.pmap"')]),
    "operations-description": ("11.1.1", [("description = ", 'description = "edited" #')]),
    "operations-archived-by-hand": ("11.1.1", [('status = "operations"', 'status = "archived"')]),
    "operations-date-moved": ("11.1.1", [('operations_date = "2024-12-03"',
                                          'operations_date = "2030-01-01"')]),
    "archived-pin-added": ("9.3.1", [("", '\n[steps.jump]\nnote = "sneaked in"\n')]),
}


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_a_hand_edit_is_refused_named_and_repaired(hws, case):
    ws = hws
    name, pairs = TAMPER[case]
    before = snapshot(ws)
    _edit(ws, name, *pairs)
    rc, out, err = cli("--home", ws.root, "build", "list")
    one_error(rc, err, f"{name}.toml", "changed by hand", code=1)
    assert _listed(out) == {"9.3.1", "11.0.1", "11.1.1", "11.2", "11.3"} - {name}
    rc, out, err = cli("--home", ws.root, "build", "show", name)
    one_error(rc, err, f"{name}.toml")
    rc, out, err = cli("--home", ws.root, "export", name, ws.root / "x")
    one_error(rc, err, f"{name}.toml")
    rc, out, err = cli("--home", ws.root, "verify")
    one_error(rc, err, code=1)
    assert f"BAD build {name}" in out
    # repair puts back the recorded manifest and keeps the edited one aside
    rc, out, err = cli("--home", ws.root, "repair")
    assert rc == 0 and f"restored manifest builds/{name}.toml" in out, out + err
    assert list(Path(ws.builds_dir).glob(f"{name}.toml.edited-*"))
    rc, out, err = cli("--home", ws.root, "build", "list")
    assert rc == 0 and "error" not in err, err
    assert_intact(ws, before, grown=("builds", "build_events"))


def test_an_edited_lock_with_a_matching_manifest_is_still_refused(hws):
    """The careful forger: change the lock and write its new hash into the manifest."""
    ws = hws
    d = Path(ws.builds_dir)
    lock = json.loads((d / "11.2.lock.json").read_text())
    lock["stages"]["detector1"]["steps"]["jump"]["params"]["rejection_threshold"] = 99.0
    text = buildlib.lock_text(lock)
    (d / "11.2.lock.json").write_text(text)
    _edit(ws, "11.2", *[(m, f'lock = "{buildlib.lock_hash(text)}"')
                        for m in LOCK_RE.findall(_manifest(ws, "11.2").read_text())])
    rc, out, err = cli("--home", ws.root, "build", "show", "11.2")
    one_error(rc, err, "11.2.toml", "changed by hand")
    rc, out, err = cli("--home", ws.root, "repair")
    assert rc == 0, out + err
    assert ws.builds.get("11.2").lock["stages"]["detector1"]["steps"]["jump"]["params"][
        "rejection_threshold"] != 99.0


def test_a_development_build_made_operations_by_hand(hws):
    ws = hws
    d = Path(ws.builds_dir)
    shutil.copy(d / "11.2.lock.json", d / "11.3.lock.json")
    lock_line = LOCK_RE.findall(_manifest(ws, "11.2").read_text())[0]
    _edit(ws, "11.3", ('status = "development"', f'status = "operations"\n{lock_line}'),
          ('crds_context = "latest"', 'crds_context = "jwst_0002.pmap"'))
    rc, out, err = cli("--home", ws.root, "build", "show", "11.3")
    one_error(rc, err, "11.3.toml")
    assert ws.builds.operations().name == BUILD  # the forged one is not a candidate for it


def test_a_new_manifest_dropped_in_as_operations(hws):
    ws = hws
    d = Path(ws.builds_dir)
    shutil.copy(d / "11.2.lock.json", d / "12.0.lock.json")
    text = _manifest(ws, "11.2").read_text().replace('"11.2"', '"12.0"').replace(
        'status = "candidate"', 'status = "operations"')
    lock = json.loads((d / "12.0.lock.json").read_text())
    lock["build"] = "12.0"
    (d / "12.0.lock.json").write_text(buildlib.lock_text(lock))
    text = LOCK_RE.sub(f'lock = "{buildlib.lock_hash(buildlib.lock_text(lock))}"', text)
    _manifest(ws, "12.0").write_text(text)
    rc, out, err = cli("--home", ws.root, "build", "list")
    one_error(rc, err, "12.0", "no record", code=1)
    rc, out, err = cli("--home", ws.root, "build", "adopt", "12.0", "--why", "forged")
    one_error(rc, err, "one at a time")


def test_a_replayed_old_manifest_is_refused(hws):
    """Archive the candidate, then copy its old (candidate) manifest back."""
    ws = hws
    old = _manifest(ws, "11.2").read_text()
    rc, out, err = cli("--home", ws.root, "build", "archive", "11.2", "--why", "withdrawn")
    assert rc == 0, err
    _manifest(ws, "11.2").write_text(old)
    rc, out, err = cli("--home", ws.root, "build", "show", "11.2")
    one_error(rc, err, "11.2.toml", "recorded it as archived")


def test_a_deleted_operations_manifest(hws):
    ws = hws
    _manifest(ws, BUILD).unlink()
    rc, out, err = cli("--home", ws.root, "build", "list")
    assert rc == 0 and BUILD not in _listed(out), err
    rc, out, err = cli("--home", ws.root, "reprocess")
    one_error(rc, err, "no operations build")
    rc, out, err = cli("--home", ws.root, "repair")
    assert f"builds/{BUILD}.toml" in out


def test_a_junk_pending_file_is_ignored(hws):
    ws = hws
    (Path(ws.builds_dir) / ".11.2.toml.pending").write_text("junk = [")
    assert ws.builds.get("11.2").status == "candidate"
    rc, out, err = cli("--home", ws.root, "build", "list")
    assert rc == 0, err


def test_an_edited_development_build_is_fine(hws):
    """Development manifests are edited by hand: that is how pins are set."""
    ws = hws
    _edit(ws, "11.3", ("", '\n[steps.jump]\nparams = { rejection_threshold = 5.0 }\n'))
    rc, out, err = cli("--home", ws.root, "build", "show", "11.3")
    assert rc == 0 and "rejection_threshold=5.0" in out, err


def test_adopting_a_hand_edit_is_recorded(hws):
    ws = hws
    _edit(ws, "11.2", ('description = ', 'description = "reviewed" #'))
    assert cli("--home", ws.root, "build", "show", "11.2")[0] == 2
    rc, out, err = cli("--home", ws.root, "build", "adopt", "11.2", "--why", "typo fixed",
                       "--who", "ops")
    assert rc == 0, err
    assert ws.builds.get("11.2").description == "reviewed"
    ev = ws.catalog.sql("SELECT who, why FROM build_events WHERE event = 'adopted'").to_pylist()
    assert ev == [{"who": "ops", "why": "typo fixed"}]


# --- the lifecycle's rules -----------------------------------------------------------------

def _candidate_run(ws, build: str, exposures=None, status: str = "ok") -> str:
    """Run ``build`` over the exposures (every stage) and record its runs rows, as
    `calops reprocess` does."""
    import datetime as dt
    import uuid

    from flows import stages

    run_id = uuid.uuid4().hex[:12]
    t0 = dt.datetime.now(dt.timezone.utc)
    eids = exposures or ws.catalog.current_exposure_ids()
    for stage in ("detector1", "image2"):
        for e in eids:
            assert stages.run(ws, build, stage, e, run_id).status == "ok"
    for asn in stages.subjects(ws, "image3", eids):
        stages.run(ws, build, "image3", asn, run_id)
    ws.catalog.write("runs", [{"run_id": run_id, "build": build, "command": "test",
                               "started_at": t0, "finished_at": dt.datetime.now(dt.timezone.utc),
                               "status": status}], run_id)
    return run_id


def test_promotion_without_a_candidate_run_is_refused(hws):
    before = snapshot(hws)
    rc, out, err = cli("--home", hws.root, "build", "promote", "11.2")
    one_error(rc, err, "no successful candidate run")
    assert hws.builds.get("11.2").status == "candidate"
    assert_intact(hws, before)


def test_a_partial_run_is_not_a_candidate_run(hws):
    _candidate_run(hws, "11.2", status="partial")
    rc, out, err = cli("--home", hws.root, "build", "promote", "11.2")
    one_error(rc, err, "no successful candidate run")


def test_a_candidate_run_must_cover_every_exposure(hws):
    first = hws.catalog.current_exposure_ids()[:1]
    _candidate_run(hws, "11.2", first)
    rc, out, err = cli("--home", hws.root, "build", "promote", "11.2")
    one_error(rc, err, "do not cover 1 of 2")


def test_promotion_then_rollback_then_promotion_needs_a_new_run(hws):
    ws = hws
    _candidate_run(ws, "11.2")
    rc, out, err = cli("--home", ws.root, "build", "promote", "11.2", "--who", "ops",
                       "--why", "diff accepted")
    assert rc == 0 and "11.1.1: operations -> archived" in out, err
    assert ws.builds.operations().name == "11.2"
    rc, out, err = cli("--home", ws.root, "build", "rollback", "--why", "bad flats", "--who", "ops")
    assert rc == 0, err
    assert ws.builds.operations().name == BUILD and ws.builds.get("11.2").status == "candidate"
    events = ws.catalog.sql("SELECT build, event, from_status, to_status, who, why FROM "
                            "build_events WHERE event IN ('rolled_back', 'restored') "
                            "ORDER BY build").to_pylist()
    assert events == [
        {"build": BUILD, "event": "restored", "from_status": "archived",
         "to_status": "operations", "who": "ops", "why": "bad flats"},
        {"build": "11.2", "event": "rolled_back", "from_status": "operations",
         "to_status": "candidate", "who": "ops", "why": "bad flats"}]
    # back to candidate: its earlier run does not count any more
    rc, out, err = cli("--home", ws.root, "build", "promote", "11.2")
    one_error(rc, err, "no successful candidate run")
    assert_intact(ws)
    rc, out, err = cli("--home", ws.root, "build", "list")
    assert rc == 0, err


def test_a_new_exposure_after_the_candidate_run_must_be_run_too(hws, fault_sim_dir, tmp_path):
    ws = hws
    _candidate_run(ws, "11.2")
    src = sorted((fault_sim_dir / "uncal").glob("*.fits"))[0]
    extra = tmp_path / ("jw01234001001_01101_00009_nrca1_uncal.fits")
    extra.write_bytes(src.read_bytes())
    assert cli("--home", ws.root, "ingest", extra)[0] == 0
    rc, out, err = cli("--home", ws.root, "build", "promote", "11.2")
    one_error(rc, err, "do not cover 1 of 3", "00009")


def test_a_context_not_in_the_cache(hws):
    rc, out, err = cli("--home", hws.root, "build", "new", "11.9", "--from", "11.2", "--context",
                       "jwst_9999.pmap")
    one_error(rc, err, "jwst_9999.pmap", "not in the CRDS cache")
    assert "11.9" not in hws.builds.names()


def test_a_context_removed_from_the_cache_after_creation(hws):
    ws = hws
    assert cli("--home", ws.root, "build", "new", "11.9", "--from", "11.2")[0] == 0
    (Path(ws.crds_path) / "mappings" / "jwst" / "jwst_0002.pmap").unlink()
    rc, out, err = cli("--home", ws.root, "build", "promote", "11.9")
    one_error(rc, err, "jwst_0002.pmap", "not in the CRDS cache")
    assert ws.builds.get("11.9").status == "development"


def _broken_context(ws, name: str, drop: str) -> None:
    """jwst_0003.pmap: context 1 with an instrument mapping that lacks ``drop``."""
    maps = Path(ws.crds_path) / "mappings" / "jwst"
    imap = (maps / "jwst_nircam_0001.imap").read_text()
    imap = "\n".join(ln for ln in imap.splitlines() if f"'{drop}'" not in ln)
    (maps / "jwst_nircam_0003.imap").write_text(imap.replace("jwst_nircam_0001.imap",
                                                             "jwst_nircam_0003.imap"))
    pmap = (maps / "jwst_0001.pmap").read_text().replace("jwst_nircam_0001.imap",
                                                         "jwst_nircam_0003.imap")
    (maps / name).write_text(pmap.replace("jwst_0001.pmap", name))


@pytest.mark.parametrize("drop", ["dark", "flat", "gain"])
def test_a_context_that_does_not_resolve_for_the_exposures(hws, drop):
    ws = hws
    _broken_context(ws, "jwst_0003.pmap", drop)
    assert cli("--home", ws.root, "build", "new", "11.9", "--from", BUILD, "--context",
               "jwst_0003.pmap")[0] == 0
    rc, out, err = cli("--home", ws.root, "build", "promote", "11.9")
    one_error(rc, err, "does not resolve for 2 of 2")
    assert ws.builds.get("11.9").status == "development"


def test_a_garbled_context(hws):
    ws = hws
    (Path(ws.crds_path) / "mappings" / "jwst" / "jwst_0003.pmap").write_text("selector = {{{")
    assert cli("--home", ws.root, "build", "new", "11.9", "--from", BUILD, "--context",
               "jwst_0003.pmap")[0] == 0
    rc, out, err = cli("--home", ws.root, "build", "promote", "11.9")
    one_error(rc, err, "11.9")


@pytest.mark.parametrize("argv,words", [
    (("promote", "11.0.1"), ("archived", "rollback")),
    (("promote", BUILD), ("operations", "only development and candidate")),
    (("promote", "11.3"), ("latest",)),
    (("archive", "11.3"), ("development build",)),
    (("archive", "11.0.1"), ("archived already",)),
    (("rollback", "--to", "11.2", "--why", "x"), ("never in operations",)),
    (("rollback", "--to", BUILD, "--why", "x"), ("operations build already",)),
    (("rollback", "--to", "nope", "--why", "x"), ("unknown build",)),
    (("new", "11.2"), ("exists already",)),
    (("new", "../x"), ("letters, digits",)),
    (("new", "11.9", "--from", "nope"), ("unknown build",)),
    (("new", "11.9", "--context", "jwst_1.pmap"), ("must be like",)),
    (("show", "nope"), ("unknown build",)),
    (("adopt", "11.2"), ("--why",)),
    (("rollback",), ("--why",)),
])
def test_lifecycle_changes_that_are_not_allowed(hws, argv, words):
    before = snapshot(hws)
    rc, out, err = cli("--home", hws.root, "build", *argv)
    one_error(rc, err, *words)
    assert_intact(hws, before)


def test_rollback_to_a_tampered_build_is_refused(hws):
    ws = hws
    _candidate_run(ws, "11.2")
    assert cli("--home", ws.root, "build", "promote", "11.2")[0] == 0
    _edit(ws, BUILD, ("description = ", 'description = "x" #'))
    rc, out, err = cli("--home", ws.root, "build", "rollback", "--why", "try")
    one_error(rc, err, f"{BUILD}.toml", "changed by hand")
    assert ws.builds.operations().name == "11.2"


# --- interrupted, concurrent, full disk ------------------------------------------------------

def test_a_change_killed_after_its_record_is_finished_by_the_next_reader(hws):
    """The record is the commit point: a writer killed between the catalog batch and the
    rename leaves a pending manifest that the next reader puts in place."""
    from catalogs import lifecycle
    from dataclasses import replace

    ws = hws
    b = ws.builds.get("11.2")
    archived = replace(b, status="archived", archived_date="2030-01-01")
    pending = Path(ws.builds_dir) / ".11.2.toml.pending"
    pending.write_text(buildlib.dump_manifest(archived))
    lifecycle.record_change(ws.catalog, ws.store, [archived], [])
    # ... killed here: the manifest still says candidate
    assert "candidate" in _manifest(ws, "11.2").read_text()
    assert ws.builds.get("11.2").status == "archived"
    assert not pending.exists() and "archived" in _manifest(ws, "11.2").read_text()


def test_a_change_killed_before_its_record_changes_nothing(hws):
    from dataclasses import replace

    ws = hws
    b = ws.builds.get("11.2")
    pending = Path(ws.builds_dir) / ".11.2.toml.pending"
    pending.write_text(buildlib.dump_manifest(replace(b, status="archived")))
    assert ws.builds.get("11.2").status == "candidate"
    rc, out, err = cli("--home", ws.root, "build", "archive", "11.2", "--why", "now really")
    assert rc == 0 and ws.builds.get("11.2").status == "archived", err


@pytest.mark.parametrize("where", ["catalog", "store", "manifest"])
def test_a_full_disk_during_a_change_changes_nothing(hws, monkeypatch, where):
    from catalogs import catalog as cc
    from store import objects

    ws = hws
    before = snapshot(ws)
    text = _manifest(ws, "11.2").read_text()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "catalog":
        monkeypatch.setattr(cc.Catalog, "_stage_bytes", full)
    elif where == "store":
        monkeypatch.setattr(objects.ObjectStore, "_write_unchecked", full)
    else:
        monkeypatch.setattr(buildlib, "_atomic_write", full)
    rc, out, err = cli("--home", ws.root, "build", "archive", "11.2", "--why", "x")
    one_error(rc, err, "No space left on device")
    monkeypatch.undo()
    assert _manifest(ws, "11.2").read_text() == text
    assert not list(Path(ws.builds_dir).glob(".*.pending")) and not list(
        Path(ws.builds_dir).glob(".*.tmp"))
    assert ws.builds.get("11.2").status == "candidate"
    assert_intact(ws, before)


def test_two_concurrent_creations_of_one_build(hws):
    from flows.workspace import Workspace

    results = []

    def make():
        try:
            Workspace(hws.root).builds.new("12.0", "11.2")
            results.append("ok")
        except buildlib.BuildError as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=make) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1 and sum("exists already" in r for r in results) == 2
    n = hws.catalog.sql("SELECT count(*) FROM build_events WHERE build = '12.0'").column(0)[0]
    assert n.as_py() == 1
    assert_intact(hws)


def test_two_concurrent_promotions_to_operations_leave_one(hws):
    """Two operators promote two candidates at once: the lifecycle lock serialises them, so
    the second archives the first and there is one operations build, never two."""
    from flows.workspace import Workspace

    hws.builds.new("12.0", "11.2")
    hws.builds.promote("12.0", "2030-01-01")  # a second candidate
    out = []

    def go(name):
        try:
            Workspace(hws.root).builds.promote(name, "2030-01-02")
            out.append(name)
        except buildlib.BuildError as exc:
            out.append(str(exc))

    threads = [threading.Thread(target=go, args=(n,)) for n in ("11.2", "12.0")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(out) == ["11.2", "12.0"]
    good, bad = hws.builds.survey()
    assert not bad
    ops = [b.name for b in good if b.status == "operations"]
    assert len(ops) == 1
    archived_ops = hws.catalog.sql(
        "SELECT build FROM build_events WHERE from_status = 'operations' "
        "AND to_status = 'archived' ORDER BY \"at\"").column(0).to_pylist()
    assert archived_ops[0] == BUILD and archived_ops[1] != ops[0]
    assert_intact(hws)
