"""The ``calops`` command line: a thin face over the workspace, the catalog and the flows.

Each group of commands lives in ``flows/commands/<name>.py`` and exposes
``register(subparsers)``, adding subparsers that ``set_defaults(func=handler)`` with
``handler(args) -> int``. Every module in ``flows/commands`` is loaded (``store_cmds`` first), so
adding a command never means editing this file. A ``CalopsError`` is printed as one line
``calops: error: ...`` with exit code 2; commands return 1 for "found problems".
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from store.errors import CalopsError

FIRST = ("store_cmds",)


def _command_modules() -> list[str]:
    import flows.commands as pkg

    names = [m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")]
    return [n for n in FIRST if n in names] + sorted(n for n in names if n not in FIRST)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calops",
        description="calops: JWST-style calibration with a content-addressed provenance store")
    parser.add_argument("--home", metavar="PATH",
                        help="workspace directory (default: $CALOPS_HOME, else ./calops-home)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_modules():
        modname = f"flows.commands.{name}"
        try:
            mod = importlib.import_module(modname)
        except Exception as exc:  # one broken command group must not take down the others
            print(f"calops: warning: commands in {modname} are unavailable: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if hasattr(mod, "register"):
            mod.register(sub)
    for p in set(sub.choices.values()):  # --home also after the command name
        try:
            p.add_argument("--home", metavar="PATH", default=argparse.SUPPRESS,
                           help="workspace directory (default: $CALOPS_HOME, else ./calops-home)")
        except argparse.ArgumentError:
            pass
    return parser


def one_line(exc: BaseException) -> str:
    text = " ".join(s.strip() for s in str(exc).splitlines() if s.strip())
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 problems found, 2 error)."""
    from flows import jit

    jit.configure(sys.argv[1:] if argv is None else argv)  # before the commands import numba
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except CalopsError as exc:
        print(f"calops: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("calops: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `calops sql ... | head`: quietly stop writing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
