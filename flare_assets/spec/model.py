"""The Flare workflow manifest as typed models. Unknown keys are errors, not silently ignored."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from flare_assets.spec.actions import Action, lowercase
from flare_assets.spec.address import Address, parse_address
from flare_assets.spec.base import Strict
from flare_assets.spec.functions import Function
from flare_assets.spec.housekeeping import Housekeeping
from flare_assets.spec.maintenance import TableMaintenance
from flare_assets.spec.schemas import spark_schema

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BRANCH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class Model(Strict):
    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        """`tags:` with nothing after it is an empty list, as YAML writers mean it, not an error."""
        if not isinstance(data, dict):
            return data
        empty = {
            key
            for name, f in cls.model_fields.items()
            if f.default_factory is not None
            for key in (name, f.alias)
            if key in data and data[key] is None
        }
        return {k: v for k, v in data.items() if k not in empty}


# Keys accepted by the model only to refuse them with a reason (the reference lists them).
REFUSED: dict[tuple[str, str], str] = {
    ("Input", "schema_subject"): "schema registries are not supported; give schemaPath or schemaString",
    ("Input", "schema_id"): "schema registries are not supported; give schemaPath or schemaString",
}

# Keys DataOS reads and this runtime has no use for: accepted, with one warning from `flare validate`.
METADATA_ONLY: dict[tuple[str, str], str] = {
    ("Manifest", "layer"): "the DataOS layer (user or system)",
    ("Manifest", "workspace"): "the DataOS workspace the workflow is applied in",
    ("Spec", "stack"): "the DataOS stack version; Spark and Iceberg versions are this project's",
    ("Spec", "compute"): "the DataOS compute the job runs on; see FLARE_SPARK_MASTER",
    ("Spec", "envs"): "environment variables of the DataOS container",
    ("StackSpec", "configs"): "DataOS stack configs",
    ("Job", "variables"): "DataOS job variables",
}


def _identifier(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not a valid name; use letters, digits and underscores, not starting with a digit"
        )
    return value


def _branch_name(branch: Any, label: str) -> None:
    """Branch names reach SQL and read options: letters, digits, _ - . only."""
    if branch is not None and not BRANCH.match(str(branch)):
        raise ValueError(f"{label} {branch!r} is not a valid branch name (letters, digits, _ - .)")


def _address(value: str) -> str:
    parse_address(value)
    return value


PLACEHOLDER = re.compile(r"\$\|([^|]*)\|")


def placeholders(sql: str) -> list[str]:
    """The `$|key|` names a statement uses, in order."""
    return PLACEHOLDER.findall(sql)


class IncrementalKey(Model):
    """A value computed by SQL at the start of a run (`select max(ts) from ...`)."""

    name: str = Field(
        description="the key's name, written `$|name|` in the incremental sql and in later keys' SQL"
    )
    sql: str = Field(
        description="SQL returning one value, run at the start of each run; may use earlier keys"
    )

    _name = field_validator("name")(_identifier)


class IncrementalState(Model):
    """After a successful run, `key` takes the value `value` had: Flare's way of moving a window."""

    key: str = Field(description="the key that starts the next run with the saved value")
    value: str = Field(description="the key whose value in this run is saved, once the run succeeds")


class Incremental(Model):
    """Flare's incremental block: the input is read as `context`, then `sql` (with `$|key|`
    placeholders) selects what this run processes; `state` carries key values to the next run."""

    context: str = Field(
        description="the view name the whole input is registered under, for the incremental sql"
    )
    sql: str = Field(
        description="the query over `context` that selects this run's rows, with `$|key|` placeholders"
    )
    keys: list[IncrementalKey] = Field(
        min_length=1, description="values computed at the start of a run and put in the placeholders"
    )
    state: list[IncrementalState] = Field(
        default_factory=list, description="key values carried from one successful run to the next"
    )

    _context = field_validator("context")(_identifier)

    @model_validator(mode="after")
    def _names(self) -> Incremental:
        names = [k.name for k in self.keys]
        for i, key in enumerate(self.keys):
            unknown = [p for p in placeholders(key.sql) if p not in names[:i]]
            if unknown:
                raise ValueError(
                    f"keys[{i}].sql uses $|{unknown[0]}|, which is no earlier key; allowed: "
                    f"{', '.join(names[:i]) or '(none)'}"
                )
        unknown = [p for p in placeholders(self.sql) if p not in names]
        if unknown:
            raise ValueError(f"sql uses $|{unknown[0]}|, which is no key; allowed: {', '.join(names)}")
        for i, item in enumerate(self.state):
            for label, value in (("key", item.key), ("value", item.value)):
                if value not in names:
                    raise ValueError(f"state[{i}].{label}: {value!r} is no key; allowed: {', '.join(names)}")
        return self


class IncrementalRead(Model):
    """Read only what is new since the output's last committed run: for an Iceberg input, the
    snapshots appended since (an overwrite or delete upstream fails, or reads everything again, as
    `onRewrite` says); for a file input, the files not processed yet (moved to `archive` once
    committed, when given)."""

    on_rewrite: Literal["fail", "full-refresh"] = Field(
        default="fail",
        description="when an Iceberg input was overwritten or deleted from: fail, or read all of it again",
    )
    archive: str | None = Field(
        default=None,
        description="file inputs: the folder processed files are moved to once the output is committed",
    )

    @field_validator("on_rewrite", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower().replace("_", "-") if isinstance(value, str) else value


class Input(Model):
    name: str = Field(description="the view name steps and outputs read the input by")
    dataset: str = Field(description="what is read: a dataos:// address on a depot of the depot map")
    format: str | None = Field(
        default=None, description="file inputs: the file format (default: the depot's, else parquet)"
    )
    schema_path: str | None = Field(
        default=None,
        description="a schema file: relative to the manifest, or a dataos:// address on a file depot",
    )
    schema_string: str | None = Field(
        default=None,
        validation_alias=AliasChoices("schemaString", "schema", "schema_string"),
        description="the schema inline (Spark JSON, Avro or DDL); also accepted as `schema`",
    )
    schema_type: Literal["spark", "avro", "ddl"] | None = Field(
        default=None, description="how the schema is written (default: told from the text or the file name)"
    )
    schema_subject: str | None = Field(default=None, description="a schema registry subject")
    schema_id: int | None = Field(default=None, description="a schema registry id")
    query: str | None = Field(
        default=None, description="SQL over the input as read, its name as the view; its result is the input"
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="read options: Spark's for files, a branch, tag, snapshot or time for Iceberg",
    )
    is_stream: bool = Field(
        default=False, description="true: the input is read as a stream, which makes the job a stream job"
    )
    incremental: Incremental | None = Field(
        default=None,
        description="read only the rows a query over the input selects, with keys kept between runs",
    )
    incremental_read: IncrementalRead | None = Field(
        default=None, description="read only what is new since the output's last committed run"
    )
    # malformed JSON/CSV records: kept in a quarantine table (default), failing the run, or left to
    # Spark's own PERMISSIVE parsing (nulls, a _corrupt_record column) on purpose
    on_bad_records: Literal["quarantine", "fail", "permissive"] = Field(
        default="quarantine",
        description="malformed JSON or CSV records: quarantine them, fail the run, or let Spark null them",
    )

    _name = field_validator("name")(_identifier)
    _dataset = field_validator("dataset")(_address)
    _schema_type = field_validator("schema_type", mode="before")(lowercase)
    _policy = field_validator("on_bad_records", mode="before")(lowercase)

    @model_validator(mode="after")
    def _schema_and_branch(self) -> Input:
        if self.schema_path and self.schema_string:
            raise ValueError("give schemaPath or schemaString, not both")
        if self.schema_subject is not None or self.schema_id is not None:
            raise ValueError(
                "schemaSubject and schemaId read a schema registry, which is not supported here; "
                "give the schema as schemaPath or schemaString"
            )
        if self.schema_string is not None:
            spark_schema(self.schema_string, self.schema_type)
        _branch_name(self.options.get("branch"), "options.branch")
        return self

    @property
    def address(self) -> Address:
        return parse_address(self.dataset)


STORAGE_LEVELS = (
    "MEMORY_ONLY",
    "MEMORY_AND_DISK",
    "DISK_ONLY",
    "MEMORY_ONLY_2",
    "MEMORY_AND_DISK_2",
    "DISK_ONLY_2",
    "OFF_HEAP",
)


class Command(Model):
    """`cache` or `persist` keeps the step's result for the steps and outputs after it; it is
    released when the job ends (or earlier, by `unpersist`)."""

    name: Literal["cache", "persist", "unpersist"] = Field(
        description="cache or persist a step's result, or unpersist it"
    )
    sequence_name: str | None = Field(
        default=None, description="the step whose result is kept or released (default: this step)"
    )
    level: str = Field(default="MEMORY_AND_DISK", description="the Spark storage level the result is kept at")

    _lower = field_validator("name", mode="before")(lowercase)

    @field_validator("level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in STORAGE_LEVELS:
            raise ValueError(f"{value!r} is not a storage level; allowed: {', '.join(STORAGE_LEVELS)}")
        return value.upper()


class Sequence(Model):
    """One step: its SQL (inline, or `sqlFile` relative to the manifest), then its functions in
    order; the result is a view named after the step."""

    name: str = Field(description="the step's view name: later steps and outputs read its result by it")
    sql: str | None = Field(
        default=None, description="the step's SQL, reading inputs and earlier steps by their names"
    )
    doc: str | None = Field(default=None, description="documentation of the step (shown in the metadata)")
    sql_file: str | None = Field(
        default=None, description="a file holding the step's SQL, relative to the manifest"
    )
    functions: list[Function] = Field(
        default_factory=list,
        description="Flare functions applied in order to the SQL's result (see functions.md)",
    )
    commands: list[Command] = Field(
        default_factory=list, description="cache, persist or unpersist step results after this step"
    )

    _name = field_validator("name")(_identifier)

    @field_validator("functions", mode="before")
    @classmethod
    def _no_functions(cls, value: Any) -> Any:
        return [] if value is None else value

    @model_validator(mode="after")
    def _one_sql(self) -> Sequence:
        if (self.sql is None) == (self.sql_file is None):
            raise ValueError("a step has sql or sqlFile (a file relative to the manifest), not both")
        return self


class Step(Model):
    name: str | None = Field(
        default=None,
        description="a label for this group of steps, shown above its steps' SQL in the run's metadata",
    )
    sequence: list[Sequence] = Field(
        description="the steps, run in order; each reads the inputs and the steps before it"
    )


class PartitionField(Model):
    """One field of an Iceberg partition spec, as Flare writes it."""

    type: Literal["identity", "year", "month", "day", "hour", "bucket", "truncate"] = Field(
        description="the Iceberg partition transform applied to the column"
    )
    column: str = Field(description="the column partitioned on")
    name: str | None = Field(
        default=None,
        description="the partition field's name (default: Iceberg's, from the column and transform)",
    )
    num_buckets: int | None = Field(
        default=None, gt=0, description="bucket: how many buckets the column's values are hashed into"
    )
    width: int | None = Field(default=None, gt=0, description="truncate: the width values are truncated to")

    _lower = field_validator("type", mode="before")(lowercase)

    @model_validator(mode="after")
    def _arguments(self) -> PartitionField:
        if self.type == "bucket" and self.num_buckets is None:
            raise ValueError("a bucket partition needs numBuckets")
        if self.type == "truncate" and self.width is None:
            raise ValueError("a truncate partition needs width")
        _identifier(self.column)
        if self.name is not None:
            _identifier(self.name)
        return self

    @property
    def term(self) -> str:
        """The transform as Iceberg's Spark SQL writes it (and DESCRIBE shows it)."""
        col = self.column
        return {
            "identity": col,
            "year": f"years({col})",
            "month": f"months({col})",
            "day": f"days({col})",
            "hour": f"hours({col})",
            "bucket": f"bucket({self.num_buckets}, {col})",
            "truncate": f"truncate({self.width}, {col})",
        }[self.type]


class Merge(Model):
    """MERGE INTO the output (alias `old`) USING the step's rows (alias `new`)."""

    on_clause: str = Field(
        description="the condition matching an output row (`old`) to a new row (`new`); AND, not OR"
    )
    when_clause: str = Field(
        description="the WHEN [NOT] MATCHED [AND cond] THEN ... clauses saying what each match does"
    )

    @field_validator("on_clause")
    @classmethod
    def _no_or(cls, value: str) -> str:
        if re.search(r"\bOR\b", value, re.IGNORECASE):
            raise ValueError(
                f"{value!r}: OR is not allowed in onClause (each target row must match at most one "
                "source row); combine keys with AND"
            )
        return value

    @field_validator("when_clause")
    @classmethod
    def _when(cls, value: str) -> str:
        text = value.strip()
        if not re.match(r"(?is)^(when\s+)?(not\s+)?matched\b", text):
            raise ValueError(f"{value!r}: expected 'WHEN [NOT] MATCHED [AND cond] THEN ...' clauses")
        return text if text.lower().startswith("when") else f"WHEN {text}"


class SortColumn(Model):
    name: str = Field(description="a column of the write order")
    order: Literal["asc", "desc"] = Field(default="asc", description="ascending or descending")

    _name = field_validator("name")(_identifier)


class Sort(Model):
    mode: Literal["partition", "global"] = Field(
        default="global",
        description="global: each write sorted as a whole; partition: sorted within each task",
    )
    columns: list[SortColumn] = Field(min_length=1, description="the columns writes are ordered by, in order")


class IcebergOptions(Model):
    properties: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Iceberg table properties set when the table is created (overwrite-mode picks the write)"
        ),
    )
    partition_spec: list[PartitionField] | None = Field(
        default=None, description="the table's Iceberg partition fields"
    )
    merge: Merge | None = Field(
        default=None, description="write with MERGE INTO instead of appending or overwriting"
    )


class WriteAuditPublish(Model):
    """Write to a fresh audit branch, run the output's assertions there, and fast-forward the target
    branch (main unless extraOptions.branch) only when every blocking one passes."""

    branch_prefix: str = Field(
        default="audit", description="the start of the audit branch's name, before the run's tag"
    )
    keep_branch: bool = Field(
        default=False,
        description="true: the audit branch stays after it is published (a failed audit always keeps it)",
    )

    _prefix = field_validator("branch_prefix")(_identifier)


class FileOptions(Model):
    """Flare's `options.file` of an output written as files: its save mode and file format."""

    save_mode: Literal["append", "overwrite"] | None = Field(
        default=None, description="the output's save mode, in place of options.saveMode"
    )
    output_type: Literal["csv", "json", "parquet", "orc", "text", "avro"] | None = Field(
        default=None, description="the file format written, in place of the output's format"
    )

    _lower = field_validator("save_mode", "output_type", mode="before")(lowercase)


class OutputOptions(Model):
    save_mode: Literal["append", "overwrite"] = Field(
        default="overwrite",
        description=(
            "overwrite replaces the output's data (a partitioned job's: its slice); append adds rows"
        ),
    )
    partition_by: list[str] | None = Field(
        default=None,
        description="partition columns: folders for files, identity partition fields for Iceberg",
    )
    sort: Sort | None = Field(
        default=None, description="the Iceberg table's write order, set when the job creates the table"
    )
    iceberg: IcebergOptions | None = Field(
        default=None, description="Iceberg table properties, partition spec and merge"
    )
    merge: Merge | None = Field(
        default=None, description="write with MERGE INTO instead of appending or overwriting"
    )
    extra_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Iceberg: branch, commitBy, overwrite-mode; files: coalesce and Spark writer options",
    )
    write_audit_publish: WriteAuditPublish | None = Field(
        default=None, description="write to an audit branch and publish only when the blocking checks pass"
    )
    file: FileOptions | None = Field(
        default=None, description="Flare's file output settings: save mode and file format"
    )
    checkpoint_location: str | None = Field(
        default=None, description="a stream job's streaming.checkpointLocation, as older manifests place it"
    )
    partition_spec: list[PartitionField] | None = Field(
        default=None, description="iceberg.partitionSpec, as older manifests place it"
    )
    properties: dict[str, str] | None = Field(
        default=None, description="iceberg.properties, as older manifests place them"
    )

    @model_validator(mode="after")
    def _iceberg_shorthands(self) -> OutputOptions:
        """`partitionSpec` and `properties` directly under options mean the iceberg block's."""
        if self.partition_spec is None and self.properties is None:
            return self
        iceberg = self.iceberg or IcebergOptions()
        if self.partition_spec is not None:
            if iceberg.partition_spec is not None and iceberg.partition_spec != self.partition_spec:
                raise ValueError(
                    "partitionSpec and iceberg.partitionSpec contradict each other; give one partition spec"
                )
            iceberg.partition_spec = self.partition_spec
        if self.properties is not None:
            iceberg.properties = {**self.properties, **iceberg.properties}
        self.iceberg, self.partition_spec, self.properties = iceberg, None, None
        return self

    @field_validator("write_audit_publish", mode="before")
    @classmethod
    def _wap_flag(cls, value: Any) -> Any:
        if value is True:
            return {}
        return None if value is False else value

    _lower = field_validator("save_mode", mode="before")(lowercase)

    @field_validator("extra_options")
    @classmethod
    def _branch(cls, value: dict[str, Any]) -> dict[str, Any]:
        _branch_name(value.get("branch"), "branch")
        commit_by = value.get("commitBy")
        if commit_by is not None:
            _identifier(str(commit_by))
        return value

    @property
    def branch(self) -> str | None:
        value = self.extra_options.get("branch")
        return str(value) if value is not None else None

    @property
    def commit_by(self) -> str | None:
        """`extraOptions.commitBy: COLUMN`: one commit per value of the column, in order, so a long
        write shows its progress (on its branch, with write-audit-publish) as it goes."""
        value = self.extra_options.get("commitBy")
        return str(value) if value is not None else None

    @property
    def partition_fields(self) -> list[PartitionField] | None:
        """The Iceberg partition spec the manifest declares; None when it declares none (a table's
        spec then stays as it is, where an empty list unpartitions it)."""
        return self.iceberg.partition_spec if self.iceberg else None

    @property
    def merge_spec(self) -> Merge | None:
        return self.merge or (self.iceberg.merge if self.iceberg else None)

    @property
    def dynamic_overwrite(self) -> bool:
        props = self.iceberg.properties if self.iceberg else {}
        mode = str(self.extra_options.get("overwrite-mode") or props.get("overwrite-mode") or "")
        return self.save_mode == "overwrite" and mode.lower() == "dynamic"

    @property
    def write_mode(self) -> str:
        """append, overwrite, overwrite-dynamic or merge: what the write does."""
        if self.merge_spec:
            return "merge"
        return "overwrite-dynamic" if self.dynamic_overwrite else self.save_mode

    @property
    def table_properties(self) -> dict[str, str]:
        props = dict(self.iceberg.properties) if self.iceberg else {}
        props.pop("overwrite-mode", None)
        return props


class ColumnTag(Model):
    column_name: str | None = Field(default=None, description="one column to tag")
    column_names: list[str] | None = Field(default=None, description="several columns to tag")
    column_regex: str | None = Field(
        default=None, description="tag every column whose whole name matches this regex"
    )
    tags: list[str] = Field(
        min_length=1,
        description=(
            "the tags, kept in the table property flare.column-tags.<column> and on the asset's columns"
        ),
    )

    @model_validator(mode="after")
    def _one_selector(self) -> ColumnTag:
        given = [k for k in ("column_name", "column_names", "column_regex") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of columnName, columnNames or columnRegex")
        if self.column_regex is not None:
            try:
                re.compile(self.column_regex)
            except re.error as exc:
                raise ValueError(
                    f"columnRegex {self.column_regex!r} is not a regular expression: {exc}"
                ) from exc
        return self

    def columns(self, available: list[str]) -> list[str]:
        """The columns this entry tags; a named column that does not exist is an error."""
        if self.column_regex is not None:
            return [c for c in available if re.fullmatch(self.column_regex, c)]
        names = [self.column_name] if self.column_name else list(self.column_names or [])
        missing = [n for n in names if n not in available]
        if missing:
            raise ValueError(
                f"columnTags name {', '.join(missing)}, not columns of the output ({', '.join(available)})"
            )
        return names


COLUMN_METRICS = (
    "avg",
    "min",
    "max",
    "sum",
    "count",
    "row_count",
    "distinct_count",
    "duplicate_count",
    "missing_count",
    "missing_percentage",
    "avg_length",
    "min_length",
    "max_length",
    "invalid_count",
    "invalid_percentage",
)
FORMAT_METRICS = ("invalid_count", "invalid_percentage")  # measured against validFormat
TEST = re.compile(
    r"^\s*(?P<metric>[A-Za-z_]\w*)\s*(?P<op><=|>=|==|!=|=|<|>)\s*(?P<value>-?\d+(?:\.\d+)?)\s*$"
)


class AssertionTest:
    """`metric op number`, as Flare writes assertion tests (`missing_count < 10`)."""

    def __init__(self, text: str):
        match = TEST.match(text)
        if not match:
            raise ValueError(f"{text!r}: a test reads 'metric op number', for example 'missing_count < 10'")
        self.text = text.strip()
        self.metric, self.op, self.value = match["metric"], match["op"], float(match["value"])

    def passes(self, measured: float | None) -> bool:
        if measured is None:
            return False
        return {
            "<": measured < self.value,
            "<=": measured <= self.value,
            ">": measured > self.value,
            ">=": measured >= self.value,
            "==": measured == self.value,
            "=": measured == self.value,
            "!=": measured != self.value,
        }[self.op]


class ValidFormat(Model):
    """The values a column should hold: a value is valid when the regex matches it (Spark's rlike,
    so it may match part of the value; anchor with ^ and $ for the whole)."""

    regex: str = Field(min_length=1, description="the pattern a valid value matches (Spark's rlike)")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a regular expression: {exc}") from exc
        return value


class Assertion(Model):
    """A Flare assertion: column metrics (with an optional filter) or custom SQL, each with tests."""

    name: str | None = Field(
        default=None,
        description="the asset check's name (default: the column and position, or sql_<position>)",
    )
    description: str | None = Field(
        default=None, description="the asset check's description (default: its tests)"
    )
    column: str | None = Field(default=None, description="the column whose metrics the tests measure")
    filter: str | None = Field(
        default=None, description="a SQL condition: only the rows it matches are measured"
    )
    valid_format: ValidFormat | None = Field(
        default=None, description="what a valid value looks like, for invalid_count and invalid_percentage"
    )
    sql: str | None = Field(
        default=None,
        description="a query over the view `source` (the data checked) returning one row the tests read",
    )
    tests: list[str] = Field(
        min_length=1,
        description="conditions written `metric op number` (`missing_count < 10`); all must hold",
    )
    blocking: bool = Field(
        default=False,
        description=(
            "true: a failure is an error that holds back downstream assets and a write-audit-publish"
        ),
    )

    @model_validator(mode="after")
    def _shape(self) -> Assertion:
        if (self.column is None) == (self.sql is None):
            raise ValueError(
                "an assertion has either column (with metric tests) or sql (tests on its columns)"
            )
        if self.sql is not None and self.filter is not None:
            raise ValueError("filter goes with column; put the condition in the sql instead")
        if self.sql is not None and self.valid_format is not None:
            raise ValueError("validFormat goes with column; test the format in the sql instead")
        for text in self.tests:
            test = AssertionTest(text)
            if self.column is not None and test.metric not in COLUMN_METRICS:
                raise ValueError(
                    f"{text!r}: unknown metric {test.metric!r}; allowed: {', '.join(COLUMN_METRICS)}"
                )
            if test.metric in FORMAT_METRICS and self.column is not None and self.valid_format is None:
                raise ValueError(
                    f"{text!r}: {test.metric} needs validFormat: {{regex: ...}} on the assertion"
                )
        if self.name is not None:
            _identifier(self.name)
        return self

    def parsed_tests(self) -> list[AssertionTest]:
        return [AssertionTest(t) for t in self.tests]

    def check_name(self, index: int) -> str:
        return self.name or (f"{self.column}_{index}" if self.column else f"sql_{index}")


class Output(Model):
    name: str = Field(description="the input or step whose result is written")
    dataset: str = Field(description="where it is written: a dataos:// address on a depot of the depot map")
    format: str = Field(
        default="iceberg",
        description="iceberg, or the file format of a file output (iceberg there: the depot's format)",
    )
    title: str | None = Field(
        default=None,
        description="the asset's title (default: the job's, then the workflow's, then the manifest's)",
    )
    description: str | None = Field(
        default=None, description="the asset's description (default: the job's, then the manifest's)"
    )
    tags: list[str] = Field(
        default_factory=list, description="Dagster tags on the asset, besides the manifest's and the job's"
    )
    column_tags: list[ColumnTag] = Field(
        default_factory=list,
        description="tags on columns, stored with the table and shown in the asset's column schema",
    )
    options: OutputOptions = Field(default_factory=OutputOptions, description="how the output is written")
    assertions: list[Assertion] = Field(
        default_factory=list, description="checks on the written data, run as Dagster asset checks"
    )
    housekeeping: Housekeeping | None = Field(
        default=None,
        validation_alias=AliasChoices("housekeeping", "housekeepingMode"),
        description="partition retention, or archiving and compaction, after each write (and as its own job)",
    )
    maintenance: TableMaintenance | None = Field(
        default=None,
        description="this table's maintenance schedules and the health thresholds that launch it",
    )
    driver: str | None = Field(
        default=None,
        description="jdbc outputs: a driver class of the depot's engine; the depot's driver runs",
    )
    is_stream: bool = Field(default=False, description="false only: a job streams with its streaming block")

    _name = field_validator("name")(_identifier)
    _dataset = field_validator("dataset")(_address)

    _lower = field_validator("format", mode="before")(lowercase)

    @field_validator("is_stream")
    @classmethod
    def _not_stream(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "an output is written by its job; a job streams with a streaming block (and isStream inputs)"
            )
        return value

    @property
    def address(self) -> Address:
        """`options.file` writes files, on an Iceberg depot too (syndication to its storage)."""
        address = parse_address(self.dataset)
        return dataclasses.replace(address, files=True) if self.options.file is not None else address


class JobAssertion(Assertion):
    """A job-level assertion names the output it checks (optional when the job has one output); in
    a data-quality job (inputs and assertions, no outputs) it names the input it checks (`input`, or
    `dataset` with the input's name or address; optional when the job has one input)."""

    output: str | None = Field(
        default=None, description="the output checked (needed when the job has several)"
    )
    input: str | None = Field(
        default=None,
        validation_alias=AliasChoices("input", "dataset"),
        description="data-quality jobs: the input checked, by name (or `dataset:` with its name or address)",
    )


PARTITION_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:+\- ]*$")
TIME_WINDOWS = ("hourly", "daily", "monthly")


def partition_key(value: str) -> str:
    """Partition keys reach SQL: letters, digits and _ . : + - and space only, never quotes."""
    if not PARTITION_KEY.match(value):
        raise ValueError(
            f"partition key {value!r} is not allowed: use letters, digits and _ . : + - or space"
        )
    return value


class PartitionDimension(Model):
    """One Dagster partition dimension and the output column that holds its slice."""

    name: str = Field(
        description="the dimension's name; a dynamic one gets keys by `flare partitions NAME KEY...`"
    )
    type: Literal["hourly", "daily", "monthly", "static", "dynamic"] = Field(
        description=(
            "time windows (hourly, daily, monthly), fixed keys (static) or keys added later (dynamic)"
        )
    )
    column: str = Field(description="the output column holding the dimension's key; a run replaces its slice")
    start: str | None = Field(
        default=None, description="time windows: the first window (YYYY-MM-DD or YYYY-MM-DD HH:MM)"
    )
    end: str | None = Field(
        default=None,
        description="time windows: where the windows stop (default: open-ended, up to now)",
    )
    timezone: str = Field(default="UTC", description="time windows: the time zone the windows are cut in")
    values: list[str] = Field(default_factory=list, description="static: the partition keys")

    _name = field_validator("name")(_identifier)
    _column = field_validator("column")(_identifier)

    _lower = field_validator("type", mode="before")(lowercase)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a time zone (IANA names such as UTC, Europe/Berlin)") from exc
        return value

    @field_validator("values")
    @classmethod
    def _values(cls, values: list[str]) -> list[str]:
        return [partition_key(str(v)) for v in values]

    @model_validator(mode="after")
    def _shape(self) -> PartitionDimension:
        from datetime import datetime

        if self.type in TIME_WINDOWS:
            if not self.start:
                raise ValueError(f"a {self.type} dimension needs start (YYYY-MM-DD or YYYY-MM-DD HH:MM)")
            for label, value in (("start", self.start), ("end", self.end)):
                if value is not None:
                    try:
                        datetime.fromisoformat(value)
                    except ValueError as exc:
                        raise ValueError(f"{label} {value!r} is not a date (YYYY-MM-DD[ HH:MM])") from exc
        elif self.start or self.end:
            raise ValueError(f"start and end go with hourly, daily or monthly, not {self.type}")
        if self.type == "static" and not self.values:
            raise ValueError("a static dimension lists its values")
        if self.type != "static" and self.values:
            raise ValueError("values go with a static dimension")
        return self


class Partitions(Model):
    """Partitioned assets: each run (or single-run backfill) replaces exactly its slice of every output."""

    dimensions: list[PartitionDimension] = Field(
        min_length=1, max_length=2, description="one or two dimensions, at most one of them a time window"
    )
    backfill: Literal["single-run", "multi-run"] = Field(
        default="single-run",
        description=(
            "single-run: a backfill is one run over its range; multi-run: runs over a few partitions each"
        ),
    )
    max_partitions_per_run: int | None = Field(
        default=None, gt=0, description="multi-run: the most partitions one backfill run covers (default 1)"
    )

    @model_validator(mode="after")
    def _dims(self) -> Partitions:
        names = [d.name for d in self.dimensions]
        if len(set(names)) != len(names):
            raise ValueError("dimension names must differ")
        if len(self.dimensions) == 2 and sum(d.type in TIME_WINDOWS for d in self.dimensions) > 1:
            raise ValueError("two dimensions take at most one time window (for example date x unit)")
        if self.backfill == "single-run" and self.max_partitions_per_run:
            raise ValueError("maxPartitionsPerRun goes with backfill: multi-run")
        return self


LOG_LEVELS = ("ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN")


TRIGGER_MODES = ("Once", "AvailableNow", "ProcessingTime", "Continuous")
CONTINUOUS_REFUSED = (
    "triggerMode Continuous: Spark's continuous processing writes only to Kafka, console and memory "
    "sinks; outputs here are Iceberg tables and files, which Spark writes in micro-batches. Use "
    "ProcessingTime with a short triggerDuration (for example '1 second')"
)
OUTPUT_MODES = ("append", "complete", "update")
DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]+)\s*$", re.IGNORECASE)
UNIT_SECONDS = {
    **dict.fromkeys(("ms", "millisecond", "milliseconds"), 0.001),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hour", "hours"), 3600.0),
}


def duration_seconds(text: str) -> float:
    """`10 seconds`, `500 ms`, `1 minute`: Spark's trigger interval notation, in seconds."""
    match = DURATION.match(text)
    scale = UNIT_SECONDS.get(match["unit"].lower()) if match else None
    if match is None or scale is None:
        raise ValueError(f"{text!r} is not a duration; write it like '10 seconds', '500 ms' or '1 minute'")
    return float(match["n"]) * scale


class Streaming(Model):
    """Flare's `streaming` block. Once and AvailableNow: a sensor checks for new data every
    triggerDuration (default 5 seconds) and launches a run per batch; ProcessingTime: one long-running
    run, a micro-batch every triggerDuration. The checkpoint (default FLARE_HOME/checkpoints/<job>)
    makes every mode resume where the last commit left off."""

    trigger_mode: Literal["Once", "AvailableNow", "ProcessingTime", "Continuous"] = Field(
        default="AvailableNow",
        description=(
            "Once and AvailableNow: a run per batch; ProcessingTime: one long run; Continuous is refused"
        ),
    )
    trigger_duration: str | None = Field(
        default=None,
        description=(
            "ProcessingTime: the time between micro-batches; else between checks (default 5 seconds)"
        ),
    )
    checkpoint_location: str | None = Field(
        default=None,
        description="a folder (relative: under FLARE_HOME), or a dataos:// address: "
        "FLARE_HOME/checkpoints/<depot>/<collection>/<dataset>",
    )
    output_mode: Literal["append", "complete", "update"] = Field(
        default="append", description="Spark's output mode: which rows of the result each micro-batch writes"
    )
    for_each_batch_mode: bool = Field(
        default=True,
        description=(
            "true: each micro-batch runs the steps and writes every output; false: one Iceberg sink"
        ),
    )
    batch_mode: bool | None = Field(
        default=None, description="true: the run ends once the data there is processed (Once, AvailableNow)"
    )
    show_preview_lines: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="rows in each batch's metadata preview (the job's by default)",
    )

    @field_validator("trigger_mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        known = {m.lower(): m for m in TRIGGER_MODES}
        return known.get(value.lower(), value) if isinstance(value, str) else value

    _lower = field_validator("output_mode", mode="before")(lowercase)

    @field_validator("trigger_duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            duration_seconds(value)
        return value

    @field_validator("checkpoint_location")
    @classmethod
    def _checkpoint(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("dataos://"):
            parse_address(value)
        return value

    @model_validator(mode="after")
    def _processing_time(self) -> Streaming:
        if self.trigger_mode == "Continuous":
            raise ValueError(CONTINUOUS_REFUSED)
        if self.trigger_mode == "ProcessingTime" and self.trigger_duration is None:
            raise ValueError("triggerMode ProcessingTime needs triggerDuration (for example '5 seconds')")
        if self.batch_mode and self.trigger_mode == "ProcessingTime":
            raise ValueError(
                "batchMode true ends the run once the data there is processed; ProcessingTime runs "
                "until stopped: use triggerMode Once or AvailableNow, or drop batchMode"
            )
        return self

    @property
    def continuous(self) -> bool:
        """One long-running run (ProcessingTime) rather than a run per batch launched by a sensor."""
        return self.trigger_mode == "ProcessingTime"

    @property
    def interval_s(self) -> float:
        return duration_seconds(self.trigger_duration) if self.trigger_duration else 5.0


class Job(Model):
    explain: bool = Field(
        default=False, description="true: each step's query plan goes into the materialization metadata"
    )
    variables: dict[str, Any] = Field(default_factory=dict, description="DataOS job variables")
    log_level: str | None = Field(default=None, description="the Spark log level while the job runs")
    show_preview_lines: int = Field(
        default=10, ge=0, le=1000, description="rows of each output previewed in the materialization metadata"
    )
    inputs: list[Input] = Field(
        default_factory=list, description="the datasets the job reads, each a view named after it"
    )
    steps: list[Step] = Field(
        default_factory=list, description="SQL steps that turn the inputs into the outputs' data"
    )
    outputs: list[Output] = Field(
        default_factory=list, description="the datasets the job writes, each a Dagster asset"
    )
    assertions: list[JobAssertion] = Field(
        default_factory=list,
        description="checks on the outputs, or on the inputs in a data-quality job (no outputs)",
    )
    actions: list[Action] = Field(
        default_factory=list, description="Iceberg maintenance run on tables the job reads"
    )
    streaming: Streaming | None = Field(
        default=None,
        description="makes the job a stream job: how often it processes new data, and where it resumes",
    )
    partitions: Partitions | None = Field(
        default=None, description="makes the outputs partitioned assets: each run replaces its slice"
    )

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level; allowed: {', '.join(LOG_LEVELS)}")
        return value.upper() if value else value

    @model_validator(mode="after")
    def _views(self) -> Job:
        names = [i.name for i in self.inputs] + [s.name for st in self.steps for s in st.sequence]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"view names must be unique across inputs and steps; repeated: {', '.join(dup)}")
        if not self.outputs and not self.actions and not self.assertions:
            raise ValueError(
                "a job has outputs, actions, or assertions on its inputs (a data-quality job), or a mix"
            )
        inputs = [i.name for i in self.inputs]
        for action in self.actions:
            if action.input not in inputs:
                raise ValueError(
                    f"action {action.name} input {action.input!r} is not an input of the job; "
                    f"allowed: {', '.join(inputs) or '(none)'}"
                )
        for output in self.outputs:
            if output.name not in names:
                raise ValueError(
                    f"output {output.name!r} names no input or step; allowed: {', '.join(names) or '(none)'}"
                )
        if not self.outputs and self.assertions:
            self._quality_inputs()
            return self
        outs = [o.name for o in self.outputs]
        for assertion in self.assertions:
            if assertion.input is not None:
                raise ValueError(
                    f"assertion input {assertion.input!r}: a job with outputs checks its outputs (name one "
                    "with output:); assertions on inputs make a data-quality job, one without outputs"
                )
            if assertion.output is None and len(outs) > 1:
                raise ValueError(
                    "a job-level assertion in a job with several outputs names one; "
                    f"allowed: {', '.join(outs)}"
                )
            if assertion.output is not None and assertion.output not in outs:
                raise ValueError(
                    f"assertion output {assertion.output!r} is not an output; allowed: {', '.join(outs)}"
                )
        for output in self.outputs:
            checks = [a.check_name(i) for i, a in enumerate(self.assertions_for(output))]
            dup = sorted({c for c in checks if checks.count(c) > 1})
            if dup:
                raise ValueError(
                    f"assertion names repeat on output {output.name!r}: {', '.join(dup)}; give each a name"
                )
        return self

    @model_validator(mode="after")
    def _stream_keys(self) -> Job:
        """An output's checkpointLocation and the streaming block's showPreviewLines, as the docs
        place them, are the stream's."""
        given = {o.options.checkpoint_location for o in self.outputs} - {None}
        if given and self.streaming is None:
            raise ValueError("an output's checkpointLocation goes with a stream job (a streaming block)")
        if self.streaming is not None and given:
            location = self.streaming.checkpoint_location
            if len(given) > 1 or (location is not None and {location} != given):
                named = sorted(given | {location} - {None})
                raise ValueError(f"checkpointLocation is given more than once, differently: {named}")
            self.streaming.checkpoint_location = given.pop()
        if self.streaming is not None and self.streaming.show_preview_lines is not None:
            self.show_preview_lines = self.streaming.show_preview_lines
        return self

    @model_validator(mode="after")
    def _slice_layout(self) -> Job:
        """A partitioned job's outputs are partitioned by its slice columns, unless the manifest says how:
        replacing a slice is then a metadata-only overwrite of whole Iceberg partitions."""
        if self.partitions is None:
            return self
        transform = {"hourly": "hour", "daily": "day", "monthly": "month"}
        fields = [
            PartitionField(type=transform.get(d.type, "identity"), column=d.column)  # type: ignore[arg-type]
            for d in self.partitions.dimensions
        ]
        for output in self.outputs:
            options = output.options
            if options.iceberg is None:
                options.iceberg = IcebergOptions(partition_spec=list(fields))
            elif options.iceberg.partition_spec is None:
                options.iceberg.partition_spec = list(fields)
        return self

    def _quality_inputs(self) -> None:
        """A data-quality job's assertions each check one input: the only one, or the one named."""
        if self.steps:
            raise ValueError(
                "a data-quality job (assertions, no outputs) checks its inputs as read; steps go with "
                "outputs (give the input a query to shape what is checked)"
            )
        names = [i.name for i in self.inputs]
        if not names:
            raise ValueError("a data-quality job (assertions, no outputs) reads the inputs it checks")
        for key, value in (("partitions", self.partitions), ("streaming", self.streaming)):
            if value is not None:
                raise ValueError(f"{key} goes with outputs; a data-quality job checks whole datasets")
        for index, item in enumerate(self.inputs):
            if item.incremental or item.incremental_read or item.is_stream:
                raise ValueError(
                    f"inputs[{index}]: a data-quality job checks the dataset as it is; "
                    "incremental, incrementalRead and isStream go with outputs"
                )
        by_address = {str(i.address): i.name for i in self.inputs}
        for index, assertion in enumerate(self.assertions):
            if assertion.output is not None:
                raise ValueError(
                    f"assertions[{index}].output {assertion.output!r}: this job has no outputs; "
                    f"name the input it checks with input: ({', '.join(names)})"
                )
            named = assertion.input
            if named is None and len(names) > 1:
                raise ValueError(
                    f"assertions[{index}]: this data-quality job reads several inputs; name the one "
                    f"checked with input:; allowed: {', '.join(names)}"
                )
            if named is not None and named not in names:
                try:
                    named = by_address.get(str(parse_address(named)))
                except ValueError:
                    named = None
                if named is None:
                    raise ValueError(
                        f"assertions[{index}].input {assertion.input!r} is not an input of the job; "
                        f"allowed: {', '.join(names)}"
                    )
            assertion.input = named or names[0]
        for name in names:
            checks = [a.check_name(i) for i, a in enumerate(self.assertions_for_input(name))]
            dup = sorted({c for c in checks if checks.count(c) > 1})
            if dup:
                raise ValueError(
                    f"assertion names repeat on input {name!r}: {', '.join(dup)}; give each a name"
                )

    def assertions_for_input(self, name: str) -> list[JobAssertion]:
        """A data-quality job's assertions on one input, in manifest order."""
        return [a for a in self.assertions if a.input == name]

    def assertions_for(self, output: Output) -> list[Assertion]:
        """The output's own assertions, then the job-level ones that point at it."""
        job_level = [a for a in self.assertions if a.output in (None, output.name)]
        return [*output.assertions, *job_level]


def spark_memory(value: Any) -> str | None:
    """A memory size as Spark reads it: numbers are MiB (`1024` -> `1024m`), Kubernetes units
    (`1600Mi`, `2Gi`) become Spark's (`1600m`, `2g`)."""
    if value is None:
        return None
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b?)?", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"{value!r} is not a memory size; write 2048m, 2g, 2Gi or a number of MiB")
    number, unit = match[1], (match[2] or "m")[0].lower()
    if "." in number:
        scale = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}[unit]
        return f"{int(float(number) * scale)}m"
    return f"{number}{unit}"


class Resources(Model):
    core_limit: str | None = Field(
        default=None, description="the pod's CPU limit on Kubernetes (spark.kubernetes.<role>.limit.cores)"
    )
    cores: int | None = Field(default=None, description="spark.<role>.cores, unless sparkConf sets it")
    instances: int | None = Field(
        default=None, description="executor only: spark.executor.instances, unless sparkConf sets it"
    )
    memory: str | None = Field(
        default=None, description="spark.<role>.memory: a number of MiB, 2g, or Kubernetes units (2Gi)"
    )
    memory_overhead: str | None = Field(
        default=None, description="spark.<role>.memoryOverhead, written as memory is"
    )

    @field_validator("memory", "memory_overhead", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> str | None:
        return spark_memory(value)

    @field_validator("core_limit", mode="before")
    @classmethod
    def _core_limit(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value


STATIC_SQL = ("spark.sql.extensions", "spark.sql.warehouse.dir", "spark.sql.catalogImplementation")


class StackSpec(Model):
    driver: Resources | None = Field(
        default=None, description="the driver's cores and memory, applied when its JVM starts"
    )
    executor: Resources | None = Field(
        default=None, description="the executors' number, cores and memory, applied when the JVM starts"
    )
    spark_conf: list[dict[str, Any]] | dict[str, Any] | None = Field(
        default=None,
        description=(
            "Spark confs (a map or a list of one-key maps): spark.sql.* per run, others at JVM start"
        ),
    )
    configs: dict[str, Any] = Field(default_factory=dict, description="DataOS stack configs")
    job: Job = Field(description="what the job reads, computes, writes and checks")

    def conf(self) -> dict[str, str]:
        """sparkConf as one map (Flare writes it as a list of one-key maps, or as a map)."""
        items = self.spark_conf or {}
        if isinstance(items, list):
            merged: dict[str, Any] = {}
            for item in items:
                merged.update(item)
            items = merged
        return {str(k): str(v) for k, v in items.items()}

    def static_conf(self) -> dict[str, str]:
        """Confs fixed when a JVM starts: the driver and executor blocks, and sparkConf keys outside
        spark.sql.* (memory, cores, instances, jars)."""
        conf = {k: v for k, v in self.conf().items() if not k.startswith("spark.sql.") or k in STATIC_SQL}
        for role, res in (("driver", self.driver), ("executor", self.executor)):
            if res is None:
                continue
            for key, value in (
                ("cores", res.cores),
                ("memory", res.memory),
                ("memoryOverhead", res.memory_overhead),
            ):
                if value is not None:
                    conf.setdefault(f"spark.{role}.{key}", str(value))
            if role == "executor" and res.instances is not None:
                conf.setdefault("spark.executor.instances", str(res.instances))
            if res.core_limit is not None:
                conf.setdefault(f"spark.kubernetes.{role}.limit.cores", str(res.core_limit))
        return conf


class Spec(Model):
    stack: str | None = Field(default=None, description="the DataOS stack and its version")
    compute: str | None = Field(default=None, description="the DataOS compute the job runs on")
    envs: dict[str, Any] = Field(
        default_factory=dict, description="environment variables of the job's container"
    )
    tags: list[str] = Field(default_factory=list, description="Dagster tags on the job's assets")
    title: str | None = Field(
        default=None, description="a title for the job's assets when neither the output nor the job gives one"
    )
    description: str | None = Field(
        default=None,
        description="a description for the job's assets when neither the output nor the job gives one",
    )
    stack_spec: StackSpec = Field(description="the job and the Spark resources and confs it runs with")


class DagJob(Model):
    name: str = Field(description="the job's name; its Dagster job is <workflow name>__<name>")
    title: str | None = Field(
        default=None,
        description="the Dagster job's description and its assets' title (unless an output has its own)",
    )
    description: str | None = Field(
        default=None, description="its assets' description (unless an output has its own)"
    )
    tags: list[str] = Field(default_factory=list, description="Dagster tags on the job's assets")
    depends: list[str] = Field(
        default_factory=list, description="jobs of this workflow whose outputs this job's assets depend on"
    )
    pool: str | None = Field(
        default=None,
        description="Dagster concurrency pool: jobs sharing one never run more at once than its limit",
    )
    spec: Spec = Field(description="the job's stack, resources and the job itself")

    @field_validator("pool")
    @classmethod
    def _pool(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z0-9_.\-/]+$", value):
            raise ValueError(f"{value!r} is not a pool name (letters, digits, _ . - /)")
        return value

    @property
    def job(self) -> Job:
        return self.spec.stack_spec.job


class Schedule(Model):
    """`cron` in `timezone`; `concurrencyPolicy: Forbid` skips a tick while a run of the workflow is
    in flight; no tick runs after `endOn`."""

    cron: str = Field(description="when the workflow's assets are materialized (a five-field cron)")
    concurrency_policy: Literal["Allow", "Forbid"] = Field(
        default="Allow", description="Forbid: a tick is skipped while a run of the workflow is in flight"
    )
    timezone: str | None = Field(default=None, description="the time zone the cron is read in (default UTC)")
    end_on: datetime | None = Field(
        default=None, description="no tick runs after this moment (UTC when it has no zone)"
    )

    @field_validator("concurrency_policy", mode="before")
    @classmethod
    def _policy(cls, value: Any) -> Any:
        return value.capitalize() if isinstance(value, str) else value

    @field_validator("end_on")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Workflow(Model):
    title: str | None = Field(default=None, description="the assets' title when no output or job gives one")
    description: str | None = Field(
        default=None,
        description="the workflow's description: assets whose output, job and spec have none take it",
    )
    schedule: Schedule | None = Field(
        default=None, description="materializes the workflow's assets on a cron"
    )
    dag: list[DagJob] = Field(min_length=1, description="the workflow's jobs")


class Manifest(Model):
    version: Literal["v1"] = Field(description="the manifest version, v1")
    name: str = Field(
        description="the workflow's name: its Dagster asset group and the start of its job names"
    )
    type: Literal["workflow"] = Field(description="the DataOS resource type, workflow")
    title: str | None = Field(
        default=None, description="the assets' title when nothing more specific gives one"
    )
    tags: list[str] = Field(default_factory=list, description="Dagster tags on every asset of the workflow")
    description: str | None = Field(
        default=None, description="the assets' description when nothing more specific gives one"
    )
    owner: str | None = Field(
        default=None, description="the assets' owner in Dagster: an e-mail address, or a team name"
    )
    layer: str | None = Field(default=None, description="the DataOS layer")
    workspace: str | None = Field(default=None, description="the DataOS workspace")
    workflow: Workflow = Field(description="the workflow's schedule and jobs")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(r"^[a-z][a-z0-9_-]*$", value):
            raise ValueError(f"{value!r}: workflow names are lower case letters, digits, '-' and '_'")
        return value
