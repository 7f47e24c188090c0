"""The code location: the FlareWorkflows component in flare_assets/defs_root/flare/defs.yaml, whose
manifests, depots and settings come from the FLARE_* environment."""

from pathlib import Path

from dagster import load_from_defs_folder

defs = load_from_defs_folder(path_within_project=Path(__file__).parent)
