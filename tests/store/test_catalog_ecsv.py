"""Source catalogs as jwst writes its _cat.ecsv: one SkyCoord sky_centroid column, provenance
as FITS keyword names at the top of the ECSV meta (not under meta['calops']), jwst's
aperture_params/abvega_offset; calops reads its own files back to the same content."""

from __future__ import annotations

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from store import fits as F
from store.identity import product_id
from transforms.model import DataModel


def _catalog(n: int = 4) -> DataModel:
    rng = np.random.default_rng(1)
    sky = np.column_stack([53.1 + rng.random(n) * 1e-2, -27.8 + rng.random(n) * 1e-2])
    return DataModel("catalog", {"label": np.arange(1, n + 1), "xcentroid": rng.random(n) * 100,
                                 "sky_centroid": sky, "aper30_flux": rng.random(n) * 1e-6,
                                 "is_extended": rng.random(n) > 0.5},
                     {"instrument.name": "NIRCAM", "instrument.filter": "F150W",
                      "aperture_params": {"aperture_ee": [30, 50, 70]}, "abvega_offset": 1.25})


def test_sky_centroid_is_one_skycoord_column_and_reads_back(tmp_path):
    m = _catalog()
    path = F.write_product(m, tmp_path / "jw01234-o001_t001_nircam_clear-f150w_cat.ecsv",
                           provenance={"build": "11.3", "pipeline_version": "1.18.0",
                                       "crds_context": "jwst_0002.pmap",
                                       "product_id": product_id(m), "ref_file.flat": "crds://f"})
    t = Table.read(path)
    assert isinstance(t["sky_centroid"], SkyCoord) and t["sky_centroid"].frame.name == "icrs"
    assert np.allclose(t["sky_centroid"].ra.deg, m["sky_centroid"][:, 0], rtol=0, atol=1e-12)
    assert "sky_centroid_ra" not in t.colnames
    assert t.meta["CAL_VER"] == "1.18.0" and t.meta["CRDS_CTX"] == "jwst_0002.pmap"
    assert t.meta["CO_BUILD"] == "11.3" and t.meta["CO_PID"] == product_id(m)
    assert t.meta["aperture_params"] == {"aperture_ee": [30, 50, 70]}
    assert t.meta["abvega_offset"] == 1.25
    assert "provenance" not in t.meta["calops"]
    back = F.read_product(path)
    assert product_id(back) == product_id(m)
    prov = F.read_provenance(path)
    assert prov["calops.build"] == "11.3" and prov["ref_file.flat"] == "crds://f"


def test_an_empty_catalog_round_trips(tmp_path):
    m = DataModel("catalog", {"label": np.zeros(0, np.int64),
                              "sky_centroid": np.zeros((0, 2))}, {})
    path = F.write_product(m, tmp_path / "x_cat.ecsv")
    assert product_id(F.read_product(path)) == product_id(m)
