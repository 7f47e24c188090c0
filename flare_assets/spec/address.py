"""Dataset addresses as Flare writes them: `dataos://depot:collection/dataset[?acl=r|rw]`.

The `dataos://` prefix is optional. Collection and dataset names may hold `-` and `.`; on file depots
the dataset may be a sub-path or a single file (`dataos://depot:collection/folder/file.json`). Iceberg
identifiers and Dagster asset keys use the names with every `-` and `.` turned into `_`
(`dataos://lakehouse:raw-01/ny-taxi` is the table `lakehouse.raw_01.ny_taxi`, asset key
`lakehouse/raw_01/ny_taxi`), so two addresses that differ only there are one table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

NAME = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
ADDRESS = re.compile(
    rf"^(?:dataos://)?(?P<depot>[A-Za-z_][A-Za-z0-9_]*):(?P<collection>{NAME})"
    rf"/(?P<dataset>{NAME}(?:/{NAME})*)/?(?:\?(?P<params>.*))?$"
)
ACL = ("r", "rw")
NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")


@lru_cache(maxsize=8192)
def identifier(name: str) -> str:
    """A name as an Iceberg identifier and asset key part: `-` and `.` become `_`."""
    return NOT_IDENTIFIER.sub("_", name)


@dataclass(frozen=True)
class Address:
    """A parsed dataset address; `dataset` may be a sub-path on file depots."""

    depot: str
    collection: str
    dataset: str
    # files written to an Iceberg depot's storage (an output's `options.file`), not a table
    files: bool = False

    @property
    def namespace(self) -> str:
        return identifier(self.collection)

    @property
    def name(self) -> str:
        return identifier(self.dataset)

    @property
    def identifier(self) -> str:
        """`namespace.name`: the table inside its catalog (pyiceberg's identifier)."""
        return f"{self.namespace}.{self.name}"

    @property
    def table(self) -> str:
        """The Spark identifier of an Iceberg dataset: catalog.namespace.table."""
        return f"{self.depot}.{self.identifier}"

    @property
    def key(self) -> list[str]:
        return [self.depot, self.namespace, *(identifier(p) for p in self.dataset.split("/"))]

    @property
    def is_path(self) -> bool:
        """A sub-path or file rather than one dataset name (file depots only)."""
        return "/" in self.dataset

    def __str__(self) -> str:
        return f"dataos://{self.depot}:{self.collection}/{self.dataset}"


@lru_cache(maxsize=8192)  # addresses are immutable; every job's datasets are parsed many times
def parse_address(text: str) -> Address:
    match = ADDRESS.match(text.strip())
    if not match:
        raise ValueError(
            f"{text!r} is not a dataset address; expected dataos://depot:collection/dataset "
            "(names of letters, digits, _ - and .; a file depot's dataset may be a path)"
        )
    params = match["params"]
    if params is not None and not re.fullmatch(rf"acl=({'|'.join(ACL)})", params):
        raise ValueError(f"{text!r}: unknown address parameter {params!r}; allowed: acl=r, acl=rw")
    return Address(match["depot"], match["collection"], match["dataset"])
