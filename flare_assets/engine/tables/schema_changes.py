"""Schema changes a write into an existing table makes: lossless, or refused before any commit.

A result column the table lacks is added; a column whose table type cannot hold every value of the
result's type is widened when Iceberg can promote it (int -> bigint, float -> double, a decimal's
precision up), and otherwise refused, naming the column, the table's type and the result's, since
the write would cast it and lose data (double -> bigint drops fractions, timestamp -> date the time
of day, a decimal's lost scale rounds, 'n/a' -> int becomes null). Pure functions of the two
schemas: no Spark job, no JVM.
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    NullType,
    ShortType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

INTEGRAL = {ByteType: 1, ShortType: 2, IntegerType: 3, LongType: 4}
DIGITS = {ByteType: 3, ShortType: 5, IntegerType: 10, LongType: 19}


def _integral(t: DataType) -> int:
    return INTEGRAL.get(type(t), 0)


def fits(value: DataType, column: DataType) -> bool:
    """Whether every value of type `value` is kept exactly by a column of type `column`."""
    if isinstance(value, NullType) or value == column:
        return True
    if _integral(value) and _integral(column):
        return _integral(value) <= _integral(column)
    if _integral(value) and isinstance(column, DecimalType):
        return column.precision - column.scale >= DIGITS[type(value)]
    if isinstance(column, DoubleType):
        return isinstance(value, FloatType) or 0 < _integral(value) <= 3
    if isinstance(column, FloatType):
        return 0 < _integral(value) <= 2
    if isinstance(value, DecimalType) and isinstance(column, DecimalType):
        return (
            column.scale >= value.scale and column.precision - column.scale >= value.precision - value.scale
        )
    if isinstance(value, DateType):
        return isinstance(column, TimestampType | TimestampNTZType)
    if isinstance(value, StructType) and isinstance(column, StructType):
        by_name = {f.name.lower(): f.dataType for f in column.fields}
        return all(
            f.name.lower() in by_name and fits(f.dataType, by_name[f.name.lower()]) for f in value.fields
        )
    if isinstance(value, ArrayType) and isinstance(column, ArrayType):
        return fits(value.elementType, column.elementType)
    if isinstance(value, MapType) and isinstance(column, MapType):
        return fits(value.keyType, column.keyType) and fits(value.valueType, column.valueType)
    return False


def promotable(column: DataType, value: DataType) -> bool:
    """Whether Iceberg can widen a column of type `column` to `value` (its allowed type promotions)."""
    if isinstance(column, IntegerType) and isinstance(value, LongType):
        return True
    if isinstance(column, FloatType) and isinstance(value, DoubleType):
        return True
    return (
        isinstance(column, DecimalType)
        and isinstance(value, DecimalType)
        and value.scale == column.scale
        and value.precision > column.precision
    )


def _loss(column: DataType, value: DataType) -> str:
    if isinstance(column, DecimalType) and isinstance(value, DecimalType) and value.scale > column.scale:
        return f"round its values to {column.scale} decimal places"
    if _integral(column) and isinstance(value, FloatType | DoubleType | DecimalType):
        return "drop the fractional part of its values"
    if isinstance(column, DateType) and isinstance(value, TimestampType | TimestampNTZType):
        return "drop the time of day"
    if value.simpleString() == "string":
        return f"turn every value that is not a {column.simpleString()} into null"
    return "lose values that do not fit (a narrowing or lossy cast)"


def plan(table: str, current: StructType, result: StructType) -> list[str]:
    """The DDL that makes `table` (now `current`) hold `result`'s rows without loss, in order;
    raises ValueError naming every column whose change would lose data."""
    by_name = {f.name.lower(): f for f in current.fields}
    refused: list[str] = []
    widen: list[tuple[str, DataType]] = []
    new: list[StructField] = []
    for field in result.fields:
        existing = by_name.get(field.name.lower())
        if existing is None:
            new.append(field)
        elif fits(field.dataType, existing.dataType):
            continue
        elif promotable(existing.dataType, field.dataType):
            widen.append((existing.name, field.dataType))
        else:
            old, got = existing.dataType.simpleString(), field.dataType.simpleString()
            refused.append(
                f"column {existing.name!r} is {old} in the table and {got} in the result; writing it would "
                f"{_loss(existing.dataType, field.dataType)}"
            )
    if refused:
        raise ValueError(
            f"{table}: " + "; ".join(refused) + ". Nothing was committed: cast the column in the step's SQL "
            "if that loss is meant, or write to a new column"
        )
    ddl = [f"ALTER TABLE {table} ALTER COLUMN {_quote(n)} TYPE {t.simpleString()}" for n, t in widen]
    if new:
        cols = ", ".join(f"{_quote(f.name)} {f.dataType.simpleString()}" for f in new)
        ddl.append(f"ALTER TABLE {table} ADD COLUMNS ({cols})")
    return ddl


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
