"""Properties of the canonical encoding, product_id and recipe_key."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import random
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from store import identity as I
from store.errors import BadId, IdentityError
from transforms.model import DataModel

scalars = (st.none() | st.booleans() | st.integers() | st.integers(-2**100, 2**100)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
           | st.binary(max_size=8))
values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=4),
    max_leaves=12,
)


def canon(v):
    """The value as the identity rules see it (what must decide equality of encodings)."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int):
        return ("int", v)
    if isinstance(v, float):
        if math.isnan(v):
            return ("float", "nan")
        return ("float", 0.0 if v == 0 else v)
    if isinstance(v, (list, tuple)):
        return ("seq", tuple(canon(x) for x in v))
    if isinstance(v, dict):
        return ("map", tuple(sorted((canon(k), canon(x)) for k, x in v.items())))
    return (type(v).__name__, v)


@given(values, values)
def test_encodings_equal_exactly_when_values_equal_under_the_rules(a, b):
    assert (I.encode(a) == I.encode(b)) == (canon(a) == canon(b))


@given(values)
def test_decode_inverts_encode(v):
    assert canon(I.decode(I.encode(v))) == canon(v)


@given(st.lists(st.text(max_size=6), min_size=1, max_size=5), st.data())
def test_split_strings_never_collide(parts, data):
    """("ab", "c") and ("a", "bc"): same concatenation, different sequences, different ids."""
    joined = "".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(joined)), max_size=4)))
    other = [joined[i:j] for i, j in zip([0] + cuts, cuts + [len(joined)])]
    same = other == parts
    assert (I.encode(parts) == I.encode(other)) == same
    assert (I.encode([p.encode() for p in parts]) == I.encode([p.encode() for p in other])) == same


def test_length_prefix_pairs():
    assert I.encode(("ab", "c")) != I.encode(("a", "bc"))
    assert I.encode({"ab": "c"}) != I.encode({"a": "bc"})
    assert I.encode([b"ab", b"c"]) != I.encode([b"a", b"bc"])
    assert I.recipe_key("ab", "c", {}, {}, {}) != I.recipe_key("a", "bc", {}, {}, {})


def test_encoding_matches_the_documented_format():
    """The byte format of docs/identity.md, spelled out independently of the encoder."""
    u64 = lambda n: struct.pack("<Q", n)  # noqa: E731
    assert I.encode(None) == b"N"
    assert I.encode(True) == b"T" and I.encode(False) == b"F"
    assert I.encode(-12) == b"I" + u64(3) + b"-12"
    assert I.encode(1.5) == b"D" + struct.pack(">d", 1.5)
    assert I.encode("ab") == b"S" + u64(2) + b"ab"
    assert I.encode(b"\x00") == b"B" + u64(1) + b"\x00"
    assert I.encode([1, "a"]) == b"L" + u64(2) + I.encode(1) + I.encode("a")
    assert I.encode({"b": 1, "a": 2}) == b"M" + u64(2) + I.encode("a") + I.encode(2) + I.encode("b") + I.encode(1)
    a = np.array([[1, 2]], dtype="<u2")
    assert I.encode(a) == (b"A" + I.encode("<u2") + I.encode([1, 2]) + u64(4) + b"\x01\x00\x02\x00")


@given(st.floats(allow_nan=True), st.sampled_from([0, 1, 0x7FFFF, 0xFFFFFFFFFFFFF]), st.booleans())
def test_float_rule_zero_and_nan(x, payload, negative):
    assert I.encode(-0.0) == I.encode(0.0)
    nan = struct.unpack(">d", struct.pack(">Q", (0xFFF8 if negative else 0x7FF8) << 48 | payload))[0]
    assert I.encode(nan) == I.encode(float("nan")) == b"D" + I.CANONICAL_NAN
    if not math.isnan(x) and x != 0:
        assert I.encode(x) != I.encode(-x)
        assert struct.unpack(">d", I.encode(x)[1:])[0] == x  # exact bits


def test_types_are_part_of_identity():
    distinct = [1, 1.0, True, "1", b"1", [1], {"1": 1}, None, np.array(1), np.array([1])]
    encs = [I.encode(v) for v in distinct]
    assert len(set(encs)) == len(encs)
    # numpy scalars encode as the Python value they equal exactly
    assert I.encode(np.int64(3)) == I.encode(3)
    assert I.encode(np.float32(0.1)) == I.encode(float(np.float32(0.1)))
    assert I.encode((1, 2)) == I.encode([1, 2])


@given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=8), st.randoms())
def test_dict_order_does_not_matter(d, rnd):
    items = list(d.items())
    rnd.shuffle(items)
    assert I.encode(dict(items)) == I.encode(d)
    ident = "sha256:" + "0" * 64
    assert (I.recipe_key("s", "1", dict(items), {k: ident for k, _ in items}, {})
            == I.recipe_key("s", "1", d, {k: ident for k in d}, {}))


array_dtypes = st.sampled_from(["u1", "i2", "u2", "i4", "f4", "f8", "c8", "b1", "M8[s]", "U2", "S3"])


@given(hnp.arrays(array_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))
def test_array_identity_byte_order_shape_dtype(a):
    enc = I.encode(a)
    # byte order of the in-memory array does not change identity (values are the same)...
    swapped = a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder in "=<" else "<"))
    assert I.encode(swapped) == enc
    # ...nor does memory layout
    assert I.encode(np.array(a, order="F")) == enc
    if a.ndim >= 2:
        assert I.encode(a.T.copy().T) == enc  # a non-C-contiguous view
    # shape does
    if a.ndim:
        assert I.encode(a.reshape((1,) + a.shape)) != enc
    # dtype does, even when the bytes are identical
    if a.dtype.itemsize in (2, 4) and a.dtype.kind in "iuf" and a.size:
        other = a.view({"i": "u", "u": "i", "f": "i"}[a.dtype.kind] + str(a.dtype.itemsize))
        assert I.encode(other) != enc
    back = I.decode(enc)
    assert back.shape == a.shape and back.dtype == a.dtype.newbyteorder("<")
    assert back.tobytes() == np.ascontiguousarray(a.astype(back.dtype)).tobytes()


def test_unencodable_values_are_refused():
    with pytest.raises(IdentityError, match="cannot encode"):
        I.encode(object())
    with pytest.raises(IdentityError, match="dtype"):
        I.encode(np.array([object()], dtype=object))
    with pytest.raises(IdentityError, match="mask"):
        I.encode(np.ma.masked_array([1, 2], mask=[0, 1]))
    with pytest.raises(IdentityError, match="same canonical encoding"):
        I.encode({float("nan"): "a", float("nan"): "b"})


def test_ids_parse_and_refuse():
    pid = I.hash_bytes(b"x")
    assert I.parse_id(pid) == ("sha256", pid.split(":")[1])
    assert I.hash_bytes(b"x", "blake2b").startswith("blake2b:")
    for bad in ["x", "sha256:abc", "md5:" + "0" * 64, "sha256:" + "G" * 64, None]:
        with pytest.raises(BadId):
            I.parse_id(bad)


def test_hash_file_matches_hash_bytes(tmp_path):
    p = tmp_path / "ref.fits"
    p.write_bytes(b"abc" * 100000)
    assert I.hash_file(p) == I.hash_bytes(b"abc" * 100000)
    with open(p, "rb") as f:
        assert I.hash_file(f) == I.hash_bytes(b"abc" * 100000)
    with pytest.raises(IdentityError, match="no such file"):
        I.hash_file(tmp_path / "missing.fits")


@dataclasses.dataclass(frozen=True)
class Params:
    threshold: float = 4.0
    n: int = 3


def test_recipe_key_components():
    u = I.hash_bytes(b"u")
    base = dict(step="jump", version="1.0", params=Params(), inputs={"input": u},
                refs={"gain": ("g.fits", I.hash_bytes(b"g"))})
    k = I.recipe_key(**base)
    assert k == I.recipe_key(**{**base, "params": {"n": 3, "threshold": 4.0}})
    changes = [{"step": "jump2"}, {"version": "1.1"}, {"params": Params(threshold=4.5)},
               {"inputs": {"other": u}}, {"inputs": {"input": I.hash_bytes(b"v")}},
               {"refs": {"gain": ("g.fits", I.hash_bytes(b"h"))}},
               {"refs": {"gain": ("h.fits", I.hash_bytes(b"g"))}}, {"refs": {}},
               {"params": {"n": 3, "threshold": 4}}]  # 4 is not 4.0
    keys = {I.recipe_key(**{**base, **c}) for c in changes}
    assert k not in keys and len(keys) == len(changes)
    with pytest.raises(IdentityError):
        I.recipe_key("s", "1", {}, {"input": ""}, {})


def _model(seed: int = 0) -> DataModel:
    rng = np.random.default_rng(seed)
    return DataModel("rate", {"data": rng.normal(size=(3, 5)).astype("f4"),
                              "dq": np.arange(15, dtype="u4").reshape(3, 5)},
                     {"instrument.name": "NIRCAM", "exposure.ngroups": 5, "x": [1.0, None]})


def test_product_id_content_rules():
    m = _model()
    pid = I.product_id(m)
    reordered = DataModel("rate", dict(reversed(list(m.arrays.items()))),
                          dict(reversed(list(m.meta.items()))))
    assert I.product_id(reordered) == pid
    be = m.replace(arrays={"data": m["data"].astype(">f4")})
    assert I.product_id(be) == pid
    assert I.product_id(m.replace(kind="cal")) != pid
    assert I.product_id(m.replace(meta={"exposure.ngroups": 6})) != pid
    assert I.product_id(m.replace(arrays={"data": m["data"].astype("f8")})) != pid
    assert I.product_id(m.replace(arrays={"data": m["data"].reshape(5, 3)})) != pid
    renamed = DataModel("rate", {"sci": m["data"], "dq": m["dq"]}, m.meta)
    assert I.product_id(renamed) != pid
    assert I.product_id(m, "blake2b").startswith("blake2b:")


_CHILD = """
import pickle, sys
from store import identity as I
from transforms.model import DataModel
vals, models, recipes = pickle.load(sys.stdin.buffer)
out = [I.hash_bytes(I.encode(v)) for v in vals]
out += [I.product_id(DataModel(*m)) for m in models]
out += [I.recipe_key(*r) for r in recipes]
print("\\n".join(out))
"""


@settings(max_examples=3)
@given(st.lists(values, min_size=5, max_size=25))
def test_same_ids_in_a_fresh_process(run_python, vals):
    m = _model(1)
    models = [(m.kind, dict(m.arrays), dict(m.meta)),
              ("uncal", {"data": np.arange(24, dtype=">u2").reshape(1, 2, 3, 4)}, {"a": {"b": 1}})]
    recipes = [("jump", "1", {"z": 1, "a": [0.5, float("nan")]}, {"input": I.product_id(m)},
                {"gain": ("g.fits", I.hash_bytes(b"g"))})]
    expected = ([I.hash_bytes(I.encode(v)) for v in vals]
                + [I.product_id(DataModel(*x)) for x in models] + [I.recipe_key(*r) for r in recipes])
    seed = str(random.Random(json.dumps(expected)).randrange(1, 2**31))
    res = run_python(_CHILD, input=pickle.dumps((vals, models, recipes)), PYTHONHASHSEED=seed)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode().split() == expected


# Golden ids: the format is a contract. If one of these changes, every stored product or every
# recipe key changes with it: bump codec.MAGIC's version byte or KEY_SCHEMA_VERSION on purpose,
# say so in docs/identity.md, and only then update these values.
GOLDEN_PRODUCT = "sha256:d50ee8ca8464538f6d5c6a71e799f9d13a1a85c547548bf38d722c0d3171e7a7"
GOLDEN_RECIPE = "sha256:3e44ff78ebbc2f36a637adc9cbd493822b84bf52499c4f1b08410e7f0faeb14f"


def test_golden_ids_do_not_drift():
    m = DataModel("rate", {"data": np.array([[1.5, -0.0], [np.nan, 2]], ">f4"),
                           "dq": np.array([[0, 1], [2, 4]], "u4")},
                  {"instrument.name": "NIRCAM", "exposure.ngroups": 5, "x": [1.0, None, True, "s"]})
    assert I.KEY_SCHEMA_VERSION == 1
    assert I.product_id(m) == GOLDEN_PRODUCT
    assert I.recipe_key("jump", "1.0", {"rejection_threshold": 4.0, "flag_4_neighbors": True},
                        {"input": GOLDEN_PRODUCT},
                        {"gain": ("jwst_nircam_gain_0001.fits", "sha256:" + "ab" * 32)}) == GOLDEN_RECIPE


@settings(max_examples=60)
@given(params=st.dictionaries(st.text(max_size=6), st.one_of(st.integers(), st.floats(),
                                                             st.text(max_size=5), st.none()),
                              max_size=4),
       inputs=st.dictionaries(st.text(min_size=1, max_size=5), st.text(min_size=1, max_size=8),
                              max_size=3),
       refs=st.dictionaries(st.text(max_size=5), st.tuples(st.text(max_size=5),
                                                           st.text(max_size=5)), max_size=3))
def test_the_planners_keyer_hashes_exactly_the_canonical_body(params, inputs, refs):
    """recipe_keyer encodes step, version and params once; its key is the hash of the
    canonical encoding of the whole recipe body, byte for byte."""
    from store.identity import KEY_SCHEMA_VERSION, RECIPE_DOMAIN, digest, iter_encode, recipe_keyer

    body = {"schema": KEY_SCHEMA_VERSION, "step": "jump", "version": "1.0", "params": params,
            "inputs": inputs, "refs": {k: list(v) for k, v in refs.items()}}
    want = digest([RECIPE_DOMAIN, *iter_encode(body)])
    keyer = recipe_keyer("jump", "1.0", params)
    assert keyer(inputs, refs) == want
    assert keyer.bound(refs)(inputs) == want
