"""The code location: the FlareWorkflows component in flare_assets/defs_root/flare/defs.yaml, whose
manifests, depots and settings come from the FLARE_* environment."""

import gc
from pathlib import Path

# The load (Dagster's imports, the definitions, the component framework's pass over them) makes
# millions of objects that live as long as the process; the cyclic collector would walk the growing
# heap again and again meanwhile (a sixth of the load with 500 manifests). It resumes after.
gc.disable()
try:
    from dagster import load_from_defs_folder

    defs = load_from_defs_folder(path_within_project=Path(__file__).parent)
finally:
    gc.enable()
# The definitions live as long as the process: the collector need not walk them again in every later
# full collection of the run, tick or server (nor at exit).
gc.freeze()
