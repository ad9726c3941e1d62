"""The small program: metadata, truth, sources where the WCS says, reissues."""

import numpy as np
import pytest

from store.keywords import UNCAL_REQUIRED
from transforms.sim.program import (ProgramError, ExposureSpec, program_spec, reissue,
                                    simulate_program)
from transforms.wcs import build_wcs


@pytest.fixture(scope="module")
def prog():
    return simulate_program("small", seed=3)


def test_every_exposure_is_a_complete_uncal(prog):
    assert len(prog.exposures) == 7
    pats = {e.uncal.get("exposure.readpatt") for e in prog.exposures}
    assert {"RAPID", "MEDIUM8", "DEEP8", "NIS", "NISRAPID"} <= pats
    for e in prog.exposures:
        m = e.uncal.meta
        assert all(m.get(k) is not None for k in UNCAL_REQUIRED)
        assert e.uncal["data"].shape == (m["exposure.nints"], m["exposure.ngroups"],
                                         m["subarray.ysize"], m["subarray.xsize"])
        assert m["ephemeris.type"] == "PREDICTED"
        assert m["data_processing_software_version"] == "2024.3.1"
        assert e.truth.name == m["filename"]


def test_sources_land_where_the_true_wcs_puts_them(prog):
    e = prog.exposures[2]  # SUB320
    w = build_wcs(e.truth.true_meta, prog.contexts[0][[r.reftype for r in prog.contexts[0]]
                                                      .index("distortion")].model,
                  shape=e.uncal["data"].shape[-2:])
    img = e.truth.flat_rate_dn
    offsets = []
    for s in e.truth.sources:
        x, y = w.backward_transform(s["ra"], s["dec"])
        assert (x, y) == pytest.approx((s["x"], s["y"]), abs=1e-6)
        xi, yi = int(round(x)), int(round(y))
        if s["type"] != "star" or s["dn_per_s"] < 20 or not (8 < xi < 311 and 8 < yi < 311):
            continue
        cut = img[yi - 4:yi + 5, xi - 4:xi + 5] - np.median(img)
        yy, xx = np.mgrid[yi - 4:yi + 5, xi - 4:xi + 5]
        cx, cy = (cut * xx).sum() / cut.sum(), (cut * yy).sum() / cut.sum()
        offsets.append(np.hypot(cx - x, cy - y))
    # Centroids of stars match the truth; a few are pulled by blended neighbours.
    assert len(offsets) >= 5
    assert np.median(offsets) < 0.05
    assert np.mean(np.array(offsets) < 0.1) >= 0.7


def test_contexts_differ_in_flat_and_dark(prog):
    f1 = {r.filename for r in prog.contexts[0]}
    f2 = {r.filename for r in prog.contexts[1]}
    changed = {n.split("_")[2] for n in f1 ^ f2}
    assert changed == {"flat", "dark"}
    early = prog.exposures[0].truth.name
    late = prog.exposures[2].truth.name
    assert prog.expected[0][early]["dark"] == prog.expected[1][early]["dark"]
    assert prog.expected[0][late]["dark"] != prog.expected[1][late]["dark"]


def test_reissue_ephemeris_keeps_pixels(prog):
    e = prog.exposures[0]
    r = reissue(e, "ephemeris", sdp_version="2025.1.0")
    assert np.shares_memory(r.uncal["data"], e.uncal["data"])
    m0, m1 = e.uncal.meta, r.uncal.meta
    assert m1["ephemeris.type"] == "DEFINITIVE" and m1["data_processing_software_version"] == "2025.1.0"
    assert m1["ephemeris.velocity_x_bary"] != m0["ephemeris.velocity_x_bary"]
    assert m1["velocity_aberration.scale_factor"] != m0["velocity_aberration.scale_factor"]
    assert m1["velocity_aberration.scale_factor"] == e.truth.true_meta["velocity_aberration.scale_factor"]
    unchanged = [k for k in m0 if not k.startswith(("ephemeris.", "velocity_aberration."))
                 and k != "data_processing_software_version"]
    assert all(m0[k] == m1[k] for k in unchanged)
    with pytest.raises(ProgramError, match="already"):
        reissue(r, "ephemeris")


def test_reissue_with_new_pixels_and_determinism():
    spec = program_spec("small", exposures=(ExposureSpec("NIS", "CLEAR", "F150W", "NISRAPID",
                                                         "SUB64", 3, 1, "2024-03-10T00:00:00"),))
    a = simulate_program(spec, 9)
    b = simulate_program(spec, 9)
    assert np.array_equal(a.exposures[0].uncal["data"], b.exposures[0].uncal["data"])
    r = reissue(a.exposures[0], "pixels", program=a)
    assert r.uncal["data"].shape == a.exposures[0].uncal["data"].shape
    assert not np.array_equal(r.uncal["data"], a.exposures[0].uncal["data"])
    assert r.uncal.meta["ephemeris.type"] == "DEFINITIVE"


def test_pointing_error_is_injected_and_recorded():
    spec = program_spec("small", pointing_error_arcsec=0.5,
                        exposures=(ExposureSpec("NIS", "CLEAR", "F150W", "NISRAPID", "SUB64", 2,
                                                1, "2024-03-10T00:00:00"),))
    e = simulate_program(spec, 4).exposures[0]
    dx, dy = e.truth.pointing_error_arcsec
    assert 0 < np.hypot(dx, dy) <= 0.5
    cosd = np.cos(np.radians(e.uncal.meta["wcsinfo.dec_ref"]))
    got_dy = (e.uncal.meta["wcsinfo.dec_ref"] - e.truth.true_meta["wcsinfo.dec_ref"]) * 3600
    got_dx = (e.uncal.meta["wcsinfo.ra_ref"] - e.truth.true_meta["wcsinfo.ra_ref"]) * 3600 * cosd
    assert (got_dx, got_dy) == pytest.approx((dx, dy), abs=1e-3)


def test_bad_program_names():
    with pytest.raises(ProgramError, match="unknown program"):
        program_spec("huge")
