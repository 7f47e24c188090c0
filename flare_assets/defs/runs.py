"""What the Dagster instance says about runs, as the sensors and schedules ask it."""

from __future__ import annotations

from dagster import DagsterRunStatus

# A run in one of these states may still write: a new run of the same work waits or is skipped.
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
