"""Flare `actions`: table maintenance a job runs on one of its inputs, with Flare's names and option keys.

Each action becomes one of Iceberg's own Spark procedures (or DELETE FROM); nothing is reimplemented.
Options are checked here, before any Spark work: an unknown key names the allowed ones, and a where
clause that does not parse is reported with the parser's reason.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self

import sqlglot
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.simplify import simplify

from flare_assets.spec.base import Strict
from flare_assets.spec.errors import message

ACTION_NAMES = (
    "rewrite_dataset",
    "rewrite_manifest",
    "expire_snapshots",
    "remove_orphans",
    "delete_from_dataset",
)

# Iceberg's rewrite_data_files options (RewriteDataFiles and its file rewriters), as Flare passes them.
REWRITE_PROPERTIES = (
    "target-file-size-bytes",
    "min-file-size-bytes",
    "max-file-size-bytes",
    "min-input-files",
    "rewrite-all",
    "max-file-group-size-bytes",
    "max-concurrent-file-group-rewrites",
    "partial-progress.enabled",
    "partial-progress.max-commits",
    "partial-progress.max-failed-commits",
    "delete-file-threshold",
    "rewrite-job-order",
    "use-starting-sequence-number",
    "remove-dangling-deletes",
    "output-spec-id",
    "shuffle-partitions-per-file",
    "compression-factor",
)

# Iceberg refuses to remove orphans newer than this by default: files of a write in progress look orphaned.
ORPHAN_FLOOR_DAYS = 3


class Options(Strict):
    """Options of an action."""


def lowercase(value: Any) -> Any:
    """A before-validator: manifests spell enum-like values in any case."""
    return value.lower() if isinstance(value, str) else value


def parse_where(text: str) -> exp.Expression:
    """A boolean SQL predicate, parsed as Spark SQL; ValueError naming the parser's reason."""
    try:
        tree = sqlglot.parse_one(text, read="spark")
    except SqlglotError as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(f"{text!r} is not a valid SQL predicate: {reason}") from exc
    if tree is None or isinstance(tree, exp.Query):
        raise ValueError(f"{text!r} is not a predicate (a condition such as `day < '2024-01-01'`)")
    return tree


def always_true(text: str | None) -> bool:
    """An empty predicate or one that simplifies to TRUE (`1 = 1`, `true OR x > 0`) matches every row."""
    if text is None or not text.strip():
        return True
    tree = simplify(parse_where(text))
    return isinstance(tree, exp.Boolean) and bool(tree.this)


def _where(value: str | None) -> str | None:
    if value is not None and value.strip():
        parse_where(value)
    return value


def millis(value: Any) -> int:
    """Epoch millis from a number or an ISO timestamp (UTC when no zone is given)."""
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is neither epoch milliseconds nor an ISO timestamp (2024-12-01T00:00:00Z)"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


# A cutoff is a moment: epoch milliseconds or a timestamp. Before this one it is most likely a
# duration (`olderThan: 60000` meant as a minute) or seconds, which would run as a 1970 cutoff.
EARLIEST_CUTOFF = datetime(2000, 1, 1, tzinfo=UTC)


def check_cutoff(key: str, value: Any) -> int:
    """The cutoff in epoch millis; ValueError naming the value when it falls before 2000-01-01."""
    ms = millis(value)
    if ms < EARLIEST_CUTOFF.timestamp() * 1000:
        moment = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        raise ValueError(
            f"{key}: {value!r} is {moment}, before 2000-01-01: probably a duration or seconds, not a "
            "moment; give epoch milliseconds (1733011200000) or a timestamp (olderThanTimestamp: "
            "2024-12-01T00:00:00Z)"
        )
    return ms


class RewriteDatasetOptions(Options):
    """rewrite_data_files: bin-pack small files together, or sort (zorder included) while rewriting."""

    strategy: Literal["binpack", "sort"] = "binpack"
    sort_order: str | None = None
    where: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)

    _where = field_validator("where")(_where)

    _lower = field_validator("strategy", mode="before")(lowercase)

    @field_validator("properties", mode="before")
    @classmethod
    def _properties(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        unknown = [k for k in value if k not in REWRITE_PROPERTIES]
        if unknown:
            raise ValueError(
                f"unknown rewrite propert{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
                f"allowed: {', '.join(REWRITE_PROPERTIES)}"
            )
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}

    @field_validator("sort_order")
    @classmethod
    def _sort_order(cls, value: str | None) -> str | None:
        if value is None:
            return value
        zorder = re.fullmatch(r"\s*zorder\s*\(([^)]*)\)\s*", value, re.IGNORECASE)
        terms = zorder[1].split(",") if zorder else value.split(",")
        term = r"\s*[A-Za-z_]\w*(\s+(ASC|DESC))?(\s+NULLS\s+(FIRST|LAST))?\s*"
        pattern = r"\s*[A-Za-z_]\w*\s*" if zorder else term
        if not terms or not all(re.fullmatch(pattern, t, re.IGNORECASE) for t in terms):
            raise ValueError(
                f"sortOrder {value!r}: write 'col [ASC|DESC] [NULLS FIRST|LAST], ...' or 'zorder(col1, col2)'"
            )
        return value

    @model_validator(mode="after")
    def _sort_needs_order(self) -> RewriteDatasetOptions:
        if self.sort_order and self.strategy != "sort":
            raise ValueError("sortOrder goes with strategy: sort")
        return self


class RewriteManifestOptions(Options):
    """rewrite_manifests: regroup data files in manifests by partition."""

    use_caching: bool | None = None


class CutoffOptions(Options):
    """Options with one age cutoff, given as epoch millis, as an ISO timestamp or under Flare's older
    name for the millis (`OLDER_NAME`)."""

    OLDER_NAME: ClassVar[str]
    older_than_millis: int | None = None
    older_than_timestamp: str | None = None

    @field_validator("older_than_timestamp")
    @classmethod
    def _timestamp(cls, value: str | None) -> str | None:
        if value is not None:
            millis(value)
        return value

    @model_validator(mode="after")
    def _one_cutoff(self) -> Self:
        names = ("older_than_millis", "older_than_timestamp", self.OLDER_NAME)
        given = [k for k in names if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(
                f"give one of olderThanMillis, olderThanTimestamp or {to_camel(self.OLDER_NAME)}"
            )
        for key in given:
            check_cutoff(to_camel(key), getattr(self, key))
        return self

    @property
    def cutoff_millis(self) -> int | None:
        value = self.older_than_millis or getattr(self, self.OLDER_NAME) or self.older_than_timestamp
        return millis(value) if value is not None else None


class ExpireSnapshotsOptions(CutoffOptions):
    """expire_snapshots. `expireOlderThan` is Flare's older name for olderThanMillis. Heads of branches
    and tags are never expired (Iceberg keeps them; named snapshotIds that are heads are refused)."""

    OLDER_NAME: ClassVar[str] = "expire_older_than"
    expire_older_than: int | None = None
    retain_last: int | None = Field(default=None, ge=1)
    snapshot_ids: list[int] | None = None
    max_concurrent_deletes: int | None = Field(default=None, ge=1)
    stream_delete_results: bool | None = None


class RemoveOrphansOptions(CutoffOptions):
    """remove_orphan_files. `olderThan` is Flare's older name for olderThanMillis. A cutoff under
    the floor (3 days, Iceberg's default) is refused unless `force: true`."""

    OLDER_NAME: ClassVar[str] = "older_than"
    older_than: int | None = None
    location: str | None = None
    dry_run: bool = False
    max_concurrent_deletes: int | None = Field(default=None, ge=1)
    force: bool = False


class DeleteOptions(Options):
    """delete_from_dataset takes its predicate at the action level (deleteWhere); no options."""


OPTIONS: dict[str, type[Options]] = {
    "rewrite_dataset": RewriteDatasetOptions,
    "rewrite_manifest": RewriteManifestOptions,
    "expire_snapshots": ExpireSnapshotsOptions,
    "remove_orphans": RemoveOrphansOptions,
    "delete_from_dataset": DeleteOptions,
}


class Action(Strict):
    """One Flare action on the table behind the job input named by `input`."""

    name: Literal[
        "rewrite_dataset", "rewrite_manifest", "expire_snapshots", "remove_orphans", "delete_from_dataset"
    ] = Field(description="the Iceberg procedure run (delete_from_dataset: a DELETE FROM)")
    input: str = Field(description="the job input whose table the action works on")
    options: Any = Field(default=None, description="the action's options, checked against the ones it takes")
    delete_where: str | None = Field(
        default=None, description="delete_from_dataset: a SQL condition on the rows deleted"
    )
    all: bool = Field(
        default=False,
        description="delete_from_dataset: true deletes every row, which no deleteWhere may do alone",
    )

    _lower = field_validator("name", mode="before")(lowercase)

    @field_validator("delete_where")
    @classmethod
    def _delete_where(cls, value: str | None) -> str | None:
        return _where(value)

    @model_validator(mode="after")
    def _typed_options(self) -> Action:
        model = OPTIONS[self.name]
        raw = self.options or {}
        if isinstance(raw, Options):
            return self
        if not isinstance(raw, dict):
            raise ValueError(f"options of {self.name} is a mapping")
        unknown = [k for k in raw if k not in _keys(model)]
        if unknown:
            allowed = ", ".join(f.alias or n for n, f in model.model_fields.items()) or "(none)"
            raise ValueError(f"options.{unknown[0]}: unknown option of {self.name}; allowed: {allowed}")
        try:
            self.options = model.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"options{'.' + where if where else ''}: {message(err)}") from None
        if self.name == "delete_from_dataset":
            if not self.all and always_true(self.delete_where):
                raise ValueError(
                    "delete_from_dataset needs a deleteWhere that does not match every row "
                    f"(got {self.delete_where!r}); give all: true to delete every row"
                )
        elif self.delete_where is not None or self.all:
            raise ValueError(f"deleteWhere and all go with delete_from_dataset, not {self.name}")
        return self


def _keys(model: type[Options]) -> set[str]:
    return {k for n, f in model.model_fields.items() for k in (n, f.alias or n)}
