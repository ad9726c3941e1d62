"""read_reference(path, arrays): only the named arrays are read, each checksum-verified as a
full read verifies it (the runner reads a dark's data and dq, not its 160 MB err)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits as afits
from hypothesis import given, settings
from hypothesis import strategies as st

from store import fits as F
from store.errors import CalopsError
from transforms.model import DataModel


def _dark(path, seed=0, shape=(3, 20, 24)):
    rng = np.random.default_rng(seed)
    arrays = {"data": rng.normal(0, 1, shape).astype(np.float32),
              "err": rng.random(shape).astype(np.float32),
              "dq": rng.integers(0, 4, shape[1:]).astype(np.uint32)}
    meta = {"reftype": "dark", "instrument.name": "NIRCAM", "instrument.detector": "NRCA1",
            "useafter": "2022-01-01T00:00:00", "exposure.nframes": 1}
    return F.write_reference(DataModel("ref.dark", arrays, meta), path)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from([("data",), ("dq",), ("data", "dq"),
                                                ("data", "dq", "err")]))
def test_partial_read_equals_the_full_read(tmp_path_factory, seed, names):
    p = _dark(tmp_path_factory.mktemp("d") / "dark.fits", seed)
    full, part = F.read_reference(p), F.read_reference(p, names)
    assert sorted(part.arrays) == sorted(names)
    for k in names:
        assert part[k].dtype == full[k].dtype
        np.testing.assert_array_equal(part[k], full[k])
    assert dict(part.meta) == dict(full.meta) and part.kind == full.kind


def _flip(path, ext, where):
    with afits.open(path) as h:
        info = h[ext].fileinfo()
    raw = bytearray(open(path, "rb").read())
    if where == "data":
        off = info["datLoc"] + 5
    else:  # a letter of the CHECKSUM card's comment: the header still parses
        off = raw.index(b"calops", info["hdrLoc"], info["datLoc"])
    raw[off] ^= 0x01
    open(path, "wb").write(bytes(raw))


@pytest.mark.parametrize("where", ["data", "header"])
def test_damage_in_a_read_extension_is_refused(tmp_path, where):
    p = _dark(tmp_path / "dark.fits")
    _flip(p, "DQ", where)
    with pytest.raises(CalopsError, match="checksum|corrupt"):
        F.read_reference(p, ("data", "dq"))
    with pytest.raises(CalopsError):
        F.read_reference(p)


def test_damage_in_an_unread_extension_does_not_matter(tmp_path):
    p = _dark(tmp_path / "dark.fits")
    _flip(p, "ERR", "data")
    m = F.read_reference(p, ("data", "dq"))
    assert sorted(m.arrays) == ["data", "dq"]
    with pytest.raises(CalopsError):
        F.read_reference(p)
