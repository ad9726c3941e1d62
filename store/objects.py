"""Content-addressed object store over fsspec: put once, verify on every read.

Layout under the store root: ``objects/<algo>/<2 hex>/<62 hex>``. Every object's id is the hash
of its stored bytes (a model's bytes are its canonical content, see ``store.codec``; a raw blob's
are itself), so verifying is re-hashing. A put writes a temporary name in the same directory and
then links/renames it into place, so a writer killed at any moment leaves no visible partial
object (only a ``.tmp-*`` file that ``ids()``/``verify()`` ignore and ``clean_tmp()`` removes).
An existing object is never rewritten.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from store.codec import decode_model, object_chunks
from store.errors import BadId, CorruptObject, MissingObject, StoreError
from store.identity import DEFAULT_ALGO, digest, hasher, parse_id
from transforms.model import DataModel

TMP_PREFIX = ".tmp-"
_CHUNK = 8 << 20


class StoreWriteError(StoreError):
    """The store could not be written (full disk, no permission, unreachable bucket); nothing
    was stored. ``__cause__`` is the underlying OSError."""


def _os_reason(exc: OSError) -> str:
    """An OSError as a short reason: ``[Errno 28] No space left on device`` (no path)."""
    if exc.errno is not None and exc.strerror:
        return f"[Errno {exc.errno}] {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


class ObjectStore:
    """Content-addressed objects under ``url`` (a path, ``file://``, or any fsspec URL)."""

    def __init__(self, url: str | os.PathLike, algo: str = DEFAULT_ALGO, fsync: bool = True,
                 **storage_options: Any):
        hasher(algo)  # validates the name
        self.url = os.fspath(url)
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **storage_options)
        except (ValueError, ImportError) as exc:
            raise StoreError(f"cannot open object store {self.url!r}: {exc}") from None
        self.root = root.rstrip("/") or "/"
        self.algo = algo
        self.fsync = fsync
        self.local = isinstance(self.fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    # --- layout ---------------------------------------------------------------------------

    def path_of(self, ident: str) -> str:
        """Where the object ``ident`` lives (whether or not it exists)."""
        algo, hexd = parse_id(ident)
        return f"{self.root}/objects/{algo}/{hexd[:2]}/{hexd[2:]}"

    def _forget_listings(self, path: str | None = None) -> None:
        """Drop a remote filesystem's cached listings (s3fs caches them per process), so
        objects written or deleted by other processes are seen."""
        if not self.local:
            self.fs.invalidate_cache(path)

    def has(self, ident: str) -> bool:
        """True if the object is present (its content is not checked; see ``check``)."""
        path = self.path_of(ident)
        if self.local:
            return os.path.exists(path)
        self._forget_listings(path)
        return self.fs.exists(path)

    def ids(self) -> Iterator[str]:
        """Every stored object's id (temporary files of unfinished puts are not objects)."""
        base = f"{self.root}/objects"
        self._forget_listings()
        if not self.fs.exists(base):
            return
        for algo_dir in sorted(self.fs.ls(base, detail=False)):
            algo = algo_dir.rstrip("/").rsplit("/", 1)[-1]
            for shard in sorted(self.fs.ls(algo_dir, detail=False)):
                prefix = shard.rstrip("/").rsplit("/", 1)[-1]
                if len(prefix) != 2:
                    continue
                for path in sorted(self.fs.ls(shard, detail=False)):
                    name = path.rsplit("/", 1)[-1]
                    if name.startswith(TMP_PREFIX):
                        continue
                    ident = f"{algo}:{prefix}{name}"
                    try:
                        parse_id(ident)
                    except BadId:
                        continue
                    yield ident

    # --- writing --------------------------------------------------------------------------

    def put(self, model: DataModel) -> str:
        """Store a model; returns its product_id. A no-op if the object already exists."""
        chunks = object_chunks(model)
        ident = digest(chunks, self.algo)
        if not self.has(ident):
            self._write(ident, chunks)
        return ident

    def put_bytes(self, data: bytes | bytearray | memoryview) -> str:
        """Store a raw blob; its id is the hash of the bytes (``identity.hash_bytes``)."""
        ident = digest([data], self.algo)
        if not self.has(ident):
            self._write(ident, [data])
        return ident

    def _write(self, ident: str, chunks: Iterable[bytes | memoryview]) -> None:
        """Write one object; an I/O failure (full disk, no permission, unreachable bucket)
        becomes a one-line ``StoreWriteError`` and leaves no object and no temporary file."""
        try:
            self._write_unchecked(ident, chunks)
        except OSError as exc:
            raise StoreWriteError(
                f"cannot write object {ident} to the store {self.url}: {_os_reason(exc)}; "
                "nothing was stored and nothing already stored was touched (free space or fix "
                "access to the store, then re-run)") from exc

    def _write_unchecked(self, ident: str, chunks: Iterable[bytes | memoryview]) -> None:
        final = self.path_of(ident)
        parent = final.rsplit("/", 1)[0]
        tmp = f"{parent}/{TMP_PREFIX}{uuid.uuid4().hex}"
        algo, hexd = parse_id(ident)
        h = hasher(algo)

        def hashed() -> Iterator[bytes | memoryview]:
            for c in chunks:
                h.update(c)
                yield c

        def check() -> None:  # the bytes written are the bytes the id names
            if h.hexdigest() != hexd:
                raise StoreError(f"object {ident} changed while it was being stored (an input "
                                 "array was modified concurrently); nothing was stored")

        if self.local:
            self._write_local(final, parent, tmp, hashed(), check)
            return
        try:
            with self.fs.open(tmp, "wb") as f:
                for c in hashed():
                    f.write(c)
            check()
            if self.fs.exists(final):  # lost a race with another writer of the same content
                return
            self.fs.mv(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError, OSError):
                if self.fs.exists(tmp):
                    self.fs.rm(tmp)

    def _write_local(self, final: str, parent: str, tmp: str,
                     chunks: Iterable[bytes | memoryview], check: Any = None) -> None:
        os.makedirs(parent, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            with os.fdopen(fd, "wb", buffering=0) as f:
                for c in chunks:
                    mv = memoryview(c)
                    while len(mv):  # unbuffered writes may be partial
                        n = f.write(mv)
                        mv = mv[n:]
                if self.fsync:
                    os.fsync(f.fileno())
            if check is not None:
                check()
            try:
                os.link(tmp, final)  # never replaces an existing object
            except FileExistsError:
                pass
            except OSError:  # filesystems without hard links
                if not os.path.exists(final):
                    os.replace(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if self.fsync:
            with contextlib.suppress(OSError):
                dfd = os.open(parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)

    # --- reading --------------------------------------------------------------------------

    def _read_verified(self, ident: str) -> Any:
        """The object's bytes (an mmap for local files), after re-hashing them."""
        algo, hexd = parse_id(ident)
        path = self.path_of(ident)
        try:
            if self.local:
                with open(path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    buf: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            else:
                buf = self.fs.cat_file(path)
        except FileNotFoundError:
            raise MissingObject(f"object {ident} is not in the store {self.url}") from None
        h = hasher(algo)
        view = memoryview(buf)
        for i in range(0, len(view), _CHUNK):
            h.update(view[i:i + _CHUNK])
        view.release()
        if h.hexdigest() != hexd:
            raise CorruptObject(f"object {ident} is corrupt: its bytes at {path} hash to "
                                f"{algo}:{h.hexdigest()}; restore it or re-run its recipe")
        return buf

    def get(self, ident: str) -> DataModel:
        """The model stored under ``ident``, re-verified; arrays are read-only views."""
        return decode_model(self._read_verified(ident))

    def get_bytes(self, ident: str) -> bytes:
        """The raw bytes stored under ``ident``, re-verified."""
        buf = self._read_verified(ident)
        return buf if isinstance(buf, bytes) else bytes(buf)

    def check(self, ident: str) -> str | None:
        """``None`` if the object is present and intact, else a one-line problem."""
        try:
            self._read_verified(ident)
        except MissingObject:
            return "missing"
        except CorruptObject as exc:
            return str(exc)
        return None

    def quarantine(self, ident: str) -> str | None:
        """Move a corrupt object aside (to ``quarantine/``) so a correct copy can be stored.

        Only an object that fails verification is moved, and it is kept, not deleted: an intact
        object is never touched. Returns where it went, or None if there was nothing to move.
        """
        problem = self.check(ident)
        if problem is None or problem == "missing":
            return None
        algo, hexd = parse_id(ident)
        dest = f"{self.root}/quarantine/{algo}/{hexd}.{uuid.uuid4().hex[:8]}"
        self.fs.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
        self.fs.mv(self.path_of(ident), dest)
        return dest

    def verify(self, ids: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """Re-hash every object (or those in ``ids``); ``[(id, problem)]`` for the bad ones."""
        problems = []
        for ident in (self.ids() if ids is None else ids):
            problem = self.check(ident)
            if problem:
                problems.append((ident, problem))
        return problems

    def clean_tmp(self) -> int:
        """Remove temporary files left by writers that died mid-put; returns how many."""
        n = 0
        base = f"{self.root}/objects"
        self._forget_listings()
        if not self.fs.exists(base):
            return 0
        for path in self.fs.find(base):
            if path.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
                self.fs.rm(path)
                n += 1
        return n
