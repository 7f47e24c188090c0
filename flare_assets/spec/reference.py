"""The manifest reference, generated from the models so it can never drift from what is accepted.

`flare docs` writes docs/reference/manifest.md (every key: YAML path, type, default, allowed values,
whether it is applied, refused or DataOS-only metadata here) and docs/reference/functions.md (every
Flare function with its arguments and an example); a test fails when the committed pages differ.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from flare_assets.spec.functions import FAMILIES, REGISTRY, FunctionSpec
from flare_assets.spec.functions.examples import EXAMPLES
from flare_assets.spec.model import METADATA_ONLY, REFUSED, Manifest

PAGES = ("manifest.md", "functions.md")


def _args(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation)


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def type_name(annotation: Any) -> str:
    """A type as a manifest author reads it: `list of string`, `one of: a, b`, `mapping`."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return (
            "function"
            if _args(annotation)[0] is not None and _is_function(annotation)
            else type_name(_args(annotation)[0])
        )
    if _is_union(annotation):
        parts = [type_name(a) for a in _args(annotation) if a is not type(None)]
        return " or ".join(dict.fromkeys(parts))
    if origin is Literal:
        return "one of: " + ", ".join(str(a) for a in _args(annotation))
    if origin is list:
        return f"list of {type_name(_args(annotation)[0])}" if _args(annotation) else "list"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if annotation in names:
        return names[annotation]
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _is_function(annotation: Any) -> bool:
    inner = _args(annotation)[0]
    return _is_union(inner) and all(
        isinstance(_args(a)[0], type) and issubclass(_args(a)[0], FunctionSpec) for a in _args(inner)
    )


def _models(annotation: Any) -> list[type[BaseModel]]:
    if typing.get_origin(annotation) is typing.Annotated and _is_function(annotation):
        return []  # functions have their own page
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in _args(annotation) for m in _models(a)]


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return ""
    if field.default is PydanticUndefined:
        return "required"
    if field.default is None:
        return ""
    return f"`{field.default}`"


def _status(model: type[BaseModel], name: str) -> str:
    key = (model.__name__, name)
    if key in REFUSED:
        return f"refused: {REFUSED[key]}"
    if key in METADATA_ONLY:
        return f"metadata only: {METADATA_ONLY[key]}"
    return "applied"


def _describe(model: type[BaseModel], field: FieldInfo) -> str:
    if field.description:
        return field.description
    for sub in _models(field.annotation):
        if sub.__doc__ and sub is not model:
            return " ".join(sub.__doc__.split())
    return ""


def rows(model: type[BaseModel], path: str, seen: tuple[type, ...] = ()) -> list[list[str]]:
    """One row per key under `model`, depth first: path, type, default, status, description."""
    out: list[list[str]] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        here = f"{path}.{key}" if path else key
        listed = typing.get_origin(field.annotation) is list or any(
            typing.get_origin(a) is list for a in _args(field.annotation)
        )
        out.append(
            [
                f"`{here}`",
                type_name(field.annotation),
                _default(field),
                _status(model, name),
                _describe(model, field),
            ]
        )
        for sub in _models(field.annotation):
            if sub not in seen:
                out += rows(sub, here + ("[]" if listed else ""), (*seen, sub))
    return out


def _table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in r) + " |" for r in body
    ]
    return "\n".join(lines)


def manifest_page() -> str:
    intro = [
        "# Manifest reference",
        "",
        "Generated from the manifest model by `flare docs`; do not edit by hand. Every key a Flare",
        "workflow may hold, with what flare_assets does with it: **applied**, **refused** (with the",
        "reason `flare validate` gives) or **metadata only** (DataOS-only metadata: accepted, and",
        "`flare validate` prints one warning that it has no effect here). Any key not listed is refused",
        "by `flare validate`, naming the keys allowed where it stands. `[]` marks a list of entries.",
        "Step `functions` are listed in [functions.md](functions.md).",
        "",
    ]
    body = rows(Manifest, "")
    return "\n".join(intro) + "\n" + _table(["key", "type", "default", "here", "what it does"], body) + "\n"


def _function_section(name: str, model: type[FunctionSpec]) -> str:
    lines = [f"### `{name}`", "", " ".join((model.__doc__ or "").split()), ""]
    args = [
        [f"`{f.alias or k}`", type_name(f.annotation), _default(f), f.description or ""]
        for k, f in model.model_fields.items()
        if k != "name"
    ]
    if args:
        lines += [_table(["argument", "type", "default", "notes"], args), ""]
    example = yaml.safe_dump({"functions": [{"name": name, **EXAMPLES[name]}]}, sort_keys=False)
    lines += ["```yaml", example.rstrip(), "```", ""]
    return "\n".join(lines)


def functions_page() -> str:
    lines = [
        "# Flare functions",
        "",
        "Generated from the function models by `flare docs`; do not edit by hand. A step's `functions`",
        "run in order on the result of its SQL, before the step's view is registered; the",
        "materialization metadata lists the functions each step applied. Arguments are checked by",
        "`flare validate`: an unknown function or argument, a wrong type, or a column the step cannot",
        "have (when its SQL names its columns) is reported with the file and YAML path. At run time a",
        "missing column fails the step, naming the function and the columns there are.",
        "",
    ]
    for family in FAMILIES:
        members = sorted((n, m) for n, m in REGISTRY.items() if m.__module__ == family.__name__)
        lines += [f"## {family.__doc__.strip().splitlines()[0].rstrip('.')}" if family.__doc__ else "", ""]
        lines += [_function_section(n, m) for n, m in members]
    return "\n".join(lines).rstrip() + "\n"


def pages() -> dict[str, str]:
    return {"manifest.md": manifest_page(), "functions.md": functions_page()}


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in pages().items():
        (folder / name).write_text(text)
        written.append(folder / name)
    return written
