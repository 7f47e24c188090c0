"""The code location: manifests from FLARE_PIPELINES, depots from FLARE_DEPOTS."""

from flare_assets.defs.build import build_definitions

defs = build_definitions()
