"""resample (image2): drizzle one calibrated exposure onto a north-up-or-native tangent plane.

The numerics live in ``transforms.resample`` (shared with stage 3); this module is the step:
JWST's ResampleStep parameters, the single-exposure i2d product.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms import resample as R
from transforms.image2._common import Image2Error
from transforms.model import DataModel
from transforms.registry import register

NAME, VERSION = "resample", "1.0"


@dataclass(frozen=True)
class ResampleParams:
    """JWST resample spec. Implemented: pixfrac, kernel (square, point), fillval, weight_type,
    output_shape ([nx, ny]), crpix, crval, rotation, pixel_scale_ratio, pixel_scale. The rest
    are accepted for pinning compatibility (calops is in memory; ctx/err/var always reported;
    DQ is not propagated, as JWST's default)."""

    pixfrac: float = 1.0
    kernel: str = "square"
    fillval: str = "NAN"
    weight_type: str | None = "ivm"
    output_shape: tuple[int, int] | None = None
    crpix: tuple[float, float] | None = None
    crval: tuple[float, float] | None = None
    rotation: float | None = None
    pixel_scale_ratio: float = 1.0
    pixel_scale: float | None = None
    output_wcs: str = ""
    single: bool = False
    blendheaders: bool = True
    in_memory: bool = True
    enable_ctx: bool = True
    enable_err: bool = True
    report_var: bool = True
    propagate_dq: bool = False
    pixmap_stepsize: float = 1.0
    pixmap_order: int = 1


def _fill(s: str) -> float:
    try:
        return float("nan") if str(s).strip().upper() in ("NAN", "INDEF", "") else float(s)
    except ValueError as exc:
        raise Image2Error(f"resample fillval must be a number or 'NaN', got {s!r}") from exc


def resample_params(p: ResampleParams) -> dict:
    """Keyword arguments of ``transforms.resample.resample_models`` from step parameters."""
    if p.kernel not in R.KERNELS:
        raise Image2Error(f"resample kernel {p.kernel!r} is not implemented; use one of "
                          f"{R.KERNELS}")
    if p.output_wcs:
        raise Image2Error("resample output_wcs files are not supported in transforms; pass "
                          "crval/rotation/pixel_scale/output_shape instead")
    if p.pixel_scale_ratio <= 0 or (p.pixel_scale is not None and p.pixel_scale <= 0):
        raise Image2Error("resample pixel_scale and pixel_scale_ratio must be positive")
    return dict(pixfrac=p.pixfrac, kernel=p.kernel, fillval=_fill(p.fillval),
                weight_type=p.weight_type, output_shape=p.output_shape, crpix=p.crpix,
                crval=p.crval, rotation=p.rotation, pixel_scale_ratio=p.pixel_scale_ratio,
                pixel_scale=p.pixel_scale)


@register(NAME, VERSION, "image2", ResampleParams, (), keyword="S_RESAMP")
def resample(model, refs, params: ResampleParams) -> DataModel:
    """Drizzle a cal image (or a tuple of them, for stage 3) into an i2d mosaic."""
    models = tuple(model) if isinstance(model, (tuple, list)) else (model,)
    try:
        return R.resample_models(models, **resample_params(params))
    except R.ResampleError as exc:
        raise Image2Error(f"{NAME}: {exc}") from exc


