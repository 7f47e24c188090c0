"""The Iceberg catalog opened with pyiceberg: metadata and data reads with no JVM.

JDBC catalogs (the embedded SQLite file, or PostgreSQL) are opened with SqlCatalog on the very
database Spark's JdbcCatalog uses; REST catalogs with RestCatalog on the same URI. The embedded
default is Iceberg's JDBC catalog schema in a SQLite file under FLARE_HOME. pyiceberg's
SqlCatalog creates that schema (v1, with views); Spark's JdbcCatalog is told not to, because its
table-creation check leaves a DatabaseMetaData result set open on a pooled connection, which holds a
SQLite read lock for the life of the process and turns every other process's commit into
SQLITE_BUSY. See docs/operations.md, "Embedded catalog".
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlsplit

from flare_assets.settings import Settings, writable_folder

if TYPE_CHECKING:  # pyiceberg is imported when a catalog is opened: run processes rarely need it
    from pyiceberg.catalog import Catalog


def sqlalchemy_uri(settings: Settings) -> str:
    """The JDBC URI of the catalog database as SQLAlchemy's, so pyiceberg opens the same database."""
    uri = settings.catalog_uri
    if settings.catalog_kind == "sqlite":
        return "sqlite:///" + uri.removeprefix("jdbc:sqlite:")
    if settings.catalog_kind == "postgresql":
        parts = urlsplit(uri.removeprefix("jdbc:"))
        params = dict(parse_qsl(parts.query))
        user = settings.catalog_user or params.get("user")
        password = settings.catalog_password or params.get("password")
        auth = f"{quote(user or '')}{':' + quote(password) if password else ''}@" if user else ""
        return f"postgresql+psycopg2://{auth}{parts.netloc}{parts.path}"
    raise ValueError(f"{uri!r} is not a JDBC catalog URI")


def default_catalog_name(settings: Settings) -> str:
    from flare_assets.depots import load_depots

    return load_depots(settings.depots).default_lakehouse


def load_catalog(name: str | None = None, settings: Settings | None = None) -> Catalog:
    """The pyiceberg catalog behind the lakehouse depot `name` (default: the first iceberg depot)."""
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.catalog.sql import SqlCatalog

    settings = settings or Settings.from_env()
    name = name or default_catalog_name(settings)
    if settings.embedded_catalog:
        folder = settings.sqlite_path.parent
        writable_folder(folder, "FLARE_HOME" if folder == settings.home else "the catalog's folder")
    if settings.catalog_kind == "rest":
        return RestCatalog(
            name, uri=settings.catalog_uri, warehouse=settings.warehouse, **settings.catalog_properties
        )
    for attempt in range(5):
        try:
            return SqlCatalog(name, uri=sqlalchemy_uri(settings), warehouse=_warehouse_uri(settings))
        except Exception as exc:  # two processes creating the schema at once: the loser retries
            if "already exists" not in str(exc) and "locked" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def table_exists(table: str, settings: Settings | None = None) -> bool:
    """Whether `depot.namespace.table` exists in its catalog (metadata only, no JVM)."""
    depot, ident = table.split(".", 1)
    settings = settings or Settings.from_env()
    if settings.embedded_catalog and not settings.sqlite_path.exists():
        return False  # no catalog yet: nothing exists, and looking must not create one
    return load_catalog(depot, settings).table_exists(ident)


def _warehouse_uri(settings: Settings) -> str:
    wh = settings.warehouse
    return wh if "://" in wh else "file://" + wh


def ensure_catalog(settings: Settings, name: str | None = None) -> None:
    """Create the JDBC catalog schema before any JVM opens it (see the module docstring)."""
    if settings.catalog_kind == "sqlite" and _sqlite_schema_ready(settings):
        return
    if settings.catalog_kind != "rest":
        load_catalog(name, settings)


def _sqlite_schema_ready(settings: Settings) -> bool:
    """The embedded catalog's v1 schema (tables with `iceberg_type`) is there: a stdlib check that
    spares a run process importing pyiceberg."""
    if not settings.sqlite_path.exists():
        return False
    db = sqlite3.connect(f"file:{settings.sqlite_path}?mode=ro", uri=True, timeout=5)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {r[1] for r in db.execute("PRAGMA table_info(iceberg_tables)")}
    except sqlite3.Error:
        return False
    finally:
        db.close()
    return {"iceberg_tables", "iceberg_namespace_properties"} <= tables and "iceberg_type" in columns
