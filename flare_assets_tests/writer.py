"""Writer processes racing to commit to one table, for the concurrency tests and the
concurrent_commits_lost benchmark. `race` creates the table and starts them; each (`main`) makes N
commits, each its own Spark statement. `append` is plain SQL; `dynamic` and `merge` go through the
engine's writer; `slow` is one long commit (it touches the `go` file when it starts)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from flare_assets.catalog import load_catalog
from flare_assets.settings import Settings

COLUMNS = ["writer", "seq", "batch"]


def create_table(settings: Settings, mode: str, table: str) -> None:
    """With pyiceberg: the calling process's JVM may carry another catalog's driver."""
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import IntegerType, NestedField

    from flare_assets.spark import TABLE_DEFAULTS

    catalog = load_catalog(settings=settings)
    namespace = table.split(".")[1]
    catalog.create_namespace_if_not_exists(namespace)
    schema = Schema(*(NestedField(i + 1, n, IntegerType()) for i, n in enumerate(COLUMNS)))
    spec = (
        PartitionSpec(PartitionField(1, 1000, IdentityTransform(), "writer"))
        if mode in ("dynamic", "merge")
        else PartitionSpec()
    )
    catalog.create_table(
        table.removeprefix("lakehouse."), schema, partition_spec=spec, properties=TABLE_DEFAULTS
    )


def race(
    settings: Settings,
    mode: str,
    table: str,
    writers: int,
    commits: int,
    folder: Path,
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> list[tuple[int, str]]:
    """Creates `table`, starts `writers` processes (one local[1] JVM each), lets them all go at once
    when every JVM is up, and returns each one's exit code and stderr."""
    create_table(settings, mode, table)
    go = folder / f"go-{table}"
    child_env = {**os.environ, **(env or {}), "FLARE_SPARK_MASTER": "local[1]"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "flare_assets_tests.writer", mode, table, str(w), str(commits), str(go)],
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    time.sleep(1)
    go.touch()
    done = []
    for p in procs:
        _, err = p.communicate(timeout=timeout)
        done.append((p.returncode, err))
    return done


def main(mode: str, table: str, writer: int, commits: int, go: Path) -> None:
    from flare_assets.engine.tables import iceberg
    from flare_assets.spark import get_session
    from flare_assets.spec.model import Output

    spark = get_session()
    spark.sql("SELECT 1").collect()  # JVM up before the race starts
    catalog, namespace, name = table.split(".")
    options: dict = {"saveMode": "append"}
    if mode == "dynamic":
        options = {"saveMode": "overwrite", "extraOptions": {"overwrite-mode": "dynamic"}}
    elif mode == "merge":  # each writer merges its own keys
        on = f"old.writer = {writer} AND old.writer = new.writer AND old.seq = new.seq"
        when = "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
        options["merge"] = {"onClause": on, "whenClause": when}
    elif mode == "shared":  # every writer merges the same keys: their commits conflict
        when = "WHEN MATCHED AND new.batch > old.batch THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
        options["merge"] = {"onClause": "old.seq = new.seq", "whenClause": when}
    output = Output.model_validate(
        {"name": "batch", "dataset": f"dataos://{catalog}:{namespace}/{name}", "options": options}
    )
    if mode == "slow":
        # one commit of `commits` rows, each row taking 0.2 s to compute: a write that is seen running
        go.touch()
        spark.sql(
            f"INSERT INTO {table} SELECT {writer}, CAST(id AS INT), "
            "CAST(reflect('java.lang.Thread', 'sleep', CAST(200 AS BIGINT)) IS NULL AS INT) "
            f"FROM range({commits})"
        )
        print(f"writer {writer}: committed")
        return
    while not go.exists():
        time.sleep(0.05)
    for i in range(commits):
        if mode == "append":
            spark.sql(f"INSERT INTO {table} VALUES ({writer}, {i}, {i})")
            continue
        # dynamic: the writer's partition is replaced by batch i (rows 0..i); merge: row i added, 0..i-1 updated
        rows = [(0 if mode == "shared" else writer, seq, i) for seq in range(i + 1)]
        iceberg.write(spark, spark.createDataFrame(rows, "writer INT, seq INT, batch INT"), output)
    print(f"writer {writer}: {commits} commits")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
