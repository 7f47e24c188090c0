"""flare_assets: Flare workflow manifests as Dagster assets, run by Spark on Iceberg.

`flare_assets.FlareWorkflows` (the Dagster Component) and `flare_assets.FlareTranslator` load on
first use: the spec and engine layers, and Spark's Python workers, import this package without
Dagster."""

from typing import Any

_COMPONENT_NAMES = ("FlareAsset", "FlareSettings", "FlareTranslator", "FlareWorkflows")


def __getattr__(name: str) -> Any:
    if name in _COMPONENT_NAMES:
        from flare_assets.defs import component

        return getattr(component, name)
    raise AttributeError(f"module 'flare_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    # dg finds registry objects with dir(): the lazy names must be listed
    return sorted([*globals(), *_COMPONENT_NAMES])
