"""Golden product id of extract_1d 1.2 (1.1 with jwst 3.0's IFU background clip, annulus
variance and zero variance columns) on test_ifu_golden's MRS cube, in the same canonical form
as 1.1's; and what 1.2 keeps of 1.1 there."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = Path(__file__).resolve().parent
for p in (str(_HERE), str(_HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from golden_ids import check, ids_of
from test_ifu_golden import X1D, mrs_refs, mrs_s3d

from transforms import registry

pytest.importorskip("store.identity", reason="product ids come from store.identity")

PINNED = ("extract_1d==1.2",)


def _x1d(version):
    spec = registry.get("extract_1d", version)
    return spec.apply(mrs_s3d(), mrs_refs(), spec.make_params({"ifu_rfcorr": False}))


def test_golden_product_id():
    check({"extract_1d==1.2": ids_of(_x1d("1.2"), X1D)}, PINNED)


def test_v12_keeps_v11_but_the_background_rules():
    """Same planes, apertures and flags; jwst's clip moves the background (the golden cube has
    a point source and a background annulus); the variance columns are zero."""
    a, b = _x1d("1.1"), _x1d("1.2")
    assert set(a.arrays) == set(b.arrays)
    for k in a.arrays:
        col = k.split(":")[-1]
        if col.endswith("var_poisson"):
            assert np.any(a[k]) and not np.any(b[k])
        elif col in ("wavelength", "npixels", "dq"):
            np.testing.assert_array_equal(a[k], b[k])
        elif col == "background":
            assert not np.array_equal(a[k], b[k])


def test_v12_gives_the_slit_version_products(monkeypatch):
    """Slit spectra go to 1.0 unchanged: the slit golden input gives 1.0's pinned id."""
    import importlib.util

    from golden_ids import GOLDEN

    path = _HERE.parent / "spec" / "test_spec_golden.py"
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("_spec_golden_for_x1d12", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    new = registry.get("extract_1d", "1.2")

    def call(model, refs, params):
        return new.apply(model, refs, new.params(**{
            k: v for k, v in params.__dict__.items() if k in new.params.__dataclass_fields__}))

    monkeypatch.setattr(mod, "extract_1d", call)
    make, canon = mod.CASES["extract_1d==1.0"]
    assert ids_of(make(), canon) == GOLDEN["extract_1d==1.0"]
