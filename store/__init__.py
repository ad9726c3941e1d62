"""Bytes and identity: canonical hashing, the object codec and the content-addressed store.

``store`` may import only ``transforms.model``/``transforms.dq`` of the other rooms.
"""

from store.errors import (  # noqa: F401  (re-exported)
    CalopsError,
    BadId,
    CorruptObject,
    IdentityError,
    MissingObject,
    StoreError,
)
