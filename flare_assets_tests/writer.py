"""A separate writer process for the concurrency tests: N commits to one table, each its own
Spark statement. `append` is plain SQL; `dynamic` and `merge` go through the engine's writer;
`slow` is one long commit (it touches the `go` file when it starts)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from flare_assets.engine import iceberg
from flare_assets.spark import get_session
from flare_assets.spec.model import Output


def main(mode: str, table: str, writer: int, commits: int, go: Path) -> None:
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
