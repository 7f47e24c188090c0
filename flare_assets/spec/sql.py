"""Static reading of step SQL: which views a statement reads, so a typo is caught before Spark starts."""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError


def referenced_views(sql: str) -> set[str] | None:
    """Unqualified relation names the statement reads, CTEs excluded; None when it does not parse
    (Spark's own parser then has the last word, at run time, naming the step)."""
    found = _referenced_views(sql)
    return set(found) if found is not None else None


def output_columns(sql: str) -> list[str] | None:
    """The column names a SELECT produces, when they can be known without a catalog (no `*`)."""
    found = _output_columns(sql)
    return list(found) if found is not None else None


# Parsing is the costly part of loading many manifests; one statement is parsed once per process.
@lru_cache(maxsize=4096)
def _referenced_views(sql: str) -> frozenset[str] | None:
    try:
        statements = sqlglot.parse(sql, read="spark")
    except SqlglotError:
        return None
    names: set[str] = set()
    for tree in statements:
        if tree is None:
            continue
        ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if isinstance(table.this, exp.Identifier) and not table.db and table.name.lower() not in ctes:
                names.add(table.name)
    return frozenset(names)


@lru_cache(maxsize=4096)
def _output_columns(sql: str) -> tuple[str, ...] | None:
    try:
        tree = sqlglot.parse_one(sql, read="spark")
    except SqlglotError:
        return None
    if not isinstance(tree, exp.Query) or not isinstance(tree, exp.Select):
        return None
    names = []
    for projection in tree.expressions:
        if (
            isinstance(projection, exp.Star)
            or projection.find(exp.Star) is not None
            or not projection.alias_or_name
        ):
            return None
        names.append(projection.alias_or_name)
    return tuple(names)
