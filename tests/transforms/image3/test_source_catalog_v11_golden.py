"""Golden id of source_catalog 1.1 (jwst's catalog layout over 1.0's measurements), on the
image3 golden mosaic (test_image3_golden.py's seed-14 mosaic), canonicalised as 1.0's is
(28 significant bits: golden_ids.py docstring), and what 1.1 adds over 1.0."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = Path(__file__).resolve().parent
for p in (str(_HERE.parent), str(_HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from golden_ids import Canon, check, ids_of  # noqa: E402

from transforms.image3.source_catalog import SourceCatalogParams  # noqa: E402
from transforms.image3.source_catalog import source_catalog as v10  # noqa: E402
from transforms.image3.source_catalog_v11 import source_catalog  # noqa: E402
from transforms.model import DataModel  # noqa: E402

pytest.importorskip("store.identity", reason="product ids come from store.identity")

PINNED = ("source_catalog==1.1",)
CANON = Canon(bits=28)


@functools.cache
def _mosaic():
    spec = importlib.util.spec_from_file_location("_image3_golden_inputs",
                                                  _HERE / "test_image3_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod._mosaic(seed=14)


@functools.cache
def _first():
    return source_catalog(_mosaic(), {}, SourceCatalogParams())


def test_golden_product_id():
    out = _first()
    check({"source_catalog==1.1": ids_of(out, CANON)})
    assert ids_of(source_catalog(_mosaic(), {}, SourceCatalogParams())) == ids_of(out)


def test_jwst_layout_over_the_same_measurements():
    new, old = _first(), v10(_mosaic(), {}, SourceCatalogParams())
    assert new.get("source_catalog.nsources") >= 10
    names = list(new.arrays)
    assert names[:6] == ["label", "xcentroid", "ycentroid", "sky_centroid", "aper_bkg_flux",
                         "aper_bkg_flux_err"]
    assert "sky_centroid_ra" not in names and new["sky_centroid"].shape == (len(old["label"]), 2)
    assert np.array_equal(new["sky_centroid"][:, 0], old["sky_centroid_ra"])
    assert np.array_equal(new["sky_centroid"][:, 1], old["sky_centroid_dec"])
    # fluxes, then AB magnitudes, then Vega magnitudes (jwst's order)
    flux, ab, vega = (names.index(f"aper30_{k}") for k in ("flux", "abmag", "vegamag"))
    assert flux < names.index("aper_total_flux") < ab < names.index("aper_total_abmag") < vega
    for c in old.arrays:
        if c not in ("sky_centroid_ra", "sky_centroid_dec"):
            assert np.array_equal(new[c], old[c], equal_nan=True), c
    assert np.array_equal(new["aper_total_vegamag"], old["aper_total_abmag"], equal_nan=True)
    x, y = new["xcentroid"], new["ycentroid"]
    d = np.hypot(x[:, None] - x[None], y[:, None] - y[None])
    np.fill_diagonal(d, np.inf)
    assert np.array_equal(new["nn_label"], new["label"][np.argmin(d, axis=1)])
    assert new.get("aperture_params")["aperture_ee"] == [30, 50, 70]


def test_vega_magnitudes_use_the_abvegaoffset_reference():
    ref = DataModel("ref.abvegaoffset", {"filter": np.array(["F150W", "F200W"]),
                                         "pupil": np.array(["CLEAR", "CLEAR"]),
                                         "abvega_offset": np.array([1.2, 1.75])}, {})
    cat = source_catalog(_mosaic(), {"abvegaoffset": ref}, SourceCatalogParams())
    base = _first()
    assert cat.get("abvega_offset") == 1.75  # the golden mosaic is F200W/CLEAR
    assert np.allclose(cat["isophotal_vegamag"], base["isophotal_abmag"] - 1.75, equal_nan=True)
