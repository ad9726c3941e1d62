"""assign_wcs: attach the imaging WCS (as rebuildable metadata) to a rate product.

The gwcs itself is not JSON, so the step records the inputs that define it — the distortion
reference parameters (``wcs.distortion``), ``wcs.kind`` and ``wcs.shape`` next to the
exposure's ``wcsinfo.*``/``velocity_aberration.*``/``subarray.*`` — and ``transforms.wcs.wcs_of``
rebuilds it. It also writes ``wcsinfo.s_region`` (the footprint polygon) as JWST does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transforms import wcs as W
from transforms.image2._common import Image2Error, need_arrays, need_ref
from transforms.model import DataModel
from transforms.registry import register

NAME, VERSION = "assign_wcs", "1.0"


@dataclass(frozen=True)
class AssignWcsParams:
    """JWST assign_wcs spec. The SIP fields are accepted for pinning compatibility; calops keeps
    the exact gwcs and does not write a SIP approximation, so they do not change the output."""

    sip_approx: bool = True
    sip_max_pix_error: float = 0.01
    sip_degree: int | None = None
    sip_max_inv_pix_error: float = 0.01
    sip_inv_degree: int | None = None
    sip_npoints: int = 12
    slit_y_low: float = -0.55
    slit_y_high: float = 0.55
    nrs_ifu_slice_wcs: bool = False


def s_region(w, shape: tuple[int, int]) -> str:
    """The JWST ``S_REGION`` string: the four outer pixel corners on the sky."""
    ny, nx = shape
    x = np.array([-0.5, nx - 0.5, nx - 0.5, -0.5])
    y = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5])
    ra, dec = w.forward_transform(x, y)
    return "POLYGON ICRS " + " ".join(f"{a:.9f} {d:.9f}" for a, d in zip(ra, dec))


@register(NAME, VERSION, "image2", AssignWcsParams, ("distortion",), keyword="S_WCS")
def assign_wcs(model: DataModel, refs, params: AssignWcsParams) -> DataModel:
    """Record the detector -> v2v3 -> world WCS of a rate image (kind becomes ``cal``)."""
    need_arrays(model, NAME, "data")
    dist = need_ref(refs, "distortion", NAME)
    shape = tuple(int(s) for s in np.shape(model["data"])[-2:])
    try:
        meta = W.wcs_meta(model.meta, dist, shape=shape)
        w = W.build_wcs({**model.meta, **meta}, dist, shape=shape)
    except (W.WCSError, KeyError) as exc:
        raise Image2Error(f"{NAME}: {exc}") from exc
    region = s_region(w, shape)
    if not np.all(np.isfinite([float(v) for v in region.split()[2:]])):
        raise Image2Error(f"{NAME}: the WCS maps the detector corners to NaN; check wcsinfo.*")
    meta.update({"wcsinfo.s_region": region, "cal_step.assign_wcs": "COMPLETE"})
    kind = "cal" if model.kind == "rate" else model.kind
    return model.replace(kind=kind, meta=meta)
