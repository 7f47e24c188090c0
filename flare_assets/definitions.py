"""The code location: manifests from FLARE_PIPELINES, depots from FLARE_DEPOTS."""

import gc

from flare_assets.defs.build import build_definitions

defs = build_definitions()
# The definitions live as long as the process: the collector need not walk them again in every later
# full collection of the run, tick or server (nor at exit).
gc.freeze()
