"""What a file-level stage run imports before it reads a file stays cheap.

``calops stage``/``calops step`` import every stage package so that the registry sees every
registered step version (transforms.registry._load_all). A library that only some steps use
(gwcs, astropy.modeling, scipy.signal...) is therefore imported where it is used, not at the top
of a step's module: at the top it would be loaded, and resident (~66 MB of them), in every
stage run, detector1's included (docs/benchmarks.md, issue 14's memory aim). Checked in a
fresh interpreter, on the modules actually loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# libraries no stage run needs before a step that uses them runs
HEAVY = ("gwcs", "astropy.modeling", "astropy.coordinates", "scipy.signal", "scipy.ndimage",
         "scipy.spatial", "scipy.stats", "scipy.optimize", "scipy.interpolate", "photutils",
         "prefect", "duckdb", "pyarrow")

CODE = ("import sys\n"
        "from flows import cli, filelevel, runner\n"
        "from transforms import registry\n"
        "registry.stages(); registry.steps()\n"
        "print('\\n'.join(sorted(sys.modules)))\n")


def test_importing_every_stage_package_loads_no_heavy_library():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True,
                         check=True, timeout=300).stdout.split()
    loaded = set(out)
    bad = sorted(h for h in HEAVY if h in loaded)
    assert not bad, (f"importing the stage packages loads {', '.join(bad)}: import it inside "
                     "the function that uses it (every stage run pays for a top-level import)")
