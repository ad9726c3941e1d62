"""calops' cube_build against jwst 3.0's CubeBuildStep on the same MIRI MRS cal file: calops
writes the cal (IFUImageModel with its gwcs in jwst's MRS layout, ``store.ifu_products``) and
the cubepar reference; jwst builds the channel 1 drizzle cube from them, offline (CRDS
serverless, cubepar given as an override). Measured when written (one noisy MIRIFUSHORT SHORT
exposure of the test scene): the same grid (1156 x 41 x 41, identical crval/cdelt/crpix),
915863 voxels with data in both (calops 74 more at the edges), 99.83 % of them within 1e-4
relative (median 0, p99 8e-8), summed flux calops/jwst 0.99982. NIRSpec IFU: the same grid
and summed flux, voxels 1.1 % apart (median; see the test). jwst takes 14-20 s each: slow.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from store import fits as F
from transforms import registry
from transforms.ifu import file_wcs
from transforms.sim import ifu_mrs as SM
from transforms.sim import ifu_scene as SC

pytest.importorskip("jwst")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def jwst_offline(tmp_path_factory):
    """FIELD-NOTES: jwst offline, no CRDS server, every reference an override."""
    root = tmp_path_factory.mktemp("crds")
    (root / "config" / "jwst").mkdir(parents=True)
    (root / "config" / "jwst" / "server_config").write_text(
        "{'observatory': 'jwst', 'operational_context': 'jwst_0000.pmap', 'edit_context': "
        "'jwst_0000.pmap', 'bad_files_list': [], 'force_remote_mode': False, 'last_synced': "
        "'2026-12-03 00:00:00', 'mappings': []}\n")
    env = {"CRDS_PATH": str(root), "CRDS_MODE": "local", "CRDS_OBSERVATORY": "jwst",
           "CRDS_SERVER_URL": "https://localhost:9/jwst-serverless-mode",
           "CRDS_CONTEXT": "jwst_0000.pmap", "CRDS_READONLY_CACHE": "1",
           "STPIPE_DISABLE_CRDS_STEPPARS": "True"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield root
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_mrs_cube_matches_jwst_cube_build(jwst_offline, tmp_path):
    from jwst.cube_build import CubeBuildStep

    spec = SM.MrsExposureSpec()
    rate, _ = SM.simulate_rate(spec, SC.default_scene(spec.ra, spec.dec), seed=1)
    refs = SM.mrs_references(spec.detector, spec.band, 1)

    def app(name, version, model, **kw):
        s = registry.get(name, version)
        return s.apply(model, refs, s.make_params(kw) if kw else s.make_params())

    cal = app("assign_wcs", "2.1", rate)
    for n, v in (("straylight", "1.0"), ("flat_field", "2.1"), ("fringe", "1.0"),
                 ("photom", "2.1")):
        cal = app(n, v, cal)
    s3d = app("cube_build", "1.0", cal, channel="1")
    ours = np.asarray(s3d["data"], np.float64)

    cal_path = F.write_product(cal, tmp_path / "mrs_cal.fits", wcs=file_wcs(cal))
    cubepar = F.write_reference(refs["cubepar"], tmp_path / "cubepar.fits")
    res = CubeBuildStep.call(str(cal_path), override_cubepar=str(cubepar), channel="1",
                             weighting="drizzle", output_type="channel")
    cube = res[0] if not hasattr(res, "data") else res
    theirs = np.asarray(cube.data, np.float64)

    assert ours.shape == theirs.shape
    w = cube.meta.wcsinfo
    for k in ("crval1", "crval2", "crval3", "cdelt1", "cdelt2", "cdelt3", "crpix1", "crpix2",
              "crpix3"):
        assert s3d.meta[f"wcsinfo.{k}"] == pytest.approx(getattr(w, k), rel=1e-9, abs=1e-12), k
    fo = np.isfinite(ours) & (ours != 0)
    ft = np.isfinite(theirs) & (theirs != 0)
    both = fo & ft
    assert both.sum() > 900_000
    assert (fo ^ ft).sum() < 1e-3 * both.sum()
    rel = np.abs(ours[both] / theirs[both] - 1)
    assert np.median(rel) < 1e-6 and (rel < 1e-4).mean() > 0.995
    assert ours[both].sum() / theirs[both].sum() == pytest.approx(1.0, abs=1e-3)


def test_nirspec_ifu_cube_matches_jwst_grid_and_flux(jwst_offline, tmp_path):
    """NRS1 G140M/F100LP (no imprint): jwst's CubeBuildStep reads calops' coordinate-based IFU
    gwcs and builds the same grid (1447 x 33 x 35, identical crval/cdelt/crpix) with the same
    summed flux (measured 0.999995). Voxel by voxel they differ (measured: median 1.1 %,
    p99 35 %; jwst has 46028 more voxels with data, 3 %): jwst's drizzle footprints of
    NIRSpec pixels are wider than calops' (not yet explained; see docs/ifu.md)."""
    from jwst.cube_build import CubeBuildStep

    from transforms.sim import ifu_nirspec as SN

    eff = SN.NrsIfuEffects(imprint_dn=0.0)
    spec = SN.NrsIfuExposureSpec()
    rate, _ = SN.simulate_rate(spec, SC.nirspec_scene(spec.ra, spec.dec), seed=1, effects=eff)
    refs = SN.nrs_ifu_references(1, eff)

    def app(name, version, model):
        s = registry.get(name, version)
        return s.apply(model, refs, s.make_params())

    cal = app("assign_wcs", "2.1", rate)
    for n, v in (("msa_flagging", "1.1"), ("flat_field", "2.1"), ("photom", "2.1")):
        cal = app(n, v, cal)
    s3d = app("cube_build", "1.0", cal)
    ours = np.asarray(s3d["data"], np.float64)
    cal_path = F.write_product(cal, tmp_path / "nrs_cal.fits", wcs=file_wcs(cal))
    cubepar = F.write_reference(refs["cubepar"], tmp_path / "cubepar.fits")
    res = CubeBuildStep.call(str(cal_path), override_cubepar=str(cubepar), weighting="drizzle")
    cube = res[0] if not hasattr(res, "data") else res
    theirs = np.asarray(cube.data, np.float64)

    assert ours.shape == theirs.shape
    w = cube.meta.wcsinfo
    for k in ("crval1", "crval2", "crval3", "cdelt1", "cdelt2", "cdelt3", "crpix1", "crpix2",
              "crpix3"):
        assert s3d.meta[f"wcsinfo.{k}"] == pytest.approx(getattr(w, k), rel=1e-9, abs=1e-12), k
    fo = np.isfinite(ours) & (ours != 0)
    ft = np.isfinite(theirs) & (theirs != 0)
    both = fo & ft
    assert np.array_equal(both, fo)  # every calops voxel with data has jwst data
    assert ft.sum() - fo.sum() < 0.05 * fo.sum()
    assert ours[both].sum() / theirs[both].sum() == pytest.approx(1.0, abs=1e-4)
    assert np.median(np.abs(ours[both] / theirs[both] - 1)) < 0.03
