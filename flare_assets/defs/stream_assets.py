"""Stream jobs in Dagster: one multi_asset that runs the Structured Streaming query (its sensor is
in defs/sensors.py).

Once and AvailableNow runs process what is there and end; a ProcessingTime run keeps going, reporting
each committed micro-batch as an asset materialization, until it is terminated: then the query
stops between batches and a later run resumes from the checkpoint. A run in flight whose process is
gone is marked failed and the next run resumes the stream from its checkpoint."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    Config,
    DagsterExecutionInterruptedError,
    MaterializeResult,
    multi_asset,
)
from pydantic import Field

from flare_assets.defs.assets import output_spec
from flare_assets.defs.config import config_fields, op_config
from flare_assets.defs.location import Location
from flare_assets.defs.resources import SparkResource
from flare_assets.defs.stream_metadata import stream_metadata
from flare_assets.engine.batch.context import RunContext
from flare_assets.engine.batch.tuning import job_conf
from flare_assets.engine.stream.checkpoints import checkpoint_dir, record_runner
from flare_assets.engine.stream.runner import BatchResult, StreamResult, StreamRun, run_stream
from flare_assets.spark import quick_jit
from flare_assets.spec.loader import LoadedJob
from flare_assets.spec.streams import streaming

STREAM_TAG = "flare/stream"


BATCH_TAG = "flare/batch"
# The sensor tags a run whose batch is small (QUICK_BATCH_BYTES at most) `flare/jvm: quick`: its
# JVM lives for seconds and starts on the client compiler alone (spark.quick_jit).
JVM_TAG, QUICK_JVM = "flare/jvm", "quick"
QUICK_BATCH_BYTES = 64 * 1024 * 1024


class StreamRunConfig(Config):
    max_batches: int = Field(
        default=0,
        ge=0,
        description="ProcessingTime runs: stop cleanly after this many micro-batches (0: until terminated)",
    )


@contextmanager
def termination_requested() -> Iterator[threading.Event]:
    """Set when the run is terminated (Dagster interrupts the run's main thread with SIGINT, or
    SIGTERM): the stream then stops between micro-batches instead of being cut mid-commit."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: event.set())
    try:
        yield event
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stream_assets(lj: LoadedJob, location: Location) -> AssetsDefinition:
    """The stream job's multi_asset; its runs use `location` (what the definitions were built with)."""
    job, keys = lj.dag_job.job, location.keys
    mode = streaming(job)
    deps = [keys(i.address) for i in job.inputs]
    specs = [
        output_spec(lj, o, location, deps)
        .merge_attributes(metadata={"stream_trigger": mode.trigger_mode})
        .replace_attributes(skippable=True)
        for o in job.outputs
    ]
    by_name = {o.name: keys(o.address) for o in job.outputs}

    @multi_asset(
        name=lj.name,
        specs=specs,
        can_subset=False,
        description=(lj.dag_job.title or lj.label) + f" (stream, {mode.trigger_mode})",
        pool=lj.dag_job.pool,
        config_schema=config_fields(StreamRunConfig),
    )
    def _stream(context: AssetExecutionContext, spark: SparkResource) -> Iterator[MaterializeResult]:
        result = _run(context, spark, lj, location, by_name)
        if result.stopped == "terminated":
            raise DagsterExecutionInterruptedError()
        if mode.continuous or not result.batches:
            return
        for output, key in by_name.items():
            yield MaterializeResult(asset_key=key, metadata=stream_metadata(result, result.batches, output))

    return _stream


def _run(
    context: AssetExecutionContext,
    spark: SparkResource,
    lj: LoadedJob,
    location: Location,
    keys: dict[str, AssetKey],
) -> StreamResult:
    """One run of the stream; a continuous trigger reports each committed batch as it lands."""
    depots, settings = location.depots, location.settings
    job, mode = lj.dag_job.job, streaming(lj.dag_job.job)
    config = op_config(StreamRunConfig, context)
    stack = lj.dag_job.spec.stack_spec
    static = stack.static_conf()
    quick = context.run.tags.get(JVM_TAG) == QUICK_JVM and not mode.continuous
    session, ignored = spark.session_for(quick_jit(static) if quick else static, None, settings, depots)
    runtime = {k: v for k, v in stack.conf().items() if k not in static}
    checkpoint = checkpoint_dir(job, lj.name, settings)
    # the run says it processes the stream (the sensor waits for it) and where, so a sensor tick can
    # tell when it died without ending
    context.instance.add_run_tags(context.run_id, {STREAM_TAG: lj.name})
    record_runner(checkpoint, context.run_id)

    def report(stream: StreamResult, batch: BatchResult) -> None:
        for output, key in keys.items():
            context.log_event(
                AssetMaterialization(asset_key=key, metadata=stream_metadata(stream, [batch], output))
            )

    with job_conf(session, runtime) as static, termination_requested() as stop:
        for key in ignored + static:
            context.log.warning(f"{key} is a static Spark conf; the run's JVM was started without it")
        run = StreamRun(
            RunContext(session, job, depots, settings, name=lj.label),
            checkpoint,
            on_batch=report if mode.continuous else None,
            should_stop=stop.is_set,
            max_batches=config.max_batches,
            log=context.log.warning,
        )
        result = run_stream(run)
    context.log.info(
        f"{lj.label}: {len(result.batches)} micro-batch(es), stopped: {result.stopped}; "
        f"checkpoint {result.checkpoint}"
    )
    return result
