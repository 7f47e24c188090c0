"""A broken manifest shows in the UI as one asset: its description lists the problems, and
materializing it fails with them. Every valid manifest beside it loads as usual."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, AssetsDefinition, Failure, MetadataValue, asset

from flare_assets.defs.keys import dagster_name

ERRORS_PREFIX = "manifest_errors"


def relative_name(file: Path, roots: list[Path]) -> str:
    """The file's path under the manifests folder it was found in (its name when given alone)."""
    for root in roots:
        if root.is_dir() and file.is_relative_to(root):
            return str(file.relative_to(root))
    return file.name


def broken_manifest_asset(
    file: Path, problems: list[str], roots: list[Path], workflow: str | None
) -> AssetsDefinition:
    """An asset in the manifest's group (its workflow's name, else the file's), keyed
    `manifest_errors/<path>`, that fails with the file's problems."""
    name = relative_name(file, roots)
    stem = Path(name).with_suffix("").as_posix()
    text = "\n".join(f"- {p}" for p in problems)

    @asset(
        key=AssetKey([ERRORS_PREFIX, dagster_name(stem)]),
        group_name=dagster_name(workflow or Path(name).stem),
        description=f"Manifest {name} did not load; fix it and reload the code location:\n\n{text}",
        metadata={"manifest": MetadataValue.path(str(file)), "problems": MetadataValue.md(text)},
        tags={"flare/manifest": "broken"},
    )
    def _broken() -> None:
        raise Failure(
            description=f"{file} did not load ({len(problems)} problem(s)):\n" + "\n".join(problems),
            metadata={"manifest": MetadataValue.path(str(file))},
        )

    return _broken


def broken_assets(
    broken: dict[Path, list[str]], roots: list[Path], workflows: dict[Path, str]
) -> list[AssetsDefinition]:
    return [broken_manifest_asset(f, p, roots, workflows.get(f)) for f, p in broken.items()]
