"""Separate Spark processes committing to one table at once lose nothing: appends, dynamic
overwrites of disjoint partitions and merges of disjoint keys, on the embedded catalog and on
PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from flare_assets.catalog import load_catalog
from flare_assets.settings import Settings
from flare_assets_tests.servers import postgres, postgres_available
from flare_assets_tests.writer import race


def run_writers(
    settings: Settings,
    mode: str,
    table: str,
    writers: int,
    commits: int,
    tmp_path: Path,
    env: dict | None = None,
    conflicts_allowed: bool = False,
) -> list[bool]:
    failures, succeeded = [], []
    for code, err in race(settings, mode, table, writers, commits, tmp_path, env=env):
        succeeded.append(code == 0)
        if code != 0 and conflicts_allowed and "Found conflicting files" in err:
            continue  # a writer that gave up names the conflict; nothing of it was committed
        if code != 0:
            failures.append(
                "\n".join(line for line in err.splitlines() if "Exception" in line and "\tat " not in line)
            )
    assert not failures, failures[0]
    return succeeded


def rows(settings: Settings, table: str) -> list[tuple[int, int, int]]:
    data = load_catalog(settings=settings).load_table(table).scan().to_arrow().to_pylist()
    return sorted((r["writer"], r["seq"], r["batch"]) for r in data)


def appended_snapshots(settings: Settings, table: str) -> int:
    return sum(
        1
        for s in load_catalog(settings=settings).load_table(table).snapshots()
        if s.summary and s.summary.operation.value == "append"
    )


@pytest.mark.slow
# 8 writers x 10 commits is the benchmark concurrent_commits_lost (make bench)
@pytest.mark.parametrize("writers", [4])
def test_processes_appending_ten_commits_each(settings: Settings, tmp_path: Path, writers: int) -> None:
    table = f"lakehouse.conc.append_{writers}"
    run_writers(settings, "append", table, writers=writers, commits=10, tmp_path=tmp_path)
    assert rows(settings, table.removeprefix("lakehouse.")) == [
        (w, i, i) for w in range(writers) for i in range(10)
    ]
    assert appended_snapshots(settings, table.removeprefix("lakehouse.")) == writers * 10


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dynamic", "merge"])
def test_dynamic_overwrites_and_merges_of_disjoint_data(
    settings: Settings, tmp_path: Path, mode: str
) -> None:
    table = f"lakehouse.conc.{mode}"
    run_writers(settings, mode, table, writers=4, commits=5, tmp_path=tmp_path)
    # every writer's last batch (4) is what its partition holds: all 5 commits of each writer landed in order
    assert rows(settings, table.removeprefix("lakehouse.")) == [(w, s, 4) for w in range(4) for s in range(5)]
    snapshots = load_catalog(settings=settings).load_table(table.removeprefix("lakehouse.")).snapshots()
    assert len(snapshots) >= 4 * 5


@pytest.fixture(scope="module")
def pg_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict[str, str]]]:
    if not postgres_available():
        pytest.skip("PostgreSQL server not installed")
    with postgres(["catalog"]) as pg:
        home = tmp_path_factory.mktemp("pg_home")
        env = {
            "FLARE_HOME": str(home),
            "FLARE_CATALOG_URI": pg.jdbc("catalog"),
            "FLARE_CATALOG_USER": "postgres",
        }
        yield Settings.from_env({**os.environ, **env}), env


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "writers", "commits"), [("append", 4, 10), ("dynamic", 4, 5), ("merge", 4, 5)]
)
def test_concurrent_writers_on_postgres(
    pg_settings: tuple[Settings, dict[str, str]], tmp_path: Path, mode: str, writers: int, commits: int
) -> None:
    settings, env = pg_settings
    table = f"lakehouse.conc.pg_{mode}"
    run_writers(settings, mode, table, writers=writers, commits=commits, tmp_path=tmp_path, env=env)
    got = rows(settings, table.removeprefix("lakehouse."))
    if mode == "append":
        assert got == [(w, i, i) for w in range(writers) for i in range(commits)]
    else:
        assert got == [(w, s, commits - 1) for w in range(writers) for s in range(commits)]


@pytest.mark.slow
def test_conflicting_merges_are_retried_and_none_is_lost(settings: Settings, tmp_path: Path) -> None:
    table = "lakehouse.conc.shared"
    succeeded = run_writers(
        settings, "shared", table, writers=2, commits=4, tmp_path=tmp_path, conflicts_allowed=True
    )
    # the same keys merged by two writers at once: conflicts are retried; a writer that still
    # loses fails naming the conflict. Every key is there once, with the highest batch committed.
    assert any(succeeded)
    assert rows(settings, "conc.shared") == [(0, s, 3) for s in range(4)]
