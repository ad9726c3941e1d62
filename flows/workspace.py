"""A workspace: one directory holding the object store, the catalog and the configuration.

``calops init [PATH]`` writes ``calops.toml`` and the directories. Every other command finds the
workspace from ``--home``, else ``$CALOPS_HOME``, else ``./calops-home``. URLs in the config that
are plain relative paths are relative to the workspace directory; any fsspec URL is accepted for
the store and the catalog (``s3://bucket/calops``, ``memory://x``...); an ``options`` table in
``[store]``/``[catalog]`` is passed to fsspec as storage options (an S3 ``endpoint_url``...).
"""

from __future__ import annotations

import json
import os
import tomllib
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.errors import WorkspaceError

if TYPE_CHECKING:
    from catalogs.builds import BuildBook
    from catalogs.catalog import Catalog
    from store.objects import ObjectStore

CONFIG_NAME = "calops.toml"
DEFAULT_HOME = "calops-home"
ENV_HOME = "CALOPS_HOME"
WORKSPACE_VERSION = 1

DEFAULT_CONFIG = f"""\
# calops workspace configuration (docs/catalog.md). Relative paths are relative to this file.
[workspace]
version = {WORKSPACE_VERSION}

[store]
# content-addressed objects: a path or any fsspec URL (s3://bucket/calops/store ...)
url = "store"
# fsspec storage options for a remote URL, e.g. {{ endpoint_url = "http://127.0.0.1:9000" }};
# keep credentials in the environment (AWS_ACCESS_KEY_ID...), not here (docs/distributed.md)
# options = {{}}

[catalog]
# append-only Parquet tables: a path or any fsspec URL
url = "catalog"
# options = {{}}   (default: the store's options when both URLs use the same protocol)

[crds]
# local CRDS cache (mappings/, references/, config/)
path = "crds"

[builds]
# build manifests (seeded from the shipped ones on first use)
path = "builds"
"""


def home_path(path: str | os.PathLike | None = None) -> Path:
    """The workspace directory: ``path``, else $CALOPS_HOME, else ./calops-home."""
    chosen = path if path not in (None, "") else os.environ.get(ENV_HOME) or DEFAULT_HOME
    return Path(chosen).expanduser().absolute()


class Workspace:
    """The one typed way in: an initialised workspace's object store (``.store``), catalog
    (``.catalog``), builds (``.builds``), CRDS cache (``.crds_path``) and configuration."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().absolute()
        cfg = self.root / CONFIG_NAME
        if not cfg.is_file():
            raise WorkspaceError(f"{self.root} is not a calops workspace (no {CONFIG_NAME}); "
                                 f"run `calops init {self.root}` or set ${ENV_HOME}")
        try:
            self.config: dict[str, Any] = tomllib.loads(cfg.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise WorkspaceError(f"{cfg} is not valid TOML: {exc}") from None

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    @classmethod
    def resolve(cls, path: str | os.PathLike | None = None) -> "Workspace":
        """The workspace named by ``path``, $CALOPS_HOME or ./calops-home."""
        return cls(home_path(path))

    @classmethod
    def init(cls, path: str | os.PathLike | None = None,
             crds_path: str | os.PathLike | None = None) -> tuple["Workspace", bool]:
        """Create (or keep) a workspace; returns it and whether it was newly created.
        ``crds_path`` points a new workspace at an existing CRDS cache (default: its own
        ``crds/`` directory)."""
        root = home_path(path)
        cfg = root / CONFIG_NAME
        created = not cfg.exists()
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"cannot create a workspace at {root}: it is a file")
        root.mkdir(parents=True, exist_ok=True)
        if created:
            tmp = root / f".{CONFIG_NAME}.tmp"
            text = DEFAULT_CONFIG
            if crds_path is not None:
                crds = Path(crds_path).expanduser().absolute()
                text = text.replace('path = "crds"', f"path = {json.dumps(str(crds))}", 1)
            tmp.write_text(text)
            os.replace(tmp, cfg)
        ws = cls(root)
        for url in (ws.store_url, ws.catalog_url, ws.crds_path):
            if "://" not in url:
                Path(url).mkdir(parents=True, exist_ok=True)
        return ws, created

    def _url(self, section: str, key: str, default: str) -> str:
        value = str(self.config.get(section, {}).get(key, default))
        if "://" in value:
            return value
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else self.root / p)

    @property
    def store_url(self) -> str:
        return self._url("store", "url", "store")

    @property
    def catalog_url(self) -> str:
        return self._url("catalog", "url", "catalog")

    def _options(self, section: str) -> dict[str, Any]:
        value = self.config.get(section, {}).get("options", {})
        if not isinstance(value, dict):
            raise WorkspaceError(f"[{section}] options in {self.root / CONFIG_NAME} must be a "
                                 f"table of fsspec storage options, not {type(value).__name__}")
        return dict(value)

    @property
    def store_options(self) -> dict[str, Any]:
        """fsspec storage options for the store (``[store] options``)."""
        return self._options("store")

    @property
    def catalog_options(self) -> dict[str, Any]:
        """``[catalog] options``; if absent, the store's when both URLs share a protocol."""
        if "options" in self.config.get("catalog", {}):
            return self._options("catalog")
        proto = lambda u: u.split("://", 1)[0] if "://" in u else "file"  # noqa: E731
        return self.store_options if proto(self.store_url) == proto(self.catalog_url) else {}

    @property
    def crds_path(self) -> str:
        return self._url("crds", "path", "crds")

    @property
    def builds_dir(self) -> str:
        return self._url("builds", "path", "builds")

    def crds_contexts(self) -> list[str]:
        """Context (.pmap) names in the local CRDS cache, oldest first."""
        d = Path(self.crds_path) / "mappings" / "jwst"
        return sorted(p.name for p in d.glob("*.pmap")) if d.is_dir() else []

    @cached_property
    def builds(self) -> BuildBook:
        """The workspace's ``catalogs.builds.BuildBook``: tamper-evident through the catalog,
        with a copy of every lifecycle change in the store (docs/integrity.md)."""
        from catalogs.builds import BuildBook

        return BuildBook(self.builds_dir, catalog=self.catalog, store=self.store)

    @cached_property
    def store(self) -> ObjectStore:
        from store.objects import ObjectStore

        return ObjectStore(self.store_url, **self.store_options)

    @cached_property
    def catalog(self) -> Catalog:
        from catalogs.catalog import Catalog

        cat = Catalog(self.catalog_url, **self.catalog_options)
        cat.record_store = self.store  # every lineage batch is also a record in the store
        return cat


def from_args(args: Any) -> Workspace:
    """The workspace for parsed CLI arguments (``--home``)."""
    return Workspace.resolve(getattr(args, "home", None))
