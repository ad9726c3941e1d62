"""`calops warmup`: compile every numba kernel once, so no later command waits for the JIT
(a container image build runs it; see flows/jit.py for where the cache lives)."""

from __future__ import annotations

import sys
import time
from typing import Any


def register(sub: Any) -> None:
    from flows.jit import GROUPS

    p = sub.add_parser("warmup", help="compile every kernel once (first run only otherwise)",
                       description="Compile calops' numba kernels into the numba cache "
                                   "($NUMBA_CACHE_DIR, else [numba] cache_dir of the "
                                   "workspace's calops.toml, else numba's default), one group "
                                   "at a time; already cached kernels load in milliseconds.")
    p.add_argument("groups", nargs="*", metavar="GROUP",
                   help=f"kernel groups (default: all): {', '.join(GROUPS)}")
    p.set_defaults(func=cmd_warmup)


def cmd_warmup(args: Any) -> int:
    import os

    from flows import jit
    from store.errors import CalopsError

    where = os.environ.get(jit.ENV) or "numba's default (__pycache__ beside each module)"
    print(f"numba cache: {where}", flush=True)
    unknown = [g for g in args.groups if g not in jit.GROUPS]
    if unknown:
        raise CalopsError(f"unknown kernel group(s) {', '.join(unknown)}; "
                          f"known: {', '.join(jit.GROUPS)}")
    t0 = time.perf_counter()
    total = 0
    for name, seconds, compiled, notes in jit.warmup(args.groups):
        total += compiled
        state = f"{compiled} compiled" if compiled else "all cached"
        print(f"  {name:<10} {seconds:6.1f} s  {state:<14} {jit.GROUPS[name][0]}")
        for note in notes:
            print(f"             {note}")
        sys.stdout.flush()
    print(f"warmup done in {time.perf_counter() - t0:.1f} s ({total} kernels compiled)")
    return 0
