"""Config classes given to ops as a schema inferred once (defs/config.py) behave as Dagster's own
`config: Cls` argument: same schema, same defaults, the same Config object in the op. No Spark."""

from typing import Any

import pytest
from dagster import Config, OpExecutionContext, job, op

from flare_assets.defs.assets import RunStateConfig
from flare_assets.defs.config import config_fields, config_schema, op_config
from flare_assets.defs.jobs import HousekeepingConfig
from flare_assets.defs.maintenance import MaintenanceConfig
from flare_assets.defs.stream_assets import StreamRunConfig

CASES = [
    (RunStateConfig, {}),
    (RunStateConfig, {"reset_state": True, "state": {"orders.id": "7"}}),
    (MaintenanceConfig, {}),
    (MaintenanceConfig, {"kinds": ["expiry"], "delete_where": "id < 3", "dry_run": True}),
    (MaintenanceConfig, {"tables": ["lakehouse.shop.a", "dataos://lakehouse:shop/b"], "targeted": True}),
    (HousekeepingConfig, {}),
    (StreamRunConfig, {}),
]


def run_both(cls: type[Config], given: dict[str, Any]) -> tuple[Config, Config]:
    seen: dict[str, Config] = {}

    @op(name="annotated")
    def annotated(config: cls) -> None:  # type: ignore[valid-type]
        seen["annotated"] = config

    @op(name="shared", config_schema=config_schema(cls))
    def shared(context: OpExecutionContext) -> None:
        seen["shared"] = op_config(cls, context)

    @op(name="fields", config_schema=config_fields(cls))  # as @multi_asset takes it
    def fields(context: OpExecutionContext) -> None:
        seen["fields"] = op_config(cls, context)

    @job
    def both() -> None:
        annotated()
        shared()
        fields()

    key = annotated.config_schema.config_type.key
    assert shared.config_schema.config_type.key == key == fields.config_schema.config_type.key
    ops = {name: {"config": given} for name in ("annotated", "shared", "fields")}
    assert both.execute_in_process(run_config={"ops": ops}).success
    assert seen["fields"].model_dump() == seen["shared"].model_dump()
    return seen["annotated"], seen["shared"]


@pytest.mark.parametrize(("cls", "given"), CASES)
def test_shared_schema_gives_the_config_dagster_gives(cls: type[Config], given: dict[str, Any]) -> None:
    annotated, shared = run_both(cls, given)
    assert type(shared) is type(annotated)
    assert shared.model_dump() == annotated.model_dump()
