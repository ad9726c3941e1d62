"""The README's "Using it" block works as typed.

The first ```bash block under "## Using it" is parsed and each line run through the CLI, in a
temporary directory (its relative paths: sim/, report.html, out/) with a temporary
CALOPS_HOME (``export CALOPS_HOME=...`` is honoured with ``~`` pointing into the temporary
directory). ``<product_id>`` is what a user pastes: an id copied from a ``calops sql`` table
line, which must print ids whole. Every line must exit 0, except that ``calops diff`` exits 1
when the two builds differ (as ``diff`` does; the README's 11.1.1 and 11.2 do differ: a new
flat), which counts as working when it wrote its report.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
from pathlib import Path

import pytest

from flows.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"


def using_it_block(text: str) -> list[str]:
    """The command lines of the first ```bash block under the "Using it" heading."""
    m = re.search(r"^##+\s+Using it\s*$(.*?)^```bash\s*$(.*?)^```", text, re.M | re.S)
    assert m, "README.md has no ```bash block under a 'Using it' heading"
    return [line.strip() for line in m.group(2).splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_the_block_is_found_and_starts_with_calops_commands():
    lines = using_it_block(README.read_text())
    assert lines and all(line.split()[0] in ("calops", "export") for line in lines), lines


def _paste_id(capsys) -> str:
    """An id as a user copies it from `calops sql`'s table (the first line that holds one)."""
    assert main(["sql", "select product_id, kind from products order by kind limit 3"]) == 0
    out = capsys.readouterr().out
    ids = re.findall(r"\b(?:sha256|b3):[0-9a-f]{16,}\b", out)
    assert ids and "…" not in ids[0], f"calops sql cut the ids:\n{out}"
    return ids[0]


@pytest.mark.slow
def test_using_it_runs_as_typed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/calops-home lands in the temporary directory
    monkeypatch.delenv("CALOPS_HOME", raising=False)
    failures = []
    for line in using_it_block(README.read_text()):
        words = shlex.split(line, comments=True)
        if words[0] == "export":
            for assignment in words[1:]:
                name, _, value = assignment.partition("=")
                monkeypatch.setenv(name, os.path.expanduser(value))
            continue
        argv = []
        for w in words[1:]:
            if w == "<product_id>":
                w = _paste_id(capsys)
            hits = sorted(glob.glob(w)) if any(c in w for c in "*?[") else []
            argv += hits or [w]  # the shell expands globs before calops sees them
        code = main(argv)
        out = capsys.readouterr()
        if code == 1 and argv[0] == "diff" and "wrote " in out.err + out.out:
            continue  # `calops diff` exits 1 when the builds differ (as diff(1)); it did its job
        if code != 0:
            failures.append(f"{line!r} exited {code}: {out.err.strip()[-500:]}")
    assert os.environ["CALOPS_HOME"].startswith(str(tmp_path))
    assert not failures, "README lines that fail as typed:\n" + "\n".join(failures)
