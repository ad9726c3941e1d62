"""End to end on the simulator: uncal -> detector1 -> image2 -> image3 with injected pointing
errors, checked against the simulator's truth (true pointing and source positions)."""

from __future__ import annotations

import numpy as np
import pytest

from image3_synth import sky_errors
from transforms import registry
from transforms.model import DataModel


@pytest.mark.slow
def test_sim_program_alignment_and_mosaic_positions():
    sim = pytest.importorskip("transforms.sim.program")
    d1 = pytest.importorskip("transforms.detector1")
    from transforms.detector1.pipeline import default_plan
    from transforms.image2 import run as run2
    from transforms.image3 import run as run3

    e = sim.ExposureSpec
    dith = ((0.0, 0.0), (0.9, 0.6), (-0.7, 0.8), (0.5, -0.9))
    exps = tuple(e("NRCA1", "F150W", "CLEAR", "RAPID", "SUB320", 5, 1,
                   f"2024-03-10T04:{10 * i:02d}:00", 1, 1, i + 1, d, i + 1, 4)
                 for i, d in enumerate(dith))
    spec = sim.small_program(exposures=exps, pointing_error_arcsec=0.5, nstars=150,
                             ngalaxies=0, field_radius_arcsec=8.0)
    prog = sim.simulate_program(spec, seed=3)
    byname = {r.filename: r.model for r in prog.contexts[0]}
    cals = []
    for ex in prog.exposures:
        refs = {rt: byname[f] for rt, f in prog.expected[0][ex.truth.name].items()}
        rate = d1.run(ex.uncal, default_plan(refs))["rate"]
        plan2 = []
        for name in ("assign_wcs", "flat_field", "photom"):
            s = registry.get(name)
            # photom is skipped: alignment and positions do not depend on the flux unit
            plan2.append(registry.PlannedStep(s, s.make_params(), name == "photom",
                                              {r: refs[r] for r in s.reftypes if r in refs}))
        cals.append(run2(rate, plan2)["cal"])
    truths = [c.replace(meta=dict(ex.truth.true_meta)) for c, ex in zip(cals, prog.exposures)]
    ra = np.array([s.ra for s in prog.sources])
    dec = np.array([s.dec for s in prog.sources])
    flux = np.array([s.flux_ujy for s in prog.sources])
    bright = flux >= np.sort(flux)[-40]  # a Gaia-like catalogue: the 40 brightest stars
    refcat = DataModel("catalog", {"ra": ra[bright], "dec": dec[bright]})
    # A 10" field holds ~75 stars: JWST's separation of 1" would call most of them ambiguous.
    tw = {"kernel_fwhm": 1.6, "minobj": 8, "separation": 0.5, "tolerance": 0.3,
          "abs_refcat": "user", "abs_minobj": 8, "abs_separation": 0.5, "abs_tolerance": 0.3,
          "abs_searchrad": 1.0}
    plan3 = []
    for name in ("tweakreg", "skymatch", "outlier_detection", "resample", "source_catalog"):
        s = registry.get(name)
        plan3.append(registry.PlannedStep(s, s.make_params(tw if name == "tweakreg" else {}),
                                          False, {"abs_refcat": refcat} if name == "tweakreg"
                                          else {}))
    out = run3(cals, plan3)

    before, after = sky_errors(cals, truths), sky_errors(out["crf"], truths)
    assert np.sqrt(np.mean(np.sum(before ** 2, axis=-1))) > 0.1  # errors were injected
    rel = after - after.mean(axis=0, keepdims=True)
    assert np.sqrt(np.mean(np.sum(rel ** 2, axis=-1))) * 1000 <= 10.0
    assert np.sqrt(np.mean(np.sum(after ** 2, axis=-1))) * 1000 <= 20.0
    cat = out["catalog"]
    cr, cd = cat["sky_centroid"][:, 0], cat["sky_centroid"][:, 1]  # source_catalog 1.1
    sep = np.hypot((cr[:, None] - ra[None]) * np.cos(np.radians(cd[:, None])),
                   cd[:, None] - dec[None]).min(axis=1) * 3600
    assert cr.size >= 10
    assert np.median(sep) * 1000 <= 20.0
