"""The run executor: in-process, with crash-safe concurrency pools.

A run killed with `kill -9` stays STARTED and keeps the pool slots its steps claimed: nothing in
the run is left to report the end. Dagster's run monitoring fails such runs only where the run
launcher can check its workers (Kubernetes, ECS, Docker); the default launcher and `dagster job
execute` cannot. So every run records its worker (`flare/worker`: host, pid and the process start
time), and:

- the executor watches its own steps while they wait for a pool: it logs a WARNING naming the runs
  that hold the slots, and when a holder's worker is gone from this host (or the holder already
  ended), it fails that run and frees its slots, so the waiting step goes on;
- the sensor `flare_dead_runs` (defs/sensors.py) does the same for every STARTED run of this
  host, waited on or not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from dagster import (
    DagsterEvent,
    DagsterInstance,
    DagsterRunStatus,
    executor,
    in_process_executor,
)

# Dagster has no public API to extend an executor: the in-process one is subclassed from its module.
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.executor.in_process import InProcessExecutor

from flare_assets.workers import worker_alive, worker_identity

WORKER_TAG = "flare/worker"
FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
# the first message comes soon after a step starts waiting; then one a minute while it waits
FIRST_NOTICE_S = 2.0
CHECK_EVERY_S = 5.0
REPEAT_NOTICE_S = 60.0


def reap(instance: DagsterInstance, run_id: str) -> str | None:
    """Fails a STARTED run whose worker is gone and frees the pool slots of it or of a run that has
    already ended; what was done, or None."""
    run = instance.get_run_by_id(run_id)
    storage = instance.event_log_storage
    if run is None or run.status in FINISHED:
        if run is not None and worker_alive(run.tags.get(WORKER_TAG)):
            return None  # ended (canceled, say) while its process still runs: it frees its own
        storage.free_concurrency_slots_for_run(run_id)
        status = run.status.value if run else "deleted"
        return f"run {run_id} ended ({status}) but held pool slots: freed them"
    if run.status == DagsterRunStatus.STARTED and worker_alive(run.tags.get(WORKER_TAG)) is False:
        message = (
            f"run {run_id}: its worker {run.tags[WORKER_TAG]} is gone (killed or crashed); "
            "marked failed and its pool slots freed"
        )
        instance.report_run_failed(run, message)
        storage.free_concurrency_slots_for_run(run_id)
        return message
    return None


def _holders(instance: DagsterInstance, run_ids: list[str]) -> str:
    parts = []
    for rid in run_ids:
        run = instance.get_run_by_id(rid)
        if run is None:
            parts.append(f"run {rid} (deleted)")
            continue
        worker = run.tags.get(WORKER_TAG)
        parts.append(
            f"run {rid} ({run.job_name}, {run.status.value}" + (f", worker {worker})" if worker else ")")
        )
    return ", ".join(parts) or "no run (the slots are taken by higher-priority steps)"


class PoolWatcher(threading.Thread):
    """While this run's steps wait for pool slots: says which runs hold them, and reaps dead holders."""

    def __init__(self, context: PlanOrchestrationContext, pools: set[str]):
        super().__init__(name="flare-pool-watcher", daemon=True)
        self.context, self.pools = context, pools
        self.done = threading.Event()
        self.told: dict[str, tuple[tuple[str, ...], float]] = {}

    def run(self) -> None:
        wait = FIRST_NOTICE_S
        while not self.done.wait(wait):
            wait = CHECK_EVERY_S
            for pool in sorted(self.pools):
                try:
                    self.check(pool)
                except Exception as exc:  # never take the run down for a message
                    self.context.log.debug(f"pool {pool}: could not read its slots: {exc}")

    def check(self, pool: str) -> None:
        instance, run_id = self.context.instance, self.context.run_id
        info = instance.event_log_storage.get_concurrency_info(pool)
        waiting = sorted(
            p.step_key for p in info.pending_steps if p.run_id == run_id and p.assigned_timestamp is None
        )
        if not waiting:
            self.told.pop(pool, None)
            return
        holders = tuple(sorted({s.run_id for s in info.claimed_slots if s.run_id != run_id}))
        now = time.monotonic()
        last = self.told.get(pool)
        if last is None or last[0] != holders or now - last[1] >= REPEAT_NOTICE_S:
            self.told[pool] = (holders, now)
            self.context.log.warning(
                f"{', '.join(waiting)} waits for pool {pool!r} (limit {info.slot_count}, "
                f"{len(info.claimed_slots)} in use), held by {_holders(instance, list(holders))}"
            )
        for rid in holders:
            done = reap(instance, rid)
            if done:
                self.context.log.warning(done)


class PoolAwareExecutor(InProcessExecutor):
    """Dagster's in-process executor that records its worker on the run and watches pool waits."""

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        instance = plan_context.instance
        pools = {s.pool for s in execution_plan.get_steps_to_execute_in_topo_order() if s.pool}
        watcher = None
        if pools and instance.event_log_storage.supports_global_concurrency_limits:
            instance.add_run_tags(plan_context.run_id, {WORKER_TAG: worker_identity()})
            watcher = PoolWatcher(plan_context, pools)
            watcher.start()
        try:
            yield from super().execute(plan_context, execution_plan)
        finally:
            if watcher is not None:
                watcher.done.set()
                watcher.join(timeout=10)


@executor(name="in_process", config_schema=in_process_executor.config_schema)
def flare_executor(init_context) -> PoolAwareExecutor:  # noqa: ANN001
    """Steps run in the run's process (one Spark JVM per run); pool waits are reported and a dead
    holder of the pool's slots is failed and its slots freed."""
    inner = in_process_executor.executor_creation_fn(init_context)
    return PoolAwareExecutor(
        retries=inner.retries,
        step_dependency_config=inner.step_dependency_config,
        marker_to_close=inner.marker_to_close,
    )
