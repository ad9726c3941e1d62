"""Jump detection against simulator truth, calops and stcal on the same ramps (test helper).

``simulate_case(case, seed)`` simulates a window of a near-IR detector with the project
simulator (every effect on unless the case says otherwise: Poisson and read noise, 1/f, bias
drift, non-linearity, IPC, cosmic-ray tracks with charge diffusion, snowballs), runs calops'
detector1 steps up to jump (dq_init, saturation, ipc, superbias, refpix, linearity,
dark_current) and returns the calibrated ramp with its references and truth. ``run_calops`` and
``run_stcal`` flag jumps on copies of that same ramp with the same gain and read-noise arrays;
``score`` compares flags with the truth.

Units (FIELD-NOTES): a jump's amplitude is the event charge that one group difference gains
(``truth.jumps``: charge diffusion included, IPC undone by the ipc step, a hit during a group's
frames split over two differences), in units of the group-difference noise
``sqrt(2 RN**2 / nframes + Poisson counts of one group)``, RN the single-read noise. A jump is
recalled if its difference is flagged JUMP_DET. Clean pixels have no event charge (>= 1 e-) in
any group, never saturate and are not DO_NOT_USE; the false-flag rates are the share of clean
pixels with any JUMP_DET, the share of their differences flagged, and the share of *isolated*
clean pixels (no event charge within 2 pixels: what neighbour flagging cannot reach) flagged.

Used by tests/benchmarks/bench_jump_recall.py (the tables of docs/validation.md) and
tests/transforms/detector1/test_jump_v11.py.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from transforms import dq as DQ
from transforms.detector1 import dq_init
from transforms.model import DataModel
from transforms.plans import default_plan
from transforms.sim import readout as ro
from transforms.sim import references as rf
from transforms.sim.detector import Effects, synthesize

USEAFTER = "2022-01-01T00:00:00"
BINS = ((0.0, 4.0), (4.0, 6.0), (6.0, 10.0), (10.0, 20.0), (20.0, np.inf))


@dataclass(frozen=True)
class Case:
    """One simulated configuration."""

    name: str
    detector: str = "NRCA1"
    readpatt: str = "MEDIUM8"
    ngroups: int = 10
    nints: int = 1
    size: int = 2048  # square window at the detector corner; 2048: full frame, 4 outputs
    effects: Effects = field(default_factory=Effects)
    read_noise_scale: float = 1.0  # multiplies the detector's read noise
    sky_e: float = 0.4  # e-/s per pixel
    nstars: int = 60  # Gaussian stars per 256x256, peak 1..3000 e-/s (log-uniform)
    cr_boost: float = 1.0  # multiplies the cosmic-ray rate (statistics)


MAIN = Case("main: NRCA1 full frame MEDIUM8 10 groups")
# Not tuned on: another detector (LW: more charge per micron), readout, integrations, noise and
# cosmic-ray spectrum (deposits halved: more hits near threshold).
UNTUNED = Case("untuned: NRCA5 full frame SHALLOW4 6 groups x 2 ints", detector="NRCA5",
               readpatt="SHALLOW4",
               ngroups=6, nints=2, read_noise_scale=1.3, sky_e=2.0,
               effects=Effects(cr_scale=0.5))


def scene(case: Case, props: rf.DetectorProps, rng: np.random.Generator) -> np.ndarray:
    """Sky plus Gaussian stars (FWHM ~1.6 px), e-/s, zero on reference pixels."""
    n = case.size
    img = np.full((n, n), case.sky_e)
    yy, xx = np.mgrid[0:n, 0:n]
    nst = int(round(case.nstars * (n / 256.0) ** 2))
    s = 1.6 / 2.355
    for _ in range(nst):
        y0, x0 = rng.uniform(4, n - 4, 2)
        peak = 10 ** rng.uniform(0.0, np.log10(3000.0))
        r = max(3, int(6 * s) + 1)
        ys, xs = slice(max(0, int(y0) - r), int(y0) + r + 1), slice(max(0, int(x0) - r),
                                                                    int(x0) + r + 1)
        img[ys, xs] += peak * np.exp(-((yy[ys, xs] - y0) ** 2 + (xx[ys, xs] - x0) ** 2)
                                     / (2 * s * s))
    return np.where(props.refpix, 0.0, img * props.flat)


@dataclass
class Simulated:
    case: Case
    arrays: dict[str, np.ndarray]  # the calibrated ramp just before jump (data, groupdq, ...)
    meta: dict[str, Any]
    refs: dict[str, DataModel]
    truth: Any
    props: rf.DetectorProps
    tim: ro.Timing
    noise_dn: np.ndarray  # group-difference noise per pixel (DN)


def simulate_case(case: Case, seed: int = 1) -> Simulated:
    inst = rf.detector_spec(case.detector).instrument
    full = case.size == ro.FULL_SIZE
    sub = ro.custom_subarray(1, 1, case.size, case.size, 4 if full else 1,
                             "FULL" if full else "GENERIC")
    tim = ro.timing(inst, case.readpatt, sub, case.ngroups, case.nints)
    props = rf.detector_properties(case.detector, seed, sub)
    if case.read_noise_scale != 1.0:
        props = replace(props, read_noise=(props.read_noise * case.read_noise_scale
                                           ).astype(np.float32))
    rng = np.random.default_rng([seed, 77])
    light = scene(case, props, rng)
    eff = replace(case.effects, cr_rate=case.effects.cr_rate * case.cr_boost)
    data, truth = synthesize(light.astype(np.float32), props, sub, tim, rng, eff)
    meta = {"instrument.name": inst, "instrument.detector": case.detector,
            "exposure.readpatt": case.readpatt, "exposure.nframes": tim.nframes,
            "exposure.groupgap": tim.groupgap, "exposure.ngroups": tim.ngroups,
            "exposure.nints": tim.nints, "exposure.frame_time": tim.tframe,
            "exposure.group_time": tim.tgroup, "exposure.frame_divisor": tim.nframes,
            "exposure.type": "NRC_IMAGE", "subarray.name": sub.name,
            "subarray.xstart": 1, "subarray.ystart": 1, "subarray.xsize": case.size,
            "subarray.ysize": case.size, "subarray.fastaxis": -1, "subarray.slowaxis": 2,
            "exposure.noutputs": sub.noutputs}
    refs = {"mask": rf.mask_ref(props, USEAFTER), "saturation": rf.saturation_ref(props, USEAFTER),
            "superbias": rf.superbias_ref(props, USEAFTER),
            "linearity": rf.linearity_ref(props, USEAFTER),
            "dark": rf.dark_ref(props, USEAFTER, tim.tframe, tim.nframes_per_integration + 2,
                                "NRC_IMAGE"),
            "gain": rf.gain_ref(props, USEAFTER), "readnoise": rf.readnoise_ref(props, USEAFTER)}
    if rf.ipc_kernel(case.detector) is not None and case.effects.ipc:
        refs["ipc"] = rf.ipc_ref(props, USEAFTER)
    uncal = DataModel("uncal", {"data": data}, meta)
    arrays = dq_init.to_ramp(uncal)
    m = dict(meta)
    for step in default_plan("detector1", refs, meta=meta):
        if step.name == "jump":
            break
        if step.skip:
            continue
        m.update(step.spec.inplace(arrays, step.refs, step.params, m))
    rate_e = truth.light_rate_e.astype(np.float64) + truth.dark_rate_e
    gain = props.gain.astype(np.float64)
    noise = np.sqrt(2.0 * props.read_noise.astype(np.float64) ** 2 / tim.nframes
                    + rate_e * tim.tgroup / gain ** 2)
    return Simulated(case, arrays, m, refs, truth, props, tim, noise)


def run_calops(sim: Simulated, version: str | None = None, **params) -> np.ndarray:
    """calops' jump (``version``, default the newest) on a copy of the ramp: its groupdq."""
    from transforms import registry

    spec = registry.get("jump", version)
    arrays = {k: v.copy() for k, v in sim.arrays.items()}
    refs = {"gain": sim.refs["gain"], "readnoise": sim.refs["readnoise"]}
    spec.inplace(arrays, refs, spec.make_params(params), sim.meta)
    return arrays["groupdq"]


def run_stcal(sim: Simulated, **settings) -> np.ndarray:
    """stcal's jump with jwst 3.0's JumpStep defaults on a copy of the same ramp."""
    from stcal.jump.jump import detect_jumps_data
    from stcal.jump.jump_class import JumpData
    from stdatamodels.jwst.datamodels import dqflags

    s = {"rejection_threshold": 4.0, "flag_4_neighbors": True}
    s.update(settings)
    a = sim.arrays
    jd = JumpData(gain2d=sim.refs["gain"]["data"].astype(np.float32).copy(),
                  rnoise2d=sim.refs["readnoise"]["data"].astype(np.float32).copy(),
                  dqflags=dqflags.pixel)
    jd.init_arrays_from_arrays(a["data"].copy(), a["groupdq"].copy(), a["pixeldq"].copy())
    jd.nframes = sim.tim.nframes
    jd.dt_group = np.ones(1)
    jd.n_reads_groupdiff = np.ones(1) * 2 * sim.tim.nframes
    jd.set_detection_settings(s["rejection_threshold"], 6.0, 5.0, 1000, 10, s["flag_4_neighbors"])
    jd.set_after_jump(0, 0, 0, 0)
    jd.set_snowball_info(False, 5.0, 1.0, 2.0, True, 2.5, 4, 25)
    jd.set_shower_info(False, 1.2, 90, 1, 2.6, 1.1, 10, 400)
    jd.set_sigma_clipping_info(3, 100, True)
    jd.max_cores = "1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdq, _, _, _ = detect_jumps_data(jd)
    return gdq


def truth_maps(sim: Simulated) -> dict[str, np.ndarray]:
    """Event charge (DN) per (int, group, y, x), the usable mask, clean pixels, snowball area."""
    t = sim.truth
    shape = sim.arrays["data"].shape
    ev = np.zeros(shape)
    sb = np.zeros(shape, bool)
    j = t.jumps
    gain = sim.props.gain
    np.add.at(ev, (j["integration"], j["group"], j["y"], j["x"]),
              j["charge_e"] / gain[j["y"], j["x"]])
    snow = j["kind"] == 1
    sb[j["integration"][snow], :, j["y"][snow], j["x"][snow]] = True
    gdq = sim.arrays["groupdq"]
    bad = (gdq & (DQ.SATURATED | DQ.DO_NOT_USE)) != 0
    usable = np.ones(shape, bool)
    usable[:, 1:] = ~(bad[:, 1:] | bad[:, :-1])
    usable[:, 0] = False
    pdq = sim.arrays["pixeldq"]
    good_pix = ((pdq & (DQ.DO_NOT_USE | DQ.REFERENCE_PIXEL)) == 0) & ~sim.props.refpix
    usable &= good_pix[None, None]
    usable &= ~sb
    anyev = np.zeros(shape[-2:], bool)
    big = j["charge_e"] >= 1.0
    anyev[j["y"][big], j["x"][big]] = True
    never_sat = ~np.any(bad, axis=(0, 1))
    clean = good_pix & ~anyev & never_sat & ~np.any(sb, axis=(0, 1))
    from scipy import ndimage

    near = ndimage.binary_dilation(anyev | np.any(sb, axis=(0, 1)), np.ones((5, 5), bool))
    return {"event_dn": ev, "usable": usable, "clean": clean, "isolated": clean & ~near}


def score(sim: Simulated, gdq: np.ndarray, maps: dict | None = None) -> dict[str, Any]:
    """Recall per amplitude bin and the clean-pixel false-flag rates of one groupdq."""
    maps = maps or truth_maps(sim)
    flagged = (gdq & DQ.JUMP_DET) != 0
    sig = maps["event_dn"] / sim.noise_dn[None, None]
    out: dict[str, Any] = {"bins": {}}
    has = (maps["event_dn"] > 0) & maps["usable"]
    for lo, hi in BINS:
        m = has & (sig >= lo) & (sig < hi)
        n = int(m.sum())
        out["bins"][(lo, hi)] = (float(flagged[m].mean()) if n else float("nan"), n)
    clean = maps["clean"]
    cflag = flagged[:, 1:, clean]  # (nints, ngroups-1, npix)
    out["clean_pixels"] = int(clean.sum())
    out["false_pixel"] = float(np.any(cflag, axis=(0, 1)).mean()) if clean.any() else float("nan")
    out["false_group"] = float(cflag.mean()) if clean.any() else float("nan")
    iso = maps["isolated"]
    out["isolated_pixels"] = int(iso.sum())
    out["false_isolated"] = (float(np.any(flagged[:, 1:, iso], axis=(0, 1)).mean())
                             if iso.any() else float("nan"))
    return out


def format_rows(label: str, res: dict[str, Any]) -> str:
    cells = []
    for (lo, hi), (r, n) in res["bins"].items():
        cells.append(f"{100 * r:6.2f}% ({n})")
    return (f"| {label} | " + " | ".join(cells) + f" | {100 * res['false_pixel']:.3f}% | "
            f"{100 * res['false_group']:.4f}% | {100 * res['false_isolated']:.4f}% |")


def header() -> str:
    names = [f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">{lo:g}" for lo, hi in BINS]
    return ("| jump | " + " | ".join(f"{n} sigma" for n in names)
            + " | clean pixels flagged | clean diffs flagged | isolated clean pixels flagged |"
            "\n|" + "---|" * (len(BINS) + 4))
