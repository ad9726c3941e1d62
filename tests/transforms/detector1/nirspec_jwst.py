"""A small harness to run jwst offline on calops' NIRSpec files (FIELD-NOTES: overrides, a
serverless CRDS with a server_config and nothing to fetch). Import ``offline_env(tmp)`` before
jwst; tests skip when jwst is not installed."""

from __future__ import annotations

import os
from pathlib import Path

# the reftypes Detector1Pipeline's steps declare; calops' NIRSpec simulator writes these
NIRSPEC_STEPS = {
    "dq_init": ["mask"], "saturation": ["saturation", "superbias"], "superbias": ["superbias"],
    "refpix": ["refpix", "sirskernel"], "linearity": ["linearity"], "dark_current": ["dark"],
    "jump": ["gain", "readnoise"], "ramp_fit": ["gain", "readnoise"], "gain_scale": ["gain"],
    "picture_frame": ["pictureframe"],
}
SKIPPED = ("group_scale", "ipc", "persistence", "charge_migration", "clean_flicker_noise",
           "emicorr", "firstframe", "lastframe", "reset", "rscd")


def offline_env(root: str | os.PathLike) -> None:
    """Environment for jwst + crds with no server: call before importing jwst."""
    root = Path(root)
    cfg = root / "config" / "jwst"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "server_config").write_text(repr({
        "observatory": "jwst", "operational_context": "jwst_0000.pmap",
        "edit_context": "jwst_0000.pmap", "bad_files_list": [], "force_remote_mode": False,
        "last_synced": "calops", "mappings": [], "crds_version": {"str": "calops"}}) + "\n")
    os.environ.update(CRDS_PATH=str(root), CRDS_MODE="local", CRDS_OBSERVATORY="jwst",
                      CRDS_SERVER_URL="https://localhost:9/jwst-serverless-mode",
                      CRDS_CONTEXT="jwst_0000.pmap", CRDS_READONLY_CACHE="1",
                      STPIPE_DISABLE_CRDS_STEPPARS="True")


def detector1(uncal_path: str, refs: dict[str, str], out_dir: str, *,
              run_steps: tuple[str, ...] = tuple(s for s in NIRSPEC_STEPS if s != "picture_frame"),
              params: dict | None = None):
    """Run jwst's Detector1Pipeline with every reference given; returns (rate path, ramp path)."""
    from jwst.pipeline import Detector1Pipeline

    pipe = Detector1Pipeline()
    for name in SKIPPED + tuple(s for s in NIRSPEC_STEPS if s not in run_steps):
        getattr(pipe, name).skip = True
    for name in run_steps:
        step = getattr(pipe, name)
        step.skip = False
        for rt in step.reference_file_types:
            setattr(step, f"override_{rt}", refs.get(rt, "N/A"))
        for k, v in (params or {}).get(name, {}).items():
            setattr(step, k, v)
    pipe.save_results = True
    pipe.output_dir = str(out_dir)
    pipe.run(str(uncal_path))
    stem = Path(uncal_path).name.replace("_uncal.fits", "")
    return Path(out_dir) / f"{stem}_rate.fits"
