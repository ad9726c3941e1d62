"""Export a build's products as JWST files, with their provenance in the headers.

Products live in the store under their content ids; a user wants `*_rate.fits`, `*_cal.fits`,
`*_i2d.fits` and `*_cat.ecsv` with JWST names, opening in astropy and stdatamodels. Provenance
is not part of a product's content (so builds can share products); it is written here, from the
catalog: CAL_VER (the build's pipeline version), CO_BUILD (the build), CRDS_CTX, CRDS_VER,
SDP_VER, EPH_TYPE, the R_* reference files of every step in the product's lineage, and the
product id and recipe key (CO_PID, CO_RKEY). Stage-1 products are computed from the pixels
alone (so an ephemeris reissue does not recompute them); their files get the exposure's
pointing and ephemeris keywords back here, as JWST's rate files carry them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flows.ingest import POINTING_PREFIXES
from store import fits, spec_products

SUFFIX = {"rate": "rate", "rateints": "rateints", "cal": "cal", "i2d": "i2d", "catalog": "cat",
          "s2d": "s2d", "x1d": "x1d", "c1d": "c1d"}

LATEST_SQL = """
SELECT subject, stage, any_value(product_id) AS outputs, any_value(crds_context) AS context
FROM (SELECT *, max("at") OVER (PARTITION BY subject, stage) AS last
      FROM run_steps WHERE build = ? AND status = 'ok' AND product_id LIKE '{%')
WHERE "at" = last GROUP BY subject, stage ORDER BY stage, subject
"""


def provenance_keywords(ws: Any, product_id: str, build: str, context: str | None) -> dict[str, Any]:
    """Header provenance of one product, from its lineage in the catalog."""
    import crds

    from catalogs.questions import provenance

    prov: dict[str, Any] = {"build": build, "product_id": product_id,
                            "pipeline_version": ws.builds.get(build).pipeline_version,
                            "crds_version": crds.__version__}
    keys = ws.catalog.sql("SELECT recipe_key FROM realisations WHERE product_id = ? "
                          "ORDER BY created_at LIMIT 1", [product_id]).column(0).to_pylist()
    if keys:
        prov["recipe_key"] = keys[0]
    if context:
        prov["crds_context"] = context
    for row in provenance(ws.catalog, product_id).to_pylist():
        if row["section"] == "reference":
            prov[f"ref_file.{row['name']}"] = f"crds://{row['value']}"
        elif row["section"] == "sdp_version":
            prov["sdp_version"] = row["value"]
        elif row["section"] == "ephemeris" and row["detail"] == "pointing used":
            prov["eph_type"] = row["value"]
    return prov


def export_build(ws: Any, build: str, outdir: str | Path, kinds: tuple[str, ...] = tuple(SUFFIX)
                 ) -> list[Path]:
    """Write every product of ``build``'s latest successful runs; returns the paths."""
    from transforms.wcs import wcs_of

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for row in ws.catalog.sql(LATEST_SQL, [build]).to_pylist():
        for name, pid in json.loads(row["outputs"]).items():
            if name not in kinds:
                continue
            model = ws.store.get(pid)
            prov = provenance_keywords(ws, pid, build, row["context"])
            if not any(k.startswith(POINTING_PREFIXES) for k in model.meta):
                prov.update(_pointing(ws, row["subject"]))  # header only: the content is unchanged
            if spec_products.handles(model):  # spectra: one JWST-named file per source
                written += _export_spectra(model, row["subject"], SUFFIX[name], prov, out)
                continue
            ext = "ecsv" if model.kind == "catalog" else "fits"
            path = out / f"{row['subject']}_{SUFFIX[name]}.{ext}"
            wcs = wcs_of(model) if model.kind in ("cal", "i2d") and "wcs.kind" in model.meta else None
            written.append(fits.write_product(model, path, provenance=prov, wcs=wcs))
    return written


def _export_spectra(model: Any, subject: str, suffix: str, prov: dict[str, Any], out: Path
                    ) -> list[Path]:
    """A spectroscopic product as JWST files: a stage-3 product split per source, its name
    template filled (``jw01234-o003_s00001_nirspec_f100lp-g140h-s200a1-s200a2_x1d.fits``),
    each with the gwcs rebuilt from its parameters."""
    from transforms.spectral import file_wcs

    return [fits.write_product(m, out / f"{fname}_{suffix}.fits", provenance=prov,
                               wcs=file_wcs(m))
            for fname, m in spec_products.split_by_source(model, subject)]


def _pointing(ws: Any, subject: str) -> dict[str, Any]:
    """The pointing and ephemeris keywords of an exposure's current version ({} for an
    association)."""
    from store.keywords import product_table

    exp = ws.catalog.current_exposure(subject)
    if not exp:
        return {}
    table = product_table()
    return {k: v for k, v in ws.store.get(exp["pointing_id"]).meta.items()
            if k in table and v is not None}
