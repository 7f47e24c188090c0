"""A separate writer process for the concurrency tests: appends N commits to one table."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from flare_assets.spark import get_session


def main(table: str, writer: int, commits: int, go: Path) -> None:
    spark = get_session()
    spark.sql("SELECT 1").collect()  # JVM up before the race starts
    while not go.exists():
        time.sleep(0.05)
    for i in range(commits):
        spark.sql(f"INSERT INTO {table} VALUES ({writer}, {i})")
    print(f"writer {writer}: {commits} commits")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
