"""Table health read from Iceberg metadata with pyiceberg, no JVM: what the health sensor, the
maintenance jobs' before/after figures and `flare health` report, and which maintenance a table needs.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from flare_assets.spec.maintenance import Thresholds

if TYPE_CHECKING:  # pyiceberg loads in ~0.3 s; every run process imports this module, few read health
    from pyiceberg.manifest import ManifestFile
    from pyiceberg.table import Table

# Iceberg's default write.target-file-size-bytes
DEFAULT_TARGET_FILE_SIZE = 512 * 1024 * 1024


@dataclass
class TableHealth:
    """Figures of one table's current snapshot (main). `small_files` counts data files under the
    small-file size in partitions that hold at least two of them: the files compaction can merge."""

    table: str
    snapshot_id: int | None = None
    data_files: int = 0
    small_files: int = 0
    data_bytes: int = 0
    records: int = 0
    delete_files: int = 0
    manifests: int = 0
    snapshots: int = 0
    oldest_snapshot_age_h: float = 0.0
    metadata_bytes: int = 0
    target_file_size: int = DEFAULT_TARGET_FILE_SIZE
    small_file_size: int = DEFAULT_TARGET_FILE_SIZE // 8
    partitions: int = 0
    refs: dict[str, int] = field(default_factory=dict)

    @property
    def small_file_ratio(self) -> float:
        return self.small_files / self.data_files if self.data_files else 0.0

    @property
    def avg_file_size(self) -> float:
        return self.data_bytes / self.data_files if self.data_files else 0.0

    def figures(self) -> dict[str, float]:
        """The numeric figures, as observation metadata the Dagster UI plots."""
        out: dict[str, float] = {
            k: v for k, v in asdict(self).items() if isinstance(v, int | float) and k != "snapshot_id"
        }
        out["small_file_ratio"] = round(self.small_file_ratio, 4)
        out["avg_file_size"] = round(self.avg_file_size, 1)
        out["oldest_snapshot_age_h"] = round(self.oldest_snapshot_age_h, 3)
        return out


# Manifest files are immutable: a table's next tick reads only the manifests its new commits wrote.
_MANIFEST_CACHE: dict[str, list[tuple[tuple[Any, ...], int, int]]] = {}
_MANIFEST_CACHE_SIZE = 20_000


def _data_files(table: Table, manifest: ManifestFile) -> list[tuple[tuple[Any, ...], int, int]]:
    """(partition, size, records) of each live data file of a manifest, cached by its path."""
    from pyiceberg.manifest import DataFileContent

    files = _MANIFEST_CACHE.get(manifest.manifest_path)
    if files is None:
        files = [
            (
                (manifest.partition_spec_id, *tuple(e.data_file.partition)),
                e.data_file.file_size_in_bytes,
                e.data_file.record_count,
            )
            for e in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
            if e.data_file.content == DataFileContent.DATA
        ]
        if len(_MANIFEST_CACHE) >= _MANIFEST_CACHE_SIZE:
            _MANIFEST_CACHE.clear()
        _MANIFEST_CACHE[manifest.manifest_path] = files
    return files


def read_health(table: Table, name: str, thresholds: Thresholds | None = None) -> TableHealth:
    """Reads the manifests of the current snapshot (file sizes and partitions) and the snapshot log."""
    from pyiceberg.manifest import ManifestContent

    thresholds = thresholds or Thresholds()
    meta = table.metadata
    target = int(table.properties.get("write.target-file-size-bytes", DEFAULT_TARGET_FILE_SIZE))
    health = TableHealth(
        table=name, target_file_size=target, small_file_size=target // thresholds.fragment_ratio
    )
    health.snapshots = len(meta.snapshots)
    health.refs = {ref: r.snapshot_id for ref, r in meta.refs.items()}
    if meta.snapshots:
        oldest = min(s.timestamp_ms for s in meta.snapshots)
        health.oldest_snapshot_age_h = max(0.0, (time.time() * 1000 - oldest) / 3_600_000)
    try:
        health.metadata_bytes = len(table.io.new_input(table.metadata_location))
    except OSError:
        health.metadata_bytes = 0
    snapshot = table.current_snapshot()
    if snapshot is None:
        return health
    health.snapshot_id = snapshot.snapshot_id
    small_by_partition: Counter[tuple[Any, ...]] = Counter()
    partitions: set[tuple[Any, ...]] = set()
    manifests = snapshot.manifests(table.io)
    health.manifests = len(manifests)
    for manifest in manifests:
        if manifest.content == ManifestContent.DELETES:
            health.delete_files += (manifest.added_files_count or 0) + (manifest.existing_files_count or 0)
            continue
        for key, size, records in _data_files(table, manifest):
            partitions.add(key)
            health.data_files += 1
            health.data_bytes += size
            health.records += records
            if size < health.small_file_size:
                small_by_partition[key] += 1
    health.partitions = len(partitions)
    health.small_files = sum(n for n in small_by_partition.values() if n >= 2)
    return health


def needed(health: TableHealth, thresholds: Thresholds | None = None) -> dict[str, str]:
    """The maintenance the table needs now, each with the reason (empty: healthy). Orphans cannot be
    seen in metadata (they are files no metadata names), so they are left to their schedule."""
    t = thresholds or Thresholds()
    out: dict[str, str] = {}
    if health.small_files >= t.max_small_files:
        out["compaction"] = f"{health.small_files} small files >= maxSmallFiles {t.max_small_files}"
    elif health.small_files >= t.min_small_files and health.small_file_ratio >= t.max_small_file_ratio:
        out["compaction"] = (
            f"small-file ratio {health.small_file_ratio:.2f} >= {t.max_small_file_ratio} "
            f"({health.small_files} small files)"
        )
    elif health.delete_files >= t.max_delete_files:
        out["compaction"] = f"{health.delete_files} delete files >= maxDeleteFiles {t.max_delete_files}"
    if health.manifests >= t.max_manifests:
        out["manifests"] = f"{health.manifests} manifests >= maxManifests {t.max_manifests}"
    if health.snapshots > t.max_snapshots:
        out["expiry"] = f"{health.snapshots} snapshots > maxSnapshots {t.max_snapshots}"
    elif health.snapshots > 1 and health.oldest_snapshot_age_h > t.max_snapshot_age_hours:
        out["expiry"] = (
            f"oldest snapshot {health.oldest_snapshot_age_h:.0f} h old > maxSnapshotAgeHours "
            f"{t.max_snapshot_age_hours:g}"
        )
    return out


def catalog_health(name: str | None = None) -> list[tuple[str, TableHealth, dict[str, str]]]:
    """Each table's health (one table, or every table of the default catalog) and what maintenance
    it needs, by table identifier."""
    from flare_assets.catalog import load_catalog
    from flare_assets.query import table_identifier
    from flare_assets.settings import Settings

    settings = Settings.from_env()
    if name:
        depot, ident = table_identifier(name, settings)
        catalog = load_catalog(depot, settings)
        idents = [ident]
    else:
        catalog = load_catalog(settings=settings)
        idents = [".".join(t) for ns in catalog.list_namespaces() for t in catalog.list_tables(ns)]
    out = []
    for ident in sorted(idents):
        health = read_health(catalog.load_table(ident), ident)
        out.append((ident, health, needed(health)))
    return out
