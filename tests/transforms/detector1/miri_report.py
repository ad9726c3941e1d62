"""Print the MIRI truth table of docs/validation.md (what test_miri_truth.py asserts, measured).

    PYTHONPATH=. python tests/transforms/detector1/miri_report.py

64 rows of the LRS slitless strip, 10 groups, 3 integrations (lognormal rates around 300 e-/s)
for the per-effect rows; the whole chain over 6 seeds; refpix on a full frame.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.simplefilter("ignore")

import miri_helpers as mh  # noqa: E402

from transforms.sim import miri as sm  # noqa: E402
from transforms.sim.detector import Effects  # noqa: E402

OFF = sm.MiriEffects.off()


def fmt(r: dict) -> str:
    return (f"median err {r['median_err']:+.3f} DN/s, bright {r['rel_bright']:+.2%}, "
            f"pull {r['pull_median']:+.2f}/{r['pull_std']:.2f}")


def main() -> None:
    base = mh.exposure(OFF, nints=3)
    print("no MIRI effect:", fmt(mh.rate_vs_truth(base, mh.plan(base))))
    for effect, step, extra in (("reset_anomaly", "reset", {}), ("rscd", "rscd", {}),
                                ("first_frame", "rscd", {}), ("last_frame", "lastframe", {}),
                                ("dark_transient", "dark_current", {}),
                                ("emi", "emicorr", {"emi_scale": 3.0})):
        e = mh.exposure(replace(OFF, **{effect: True}, **extra), nints=3)
        on = mh.rate_vs_truth(e, mh.plan(e, {step: False}))
        off = mh.rate_vs_truth(e, mh.plan(e, {step: True}))
        print(f"{effect:15s} with {step:12s}: {fmt(on)}")
        print(f"{'':15s} without        : {fmt(off)}")
    rows = []
    for seed in range(3, 9):
        e = mh.exposure(sm.MiriEffects(), Effects(), nints=3, seed=seed)
        rows.append(mh.rate_vs_truth(e, mh.plan(e)))
    print("whole chain, all effects, 6 seeds: bright "
          f"{np.mean([r['rel_bright'] for r in rows]):+.2%} +- "
          f"{np.std([r['rel_bright'] for r in rows]):.2%}, pull median "
          f"{np.mean([r['pull_median'] for r in rows]):+.3f}, pull std "
          f"{np.mean([r['pull_std'] for r in rows]):.3f}")
    ff = mh.exposure(replace(OFF, refcol_drift=True, drift_dn=2.0), Effects(cosmic_rays=False),
                     sub=mh.window("FULL"), ngroups=5, nints=1, rate_e=np.full((1024, 1032), 40.0))
    for label, skip in (("with refpix", {}), ("without", {"refpix": True})):
        r = mh.rate_vs_truth(ff, mh.plan(ff, skip))
        err = (r["rate"]["data"] - ff.light_rate_dn)[:, 4:1028]
        amp = np.arange(4, 1028) % 4
        worst = max(abs(np.nanmedian(err[p::2, amp == a])) for a in range(4) for p in range(2))
        print(f"full frame drift {label}: {fmt(r)}, worst output/parity {worst:.3f} DN/s")


if __name__ == "__main__":
    main()
