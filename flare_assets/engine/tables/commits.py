"""Commits that may lose to another writer's: retried on a conflict, after a refresh."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from pyspark.sql import SparkSession

from flare_assets.engine.errors import SPARK_ERRORS, java_causes
from flare_assets.engine.tables.access import java_table

# Conflicts another writer caused: re-running the statement re-reads the table and tries again.
CONFLICTS = (
    "org.apache.iceberg.exceptions.ValidationException",
    "org.apache.iceberg.exceptions.CommitFailedException",
)


WRITE_ATTEMPTS = 8


# Validation failures of the write itself, not of a concurrent commit: a retry fails the same way.
NOT_CONFLICTS = ("Cannot delete file where some, but not all, rows match filter",)


def with_retries(commit: Callable[[], None], refresh: Callable[[], None] | None = None) -> None:
    for attempt in range(WRITE_ATTEMPTS):
        try:
            commit()
            return
        except SPARK_ERRORS as exc:
            if attempt == WRITE_ATTEMPTS - 1 or not is_conflict(exc):
                raise
            time.sleep(random.uniform(0.5, 1.5) * min(2**attempt, 8))
            if refresh is not None:
                refresh()


# Called with (table, what) before every attempt of a metadata commit: a place for diagnostics and
# for tests to inject a concurrent commit or a fault between a data commit and the commits after it.
METADATA_COMMIT_HOOKS: list[Callable[[str, str], None]] = []


def refresh(spark: SparkSession, table: str) -> None:
    """Drops Spark's cached copy of the table, so the next statement starts from its latest metadata."""
    spark.sql(f"REFRESH TABLE {table}")
    java_table(spark, table).refresh()


def metadata_commit(spark: SparkSession, table: str, what: str, commit: Callable[[], None]) -> None:
    """A commit that changes metadata only (a tag, a branch, table properties) after a data commit:
    on a conflict with another writer it refreshes the table and tries again, as data commits do."""

    def attempt() -> None:
        for hook in METADATA_COMMIT_HOOKS:
            hook(table, what)
        commit()

    with_retries(attempt, refresh=lambda: refresh(spark, table))


def is_conflict(exc: BaseException) -> bool:
    """Whether a failed commit lost to another writer's commit, so running it again can succeed."""
    if not set(java_causes(exc)) & set(CONFLICTS):
        return False
    return not any(text in str(exc) for text in NOT_CONFLICTS)
