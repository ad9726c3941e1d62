"""``calops stage STAGE FILE|ASN.json...``: a whole stage on files (flows/filelevel.py)."""

from __future__ import annotations

from typing import Any

USAGE = """calops stage STAGE FILE|ASN.json... [options]

Run a whole stage on files, with no workspace (jwst's `strun calwebb_detector1 f_uncal.fits`):
detector1 on uncal files, image2/spec2 on rate files or a level-2 association JSON (spec2 uses
its background and imprint members, as jwst's Spec2Pipeline), image3/spec3 on an association
JSON as jwst writes it (spec3 uses its background members for master_background), or on cal
files: associated by JWST's rules.
STAGE: detector1, image2, image3, spec2, spec3 (or calwebb_image2, Image2Pipeline).

options (in any order, before or after the files):
  -o, --output-dir DIR          where to write (default .): JWST-named _rate/_cal/_i2d/_cat files
  --override-REFTYPE PATH       use this reference file (or N/A) for every step that reads it;
                                jwst's --steps.STEP.override_REFTYPE=PATH works too
  --param STEP.NAME=VALUE       a step parameter (repeatable); jwst's --steps.STEP.NAME=VALUE too
  --config FILE                 jwst's ASDF pipeline configuration, or TOML ([steps.STEP] tables)
  --crds PATH                   the CRDS cache (default $CRDS_PATH)
  --context jwst_NNNN.pmap      the CRDS context (default $CRDS_CONTEXT, else the cache's operational one)
  --home HOME [--build B]       also record in this workspace; run its operations build (or B)

Parameters apply in jwst's order: defaults < CRDS pars-<step> < CRDS pars-<stage>pipeline
< --config < command line.
"""


def register(sub: Any) -> None:
    from flows.commands.step_cmd import register_file_command

    register_file_command(sub, "stage", "stage name", USAGE,
                          "run a whole stage on files or an association JSON (no workspace needed)")
