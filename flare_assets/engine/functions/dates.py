"""Flare functions: dates."""

from __future__ import annotations

from flare_assets.engine.functions.base import Transform

TRANSFORMS: dict[str, Transform] = {}
