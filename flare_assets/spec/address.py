"""Dataset addresses: `dataos://depot:collection/dataset` (the `dataos://` prefix is optional)."""

from __future__ import annotations

import re
from dataclasses import dataclass

ADDRESS = re.compile(
    r"^(?:dataos://)?(?P<depot>[A-Za-z_]\w*):(?P<collection>[A-Za-z_]\w*)/(?P<dataset>[A-Za-z_]\w*)(?:\?.*)?$"
)


@dataclass(frozen=True)
class Address:
    """A parsed dataset address."""

    depot: str
    collection: str
    dataset: str

    @property
    def table(self) -> str:
        """The Spark identifier of an Iceberg dataset: catalog.namespace.table."""
        return f"{self.depot}.{self.collection}.{self.dataset}"

    @property
    def key(self) -> list[str]:
        return [self.depot, self.collection, self.dataset]

    def __str__(self) -> str:
        return f"dataos://{self.depot}:{self.collection}/{self.dataset}"


def parse_address(text: str) -> Address:
    match = ADDRESS.match(text.strip())
    if not match:
        raise ValueError(
            f"{text!r} is not a dataset address; expected dataos://depot:collection/dataset "
            "(letters, digits and underscores)"
        )
    return Address(**match.groupdict())
