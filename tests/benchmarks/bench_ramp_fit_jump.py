"""Benchmark (run by hand): calops jump and ramp_fit against stcal on one 2048x2048, 10-group,
1-integration ramp with read noise, Poisson noise, cosmic rays and some saturation.

    .venv/bin/python tests/benchmarks/bench_ramp_fit_jump.py [--size 2048] [--cores 1]

Our kernels are warmed up (compiled) on a small ramp first. Peak memory is the process's
high-water RSS during each step minus the RSS before it (Linux: VmHWM is reset through
/proc/self/clear_refs before each step), i.e. the extra memory the step needed.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from transforms import dq as DQ
from transforms.detector1.jump import JumpParams, flag_jumps_inplace
from transforms.detector1.ramp_fit import RampFitParams, fit_ramps_arrays

TG = 10.73677


def make(n: int, ngroups: int = 10, seed: int = 1):
    rng = np.random.default_rng(seed)
    gain = rng.uniform(1.8, 2.2, (n, n)).astype(np.float32)
    rn = rng.uniform(8, 12, (n, n)).astype(np.float32)
    rate = rng.gamma(1.5, 10.0, (n, n)).astype(np.float32)  # DN/s
    data = np.empty((1, ngroups, n, n), np.float32)
    acc = np.full((n, n), 1000.0, np.float32)
    for g in range(ngroups):
        acc += rng.poisson(rate * TG * gain).astype(np.float32) / gain
        data[0, g] = acc + rng.normal(0, 1, (n, n)).astype(np.float32) * rn / np.sqrt(2)
    hit = rng.random(data.shape) < 0.002
    hit[:, 0] = False
    i, g, y, x = np.nonzero(hit)
    amp = rng.uniform(50, 3000, i.size).astype(np.float32)
    for k in range(i.size):
        data[i[k], g[k]:, y[k], x[k]] += amp[k]
    gdq = np.zeros(data.shape, np.uint8)
    gdq[data > 20000] = DQ.SATURATED
    return data, gdq, np.zeros((n, n), np.uint32), gain, rn


def _status(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return float(line.split()[1]) / 1024
    return float("nan")


def timed(fn, *args, **kw):
    """(seconds, extra peak MiB, result) of one call."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    base = _status("VmRSS")
    t = time.perf_counter()
    out = fn(*args, **kw)
    dt = time.perf_counter() - t
    return dt, _status("VmHWM") - base, out


def stcal_jump(data, gdq, pdq, gain, rn, cores):
    from stcal.jump.jump import detect_jumps_data
    from stcal.jump.jump_class import JumpData
    from stdatamodels.jwst.datamodels import dqflags

    jd = JumpData(gain2d=gain.copy(), rnoise2d=rn.copy(), dqflags=dqflags.pixel)
    jd.init_arrays_from_arrays(data.copy(), gdq.copy(), pdq.copy())
    jd.nframes = 1
    jd.dt_group = np.ones(1)
    jd.n_reads_groupdiff = np.ones(1) * 2
    jd.set_detection_settings(4.0, 6.0, 5.0, 1000, 10, True)
    jd.set_after_jump(0, 0, 0, 0)
    jd.set_snowball_info(False, 5.0, 1.0, 2.0, True, 2.5, 4, 25)
    jd.set_shower_info(False, 1.2, 90, 1, 2.6, 1.1, 10, 400)
    jd.set_sigma_clipping_info(3, 100, True)
    jd.max_cores = cores
    return detect_jumps_data(jd)[0]


def stcal_ramp(data, gdq, pdq, gain, rn, cores):
    from stcal.ramp_fitting.ramp_fit import ramp_fit_data
    from stcal.ramp_fitting.ramp_fit_class import RampData
    from stdatamodels.jwst.datamodels import dqflags

    rd = RampData()
    rd.set_arrays(data, gdq, pdq, np.zeros(gain.shape, np.float32))
    rd.set_meta(name="NIRCAM", frame_time=TG, group_time=TG, groupgap=0, nframes=1,
                drop_frames1=None)
    rd.set_dqflags(dqflags.pixel)
    rd.suppress_one_group_ramps = True
    return ramp_fit_data(rd, False, rn.copy(), gain, "OLS_C", "optimal", cores)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--ngroups", type=int, default=10)
    ap.add_argument("--cores", default="all", help="maximum_cores for calops (stcal runs '1')")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    # warm-up compile on a tiny ramp
    w = make(16, a.ngroups, seed=0)
    flag_jumps_inplace(w[0], w[1].copy(), w[2].copy(), w[3], w[4], group_time=TG, nframes=1)
    fit_ramps_arrays(*w, frame_time=TG, group_time=TG, nframes=1)
    data, gdq0, pdq, gain, rn = make(a.size, a.ngroups)
    print(f"ramp {data.shape} float32 = {data.nbytes / 2**20:.0f} MiB; calops maximum_cores="
          f"{a.cores!r}; stcal maximum_cores='1'")
    gdq = gdq0.copy()
    t_oj, m_oj, _ = timed(flag_jumps_inplace, data, gdq, pdq.copy(), gain, rn, group_time=TG,
                          nframes=1, params=JumpParams(maximum_cores=a.cores))
    t_or, m_or, (rate, _) = timed(fit_ramps_arrays, data, gdq, pdq, gain, rn, frame_time=TG,
                                  group_time=TG, nframes=1,
                                  params=RampFitParams(maximum_cores=a.cores))
    t_sj, m_sj, st_gdq = timed(stcal_jump, data, gdq0, pdq, gain, rn, "1")
    t_sr, m_sr, st_img = timed(stcal_ramp, data, gdq.copy(), pdq.copy(), gain, rn, "1")
    print(f"{'step':10s} {'calops s':>9s} {'stcal s':>9s} {'speed-up':>9s} "
          f"{'calops extra MiB':>17s} {'stcal extra MiB':>16s}")
    for name, to, ts, mo, ms in [("jump", t_oj, t_sj, m_oj, m_sj),
                                 ("ramp_fit", t_or, t_sr, m_or, m_sr)]:
        print(f"{name:10s} {to:9.2f} {ts:9.2f} {ts / to:8.1f}x {mo:17.0f} {ms:16.0f}")
    agree = np.mean((gdq & DQ.JUMP_DET) == (st_gdq & DQ.JUMP_DET))
    ok = np.isfinite(st_img["slope"])
    ref = st_img["slope"][ok]
    rel = np.abs(rate["data"][ok] - ref) / np.maximum(np.abs(ref), 1e-3)
    print(f"jump flags agree on {agree:.4%} of groups; ramp_fit (same groupdq) max rel diff "
          f"{np.nanmax(rel):.2e}")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f} on {} cores; ratios move with it"
          .format(*os.getloadavg(), os.cpu_count()))


if __name__ == "__main__":
    main()
