"""Golden product id of imprint_subtract 1.1 and what it changes from 1.0 (issue #15).

1.1 subtracts the leakcal imprint only where jwst 3.0's Spec2Pipeline does (NRS_MSASPEC,
NRS_IFU, an IFU flat lamp): a fixed-slit exposure with an imprint member records SKIPPED
(1.0 subtracted it). It chooses the imprint as 1.0 (jwst's ImprintStep) and declares
``also_members=("background",)``: the spec2 chains also subtract it from each background nod
(tests/transforms/spec2/test_imprint_members.py). Where it runs, its output is 1.0's and
jwst's ImprintStep's (compared here, offline, on a science and a background nod).

Inputs are small and dyadic: outputs are exact, pinned without a canonical form.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = Path(__file__).resolve().parents[1]
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from golden_ids import golden_cases  # noqa: E402

from transforms import registry  # noqa: E402
from transforms.model import DataModel  # noqa: E402
from transforms.spec2 import imprint_subtract as v10  # noqa: E402
from transforms.spec2 import imprint_subtract_v11 as v11  # noqa: E402

pytest.importorskip("store.identity", reason="product ids come from store.identity")

SHAPE = (12, 20)
P = v10.ImprintParams()


def _rate(seed: int, exp_type: str, position: int, leakcal: bool = False, **meta) -> DataModel:
    rng = np.random.default_rng(seed)
    dq = np.zeros(SHAPE, np.uint32)
    dq[rng.integers(0, SHAPE[0], 3), rng.integers(0, SHAPE[1], 3)] = 1 << (seed % 8)
    return DataModel("rate", {
        "data": (rng.integers(-64, 256, SHAPE) / 16.0).astype(np.float32), "dq": dq,
        "err": np.full(SHAPE, 0.25, np.float32)}, {
        "instrument.name": "NIRSPEC", "exposure.type": exp_type,
        "observation.observation_number": "001", "dither.position_number": position,
        "observation.bkgdtarg": False, **({"calops.leakcal": True} if leakcal else {}),
        **meta})


def _case(exp_type: str, seed: int, **meta) -> tuple[DataModel, DataModel, DataModel, DataModel]:
    """A science at dither position 2, its background nod at 1, the two positions' imprints."""
    sci = _rate(seed, exp_type, 2, **meta)
    bkg = _rate(seed + 1, exp_type, 1, **meta)
    imps = (_rate(seed + 2, exp_type, 1, True, **meta), _rate(seed + 3, exp_type, 2, True, **meta))
    return sci, bkg, *imps


def _imprint_v11():
    mos, ifu, fs = _case("NRS_MSASPEC", 10), _case("NRS_IFU", 20), _case("NRS_FIXEDSLIT", 30)
    lamp = _case("NRS_LAMP", 40, **{"instrument.lamp_mode": "IFU",
                                    "instrument.lamp_state": "FLAT1"})
    return (v11.imprint_subtract((mos[0], *mos[2:]), {}, P),
            v11.imprint_subtract((mos[1], *mos[2:]), {}, P),  # the nod: its own imprint
            v11.imprint_subtract((ifu[0], *ifu[2:]), {}, P),
            v11.imprint_subtract((lamp[0], *lamp[2:]), {}, P),
            v11.imprint_subtract((fs[0], *fs[2:]), {}, P))


CASES = {"imprint_subtract==1.1": (_imprint_v11, None)}
PINNED = tuple(CASES)  # the keys of tests/transforms/golden_ids.py this file pins

_first, test_golden_product_id = golden_cases(CASES)


def test_subtracts_as_1_0_where_jwst_runs_it_and_skips_fixed_slit():
    mos_sci, mos_bkg, ifu, lamp, fs = _first("imprint_subtract==1.1")
    for seed, exp_type, out, own, meta in (
            (10, "NRS_MSASPEC", mos_sci, 0, {}), (10, "NRS_MSASPEC", mos_bkg, 1, {}),
            (20, "NRS_IFU", ifu, 0, {}),
            (40, "NRS_LAMP", lamp, 0, {"instrument.lamp_mode": "IFU",
                                       "instrument.lamp_state": "FLAT1"})):
        c = _case(exp_type, seed, **meta)
        want = v10.imprint_subtract((c[own], *c[2:]), {}, P)
        assert out.get("cal_step.imprint_subtract") == "COMPLETE"
        assert np.array_equal(out["data"], want["data"]) and np.array_equal(out["dq"], want["dq"])
        # each exposure took the imprint of its own dither position
        imp = c[2] if c[own].get("dither.position_number") == 1 else c[3]
        assert np.array_equal(out["data"], c[own]["data"] - imp["data"])
    # fixed slit with an imprint member: SKIPPED, unchanged (1.0 subtracted it)
    sci = _case("NRS_FIXEDSLIT", 30)
    assert fs.get("cal_step.imprint_subtract") == "SKIPPED"
    assert np.array_equal(fs["data"], sci[0]["data"]) and np.array_equal(fs["dq"], sci[0]["dq"])
    old = v10.imprint_subtract((sci[0], *sci[2:]), {}, P)
    assert old.get("cal_step.imprint_subtract") == "COMPLETE"
    assert not np.array_equal(old["data"], sci[0]["data"])


def test_declared_as_data_1_1_also_runs_on_background_members_1_0_does_not():
    assert registry.get("imprint_subtract", "1.1").also_members == ("background",)
    assert registry.get("imprint_subtract", "1.0").also_members == ()
    assert all(registry.get(n, v).also_members == () for n, vs in registry.steps().items()
               for v in vs if (n, v) != ("imprint_subtract", "1.1"))


def _jwst_image(m: DataModel):
    from stdatamodels.jwst import datamodels as dm

    x = dm.ImageModel(data=np.array(m["data"]), dq=np.array(m["dq"]), err=np.array(m["err"]))
    x.meta.exposure.type = m.get("exposure.type")
    x.meta.instrument.name = "NIRSPEC"
    x.meta.instrument.detector = "NRS1"
    x.meta.observation.observation_number = m.get("observation.observation_number")
    x.meta.observation.bkgdtarg = bool(m.get("observation.bkgdtarg"))
    x.meta.dither.position_number = int(m.get("dither.position_number"))
    x.meta.filename = f"pos{m.get('dither.position_number')}.fits"
    return x


@pytest.mark.filterwarnings("ignore")
def test_science_and_background_nod_match_jwst_imprint_step(jwst_offline):
    """jwst 3.0's ImprintStep (no reference files) on the same MOS science and background nod,
    both with the two leakcal members: the same data and dq as 1.1."""
    pytest.importorskip("jwst")
    from jwst.imprint import ImprintStep

    mos_sci, mos_bkg = _first("imprint_subtract==1.1")[:2]
    c = _case("NRS_MSASPEC", 10)
    for i, ours in ((0, mos_sci), (1, mos_bkg)):
        theirs = ImprintStep().run(_jwst_image(c[i]), [_jwst_image(m) for m in c[2:]])
        assert theirs.meta.cal_step.imprint == "COMPLETE"
        assert np.array_equal(np.asarray(ours["data"]), theirs.data)
        assert np.array_equal(np.asarray(ours["dq"]), theirs.dq)
