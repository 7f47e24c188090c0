"""Flare workflow manifests for tests and benchmarks, built as dicts and written as YAML.

    doc = workflow("copy", job([{"name": "src", "dataset": "dataos://landing:raw/things"}],
                               [{"name": "result", "sql": "SELECT * FROM src"}],
                               [output("result", "dataos://lakehouse:out/things", "overwrite")]))
    job_of(doc)["outputs"][0]["options"] = {"saveMode": "append"}
    write(folder, doc)

Keys keep the manifest's own spelling (`showPreviewLines=0`, `driver={...}`), so a test reads like the
YAML it stands for. Pure data: nothing here starts Spark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]


def job(
    inputs: list[Doc] | None = None,
    steps: list[Doc] | None = None,
    outputs: list[Doc] | None = None,
    **keys: Any,
) -> Doc:
    """A `job` block: `steps` are the steps of its one sequence; `keys` are the job's other keys
    (actions, assertions, partitions, streaming, ...). Blocks not given are left out."""
    block = dict(keys)
    if inputs is not None:
        block["inputs"] = inputs
    if steps is not None:
        block["steps"] = [{"sequence": steps}]
    if outputs is not None:
        block["outputs"] = outputs
    return block


def output(name: str, dataset: str, save_mode: str | None = None, **keys: Any) -> Doc:
    """An output writing the view `name` to `dataset`; `save_mode` is its options.saveMode, `keys` its
    other keys (format, options, assertions, ...)."""
    block: Doc = {"name": name, "dataset": dataset, **keys}
    if save_mode is not None:
        block["options"] = {"saveMode": save_mode, **keys.get("options", {})}
    return block


def workflow(name: str, job: Doc, dag: str = "load", **stack_spec: Any) -> Doc:
    """A workflow of one DAG node `dag` running `job`; `stack_spec` are the node's other stackSpec keys
    (driver, executor, sparkConf)."""
    return {
        "version": "v1",
        "name": name,
        "type": "workflow",
        "workflow": {"dag": [{"name": dag, "spec": {"stackSpec": {**stack_spec, "job": job}}}]},
    }


def job_of(doc: Doc, node: int = 0) -> Doc:
    """The job block of the workflow's `node`-th DAG node, to change in place."""
    return doc["workflow"]["dag"][node]["spec"]["stackSpec"]["job"]


def write(folder: Path, doc: Doc, name: str | None = None) -> Path:
    """Writes `doc` as `folder/<name>.yaml` (default: the workflow's name), creating the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
