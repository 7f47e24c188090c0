"""What a run plans before Spark does anything: the slice a partitioned run covers and the placeholders
its SQL sees, the procedure calls of maintenance actions, the maintenance a table's health calls for,
and housekeeping's partition folders, archive targets and predicates. No Spark here."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flare_assets.engine.batch.partitions import DimensionSlice, PartitionSlice, window
from flare_assets.engine.housekeeping import _targets, _where
from flare_assets.engine.maintenance.actions import plan, statement, timestamp_literal
from flare_assets.engine.maintenance.health import TableHealth
from flare_assets.engine.tables.layout import FileSystem, Partition, file_partitions, partition_dir
from flare_assets.spec.actions import Action
from flare_assets.spec.housekeeping import Housekeeping, check_partition_columns, named_partition_columns
from flare_assets.spec.maintenance import TableMaintenance
from flare_assets.spec.model import PartitionDimension

pytestmark = pytest.mark.unit

DAY = PartitionDimension(name="day", type="daily", column="day", start="2024-01-01")
UNIT = PartitionDimension(name="unit", type="static", column="unit", values=["a", "b"])
NOW_MS = 1_733_011_200_000  # 2024-12-01 00:00:00 UTC


# --- partition slices -----------------------------------------------------------------------------


def test_one_day_slice_fills_every_placeholder_of_its_dimension() -> None:
    start, end = window(DAY, "2024-03-05")
    one = PartitionSlice([DimensionSlice(DAY, ["2024-03-05"], start, end)])
    assert one.placeholders() == {
        "day_in": "'2024-03-05'",
        "day": "2024-03-05",
        "day_start": "2024-03-05 00:00:00+00:00",
        "day_end": "2024-03-06 00:00:00+00:00",
    }
    assert one.describe() == "day=2024-03-05"


def test_a_range_has_no_single_key_and_describes_its_ends() -> None:
    keys = ["2024-03-05", "2024-03-06", "2024-03-07"]
    start, _ = window(DAY, keys[0])
    _, end = window(DAY, keys[-1])
    both = PartitionSlice([DimensionSlice(DAY, keys, start, end), DimensionSlice(UNIT, ["a"])])
    values = both.placeholders()
    assert "day" not in values and values["day_in"] == "'2024-03-05', '2024-03-06', '2024-03-07'"
    assert (values["day_start"], values["day_end"]) == (
        "2024-03-05 00:00:00+00:00",
        "2024-03-08 00:00:00+00:00",
    )
    assert (values["unit"], values["unit_in"]) == ("a", "'a'")
    assert "unit_start" not in values
    assert both.describe() == "day=2024-03-05..2024-03-07; unit=a"


def test_windows_follow_the_dimensions_zone_and_calendar() -> None:
    berlin = PartitionDimension(
        name="day", type="daily", column="day", start="2024-01-01", timezone="Europe/Berlin"
    )
    start, end = window(berlin, "2024-03-31")  # summer time starts: a 23-hour day
    assert start == datetime(2024, 3, 31, tzinfo=ZoneInfo("Europe/Berlin"))
    assert end.timestamp() - start.timestamp() == 23 * 3600
    month = PartitionDimension(name="month", type="monthly", column="m", start="2024-01-01")
    assert window(month, "2024-02-01")[1] == datetime(2024, 3, 1, tzinfo=ZoneInfo("UTC"))
    hour = PartitionDimension(name="hour", type="hourly", column="h", start="2024-01-01")
    assert window(hour, "2024-02-01-23:00")[1] == datetime(2024, 2, 2, tzinfo=ZoneInfo("UTC"))


def test_keys_that_could_change_the_sql_are_refused() -> None:
    with pytest.raises(ValueError, match="partition key \"a' OR '1'='1\" is not allowed"):
        PartitionSlice([DimensionSlice(UNIT, ["a' OR '1'='1"])])


# --- maintenance actions --------------------------------------------------------------------------


def test_procedure_calls_of_each_action() -> None:
    rewrite = Action(
        name="rewrite_dataset",
        input="t",
        options={"strategy": "sort", "sortOrder": "id DESC", "properties": {"min-input-files": "2"}},
    )
    assert statement("lakehouse.shop.events", rewrite, "t") == (
        "CALL lakehouse.system.rewrite_data_files(table => 'shop.events', strategy => 'sort', "
        "sort_order => 'id DESC', options => map('partial-progress.enabled', 'true', "
        "'partial-progress.max-commits', '10', 'min-input-files', '2'))"
    )
    manifests = Action(name="rewrite_manifest", input="t", options={"useCaching": False})
    assert statement("lakehouse.shop.events", manifests, "t") == (
        "CALL lakehouse.system.rewrite_manifests(table => 'shop.events', use_caching => false)"
    )
    expire = Action(name="expire_snapshots", input="t", options={"olderThanMillis": NOW_MS, "retainLast": 3})
    assert statement("lakehouse.shop.events", expire, "t") == (
        "CALL lakehouse.system.expire_snapshots(table => 'shop.events', "
        "older_than => TIMESTAMP '2024-12-01 00:00:00.000', retain_last => 3)"
    )


def test_orphan_removal_defaults_to_the_floor_and_delete_names_its_input() -> None:
    orphans = Action(name="remove_orphans", input="t")
    assert statement("lakehouse.shop.events", orphans, "t", now_ms=NOW_MS) == (
        "CALL lakehouse.system.remove_orphan_files(table => 'shop.events', "
        "older_than => TIMESTAMP '2024-11-28 00:00:00.000', dry_run => false)"
    )
    delete = Action(name="delete_from_dataset", input="events", deleteWhere="day < '2024-01-01'")
    assert statement("lakehouse.shop.events", delete, "events") == (
        "DELETE FROM lakehouse.shop.events AS events WHERE day < '2024-01-01'"
    )
    assert timestamp_literal(NOW_MS + 1234) == "TIMESTAMP '2024-12-01 00:00:01.234'"


def test_health_driven_compaction_rewrites_only_small_files() -> None:
    settings = TableMaintenance()
    health = TableHealth(table="t", small_file_size=1000, delete_files=settings.thresholds.max_delete_files)
    targeted = plan("compaction", settings, health, NOW_MS, targeted=True).options
    assert targeted.properties == {
        "min-file-size-bytes": "1000",
        "min-input-files": "2",
        "delete-file-threshold": "1",
    }
    assert plan("compaction", settings, health, NOW_MS, targeted=False).options.properties == {}


def test_expiry_keeps_half_the_limit_when_a_table_has_too_many_snapshots() -> None:
    settings = TableMaintenance()
    t = settings.thresholds
    calm = plan("expiry", settings, TableHealth(table="t", snapshots=2), NOW_MS, targeted=True).options
    assert calm.cutoff_millis == NOW_MS - int(t.max_snapshot_age_hours * 3_600_000)
    assert calm.retain_last == settings.retain_last
    crowded = TableHealth(table="t", snapshots=t.max_snapshots + 1)
    busy = plan("expiry", settings, crowded, NOW_MS, targeted=True).options
    assert (busy.cutoff_millis, busy.retain_last) == (NOW_MS, max(settings.retain_last, t.max_snapshots // 2))
    with pytest.raises(ValueError, match="unknown maintenance 'vacuum'; allowed: compaction, manifests"):
        plan("vacuum", settings, None, NOW_MS, targeted=False)


# --- housekeeping ---------------------------------------------------------------------------------


def test_partition_folders_escape_like_spark_and_read_back(tmp_path: Path) -> None:
    values = {"run_id": "5", "unit": "a/b=c"}
    folder = partition_dir(values)
    assert folder == "run_id=5/unit=a%2Fb%3Dc"
    (tmp_path / folder).mkdir(parents=True)
    (tmp_path / folder / "part-0.json").write_text("{}")
    (tmp_path / folder / ".part-0.json.crc").write_text("")
    (tmp_path / "run_id=6" / "unit=x").mkdir(parents=True)  # no data files: not a partition
    (part,) = file_partitions(FileSystem(tmp_path), ["run_id", "unit"])
    assert (part.values, part.files, part.compacted) == (values, ["part-0.json"], False)


def test_archive_targets_hold_every_partition_column_and_no_other() -> None:
    parts = [Partition({"run_id": "5", "unit": "a"})]
    assert _targets([{"UNIT": "a", "run_id": "0"}], parts, ["run_id", "unit"], "map(...)") == [
        {"run_id": "0", "unit": "a"}
    ]
    with pytest.raises(ValueError, match="names run, not a partition column; misses run_id"):
        _targets([{"run": "0", "unit": "a"}], parts, ["run_id", "unit"], "map(...)")


def test_iceberg_housekeeping_selects_exactly_its_partitions() -> None:
    parts = [Partition({"run_id": "5", "unit": None}), Partition({"run_id": "6", "unit": "o'k"})]
    assert _where(parts, {"run_id": "int", "unit": "string"}) == (
        "(`run_id` = CAST('5' AS int) AND `unit` IS NULL) OR "
        "(`run_id` = CAST('6' AS int) AND `unit` = CAST('o\\'k' AS string))"
    )


def test_expressions_name_only_partition_columns() -> None:
    archive = "map('run_id', '0', 'unit', elements.unit)"
    assert named_partition_columns(archive, "archivePartitionExpression") == {"run_id", "unit"}
    assert named_partition_columns("element_at(elements, 'day') < '2024'", "retentionCondition") == {"day"}
    assert named_partition_columns("elements['day'] < '2024'", "retentionCondition") == {"day"}
    hk = Housekeeping(archivePartitionExpression=archive, compactPartitionExpression="elements.day > '2024'")
    assert check_partition_columns(hk, ["run_id", "unit"]) == [
        "housekeeping.compactPartitionExpression: names day, not a partition column of the output; "
        "allowed: run_id, unit"
    ]
    assert check_partition_columns(hk, [])[0].startswith("housekeeping: the output has no partition columns")
    with pytest.raises(ValueError, match="reads 'feeds'; allowed: "):
        named_partition_columns("feeds = 'x'", "retentionCondition")
