"""Maintainer tool: give the shipped non-development manifests locks over steps calops adds.

``python -m catalogs.relock_shipped`` extends each shipped lock with the stages and steps it
does not name yet (resolved as the manifest says: its pins, else the newest version) and never
changes an entry the lock already has, so what a locked build ran before still runs the same.
``--rebase`` resolves every lock from scratch; it exists only for calops' pre-release history
(docs/builds.md) and changes products: never use it on a build that has shipped.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from catalogs import builds as B

_STATUS = re.compile(r'^status = "(\w+)"', re.M)
_LOCK = re.compile(r'^lock = ".*"\n', re.M)


def extend(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` where ``old`` is silent, ``old`` wherever it speaks (steps and orders)."""
    stages = {}
    for name, ns in new["stages"].items():
        os_ = old["stages"].get(name)
        if os_ is None:
            stages[name] = ns
            continue
        steps = {**ns["steps"], **os_["steps"]}
        orders = {inst: [s for s in order if s in steps]
                  for inst, order in ns["orders"].items()}
        stages[name] = {"orders": orders, "steps": steps}
    for name, os_ in old["stages"].items():
        stages.setdefault(name, os_)
    return {**new, "stages": stages}


def relock(rebase: bool = False) -> list[tuple[str, str]]:
    done = []
    for f in sorted(B.SHIPPED.glob("*.toml")):
        text = f.read_text()
        status = _STATUS.search(text).group(1)
        if status == "development":
            continue
        bare = _LOCK.sub("", text)
        b = B.parse_manifest(_STATUS.sub('status = "development"', bare, count=1), f.name)
        lock = B.resolve_lock(b)
        lock_file = f.parent / f"{b.name}.lock.json"
        if not rebase and lock_file.exists():
            lock = extend(json.loads(lock_file.read_text()), lock)
        text_ = B.lock_text(lock)
        h = B.lock_hash(text_)
        lock_file.write_text(text_)
        f.write_text(re.sub(r'^(crds_context = .*\n)', rf'\1lock = "{h}"\n', bare, count=1,
                            flags=re.M))
        done.append((b.name, h))
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m catalogs.relock_shipped", description=__doc__)
    ap.add_argument("--rebase", action="store_true",
                    help="resolve every lock from scratch (pre-release history only)")
    for name, h in relock(ap.parse_args(argv).rebase):
        print(f"{name:8s} {h}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
