"""The rooms of DESIGN.md and who may import whom, checked on every module's imports
(function-level imports included)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("transforms", "store", "catalogs", "flows")

# room -> what of ours it may import (module prefixes)
ALLOWED = {
    "transforms": ("transforms",),
    # store: bytes and identity; of transforms only the data model, DQ bits and the steps'
    # declarations (their S_* keywords), never science
    "store": ("store", "transforms.model", "transforms.dq", "transforms.registry"),
    "catalogs": ("catalogs", "store", "transforms"),
    "flows": OURS,
}
# libraries a room must not use
FORBIDDEN = {
    "transforms": ("prefect", "duckdb", "pyarrow", "fsspec", "s3fs", "dask", "os.environ"),
    "store": ("prefect", "duckdb"),
    "catalogs": ("prefect",),
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
    return out


def _modules(room: str) -> list[Path]:
    return sorted(p for p in (ROOT / room).rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("room", OURS)
def test_a_room_imports_only_what_design_allows(room):
    bad = []
    for path in _modules(room):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in OURS and not name.startswith(ALLOWED[room]):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
            if top in FORBIDDEN.get(room, ()):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_transforms_read_no_environment_clock_or_files():
    """Pure transforms: every input an argument (DESIGN.md)."""
    words = re.compile(r"os\.environ|getenv|time\.time\(|time\.perf_counter|datetime\.now|"
                       r"(?<![\w.])open\(|np\.random\.seed|default_rng\(\)|np\.random\.rand")
    bad = []
    for path in _modules("transforms"):
        for m in words.finditer(path.read_text()):
            bad.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert not bad, "\n".join(bad)
