"""The object store: atomic puts, verified gets, sharded layout, any fsspec URL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import numpy as np
import pytest

from store.errors import BadId, CorruptObject, MissingObject, StoreError
from store.identity import hash_bytes, product_id
from store.objects import TMP_PREFIX, ObjectStore
from transforms.model import DataModel


def _model(n: int = 64, seed: int = 0) -> DataModel:
    rng = np.random.default_rng(seed)
    return DataModel("rate", {"data": rng.normal(size=(n, n)).astype("f4"),
                              "dq": rng.integers(0, 4, (n, n)).astype("u4")},
                     {"instrument.name": "NIRCAM", "seed": seed})


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path):
    if request.param == "local":
        return ObjectStore(tmp_path / "store")
    return ObjectStore(f"memory://store-{uuid.uuid4().hex}")


def _flip_byte(store: ObjectStore, ident: str, at: int = -1) -> None:
    path = store.path_of(ident)
    data = bytearray(store.fs.cat_file(path))
    data[at] ^= 0x01
    if store.local:
        os.chmod(path, 0o644)
    store.fs.pipe_file(path, bytes(data))


def test_put_get_has_ids(store):
    m = _model()
    assert not store.has(product_id(m))
    pid = store.put(m)
    assert pid == product_id(m) and store.has(pid)
    algo, hexd = pid.split(":")
    assert store.path_of(pid).endswith(f"objects/{algo}/{hexd[:2]}/{hexd[2:]}")
    back = store.get(pid)
    assert np.array_equal(back["data"], m["data"]) and dict(back.meta) == dict(m.meta)
    assert store.put(m) == pid  # a no-op
    blob = store.put_bytes(b"reference file bytes")
    assert blob == hash_bytes(b"reference file bytes")
    assert store.get_bytes(blob) == b"reference file bytes"
    assert sorted(store.ids()) == sorted([pid, blob])
    assert store.verify() == [] and store.check(pid) is None


def test_objects_are_never_rewritten(tmp_path):
    s = ObjectStore(tmp_path)
    pid = s.put(_model())
    st1 = os.stat(s.path_of(pid))
    s.put(_model())
    st2 = os.stat(s.path_of(pid))
    assert (st1.st_ino, st1.st_mtime_ns) == (st2.st_ino, st2.st_mtime_ns)
    assert not os.stat(s.path_of(pid)).st_mode & 0o222  # stored read-only


def test_flipped_byte_makes_get_raise_and_verify_fail(store):
    pid = store.put(_model())
    other = store.put(_model(seed=1))
    _flip_byte(store, pid, at=-5)
    with pytest.raises(CorruptObject) as exc:
        store.get(pid)
    assert pid in str(exc.value) and store.path_of(pid) in str(exc.value)
    problems = store.verify()
    assert [p for p, _ in problems] == [pid]
    assert store.check(other) is None and store.get(other).kind == "rate"


def test_missing_and_bad_ids(store):
    missing = hash_bytes(b"never stored")
    with pytest.raises(MissingObject, match=missing):
        store.get(missing)
    assert store.check(missing) == "missing"
    with pytest.raises(BadId):
        store.get("sha256:nothex")


def test_an_array_changed_during_put_is_not_stored(store):
    base = np.zeros(4096, "f4")
    m = DataModel("rate", {"data": base}, {})
    real = type(store)._write

    def mutate_then_write(self, ident, chunks):
        base[0] = 1.0  # another thread writes the caller's array between hashing and writing
        return real(self, ident, chunks)

    store._write = mutate_then_write.__get__(store)
    with pytest.raises(StoreError, match="changed while it was being stored"):
        store.put(m)
    assert list(store.ids()) == []


def test_local_get_is_mapped_and_aligned(tmp_path):
    s = ObjectStore(tmp_path)
    m = _model()
    back = s.get(s.put(m))
    for a in back.arrays.values():
        assert a.ctypes.data % 64 == 0 and not a.flags.writeable
        assert not a.flags.owndata  # a view on the mapped file, not a copy


_KILLED_WRITER = """
import sys, time
import numpy as np
from store.objects import ObjectStore
from store.identity import product_id
from transforms.model import DataModel

real = ObjectStore._write_local
def slow(self, final, parent, tmp, chunks, check=None):
    def gen():
        for i, c in enumerate(chunks):
            yield c
            if i == 1:
                print("MIDWAY", flush=True)
                time.sleep(120)
    return real(self, final, parent, tmp, gen(), check)
ObjectStore._write_local = slow

m = DataModel("rate", {"data": np.arange(1 << 18, dtype="f4"), "dq": np.ones(1 << 16, "u4")}, {})
print(product_id(m), flush=True)
ObjectStore(sys.argv[1]).put(m)
"""


def test_writer_killed_mid_put_leaves_no_object(tmp_path, repo_root):
    root = tmp_path / "store"
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(root)], cwd=repo_root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = proc.stdout.readline().strip()
        assert proc.stdout.readline().strip() == "MIDWAY", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    s = ObjectStore(root)
    shard = os.path.dirname(s.path_of(pid))
    leftovers = [n for n in os.listdir(shard) if n.startswith(TMP_PREFIX)]
    assert len(leftovers) == 1 and os.path.getsize(os.path.join(shard, leftovers[0])) > 0
    assert not s.has(pid) and list(s.ids()) == [] and s.verify() == []
    with pytest.raises(MissingObject):
        s.get(pid)
    m = DataModel("rate", {"data": np.arange(1 << 18, dtype="f4"), "dq": np.ones(1 << 16, "u4")}, {})
    assert s.put(m) == pid
    assert np.array_equal(s.get(pid)["data"], m["data"])
    assert s.clean_tmp() == 1 and list(s.ids()) == [pid]
