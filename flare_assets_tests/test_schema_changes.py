"""Which type changes a write may make to an existing table (no JVM)."""

from __future__ import annotations

import pytest
from pyspark.sql.types import (
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    NullType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from flare_assets.engine.tables.schema_changes import fits, plan, promotable

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "column", "ok"),
    [
        (IntegerType(), LongType(), True),
        (ShortType(), IntegerType(), True),
        (FloatType(), DoubleType(), True),
        (IntegerType(), DoubleType(), True),
        (NullType(), IntegerType(), True),
        (DateType(), TimestampType(), True),
        (DecimalType(10, 2), DecimalType(12, 2), True),
        (DecimalType(10, 2), DecimalType(11, 3), True),
        (IntegerType(), DecimalType(12, 2), True),
        (DoubleType(), LongType(), False),
        (LongType(), IntegerType(), False),
        (LongType(), DoubleType(), False),
        (DoubleType(), FloatType(), False),
        (TimestampType(), DateType(), False),
        (DecimalType(10, 3), DecimalType(10, 2), False),
        (DecimalType(12, 2), DecimalType(10, 2), False),
        (StringType(), LongType(), False),
        (LongType(), StringType(), False),
    ],
)
def test_fits(value: DataType, column: DataType, ok: bool) -> None:
    assert fits(value, column) is ok


def test_promotions_are_icebergs() -> None:
    assert promotable(IntegerType(), LongType()) and promotable(FloatType(), DoubleType())
    assert promotable(DecimalType(10, 2), DecimalType(14, 2))
    assert not promotable(DecimalType(10, 2), DecimalType(14, 4))
    assert not promotable(IntegerType(), DoubleType())


def test_plan_widens_adds_and_refuses() -> None:
    table = StructType([StructField("id", IntegerType()), StructField("v", LongType())])
    ok = StructType(
        [StructField("ID", LongType()), StructField("v", IntegerType()), StructField("x", DateType())]
    )
    assert plan("t", table, ok) == [
        "ALTER TABLE t ALTER COLUMN `id` TYPE bigint",
        "ALTER TABLE t ADD COLUMNS (`x` date)",
    ]
    bad = StructType([StructField("id", DoubleType()), StructField("v", StringType())])
    with pytest.raises(ValueError, match="column 'id' is int in the table and double in the result") as err:
        plan("t", table, bad)
    assert "column 'v' is bigint in the table and string in the result" in str(err.value)
