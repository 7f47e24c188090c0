"""How a code location keys its datasets' assets: `depot/collection/dataset`, or what a component's
translation makes of that key."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from dagster import AssetKey

from flare_assets.spec.address import Address


def dagster_name(text: str) -> str:
    """A name Dagster accepts for a job, a group or a key part: every non-word character as `_`."""
    return re.sub(r"\W", "_", text)


@dataclass(frozen=True)
class AssetKeys:
    """Each dataset's asset key: its default key (`depot/collection/dataset`), unless `renamed`
    maps that to another. Frozen and hashable: definitions built once per key scheme are cached."""

    renamed: tuple[tuple[AssetKey, AssetKey], ...] = field(default=())

    @classmethod
    def of(cls, renamed: Mapping[AssetKey, AssetKey]) -> "AssetKeys":
        return cls(tuple(sorted(((k, v) for k, v in renamed.items() if k != v), key=str)))

    @cached_property
    def _lookup(self) -> dict[AssetKey, AssetKey]:
        return dict(self.renamed)

    def __call__(self, address: Address) -> AssetKey:
        key = AssetKey(address.key)
        return self._lookup.get(key, key)


DEFAULT_KEYS = AssetKeys()
