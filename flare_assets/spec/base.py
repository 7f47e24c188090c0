"""The base of every manifest block."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Strict(BaseModel):
    """A block of a manifest: keys are written in camelCase (snake_case is accepted too), and an
    unknown key is an error, never silently ignored."""

    # validators are built on first use: a run reading its manifests from the cache never builds them
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )
