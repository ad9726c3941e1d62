"""extract_2d: cut each open NIRSpec slit out of the exposure into a multi-slit product.

As jwst's ``extract_2d`` for NRS_FIXEDSLIT and NRS_MSASPEC: per open slit recorded by
assign_wcs (2.0) the bounding box of its spectrum (``bbox``) is cut from data, dq, err and the
variances; the slit gets its ``wavelength`` plane (NaN outside the slit's y range and the
wavelength range), its attributes (name, xstart/ystart 1-based within the subarray as jwst's
SLTSTRT1/2, xsize/ysize, slitlet_id, source_id, source_name/alias, stellarity, source_xpos/
ypos, source_ra/dec, shutter_state, quadrant, shutter_id, slit_xscale/yscale,
dispersion_direction = 1, bunit) and its ``wcs`` (the slit parameters with the cutout's
origin) and ``s_region``. For the fixed-slit primary slit (FXD_SLIT) the source position in the
slit comes from the dither offsets, as jwst's ``get_source_xpos``: the ideal-frame point
(XOFFSET, YOFFSET) of the aperture through V2/V3 into the slit frame; secondary slits get
0, 0. ``slit_names`` / ``source_ids`` select slits as jwst's parameters do.

The cut is a plain slice (numpy), one per slit and plane; no resampling happens here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms.instruments.nirspec import slits as N
from transforms.model import DataModel
from transforms.registry import register
from transforms.spec2._common import NIRSPEC_SLIT_TYPES, VARIANCES, Spec2Error, exp_type, \
    multislit
from transforms.spec2.assign_wcs_v2 import s_region_of, slit_records

NAME, VERSION = "extract_2d", "1.0"
PLANES = ("data", "dq", "err") + VARIANCES


@dataclass(frozen=True)
class Extract2dParams:
    """jwst 3.0 Extract2dStep spec. The grism parameters are accepted for pinning compatibility
    and do nothing for NIRSpec slits."""

    slit_names: tuple[str, ...] | None = None
    source_ids: tuple[int, ...] | None = None
    source_ra: tuple[float, ...] | None = None
    source_dec: tuple[float, ...] | None = None
    source_max_sep: float = 2.0
    extract_orders: tuple[int, ...] | None = None
    grism_objects: tuple | None = None
    tsgrism_extract_height: int | None = None
    wfss_extract_half_height: int = 5
    wfss_mmag_extract: float | None = None
    wfss_nbright: int = 1000


def fs_source_position(meta, params: dict[str, Any]) -> tuple[float, float]:
    """(source_xpos, source_ypos) of the primary fixed slit from XOFFSET/YOFFSET: the target's
    ideal-frame position of the slit's aperture, whose ideal frame is the MSA plane moved to
    the slit centre (``instruments.nirspec.slits``)."""
    xo, yo = meta.get("dither.x_offset"), meta.get("dither.y_offset")
    if xo is None or yo is None:
        return 0.0, 0.0
    # the aperture's reference point is the slit centre: ideal (x, y) = MSA - centre
    return float(xo) / params["w"], float(yo) / params["h"]


def _select(recs: list[dict[str, Any]], p: Extract2dParams) -> list[dict[str, Any]]:
    if p.slit_names is None and p.source_ids is None:
        return recs
    names = {str(n) for n in (p.slit_names or ())}
    ids = {int(i) for i in (p.source_ids or ())}
    return [r for r in recs if r["name"] in names or int(r["geometry"]["source_id"]) in ids]


@register(NAME, VERSION, "spec2", Extract2dParams, (), keyword="S_EXTR2D",
          optional_reftypes=("wavelengthrange",), instruments=("NIRSPEC",))
def extract_2d(model: DataModel, refs, params: Extract2dParams) -> DataModel:
    """Cut every open slit (NIRSpec FS/MOS) into a multi-slit cal product."""
    et = exp_type(model)
    if et not in NIRSPEC_SLIT_TYPES:
        return model.replace(meta={"cal_step.extract_2d": "SKIPPED"})
    if "data" not in model.arrays:
        raise Spec2Error(f"{NAME}: the input has no data array (already extracted?)")
    recs = _select(slit_records(model), params)
    sx = int(model.get("subarray.xstart") or 1)
    sy = int(model.get("subarray.ystart") or 1)
    primary = str(model.get("instrument.fixed_slit") or "NONE").upper()
    out = []
    for r in recs:
        x0, y0, nx, ny = r["bbox"]
        g = r["geometry"]
        p = N.with_origin(r["params"], (sx - 1 + x0, sy - 1 + y0), (ny, nx))
        arrays = {}
        for plane in PLANES:
            if plane in model.arrays:
                arrays[plane] = np.ascontiguousarray(model[plane][..., y0:y0 + ny, x0:x0 + nx])
        arrays["wavelength"] = N.wavelength_array(p)
        sm = {k: g[k] for k in ("name", "slitlet_id", "source_id", "source_name",
                                "source_alias", "stellarity", "source_xpos", "source_ypos",
                                "source_ra", "source_dec", "shutter_state", "quadrant")}
        sm["source_id"] = int(sm["source_id"])
        if et == "NRS_FIXEDSLIT":
            if g["name"] == primary:
                sm["source_xpos"], sm["source_ypos"] = fs_source_position(model.meta, p)
            else:
                sm["source_xpos"], sm["source_ypos"] = 0.0, 0.0
        sm.update({"xstart": x0 + 1, "ystart": y0 + 1, "xsize": nx, "ysize": ny,
                   "shutter_id": int(g["xcen"]) + (int(g["ycen"]) - 1) * N.NROWS_Q
                   if g["kind"] == "msa" else N.FIXED_SLIT_NUMS.get(g["name"], 1) - 1,
                   "slit_xscale": 1.0 if g["kind"] == "fs" else 1.34,
                   "slit_yscale": 1.0 if g["kind"] == "fs" else 1.15,
                   "dispersion_direction": 1, "wcs": p,
                   "s_region": s_region_of(p, g["ymin"], g["ymax"]),
                   "bunit_data": model.get("bunit_data") or "DN/s"})
        out.append((g["name"], arrays, sm))
    # the exposure-level slit list is now carried slit by slit
    return multislit(model, out, "cal", {"cal_step.extract_2d": "COMPLETE"},
                     drop_prefixes=("wcs.",))
