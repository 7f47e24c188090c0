"""Manifest errors that name the file, the YAML path and what is allowed."""

from __future__ import annotations

import re
import types
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from flare_assets.spec.env import substitute

M = TypeVar("M", bound=BaseModel)
# libyaml's parser when PyYAML was built with it: the same safe subset, several times faster to load
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ManifestError(ValueError):
    """One or more problems in manifests; `problems` holds one `FILE: path: message` line each."""

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def yaml_path(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top)"


def load_yaml(file: Path, env: bool = False, text: str | None = None) -> Any:
    """The file's YAML (`text` when its content was already read), `${VAR}`s filled when `env`."""
    if text is None:
        try:
            text = file.read_text()
        except OSError as exc:
            raise ManifestError(f"{file}: cannot read: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(top)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(f"{file}: {where}: not valid YAML: {problem}") from exc
    if env:
        # after parsing: a value fills a string, it never adds keys or ends one early
        data, problems = substitute(data, file)
        if problems:
            raise ManifestError(problems)
    return data


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(models[0]) if models else annotation
    return annotation


def allowed_keys(model: type[BaseModel], loc: list[Any]) -> list[str]:
    """The keys `model` accepts at `loc` (a pydantic error location, by alias)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = next(
                (f for n, f in current.model_fields.items() if (f.alias or n) == part),
                None,
            )
            current = field.annotation if field else None
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []


@lru_cache(maxsize=256)
def places(model: type[BaseModel], key: str) -> list[str]:
    """Where `key` stands in `model`'s YAML (at most three), for a key written at the wrong level."""
    from flare_assets.spec.actions import Action
    from flare_assets.spec.reference import rows

    found = [r[0].strip("`") for r in rows(model, "") if r[0].strip("`").rsplit(".", 1)[-1] == key]
    action = re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
    if not found and action in typing.get_args(Action.model_fields["name"].annotation):
        found = [f"job.actions[] as `name: {action}` (it is an action)"]
    return found[:3]


def _choices(text: str) -> str:
    """Pydantic's "'a', 'b' or 'c'" as "a, b, c"."""
    return ", ".join(re.findall(r"'([^']*)'", text)) or text


def message(err: Any) -> str:
    """One pydantic error as a manifest author reads it: enum errors echo the value given."""
    kind, msg, ctx = err.get("type", ""), err.get("msg", ""), err.get("ctx") or {}
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        return f"got {err.get('input')!r}; allowed: {_choices(str(ctx.get('expected', '')))}"
    if kind == "union_tag_invalid":
        return f"unknown function {ctx.get('tag')!r}; allowed: {_choices(str(ctx.get('expected_tags', '')))}"
    if kind == "union_tag_not_found":
        return "a function needs a name"
    return msg.removeprefix("Value error, ")


def _function_model(loc: list[Any]) -> type[BaseModel] | None:
    """The function model an error under `functions[i].<name>` belongs to (its tag in the location)."""
    from flare_assets.spec.functions import REGISTRY

    for i in range(2, len(loc)):
        if loc[i - 2] == "functions" and isinstance(loc[i - 1], int) and loc[i] in REGISTRY:
            return REGISTRY[loc[i]]
    return None


def _without_tags(loc: list[Any]) -> list[Any]:
    return [
        p
        for i, p in enumerate(loc)
        if not (i >= 2 and loc[i - 2] == "functions" and isinstance(loc[i - 1], int) and isinstance(p, str))
    ]


def validate(model: type[M], data: Any, file: Path) -> M:
    """`model.model_validate(data)`, with errors as `FILE: yaml.path: reason` lines."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = [
                p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))
            ]
            function = _function_model(loc)
            shown = _without_tags(loc)
            if err["type"] == "extra_forbidden":
                keys = (
                    [f.alias or n for n, f in function.model_fields.items()]
                    if function and loc[-2] in typing.get_args(function.model_fields["name"].annotation)
                    else allowed_keys(model, loc[:-1])
                )
                elsewhere = places(model, str(loc[-1]))
                hint = f"; {loc[-1]} goes at {' or '.join(elsewhere)}" if elsewhere and not function else ""
                lines.append(f"{file}: {yaml_path(shown)}: unknown key; allowed: {', '.join(keys)}{hint}")
            else:
                lines.append(f"{file}: {yaml_path(shown)}: {message(err)}")
        raise ManifestError(lines) from exc
