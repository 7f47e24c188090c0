"""Loads manifests from files or folders, reporting every problem at once, before any engine work."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from flare_assets.spec.address import parse_address
from flare_assets.spec.cache import cached
from flare_assets.spec.errors import SAFE_LOADER, ManifestError, load_yaml, validate
from flare_assets.spec.housekeeping import RUN_ID, check_housekeeping
from flare_assets.spec.jdbc import check_jdbc
from flare_assets.spec.model import (
    METADATA_ONLY,
    TIME_WINDOWS,
    DagJob,
    IcebergOptions,
    Job,
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

    def job_path(self, sub: str = "") -> str:
        """The YAML path of the job block, or of `sub` inside it (`outputs[0].options`)."""
        return f"{self.yaml_path}.spec.stackSpec.job" + (f".{sub}" if sub else "")

    def where(self, sub: str = "") -> str:
        """`FILE: yaml.path`, as problem lines start."""
        return f"{self.file}: {self.job_path(sub)}"

    @property
    def label(self) -> str:
        """`workflow/job`: how runs, state files, checkpoints and messages name the job."""
        return f"{self.manifest.name}/{self.dag_job.name}"


def manifest_files(paths: list[Path]) -> list[Path]:
    """YAML files named, or found under the folders named: shallowest first, then by path, so a
    backup copy in a subfolder is the one reported as the duplicate."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES and p.is_file()]
            files.extend(sorted(found, key=lambda p: (len(p.relative_to(path).parts), str(p))))
        elif path.exists():
            files.append(path)
        else:
            raise ManifestError(f"{path}: no such file or folder")
    return files


# A file that declares a Flare workflow says so at the top level, even when the rest does not parse.
WORKFLOW_DECLARED = re.compile(r"^type:\s*['\"]?workflow\b", re.MULTILINE)


def declares_workflow(file: Path, text: str | None = None) -> bool:
    """Whether a YAML file found in a folder is a Flare manifest (`type: workflow` at the top);
    other YAML (a docker-compose file, a depot map, CI config) is not."""
    if text is None:
        try:
            text = file.read_text()
        except (OSError, UnicodeDecodeError):
            return True  # reported as unreadable by the parse
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError:
        return bool(WORKFLOW_DECLARED.search(text))
    return isinstance(data, dict) and str(data.get("type", "")).lower() == "workflow"


def parse_manifest(file: Path, text: str | None = None) -> Manifest:
    data = load_yaml(file, env=True, text=text)
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
        where = lj.where(f"inputs[{i}].schemaPath")
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
                where = lj.job_path(f"steps[{si}].sequence[{qi}].sqlFile")
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
            base = lj.where(f"steps[{si}].sequence[{qi}]")
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
        base = lj.job_path()
        for kind, items in (("inputs", job.inputs), ("outputs", job.outputs)):
            for i, item in enumerate(items):
                where = f"{lj.file}: {base}.{kind}[{i}].dataset"
                depot = depots.depots.get(item.address.depot) if depots else None
                if depots and depot is None:
                    problems.append(
                        f"{where}: unknown depot {item.address.depot!r}; allowed: {', '.join(depots.depots)}"
                    )
                    continue
                iceberg = depot is not None and depots.is_iceberg(item.address)
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
        iceberg_only = [k for k in ("iceberg", "merge", "write_audit_publish") if getattr(options, k)]
        if iceberg_only:
            taken = ", ".join(iceberg_only)
            return [f"file: writes files, which take no {taken} (those go with Iceberg tables)"]
        options.save_mode = options.file.save_mode or options.save_mode
        output.format = options.file.output_type or output.format
    if iceberg and options.partition_by:
        if options.partition_fields:
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
                    f"{lj.where(f'actions[{ai}].input')}: {action.input!r} "
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
                        where = lj.job_path(f"steps[{si}].sequence[{qi}].sql")
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
        where = lj.where(f"outputs[{oi}].options")
        fields = opts.partition_fields or []
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
    job, base = lj.dag_job.job, lj.where()
    problems = _check_placeholders(job, base) + _check_incremental_reads(job, depots, base)
    if job.partitions is not None:
        problems += _check_partitioned(job, depots, base)
    return problems


def _check_placeholders(job: Job, base: str) -> list[str]:
    known = partition_placeholders(job.partitions)
    known |= {k.name for i in job.inputs if i.incremental for k in i.incremental.keys}
    allowed = ", ".join(sorted(known)) or "(none: declare incremental keys or partitions)"
    return [
        f"{base}.steps[{si}].sequence[{qi}].sql: $|{name}| is no key; allowed: {allowed}"
        for si, step in enumerate(job.steps)
        for qi, seq in enumerate(step.sequence)
        for name in placeholders(seq.sql)
        if name not in known
    ]


TIME_TRAVEL_OPTIONS = {"snapshotId", "snapshot-id", "asOfTimestamp", "as-of-timestamp", "timestamp", "tag"}


def _check_incremental_reads(job: Job, depots: Any, base: str) -> list[str]:
    problems = []
    for i, item in enumerate(job.inputs):
        if item.incremental_read is None or depots is None or item.address.depot not in depots.depots:
            continue
        iceberg = depots.is_iceberg(item.address)
        if iceberg and item.incremental_read.archive:
            problems.append(f"{base}.inputs[{i}].incrementalRead.archive: goes with file inputs, not Iceberg")
        if iceberg and TIME_TRAVEL_OPTIONS & set(item.options):
            problems.append(
                f"{base}.inputs[{i}].incrementalRead: an incremental read cannot also time travel"
            )
    refreshing = [
        i
        for i, item in enumerate(job.inputs)
        if item.incremental_read and item.incremental_read.on_rewrite != "fail"
    ]
    others = [item.name for item in job.inputs if item.incremental or item.incremental_read]
    for i in refreshing if len(others) > 1 else []:
        problems.append(
            f"{base}.inputs[{i}].incrementalRead.onRewrite: a full refresh replaces the outputs, so the "
            f"job's other incremental inputs ({', '.join(n for n in others if n != job.inputs[i].name)}) "
            "would lose what earlier runs read; allowed: fail, or make it the job's only incremental input"
        )
    return problems


def _check_partitioned(job: Job, depots: Any, base: str) -> list[str]:
    problems = []
    for i, item in enumerate(job.inputs):
        if item.incremental or item.incremental_read:
            key = "incremental" if item.incremental else "incrementalRead"
            problems.append(
                f"{base}.inputs[{i}].{key}: a partitioned job cannot read incrementally: the input's "
                "state covers the whole table, so a run of one partition would move it past the rows of "
                "the others and replays would read nothing; select each slice's rows with the partition "
                "placeholders ($|DIM_start|, $|DIM_end|, $|DIM_in|) instead"
            )
    problems += _check_slice_layout(job, base)
    for oi, output in enumerate(job.outputs):
        where = f"{base}.outputs[{oi}]"
        if (
            depots is not None
            and output.address.depot in depots.depots
            and not depots.is_iceberg(output.address)
        ):
            problems.append(f"{where}.dataset: a partitioned job writes Iceberg outputs (its slices)")
        if output.options.write_mode == "append":
            problems.append(
                f"{where}.options.saveMode: a partitioned job replaces its slice on every run; "
                "allowed: overwrite (or a merge)"
            )
    return problems


TRANSFORM_GRAIN = {"identity": 0, "hour": 1, "day": 2, "month": 3, "year": 4}
SLICE_GRAIN = {"hourly": 1, "daily": 2, "monthly": 3}


def _check_slice_layout(job: Job, base: str) -> list[str]:
    """Replacing a slice deletes whole data files, so every file must lie inside or outside any
    slice: the output's partition spec cuts the slice column at least as finely as the slices, at the
    same instants (Iceberg's hours, days and months are cut in UTC)."""
    problems = []
    for oi, output in enumerate(job.outputs):
        spec = output.options.partition_fields
        where = f"{base}.outputs[{oi}].options.iceberg.partitionSpec"
        for di, dim in enumerate(job.partitions.dimensions if job.partitions else []):
            fields = [f for f in spec or [] if f.column.lower() == dim.column.lower()]
            grains = sorted(TRANSFORM_GRAIN[f.type] for f in fields if f.type in TRANSFORM_GRAIN)
            shown = ", ".join(f.term for f in fields) or "nothing"
            if dim.type not in SLICE_GRAIN:
                if 0 not in grains:
                    problems.append(
                        f"{where}: partitions {dim.column!r} by {shown}, which does not keep the keys of "
                        f"{dim.type} dimension {dim.name!r} in files of their own, so replacing one key "
                        f"would fail; allowed: an identity field on {dim.column}"
                    )
                continue
            if not grains or grains[0] > SLICE_GRAIN[dim.type]:
                allowed = [t for t, g in TRANSFORM_GRAIN.items() if g <= SLICE_GRAIN[dim.type]]
                problems.append(
                    f"{where}: partitions {dim.column!r} by {shown}, coarser than the {dim.type} slices of "
                    f"dimension {dim.name!r}, so replacing one slice would fail (Iceberg deletes whole "
                    f"files); allowed on {dim.column}: {', '.join(allowed)}"
                )
            elif grains[0] > 0 and not _cuts_like_utc(dim.timezone, dim.type):
                problems.append(
                    f"{base}.partitions.dimensions[{di}].timezone: {dim.type} slices in {dim.timezone} do "
                    f"not line up with {shown}, which Iceberg cuts at UTC boundaries, so replacing one slice "
                    f"would fail; allowed: timezone UTC, or a column holding the local "
                    f"{'hour' if dim.type == 'hourly' else 'date'} partitioned with identity "
                    f"(partitionSpec: [{{type: identity, column: {dim.column}}}])"
                )
    return problems


def _cuts_like_utc(zone: str, kind: str) -> bool:
    """Whether the zone's offset is always a whole number of the slice's own boundaries: whole hours
    for hourly slices, zero for daily and monthly ones (sampled at both seasons of 1970-2069)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    unit = 3600 if kind == "hourly" else 24 * 3600 * 366
    for year in range(1970, 2070):
        for month in (1, 7):
            offset = datetime(year, month, 1, tzinfo=tz).utcoffset()
            if offset is not None and offset.total_seconds() % unit:
                return False
    return True


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
            names = " -> ".join(c.label for c in cycle)
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


@dataclass
class Loaded:
    """What a set of manifests gave: the jobs of every valid manifest, the problems of each broken
    file (a file is loaded whole or not at all), and the YAML files that are not manifests."""

    jobs: list[LoadedJob] = dataclasses.field(default_factory=list)
    broken: dict[Path, list[str]] = dataclasses.field(default_factory=dict)
    ignored: list[str] = dataclasses.field(default_factory=list)
    workflows: dict[Path, str] = dataclasses.field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        return [p for lines in self.broken.values() for p in lines]


@dataclass(frozen=True)
class ParsedFile:
    """One file on its own: a valid manifest, or its problems (and the workflow name it declares,
    if readable), or not a manifest at all (`ignored`)."""

    manifest: Manifest | None = None
    problems: list[str] = dataclasses.field(default_factory=list)
    declared: str | None = None
    ignored: bool = False


def parse_file(file: Path, named: bool, text: str | None = None) -> ParsedFile:
    """The file parsed and validated alone (`text` is its content when already read)."""
    if not named and not declares_workflow(file, text):
        return ParsedFile(ignored=True)
    try:
        return ParsedFile(manifest=parse_manifest(file, text))
    except ManifestError as exc:
        return ParsedFile(problems=exc.problems, declared=_declared_name(file, text))


def _parsed(file: Path, named: bool, cache: Path | None) -> ParsedFile:
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError):
        return parse_file(file, named)  # reported as it always was
    return cached(cache, file, text, named, lambda: parse_file(file, named, text))


def load_manifests(
    paths: list[Path],
    depots: Any = None,
    table_exists: TableExists | None = None,
    cache: Path | None = None,
) -> Loaded:
    """Every manifest under `paths`, each valid one loaded and each broken one reported with its
    problems. Problems between files (two writers of one output, one workflow name twice) break the
    later file (deeper, then by path). `table_exists(catalog.namespace.table)` lets a file stream
    without a schema take its target's. `cache`, a folder, keeps each file's parse and validation
    by content (spec/cache.py); the checks across files, depots and catalog always run."""
    loaded = Loaded()
    named = {p for p in paths if not p.is_dir()}
    by_file: dict[Path, list[LoadedJob]] = {}
    for file in manifest_files(paths):
        parsed = _parsed(file, file in named, cache)
        if parsed.ignored:
            loaded.ignored.append(f"{file}: not a Flare manifest (no `type: workflow`); ignored")
        elif parsed.manifest is None:
            loaded.broken[file] = list(parsed.problems)
            if parsed.declared:
                loaded.workflows[file] = parsed.declared
        else:
            loaded.workflows[file] = parsed.manifest.name
            by_file[file] = [
                LoadedJob(file, parsed.manifest, i) for i in range(len(parsed.manifest.workflow.dag))
            ]
    # Checks across files run again without the files they broke, until the rest is clean.
    while by_file:
        problems = _check(by_file, depots, table_exists)
        if not problems:
            break
        for file, lines in problems.items():
            loaded.broken.setdefault(file, []).extend(lines)
            by_file.pop(file, None)
    loaded.jobs = [lj for jobs in by_file.values() for lj in jobs]
    return loaded


def _declared_name(file: Path, text: str | None = None) -> str | None:
    """The workflow name a manifest that did not validate gives, if it can be read at all."""
    try:
        data = yaml.load(file.read_text() if text is None else text, Loader=SAFE_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and re.fullmatch(r"[a-z][a-z0-9_-]*", name) else None


def _check(
    by_file: dict[Path, list[LoadedJob]], depots: Any, table_exists: TableExists | None
) -> dict[Path, list[str]]:
    """Problems of the loaded files, by the file each names first."""
    problems: list[str] = []
    names: dict[str, Path] = {}
    for file, loaded in by_file.items():
        name = loaded[0].manifest.name if loaded else None
        if name in names:
            problems.append(f"{file}: name: workflow {name!r} is also defined in {names[name]}")
        elif name is not None:
            names[name] = file
        for lj in loaded:
            problems.extend(resolve_schema_paths(lj, depots) + resolve_sql_files(lj))
            problems.extend(check_incremental(lj, depots) + check_functions(lj))
    jobs = [lj for loaded in by_file.values() for lj in loaded]
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
    out: dict[Path, list[str]] = {}
    for line in dict.fromkeys(problems):  # a rerun repeats the per-file lines: keep one of each
        file = next((f for f in by_file if line.startswith(f"{f}: ")), None)
        if file is None:
            raise ManifestError(problems)
        out.setdefault(file, []).append(line)
    return out


def load_jobs(
    paths: list[Path], depots: Any = None, table_exists: TableExists | None = None
) -> list[LoadedJob]:
    """All manifests or none: every problem of every file raised as one ManifestError."""
    loaded = load_manifests(paths, depots, table_exists)
    if loaded.broken:
        raise ManifestError(loaded.problems)
    return loaded.jobs
