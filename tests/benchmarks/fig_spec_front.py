"""Figures of docs/spectroscopy.md: the simulator's exposures and the spec2 front half against
the truth. Run from the repository root:

    PYTHONPATH=. python tests/benchmarks/fig_spec_front.py [outdir]

(default outdir docs/figures/spectroscopy; writes front_fs.png, front_mos.png, front_lrs.png,
front_pathloss.png; ~1 minute on one core).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from transforms import plans, spec2  # noqa: E402
from transforms.instruments.nirspec import slits as N  # noqa: E402
from transforms.sim import slit_program as SPG  # noqa: E402
from transforms.sim import spectra as SP  # noqa: E402
from transforms.spec2 import _common as C  # noqa: E402

warnings.simplefilter("ignore")


def _run(prog, ex, members=None, skip=()):
    plan = plans.default_plan("spec2", prog.refs[ex.truth.name],
                              skip={s: True for s in skip}, meta=ex.model.meta)
    return spec2.run_members(ex.model, plan, members)["cal"]


def _ratio_panel(ax, lam, flux, src, width):
    ok = np.isfinite(flux) & np.isfinite(lam)
    ax.plot(lam[ok], flux[ok] / src.spectrum.fnu(lam[ok]), lw=0.5, color="k")
    for c in src.spectrum.centroids():
        ax.axvline(c, color="r", lw=0.5, alpha=0.5)
    ax.axhline(1, color="b", lw=0.8)
    ax.set_ylim(0.9, 1.1)
    ax.set_xlabel("wavelength (micron)")
    ax.set_ylabel("calibrated / true")


def fs(out: Path) -> None:
    prog = SPG.simulate_spec_program(SPG.fs_program(), seed=11)
    a, b = prog.exposures
    cal = _run(prog, a, {"background": [b.model]})
    arr = C.slit_arrays(cal, "S200A1")
    d = arr["data"].astype(float)
    r0 = int(np.nanargmax(np.nansum(d[:, 200:1200], axis=1)))
    box = slice(r0 - 6, r0 + 7)
    flux, lam = np.nansum(d[box], axis=0), np.nanmean(arr["wavelength"][box], axis=0)
    src = prog.source(1)
    fig, axs = plt.subplots(4, 1, figsize=(10, 9), gridspec_kw={"height_ratios": [1, 1, 2, 1]})
    axs[0].imshow(a.model["data"], aspect="auto", origin="lower", vmin=-0.2, vmax=3,
                  cmap="gray")
    axs[0].set_title("NIRSpec FS S200A1, G140M/F100LP: rate (DN/s), nod 1 of 2-POINT-NOD")
    v = np.nanpercentile(np.abs(d), 99.5)
    axs[1].imshow(d, aspect="auto", origin="lower", vmin=-v, vmax=v, cmap="RdBu_r")
    axs[1].set_title("cal (MJy) after nod subtraction, flat, path loss, photom "
                     "(NaN: pixels the flats flag, e.g. dead pixels)")
    ok = np.isfinite(flux)
    axs[2].plot(lam[ok], flux[ok] * 1e12, lw=0.6, label="calibrated (13-row box)")
    axs[2].plot(lam[ok], src.spectrum.fnu(lam[ok]) * 1e12, lw=1.0, label="truth")
    axs[2].set_ylabel("F_nu (uJy)")
    axs[2].legend()
    _ratio_panel(axs[3], lam, flux, src, 0.01)
    fig.tight_layout()
    fig.savefig(out / "front_fs.png", dpi=90)
    plt.close(fig)


def mos(out: Path) -> None:
    prog = SPG.simulate_spec_program(SPG.mos_program(), seed=31)
    sci = [e for e in prog.exposures if not e.spec.imprint]
    imp = [e for e in prog.exposures if e.spec.imprint]
    s = sci[1]
    fig, axs = plt.subplots(2, 2, figsize=(12, 9))
    axs[0, 0].imshow(s.model["data"][::4, ::4], origin="lower", vmin=-0.05, vmax=0.5,
                     cmap="gray", extent=(0, 2048, 0, 2048))
    axs[0, 0].set_title("MOS rate, NRS1 (slitlets, fixed slits, MSA leak, failed-open shutter)")
    axs[0, 1].imshow((s.truth.light_dn - imp[1].truth.light_dn)[1100:1450, 300:1400],
                     aspect="auto", origin="lower", vmin=0, vmax=0.05, cmap="gray")
    axs[0, 1].set_title("truth minus its leakcal (imprint): the slitlets alone")
    noiseless = type(s)(s.spec, s.model.replace(arrays={"data": s.truth.light_dn}), s.truth)
    imps = [x.model.replace(arrays={"data": x.truth.light_dn}) for x in imp]
    cal = _run(prog, noiseless, {"imprint": imps}, skip=("bkg_subtract",))
    arr, sm = C.slit_arrays(cal, "4"), C.slit_meta(cal, "4")
    ny, nx = arr["data"].shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    ys, _ = N.pixel_coords(sm["wcs"], xx, yy, masked=False)
    cols = slice(300, 1100)
    sky = SP.sky_background("NIRSPEC", arr["wavelength"][:, cols])
    corrected = np.nanmedian(arr["data"][:, cols] / sky, axis=1)
    shadow = np.nanmedian(arr["barshadow"][:, cols], axis=1)
    y = np.nanmedian(ys[:, cols], axis=1) / 1.15
    axs[1, 0].plot(y, shadow, "o-", label="bar shadow (reference, pixel-integrated)")
    axs[1, 0].plot(y, corrected, "s-", label="sky after the front half / true sky")
    axs[1, 0].set_xlabel("slit y (shutter pitches)")
    axs[1, 0].legend()
    axs[1, 0].set_title("background slitlet (3 shutters, 2 bars)")
    cal = _run(prog, s, {"imprint": [x.model for x in imp],
                         "background": [sci[0].model, sci[2].model]})
    arr, sm = C.slit_arrays(cal, "1"), C.slit_meta(cal, "1")
    d = arr["data"].astype(float)
    r0 = int(np.nanargmax(np.nansum(d[:, 300:1000], axis=1)))
    flux = np.nansum(d[r0 - 3:r0 + 4], axis=0)
    lam = np.nanmean(arr["wavelength"][r0 - 3:r0 + 4], axis=0)
    _ratio_panel(axs[1, 1], lam, flux, prog.source(sm["source_id"]), 0.01)
    axs[1, 1].set_title("slitlet 1 point source after imprint + 3-shutter nod subtraction")
    fig.tight_layout()
    fig.savefig(out / "front_mos.png", dpi=90)
    plt.close(fig)


def lrs(out: Path) -> None:
    prog = SPG.simulate_spec_program(SPG.lrs_program(), seed=21)
    a, b = prog.exposures
    cal = _run(prog, a, {"background": [b.model]})
    d = cal["data"].astype(float)
    c0 = int(np.nanargmax(np.nansum(d[100:300], axis=0)))
    box = slice(c0 - 8, c0 + 9)
    flux = np.nansum(d[:, box], axis=1) * cal.get("photometry.pixelarea_steradians")
    lam = np.nanmean(cal["wavelength"][:, box], axis=1)
    fig, axs = plt.subplots(1, 3, figsize=(12, 6), gridspec_kw={"width_ratios": [1, 1, 3]})
    x0, y0, nx, ny = a.truth.apertures[0]["box"]
    cut = a.model["data"][y0:y0 + ny, x0:x0 + nx]
    axs[0].imshow(cut, origin="lower", cmap="gray", vmin=0, vmax=np.nanpercentile(cut, 99))
    axs[0].set_title("LRS rate (nod 1)")
    axs[1].imshow(d[y0:y0 + ny, x0:x0 + nx], origin="lower", cmap="RdBu_r",
                  vmin=-np.nanpercentile(np.abs(d), 99), vmax=np.nanpercentile(np.abs(d), 99))
    axs[1].set_title("cal (MJy/sr), nod pair")
    _ratio_panel(axs[2], lam, flux, prog.source(1), 0.4)
    axs[2].set_title("17-column box / truth\n(halo beyond the box and the other nod's; "
                     "at lines the data hold the LSF, the truth does not)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "front_lrs.png", dpi=90)
    plt.close(fig)


def pathloss(out: Path) -> None:
    lam = np.linspace(0.97, 1.89, 200)
    fig, ax = plt.subplots(figsize=(8, 5))
    for x, y in ((0.0, 0.0), (0.3, 0.2), (0.45, 0.0), (0.0, 0.48)):
        t = SP.point_transmission("NIRSPEC", lam, x * 0.2, y * 3.3, 0.2, [(-1.65, 1.65)])
        ax.plot(lam, t, label=f"S200A1 xpos={x}, ypos={y}")
    ax.set_xlabel("wavelength (micron)")
    ax.set_ylabel("slit transmission (path loss)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "front_pathloss.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/figures/spectroscopy")
    out.mkdir(parents=True, exist_ok=True)
    for f in (pathloss, fs, lrs, mos):
        f(out)
        print("wrote", f.__name__)
