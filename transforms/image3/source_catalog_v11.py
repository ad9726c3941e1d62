"""source_catalog 1.1: the measurements of 1.0 in JWST's catalog layout.

Version 1.0 (source_catalog.py) is kept unchanged for the builds locked on it. 1.1 measures
exactly what 1.0 measures (it calls it) and lays the catalog out as jwst 3.0's
``SourceCatalogStep`` writes its ``_cat.ecsv``:

- one ``sky_centroid`` column (ICRS, degrees) instead of ``sky_centroid_ra``/``_dec``: a
  (n, 2) array [ra, dec] that ``store.fits`` writes as an astropy ``SkyCoord`` column;
- JWST's column order: label, centroids, sky_centroid; the background, the aperture fluxes
  then their AB and Vega magnitudes (``aper<EE>_*``, ``aper_total_*``); the concentration
  indices, ``is_extended``, ``nn_label``, ``nn_dist``; the isophotal and shape columns;
- Vega magnitudes (``*_vegamag``, ``*_vegamag_err``) with the AB-Vega offset of the
  ``abvegaoffset`` reference for the mosaic's filter/pupil, 0 without one (as jwst);
- ``nn_label``, the label of each source's nearest neighbour (-1 for a lone source);
- the catalog-level metadata jwst writes (``aperture_params``, ``abvega_offset``).

jwst's DAOFind ``sharpness``/``roundness`` and the ``sky_orientation``/``sky_bbox_*`` columns
are not computed (docs/image3.md).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from transforms.image3 import source_catalog as v10
from transforms.image3.source_catalog import SourceCatalogParams
from transforms.model import DataModel
from transforms.registry import register

VERSION = "1.1"


def abvega_offset(mosaic: DataModel, ref: DataModel | None) -> float:
    """The AB - Vega offset of the mosaic's filter (and pupil) from an ``abvegaoffset``
    reference (arrays ``filter``, optional ``pupil``, ``abvega_offset``); 0.0 without one."""
    if ref is None or "abvega_offset" not in ref.arrays or "filter" not in ref.arrays:
        return 0.0
    filt = str(mosaic.get("instrument.filter") or "").upper()
    pupil = str(mosaic.get("instrument.pupil") or "").upper()
    filters = np.char.upper(np.asarray(ref["filter"]).astype(str))
    rows = filters == filt
    if "pupil" in ref.arrays and pupil:
        by_pupil = rows & (np.char.upper(np.asarray(ref["pupil"]).astype(str)) == pupil)
        rows = by_pupil if by_pupil.any() else rows
    hit = np.flatnonzero(rows)
    return float(np.asarray(ref["abvega_offset"], np.float64)[hit[0]]) if hit.size else 0.0


def _nn_label(x: np.ndarray, y: np.ndarray, label: np.ndarray) -> np.ndarray:
    if x.size < 2:
        return np.full(x.size, -1, np.int64)
    from scipy.spatial import cKDTree

    xy = np.column_stack([x, y])
    _, idx = cKDTree(xy).query(xy, k=2)
    return np.asarray(label, np.int64)[idx[:, 1]]


def jwst_layout(cat: DataModel, p: SourceCatalogParams, offset: float) -> DataModel:
    """A 1.0 catalog in jwst's columns and order (pure; the input is not changed)."""
    a = cat.arrays
    n = len(a["label"])
    ees = (p.aperture_ee1, p.aperture_ee2, p.aperture_ee3)
    out: dict[str, np.ndarray] = {
        "label": a["label"], "xcentroid": a["xcentroid"], "ycentroid": a["ycentroid"],
        "sky_centroid": np.column_stack([np.asarray(a["sky_centroid_ra"], np.float64),
                                         np.asarray(a["sky_centroid_dec"], np.float64)]
                                        ).reshape(n, 2),
        "aper_bkg_flux": a["aper_bkg_flux"], "aper_bkg_flux_err": a["aper_bkg_flux_err"]}
    names = [f"aper{ee}" for ee in ees] + ["aper_total"]
    for nm in names:
        out[f"{nm}_flux"], out[f"{nm}_flux_err"] = a[f"{nm}_flux"], a[f"{nm}_flux_err"]
    for nm in names:
        out[f"{nm}_abmag"], out[f"{nm}_abmag_err"] = a[f"{nm}_abmag"], a[f"{nm}_abmag_err"]
    for nm in names:
        out[f"{nm}_vegamag"] = np.asarray(a[f"{nm}_abmag"], np.float64) - offset
        out[f"{nm}_vegamag_err"] = a[f"{nm}_abmag_err"]
    e1, e2, e3 = ees
    for ci in (f"CI_{e2}_{e1}", f"CI_{e3}_{e2}", f"CI_{e3}_{e1}"):
        out[ci] = a[ci]
    out["is_extended"] = a["is_extended"]
    out["nn_label"] = _nn_label(np.asarray(a["xcentroid"]), np.asarray(a["ycentroid"]),
                                np.asarray(a["label"]))
    out["nn_dist"] = a["nn_dist"]
    out["isophotal_flux"], out["isophotal_flux_err"] = a["isophotal_flux"], a["isophotal_flux_err"]
    out["isophotal_abmag"] = a["isophotal_abmag"]
    out["isophotal_abmag_err"] = a["isophotal_abmag_err"]
    out["isophotal_vegamag"] = np.asarray(a["isophotal_abmag"], np.float64) - offset
    out["isophotal_vegamag_err"] = a["isophotal_abmag_err"]
    for c in ("isophotal_area", "semimajor_sigma", "semiminor_sigma", "ellipticity",
              "orientation"):
        out[c] = a[c]
    meta = dict(cat.meta)
    radii = meta.get("source_catalog.aperture_radii_pix") or {}
    corr = meta.get("source_catalog.aperture_corrections") or {}
    meta["aperture_params"] = {
        "aperture_ee": list(ees),
        "aperture_radii": [radii.get(str(ee)) for ee in ees],
        "aperture_corrections": [corr.get(str(ee)) for ee in ees]}
    meta["abvega_offset"] = float(offset)
    meta["units"] = {**dict(meta.get("units") or {}), "vegamag": "mag(Vega)"}
    return DataModel("catalog", out, meta)


@register("source_catalog", VERSION, "image3", SourceCatalogParams,
          optional_reftypes=("apcorr", "abvegaoffset"), keyword="S_SRCCAT")
def source_catalog(mosaic: DataModel, refs: Mapping[str, DataModel],
                   params: SourceCatalogParams) -> DataModel:
    """The 1.0 measurements in jwst's catalog layout (one sky_centroid column, Vega magnitudes,
    nn_label)."""
    refs = refs or {}
    cat = v10.source_catalog(mosaic, refs, params)
    return jwst_layout(cat, params, abvega_offset(mosaic, refs.get("abvegaoffset")))
