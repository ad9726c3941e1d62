"""Benchmark: calops' resample_spec and extract_1d against jwst 3.0's on the same files (run by
hand, not collected).

    PYTHONPATH=. nice -n 10 .venv/bin/python tests/benchmarks/bench_spec.py [nslits] [nx]

A NIRSpec-like multi-slit cal (``nslits`` slits of 31 x ``nx`` pixels, tilted curved traces,
sheared iso-wavelength lines, a point source per slit) is written by calops with its gwcs;
jwst's ResampleSpecStep runs on that file opened in stdatamodels and calops' resample_spec on
the product; then jwst's Extract1dStep and calops' extract_1d run on calops' s2d (both with
the same JSON extract1d reference, background regions on). Prints the wall time of each (best
of ``REPEAT``, after one warm-up run so numba's cache is loaded), the ratio jwst / calops and
the agreement of the outputs. The CRDS environment is offline (FIELD-NOTES).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.update(CRDS_MODE="local", CRDS_OBSERVATORY="jwst", CRDS_READONLY_CACHE="1",
                  CRDS_SERVER_URL="https://localhost:9/jwst-serverless-mode",
                  CRDS_CONTEXT="jwst_0000.pmap", STPIPE_DISABLE_CRDS_STEPPARS="True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms" / "spec"))

import numpy as np  # noqa: E402

import spec_synth as T  # noqa: E402
from store import fits as F  # noqa: E402
from transforms import spectral as S  # noqa: E402
from transforms.spec2 import extract_1d as ex  # noqa: E402
from transforms.spec2 import resample_spec as rs  # noqa: E402

REPEAT = 3
APER = [{"id": "ANY", "region_type": "target", "extract_width": 7, "use_source_posn": True,
         "bkg_coeff": [[0.5], [5.5], [25.5], [30.5]], "bkg_order": 1}]


def best(fn, repeat=REPEAT):
    fn()  # warm-up: imports, numba cache, gwcs
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main(nslits: int = 8, nx: int = 1400) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_spec_"))
    root = tmp / "crds" / "config" / "jwst"
    root.mkdir(parents=True)
    (root / "server_config").write_text(
        "{'observatory': 'jwst', 'operational_context': 'jwst_0000.pmap', 'edit_context': "
        "'jwst_0000.pmap', 'bad_files_list': [], 'force_remote_mode': False, 'last_synced': "
        "'2026-12-03 00:00:00', 'mappings': []}\n")
    os.environ["CRDS_PATH"] = str(tmp / "crds")
    from jwst.extract_1d.extract_1d_step import Extract1dStep
    from jwst.resample.resample_spec_step import ResampleSpecStep
    from stdatamodels.jwst import datamodels as dm

    rng = np.random.default_rng(0)
    slits = [T.make_slit(T.SlitSpec(name=f"{k + 1}", shape=(31, nx), source_id=k + 1,
                                    trace=(15.0, 0.004 * (k % 3), 2e-6),
                                    dispersion=(0.9 + 0.01 * k, 5e-4, 1e-8),
                                    dec=-27.78 + 0.0003 * k, source_ypos=0.1), rng, noise=1e-12)
             for k in range(nslits)]
    cal = T.cal_product(slits, **{"exposure.type": "NRS_MSASPEC"})
    cal_path = F.write_product(cal, tmp / "jw01234003001_01101_00001_nrs1_cal.fits",
                               wcs=S.file_wcs(cal))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jm = dm.open(cal_path)
    npix = nslits * 31 * nx
    print(f"{nslits} slits of 31 x {nx} ({npix / 1e6:.2f} Mpix), best of {REPEAT}")

    def jwst_resample():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ResampleSpecStep().run(jm.copy())

    t_j, jr = best(jwst_resample)
    t_c, s2d = best(lambda: rs.resample_spec(cal, {}, rs.ResampleSpecParams()))
    sums_c = [np.nansum(s.arrays["data"].astype(float)) for s in S.slits(s2d)]
    sums_j = [np.nansum(s.data.astype(float)) for s in jr.slits]
    dev = max(abs(a / b - 1) for a, b in zip(sums_c, sums_j))
    print(f"resample_spec: jwst {t_j:.3f} s, calops {t_c:.3f} s, jwst/calops = {t_j / t_c:.1f}x;"
          f" total flux per slit agrees to {dev:.1e}")

    ref = ex.extract1d_ref(APER)
    ref_path = str(F.write_reference(ref, tmp / "jwst_nirspec_extract1d_0001.json"))
    s2d_path = F.write_product(s2d, tmp / "jw01234003001_01101_00001_nrs1_s2d.fits",
                               wcs=S.file_wcs(s2d))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jm2 = dm.open(s2d_path)

    def jwst_extract():
        st = Extract1dStep()
        for rt in st.reference_file_types:
            setattr(st, f"override_{rt}", ref_path if rt == "extract1d" else "N/A")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return st.run(jm2.copy())

    t_j, jx = best(jwst_extract)
    t_c, x1d = best(lambda: ex.extract_1d(s2d, {"extract1d": ref}, ex.Extract1dParams()))
    mine = S.spectra(x1d)
    dev = [float(np.nanmax(np.abs(s.spec_table["FLUX"] / m["flux"] - 1)))
           for s, m in zip(jx.spec, mine)]
    print(f"extract_1d:    jwst {t_j:.3f} s, calops {t_c:.3f} s, jwst/calops = {t_j / t_c:.1f}x;"
          f" first slit's fluxes agree to {dev[0]:.1e}; later slits differ by up to "
          f"{max(dev):.1e} where jwst's background regions drift (it shifts the reference's "
          f"bkg_coeff lists in place, so each slit's source offset adds to the previous "
          f"ones'; calops copies them per slit)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
