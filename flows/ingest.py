"""Ingest level-1b exposures: the pixels and the pointing are stored apart.

An uncal file becomes two stored products: ``uncal`` (the pixel payload and the readout
metadata that stage 1 reads) and ``pointing`` (attitude, WCS reference, velocity aberration and
ephemeris keywords, read only from assign_wcs onward). A reissue that changes only the pointing
(a definitive ephemeris) therefore leaves every stage-1 recipe key unchanged.

Each ingest of a file records an ``exposures`` row. Re-ingesting identical content is a no-op;
different content for a known exposure is a new version that supersedes the old one; nothing is
ever overwritten. Re-ingesting the original file also repairs a stored object of it that no
longer verifies (the bad copy is moved to the store's quarantine and the good one stored), and
every new version's rows are also stored as a record object by the workspace's catalog
(catalogs/recovery.py), so ``calops repair`` can rebuild the exposures table from the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalogs.recipes import Ingest
from flows.workspace import Workspace
from store import fits
from transforms.model import DataModel

POINTING_PREFIXES = ("wcsinfo.", "pointing.", "velocity_aberration.", "ephemeris.")
# Provenance of the level-1b file itself: recorded on the exposure row, not hashed into pixels.
PROVENANCE_KEYS = ("meta.data_processing_software_version", "data_processing_software_version",
                   "filename", "date")


def split(uncal: DataModel) -> tuple[DataModel, DataModel]:
    """(pixels, pointing): the uncal without pointing metadata, and the pointing alone."""
    pointing = {k: v for k, v in uncal.meta.items() if k.startswith(POINTING_PREFIXES)}
    drop = tuple(pointing) + tuple(k for k in PROVENANCE_KEYS if k in uncal.meta)
    return uncal.replace(drop=drop), DataModel("pointing", {}, pointing)


def exposure_id(meta: Mapping[str, Any], filename: str) -> str:
    """The JWST exposure name (file name without the ``_uncal.fits`` suffix)."""
    name = Path(filename).name
    for suffix in ("_uncal.fits", ".fits"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass
class Ingested:
    exposure_id: str
    version: int
    pixels_id: str
    pointing_id: str
    status: str  # "new", "unchanged", "reissued", "repaired"
    changed: tuple[str, ...] = ()


def is_msa_metafile(path: str | Path) -> bool:
    """A NIRSpec MSA metadata file (``jw01234006001_01_msa.fits``), not an exposure."""
    return Path(path).name.endswith("_msa.fits")


def with_msa_metadata(uncal: DataModel, path: str | Path) -> DataModel:
    """A NIRSpec MOS uncal with its MSA metadata: jwst's assign_wcs reads the file MSAMETFL
    names from the exposure's directory; calops reads it here, once, into the stored pixels'
    ``msa.shutter_info`` / ``msa.source_info`` (the shutters are part of what the exposure
    is). An uncal that already carries them, or whose file is not beside it, is unchanged
    (then spec2's assign_wcs says what is missing)."""
    name = uncal.get("instrument.msa_metadata_file")
    if (str(uncal.get("exposure.type", "")).upper() != "NRS_MSASPEC" or not name
            or uncal.get("msa.shutter_info") is not None):
        return uncal
    f = Path(path).parent / Path(str(name)).name
    if not f.is_file():
        return uncal
    from store.spec_references import read_msa_metafile

    return uncal.replace(meta=read_msa_metafile(f))


def ingest_file(ws: Workspace, path: str | Path, run_id: str) -> Ingested:
    """Store one uncal file's pixels and pointing and record the exposure version (a MOS
    exposure's MSA metadata file is read from beside it: ``with_msa_metadata``)."""
    uncal = with_msa_metadata(fits.read_uncal(str(path)), path)
    pixels, pointing = split(uncal)
    eid = exposure_id(uncal.meta, str(path))
    sdp = uncal.get("data_processing_software_version") or uncal.get("calibration_software_version")
    eph = uncal.get("ephemeris.type")
    current = ws.catalog.current_exposure(eid)
    (pixels_id, fixed_pixels), (pointing_id, fixed_pointing) = (
        _put_repairing(ws.store, pixels), _put_repairing(ws.store, pointing))
    fixed = tuple(n for n, f in (("pixels object restored", fixed_pixels),
                                 ("pointing object restored", fixed_pointing)) if f)
    if current is not None:
        same = (current["pixels_id"] == pixels_id and current["pointing_id"] == pointing_id
                and current["sdp_ver"] == sdp and current["eph_type"] == eph)
        if same:
            return Ingested(eid, current["version"], pixels_id, pointing_id,
                            "repaired" if fixed else "unchanged", fixed)
    changed = ()
    if current is not None:
        changed = tuple(n for n, a, b in (
            ("pixels", current["pixels_id"], pixels_id), ("pointing", current["pointing_id"], pointing_id),
            ("sdp_ver", current["sdp_ver"], sdp), ("eph_type", current["eph_type"], eph)) if a != b)
    version = 1 if current is None else current["version"] + 1
    ws.catalog.record_ingest(Ingest(
        exposure_id=eid, version=version, pixels_id=pixels_id, pointing_id=pointing_id,
        pixels_meta=pixels.meta, pointing_meta=pointing.meta, sdp_ver=sdp, eph_type=eph,
        filename=Path(path).name, program=str(uncal.get("observation.program_number", "")),
        instrument=uncal.get("instrument.name"), detector=uncal.get("instrument.detector"),
        supersedes=None if current is None else current["version"]), run_id)
    return Ingested(eid, version, pixels_id, pointing_id,
                    "new" if current is None else "reissued", changed)


def _put_repairing(store: Any, model: DataModel) -> tuple[str, bool]:
    """Store ``model``; if its object is there but fails verification, move the bad copy to
    the quarantine and store this one. Returns (id, whether a bad copy was replaced)."""
    from store.codec import object_chunks
    from store.identity import digest

    pid = digest(object_chunks(model), store.algo)
    if store.has(pid) and store.check(pid) not in (None, "missing"):
        store.quarantine(pid)
        if store.put(model) != pid:  # pragma: no cover - the codec is deterministic
            raise AssertionError("re-stored object has another id")
        return pid, True
    return store.put(model), False

