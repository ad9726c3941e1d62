"""imprint_subtract 1.1 in the spec2 chain with nods and leakcal members (issue #15), against
a run without imprint: the simulator's MOS program (3-shutter nods, each with its leakcal).

jwst's Spec2Pipeline subtracts the imprint from the science and from every background nod
before bkg_subtract. With 1.1 (``also_members=("background",)``) calops' chain does so too:
the nod-subtracted product equals the one of exposures that never had an imprint. With 1.0 (the
locked builds' pin) the chain is unchanged: the science keeps the nod's imprint, with the
opposite sign, as a residual, which is the leakcal's true light exactly.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import spec2_helpers as H

from transforms import registry, spec2

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]

FRONT = ("assign_wcs", "msa_flagging", "imprint_subtract", "bkg_subtract")


def _noiseless(e):
    return e.model.replace(arrays={"data": np.asarray(e.truth.light_dn, np.float32)})


def _front(prog, ex, version, skip_imprint=False):
    """The plan up to bkg_subtract, imprint_subtract at ``version``."""
    out = []
    for p in H.plan_for(prog, ex, ("imprint_subtract",) if skip_imprint else ()):
        if p.name == "imprint_subtract":
            p = dataclasses.replace(p, spec=registry.get("imprint_subtract", version))
        if p.name in FRONT:
            out.append(p)
    return out


@pytest.fixture(scope="module")
def mos():
    prog = H.mos()
    sci = {e.spec.position: e for e in prog.exposures if not e.spec.imprint}
    imp = {e.spec.position: e for e in prog.exposures if e.spec.imprint}
    return prog, sci, imp


def test_nod_subtracted_mos_has_no_imprint_residual_with_1_1(mos):
    prog, sci, imp = mos
    s, b = sci[2], sci[1]  # the science at the middle nod, one background nod
    raw = {"imprint": [_noiseless(x) for x in imp.values()], "background": [_noiseless(b)]}
    got = {v: spec2.run_members(_noiseless(s), _front(prog, s, v), raw)["cal"]
           for v in ("1.0", "1.1")}

    def clean(e):  # the exposure as if it had no imprint (its own leakcal's light removed)
        m, i = _noiseless(e), _noiseless(imp[e.spec.position])
        return m.replace(arrays={"data": m["data"] - i["data"], "dq": m["dq"] | i["dq"]})

    # a run without imprint: the science and the nod without their imprints, no leakcal
    ref = spec2.run_members(clean(s), _front(prog, s, "1.1", skip_imprint=True),
                            {"background": [clean(b)]})["cal"]
    # 1.0 before this change: the science without its imprint, the nod as it came
    old = spec2.run_members(clean(s), _front(prog, s, "1.0", skip_imprint=True),
                            {"background": [_noiseless(b)]})["cal"]
    for v in ("1.0", "1.1"):
        assert got[v].get("cal_step.imprint_subtract") == "COMPLETE"
        assert got[v].get("cal_step.bkg_subtract") == "COMPLETE"
    assert np.array_equal(got["1.1"]["data"], ref["data"], equal_nan=True)
    assert np.array_equal(got["1.1"]["dq"], ref["dq"])
    assert np.array_equal(got["1.0"]["data"], old["data"], equal_nan=True)
    # the residual 1.0 leaves is minus the nod's true imprint (the leakcal's light), and it is
    # not small: a large part of the frame, up to the brightest leak
    leak = np.asarray(imp[1].truth.light_dn, np.float64)
    res = got["1.0"]["data"].astype(np.float64) - got["1.1"]["data"].astype(np.float64)
    ok = np.isfinite(res)
    assert np.allclose(res[ok], -leak[ok], rtol=0, atol=1e-4 * np.nanmax(np.abs(leak)))
    assert (leak[ok] > 0).mean() > 0.01 and np.nanmax(leak) > 0


def test_fixed_slit_with_an_imprint_member_is_skipped_by_1_1_in_the_chain():
    prog = H.fs_nod()
    a, b = prog.exposures
    mem = {"imprint": [b.model]}  # any member: jwst does not subtract imprints from FS
    new = spec2.run_members(a.model, _front(prog, a, "1.1"), mem)["cal"]
    old = spec2.run_members(a.model, _front(prog, a, "1.0"), mem)["cal"]
    assert new.get("cal_step.imprint_subtract") == "SKIPPED"
    assert old.get("cal_step.imprint_subtract") == "COMPLETE"
    base = spec2.run_members(a.model, _front(prog, a, "1.1", skip_imprint=True), {})["cal"]
    assert np.array_equal(new["data"], base["data"], equal_nan=True)
    assert not np.array_equal(old["data"], base["data"], equal_nan=True)
