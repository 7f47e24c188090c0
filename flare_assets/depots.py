"""The depot map: `dataos://depot:collection/dataset` -> an Iceberg table or a folder of files."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from flare_assets.spec.address import Address, parse_address
from flare_assets.spec.errors import ManifestError, load_yaml, validate

__all__ = ["Address", "Depot", "DepotMap", "load_depots", "parse_address"]

FILE_FORMATS = ("csv", "json", "parquet", "orc", "text", "avro")


class Depot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["iceberg", "file"]
    path: str | None = Field(
        default=None,
        description="file depots: the root folder (relative: under FLARE_HOME)",
    )
    format: Literal["csv", "json", "parquet", "orc", "text", "avro"] | None = None
    options: dict[str, str | int | bool] = Field(default_factory=dict)
    description: str | None = None


class DepotMap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    depots: dict[str, Depot]

    def iceberg_depots(self) -> list[str]:
        return [name for name, d in self.depots.items() if d.type == "iceberg"]

    @property
    def default_lakehouse(self) -> str:
        names = self.iceberg_depots()
        if not names:
            raise ManifestError("the depot map has no depot of type iceberg")
        return names[0]


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> DepotMap:
    return validate(DepotMap, load_yaml(Path(path)), Path(path))


def load_depots(path: Path) -> DepotMap:
    if not path.exists():
        raise ManifestError(f"{path}: depot map not found (set FLARE_DEPOTS)")
    return _load(str(path), path.stat().st_mtime)
