"""Flare functions: dates."""

from __future__ import annotations

from flare_assets.spec.functions.base import FunctionSpec

FUNCTIONS: tuple[type[FunctionSpec], ...] = ()
