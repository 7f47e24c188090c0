"""Validates the full Flare workflows of a local copy of DataOS's documentation, page by page.

    python scripts/flare_docs_corpus.py PATH_TO_DOCS_CLONE [--failures]

Reads every ```yaml block under docs/resources/stacks/flare/ (with `--8<--` includes filled in from
docs/), keeps the full workflows (version, type: workflow, workflow), writes a depot map naming
every depot they use, and validates each workflow on its own. Nothing of the docs is kept.

Counted apart, not validated: workflows in the legacy layout (`version: v1beta1`, `spec.flare`), and
workflows reading or writing a system that has no depot type here (Snowflake, BigQuery, Kafka, ...),
whose depots are recognised by name. A template's `${VAR}` placeholders are filled with the variable's
name in lower case, as a user fills them before running it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import typing
from collections import Counter
from pathlib import Path

import yaml

from flare_assets.depots import Depot, load_depots
from flare_assets.spec.errors import ManifestError
from flare_assets.spec.loader import load_jobs

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```ya?ml[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.MULTILINE | re.DOTALL
)
INCLUDE = re.compile(r'^(?P<indent>[ \t]*)--8<--\s*"(?P<path>[^"]+)"\s*$', re.MULTILINE)
ADDRESS = re.compile(r"dataos://(?P<depot>[A-Za-z0-9_\-]+):")
ICEBERG = ("lakehouse", "icebase")
JDBC = ("postgres", "mysql", "jdbc")
# depots of systems with no depot type here, by the words their names hold in the docs
ELSEWHERE = (
    "snowflake",
    "redshift",
    "mssql",
    "oracle",
    "mongodb",
    "bigquery",
    "bqdepot",
    "sanitybq",
    "kafka",
    "pulsar",
    "systemstreams",
    "eventhub",
    "elasticsearch",
    "opensearch",
    "delta",
    "hive",
)
LEGACY_KEYS = {"sink", "udfs"}  # steps' sink blocks and Scala UDFs belong to the older layout
MESSAGE_STREAM_OPTIONS = {"startingOffsets", "subscribe", "kafka.bootstrap.servers"}
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def blocks(page: Path, docs: Path) -> list[str]:
    text = page.read_text(errors="replace")
    out = []
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        body = "\n".join(line[indent:] for line in match["body"].splitlines())
        out.append(INCLUDE.sub(lambda m: _include(docs, m["path"]), body))
    return out


def _include(docs: Path, path: str) -> str:
    target = docs / path
    return target.read_text(errors="replace") if target.is_file() else ""


def workflows(docs: Path) -> list[tuple[str, int, dict]]:
    """(page, block number, workflow) of every full workflow in the Flare pages."""
    found = []
    for page in sorted((docs / "resources" / "stacks" / "flare").rglob("*.md")):
        for n, block in enumerate(blocks(page, docs)):
            try:
                doc = yaml.safe_load(block)
            except yaml.YAMLError:
                continue
            if isinstance(doc, dict) and doc.get("type") == "workflow" and "workflow" in doc:
                found.append((str(page.relative_to(docs)), n, doc))
    return found


def depots_of(doc: dict) -> set[str]:
    return {m["depot"] for m in ADDRESS.finditer(os.path.expandvars(yaml.safe_dump(doc)))}


def kind(doc: dict) -> str:
    """current, legacy (older layout) or elsewhere (a system with no depot type here)."""
    text = yaml.safe_dump(doc)
    keys = set(re.findall(r"^[\s-]*([\w.]+):", text, re.MULTILINE))
    dag = (doc.get("workflow") or {}).get("dag") or []
    if doc.get("version") != "v1" or any("flare" in ((d or {}).get("spec") or {}) for d in dag):
        return "legacy"
    if LEGACY_KEYS & keys:
        return "legacy"
    if any(word in name.lower() for name in depots_of(doc) for word in ELSEWHERE):
        return "elsewhere"
    formats = set(re.findall(r"^[\s-]*(?:format|inputType|outputType): (\w+)", text, re.MULTILINE))
    if MESSAGE_STREAM_OPTIONS & keys or any(w in f.lower() for f in formats for w in ELSEWHERE):
        return "elsewhere"  # a Kafka, Pulsar or BigQuery source or sink, whatever its depot is called
    return "current"


def fill_placeholders(docs: list[dict]) -> None:
    """Sets each unset `${VAR}` the templates name to the name in lower case."""
    for doc in docs:
        for name in PLACEHOLDER.findall(yaml.safe_dump(doc)):
            os.environ.setdefault(name, name.lower())


def depot_map(docs: list[dict]) -> dict:
    names = {name for doc in docs for name in depots_of(doc)}
    depots = {}
    for name in sorted(names):
        if any(k in name.lower() for k in ICEBERG):
            depots[name] = {"type": "iceberg"}
        elif any(k in name.lower() for k in JDBC) and "jdbc" in typing.get_args(
            Depot.model_fields["type"].annotation
        ):
            engine = "mysql" if "mysql" in name.lower() else "postgresql"
            depots[name] = {"type": "jdbc", "url": f"jdbc:{engine}://127.0.0.1/{name}"}
        else:
            depots[name] = {"type": "file", "path": f"files/{name}", "format": "parquet"}
    return {"depots": depots}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clone", type=Path, help="a local copy of the DataOS docs repository")
    parser.add_argument("--failures", action="store_true", help="print each failing workflow's problems")
    args = parser.parse_args()
    found = workflows(args.clone / "docs")
    fill_placeholders([d for _, _, d in found])
    apart = Counter(kind(d) for _, _, d in found)
    current = [(page, n, d) for page, n, d in found if kind(d) == "current"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "depots.yaml").write_text(yaml.safe_dump(depot_map([d for _, _, d in current])))
        try:
            depots = load_depots(folder / "depots.yaml")
        except ManifestError as exc:
            print("\n".join(exc.problems), file=sys.stderr)
            return 2
        passed, total = validate(current, folder, depots, args.failures)
    for page in sorted(total):
        print(f"{passed[page]:3d}/{total[page]:<3d} {page}")
    scenario = [p for p in total if "/case_scenario/" in p]
    print(
        f"case scenarios: {sum(passed[p] for p in scenario)}/{sum(total[p] for p in scenario)}; "
        f"all: {sum(passed.values())}/{sum(total.values())}; counted apart: {apart['legacy']} in the "
        f"legacy layout, {apart['elsewhere']} on systems with no depot type here"
    )
    return 0


def validate(
    found: list[tuple[str, int, dict]], folder: Path, depots: typing.Any, show: bool
) -> tuple[Counter[str], Counter[str]]:
    """Workflows passed and in all, by page."""
    passed: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for page, n, doc in found:
        path = folder / f"{Path(page).stem}-{n}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        total[page] += 1
        try:
            load_jobs([path], depots)
            passed[page] += 1
        except ManifestError as exc:
            if show:
                print(f"--- {page} block {n}:")
                print("\n".join("  " + p.replace(str(path), path.name) for p in exc.problems[:6]))
    return passed, total


if __name__ == "__main__":
    sys.exit(main())
