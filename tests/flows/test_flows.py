"""The Prefect flows on a temporary Prefect database: stages run as tasks that pass identities."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def prefect_harness(tmp_path_factory):
    """A temporary Prefect database and result storage (FIELD-NOTES: the harness alone leaks
    results between runs)."""
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect")
    old = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_LOCAL_STORAGE_PATH")}
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(home / "results")
    with prefect_test_harness(server_startup_timeout=180):
        yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_process_flow_runs_every_stage_then_reprocess_is_all_hits(prefect_harness, sim_ws):
    from flows import flows

    home = str(sim_ws.root)
    first = flows.process(home, "11.1.1")
    assert first and all(r["status"] == "ok" for r in first), [r for r in first if r["status"] != "ok"]
    stages = {r["stage"] for r in first}
    assert stages == {"detector1", "image2", "image3"}
    # tasks returned identities only: every output is a product id string in the store
    for r in first:
        assert r["outputs"] and all(isinstance(p, str) and p.startswith("sha256:")
                                    for p in r["outputs"].values())
        assert all(sim_ws.store.has(p) for p in r["outputs"].values())
    again = flows.reprocess(home, "11.1.1")
    assert len(again) == len(first)
    assert all(r["hit"] for r in again), [(r["stage"], r["subject"], r["reason"]) for r in again]
    i3 = [r for r in again if r["stage"] == "image3"]
    assert i3 and {"i2d", "catalog"} <= set(i3[0]["outputs"])


def test_reprocess_where_selects_exposures(prefect_harness, sim_ws):
    from flows import flows

    nis = sim_ws.catalog.current_exposure_ids("instrument = 'NIRISS'")
    assert nis, "the test program has a NIRISS exposure"
    res = flows.reprocess(str(sim_ws.root), "11.1.1", where="instrument = 'NIRISS'")
    assert {r["subject"] for r in res if r["stage"] != "image3"} == set(nis)


def test_listeners_see_each_task(prefect_harness, sim_ws):
    from flows import flows

    seen = []
    flows.LISTENERS.append(seen.append)
    try:
        eid = sim_ws.catalog.current_exposure_ids()[0]
        flows.stage(str(sim_ws.root), "11.1.1", "detector1", [eid])
    finally:
        flows.LISTENERS.remove(seen.append)
    assert [(s["stage"], s["subject"]) for s in seen] == [("detector1", eid)]
