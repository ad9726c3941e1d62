"""The store and the catalog on an S3-compatible bucket (moto on loopback), by configuration only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from flows.cli import main
from store.errors import MissingObject
from store.objects import ObjectStore, StoreWriteError
from transforms.model import DataModel


def model(seed: int = 0, n: int = 8) -> DataModel:
    rng = np.random.default_rng(seed)
    return DataModel("rate", {"data": rng.random((n, n), dtype=np.float32),
                              "dq": np.zeros((n, n), np.uint32)}, {"exposure.type": "NRC_IMAGE"})


def test_store_and_catalog_live_in_the_bucket(make_s3_workspace):
    ws = make_s3_workspace()
    assert ws.store_url.startswith("s3://") and ws.catalog_url.startswith("s3://")
    assert ws.catalog_options == ws.store_options  # inherited: same protocol
    m = model(1)
    pid = ws.store.put(m)
    assert ws.store.put(m) == pid  # content-addressed: a second put is a no-op
    back = ws.store.get(pid)
    assert back.kind == "rate" and np.array_equal(back.arrays["data"], m.arrays["data"])
    assert list(ws.store.ids()) == [pid] and ws.store.verify() == []
    with ws.catalog.batch("s3-test") as b:
        b.add("products", {"product_id": pid, "kind": "rate", "subject": "jw_x"})
        b.add("realisations", {"recipe_key": "sha256:" + "ab" * 32, "product_id": pid})
    assert ws.catalog.realisations("sha256:" + "ab" * 32) == [pid]
    # The bytes really are in the bucket, not on local disk.
    assert ws.store.fs.exists(ws.store.path_of(pid))
    assert not (ws.root / "store").exists() and not (ws.root / "catalog").exists()
    files = ws.catalog.fs.find(ws.catalog.root)
    assert any(f.endswith(".parquet") for f in files)
    assert not any(f.endswith(".tmp") for f in files)  # staged files were renamed, not left


def test_endpoint_from_the_environment_alone(make_s3_workspace, s3_endpoint, monkeypatch):
    """No options in calops.toml: the standard AWS_ENDPOINT_URL is enough."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    ws = make_s3_workspace(with_options=False)
    assert ws.store_options == {} and ws.catalog_options == {}
    pid = ws.store.put(model(2))
    ws.catalog.write("products", [{"product_id": pid, "kind": "rate"}], "env-test")
    assert ws.catalog.sql("SELECT product_id FROM products").column(0).to_pylist() == [pid]


def test_cli_sql_compact_and_verify_on_s3(make_s3_workspace, capsys):
    ws = make_s3_workspace()
    pids = [ws.store.put(model(s)) for s in range(3)]
    for i, pid in enumerate(pids):  # three batches -> three files per table
        ws.catalog.write("products", [{"product_id": pid, "kind": "rate"}], f"w{i}")
    home = str(ws.root)
    assert main(["--home", home, "compact"]) == 0
    assert len(ws.catalog.files("products")) == 1
    capsys.readouterr()
    assert main(["--home", home, "sql", "SELECT count(*) AS n FROM products",
                 "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["n", "3"]
    assert main(["--home", home, "verify"]) == 0
    assert "all intact" in capsys.readouterr().out

    # An object deleted behind the catalog's back, and one corrupted, are both reported.
    ws.store.fs.rm(ws.store.path_of(pids[0]))
    ws.store.fs.pipe_file(ws.store.path_of(pids[1]), b"not the bytes")
    assert ws.store.check(pids[0]) == "missing" and "corrupt" in ws.store.check(pids[1])
    with pytest.raises(MissingObject):
        ws.store.get(pids[0])
    assert main(["--home", home, "verify"]) == 1
    out = capsys.readouterr().out
    assert f"BAD {pids[0]}: recorded in the catalog but missing" in out
    assert f"BAD {pids[1]}: object {pids[1]} is corrupt" in out


def test_rows_written_by_another_process_are_seen(make_s3_workspace, run_python):
    """s3fs caches listings; a catalog must still see files another process wrote since."""
    ws = make_s3_workspace()
    ws.catalog.write("products", [{"product_id": "sha256:" + "01" * 32, "kind": "rate"}], "me")
    assert ws.catalog.count("products") == 1  # lists (and would cache) the table directory
    code = ("from flows.workspace import Workspace\n"
            f"ws = Workspace({str(ws.root)!r})\n"
            "ws.catalog.write('products', [{'product_id': 'sha256:' + '02' * 32, "
            "'kind': 'rate'}], 'other')\n"
            "ws.store.put_bytes(b'from another process')\n")
    res = run_python(code)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert ws.catalog.count("products") == 2
    from catalogs.recovery import product_ids

    assert len(product_ids(ws.store)) == 1  # (the batches' record objects aside)


def test_missing_bucket_is_a_clear_one_line_error(s3_endpoint):
    store = ObjectStore("s3://no-such-bucket/store", endpoint_url=s3_endpoint)
    with pytest.raises(StoreWriteError) as err:
        store.put(model(3))
    msg = str(err.value)
    assert "\n" not in msg and "s3://no-such-bucket/store" in msg and "nothing was stored" in msg


@settings(max_examples=10, deadline=None)
@given(arr=hnp.arrays(st.sampled_from([np.float32, np.uint16, np.uint32]),
                      hnp.array_shapes(min_dims=1, max_dims=3, max_side=5)),
       meta=st.dictionaries(st.text(min_size=1, max_size=8), st.integers() | st.text(max_size=8),
                            max_size=3))
def test_an_object_has_the_same_id_and_content_on_s3_and_on_disk(s3_endpoint, tmp_path_factory,
                                                                  arr, meta):
    m = DataModel("rate", {"data": arr}, meta)
    local = ObjectStore(tmp_path_factory.mktemp("local"))
    remote = ObjectStore("s3://calops/hyp-store", endpoint_url=s3_endpoint)
    pid = local.put(m)
    assert remote.put(m) == pid
    back = remote.get(pid)
    assert back.arrays["data"].dtype == arr.dtype
    assert np.array_equal(back.arrays["data"], arr, equal_nan=True)
    assert dict(back.meta) == dict(m.meta)
    assert remote.get_bytes(pid) == local.get_bytes(pid)


def test_sigkill_mid_put_on_s3_leaves_no_visible_object(s3_endpoint):
    """A writer killed after uploading its temporary key, before the copy to the real key."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    url = "s3://calops/killed-put"
    code = f"""
import time, numpy as np
from store.objects import ObjectStore
from transforms.model import DataModel
s = ObjectStore({url!r}, endpoint_url={s3_endpoint!r})
def mv(*a, **k):
    print("UPLOADED", flush=True)
    time.sleep(600)
s.fs.mv = mv
s.put(DataModel("rate", {{"data": np.ones((256, 256), np.float32)}}, {{}}))
"""
    env = dict(os.environ, PYTHONPATH=str(repo))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=repo, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline()
        assert line.startswith("UPLOADED"), proc.stderr.read()[-3000:]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    store = ObjectStore(url, endpoint_url=s3_endpoint)
    m = DataModel("rate", {"data": np.ones((256, 256), np.float32)}, {})
    left = [p for p in store.fs.find(store.root) if "/.tmp-" in p]
    assert len(left) == 1  # the upload finished; the kill came before the copy
    assert list(store.ids()) == [] and store.verify() == []
    assert store.clean_tmp() == 1 and store.fs.find(store.root) == []
    pid = store.put(m)
    assert store.check(pid) is None and list(store.ids()) == [pid]


def test_options_tables_in_calops_toml(tmp_path):
    from flows.workspace import CONFIG_NAME, Workspace
    from store.errors import WorkspaceError

    root = tmp_path / "ws"
    root.mkdir()
    cfg = root / CONFIG_NAME
    cfg.write_text('[store]\nurl = "memory://calops-opts/store"\noptions = { skip_instance_cache = true }\n'
                   '[catalog]\nurl = "catalog"\n')
    ws = Workspace(root)
    assert ws.store_options == {"skip_instance_cache": True}
    assert ws.catalog_options == {}  # different protocol: nothing inherited
    assert ws.store.put_bytes(b"x") and "memory" in ws.store.fs.protocol
    cfg.write_text('[store]\nurl = "s3://b/s"\noptions = { endpoint_url = "http://127.0.0.1:1" }\n'
                   '[catalog]\nurl = "s3://b/c"\noptions = { anon = true }\n')
    ws = Workspace(root)
    assert ws.catalog_options == {"anon": True}  # an explicit table wins
    cfg.write_text('[store]\nurl = "store"\noptions = "endpoint=x"\n')
    with pytest.raises(WorkspaceError, match=r"\[store\] options .* must be a table"):
        Workspace(root).store_options
