"""cluster_vs_local_ratio: the demo on a standalone cluster of 2 one-core workers / on local[2].

Same data, same catalog, runs interleaved (local, cluster, local, cluster, ...) so drift in the
machine's load hits both alike; medians are compared. The point is that the cluster works and
costs little, not that it is faster on one machine."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks.demo_runs import demo_env, generate_data, timed_demo
from flare_assets_tests.servers import spark_standalone


def measure(rounds: int = 2) -> tuple[dict[str, float], dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="flare-bench-") as tmp:
        root = Path(tmp)
        local_home, cluster_home = root / "local", root / "cluster"
        for home in (local_home, cluster_home):
            generate_data(home)
        with spark_standalone(root / "spark", workers=2, cores=1) as cluster:
            local_env = demo_env(local_home, FLARE_SPARK_MASTER="local[2]")
            cluster_env = demo_env(cluster_home, FLARE_SPARK_MASTER=cluster.master_url)
            local, remote = [], []
            for _ in range(rounds):
                local.append(timed_demo(local_env))
                remote.append(timed_demo(cluster_env))
    ratio = statistics.median(remote) / statistics.median(local)
    details = {"local_s": local, "cluster_s": remote, "workers": 2, "cores_per_worker": 1}
    return {"cluster_vs_local_ratio": round(ratio, 3)}, details
