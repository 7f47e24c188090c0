"""`${VAR}` substitution inside parsed YAML string values, so a value never changes a manifest's shape.

- `${VAR}` is the variable's value, `${VAR:-default}` falls back to `default` when it is unset.
- `${VAR:literal}` is the value as a quoted Spark SQL string literal (`O'Hara` -> `'O\\'Hara'`).
- A plain `${VAR}` in a value that reaches SQL text (`sql`, `query`, `filter`, `where`, `deleteWhere`,
  `onClause`, `whenClause`, `expression`, `sortOrder`, housekeeping's `retentionCondition` and
  `...PartitionExpression`) is refused when the value holds a quote, a
  backtick, a semicolon, a line break or a comment marker: it would change the statement, not fill it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# `${{ ... }}`: the slots DataOS's templates leave for the user to fill in
TEMPLATE_SLOT = re.compile(r"\$\{\{[^}]*\}\}")
ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*)|:(literal))?\}")

# YAML keys whose string values are pasted into SQL statements by the engine.
SQL_KEYS = frozenset(
    {"sql", "query", "filter", "where", "deleteWhere", "onClause", "whenClause", "expression", "sortOrder"}
)

# housekeeping's retentionCondition, archivePartitionExpression, compactPartitionExpression ...
SQL_KEY_ENDINGS = ("Condition", "PartitionExpression", "Clause", "Where")

UNSAFE_IN_SQL = {"'": "a quote", '"': "a quote", "`": "a backtick", ";": "a semicolon", "\n": "a line break"}
UNSAFE_IN_SQL |= {"\r": "a line break", "--": "a comment marker", "/*": "a comment marker"}


def sql_literal(value: str) -> str:
    """A Spark SQL string literal holding exactly `value` (backslash escapes, as Spark parses them)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return f"'{escaped}'"


def _where(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "(top)"


def _reaches_sql(path: list[Any]) -> bool:
    keys = [p for p in path if isinstance(p, str)]
    return bool(keys) and (keys[-1] in SQL_KEYS or keys[-1].endswith(SQL_KEY_ENDINGS))


def substitute(data: Any, file: Path, env: Mapping[str, str] | None = None) -> tuple[Any, list[str]]:
    """`data` (parsed YAML) with variables replaced in string values, and one problem line per
    variable that is unset or unsafe where it lands."""
    env = os.environ if env is None else env
    problems: list[str] = []

    def value(text: str, path: list[Any]) -> str:
        def repl(match: re.Match[str]) -> str:
            name, default, literal = match.group(1), match.group(2), match.group(3)
            if name not in env:
                if default is not None:
                    return default
                problems.append(
                    f"{file}: {_where(path)}: ${{{name}}}: environment variable is not set "
                    f"(set it, or write ${{{name}:-default}})"
                )
                return match.group(0)
            found = env[name]
            if literal:
                return sql_literal(found)
            unsafe = sorted({what for mark, what in UNSAFE_IN_SQL.items() if mark in found})
            if unsafe and _reaches_sql(path):
                problems.append(
                    f"{file}: {_where(path)}: ${{{name}}} goes into SQL and its value holds "
                    f"{', '.join(unsafe)}; write ${{{name}:literal}} for a quoted SQL string"
                )
                return match.group(0)
            return found

        for found in TEMPLATE_SLOT.findall(text):
            problems.append(
                f"{file}: {_where(path)}: {found} is a slot of a template, to fill in with the value "
                "itself (a variable reads ${NAME})"
            )
        return ENV_VAR.sub(repl, text)

    def walk(node: Any, path: list[Any]) -> Any:
        if isinstance(node, str):
            return value(node, path)
        if isinstance(node, dict):
            return {k: walk(v, [*path, k]) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, [*path, i]) for i, v in enumerate(node)]
        return node

    return walk(data, []), problems
