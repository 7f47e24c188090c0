"""The FlareWorkflows component: YAML attributes, translation, and two instances with their own depot
maps and homes in one code location, each materialized by Spark and read back."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, AssetSpec, Definitions, build_defs_for_component, load_defs, materialize

from flare_assets.defs.component import FlareAsset, FlareTranslator, FlareWorkflows
from flare_assets.spec.errors import ManifestError
from flare_assets_tests.conftest import failure_message, shared_spark, table_rows

MANIFEST = """
version: v1
name: {name}
type: workflow
owner: sales
workflow:
  dag:
    - name: load
      spec:
        stackSpec:
          job:
            inputs:
              - name: orders
                dataset: dataos://{landing}:raw/orders
                format: json
            steps:
              - sequence:
                  - name: orders_out
                    sql: SELECT id, amount * {factor} AS amount FROM orders
            outputs:
              - name: orders_out
                dataset: dataos://{lake}:shop/orders
                options:
                  saveMode: overwrite
"""


def _instance(root: Path, name: str, lake: str, landing: str, factor: int) -> dict:
    """A manifest folder, landed rows and the attributes of one instance (own home, own depots)."""
    folder = root / name
    (folder / "pipelines").mkdir(parents=True)
    text = MANIFEST.format(name=f"shop-{name}", lake=lake, landing=landing, factor=factor)
    (folder / "pipelines" / "shop.yaml").write_text(text)
    rows = folder / "home" / "in" / "raw" / "orders"
    rows.mkdir(parents=True)
    (rows / "part-1.json").write_text("\n".join(json.dumps({"id": i, "amount": i * 10}) for i in (1, 2)))
    return {
        "manifests": [str(folder / "pipelines")],
        "depots": {lake: {"type": "iceberg"}, landing: {"type": "file", "path": "in", "format": "json"}},
        "settings": {"home": str(folder / "home")},
    }


def test_two_instances_in_one_code_location(flare_home: Path, tmp_path: Path) -> None:
    a = FlareWorkflows.resolve_from_dict(_instance(tmp_path, "a", "lakehouse", "landing", 2))
    b = FlareWorkflows.resolve_from_dict({**_instance(tmp_path, "b", "vault", "drop", 3), "name": "b"})
    defs = Definitions.merge(build_defs_for_component(a), build_defs_for_component(b))
    repo = defs.get_repository_def()
    assert {s.name for s in repo.sensor_defs} >= {"flare_table_health", "b_table_health", "flare_dead_runs"}
    assert {"flare_maintenance", "b_maintenance", "b_maintenance__compaction"} <= {
        j.name for j in repo.get_all_jobs()
    } | {s.name for s in repo.schedule_defs}
    keys = [AssetKey(["lakehouse", "shop", "orders"]), AssetKey(["vault", "shop", "orders"])]
    result = materialize(
        [*(defs.assets or [])], resources={"spark": shared_spark()}, selection=keys, raise_on_error=False
    )
    assert result.success, failure_message(result)
    settings_a = a.resolve_settings(tmp_path)
    settings_b = b.resolve_settings(tmp_path)
    assert settings_a.home != settings_b.home
    assert table_rows(settings_a, "shop.orders") == [(1, 20), (2, 40)]
    assert table_rows(settings_b, "shop.orders") == [(1, 30), (2, 60)]


def test_yaml_translation_and_translator(flare_home: Path, tmp_path: Path) -> None:
    attributes = _instance(tmp_path, "t", "lakehouse", "landing", 1)
    attributes["translation"] = {
        "group_name": "flare_{{ workflow }}",
        "tags": {"flare_job": "{{ job }}"},
        "owners": ["team:lake"],
    }
    attributes["translator"] = f"{__name__}.Described"
    component = FlareWorkflows.resolve_from_dict(attributes)
    defs = build_defs_for_component(component)
    spec = defs.resolve_asset_graph().get(AssetKey(["lakehouse", "shop", "orders"]))
    assert spec.group_name == "flare_shop_t"
    assert spec.tags["flare_job"] == "load"
    assert "team:lake" in spec.owners
    assert spec.description == "orders of shop_t (load)"
    assert {"spark", "iceberg"} <= set(spec.kinds)


class Described(FlareTranslator):
    def get_asset_spec(self, asset: FlareAsset, spec: AssetSpec) -> AssetSpec:
        return spec.replace_attributes(description=f"orders of {asset.workflow} ({asset.job})")


def test_a_key_prefix_renames_the_assets_everywhere(flare_home: Path, tmp_path: Path) -> None:
    attributes = {
        **_instance(tmp_path, "k", "lakehouse", "landing", 3),
        "translation": {"key_prefix": "sales"},
    }
    component = FlareWorkflows.resolve_from_dict(attributes)
    defs = build_defs_for_component(component)
    graph = defs.resolve_asset_graph()
    table, source = (
        AssetKey(["sales", "lakehouse", "shop", "orders"]),
        AssetKey(["sales", "landing", "raw", "orders"]),
    )
    assert {table, source} <= set(graph.get_all_asset_keys())
    assert AssetKey(["lakehouse", "shop", "orders"]) not in graph.get_all_asset_keys()
    assert source in graph.get(table).parent_keys  # lineage follows the renamed keys
    (maintained,) = defs.get_sensor_def("flare_table_health").jobs
    assert maintained.name == "flare_maintenance"  # its tables' observations name the new key
    result = materialize(
        [*(defs.assets or [])], resources={"spark": shared_spark()}, selection=[table], raise_on_error=False
    )
    assert result.success, failure_message(result)
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == table
    assert table_rows(component.resolve_settings(tmp_path), "shop.orders") == [(1, 30), (2, 60)]


def test_a_broken_manifests_asset_keeps_its_key(flare_home: Path, tmp_path: Path) -> None:
    attributes = {**_instance(tmp_path, "b", "lakehouse", "landing", 1), "translation": {"key_prefix": "x"}}
    (tmp_path / "b" / "pipelines" / "bad.yaml").write_text("version: v1\nname: bad\ntype: workflow\n")
    with pytest.raises(ManifestError, match="only datasets' keys can be renamed"):
        build_defs_for_component(FlareWorkflows.resolve_from_dict(attributes))


def test_defs_yaml_with_relative_paths(flare_home: Path, tmp_path: Path) -> None:
    """A defs folder as `dg` loads it: type + attributes, paths relative to the defs.yaml folder."""
    attributes = _instance(tmp_path / "proj" / "proj_defs", "flows", "lakehouse", "landing", 1)
    attributes["manifests"] = ["pipelines/*.yaml"]
    (tmp_path / "proj" / "proj_defs" / "flows" / "depots.yaml").write_text(
        yaml.safe_dump({"depots": attributes["depots"]})
    )
    defs_yaml = {"type": "flare_assets.FlareWorkflows", "attributes": {**attributes, "depots": "depots.yaml"}}
    (tmp_path / "proj" / "proj_defs" / "flows" / "defs.yaml").write_text(yaml.safe_dump(defs_yaml))
    (tmp_path / "proj" / "proj_defs" / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path / "proj"))
    try:
        import proj_defs  # type: ignore[import-not-found]

        defs = load_defs(proj_defs, project_root=tmp_path / "proj")
    finally:
        sys.path.remove(str(tmp_path / "proj"))
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert AssetKey(["lakehouse", "shop", "orders"]) in keys
    assert AssetKey(["landing", "raw", "orders"]) in keys


def test_settings_overrides_derive_like_the_environment(flare_home: Path, tmp_path: Path) -> None:
    """A relative home is under the defs.yaml folder, and the catalog and warehouse follow it unless set;
    templated conf values become Spark's strings."""
    component = FlareWorkflows.resolve_from_dict(
        {"settings": {"home": "state", "strict": True, "spark_conf": {"spark.x": 8, "spark.y": True}}}
    )
    settings = component.resolve_settings(tmp_path)
    assert settings.home == tmp_path / "state"
    assert settings.catalog_uri == f"jdbc:sqlite:{tmp_path / 'state' / 'catalog.db'}"
    assert settings.warehouse == str(tmp_path / "state" / "warehouse")
    assert (
        settings.strict and settings.spark_conf["spark.x"] == "8" and settings.spark_conf["spark.y"] == "true"
    )
    assert settings.pipelines.name == "pipelines" and settings.depots.name == "depots.yaml"  # the env's
