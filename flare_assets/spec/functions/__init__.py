"""Flare functions: the typed arguments of each, and one registry of them by name.

A step's `functions` run in order on the step's SQL result. Each function is a model here (its
arguments, checked at load) and one DataFrame transformation in `flare_assets.engine.functions`.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any

from pydantic import Discriminator, Tag

from flare_assets.spec.functions import columns, dates, structure, text, values
from flare_assets.spec.functions.base import FunctionSpec

FAMILIES = (columns, values, dates, text, structure)
REGISTRY: dict[str, type[FunctionSpec]] = {
    typing.get_args(model.model_fields["name"].annotation)[0]: model
    for family in FAMILIES
    for model in family.FUNCTIONS
}
FUNCTION_NAMES = tuple(sorted(REGISTRY))


def _tag(value: Any) -> str | None:
    name = value.get("name") if isinstance(value, dict) else getattr(value, "name", None)
    return name.strip().lower() if isinstance(name, str) else None


Function = Annotated[
    typing.Union[tuple(Annotated[model, Tag(name)] for name, model in REGISTRY.items())],  # noqa: UP007
    Discriminator(_tag),
]

__all__ = ["FUNCTION_NAMES", "REGISTRY", "Function", "FunctionSpec"]
