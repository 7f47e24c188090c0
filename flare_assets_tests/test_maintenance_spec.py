"""Flare actions and per-table maintenance settings: bad input is reported with the file, the YAML
path and the allowed values before any Spark work; health rules on measured figures. No Spark here."""

from __future__ import annotations

from pathlib import Path

import pytest

from flare_assets.depots import load_depots
from flare_assets.engine.maintenance.health import TableHealth, needed
from flare_assets.spec.actions import always_true
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import load_jobs
from flare_assets.spec.maintenance import Thresholds
from flare_assets_tests.conftest import DEMO_DEPOTS
from flare_assets_tests.manifests import job, workflow, write

pytestmark = pytest.mark.unit

JOB = "workflow.dag[0].spec.stackSpec.job"


def action_manifest(actions: list[dict], inputs: list[dict] | None = None) -> dict:
    inputs = inputs or [{"name": "inputDf", "dataset": "dataos://lakehouse:shop/events", "format": "Iceberg"}]
    return workflow("maint", job(inputs, actions=actions), dag="tidy")


def problems(tmp_path: Path, actions: list[dict], inputs: list[dict] | None = None) -> list[str]:
    path = write(tmp_path, action_manifest(actions, inputs), "m")
    with pytest.raises(ManifestError) as info:
        load_jobs([path], load_depots(DEMO_DEPOTS))
    return [p.removeprefix(f"{path}: ") for p in info.value.problems]


def test_every_flare_action_and_option_loads(tmp_path: Path) -> None:
    actions = [
        {
            "name": "rewrite_dataset",
            "input": "inputDf",
            "options": {
                "strategy": "sort",
                "sortOrder": "zorder(id, day)",
                "where": "day >= '2024-01-01'",
                "properties": {
                    "target-file-size-bytes": 1048576,
                    "min-input-files": 2,
                    "partial-progress.enabled": True,
                    "max-concurrent-file-group-rewrites": 2,
                    "rewrite-all": False,
                },
            },
        },
        {"name": "rewrite_manifest", "input": "inputDf", "options": {"useCaching": False}},
        {
            "name": "expire_snapshots",
            "input": "inputDf",
            "options": {
                "olderThanTimestamp": "2024-12-01T00:00:00Z",
                "retainLast": 3,
                "streamDeleteResults": True,
            },
        },
        {"name": "expire_snapshots", "input": "inputDf", "options": {"expireOlderThan": 1700000000000}},
        {
            "name": "expire_snapshots",
            "input": "inputDf",
            "options": {"snapshotIds": [1, 2], "maxConcurrentDeletes": 2},
        },
        {
            "name": "remove_orphans",
            "input": "inputDf",
            "options": {"olderThan": 1700000000000, "dryRun": True},
        },
        {
            "name": "remove_orphans",
            "input": "inputDf",
            "options": {"olderThanTimestamp": "2024-12-01 00:00:00.000"},
        },
        {
            "name": "delete_from_dataset",
            "input": "inputDf",
            "deleteWhere": "EXISTS (SELECT 1 FROM gone g WHERE g.id = inputDf.id)",
        },
        {"name": "delete_from_dataset", "input": "inputDf", "all": True},
    ]
    inputs = [
        {"name": "inputDf", "dataset": "dataos://lakehouse:shop/events", "format": "Iceberg"},
        {"name": "gone", "dataset": "dataos://landing:shop/gone", "format": "json"},
    ]
    path = write(tmp_path, action_manifest(actions, inputs), "m")
    (lj,) = load_jobs([path], load_depots(DEMO_DEPOTS))
    job = lj.dag_job.job
    assert [a.name for a in job.actions][:3] == ["rewrite_dataset", "rewrite_manifest", "expire_snapshots"]
    assert job.actions[0].options.properties["partial-progress.enabled"] == "true"
    assert job.actions[0].options.properties["target-file-size-bytes"] == "1048576"
    assert job.actions[2].options.cutoff_millis == 1733011200000
    assert job.actions[3].options.cutoff_millis == 1700000000000
    assert job.actions[5].options.cutoff_millis == 1700000000000 and job.actions[5].options.dry_run
    assert job.outputs == []


def test_unknown_action_names_the_allowed_ones(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, [{"name": "compact_files", "input": "inputDf"}])
    assert problem.startswith(f"{JOB}.actions[0].name: ")
    for name in (
        "rewrite_dataset",
        "rewrite_manifest",
        "expire_snapshots",
        "remove_orphans",
        "delete_from_dataset",
    ):
        assert name in problem


def test_unknown_option_and_property_name_the_allowed_ones(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path, [{"name": "expire_snapshots", "input": "inputDf", "options": {"keepLast": 2}}]
    )
    assert problem == (
        f"{JOB}.actions[0]: options.keepLast: unknown option of expire_snapshots; allowed: olderThanMillis, "
        "olderThanTimestamp, expireOlderThan, retainLast, snapshotIds, maxConcurrentDeletes, streamDeleteResults"
    )
    (problem,) = problems(
        tmp_path,
        [{"name": "rewrite_dataset", "input": "inputDf", "options": {"properties": {"target-size": 10}}}],
    )
    assert (
        "options.properties: unknown rewrite property target-size; allowed: target-file-size-bytes" in problem
    )
    (problem,) = problems(
        tmp_path, [{"name": "rewrite_dataset", "input": "inputDf", "options": {"strategy": "zip"}}]
    )
    assert "options.strategy: got 'zip'; allowed: binpack, sort" in problem


def test_where_clauses_are_parsed_at_load_time(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path, [{"name": "rewrite_dataset", "input": "inputDf", "options": {"where": "day >= AND 1"}}]
    )
    assert problem.startswith(f"{JOB}.actions[0]: options.where: 'day >= AND 1' is not a valid SQL predicate")
    (problem,) = problems(
        tmp_path, [{"name": "delete_from_dataset", "input": "inputDf", "deleteWhere": "id IN ("}]
    )
    assert problem.startswith(f"{JOB}.actions[0].deleteWhere: 'id IN (' is not a valid SQL predicate")


def test_delete_refuses_empty_or_always_true_predicates_without_all(tmp_path: Path) -> None:
    for where in (None, "", "1 = 1", "id > 3 OR true"):
        action = {"name": "delete_from_dataset", "input": "inputDf"}
        if where is not None:
            action["deleteWhere"] = where
        (problem,) = problems(tmp_path, [action])
        assert "needs a deleteWhere that does not match every row" in problem
        assert "give all: true to delete every row" in problem
    assert always_true("NOT false") and not always_true("id = id + 1 OR day = 'x'")


def test_action_inputs_are_job_inputs_on_iceberg_depots(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, [{"name": "rewrite_manifest", "input": "other"}])
    assert (
        problem
        == f"{JOB}: action rewrite_manifest input 'other' is not an input of the job; allowed: inputDf"
    )
    inputs = [{"name": "files", "dataset": "dataos://landing:shop/raw", "format": "json"}]
    (problem,) = problems(tmp_path, [{"name": "rewrite_manifest", "input": "files"}], inputs)
    assert (
        problem
        == f"{JOB}.actions[0].input: 'files' is on a file depot; actions run on iceberg depots (lakehouse)"
    )


def test_cutoffs_and_sort_orders_are_checked(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path,
        [{"name": "remove_orphans", "input": "inputDf", "options": {"olderThanTimestamp": "last week"}}],
    )
    assert "'last week' is neither epoch milliseconds nor an ISO timestamp" in problem
    (problem,) = problems(
        tmp_path,
        [
            {
                "name": "expire_snapshots",
                "input": "inputDf",
                "options": {"olderThanMillis": 1, "expireOlderThan": 2},
            }
        ],
    )
    assert "give one of olderThanMillis, olderThanTimestamp or expireOlderThan" in problem
    (problem,) = problems(
        tmp_path,
        [
            {
                "name": "rewrite_dataset",
                "input": "inputDf",
                "options": {"strategy": "sort", "sortOrder": "id; DROP"},
            }
        ],
    )
    assert "write 'col [ASC|DESC] [NULLS FIRST|LAST], ...' or 'zorder(col1, col2)'" in problem


def test_table_maintenance_settings_in_the_manifest(tmp_path: Path) -> None:
    output = {
        "name": "src",
        "dataset": "dataos://lakehouse:clean/things",
        "maintenance": {"schedules": {"compaction": "0 * * * *", "orphans": False, "expiry": "every day"}},
    }  # orphans: YAML's `off`
    doc = workflow(
        "wf",
        job([{"name": "src", "dataset": "dataos://landing:raw/things", "format": "json"}], outputs=[output]),
        dag="copy",
    )
    path = write(tmp_path, doc, "m")
    with pytest.raises(ManifestError) as info:
        load_jobs([path], load_depots(DEMO_DEPOTS))
    (problem,) = info.value.problems
    assert problem == (
        f"{path}: {JOB}.outputs[0].maintenance.schedules.expiry: 'every day' is not a cron expression "
        "(five fields, e.g. '0 2 * * *') or off"
    )
    output["maintenance"]["schedules"]["expiry"] = "0 3 * * *"
    write(tmp_path, doc, "m")
    (lj,) = load_jobs([path], load_depots(DEMO_DEPOTS))
    schedules = lj.dag_job.job.outputs[0].maintenance.schedules
    assert (schedules.compaction, schedules.orphans, schedules.manifests) == ("0 * * * *", None, "30 2 * * 0")


def test_health_rules_launch_only_what_is_needed() -> None:
    t = Thresholds()
    healthy = TableHealth(table="t", data_files=40, small_files=11, manifests=10, snapshots=30)
    assert needed(healthy, t) == {}
    many = TableHealth(table="t", data_files=400, small_files=100, manifests=100, snapshots=101)
    assert set(needed(many, t)) == {"compaction", "manifests", "expiry"}
    ratio = TableHealth(table="t", data_files=20, small_files=12, snapshots=2, oldest_snapshot_age_h=200)
    assert needed(ratio, t) == {
        "compaction": "small-file ratio 0.60 >= 0.5 (12 small files)",
        "expiry": "oldest snapshot 200 h old > maxSnapshotAgeHours 120",
    }
    deletes = TableHealth(table="t", data_files=3, delete_files=20)
    assert needed(deletes, t) == {"compaction": "20 delete files >= maxDeleteFiles 20"}
