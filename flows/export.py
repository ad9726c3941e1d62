"""Export a build's products as JWST files, with their provenance in the headers.

Products live in the store under their content ids; a user wants `*_rate.fits`, `*_cal.fits`,
`*_i2d.fits` and `*_cat.ecsv` with JWST names, opening in astropy and stdatamodels. Provenance
is not part of a product's content (so builds can share products); it is written here, from the
catalog: CAL_VER (the build's pipeline version), CO_BUILD (the build), CRDS_CTX, CRDS_VER,
SDP_VER, EPH_TYPE, the R_* reference files of every step in the product's lineage, and the
product id and recipe key (CO_PID, CO_RKEY). Stage-1 products are computed from the pixels
alone (so an ephemeris reissue does not recompute them); their files get the exposure's
pointing and ephemeris keywords back here, as JWST's rate files carry them.

Safety (docs/integrity.md): file names are built from a whitelist of characters
(``store.names.safe_name``: a subject name such as ``../../x`` or ``café 1`` becomes
``x-<hash>`` or ``caf_1-<hash>``) and every path is checked to be directly inside the target
directory. Nothing is written unless every object re-verifies and, without ``overwrite``, no
target file exists yet; a failure part-way removes the files this export created. The
associations of the stage-3 products are written beside them as JWST ``_asn.json`` files whose
members name the exported ``_cal.fits`` files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

from flows.ingest import POINTING_PREFIXES
from store import fits, spec_products
from store.errors import CalopsError
from store.names import safe_name, safe_path

SUFFIX = {"rate": "rate", "rateints": "rateints", "cal": "cal", "i2d": "i2d", "catalog": "cat",
          "s2d": "s2d", "s3d": "s3d", "x1d": "x1d", "c1d": "c1d"}

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
    from store.keywords import product_table

    prov: dict[str, Any] = {"build": build, "product_id": product_id,
                            "pipeline_version": ws.builds.get(build).pipeline_version,
                            "crds_version": crds.__version__}
    keys = ws.catalog.sql("SELECT recipe_key FROM realisations WHERE product_id = ? "
                          "ORDER BY created_at LIMIT 1", [product_id]).column(0).to_pylist()
    if keys:
        prov["recipe_key"] = keys[0]
    if context:
        prov["crds_context"] = context
    known = product_table()
    for row in provenance(ws.catalog, product_id).to_pylist():
        if row["section"] == "reference":
            # a reftype without a header keyword in stdatamodels' schema (IFU apcorr; msaoper,
            # which the schema names badshutter) is in the lineage only, as jwst writes none
            if f"ref_file.{row['name']}" in known:
                prov[f"ref_file.{row['name']}"] = f"crds://{row['value']}"
        elif row["section"] == "sdp_version":
            prov["sdp_version"] = row["value"]
        elif row["section"] == "ephemeris" and row["detail"] == "pointing used":
            prov["eph_type"] = row["value"]
    return prov


class ExportError(CalopsError):
    """An export that cannot be done as asked (target not a directory, files in the way)."""


def _target_dir(outdir: str | os.PathLike) -> Path:
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is not a directory; give a directory to export into")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ExportError(f"{out} cannot be created: a part of the path is a file") from None
    except NotADirectoryError:
        raise ExportError(f"{out} cannot be created: a part of the path is a file") from None
    except OSError as exc:
        raise ExportError(f"{out} cannot be created: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ExportError(f"{out} is not writable")
    return out


_OUR_TMP = re.compile(r"^\..+\.(\d+)\.\d+\.tmp$")


def _clean_stale_tmp(out: Path) -> int:
    """Remove temporary files of earlier exports whose process is gone (killed mid-write)."""
    n = 0
    for p in out.iterdir():
        m = _OUR_TMP.match(p.name)
        if not m or not p.is_file():
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # its writer is alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n


def plan_export(ws: Any, build: str, kinds: tuple[str, ...] = tuple(SUFFIX),
                associations: bool = True) -> list[dict[str, Any]]:
    """What ``export_build`` writes: ``[{"name", "subject", "output", "product_id",
    "context"} | {"name", "asn": subject}]`` (file names already whitelisted)."""
    from transforms import registry

    items: list[dict[str, Any]] = []
    asn_stages = {s.name for s in registry.stages().values() if s.subject == "association"}
    for row in ws.catalog.sql(LATEST_SQL, [build]).to_pylist():
        try:
            outputs = json.loads(row["outputs"])
        except (TypeError, ValueError):
            continue
        wrote = False
        for name, pid in sorted(outputs.items()):
            if name not in kinds or name not in SUFFIX:
                continue
            ext = "ecsv" if name == "catalog" else "fits"  # spectra: see _expand_spectra
            items.append({"name": f"{safe_name(row['subject'])}_{SUFFIX[name]}.{ext}",
                          "subject": row["subject"], "output": name, "product_id": pid,
                          "context": row["context"]})
            wrote = True
        if associations and wrote and row["stage"] in asn_stages:
            items.append({"name": f"{safe_name(untemplated(row['subject']))}_asn.json",
                          "asn": row["subject"]})
    names = [i["name"] for i in items]
    if len(set(names)) != len(names):  # pragma: no cover - safe_name keeps names distinct
        dup = next(n for n in names if names.count(n) > 1)
        raise ExportError(f"two products would be written as {dup}; nothing was written")
    return items


def export_build(ws: Any, build: str, outdir: str | Path, kinds: tuple[str, ...] = tuple(SUFFIX),
                 overwrite: bool = False, associations: bool = True) -> list[Path]:
    """Write every product of ``build``'s latest successful runs (and the associations of its
    stage-3 products); returns the paths. Refuses to replace existing files unless
    ``overwrite``; writes nothing if any object fails verification."""
    from transforms.wcs import wcs_of

    out = _target_dir(outdir)
    _clean_stale_tmp(out)
    items = _expand_spectra(ws, plan_export(ws, build, kinds, associations))
    paths = [safe_path(out, i["name"]) for i in items]
    if len(set(paths)) != len(paths):
        dup = next(p for p in paths if paths.count(p) > 1)
        raise ExportError(f"two products would be written as {dup.name}; nothing was written")
    existing = [p for p in paths if os.path.lexists(p)]
    if existing and not overwrite:
        raise ExportError(f"{len(existing)} file(s) exist already in {out} (e.g. "
                          f"{existing[0].name}); nothing was written; pass --overwrite to "
                          "replace them")
    for i in items:  # every object intact before the first file is written
        if "product_id" in i:
            problem = ws.store.check(i["product_id"])
            if problem:
                raise ExportError(f"{i['output']} of {i['subject']} ({i['product_id']}) "
                                  f"{'is missing from the store' if problem == 'missing' else 'fails verification'}"
                                  "; nothing was written (`calops verify`, then re-run it)")
    existed = {p for p in existing}
    written: list[Path] = []
    try:
        for item, path in zip(items, paths):
            if "asn" in item:
                _write_json(path, association_document(ws, item["asn"], items))
                written.append(path)
                continue
            pid = item["product_id"]
            model = item.get("part") or ws.store.get(pid)
            prov = provenance_keywords(ws, pid, build, item["context"])
            if not any(k.startswith(POINTING_PREFIXES) for k in model.meta):
                prov.update(_pointing(ws, item["subject"]))  # header only: content unchanged
            if "part" in item and item.get("ifu") and model.kind == "s3d":  # one cube
                from transforms.ifu import file_wcs as cube_wcs

                wcs = cube_wcs(model)
            elif "part" in item:  # one source of a spectroscopic product
                from transforms.spectral import file_wcs

                wcs = file_wcs(model)
            else:
                wcs = wcs_of(model) if model.kind in ("cal", "i2d") and "wcs.kind" in model.meta \
                    else None
                if wcs is None and model.kind in ("cal", "s3d"):  # IFU slices or cubes
                    from transforms.ifu import file_wcs as ifu_wcs

                    wcs = ifu_wcs(model)
            written.append(fits.write_product(model, path, provenance=prov, wcs=wcs,
                                              overwrite=True))
    except BaseException:
        for p in written:  # nothing half-done: take back what this export created
            if p not in existed:
                with contextlib.suppress(OSError):
                    p.unlink()
        raise
    return written


def _is_spectral(ws: Any, pid: str) -> bool:
    """Whether a stored product is written by ``store.spec_products`` (from its header)."""
    from catalogs.recovery import peek_header

    head = peek_header(ws.store, pid)
    if head is None:
        return False
    from transforms.model import DataModel

    model = DataModel(str(head["kind"]), {}, dict(head["meta"]))
    return spec_products.handles(model) or any(a[0] == "wavelength" for a in head["arrays"])


def _expand_spectra(ws: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spectroscopic products become one item per source, each named from the association's
    template filled with the source's id and slit (values from the data: whitelisted too).
    Their models are read (verified) here, so every name is known before anything is
    written."""
    out: list[dict[str, Any]] = []
    for item in items:
        if "product_id" in item and "{cube}" in item["subject"]:  # IFU stage 3: per cube
            out += _split_cubes(ws.store.get(item["product_id"]), item, SUFFIX[item["output"]])
            continue
        if "product_id" not in item or not _is_spectral(ws, item["product_id"]):
            out.append(item)
            continue
        model = ws.store.get(item["product_id"])
        suffix = SUFFIX[item["output"]]
        for fname, part in spec_products.split_by_source(model, item["subject"]):
            out.append({**item, "name": f"{safe_name(fname)}_{suffix}.fits", "part": part})
    return out


def _split_cubes(model: Any, item: dict[str, Any], suffix: str) -> list[dict[str, Any]]:
    """An IFU stage-3 product (s3d or x1d, its association's name with a ``{cube}`` field) as
    one item per cube, named as jwst's cube_build names them
    (``jw01234-o007_t001_miri_ch1-short_s3d.fits``)."""
    from store import ifu_products
    from transforms.associations_spec import fill_cube_name

    out = []
    for cube, part in ifu_products.split_by_cube(model):
        cube = cube or part.get("cube.name") or _spectrum_name(part)
        out.append({**item, "name": f"{safe_name(fill_cube_name(item['subject'], cube))}"
                                    f"_{suffix}.fits", "part": part, "ifu": True})
    return out


def _spectrum_name(model: Any) -> str | None:
    """The cube name of a single-cube product (its x1d's spectrum is named after it)."""
    names = model.get("spectra") or []
    if names:
        return str(names[0])
    name = model.get("cube.name")
    return None if name in (None, "cube") else str(name)


def _export_spectra(model: Any, subject: str, suffix: str, prov: dict[str, Any], out: Path
                    ) -> list[Path]:
    """A spectroscopic product as JWST files: a stage-3 product split per source, its name
    template filled (``jw01234-o003_s00001_nirspec_f100lp-g140h-s200a1-s200a2_x1d.fits``) and
    whitelisted, each with the gwcs rebuilt from its parameters (what ``export_build`` does
    for each spectroscopic product)."""
    from transforms.spectral import file_wcs

    return [fits.write_product(m, safe_path(out, f"{safe_name(fname)}_{suffix}.fits"),
                               provenance=prov, wcs=file_wcs(m))
            for fname, m in spec_products.split_by_source(model, subject)]


def association_document(ws: Any, asn_name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The JWST level-3 association of ``asn_name`` as recorded, with its product name and
    member names made safe and each member pointing at the exported ``_cal.fits``."""
    rows = ws.catalog.sql("SELECT exposure_id, exptype, asn_json FROM current_associations "
                          "WHERE asn_name = ? ORDER BY exposure_id", [asn_name]).to_pylist()
    doc: dict[str, Any] = {}
    for r in rows:
        if r["asn_json"]:
            with contextlib.suppress(ValueError):
                doc = json.loads(r["asn_json"])
                break
    product = next((p for p in doc.get("products", []) if p.get("name") == asn_name), None)
    members = ([(str(m.get("expname")), m.get("exptype", "science")) for m in product["members"]]
               if product else [(r["exposure_id"], r["exptype"] or "science") for r in rows])
    from catalogs.catalog import exposure_of

    out = {k: v for k, v in doc.items() if k != "products"}
    out.setdefault("asn_type", "image3")
    out.setdefault("asn_rule", "candidate_Asn_Lv3Image")
    out.setdefault("asn_id", "o000")
    out.setdefault("asn_pool", "calops")
    out.setdefault("program", "")
    out.setdefault("target", "")
    out.setdefault("version_id", None)
    out.setdefault("code_version", "calops")
    out.setdefault("degraded_status", "No known degraded exposures in association.")
    out.setdefault("constraints", "")
    out["products"] = [{"name": _product_name(asn_name), "members": [
        {"expname": f"{safe_name(exposure_of(e))}_cal.fits", "exptype": t} for e, t in members]}]
    return out


# jwst's spec3 product names are templates its pipeline fills per source ({source_id} ...)
_TEMPLATE_FIELD = re.compile(r"[_-]?\{(?:source_id|slit_name|cube)\}")


def untemplated(name: str) -> str:
    """A product name without its per-source template fields (what the asn file is named)."""
    return _TEMPLATE_FIELD.sub("", name)


def _product_name(name: str) -> str:
    """The association's product name: a spec3 template stays a template (calops stage and
    jwst fill it per source) when the rest of it is safe; anything else is made safe."""
    # an IFU product's {cube} is calops' own field: jwst's cube_build appends the cube's
    # channel/band (grating/filter) to the association's product name itself
    name = name.replace("_{cube}", "").replace("{cube}", "")
    bare = untemplated(name)
    return name if bare and bare != name and safe_name(bare) == bare else safe_name(name)


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.0.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True, ensure_ascii=True)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


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
