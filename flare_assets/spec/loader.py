"""Loads manifests from files or folders, reporting every problem at once, before any engine work."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from flare_assets.spec.address import parse_address
from flare_assets.spec.errors import ManifestError, load_yaml, validate
from flare_assets.spec.housekeeping import RUN_ID, check_housekeeping
from flare_assets.spec.jdbc import check_jdbc
from flare_assets.spec.model import (
    METADATA_ONLY,
    TIME_WINDOWS,
    DagJob,
    IcebergOptions,
    Manifest,
    Output,
    PartitionField,
    Partitions,
    Sequence,
    placeholders,
)
from flare_assets.spec.quality import check_quality_names
from flare_assets.spec.schemas import spark_schema
from flare_assets.spec.sql import output_columns, referenced_views
from flare_assets.spec.streams import TableExists, check_stream

MANIFEST_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, eq=False)
class LoadedJob:
    """One dag job with where it came from, so later errors can point back at the file."""

    file: Path
    manifest: Manifest
    index: int

    @property
    def dag_job(self) -> DagJob:
        return self.manifest.workflow.dag[self.index]

    @property
    def yaml_path(self) -> str:
        return f"workflow.dag[{self.index}]"

    @property
    def name(self) -> str:
        return f"{self.manifest.name}__{self.dag_job.name}".replace("-", "_")


def manifest_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES))
        elif path.exists():
            files.append(path)
        else:
            raise ManifestError(f"{path}: no such file or folder")
    return files


def parse_manifest(file: Path) -> Manifest:
    data = load_yaml(file, env=True)
    if not isinstance(data, dict):
        raise ManifestError(f"{file}: (top): a manifest is a mapping with version, name, type and workflow")
    return validate(Manifest, data, file)


def resolve_schema_paths(lj: LoadedJob, depots: Any) -> list[str]:
    """schemaPath is a file relative to the manifest's folder, or a dataos:// address on a file depot
    (read when the job runs); a file given must exist and hold a schema."""
    problems = []
    for i, item in enumerate(lj.dag_job.job.inputs):
        if not item.schema_path:
            continue
        where = f"{lj.file}: {lj.yaml_path}.spec.stackSpec.job.inputs[{i}].schemaPath"
        if item.schema_path.startswith("dataos://"):
            problems += [f"{where}: {p}" for p in _schema_address(item.schema_path, depots)]
            continue
        path = (lj.file.parent / item.schema_path).resolve()
        if not path.is_file():
            problems.append(f"{where}: {path} does not exist")
            continue
        item.schema_path = str(path)
        try:
            spark_schema(path.read_text(), item.schema_type, path.name)
        except ValueError as exc:
            problems.append(f"{where}: {path}: {exc}")
    return problems


def _schema_address(text: str, depots: Any) -> list[str]:
    try:
        address = parse_address(text)
    except ValueError as exc:
        return [str(exc)]
    depot = depots.depots.get(address.depot) if depots else None
    if depots and (depot is None or depot.type != "file"):
        files = [n for n, d in depots.depots.items() if d.type == "file"]
        return [f"{text}: a schema file is on a file depot; allowed: {', '.join(files) or '(none)'}"]
    return []


def resolve_sql_files(lj: LoadedJob) -> list[str]:
    """`sqlFile` is read relative to the manifest's folder, so every later check sees the SQL."""
    problems = []
    for si, step in enumerate(lj.dag_job.job.steps):
        for qi, seq in enumerate(step.sequence):
            if seq.sql_file is None:
                continue
            path = (lj.file.parent / seq.sql_file).resolve()
            try:
                seq.sql = path.read_text()
            except OSError as exc:
                where = f"{lj.yaml_path}.spec.stackSpec.job.steps[{si}].sequence[{qi}].sqlFile"
                problems.append(f"{lj.file}: {where}: cannot read {path}: {exc.strerror}")
                seq.sql = ""
    return problems


def step_columns(seq: Sequence) -> list[str] | None:
    """The columns a step produces, after its functions, when its SQL names them (no `*`)."""
    columns = output_columns(seq.sql or "")
    for fn in seq.functions:
        if columns is None or fn.problems(columns):
            return None
        columns = fn.columns_after(columns)
    return columns


def check_functions(lj: LoadedJob) -> list[str]:
    """Each function's columns exist where the step's columns are known from its SQL."""
    problems = []
    for si, step in enumerate(lj.dag_job.job.steps):
        for qi, seq in enumerate(step.sequence):
            columns = output_columns(seq.sql or "")
            base = f"{lj.file}: {lj.yaml_path}.spec.stackSpec.job.steps[{si}].sequence[{qi}]"
            for fi, fn in enumerate(seq.functions):
                if columns is None:
                    break
                problems += [f"{base}.functions[{fi}]: {p}" for p in fn.problems(columns)]
                columns = fn.columns_after(columns)
    return problems


def check_depots(jobs: list[LoadedJob], depots: Any) -> list[str]:
    """Every address names a known depot; outputs are written once across all manifests."""
    problems: list[str] = []
    writers: dict[str, str] = {}
    for lj in jobs:
        job = lj.dag_job.job
        base = f"{lj.yaml_path}.spec.stackSpec.job"
        for kind, items in (("inputs", job.inputs), ("outputs", job.outputs)):
            for i, item in enumerate(items):
                where = f"{lj.file}: {base}.{kind}[{i}].dataset"
                depot = depots.depots.get(item.address.depot) if depots else None
                if depots and depot is None:
                    problems.append(
                        f"{where}: unknown depot {item.address.depot!r}; allowed: {', '.join(depots.depots)}"
                    )
                    continue
                iceberg = depot is not None and depot.type == "iceberg"
                if iceberg and item.address.is_path:
                    problems.append(
                        f"{where}: {item.address.dataset!r} is a path; an iceberg depot's dataset is one "
                        "table name"
                    )
                if iceberg and (item.format or "iceberg").lower() != "iceberg":
                    problems.append(
                        f"{lj.file}: {base}.{kind}[{i}].format: got {item.format!r} on iceberg depot "
                        f"{item.address.depot!r}; allowed: iceberg"
                    )
                if isinstance(item, Output):
                    key = "/".join(item.address.key)
                    if key in writers:
                        problems.append(
                            f"{where}: {item.address} (asset {key}) is already written by {writers[key]}; "
                            "an output has one writer"
                        )
                    writers[key] = f"{lj.file}: {base}.outputs[{i}]"
                    if depot is not None:
                        problems += [
                            f"{lj.file}: {base}.outputs[{i}].options.{p}" for p in shape_output(item, iceberg)
                        ]
    return problems


def shape_output(output: Output, iceberg: bool) -> list[str]:
    """Flare's output spellings as the one form the engine writes: `options.file` (save mode and file
    type of a file output) and `partitionBy` on an Iceberg output (identity partition fields)."""
    options = output.options
    if options.file is not None:
        if iceberg:
            return ["file: writes files; an iceberg depot takes Iceberg writes (use a file depot)"]
        options.save_mode = options.file.save_mode or options.save_mode
        output.format = options.file.output_type or output.format
    if iceberg and options.partition_by:
        if options.iceberg and options.iceberg.partition_spec:
            return ["partitionBy: give partitionBy or iceberg.partitionSpec, not both"]
        fields = [PartitionField(type="identity", column=c) for c in options.partition_by]
        options.iceberg = options.iceberg or IcebergOptions()
        options.iceberg.partition_spec = fields
        options.partition_by = None
    return []


def check_action_inputs(jobs: list[LoadedJob], depots: Any) -> list[str]:
    """Actions maintain Iceberg tables: the input an action names is on an iceberg depot."""
    problems = []
    for lj in jobs:
        job = lj.dag_job.job
        inputs = {i.name: i for i in job.inputs}
        for ai, action in enumerate(job.actions):
            depot = depots.depots.get(inputs[action.input].address.depot) if depots else None
            if depot is not None and depot.type != "iceberg":
                problems.append(
                    f"{lj.file}: {lj.yaml_path}.spec.stackSpec.job.actions[{ai}].input: {action.input!r} "
                    f"is on a {depot.type} depot; actions run on iceberg depots "
                    f"({', '.join(depots.iceberg_depots())})"
                )
    return problems


def check_views(jobs: list[LoadedJob]) -> list[str]:
    """Each step reads only inputs and earlier steps (qualified table names are left to Spark)."""
    problems: list[str] = []
    for lj in jobs:
        job = lj.dag_job.job
        known = {i.name.lower(): i.name for i in job.inputs}
        for si, step in enumerate(job.steps):
            for qi, seq in enumerate(step.sequence):
                for view in sorted(referenced_views(seq.sql) or set()):
                    if view.lower() not in known:
                        where = f"{lj.yaml_path}.spec.stackSpec.job.steps[{si}].sequence[{qi}].sql"
                        allowed = ", ".join(known.values()) or "(none)"
                        problems.append(
                            f"{lj.file}: {where}: step {seq.name!r} reads {view!r}, which is no input or "
                            f"earlier step; allowed: {allowed}"
                        )
                known[seq.name.lower()] = seq.name
        problems += _check_partition_columns(lj)
    return problems


def _check_partition_columns(lj: LoadedJob) -> list[str]:
    job = lj.dag_job.job
    steps = {s.name: s for st in job.steps for s in st.sequence}
    problems = []
    for oi, output in enumerate(job.outputs):
        columns = step_columns(steps[output.name]) if output.name in steps else None
        if columns is None:
            continue
        lowered = {c.lower() for c in columns}
        opts = output.options
        where = f"{lj.file}: {lj.yaml_path}.spec.stackSpec.job.outputs[{oi}].options"
        fields = opts.iceberg.partition_spec if opts.iceberg and opts.iceberg.partition_spec else []
        for fi, field in enumerate(fields):
            if field.column.lower() not in lowered | {RUN_ID}:
                problems.append(
                    f"{where}.iceberg.partitionSpec[{fi}].column: {field.column!r} is not a column of step "
                    f"{output.name!r}; allowed: {', '.join(columns)}"
                )
        for pi, column in enumerate(opts.partition_by or []):
            if column.lower() not in lowered | {RUN_ID}:
                problems.append(
                    f"{where}.partitionBy[{pi}]: {column!r} is not a column of step {output.name!r}; "
                    f"allowed: {', '.join(columns)}"
                )
    return problems


def partition_placeholders(partitions: Partitions | None) -> set[str]:
    names: set[str] = set()
    for dim in partitions.dimensions if partitions else []:
        names |= {dim.name, f"{dim.name}_in"}
        if dim.type in TIME_WINDOWS:
            names |= {f"{dim.name}_start", f"{dim.name}_end"}
    return names


def check_incremental(lj: LoadedJob, depots: Any) -> list[str]:
    """Placeholders name known keys; partitioned jobs replace slices of Iceberg tables."""
    job = lj.dag_job.job
    base = f"{lj.file}: {lj.yaml_path}.spec.stackSpec.job"
    known = partition_placeholders(job.partitions)
    known |= {k.name for i in job.inputs if i.incremental for k in i.incremental.keys}
    allowed = ", ".join(sorted(known)) or "(none: declare incremental keys or partitions)"
    problems = []
    for si, step in enumerate(job.steps):
        for qi, seq in enumerate(step.sequence):
            for name in placeholders(seq.sql):
                if name not in known:
                    problems.append(
                        f"{base}.steps[{si}].sequence[{qi}].sql: $|{name}| is no key; allowed: {allowed}"
                    )
    for i, item in enumerate(job.inputs):
        if item.incremental_read is None or depots is None or item.address.depot not in depots.depots:
            continue
        iceberg = depots.depots[item.address.depot].type == "iceberg"
        if iceberg and item.incremental_read.archive:
            problems.append(f"{base}.inputs[{i}].incrementalRead.archive: goes with file inputs, not Iceberg")
        if iceberg and {
            "snapshotId",
            "snapshot-id",
            "asOfTimestamp",
            "as-of-timestamp",
            "timestamp",
            "tag",
        } & set(item.options):
            problems.append(
                f"{base}.inputs[{i}].incrementalRead: an incremental read cannot also time travel"
            )
    if job.partitions is not None:
        for oi, output in enumerate(job.outputs):
            where = f"{base}.outputs[{oi}]"
            if depots is not None and output.address.depot in depots.depots:
                if depots.depots[output.address.depot].type != "iceberg":
                    problems.append(f"{where}.dataset: a partitioned job writes Iceberg outputs (its slices)")
            if output.options.write_mode == "append":
                problems.append(
                    f"{where}.options.saveMode: a partitioned job replaces its slice on every run; "
                    "allowed: overwrite (or a merge)"
                )
    return problems


def check_dag(jobs: list[LoadedJob]) -> list[str]:
    """`depends` names jobs of the same workflow; jobs never depend on themselves through
    `depends` or through the datasets they read and write."""
    problems: list[str] = []
    by_name = {(lj.manifest.name, lj.dag_job.name): lj for lj in jobs}
    writer = {str(o.address): lj for lj in jobs for o in lj.dag_job.job.outputs}
    edges: dict[LoadedJob, list[LoadedJob]] = {}
    for lj in jobs:
        ups = []
        siblings = [d.name for d in lj.manifest.workflow.dag]
        for i, dep in enumerate(lj.dag_job.depends):
            up = by_name.get((lj.manifest.name, dep))
            if up is None:
                problems.append(
                    f"{lj.file}: {lj.yaml_path}.depends[{i}]: no job {dep!r}; allowed: {', '.join(siblings)}"
                )
            else:
                ups.append(up)
        # a job reading a table it writes reads it before its own write: no edge to itself
        ups += [
            writer[str(i.address)]
            for i in lj.dag_job.job.inputs
            if str(i.address) in writer and writer[str(i.address)] is not lj
        ]
        edges[lj] = ups
    state: dict[LoadedJob, int] = {}

    def visit(lj: LoadedJob, path: list[LoadedJob]) -> None:
        if state.get(lj) == 2:
            return
        if state.get(lj) == 1:
            cycle = path[path.index(lj) :] + [lj]
            names = " -> ".join(f"{c.manifest.name}/{c.dag_job.name}" for c in cycle)
            problems.append(f"{lj.file}: {lj.yaml_path}: dependency cycle: {names}")
            return
        state[lj] = 1
        for up in edges[lj]:
            visit(up, path + [lj])
        state[lj] = 2

    for lj in jobs:
        visit(lj, [])
    return problems


def metadata_only_warnings(jobs: list[LoadedJob]) -> list[str]:
    """One line per DataOS-only key a manifest sets: accepted, and without effect here."""
    lines: list[str] = []
    for file, manifest in {lj.file: lj.manifest for lj in jobs}.items():
        for path, model, name in set_fields(manifest):
            reason = METADATA_ONLY.get((type(model).__name__, name))
            if reason is not None:
                lines.append(f"{file}: {path}: {reason}; accepted, has no effect here")
    return lines


def set_fields(model: BaseModel, path: str = "") -> Iterator[tuple[str, BaseModel, str]]:
    """(yaml path, model, field name) of every key a manifest sets, depth first."""
    for name, field in type(model).model_fields.items():
        if name not in model.model_fields_set:
            continue
        here = f"{path}.{field.alias or name}" if path else field.alias or name
        yield here, model, name
        value = getattr(model, name)
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, BaseModel):
                yield from set_fields(item, f"{here}[{i}]" if isinstance(value, list) else here)


def _depots_known(lj: LoadedJob, depots: Any) -> bool:
    """Whether every dataset of the job names a depot of the map (checks that need one skip it)."""
    job = lj.dag_job.job
    return depots is None or all(i.address.depot in depots.depots for i in [*job.inputs, *job.outputs])


def load_jobs(
    paths: list[Path], depots: Any = None, table_exists: TableExists | None = None
) -> list[LoadedJob]:
    """`table_exists(catalog.namespace.table)` lets a file stream without a schema take its target's."""
    problems: list[str] = []
    jobs: list[LoadedJob] = []
    names: dict[str, Path] = {}
    for file in manifest_files(paths):
        try:
            manifest = parse_manifest(file)
        except ManifestError as exc:
            problems.extend(exc.problems)
            continue
        if manifest.name in names:
            problems.append(
                f"{file}: name: workflow {manifest.name!r} is also defined in {names[manifest.name]}"
            )
        names[manifest.name] = file
        loaded = [LoadedJob(file, manifest, i) for i in range(len(manifest.workflow.dag))]
        for lj in loaded:
            problems.extend(resolve_schema_paths(lj, depots) + resolve_sql_files(lj))
            problems.extend(check_incremental(lj, depots) + check_functions(lj))
        jobs.extend(loaded)
    problems.extend(check_depots(jobs, depots))
    problems.extend(check_action_inputs(jobs, depots))
    problems.extend(check_jdbc(jobs, depots))
    mapped = [lj for lj in jobs if _depots_known(lj, depots)]
    if depots:
        problems.extend(check_housekeeping(mapped, depots))
    problems.extend(p for lj in mapped for p in check_stream(lj, depots, table_exists))
    problems.extend(check_views(jobs))
    problems.extend(check_dag(jobs))
    problems.extend(check_quality_names(jobs))
    if problems:
        raise ManifestError(problems)
    return jobs
