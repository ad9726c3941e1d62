"""The ``calops`` command line: a thin face over the workspace, the catalog and the flows.

Each group of commands lives in ``flows/commands/<name>.py`` and exposes
``register(subparsers)``, adding subparsers that ``set_defaults(func=handler)`` with
``handler(args) -> int``. Every module in ``flows/commands`` is loaded (``store_cmds`` first), so
adding a command never means editing this file.

No traceback reaches a user (docs/integrity.md). Every error is one line on stderr,
``calops: error: ...``, and an exit code:

- 0 success; 1 the command ran and found problems (``verify``, ``build list`` with a bad
  manifest, ``repair`` that lost something, a lineage with a corrupt product);
- 2 an error the user can act on: a ``CalopsError`` (its message says what to do), a bad
  argument, a file that cannot be read or written (the path and the reason), a full disk, a
  ``ValueError`` from the science room;
- 3 out of memory; 130 interrupted;
- 70 an unexpected error: one line naming it and the log file that has the traceback
  (``<workspace>/logs/errors.log``, else ``$TMPDIR/calops-errors-<uid>.log``).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import errno
import importlib
import os
import pkgutil
import sys
import tempfile
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path

FIRST = ("store_cmds",)


def _command_modules() -> list[str]:
    import flows.commands as pkg

    names = [m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")]
    return [n for n in FIRST if n in names] + sorted(n for n in names if n not in FIRST)


EXIT_OK, EXIT_PROBLEMS, EXIT_ERROR, EXIT_MEMORY, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 70, 130


class Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (``calops: error: ... (see --help)``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_ERROR, f"calops: error: {one_line(message)} (see `{self.prog} --help`)\n")


# Commands whose parser needs only their own module: ``calops stage``/``calops step`` on a
# full frame should not also carry pyarrow, duckdb and the catalog (~40 MB) they never use.
LEAN = {"stage": "stage_cmd", "step": "step_cmd"}


def command_of(argv: Sequence[str]) -> str | None:
    """The command name of a command line (the first word not an option or --home's value)."""
    args = list(argv)
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--home":
            i += 2
            continue
        if tok.startswith("-"):
            return None  # a top-level option (--help...): the full parser answers
        return tok
    return None


def build_parser(only: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command modules named in ``only``."""
    parser = Parser(
        prog="calops",
        description="calops: JWST-style calibration with a content-addressed provenance store")
    parser.add_argument("--home", metavar="PATH",
                        help="workspace directory (default: $CALOPS_HOME, else ./calops-home)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (_command_modules() if only is None else list(only)):
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


def one_line(exc: BaseException | str, limit: int = 2000) -> str:
    text = " ".join(s.strip() for s in str(exc).splitlines() if s.strip())
    text = text or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _os_error(exc: OSError) -> str:
    """An OSError as one line: what failed, on which path, and what to do for the usual ones."""
    reason = exc.strerror or one_line(exc)
    paths = [p for p in (exc.filename, exc.filename2) if p]
    where = " -> ".join(str(p) for p in paths)
    hint = {errno.ENOSPC: "free some space and re-run; nothing half-written was kept",
            errno.EDQUOT: "free some space and re-run",
            errno.EFBIG: "the file size limit was reached; raise it (ulimit -f) and re-run",
            errno.EACCES: "check the permissions", errno.EPERM: "check the permissions",
            errno.EROFS: "the file system is read-only",
            errno.ENOENT: "check the path", errno.ENOTDIR: "a part of the path is a file",
            errno.EISDIR: "it is a directory"}.get(exc.errno or -1)
    return f"{where + ': ' if where else ''}{reason}{'; ' + hint if hint else ''}"


def _log_path(argv: Sequence[str] | None) -> list[Path]:
    """Where details of an unexpected error go: the workspace's logs/, else $TMPDIR."""
    out = []
    try:
        from flows.workspace import CONFIG_NAME, home_path

        args = list(sys.argv[1:] if argv is None else argv)
        home = None
        for i, a in enumerate(args):
            if a == "--home" and i + 1 < len(args):
                home = args[i + 1]
            elif a.startswith("--home="):
                home = a.split("=", 1)[1]
        root = home_path(home)
        if (root / CONFIG_NAME).is_file():
            out.append(root / "logs" / "errors.log")
    except Exception:  # noqa: BLE001 - no workspace: the temporary directory will do
        pass
    out.append(Path(tempfile.gettempdir()) / f"calops-errors-{os.getuid()}.log")
    return out


def log_unexpected(exc: BaseException, argv: Sequence[str] | None) -> str:
    """Append the traceback of an unexpected error to the log; returns where it went."""
    text = (f"--- {dt.datetime.now(dt.timezone.utc).isoformat()} pid {os.getpid()}\n"
            f"argv: {list(sys.argv[:1]) + list(sys.argv[1:] if argv is None else argv)}\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    for path in _log_path(argv):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.write(text)
            return str(path)
        except OSError:
            continue
    return "nowhere (no writable log location)"


def _thread_hook(argv: Sequence[str] | None):
    def hook(a: threading.ExceptHookArgs) -> None:
        if a.exc_type is SystemExit or a.exc_value is None:
            return
        where = log_unexpected(a.exc_value, argv)
        print(f"calops: warning: a background thread failed: {a.exc_type.__name__}: "
              f"{one_line(a.exc_value, 300)} (details in {where})", file=sys.stderr)
    return hook


def report(exc: BaseException, argv: Sequence[str] | None = None) -> int:
    """Print one line for ``exc`` and return the exit code (the top-level handler)."""
    from store.errors import CalopsError

    if isinstance(exc, CalopsError):
        print(f"calops: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    if isinstance(exc, OSError):
        print(f"calops: error: {_os_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    if isinstance(exc, MemoryError):
        print("calops: error: out of memory; process fewer exposures at a time or use a "
              "machine with more memory", file=sys.stderr)
        return EXIT_MEMORY
    if isinstance(exc, (ValueError, LookupError)) and _from_ours(exc):
        print(f"calops: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    where = log_unexpected(exc, argv)
    print(f"calops: error: unexpected {type(exc).__name__}: {one_line(exc, 300)} (this is a "
          f"bug in calops; details in {where})", file=sys.stderr)
    return EXIT_BUG


def _from_ours(exc: BaseException) -> bool:
    """Raised in calops's own code (the science room's ValueErrors are user errors)."""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    root = str(Path(__file__).resolve().parents[1])
    return bool(last) and last.startswith(os.path.join(root, "transforms"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 problems found, 2 error, 70 a bug: see
    the module docstring). Nothing raises out of here but SystemExit from --help."""
    old_hook = threading.excepthook
    threading.excepthook = _thread_hook(argv)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("calops: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `calops sql ... | head`: quietly stop writing
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the one place every error becomes one line
        return report(exc, argv)
    finally:
        threading.excepthook = old_hook


MMAP_THRESHOLD = 1 << 20


def fixed_mmap_threshold() -> None:
    """glibc: give every allocation of 1 MiB or more its own mapping, returned to the system
    when freed. By default glibc raises that threshold (up to 32 MiB) after the first large
    free, so the 16 MiB full-frame images a stage allocates and frees (references,
    temporaries, product arrays) end up in the heap, whose freed space it keeps: a full-frame
    detector1 process peaked ~200 MB higher that way. No-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _main(argv: Sequence[str] | None) -> int:
    from flows import jit

    jit.configure(sys.argv[1:] if argv is None else argv)  # before the commands import numba
    fixed_mmap_threshold()
    lean = LEAN.get(command_of(sys.argv[1:] if argv is None else argv) or "")
    parser = build_parser([lean] if lean else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_ERROR
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    return int(func(args) or 0)


def run() -> None:
    """The ``calops`` program: ``main()``, then Python's shutdown without its finalization.

    A normal exit joins the worker threads and runs the exit hooks (Prefect flushes its logs
    and events to the API there), then finalizes the interpreter, which ends every daemon
    thread still alive by unwinding its stack. A daemon thread inside C++ at that moment
    aborts the process after a complete, successful run (seen once in CI: exit -6 with
    "FATAL: exception not rethrown" after ``calops reprocess`` printed its summary). Nothing
    calops keeps needs finalizing: the catalog is Parquet written atomically, and DuckDB is
    in memory. So the process does the first two parts and ends there."""
    code = main()
    threading._shutdown()  # type: ignore[attr-defined]  # join worker threads, as exit does
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
