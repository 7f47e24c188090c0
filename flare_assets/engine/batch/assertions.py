"""Evaluates Flare assertions on a written table: the column assertions of an output share one
aggregate query (each with its own filter); each SQL assertion runs its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from flare_assets.engine.errors import SPARK_ERRORS, short
from flare_assets.spec.model import Assertion, AssertionTest

SOURCE_VIEW = "source"  # Flare's name for the data under test in assertion SQL


def _literal(text: str) -> str:
    """A Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _metric_sql(assertion: Assertion) -> dict[str, str]:
    """Each column metric as an aggregate over the data under test. The assertion's filter is each
    aggregate's FILTER clause, so the column assertions of an output can share one query."""
    col = f"`{assertion.column}`"
    where = f" FILTER (WHERE {assertion.filter})" if assertion.filter else ""
    fmt = assertion.valid_format
    # valid values match the regex somewhere (rlike); missing values are counted as missing, not invalid
    invalid = f"count_if(CAST({col} AS STRING) NOT RLIKE {_literal(fmt.regex)}){where}" if fmt else "NULL"
    rows = f"count(*){where}"
    return {
        "avg": f"avg({col}){where}",
        "min": f"min({col}){where}",
        "max": f"max({col}){where}",
        "sum": f"sum({col}){where}",
        "count": f"count({col}){where}",
        "row_count": rows,
        "distinct_count": f"count(DISTINCT {col}){where}",
        # extra copies: non-null values beyond the first of each distinct value
        "duplicate_count": f"count({col}){where} - count(DISTINCT {col}){where}",
        "missing_count": f"count_if({col} IS NULL){where}",
        "missing_percentage": f"100.0 * count_if({col} IS NULL){where} / greatest({rows}, 1)",
        "avg_length": f"avg(length({col})){where}",
        "min_length": f"min(length({col})){where}",
        "max_length": f"max(length({col})){where}",
        "invalid_count": invalid,
        "invalid_percentage": f"100.0 * {invalid} / greatest({rows}, 1)",
    }


@dataclass
class AssertionResult:
    name: str
    passed: bool
    blocking: bool
    measured: dict[str, float | None] = field(default_factory=dict)
    failed_tests: list[str] = field(default_factory=list)
    error: str | None = None
    description: str | None = None


def evaluate_all(
    spark: SparkSession,
    data: DataFrame,
    named: list[tuple[str, Assertion]],
    measured: dict[str, dict[str, Any]] | None = None,
) -> list[AssertionResult]:
    """Every assertion of an output; the column ones share one scan of the data (or `measured`, that
    scan done already). When the shared query fails, each is evaluated alone, so the error lands on
    the assertion that caused it."""
    measured = shared_metrics(spark, data, named) if measured is None else measured
    return [evaluate(spark, data, a, n, measured=measured.get(n)) for n, a in named]


def shared_metrics(
    spark: SparkSession, data: DataFrame, named: list[tuple[str, Assertion]], minimum: int = 2
) -> dict[str, dict[str, Any]]:
    """The metrics of the column assertions, by assertion name, from one query; {} when fewer than
    `minimum` can share it or the query fails."""
    shareable = [(n, a) for n, a in named if a.column is not None and not set("()") & set(a.column)]
    return _shared_metrics(spark, data, shareable) if len(shareable) >= minimum else {}


def _shared_metrics(
    spark: SparkSession, data: DataFrame, named: list[tuple[str, Assertion]]
) -> dict[str, dict[str, Any]]:
    selects = []
    for i, (_, assertion) in enumerate(named):
        metrics = _metric_sql(assertion)
        for metric in dict.fromkeys(t.metric for t in assertion.parsed_tests()):
            selects.append(f"{metrics[metric]} AS a{i}_{metric}")
    data.createOrReplaceTempView(SOURCE_VIEW)
    try:
        row = spark.sql(f"SELECT {', '.join(selects)} FROM {SOURCE_VIEW}").collect()[0].asDict()
    except SPARK_ERRORS:
        return {}
    finally:
        spark.catalog.dropTempView(SOURCE_VIEW)
    return {
        name: {k.split("_", 1)[1]: v for k, v in row.items() if k.startswith(f"a{i}_")}
        for i, (name, _) in enumerate(named)
    }


def evaluate(
    spark: SparkSession,
    data: DataFrame,
    assertion: Assertion,
    name: str,
    measured: dict[str, Any] | None = None,
) -> AssertionResult:
    """One assertion; `measured` holds its metrics when a shared query computed them already."""
    tests = assertion.parsed_tests()
    result = AssertionResult(
        name=name, passed=False, blocking=assertion.blocking, description=assertion.description
    )
    if measured is not None:
        return _judge(result, tests, measured)
    data.createOrReplaceTempView(SOURCE_VIEW)
    try:
        if assertion.column is not None:
            metrics = _metric_sql(assertion)
            select = ", ".join(f"{metrics[m]} AS {m}" for m in dict.fromkeys(t.metric for t in tests))
            row = spark.sql(f"SELECT {select} FROM {SOURCE_VIEW}").collect()[0].asDict()
        else:
            rows = spark.sql(assertion.sql or "").limit(2).collect()
            if len(rows) != 1:
                raise ValueError(f"assertion sql returned {len(rows)} rows; it must return exactly one")
            row = rows[0].asDict()
            missing = [t.metric for t in tests if t.metric not in row]
            if missing:
                raise ValueError(
                    f"tests name {', '.join(missing)}, not columns of the sql result ({', '.join(row)})"
                )
    except (*SPARK_ERRORS, ValueError) as exc:
        result.error = short(exc)
        return result
    finally:
        spark.catalog.dropTempView(SOURCE_VIEW)
    return _judge(result, tests, row)


def _judge(result: AssertionResult, tests: list[AssertionTest], row: dict[str, Any]) -> AssertionResult:
    for test in tests:
        value = row[test.metric]
        result.measured[test.metric] = None if value is None else float(value)
        if not test.passes(result.measured[test.metric]):
            result.failed_tests.append(test.text)
    result.passed = not result.failed_tests
    return result
