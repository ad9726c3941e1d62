"""Bytes and identity: canonical hashing, the object codec and the content-addressed store.

``store`` may import only ``transforms.model``, ``transforms.dq`` and the steps' declarations in
``transforms.registry`` (their S_* keywords) of the other rooms (tests/test_rooms.py).
"""

from store.errors import (  # noqa: F401  (re-exported)
    CalopsError,
    BadId,
    CorruptObject,
    IdentityError,
    MissingObject,
    StoreError,
)
