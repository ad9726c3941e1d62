"""Figures of the spectroscopy validation (run by hand, not collected).

    PYTHONPATH=. .venv/bin/python tests/benchmarks/fig_spec.py [outdir]

Writes (default outdir docs/figures/spectroscopy):

- ``spec2_nirspec.png``: a NIRSpec FS cal slit (tilted, curved trace; sheared iso-wavelength
  lines), its s2d, and the extracted x1d against the true spectrum (ratio below);
- ``spec3_s200a.png``: the S200A1 + S200A2 combination: the per-exposure spectra of the primary
  target (one from each slit) and the combined x1d / c1d against the truth;
- ``lrs_placement.png``: MIRI LRS s2d with the aperture placed by the dither position, and the
  extraction with the pointing 9 pixels off;
- ``vs_jwst.png``: calops against jwst 3.0 on the same file: resample_spec column sums and
  extract_1d fluxes (ratios).
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms" / "spec"))

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import spec_synth as T  # noqa: E402
import test_spec_validation as V  # noqa: E402
from transforms import spectral as S  # noqa: E402
from transforms.spec2 import resample_spec as rs  # noqa: E402


def _fig(w=12, h=7):
    f = Figure(figsize=(w, h), dpi=90)
    FigureCanvasAgg(f)
    return f


def _img(ax, a, title):
    a = np.asarray(a, float)
    lo, hi = np.nanpercentile(a, [1, 99.5]) if np.isfinite(a).any() else (0, 1)
    ax.imshow(a, origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi)
    ax.set_title(title, fontsize=9)


def spec2_nirspec(out: Path) -> None:
    sl = T.make_slit(T.SlitSpec(source_ypos=0.3), np.random.default_rng(1), noise=5e-13)
    res = V.spec2(T.cal_product([sl]))
    s2d = S.slits(res["s2d"])[0]
    sp = S.spectra(res["x1d"])[0]
    f = _fig()
    ax = f.subplots(3, 1, gridspec_kw={"height_ratios": [1, 1, 1.6]})
    _img(ax[0], sl.arrays["data"], "cal (NIRSpec FS slit: tilted, curved trace; source at "
                                   "slit y = 0.3)")
    _img(ax[1], s2d.arrays["data"], "s2d (resample_spec: wavelength x offset along the slit)")
    w, fl = sp["wavelength"], sp["flux"]
    ax[2].plot(w, T.spectrum(w) * 1e3, color="k", lw=2.5, alpha=0.35, label="truth")
    ax[2].plot(w, fl * 1e3, color="C3", lw=0.9, label="x1d (extract_1d, aperture at source_ypos)")
    ax[2].set_ylabel("F_nu (mJy)")
    ax[2].set_xlabel("wavelength (µm)")
    ax[2].legend(fontsize=8, loc="upper left")
    r = ax[2].inset_axes([0.55, 0.55, 0.42, 0.3])
    m = V._continuum_mask(w)
    r.plot(w[m], fl[m] / T.spectrum(w[m]), ".", ms=2, color="C0")
    r.axhline(1, color="#888", lw=0.5)
    r.set_ylim(0.98, 1.02)
    r.set_title("x1d / truth (continuum)", fontsize=7)
    r.tick_params(labelsize=6)
    f.tight_layout()
    f.savefig(out / "spec2_nirspec.png")


def spec3_s200a(out: Path) -> None:
    from transforms import spec3

    rng = np.random.default_rng(7)
    cals = (V._fs_exposure("S200A1", 0, rng), V._fs_exposure("S200A2", 1, rng))
    res = spec3.run(cals, V._plan("spec3", {"extract1d": V.REF}))
    from transforms.spec2.extract_1d import Extract1dParams

    singles = spec3.exposure_spectra(cals, rs.ResampleSpecParams(), Extract1dParams(),
                                     {"extract1d": V.REF})
    f = _fig(12, 6)
    ax = f.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for k, x in enumerate(singles):
        for sp in S.spectra(x):
            if sp.get("product.source_id") == "s00001":
                ax[0].plot(sp["wavelength"], sp["flux"] * 1e3 + 0.3 * (k + 1), lw=0.8,
                           label=f"exposure {k + 1}: {sp.name} (offset +{0.3 * (k + 1):.1f})")
    c1 = {s.name: s for s in S.spectra(res["c1d"])}["s00001"]
    x1 = {s.name: s for s in S.spectra(res["x1d"])}["s00001"]
    ax[0].plot(c1["wavelength"], c1["flux"] * 1e3, color="k", lw=0.9,
               label="s00001 c1d (combine_1d)")
    ax[0].set_ylabel("F_nu (mJy)")
    ax[0].legend(fontsize=8)
    ax[0].set_title("jw01234-o003_s00001_nirspec_f100lp-g140h-s200a1-s200a2: one source, "
                    "both slits", fontsize=9)
    for sp, lab in ((x1, "x1d (from the combined s2d)"), (c1, "c1d")):
        w = sp["wavelength"]
        m = V._continuum_mask(w)
        ax[1].plot(w[m], sp["flux"][m] / T.spectrum(w[m]), ".", ms=2, label=lab)
    ax[1].plot(c1["wavelength"], 0.985 + 0.005 * c1["n_input"], color="#888", lw=0.8,
               label="0.985 + 0.005 n_input")
    ax[1].set_ylim(0.98, 1.0 + 0.02)
    ax[1].set_ylabel("/ truth")
    ax[1].set_xlabel("wavelength (µm)")
    ax[1].legend(fontsize=7, ncol=3)
    f.tight_layout()
    f.savefig(out / "spec3_s200a.png")


def lrs_placement(out: Path) -> None:
    good, sp = V._lrs(noise=2e-12)
    off, _ = V._lrs(dither_offset_pix=9.0, noise=2e-12)
    rg = V.spec2(good, ref=V.LRS_REF)
    ro = V.spec2(off, ref=V.LRS_REF)
    f = _fig(12, 6)
    ax = f.subplots(1, 3, gridspec_kw={"width_ratios": [0.6, 0.6, 2]})
    s2d = np.asarray(rg["s2d"]["data"], float)
    for a, res, t in ((ax[0], rg, "dither on source"), (ax[1], ro, "pointing 9 px off")):
        _img(a, s2d, f"s2d; aperture: {t}")
        x = S.spectra(res["x1d"])[0]
        a.axvspan(x.get("extraction_xstart") - 1.5, x.get("extraction_xstop") - 0.5,
                  color="cyan", alpha=0.25)
    for res, lab in ((rg, "aperture from dithered_ra/dec"), (ro, "pointing 9 px off")):
        x = S.spectra(res["x1d"])[0]
        ax[2].plot(x["wavelength"], x["flux"] * 1e3, lw=0.9, label=lab)
    w = S.spectra(rg["x1d"])[0]["wavelength"]
    ax[2].plot(w, sp.spectrum(w) * 1e3, "k", lw=2.5, alpha=0.3, label="truth")
    ax[2].set_xlabel("wavelength (µm)")
    ax[2].set_ylabel("F_nu (mJy)")
    ax[2].legend(fontsize=8)
    ax[2].set_title("MIRI LRS: build 10.0 aperture placement", fontsize=9)
    f.tight_layout()
    f.savefig(out / "lrs_placement.png")


def vs_jwst(out: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fig_spec_"))
    (tmp / "crds" / "config" / "jwst").mkdir(parents=True)
    (tmp / "crds" / "config" / "jwst" / "server_config").write_text(
        "{'observatory': 'jwst', 'operational_context': 'jwst_0000.pmap', 'edit_context': "
        "'jwst_0000.pmap', 'bad_files_list': [], 'force_remote_mode': False, 'last_synced': "
        "'2026-12-03 00:00:00', 'mappings': []}\n")
    os.environ.update(CRDS_PATH=str(tmp / "crds"), CRDS_MODE="local", CRDS_OBSERVATORY="jwst",
                      CRDS_SERVER_URL="https://localhost:9/jwst-serverless-mode",
                      CRDS_CONTEXT="jwst_0000.pmap", CRDS_READONLY_CACHE="1",
                      STPIPE_DISABLE_CRDS_STEPPARS="True")
    import test_spec_vs_jwst as J
    from jwst.resample.resample_spec_step import ResampleSpecStep

    from store import fits as F
    from transforms.spec2 import extract_1d as ex

    cal = J._fs_cal()
    p = F.write_product(cal, tmp / "jw01234003001_01101_00001_nrs1_cal.fits",
                        wcs=S.file_wcs(cal))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ResampleSpecStep().run(J._open(p)).slits[0]
    s2d = rs.resample_spec(cal, {}, rs.ResampleSpecParams())
    mine = S.slits(s2d)[0]
    lam = mine.arrays["wavelength"][0]
    cm = np.nansum(mine.arrays["data"].astype(float), axis=0)
    cj = np.nansum(theirs.data.astype(float), axis=0)
    ref = ex.extract1d_ref(J.FS_APER)
    rp = str(F.write_reference(ref, tmp / "jwst_nirspec_extract1d_0001.json"))
    p2 = F.write_product(s2d, tmp / "jw01234003001_01101_00001_nrs1_s2d.fits",
                         wcs=S.file_wcs(s2d))
    tj = J._jwst_extract(J._open(p2), rp).spec[0].spec_table
    sm = S.spectra(ex.extract_1d(s2d, {"extract1d": ref}, ex.Extract1dParams()))[0]
    f = _fig(12, 5)
    ax = f.subplots(1, 2)
    ax[0].plot(lam[4:-4], (cm / cj)[4:-4], lw=0.8, label="calops / jwst")
    ax[0].plot(lam[4:-4], (cm * 1e6 / T.spectrum(lam))[4:-4], lw=0.8,
               label="calops / truth")
    ax[0].plot(lam[4:-4], (cj * 1e6 / T.spectrum(lam))[4:-4], lw=0.8, label="jwst / truth")
    ax[0].set_title("resample_spec: sum across the slit", fontsize=9)
    ax[0].legend(fontsize=8)
    ax[0].set_xlabel("wavelength (µm)")
    ax[1].plot(sm["wavelength"], tj["FLUX"] / sm["flux"] - 1, lw=0.8)
    ax[1].set_title("extract_1d on calops' s2d: jwst / calops - 1 (background fit on)",
                    fontsize=9)
    ax[1].set_xlabel("wavelength (µm)")
    f.tight_layout()
    f.savefig(out / "vs_jwst.png")


def main(outdir: str | None = None) -> None:
    out = Path(outdir or Path(__file__).resolve().parents[2] / "docs" / "figures" /
               "spectroscopy")
    out.mkdir(parents=True, exist_ok=True)
    for fn in (spec2_nirspec, spec3_s200a, lrs_placement, vs_jwst):
        fn(out)
        print("wrote", out / f"{fn.__name__}.png")


if __name__ == "__main__":
    main(*sys.argv[1:2])
