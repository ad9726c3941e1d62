"""The calops error hierarchy: every error a user can cause is a ``CalopsError``.

The CLI catches ``CalopsError`` and prints its message as one line, so every message says what
is wrong and, where there is one, what to do about it.
"""

from __future__ import annotations


class CalopsError(Exception):
    """Base class of errors that are reported to the user as one line (CLI exit code 2)."""


class IdentityError(CalopsError, TypeError):
    """A value that has no canonical encoding (so no identity): an unsupported type or dtype."""


class StoreError(CalopsError):
    """The object store cannot do what was asked (bad URL, bad id, not a model...)."""


class MissingObject(StoreError):
    """An object id that is not in the store."""


class CorruptObject(StoreError):
    """A stored object whose bytes no longer hash to its id: it is reported, never returned."""


class CatalogError(CalopsError):
    """A catalog write or read that does not fit the schema."""


class QueryError(CatalogError):
    """A SQL statement that failed or was refused (the catalog is read-only through SQL)."""


class WorkspaceError(CalopsError):
    """A workspace that does not exist or is not initialised."""


class BadId(CalopsError, ValueError):
    """A string that is not a well-formed ``<algorithm>:<hex digest>`` identity."""
