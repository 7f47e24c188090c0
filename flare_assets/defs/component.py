"""The Dagster Component for Flare workflows: a folder of manifests and a depot map, declared in a
`defs.yaml` (`type: flare_assets.FlareWorkflows`), becomes the assets, checks, jobs, schedules and
sensors that `build_definitions` makes, so a Dagster project adds Flare manifests the way it adds a
dbt project (`dg scaffold defs`, `dg check defs`)."""

# no `from __future__ import annotations`: Resolvable reads the field types at runtime
import hashlib
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import yaml
from dagster import (
    AssetKey,
    AssetSpec,
    Component,
    ComponentLoadContext,
    Definitions,
    Model,
    Resolvable,
    Scaffolder,
    ScaffoldRequest,
    scaffold_component,
    scaffold_with,
)
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver

from flare_assets.defs.build import build_definitions
from flare_assets.defs.keys import AssetKeys
from flare_assets.depots import DepotMap
from flare_assets.settings import Settings
from flare_assets.spec.errors import ManifestError

SCAFFOLD_DEPOTS = """\
# Where each depot of your manifests' dataos:// addresses lives (README "Bring your own manifests").
depots:
  lakehouse:        # dataos://lakehouse:<collection>/<dataset> -> Iceberg table <collection>.<dataset>
    type: iceberg
  landing:          # dataos://landing:<collection>/<dataset> -> folder <path>/<collection>/<dataset>
    type: file
    path: landing   # relative paths are under FLARE_HOME
    format: json
"""


@dataclass(frozen=True)
class FlareAsset:
    """What a translator knows of one asset: the Flare output (or read-only source) behind it."""

    key: AssetKey
    dataset: str | None  # the dataos:// address
    workflow: str | None  # its group: the workflow name, non-word characters as _ ("sources": inputs)
    job: str | None  # the workflow's dag job that writes it; None for sources
    manifest: Path | None  # the manifest file that declares it

    @classmethod
    def of(cls, spec: AssetSpec) -> "FlareAsset":
        meta = spec.metadata
        manifest = meta.get("manifest")
        return cls(
            key=spec.key,
            dataset=_text(meta.get("dataset")),
            workflow=spec.group_name,
            job=_text(meta.get("job")),
            manifest=Path(str(manifest)) if manifest is not None else None,
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


class FlareTranslator:
    """Subclass to change the AssetSpec of every Flare asset: its key (default
    `depot/collection/dataset`), group, owners, tags, kinds, description, automation condition...
    A renamed key is the asset's everywhere: lineage, jobs, checks, sensors and run events."""

    def get_asset_spec(self, asset: FlareAsset, spec: AssetSpec) -> AssetSpec:
        return spec


class FlareSettings(Model, Resolvable):
    """Per-instance overrides of the FLARE_* environment settings (README "Configuration"); unset
    fields keep the environment's value. Relative paths are under the defs.yaml folder."""

    home: str | None = None
    strict: bool | None = None
    spark_master: str | None = None
    spark_conf: dict[str, str | int | float | bool] = {}
    catalog_uri: str | None = None
    warehouse: str | None = None
    catalog_properties: dict[str, str | int | float | bool] = {}

    def environment(self, base: Path) -> dict[str, str]:
        """The FLARE_* variables these overrides stand for, so defaults derive as from the env."""
        values = {
            "FLARE_HOME": str(base / self.home) if self.home else None,
            "FLARE_STRICT": None if self.strict is None else str(self.strict).lower(),
            "FLARE_SPARK_MASTER": self.spark_master,
            "FLARE_CATALOG_URI": self.catalog_uri,
            "FLARE_WAREHOUSE": self.warehouse,
        }
        return {k: v for k, v in values.items() if v is not None}


def _conf(values: Mapping[str, Any]) -> dict[str, str]:
    """Conf values as Spark takes them (templating may have made `"8"` an int, `"true"` a bool)."""
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}


def _template_vars(asset: FlareAsset) -> Mapping[str, Any]:
    return {"asset": asset, "workflow": asset.workflow, "job": asset.job, "dataset": asset.dataset}


class FlareWorkflowsScaffolder(Scaffolder):
    """`dg scaffold defs flare_assets.FlareWorkflows NAME`: a defs.yaml naming a manifests folder
    and a depot map beside it, both created, so `flare validate` and `dg check defs` run at once."""

    def scaffold(self, request: ScaffoldRequest) -> None:
        scaffold_component(request, {"manifests": ["pipelines"], "depots": "depots.yaml"})
        folder = Path(request.target_path)
        (folder / "pipelines").mkdir(exist_ok=True)
        depots = folder / "depots.yaml"
        if not depots.exists():
            depots.write_text(SCAFFOLD_DEPOTS)


@scaffold_with(FlareWorkflowsScaffolder)
@dataclass
class FlareWorkflows(Component, Resolvable):
    """Flare workflow manifests as Dagster assets, run by Spark on Iceberg.

    Every attribute is optional: unset, the instance is the FLARE_* environment's code location.
    """

    # folders, files or globs of manifests, relative to the defs.yaml folder (default FLARE_PIPELINES)
    manifests: list[str] = field(default_factory=list)
    # a depot map file (relative to the defs.yaml folder) or the map's depots inline
    # (default FLARE_DEPOTS)
    depots: str | dict[str, dict[str, Any]] | None = None
    settings: FlareSettings | None = None
    # asset attributes for every asset, templated with {{ workflow }}, {{ job }}, {{ dataset }}
    translation: (
        Annotated[TranslationFn[FlareAsset], TranslationFnResolver[FlareAsset](_template_vars)] | None
    ) = None
    # import path of a FlareTranslator subclass
    translator: str | None = None
    # set when several instances share a code location: their maintenance jobs become
    # <name>_maintenance and their health sensors <name>_table_health
    name: str | None = None

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        base = Path(context.path)
        settings = self.resolve_settings(base)
        paths = self.manifest_paths(base) or None
        prefix = self.name or "flare"
        defs = build_definitions(settings, paths, prefix=prefix)
        translator = self.get_translator()
        if self.translation is not None or type(translator) is not FlareTranslator:
            rebuild = lambda keys: build_definitions(settings, paths, keys, prefix)  # noqa: E731
            defs = self._translated(defs, translator, rebuild)
        return defs

    def resolve_settings(self, base: Path) -> Settings:
        """The environment's settings with this instance's overrides, manifests and depot map."""
        overrides = self.settings or FlareSettings()
        settings = Settings.from_env({**os.environ, **overrides.environment(base)})
        settings = replace(
            settings,
            spark_conf={**settings.spark_conf, **_conf(overrides.spark_conf)},
            catalog_properties={**settings.catalog_properties, **_conf(overrides.catalog_properties)},
        )
        if isinstance(self.depots, str):
            settings = replace(settings, depots=(base / self.depots).resolve())
        elif self.depots is not None:
            settings = replace(settings, depots=inline_depot_file(self.depots, settings))
        paths = self.manifest_paths(base)
        return replace(settings, pipelines=paths[0]) if len(paths) == 1 else settings

    def manifest_paths(self, base: Path) -> list[Path]:
        """`manifests` as paths: folders and files as given, globs expanded (sorted)."""
        found: list[Path] = []
        for item in self.manifests:
            if any(c in item for c in "*?["):
                found += sorted(p.resolve() for p in base.glob(item))
            else:
                found.append((base / item).resolve())
        return found

    def get_translator(self) -> FlareTranslator:
        """The FlareTranslator named by `translator`, or the default one; override to supply your own."""
        if not self.translator:
            return FlareTranslator()
        module, _, name = self.translator.rpartition(".")
        return getattr(importlib.import_module(module), name)()

    def _translate(self, translator: FlareTranslator, spec: AssetSpec) -> AssetSpec:
        asset = FlareAsset.of(spec)
        out = translator.get_asset_spec(asset, spec)
        if self.translation is not None:
            out = self.translation(out, asset)
        if out.key != spec.key and asset.dataset is None:
            raise ManifestError(
                f"translation changed the key of {spec.key.to_user_string()}, which stands for no "
                "dataset (a broken manifest's asset); only datasets' keys can be renamed"
            )
        return out

    def _translated(
        self, defs: Definitions, translator: FlareTranslator, rebuild: Callable[[AssetKeys], Definitions]
    ) -> Definitions:
        """Every asset's spec as the translation makes it. A translation that renames keys (a
        `key_prefix`, a translator's new key) rebuilds the definitions with those keys, so lineage,
        jobs, checks, sensors and the observations runs log all use them."""
        translated: dict[AssetKey, AssetSpec] = {}

        def record(spec: AssetSpec) -> AssetSpec:
            translated[spec.key] = self._translate(translator, spec)
            return spec

        defs.map_asset_specs(func=record)
        keys = AssetKeys.of({old: out.key for old, out in translated.items()})
        if keys.renamed:
            defs = rebuild(keys)
        by_key = {out.key: out for out in translated.values()}
        return defs.map_asset_specs(func=lambda spec: by_key[spec.key].replace_attributes(deps=spec.deps))


def inline_depot_file(depots: dict[str, dict[str, Any]], settings: Settings) -> Path:
    """An inline depot map as a file under FLARE_HOME (named by its content), since settings, runs
    and the depot cache all read the map from a file."""
    DepotMap.model_validate({"depots": depots})
    text = yaml.safe_dump({"depots": depots}, sort_keys=True)
    path = settings.home / "depots" / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path
