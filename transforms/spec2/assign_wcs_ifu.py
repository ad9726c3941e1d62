"""assign_wcs for IFU exposures (MIRI MRS, NIRSpec IFU): the slice-by-slice spectral WCS.

A pure function (``assign_wcs_ifu``) that assign_wcs 2.1 (``assign_wcs_v21``) calls for
EXP_TYPE MIR_MRS and NRS_IFU. The gwcs is not JSON, so the step records the instrument model's
parameters (the content of the references below) as ``wcs.ifu`` with ``wcs.model`` naming
the model; ``transforms.ifu.pixels`` evaluates them per pixel (numba) and ``transforms.ifu``
rebuilds the gwcs in jwst's layout for files (MRS: detector -> alpha_beta -> v2v3 ->
v2v3vacorr -> world; NIRSpec: jwst 3.0's coordinate-based IFU WCS, coordinates -> detector ->
slicer -> v2v3 -> v2v3vacorr -> world).

- **MIRI MRS** reads ``distortion``, ``specwcs``, ``regions`` and ``wavelengthrange``; the
  first three must hold the same model (the same detector, channels and band as the
  exposure's DETECTOR/CHANNEL/BAND, else the step refuses: a mis-selected reference would move
  every wavelength).
- **NIRSpec IFU** reads ``ifufore``, ``ifuslicer`` and ``ifupost`` (calops' NIRSpec IFU model
  keeps its 30 slices and the grating laws in these three; see
  ``transforms.instruments.nirspec.ifu``), for the exposure's GRATING/FILTER and detector.

Also set: ``wcsinfo.s_region`` (the field's footprint on the sky), ``wcsinfo.spectral_region``
(the exposure's wavelength range), ``wcsinfo.dispersion_direction`` (MRS 2, NIRSpec 1), kind
``cal`` and ``cal_step.assign_wcs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from transforms import ifu as I
from transforms.model import DataModel

MRS_REFTYPES = ("distortion", "specwcs", "regions", "wavelengthrange")
NRS_IFU_REFTYPES = ("ifufore", "ifuslicer", "ifupost")
POINTING_KEYS = ("wcsinfo.v2_ref", "wcsinfo.v3_ref", "wcsinfo.roll_ref", "wcsinfo.ra_ref",
                 "wcsinfo.dec_ref")


class AssignWcsIfuError(ValueError):
    """An IFU exposure whose WCS cannot be assigned."""


def _need(refs: Mapping[str, DataModel], names) -> None:
    missing = [n for n in names if refs.get(n) is None]
    if missing:
        raise AssignWcsIfuError(f"assign_wcs: the IFU exposure needs the {', '.join(missing)} "
                                "reference(s)")


def mrs_params_from_refs(meta: Mapping[str, Any], refs: Mapping[str, DataModel]
                         ) -> dict[str, Any]:
    """The MRS model of the exposure from its references (all three must agree)."""
    from transforms.instruments.miri import mrs

    _need(refs, MRS_REFTYPES)
    models = []
    for rt in ("distortion", "specwcs", "regions"):
        p = refs[rt].get("calops.mrs")
        if not isinstance(p, Mapping):
            raise AssignWcsIfuError(f"assign_wcs: the {rt} reference holds no calops MRS model "
                                    "(a CRDS reference calops cannot parse)")
        models.append(p)
    if not (models[0] == models[1] == models[2]):
        raise AssignWcsIfuError("assign_wcs: the distortion, specwcs and regions references "
                                "describe different MRS models")
    p = dict(models[0])
    det = str(meta.get("instrument.detector", "")).upper()
    band = str(meta.get("instrument.band", "")).upper()
    chans = "".join(sorted(str(meta.get("instrument.channel") or "")))
    if p["detector"] != det or p["band"] != band or "".join(sorted(p["channels"])) != chans:
        raise AssignWcsIfuError(
            f"assign_wcs: the MRS references are for {p['detector']} {p['band']} channels "
            f"{''.join(p['channels'])}, the exposure is {det} {band} channels {chans}")
    mrs.check_band(band)
    return p


def nrs_params_from_refs(meta: Mapping[str, Any], refs: Mapping[str, DataModel]
                         ) -> dict[str, Any]:
    from transforms.instruments.nirspec import ifu as N

    _need(refs, NRS_IFU_REFTYPES)
    return N.params_from_refs(meta, {k: refs[k] for k in NRS_IFU_REFTYPES})


def assign_wcs_ifu(model: DataModel, refs: Mapping[str, DataModel], params: Any = None
                   ) -> DataModel:
    """The IFU exposure with its instrument model recorded (see the module docstring)."""
    exp = str(model.get("exposure.type", "")).upper()
    missing = [k for k in POINTING_KEYS if model.get(k) is None]
    if missing:
        raise AssignWcsIfuError(f"assign_wcs: the exposure lacks its pointing "
                                f"({', '.join(missing)})")
    if exp == "MIR_MRS":
        p = mrs_params_from_refs(model.meta, refs)
    elif exp == "NRS_IFU":
        p = nrs_params_from_refs(model.meta, refs)
    else:
        raise AssignWcsIfuError(f"assign_wcs_ifu: {exp} is not an IFU exposure type")
    shape = model.arrays["data"].shape if "data" in model.arrays else None
    if shape is not None and tuple(shape) != tuple(p["shape"]):
        raise AssignWcsIfuError(f"assign_wcs: the {exp} model is for a {tuple(p['shape'])} "
                                f"detector, the data are {tuple(shape)} (subarrays are not "
                                "supported for IFU exposures)")
    meta = {"wcs.model": p["model"], "wcs.ifu": p}
    mod = I.instrument_module(p)
    px = mod.pixels(p, shape)
    ok = px.valid
    lam = px.lam[ok]
    if lam.size:
        meta["wcsinfo.spectral_region"] = [float(np.nanmin(lam)), float(np.nanmax(lam))]
        meta["wcsinfo.s_region"] = footprint(model.meta, p, px)
    meta["wcsinfo.dispersion_direction"] = 2 if mod.DISPERSION_AXIS == 0 else 1
    meta["cal_step.assign_wcs"] = "COMPLETE"
    return model.replace(kind="cal", meta=meta)


def footprint(meta: Mapping[str, Any], params: Mapping[str, Any], px: I.Pixels) -> str:
    """S_REGION: the corners of the field (the extreme local coordinates of the first
    channel's slices) on the sky."""
    ok = px.valid
    lab = px.label[ok]
    first = lab // 100 == (lab // 100).min() if params["model"] == I.MRS else np.ones(
        lab.size, bool)
    a = px.alpha[ok][first]
    b = px.beta[ok][first]
    db = px.dbeta[ok][first]
    a0, a1 = float(a.min()), float(a.max())
    b0, b1 = float((b - db / 2).min()), float((b + db / 2).max())
    l0 = int(lab[first][0])
    ra, dec = I.local_to_radec({**meta, "wcs.ifu": params}, np.full(4, l0),
                               np.array([a0, a1, a1, a0]), np.array([b0, b0, b1, b1]))
    return "POLYGON ICRS " + " ".join(f"{r:.9f} {d:.9f}" for r, d in zip(ra, dec))
