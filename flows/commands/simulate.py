"""``calops simulate OUTDIR``: write a simulated program's uncal files, CRDS cache and truth."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

# all_program.SPEC_PARTS, spelled here so that building the CLI does not import the simulator
PARTS = ("fs", "lrs", "mos", "ifu")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate", help="simulate a program: uncal files, a local CRDS cache and the truth",
        description="Write OUTDIR/uncal/*.fits (JWST names), OUTDIR/crds/ (a CRDS cache with "
                    "contexts jwst_0001.pmap and jwst_0002.pmap) and OUTDIR/truth/ (JSON + .npy).")
    p.add_argument("outdir", help="directory to write into (created if missing)")
    p.add_argument("--program", default="all", choices=("all", "small", "full"),
                   help="all (default): NIRCam, NIRISS and MIRI imaging plus NIRSpec fixed-slit, "
                        "MIRI LRS (a nod pair), NIRSpec MOS, MIRI MRS and NIRSpec IFU "
                        "spectroscopy, one CRDS cache; "
                        "small: NIRCam + NIRISS test-sized subarrays; full: full-frame NIRCam + "
                        "NIRISS (benchmarks)")
    p.add_argument("--without", action="append", default=[], choices=PARTS,
                   metavar="PART", help="leave a spectroscopic part of the all program out "
                   f"({', '.join(PARTS)}; repeatable): e.g. --without ifu --without mos, "
                   "the full-frame parts (ifu: the MIRI MRS and NIRSpec IFU dithers)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--pointing-error", type=float, default=0.0, metavar="ARCSEC",
                   help="max error injected into the header pointing (default 0)")
    p.add_argument("--reissue", action="store_true",
                   help="also write definitive-ephemeris reissues under OUTDIR/reissue/")
    p.set_defaults(func=run)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def write_truth(exposure: Any, truth_dir: Path) -> list[Path]:
    """Truth of one exposure: <stem>_truth.json plus its arrays as .npy files."""
    t = exposure.truth
    stem = t.name.replace("_uncal.fits", "")
    arrays = {"light_rate_dn": t.light_rate_dn, "dark_rate_dn": t.ramp.dark_rate_dn,
              "light_rate_e": t.ramp.light_rate_e, "flat_rate_dn": t.flat_rate_dn,
              "saturation_group": t.ramp.saturation_group}
    if getattr(t.ramp, "jumps", None) is not None:  # event charge per pixel and difference
        arrays["jumps"] = t.ramp.jumps
    out = []
    for name, a in arrays.items():
        path = truth_dir / f"{stem}_{name}.npy"
        np.save(path, np.asarray(a))
        out.append(path)
    doc = {
        "exposure": t.name,
        "true_meta": dict(t.true_meta),
        "pointing_error_arcsec": list(t.pointing_error_arcsec),
        "photmjsr": t.photmjsr, "pixar_sr": t.pixar_sr,
        "sources": list(t.sources),
        "cosmic_rays": [c.as_dict() for c in t.ramp.cosmic_rays],
        "snowballs": [s.as_dict() for s in t.ramp.snowballs],
        "charge_migration_pixels": t.ramp.migrated_pixels,
        "arrays": {k: f"{stem}_{k}.npy" for k in arrays},
    }
    path = truth_dir / f"{stem}_truth.json"
    path.write_text(json.dumps(_jsonable(doc), indent=1, sort_keys=True))
    out.append(path)
    return out


def write_spec_truth(name: str, t: Any, truth_dir: Path) -> list[Path]:
    """Truth of a spectroscopic exposure (``slit_program.SpecTruth``): <stem>_truth.json plus
    the noiseless DN/s (light_dn) and its sky part (sky_dn) as .npy files."""
    stem = name.replace("_uncal.fits", "")
    out = []
    for k in ("light_dn", "sky_dn"):
        path = truth_dir / f"{stem}_{k}.npy"
        np.save(path, np.asarray(getattr(t, k)))
        out.append(path)
    doc = {"exposure": name, "sources": list(t.sources), "apertures": list(t.apertures),
           "gain": t.gain, "exposure_time": t.exposure_time,
           "arrays": {k: f"{stem}_{k}.npy" for k in ("light_dn", "sky_dn")}}
    path = truth_dir / f"{stem}_truth.json"
    path.write_text(json.dumps(_jsonable(doc), indent=1, sort_keys=True))
    return out + [path]


def _simulate_all(out: Path, seed: int, pointing_error: float, reissues: bool,
                  without: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """The default program: every part's exposures and truth, one merged CRDS cache. A MOS
    exposure's MSA metadata goes to the ``_msa.fits`` file its MSAMETFL names, beside the
    uncal files (where jwst and ``calops ingest`` look for it), not into the uncal."""
    from concurrent.futures import ThreadPoolExecutor

    from catalogs.crds_cache import merged_program_contexts, write_cache
    from store.fits import write_uncal
    from store.spec_references import write_msa_metafile
    from transforms.sim.all_program import all_program, simulate_all
    from transforms.sim.program import reissue

    spec = all_program(pointing_error_arcsec=pointing_error, without=tuple(without))
    with ThreadPoolExecutor(2) as pool:  # the parts are independent; same result as serial
        prog = simulate_all(spec, seed, pool.map)
    written: dict[str, list[str]] = {"uncal": [], "crds": [], "truth": [], "reissue": [],
                                     "msa": []}
    (out / "uncal").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    for e in prog.exposures:
        uncal = e.uncal
        if uncal.get("msa.shutter_info") is not None:
            msa = out / "uncal" / Path(str(uncal.meta["instrument.msa_metadata_file"])).name
            if str(msa) not in written["msa"]:
                written["msa"].append(str(write_msa_metafile(uncal.meta, msa)))
            uncal = uncal.replace(drop=("msa.shutter_info", "msa.source_info"))
        written["uncal"].append(str(write_uncal(uncal, out / "uncal" / e.name)))
    for p in prog.imaging:
        for e in p.exposures:
            written["truth"] += [str(x) for x in write_truth(e, out / "truth")]
            if reissues:
                (out / "reissue").mkdir(exist_ok=True)
                r = reissue(e, "ephemeris")
                written["reissue"].append(str(write_uncal(r.uncal,
                                                          out / "reissue" / e.truth.name)))
    for p in prog.spectra:
        for e in p.exposures:
            written["truth"] += [str(x) for x in write_spec_truth(e.truth.name, e.truth,
                                                                  out / "truth")]
    contexts, expected = merged_program_contexts(prog)
    written["crds"] = write_cache(out / "crds", contexts)
    exp_path = out / "truth" / "expected_references.json"
    exp_path.write_text(json.dumps(expected, indent=1, sort_keys=True))
    sources = out / "truth" / "sources.json"  # each imaging part has its own field
    sources.write_text(json.dumps([dict(s.as_dict(), program=p.spec.name)
                                   for p in prog.imaging for s in p.sources], indent=1))
    written["truth"] += [str(exp_path), str(sources)]
    return written


def simulate_to(outdir: str | os.PathLike, program: str = "all", seed: int = 0,
                pointing_error: float = 0.0, reissues: bool = False,
                without: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Simulate and write everything; returns the written paths by kind (``without``: the
    all program's spectroscopic parts to leave out)."""
    from catalogs.crds_cache import contexts_from_program, write_cache
    from store.fits import write_uncal
    from transforms.sim.program import program_spec, reissue, simulate_program

    out = Path(outdir)
    if program == "all":
        return _simulate_all(out, seed, pointing_error, reissues, tuple(without))
    if without:
        from store.errors import CalopsError

        raise CalopsError(f"--without applies to the all program only, not {program!r}; drop "
                          "--without or use --program all")
    spec = program_spec(program, pointing_error_arcsec=pointing_error)
    prog = simulate_program(spec, seed)
    written: dict[str, list[str]] = {"uncal": [], "crds": [], "truth": [], "reissue": []}
    (out / "uncal").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    for e in prog.exposures:
        written["uncal"].append(str(write_uncal(e.uncal, out / "uncal" / e.truth.name)))
        written["truth"] += [str(p) for p in write_truth(e, out / "truth")]
        if reissues:
            (out / "reissue").mkdir(exist_ok=True)
            r = reissue(e, "ephemeris")
            written["reissue"].append(str(write_uncal(r.uncal, out / "reissue" / e.truth.name)))
    written["crds"] = write_cache(out / "crds", contexts_from_program(prog))
    expected = {f"jwst_{i + 1:04d}.pmap": exp for i, exp in enumerate(prog.expected)}
    exp_path = out / "truth" / "expected_references.json"
    exp_path.write_text(json.dumps(expected, indent=1, sort_keys=True))
    sources = out / "truth" / "sources.json"
    sources.write_text(json.dumps([s.as_dict() for s in prog.sources], indent=1))
    written["truth"] += [str(exp_path), str(sources)]
    return written


def run(args: argparse.Namespace) -> int:
    w = simulate_to(args.outdir, args.program, args.seed, args.pointing_error, args.reissue,
                    tuple(args.without))
    for kind in ("uncal", "msa", "reissue"):
        for p in w.get(kind, ()):
            print(f"{kind:8s} {p}")
    print(f"crds     {Path(args.outdir) / 'crds'} ({len(w['crds'])} files; contexts "
          "jwst_0001.pmap, jwst_0002.pmap; use CRDS_PATH=<that dir> CRDS_MODE=local)")
    print(f"truth    {Path(args.outdir) / 'truth'} ({len(w['truth'])} files)")
    return 0
