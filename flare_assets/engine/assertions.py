"""Evaluates Flare assertions on a written table: one aggregate query per assertion."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from flare_assets.engine.errors import SPARK_ERRORS, short
from flare_assets.spec.model import Assertion

SOURCE_VIEW = "source"  # Flare's name for the data under test in assertion SQL


def _metric_sql(column: str) -> dict[str, str]:
    col = f"`{column}`"
    return {
        "avg": f"avg({col})",
        "min": f"min({col})",
        "max": f"max({col})",
        "sum": f"sum({col})",
        "count": f"count({col})",
        "row_count": "count(*)",
        "distinct_count": f"count(DISTINCT {col})",
        # extra copies: non-null values beyond the first of each distinct value
        "duplicate_count": f"count({col}) - count(DISTINCT {col})",
        "missing_count": f"count_if({col} IS NULL)",
        "missing_percentage": f"100.0 * count_if({col} IS NULL) / greatest(count(*), 1)",
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


def evaluate(spark: SparkSession, data: DataFrame, assertion: Assertion, name: str) -> AssertionResult:
    tests = assertion.parsed_tests()
    result = AssertionResult(
        name=name, passed=False, blocking=assertion.blocking, description=assertion.description
    )
    data.createOrReplaceTempView(SOURCE_VIEW)
    try:
        if assertion.column is not None:
            metrics = _metric_sql(assertion.column)
            select = ", ".join(f"{metrics[m]} AS {m}" for m in dict.fromkeys(t.metric for t in tests))
            where = f" WHERE {assertion.filter}" if assertion.filter else ""
            row = spark.sql(f"SELECT {select} FROM {SOURCE_VIEW}{where}").collect()[0].asDict()
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
    for test in tests:
        value = row[test.metric]
        result.measured[test.metric] = None if value is None else float(value)
        if not test.passes(result.measured[test.metric]):
            result.failed_tests.append(test.text)
    result.passed = not result.failed_tests
    return result
