"""Hostile exports: crafted subject and association names (from header values such as FILTER
and PUPIL, or odd source file names), targets that are files or in the way, existing files, a
full disk, a killed export. Nothing is ever written outside the target directory, names are
made of whitelisted characters, nothing is overwritten without --overwrite, and a failed
export leaves no file behind."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from tests.faults.conftest import BUILD, assert_intact, cli, one_error

SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


def _outputs(ws, stage: str) -> tuple[str, dict]:
    row = ws.catalog.sql("SELECT subject, product_id FROM run_steps WHERE stage = ? AND "
                         "status = 'ok' AND product_id LIKE '{%' ORDER BY subject LIMIT 1",
                         [stage]).to_pylist()[0]
    return row["subject"], json.loads(row["product_id"])


def _craft(ws, subject: str, stage: str) -> dict:
    """A successful run_steps row under the build for ``subject`` naming real products (as a
    run of an exposure or association with that name would record), and for an association
    its members."""
    real, outputs = _outputs(ws, stage)
    now = dt.datetime.now(dt.timezone.utc)
    ws.catalog.write("run_steps", [{"run_id": "crafted", "build": BUILD, "subject": subject,
                                    "stage": stage, "step": stage, "status": "ok",
                                    "crds_context": "jwst_0001.pmap", "product_id":
                                    json.dumps(outputs), "at": now}], "crafted")
    if stage == "image3":
        members = ws.catalog.association_members(real)
        ws.catalog.record_associations([{"asn_type": "image3", "products": [{
            "name": subject, "members": [{"expname": m, "exptype": "science"}
                                         for m in members + [subject + "_member"]]}]}])
    return outputs


def _everything_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


CRAFTED = ["../../x", "/etc/passwd", "..", ".", "a/b/c", "dir\\win", "café ü", "with space",
           "-rf", ".hidden", "x" * 400, "nul\x00byte", "new\nline", "~root", "$(touch pwned)",
           "%2e%2e%2fx", "jw01234-o001_t001_nircam_../../x", "jw01234-o001_t001_nircam_f150w/clear"]


@pytest.mark.parametrize("subject", CRAFTED, ids=lambda s: repr(s)[:30])
def test_crafted_names_never_escape_the_target(hws, tmp_path, subject):
    ws = hws
    stage = "image3" if subject.startswith("jw01234-o") else "detector1"
    outputs = _craft(ws, subject, stage)
    out = tmp_path / "deep" / "out"
    before = _everything_under(tmp_path)
    rc, stdout, err = cli("--home", ws.root, "export", BUILD, out)
    assert rc == 0 and "Traceback" not in err, err
    new = _everything_under(tmp_path) - before
    assert new and all(p == out or p.parent == out or p == out.parent for p in new), new
    names = sorted(p.name for p in out.iterdir())
    assert all(SAFE.match(n) and len(n) < 200 for n in names), names
    crafted = [n for n in names if not n.startswith("jw01234")
               or (stage == "image3" and subject not in n and "-" in n.split("_")[-2])]
    assert crafted or stage == "image3"
    for n in names:
        if n.endswith(".fits"):
            assert fits.getheader(out / n)["FILENAME"] == n
    if stage == "image3":
        asn = [n for n in names if n.endswith("_asn.json") and n.count("-") > 1 and
               "nircam_clear-f150w" not in n]
        assert asn
        doc = json.loads((out / asn[0]).read_text())
        assert all(SAFE.match(m["expname"]) for m in doc["products"][0]["members"])
        assert SAFE.match(doc["products"][0]["name"])
    assert set(outputs)  # the real products were written under the crafted (safe) name


def test_two_crafted_subjects_that_sanitise_alike_do_not_collide(hws, tmp_path):
    _craft(hws, "a/b", "detector1")
    _craft(hws, "a b", "detector1")
    rc, out, err = cli("--home", hws.root, "export", BUILD, tmp_path / "out", "--kind", "rate")
    assert rc == 0, err
    rates = [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith("a_b")]
    assert len(rates) == 2 and len(set(rates)) == 2


def test_the_association_files_load_in_jwst(hws, tmp_path):
    from jwst.associations import load_asn

    rc, out, err = cli("--home", hws.root, "export", BUILD, tmp_path / "out")
    assert rc == 0, err
    asns = sorted((tmp_path / "out").glob("*_asn.json"))
    assert len(asns) == 1
    with open(asns[0]) as f:
        asn = load_asn(f)
    members = asn["products"][0]["members"]
    assert len(members) == 2 and all((tmp_path / "out" / m["expname"]).exists() for m in members)
    rc, out, err = cli("--home", hws.root, "export", BUILD, tmp_path / "out2", "--no-asn")
    assert rc == 0 and not list((tmp_path / "out2").glob("*_asn.json"))


def test_an_existing_file_is_not_overwritten(hws, tmp_path):
    out = tmp_path / "out"
    assert cli("--home", hws.root, "export", BUILD, out)[0] == 0
    victim = sorted(out.glob("*_rate.fits"))[0]
    victim.write_bytes(b"the user's own file")
    extra = sorted(out.iterdir())
    rc, stdout, err = cli("--home", hws.root, "export", BUILD, out)
    one_error(rc, err, "exist already", "--overwrite", "nothing was written")
    assert victim.read_bytes() == b"the user's own file" and sorted(out.iterdir()) == extra
    rc, stdout, err = cli("--home", hws.root, "export", BUILD, out, "--overwrite")
    assert rc == 0 and victim.read_bytes() != b"the user's own file", err


def test_a_symlink_in_the_way_is_never_followed(hws, tmp_path):
    out = tmp_path / "out"
    assert cli("--home", hws.root, "export", BUILD, out, "--kind", "rate")[0] == 0
    target = sorted(out.glob("*_rate.fits"))[0]
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    target.unlink()
    target.symlink_to(outside)
    rc, stdout, err = cli("--home", hws.root, "export", BUILD, out, "--kind", "rate")
    one_error(rc, err, "exist already")
    rc, stdout, err = cli("--home", hws.root, "export", BUILD, out, "--kind", "rate",
                          "--overwrite")
    assert rc == 0, err
    assert outside.read_text() == "keep me" and not target.is_symlink()


@pytest.mark.parametrize("case", ["a-file", "under-a-file", "dev-null"])
def test_a_target_that_is_not_a_directory(hws, tmp_path, case):
    f = tmp_path / "file"
    f.write_text("x")
    target = {"a-file": f, "under-a-file": f / "sub", "dev-null": Path("/dev/null")}[case]
    rc, out, err = cli("--home", hws.root, "export", BUILD, target)
    one_error(rc, err, "directory" if case != "under-a-file" else "is a file")
    assert f.read_text() == "x"


def test_a_read_only_target(hws, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes everywhere")
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    rc, stdout, err = cli("--home", hws.root, "export", BUILD, out)
    one_error(rc, err, "not writable")


@pytest.mark.parametrize("argv,words", [
    (("export", "nope", "OUT"), ("unknown build",)),
    (("export", BUILD, "OUT", "--kind", "bogus"), ("invalid choice",)),
    (("export", BUILD), ("outdir",)),
])
def test_export_arguments(hws, tmp_path, argv, words):
    argv = tuple(str(tmp_path / "o") if a == "OUT" else a for a in argv)
    rc, out, err = cli("--home", hws.root, *argv)
    one_error(rc, err, *words)
    assert not (tmp_path / "o").exists()


def test_a_build_that_never_ran_exports_nothing(hws, tmp_path):
    rc, out, err = cli("--home", hws.root, "export", "11.2", tmp_path / "out")
    assert rc == 0 and "0 file(s)" in out


def test_a_full_disk_part_way_leaves_no_file(hws, tmp_path, monkeypatch):
    from store import fits as sfits

    real = sfits._write_atomic
    calls = [0]

    def full(hdul, path, overwrite):
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(hdul, path, overwrite)

    monkeypatch.setattr(sfits, "_write_atomic", full)
    out = tmp_path / "out"
    rc, stdout, err = cli("--home", hws.root, "export", BUILD, out)
    one_error(rc, err, "No space left on device")
    assert list(out.iterdir()) == []
    assert_intact(hws)


def test_a_killed_exports_temporary_file_is_cleaned_next_time(hws, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = out / f".jw_rate.fits.{dead}.1234.tmp"
    stale.write_bytes(b"half a file")
    assert cli("--home", hws.root, "export", BUILD, out)[0] == 0
    assert not stale.exists() and not list(out.glob(".*"))


def test_a_killed_export_leaves_only_whole_files(hws, tmp_path):
    """SIGKILL in the middle of an export: every visible file is complete (written under a
    temporary name and renamed), and the next export (with --overwrite) completes."""
    import signal
    import time

    from tests.faults.conftest import REPO

    out = tmp_path / "out"
    code = ("import sys, time\nfrom store import fits\nreal = fits._write_atomic\n"
            "def slow(h, p, o):\n    r = real(h, p, o)\n    print('WROTE', flush=True)\n"
            "    time.sleep(600)\n    return r\n"
            "fits._write_atomic = slow\nfrom flows.cli import main\n"
            f"sys.exit(main(['--home', {str(hws.root)!r}, 'export', {BUILD!r}, {str(out)!r}]))\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("WROTE")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    visible = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert len(visible) == 1 and fits.getheader(visible[0])["FILENAME"] == visible[0].name
    time.sleep(0.01)
    rc, stdout, err = cli("--home", hws.root, "export", BUILD, out, "--overwrite")
    assert rc == 0 and not list(out.glob(".*")), err


from hypothesis import given, strategies as st  # noqa: E402


@given(st.text(max_size=300))
def test_any_text_gives_a_safe_name_inside_the_directory(text):
    from store.names import safe_name, safe_path

    name = safe_name(text) + "_rate.fits"
    assert SAFE.match(name) and len(name) < 200
    p = safe_path("/tmp/calops-export-target", name)
    assert p.parent == Path("/tmp/calops-export-target")
    assert (safe_name(text) == text) == bool(SAFE.fullmatch(text) and len(text) <= 150
                                              and not text.endswith(".")
                                              and not text.startswith("_"))
