"""What a manifest may ask of a dataset on a jdbc depot: a table read whole (an input `query` runs
over it) or written with append or overwrite. Connection and credentials belong to the depot map."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flare_assets.spec.loader import LoadedJob
    from flare_assets.spec.model import Input, Output

CONNECTION_KEYS = ("url", "user", "password")


def _driver(where: str, driver: Any, depot: Any, name: str) -> list[str]:
    allowed = {depot.driver or depot.jdbc.driver, *depot.jdbc.aliases}
    if driver is None or driver in allowed:
        return []
    return [
        f"{where}: {driver!r} is no driver for depot {name!r} ({depot.engine}); "
        f"allowed: {', '.join(sorted(allowed))}"
    ]


def _connection(where: str, options: dict[str, Any]) -> list[str]:
    given = sorted(k for k in options if k.lower() in CONNECTION_KEYS)
    if not given:
        return []
    return [
        f"{where}.{given[0]}: connection and credentials come from the depot map (url, host, user_env, "
        "password_env), never from the manifest"
    ]


def _one_table(where: str, address: Any) -> list[str]:
    if not address.is_path:
        return []
    return [f"{where}.dataset: {address} names a path; a database dataset is schema/table"]


def check_jdbc(jobs: list[LoadedJob], depots: Any) -> list[str]:
    """Inputs and outputs on jdbc depots: one table each, read or written through the depot's driver."""
    if not depots:
        return []
    problems: list[str] = []
    for lj in jobs:
        job = lj.dag_job.job
        for i, item in enumerate(job.inputs):
            depot = depots.depots.get(item.address.depot)
            if depot is not None and depot.type == "jdbc":
                problems += _check_input(lj.where(f"inputs[{i}]"), item, depot)
        for i, output in enumerate(job.outputs):
            depot = depots.depots.get(output.address.depot)
            if depot is not None and depot.type == "jdbc":
                problems += _check_output(lj.where(f"outputs[{i}]"), output, depot)
    return problems


def _check_input(where: str, item: Input, depot: Any) -> list[str]:
    problems = _one_table(where, item.address)
    item.format = item.format or "jdbc"  # the asset's kind
    if item.format.lower() != "jdbc":
        problems.append(
            f"{where}.format: got {item.format!r} on jdbc depot {item.address.depot!r}; allowed: jdbc"
        )
    problems += _driver(f"{where}.options.driver", item.options.get("driver"), depot, item.address.depot)
    problems += _connection(f"{where}.options", item.options)
    for key, value in (
        ("schemaPath", item.schema_path),
        ("schemaString", item.schema_string),
        ("incrementalRead", item.incremental_read),
    ):
        if value is not None:
            problems.append(
                f"{where}.{key}: goes with file inputs; a table's schema and rows come from the database"
            )
    if item.is_stream:
        problems.append(
            f"{where}.isStream: a database table is read as a batch; streams read files or Iceberg tables"
        )
    return problems


def _check_output(where: str, output: Output, depot: Any) -> list[str]:
    problems = _one_table(where, output.address)
    if "format" not in output.model_fields_set:
        output.format = "jdbc"
    elif output.format != "jdbc":
        problems.append(
            f"{where}.format: got {output.format!r} on jdbc depot {output.address.depot!r}; allowed: jdbc"
        )
    name, options = output.address.depot, output.options
    problems += _driver(f"{where}.driver", output.driver, depot, name)
    problems += _driver(
        f"{where}.options.extraOptions.driver", options.extra_options.get("driver"), depot, name
    )
    problems += _connection(f"{where}.options.extraOptions", options.extra_options)
    refused = {
        "partitionBy": options.partition_by,
        "iceberg": options.iceberg,
        "merge": options.merge,
        "sort": options.sort,
        "writeAuditPublish": options.write_audit_publish,
        "extraOptions.branch": options.branch,
        "extraOptions.commitBy": options.commit_by,
    }
    problems += [
        f"{where}.options.{key}: a jdbc output is written with saveMode append or overwrite only"
        for key, value in refused.items()
        if value is not None
    ]
    problems += [
        f"{where}.{key}: goes with Iceberg and file outputs, not database tables"
        for key, value in (("housekeeping", output.housekeeping), ("maintenance", output.maintenance))
        if value is not None
    ]
    return problems
