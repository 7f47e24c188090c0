"""`$|key|` placeholders in step and input SQL, filled from partition keys and incremental keys."""

from __future__ import annotations

from flare_assets.spec.model import PLACEHOLDER


def escape(value: object) -> str:
    """A value as it may sit inside a quoted Spark SQL string: backslashes and quotes escaped."""
    return str(value).replace("\\", "\\\\").replace("'", "\\'")


def substitute(sql: str, values: dict[str, str], where: str) -> str:
    """Fills every `$|key|`; values arrive already safe for the spot (escaped or validated)."""

    def fill(match: object) -> str:
        key = match.group(1)  # type: ignore[attr-defined]
        if key not in values:
            raise ValueError(
                f"{where}: $|{key}| has no value; known: {', '.join(sorted(values)) or '(none)'}"
            )
        return values[key]

    return PLACEHOLDER.sub(fill, sql)
