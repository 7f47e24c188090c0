"""Catalog settings: one URI gives Spark and pyiceberg the same catalog (JDBC or REST)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from flare_assets.catalog import load_catalog, sqlalchemy_uri
from flare_assets.depots import load_depots
from flare_assets.settings import Settings
from flare_assets.spark import catalog_conf
from flare_assets_tests.conftest import DEMO_DEPOTS


def test_postgres_uri_for_spark_and_pyiceberg() -> None:
    settings = Settings.from_env(
        {
            "FLARE_CATALOG_URI": "jdbc:postgresql://db.internal:5433/iceberg",
            "FLARE_CATALOG_USER": "flare",
            "FLARE_CATALOG_PASSWORD": "p@ss word",
            "FLARE_WAREHOUSE": "s3a://bucket/warehouse",
        }
    )
    assert settings.catalog_kind == "postgresql"
    assert sqlalchemy_uri(settings) == "postgresql+psycopg2://flare:p%40ss%20word@db.internal:5433/iceberg"
    conf = catalog_conf(settings, load_depots(DEMO_DEPOTS))
    assert conf["spark.sql.catalog.lakehouse.type"] == "jdbc"
    assert conf["spark.sql.catalog.lakehouse.uri"] == "jdbc:postgresql://db.internal:5433/iceberg"
    assert conf["spark.sql.catalog.lakehouse.jdbc.user"] == "flare"
    assert conf["spark.sql.catalog.lakehouse.warehouse"] == "s3a://bucket/warehouse"


@pytest.mark.unit
def test_unknown_catalog_uri_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="FLARE_CATALOG_URI='thrift://x': allowed: jdbc:sqlite:PATH"):
        _ = Settings.from_env({"FLARE_CATALOG_URI": "thrift://x"}).catalog_kind


@pytest.fixture
def rest_server() -> Iterator[tuple[str, list[str]]]:
    """A stand-in REST catalog answering the two calls opening a catalog and listing namespaces make."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(f"{self.path} {self.headers.get('Authorization', '')}")
            body = (
                {"defaults": {}, "overrides": {}}
                if self.path.startswith("/v1/config")
                else {"namespaces": [["retail"]]}
            )
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()


def test_rest_catalog_from_the_same_settings(rest_server: tuple[str, list[str]]) -> None:
    uri, seen = rest_server
    settings = Settings.from_env(
        {
            "FLARE_CATALOG_URI": uri,
            "FLARE_WAREHOUSE": "prod",
            "FLARE_CATALOG_PROPERTIES": "token=s3cret",
            "FLARE_DEPOTS": str(DEMO_DEPOTS),
        }
    )
    conf = catalog_conf(settings, load_depots(DEMO_DEPOTS))
    assert conf["spark.sql.catalog.lakehouse.type"] == "rest"
    assert conf["spark.sql.catalog.lakehouse.uri"] == uri
    assert conf["spark.sql.catalog.lakehouse.token"] == "s3cret"
    assert "spark.sql.catalog.lakehouse.jdbc.init-catalog-tables" not in conf
    catalog = load_catalog(settings=settings)
    assert catalog.list_namespaces() == [("retail",)]
    assert seen[0].startswith("/v1/config?warehouse=prod") and seen[-1] == "/v1/namespaces Bearer s3cret"
