"""Many writer processes appending at once (while compaction runs): every row exactly once."""

from __future__ import annotations

import os
import subprocess
import sys

from catalogs.catalog import Catalog

N_PROC, N_BATCH, N_ROWS = 4, 6, 25

_WRITER = """
import sys
from catalogs.catalog import Catalog
root, w = sys.argv[1], int(sys.argv[2])
cat = Catalog(root)
for b in range({nb}):
    with cat.batch(f"writer{{w}}") as batch:
        for r in range({nr}):
            key = f"w{{w}}-b{{b}}-r{{r}}"
            batch.add("products", {{"product_id": key, "kind": "rate"}})
            batch.add("realisations", {{"recipe_key": key, "product_id": key, "run_id": str(w)}})
""".format(nb=N_BATCH, nr=N_ROWS)


def test_concurrent_writers_and_compaction_keep_every_row_once(tmp_path, repo_root):
    root = tmp_path / "catalog"
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(root), str(w)], cwd=repo_root,
                              env=env, stderr=subprocess.PIPE, text=True) for w in range(N_PROC)]
    cat = Catalog(root)
    compactions = 0
    while any(p.poll() is None for p in procs):  # compact under the writers' feet
        cat.compact("products")
        compactions += 1
    errors = [p.stderr.read() for p in procs if p.wait() != 0]
    assert not errors, errors
    expected = {f"w{w}-b{b}-r{r}" for w in range(N_PROC) for b in range(N_BATCH)
                for r in range(N_ROWS)}
    for table, col in (("products", "product_id"), ("realisations", "recipe_key")):
        ids = cat.sql(f"SELECT {col} FROM {table}").column(0).to_pylist()
        assert len(ids) == len(expected) and set(ids) == expected, (table, compactions)
    results = {r.table: r for r in cat.compact()}
    for table in ("products", "realisations"):
        assert results[table].rows_after == results[table].rows_before == len(expected)
        assert len(cat.files(table)) == 1
        assert cat.sql(f"SELECT count(*) FROM (SELECT DISTINCT * FROM {table})").column(0)[0].as_py() == len(expected)
