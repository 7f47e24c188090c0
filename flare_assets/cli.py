"""The `flare` command: what the Dagster CLI does not do (validate, query, demo data, the demo)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from flare_assets.settings import HomeError, Settings, SettingsError, writable_folder
from flare_assets.spec.errors import ManifestError

if TYPE_CHECKING:
    from flare_assets.engine.maintenance.health import TableHealth

    Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def cmd_validate(args: argparse.Namespace) -> int:
    from flare_assets.catalog import table_exists
    from flare_assets.depots import load_depots
    from flare_assets.spec.loader import load_manifests, metadata_only_warnings

    settings = Settings.from_env()
    try:
        depots = load_depots(Path(args.depots) if args.depots else settings.depots)
        loaded = load_manifests([Path(p) for p in args.paths], depots, lambda t: table_exists(t, settings))
    except ManifestError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 1
    for line in loaded.ignored:
        print(f"warning: {line}", file=sys.stderr)
    if loaded.broken:
        for line in loaded.problems:
            print(line, file=sys.stderr)
        return 1
    jobs = loaded.jobs
    for line in metadata_only_warnings(jobs):
        print(f"warning: {line}", file=sys.stderr)
    outputs = sum(len(lj.dag_job.job.outputs) for lj in jobs)
    print(f"ok: {len({lj.file for lj in jobs})} manifest(s), {len(jobs)} job(s), {outputs} output(s)")
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from flare_assets.spec import reference

    folder = Path(args.out)
    pages = {**reference.pages(), "cli.md": cli_page()}
    if args.check:
        stale = [n for n, text in pages.items() if _read(folder / n) != text]
        for name in stale:
            print(f"{folder / name} is out of date; run `flare docs`", file=sys.stderr)
        return 1 if stale else 0
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (folder / name).write_text(text)
        print(f"wrote {folder / name}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def _home_for_reads(settings: Settings) -> None:
    """The embedded catalog lives in FLARE_HOME: reading from a FLARE_HOME that does not exist would
    create an empty one and report every table missing."""
    if settings.embedded_catalog:
        settings.existing_home()


def cmd_query(args: argparse.Namespace) -> int:
    from flare_assets.query import read_rows

    try:
        _home_for_reads(Settings.from_env())
        rows = read_rows(args.table, branch=args.branch, snapshot_id=args.snapshot, limit=args.limit)
    except Exception as exc:  # a missing table, branch or snapshot: one line, no traceback
        print(f"flare query: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        for row in rows:
            print(json.dumps(row, default=str))
    else:
        import pandas as pd

        print(pd.DataFrame(rows).to_string(index=False) if rows else "(no rows)")
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    """Puts a table whose catalog entry was lost back into the catalog, from its metadata file."""
    from flare_assets.catalog import load_catalog
    from flare_assets.query import table_identifier

    settings = Settings.from_env()
    try:
        depot, ident = table_identifier(args.table, settings)
        metadata = args.metadata_file or newest_metadata(settings, ident)
        catalog = load_catalog(depot, settings)
        catalog.create_namespace_if_not_exists(ident.rsplit(".", 1)[0])
        table = catalog.register_table(ident, metadata)
    except Exception as exc:  # a missing file, a table that exists: one line, no traceback
        print(f"flare register: {exc}", file=sys.stderr)
        return 1
    snapshot = table.current_snapshot()
    rows = snapshot.summary.get("total-records") if snapshot and snapshot.summary else "0"
    print(
        f"registered {depot}.{ident} from {metadata}: {len(table.snapshots())} snapshot(s), {rows} row(s)"
        + (f", current snapshot {snapshot.snapshot_id}" if snapshot else "")
    )
    return 0


def newest_metadata(settings: Settings, ident: str) -> str:
    """The newest `*.metadata.json` at the table's default location in a local warehouse."""
    if "://" in settings.warehouse:
        raise ValueError(
            f"the warehouse {settings.warehouse} is not local: name the metadata file to register"
        )
    folder = Path(settings.warehouse, *ident.split(".")) / "metadata"
    found = sorted(folder.glob("*.metadata.json"), key=lambda p: (p.name.split("-", 1)[0], p.stat().st_mtime))
    if not found:
        raise ValueError(f"no Iceberg metadata in {folder}: name the metadata file to register")
    return str(found[-1])


def cmd_health(args: argparse.Namespace) -> int:
    from flare_assets.engine.maintenance.health import catalog_health

    try:
        _home_for_reads(Settings.from_env())
        found = catalog_health(args.table)
    except Exception as exc:  # a missing table or catalog: one line, no traceback
        print(f"flare health: {exc}", file=sys.stderr)
        return 1
    as_json = args.format == "json"
    lines = [_health_json(*t) if as_json else _health_line(*t) for t in found]
    print("\n".join(lines) if lines else "(no tables)")
    return 0


def _health_json(ident: str, health: TableHealth, needs: dict[str, str]) -> str:
    return json.dumps({"table": ident, **health.figures(), "needs": needs})


def _health_line(ident: str, health: TableHealth, needs: dict[str, str]) -> str:
    """One table's figures and what maintenance it needs, on one line."""
    return (
        f"{ident}: {health.data_files} data files ({health.small_files} small, ratio "
        f"{health.small_file_ratio:.2f}), {health.data_bytes} bytes, avg {health.avg_file_size:.0f} B, "
        f"{health.delete_files} delete files, {health.manifests} manifests, {health.snapshots} snapshots "
        f"(oldest {health.oldest_snapshot_age_h:.1f} h); needs: "
        + (", ".join(f"{k} ({v})" for k, v in needs.items()) or "nothing")
    )


def cmd_demo_data(args: argparse.Namespace) -> int:
    from flare_assets.demo.data import generate

    settings = Settings.from_env()
    settings.writable_home()
    landing = writable_folder(settings.resolve("landing"), "the landing folder")
    counts = generate(landing, customers=args.customers, orders=args.orders, seed=args.seed)
    print(f"demo data in {landing}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def cmd_drop_events(args: argparse.Namespace) -> int:
    """Web events for the demo stream (workflow `web`), a file at a time, to watch in the UI."""
    import time

    from flare_assets.demo.events import drop_events

    folder = Settings.from_env().resolve("landing") / "web" / "events"
    for n in range(args.files):
        if n:
            time.sleep(args.every)
        path = drop_events(folder, rows=args.rows, bad=args.bad)
        print(f"{path}: {args.rows} events" + (f", {args.bad} malformed" if args.bad else ""), flush=True)
    return 0


def dagster_env(settings: Settings) -> dict[str, str]:
    """Runs and their history live under FLARE_HOME unless DAGSTER_HOME says otherwise."""
    env = dict(os.environ)
    settings.writable_home()
    home = writable_folder(Path(env.get("DAGSTER_HOME") or settings.home / "dagster"), "DAGSTER_HOME")
    env["DAGSTER_HOME"] = str(home)
    env["FLARE_HOME"] = str(settings.home)
    return env


def cmd_demo(args: argparse.Namespace) -> int:
    from flare_assets.defs.build import build_definitions
    from flare_assets.defs.tables import maintenance_job_name, maintenance_run_config
    from flare_assets.demo import progress, summary
    from flare_assets.depots import load_depots

    settings = Settings.from_env()
    if not args.skip_data:
        cmd_demo_data(argparse.Namespace(customers=200, orders=2000, seed=7))
        cmd_drop_events(argparse.Namespace(files=1, rows=100, bad=2, every=0))
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    plain = [k for k in keys if graph.get(k).partitions_def is None]
    runs = [(plain, [])]
    # partitioned assets: a small single-run backfill of their first week
    for key in keys:
        pdef = graph.get(key).partitions_def
        if pdef is not None:
            first = pdef.get_partition_keys(dynamic_partitions_store=None)[:7]
            runs.append(([key], ["--partition-range", f"{first[0]}...{first[-1]}"]))
    env = dagster_env(settings)
    for selected, extra in runs:
        selection = ",".join(k.to_user_string() for k in selected)
        cmd = ["dagster", "asset", "materialize", "-m", "flare_assets.definitions", "--select", selection]
        print(f"materializing {len(selected)} asset(s) through Dagster {' '.join(extra)}...", flush=True)
        code, tail = progress.run([*cmd, *extra], env, verbose=args.verbose)
        if code != 0:
            print(tail[-4000:], file=sys.stderr)
            print("flare demo: the Dagster run failed (see above)", file=sys.stderr)
            return code
    # table maintenance on the table the audited job commits to month by month
    table = "lakehouse.retail.daily_sales"
    job = maintenance_job_name("flare", "lakehouse/retail/daily_sales")  # its writer's pool (audited.yaml)
    if any(j.name == job for j in defs.jobs or []):
        config = settings.home / "dagster" / "demo-maintenance.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        kinds = ["compaction", "manifests", "expiry"]
        config.write_text(json.dumps(maintenance_run_config(job, tables=[table], kinds=kinds)))
        cmd = ["dagster", "job", "execute", "-m", "flare_assets.definitions", "-j", job, "-c", str(config)]
        print(f"running {job} on {table} ({', '.join(kinds)}) through Dagster ...", flush=True)
        code, tail = progress.run(cmd, env, verbose=args.verbose)
        if code != 0:
            print(tail[-4000:], file=sys.stderr)
            print("flare demo: the maintenance run failed (see above)", file=sys.stderr)
            return code
    check_keys = [c for c in graph.asset_check_keys if c.asset_key in keys]
    checks = summary.check_outcomes(Path(env["DAGSTER_HOME"]), check_keys)
    print(summary.render(summary.summarize(keys, checks, load_depots(settings.depots), settings)))
    return 0


def cmd_partitions(args: argparse.Namespace) -> int:
    """Adds keys to a dynamic partitions dimension, checked as runs check them."""
    from dagster import DagsterInstance

    from flare_assets.depots import load_depots
    from flare_assets.spec.loader import load_jobs
    from flare_assets.spec.model import partition_key

    settings = Settings.from_env()
    try:
        keys = [partition_key(k) for k in args.keys]
        jobs = load_jobs([settings.pipelines], load_depots(settings.depots))
    except ValueError as exc:
        print(f"flare partitions: {exc}", file=sys.stderr)
        return 2
    dimensions = sorted(
        {
            d.name
            for lj in jobs
            for d in (lj.dag_job.job.partitions.dimensions if lj.dag_job.job.partitions else [])
            if d.type == "dynamic"
        }
    )
    if args.dimension not in dimensions:
        print(
            f"flare partitions: {args.dimension!r} is no dynamic partition dimension of the manifests in "
            f"{settings.pipelines}; allowed: {', '.join(dimensions) or '(none)'}",
            file=sys.stderr,
        )
        return 2
    os.environ.update(dagster_env(settings))
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(args.dimension, keys)
        known = instance.get_dynamic_partitions(args.dimension)
    print(f"{args.dimension}: {len(known)} key(s): {', '.join(known)}")
    return 0


def cmd_jvm_archive(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if settings.jvm_archive is None:
        print("FLARE_JVM_ARCHIVE=off: Spark starts without a class archive")
        return 0
    from flare_assets import jvm_archive
    from flare_assets.spark import static_conf

    print(jvm_archive.ensure(static_conf(settings), settings.jvm_archive))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `flare` command's parser: `--help` and docs/reference/cli.md both come from it."""
    parser = argparse.ArgumentParser(prog="flare", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _manifest_commands(sub)
    _table_commands(sub)
    _demo_commands(sub)
    return parser


def _manifest_commands(sub: Commands) -> None:
    p = sub.add_parser("validate", help="check manifests; one line per problem")
    p.add_argument("paths", nargs="+", help="manifest files or folders")
    p.add_argument("--depots", help="depot map (default: FLARE_DEPOTS)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("docs", help="write the reference pages (manifest keys, functions, this command)")
    p.add_argument("--out", default="docs/reference", help="folder of the pages (default: docs/reference)")
    p.add_argument("--check", action="store_true", help="exit 1 when a committed page is out of date")
    p.set_defaults(func=cmd_docs)


def _table_commands(sub: Commands) -> None:
    p = sub.add_parser("query", help="rows of a table's last committed snapshot, a branch or a snapshot")
    p.add_argument(
        "table", help="collection.dataset, depot.collection.dataset or dataos://depot:collection/dataset"
    )
    p.add_argument("--branch", help="read this branch's head instead of main")
    p.add_argument("--snapshot", type=int, help="read this snapshot id (time travel)")
    p.add_argument("--limit", type=int, default=20, help="rows to print (default 20)")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser(
        "register", help="put a table the catalog lost back into it, from its Iceberg metadata file"
    )
    p.add_argument("table", help="collection.dataset or depot.collection.dataset")
    p.add_argument(
        "metadata_file", nargs="?", help="the metadata file (default: the newest at the table's location)"
    )
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("partitions", help="add keys to a dynamic partitions dimension (its name)")
    p.add_argument("dimension", help="the dimension's name, as the manifest's partitions block gives it")
    p.add_argument("keys", nargs="+", help="the partition keys to add")
    p.set_defaults(func=cmd_partitions)

    p = sub.add_parser(
        "health", help="table health from Iceberg metadata (no JVM) and the maintenance it needs"
    )
    p.add_argument("table", nargs="?", help="one table (default: every table of the lakehouse depot)")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.set_defaults(func=cmd_health)


def _demo_commands(sub: Commands) -> None:
    p = sub.add_parser("demo-data", help="write the seeded retail demo files into the landing depot")
    p.add_argument("--customers", type=int, default=200, help="customers to generate (default 200)")
    p.add_argument("--orders", type=int, default=2000, help="orders to generate (default 2000)")
    p.add_argument("--seed", type=int, default=7, help="random seed: the same seed, the same files")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("drop-events", help="drop web event files into the demo stream's landing folder")
    p.add_argument("--files", type=int, default=1, help="how many files (default 1)")
    p.add_argument("--every", type=float, default=10.0, help="seconds between files (default 10)")
    p.add_argument("--rows", type=int, default=100, help="events per file (default 100)")
    p.add_argument("--bad", type=int, default=0, help="malformed lines per file, for the quarantine")
    p.set_defaults(func=cmd_drop_events)

    p = sub.add_parser(
        "jvm-archive", help="build the Spark class archive runs start from, if missing; print its path"
    )
    p.set_defaults(func=cmd_jvm_archive)

    p = sub.add_parser("demo", help="demo data, then every demo asset materialized through Dagster")
    p.add_argument("--skip-data", action="store_true", help="keep the landing files already there")
    p.add_argument("--verbose", action="store_true", help="show the Dagster run's output")
    p.set_defaults(func=cmd_demo)


def cli_page() -> str:
    """docs/reference/cli.md: every command's `--help`, as the parser prints it (100 columns wide)."""
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    lines = [
        "# The flare command",
        "",
        "Generated by `flare docs`; `flare COMMAND --help` prints the same.",
        "",
    ]
    width = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        for name, command in sub.choices.items():
            lines += [f"## `flare {name}`", "", "```", command.format_help().rstrip(), "```", ""]
    finally:
        os.environ.pop("COLUMNS") if width is None else os.environ.update(COLUMNS=width)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (HomeError, ManifestError, SettingsError) as exc:  # expected: the reason, no traceback
        print(f"flare {args.command}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"flare {args.command}: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
