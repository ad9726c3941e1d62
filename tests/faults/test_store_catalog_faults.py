"""Faults at the store and catalog level: SIGKILL mid-write, full disk, unwritable store.

A writer is a child interpreter; a patched ``os.fsync``/``Catalog._commit_file`` makes it stop
at an exact point (so the kill lands mid-write deterministically), and a seeded random delay
makes it stop anywhere (so no window is missed by construction). After each fault the store
and catalog must be consistent: no visible partial object or file, every row's object present
and intact, everything recorded before the fault still there, and the next write succeeds.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from catalogs.catalog import Catalog, CatalogWriteError
from store.codec import object_chunks
from store.identity import digest
from store.objects import TMP_PREFIX, ObjectStore, StoreWriteError
from transforms.model import DataModel

REPO = Path(__file__).resolve().parents[2]

CHILD_PRELUDE = """
import os, sys, time
import numpy as np
from store.objects import ObjectStore
from catalogs.catalog import Catalog
from transforms.model import DataModel

def model(seed, n=256):
    rng = np.random.default_rng(seed)
    return DataModel("rate", {"data": rng.random((n, n), dtype=np.float32)}, {"seed": seed})

def say(*a):
    print(*a, flush=True)
"""


def model(seed: int, n: int = 256) -> DataModel:
    rng = np.random.default_rng(seed)
    return DataModel("rate", {"data": rng.random((n, n), dtype=np.float32)}, {"seed": seed})


def spawn(code: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                                     os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-c", CHILD_PRELUDE + code], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def wait_for(proc: subprocess.Popen, word: str, timeout: float = 120) -> list[str]:
    """Lines the child printed up to and including the first one starting with ``word``."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"child exited before {word!r}: {proc.stderr.read()[-3000:]}")
        lines.append(line.strip())
        if line.startswith(word):
            return lines
    raise AssertionError(f"child did not print {word!r} in {timeout} s")


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, \
        f"the child ended by itself ({proc.returncode}): {proc.stderr.read()[-3000:]}"


def tmp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and
            (p.name.startswith(TMP_PREFIX) or p.name.endswith(".parquet.tmp"))]


def assert_consistent(store: ObjectStore, cat: Catalog) -> None:
    """Every realisation/product row names an intact object; realisations have products rows."""
    assert store.verify() == []
    rows = cat.sql("SELECT DISTINCT product_id FROM realisations UNION "
                   "SELECT DISTINCT product_id FROM products").column(0).to_pylist()
    for pid in rows:
        assert store.check(pid) is None, f"row points at a bad object {pid}: {store.check(pid)}"
    orphans = cat.sql("SELECT count(*) FROM realisations r WHERE r.product_id NOT IN "
                      "(SELECT product_id FROM products)").column(0)[0].as_py()
    assert orphans == 0


# --- SIGKILL in the middle of a put -----------------------------------------------------------

def test_sigkill_mid_put_leaves_no_visible_object(tmp_path):
    root = tmp_path / "store"
    code = f"""
import store.objects as so
real = os.fsync
def fsync(fd):
    real(fd)
    say("STAGED")          # the whole object is in its temporary file, not yet linked
    time.sleep(600)
so.os.fsync = fsync
ObjectStore({str(root)!r}).put(model(1, 512))
"""
    proc = spawn(code)
    wait_for(proc, "STAGED")
    kill(proc)
    store = ObjectStore(root)
    left = tmp_files(root)
    assert len(left) == 1 and left[0].stat().st_size > 512 * 512 * 4  # killed mid-put indeed
    assert list(store.ids()) == [] and store.verify() == []
    m = model(1, 512)
    pid = digest(object_chunks(m), store.algo)
    assert not store.has(pid)
    assert store.clean_tmp() == 1 and tmp_files(root) == []
    assert store.put(m) == pid and store.check(pid) is None
    assert np.array_equal(store.get(pid).arrays["data"], m.arrays["data"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_a_random_moment_of_many_puts(tmp_path, seed):
    root = tmp_path / "store"
    code = f"""
s = ObjectStore({str(root)!r})
say("READY")
for i in range(10_000):
    say("DONE", s.put(model(i, 384)))
"""
    proc = spawn(code)
    wait_for(proc, "READY")
    time.sleep(random.Random(seed).uniform(0.05, 0.6))
    kill(proc)
    # the kill may cut the last report mid-line: a "DONE" without its id was not reported
    done = [w[1] for w in map(str.split, proc.stdout.read().splitlines())
            if len(w) == 2 and w[0] == "DONE"]
    store = ObjectStore(root)
    ids = set(store.ids())
    assert set(done) <= ids  # every put that returned is durable
    assert len(ids - set(done)) <= 1  # at most the one in flight (linked, not yet reported)
    assert store.verify() == []  # and nothing visible is partial
    assert len(tmp_files(root)) <= 1
    store.clean_tmp()
    pid = store.put(model(10**6))
    assert store.check(pid) is None


# --- SIGKILL in the middle of a catalog batch -------------------------------------------------

BATCH_CHILD = """
from catalogs.catalog import Catalog
store, cat = ObjectStore({store!r}), Catalog({cat!r})
import catalogs.catalog as cc
real_commit = cc.Catalog._commit_file
calls = [0]
def commit(self, tmp, final):
    calls[0] += 1
    if calls[0] == {pause_at}:
        say("PAUSED", final.split("/")[-2])
        time.sleep(600)
    return real_commit(self, tmp, final)
cc.Catalog._commit_file = commit
pid = store.put(model(7, 64))
with cat.batch("child") as b:
    b.add("products", {{"product_id": pid, "kind": "rate"}})
    b.add("realisations", {{"recipe_key": "sha256:" + "cd" * 32, "product_id": pid}})
    b.add("run_steps", {{"run_id": "child", "build": "b", "subject": "s", "stage": "detector1",
                        "step": "ramp_fit", "status": "ok"}})
say("WRITTEN")
"""


@pytest.mark.parametrize("pause_at,visible", [(1, set()), (2, {"products"}),
                                              (3, {"products", "realisations"})])
def test_sigkill_mid_batch_leaves_a_consistent_prefix(tmp_path, pause_at, visible):
    store_root, cat_root = tmp_path / "store", tmp_path / "catalog"
    cat = Catalog(cat_root)
    cat.write("runs", [{"run_id": "earlier", "build": "b", "command": "test"}], "earlier")
    before = cat.count("runs")
    proc = spawn(BATCH_CHILD.format(store=str(store_root), cat=str(cat_root), pause_at=pause_at))
    lines = wait_for(proc, "PAUSED")
    assert lines[-1].split()[1] == ["products", "realisations", "run_steps"][pause_at - 1]
    kill(proc)
    counts = {t: cat.count(t) for t in ("products", "realisations", "run_steps")}
    assert {t for t, n in counts.items() if n} == visible  # a prefix in WRITE_ORDER
    assert all(n in (0, 1) for n in counts.values())
    assert cat.count("runs") == before  # what was recorded before is intact
    store = ObjectStore(store_root)
    assert_consistent(store, cat)
    assert all(".parquet.tmp" not in f for t in counts for f in cat.files(t))
    staged = [p for p in tmp_files(cat_root)]
    assert len(staged) == 3 - len(visible)  # the batch's files not yet renamed
    assert cat.clean_tmp() == 0  # too young: could be a live writer's
    assert cat.clean_tmp(min_age_s=0) == len(staged) and tmp_files(cat_root) == []
    # The next write succeeds and compaction keeps every row.
    cat.write("run_steps", [{"run_id": "next", "build": "b", "subject": "s", "stage": "d",
                             "step": "x", "status": "ok"}], "next")
    assert cat.count("run_steps") == counts["run_steps"] + 1
    cat.compact()
    assert cat.count("run_steps") == counts["run_steps"] + 1 and cat.count("runs") == before


@pytest.mark.parametrize("seed", [11, 12])
def test_sigkill_at_a_random_moment_of_many_batches(tmp_path, seed):
    store_root, cat_root = tmp_path / "store", tmp_path / "catalog"
    code = f"""
store, cat = ObjectStore({str(store_root)!r}), Catalog({str(cat_root)!r})
say("READY")
for i in range(10_000):
    pid = store.put(model(i, 32))                  # objects before rows
    with cat.batch(f"w{{i}}") as b:
        b.add("products", {{"product_id": pid, "kind": "rate"}})
        b.add("realisations", {{"recipe_key": f"sha256:{{i:064x}}", "product_id": pid}})
    say("DONE", i)
"""
    proc = spawn(code)
    wait_for(proc, "READY")
    time.sleep(random.Random(seed).uniform(0.1, 1.0))
    kill(proc)
    done = [int(ln.split()[1]) for ln in proc.stdout.read().splitlines() if ln.startswith("DONE")]
    cat, store = Catalog(cat_root), ObjectStore(store_root)
    n_real = cat.count("realisations")
    assert len(done) <= n_real <= len(done) + 1, (len(done), n_real, cat.files("realisations"))
    assert_consistent(store, cat)
    cat.write("realisations", [{"recipe_key": "sha256:" + "ee" * 32,
                                "product_id": store.put(model(96, 8))}], "after")
    assert cat.count("realisations") == n_real + 1


# --- full disk, file too large, unwritable ---------------------------------------------------

@pytest.fixture
def full_disk(monkeypatch):
    """Make every fsync fail as a full disk does (delayed allocation reports it there)."""
    def arm():
        def fsync(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(os, "fsync", fsync)
    return arm


def test_full_disk_on_put_is_one_clear_error_and_loses_nothing(tmp_path, full_disk):
    store = ObjectStore(tmp_path / "store")
    kept = store.put(model(1))
    full_disk()
    with pytest.raises(StoreWriteError) as err:
        store.put(model(2))
    msg = str(err.value)
    assert "\n" not in msg and "No space left on device" in msg and "nothing was stored" in msg
    assert isinstance(err.value.__cause__, OSError) and err.value.__cause__.errno == errno.ENOSPC
    assert list(store.ids()) == [kept] and store.check(kept) is None
    assert tmp_files(tmp_path) == []


def test_full_disk_on_a_batch_records_none_of_it(tmp_path, full_disk):
    cat = Catalog(tmp_path / "catalog")
    cat.write("products", [{"product_id": "sha256:" + "aa" * 32, "kind": "rate"}], "before")
    files = sorted(p for p in (tmp_path / "catalog").rglob("*") if p.is_file())
    full_disk()
    with pytest.raises(CatalogWriteError) as err:
        with cat.batch("during") as b:
            b.add("products", {"product_id": "sha256:" + "bb" * 32, "kind": "rate"})
            b.add("realisations", {"recipe_key": "sha256:" + "cc" * 32,
                                   "product_id": "sha256:" + "bb" * 32})
    msg = str(err.value)
    assert "\n" not in msg and "No space left on device" in msg and "not recorded" in msg
    assert sorted(p for p in (tmp_path / "catalog").rglob("*") if p.is_file()) == files
    assert cat.count("products") == 1 and cat.count("realisations") == 0


def _limit_file_size(nbytes: int):
    def pre():
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return pre


def test_file_size_limit_in_a_real_process(tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse the write (EFBIG), as a quota would."""
    root = tmp_path / "store"
    code = f"""
from store.objects import StoreWriteError
s, c = ObjectStore({str(root)!r}), Catalog({str(tmp_path / 'catalog')!r})
say("SMALL", s.put(model(1, 32)))
c.write("products", [{{"product_id": "sha256:" + "aa" * 32, "kind": "rate"}}], "small")
try:
    s.put(model(2, 512))
except StoreWriteError as exc:
    say("ERROR", exc)
"""
    proc = spawn(code, preexec_fn=_limit_file_size(256 * 1024))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    lines = dict(ln.split(" ", 1) for ln in out.splitlines())
    assert "File too large" in lines["ERROR"] and "nothing was stored" in lines["ERROR"]
    store = ObjectStore(root)
    assert list(store.ids()) == [lines["SMALL"]] and store.verify() == []
    assert tmp_files(tmp_path) == []
    assert Catalog(tmp_path / "catalog").count("products") == 1


def _without_dac_override() -> None:
    """Child side: drop CAP_DAC_OVERRIDE from the bounding set, so that after exec even root
    is held to file permissions (PR_CAPBSET_DROP = 24, CAP_DAC_OVERRIDE = 1)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(24, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")


def test_unwritable_store_and_catalog_are_clear_errors(tmp_path):
    """A store/catalog the process may not write: one-line errors, the data stays readable."""
    base = tmp_path / "ro"
    store, cat = ObjectStore(base / "store"), Catalog(base / "catalog")
    kept = store.put(model(1, 32))
    cat.write("products", [{"product_id": kept, "kind": "rate"}], "owner")
    dirs = [p for p in [base, *base.rglob("*")] if p.is_dir()]
    for p in dirs:
        p.chmod(0o555)
    code = f"""
from store.objects import StoreWriteError
from catalogs.catalog import CatalogWriteError
s, c = ObjectStore({str(base / 'store')!r}), Catalog({str(base / 'catalog')!r})
say("READ", s.get({kept!r}).kind, c.count("products"))
try:
    s.put(model(2, 32))
except StoreWriteError as exc:
    say("STORE", exc)
try:
    c.write("products", [{{"product_id": "sha256:" + "bb" * 32, "kind": "rate"}}], "intruder")
except CatalogWriteError as exc:
    say("CATALOG", exc)
"""
    try:
        proc = spawn(code, preexec_fn=_without_dac_override if os.geteuid() == 0 else None)
        out, err = proc.communicate(timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot take write permission away from a root child here: {exc}")
    finally:
        for p in dirs:
            p.chmod(0o755)
    assert proc.returncode == 0, err[-3000:]
    lines = dict(ln.split(" ", 1) for ln in out.splitlines())
    assert lines["READ"] == "rate 1"
    assert "Permission denied" in lines["STORE"] and "cannot write object" in lines["STORE"]
    assert "Permission denied" in lines["CATALOG"] and "not recorded" in lines["CATALOG"]
    assert list(store.ids()) == [kept] and cat.count("products") == 1
    assert tmp_files(base) == []
