"""Database depots: the depot map's jdbc type, manifests shaped like Flare's Postgres and MySQL
templates, the driver jars, and PostgreSQL and MariaDB servers on loopback read and written through
Dagster."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from flare_assets.catalog import load_catalog
from flare_assets.depots import DepotMap, load_depots
from flare_assets.jars import Jars, MissingDependency, depot_drivers
from flare_assets.settings import Settings
from flare_assets.spec.errors import ManifestError, validate
from flare_assets.spec.loader import load_jobs
from flare_assets_tests.conftest import materialize_command
from flare_assets_tests.manifests import job, job_of, workflow, write
from flare_assets_tests.servers import mariadb, mariadb_available, postgres, postgres_available

PG_JAR = "/usr/share/java/postgresql.jar"
MARIADB_JAR = "/usr/share/java/mariadb-java-client.jar"


def depot_map(folder: Path, **extra: dict) -> Path:
    depots = {
        "lakehouse": {"type": "iceberg"},
        "thirdparty": {"type": "file", "path": "thirdparty", "format": "csv"},
        "pg": {
            "type": "jdbc",
            "engine": "postgresql",
            "host": "127.0.0.1",
            "port": 5432,
            "database": "shop",
            "user_env": "FLARE_TEST_PG_USER",
            "password_env": "FLARE_TEST_PG_PASSWORD",
        },
        "mysqldb": {"type": "jdbc", "engine": "mysql", "url": "jdbc:mariadb://127.0.0.1:3306/shop"},
        **extra,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "depots.yaml"
    path.write_text(yaml.safe_dump({"depots": depots}))
    return path


def job_manifest(name: str, inputs: list, outputs: list, sql: str | None = None) -> dict:
    steps = [{"name": outputs[0]["name"], "sql": sql}] if sql else None
    block = job(inputs, steps, outputs, explain=True, logLevel="INFO")
    block.setdefault("steps", [])
    return workflow(name, block, dag=name)


def _load(folder: Path, docs: dict[str, dict], depots: Path) -> list:
    for name, doc in docs.items():
        write(folder, doc, name)
    return load_jobs([folder], load_depots(depots))


# --- the depot map and manifests: no JVM ----------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("depot", "expected"),
    [
        (
            {"type": "jdbc", "host": "db", "database": "x"},
            "a jdbc depot names its engine (or has a url",
        ),
        ({"type": "jdbc", "engine": "oracle", "host": "db", "database": "x"}, "engine"),
        (
            {"type": "jdbc", "url": "jdbc:oracle:thin:@db:1521/x"},
            "a jdbc depot names its engine (or has a url starting jdbc:ENGINE:); allowed: postgresql, mysql",
        ),
        ({"type": "jdbc", "engine": "postgresql"}, "a jdbc depot has url, or host and database"),
        (
            {"type": "jdbc", "engine": "postgresql", "url": "jdbc:postgresql://db/x?password=hunter2"},
            "url carries credentials; name their env vars with user_env and password_env",
        ),
        (
            {"type": "jdbc", "engine": "postgresql", "host": "db", "database": "x", "user_env": "a-b"},
            "user_env names an environment variable",
        ),
        ({"type": "iceberg", "host": "db"}, "host: go with type jdbc, not iceberg"),
    ],
)
def test_bad_jdbc_depots_are_refused(tmp_path: Path, depot: dict, expected: str) -> None:
    with pytest.raises(ManifestError) as err:
        validate(DepotMap, {"depots": {"db": depot}}, tmp_path / "depots.yaml")
    assert expected in "\n".join(err.value.problems)


@pytest.mark.unit
def test_url_table_and_credentials_come_from_the_depot_map(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    depots = load_depots(depot_map(tmp_path))
    pg, mysql = depots.depots["pg"], depots.depots["mysqldb"]
    assert pg.jdbc_url() == "jdbc:postgresql://127.0.0.1:5432/shop"
    assert pg.jdbc_table("sales", "orders") == "sales.orders"
    assert pg.jdbc_table("none", "city") == "city"  # Flare's `none`: the connection's default schema
    assert mysql.jdbc_table("shop", "order-lines") == "shop.`order-lines`"
    assert mysql.jdbc_url() == "jdbc:mysql://127.0.0.1:3306/shop"  # the scheme of Spark's MySQL dialect
    inferred = validate(DepotMap, {"depots": {"m": {"type": "jdbc", "url": "jdbc:mysql://h/shop"}}}, tmp_path)
    assert inferred.depots["m"].engine == "mysql"  # the url names the engine
    monkeypatch.setenv("FLARE_TEST_PG_USER", "flare")
    monkeypatch.delenv("FLARE_TEST_PG_PASSWORD", raising=False)
    with pytest.raises(ValueError, match=r"depot 'pg' reads its password from \$FLARE_TEST_PG_PASSWORD"):
        pg.jdbc_credentials("pg")
    monkeypatch.setenv("FLARE_TEST_PG_PASSWORD", "pw")
    assert pg.jdbc_credentials("pg") == {"user": "flare", "password": "pw"}


@pytest.mark.unit
def test_flare_database_templates_validate(tmp_path: Path) -> None:
    """The shapes of Flare's Postgres and MySQL read and write templates, with a depot map."""
    (tmp_path / "m" / "city.ddl").parent.mkdir(parents=True)
    (tmp_path / "m" / "city.ddl").write_text("city_id STRING, city_name STRING, state_code STRING")
    csv_input = {"name": "city_connect", "dataset": "dataos://thirdparty:none/city", "format": "csv"}
    csv_input["schemaPath"] = "city.ddl"
    docs = {
        "pg_read": job_manifest(
            "pg-read",
            [
                {
                    "name": "city_connect",
                    "dataset": "dataos://pg:none/city",
                    "options": {"driver": "org.postgresql.Driver"},
                }
            ],
            [
                {
                    "name": "input",
                    "dataset": "dataos://lakehouse:public/pg_copy?acl=rw",
                    "format": "Iceberg",
                    "options": {"saveMode": "overwrite"},
                    "tags": ["Connect"],
                    "title": "Postgres Dataset",
                }
            ],
            "SELECT * FROM city_connect limit 10",
        ),
        "pg_write": job_manifest(
            "pg-write",
            [csv_input],
            [
                {
                    "name": "input",
                    "dataset": "dataos://pg:public/city_copy?acl=rw",
                    "driver": "org.postgresql.Driver",
                    "format": "jdbc",
                    "options": {"saveMode": "overwrite"},
                    "description": "cities in the database",
                }
            ],
            "SELECT * FROM city_connect limit 10",
        ),
        "mysql_read": job_manifest(
            "mysql-read",
            [
                {
                    "name": "city_connect",
                    "dataset": "dataos://mysqldb:shop/city_copy",
                    "options": {"driver": "com.mysql.cj.jdbc.Driver"},
                }
            ],
            [
                {
                    "name": "cities",
                    "dataset": "dataos://lakehouse:smoke/mysql_cities?acl=rw",
                    "format": "Iceberg",
                    "options": {
                        "saveMode": "overwrite",
                        "iceberg": {"properties": {"write.format.default": "parquet"}},
                    },
                }
            ],
            "SELECT * FROM city_connect LIMIT 10",
        ),
        "mysql_write": job_manifest(
            "mysql-write",
            [{**csv_input, "name": "cities_in"}],
            [
                {
                    "name": "cities",
                    "dataset": "dataos://mysqldb:shop/cities?acl=rw",
                    "driver": "com.mysql.cj.jdbc.Driver",
                    "format": "jdbc",
                    "isStream": False,
                    "options": {
                        "saveMode": "overwrite",
                        "extraOptions": {"rewriteBatchedStatements": "true"},
                    },
                }
            ],
            "SELECT * FROM cities_in LIMIT 10",
        ),
    }
    jobs = _load(tmp_path / "m", docs, depot_map(tmp_path))
    assert sorted(lj.manifest.name for lj in jobs) == ["mysql-read", "mysql-write", "pg-read", "pg-write"]
    formats = {i.dataset: i.format for lj in jobs for i in [*lj.dag_job.job.inputs, *lj.dag_job.job.outputs]}
    assert formats["dataos://pg:none/city"] == formats["dataos://mysqldb:shop/city_copy"] == "jdbc"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda i, o: o["options"].update(partitionBy=["state_code"]),
            "outputs[0].options.partitionBy: a jdbc output is written with saveMode append or overwrite only",
        ),
        (
            lambda i, o: o["options"].update(writeAuditPublish=True),
            "outputs[0].options.writeAuditPublish: a jdbc output is written with saveMode append or overwrite",
        ),
        (
            lambda i, o: o.update(driver="com.mysql.cj.jdbc.Driver"),
            "outputs[0].driver: 'com.mysql.cj.jdbc.Driver' is no driver for depot 'pg' (postgresql); "
            "allowed: org.postgresql.Driver",
        ),
        (
            lambda i, o: o.update(format="parquet"),
            "outputs[0].format: got 'parquet' on jdbc depot 'pg'; allowed: jdbc",
        ),
        (
            lambda i, o: i["options"].update(password="hunter2"),
            "inputs[0].options.password: connection and credentials come from the depot map",
        ),
        (
            lambda i, o: i.update(schemaString="id INT"),
            "inputs[0].schemaString: goes with file inputs",
        ),
        (lambda i, o: o.update(isStream=True), "outputs[0].isStream: an output is written by its job"),
        (
            lambda i, o: o.update(dataset="dataos://pg:sales/orders/2024"),
            "outputs[0].dataset: dataos://pg:sales/orders/2024 names a path; a database dataset is schema/table",
        ),
    ],
)
def test_what_a_database_cannot_do_is_refused_at_load(tmp_path: Path, change, expected: str) -> None:  # noqa: ANN001
    source = {"name": "src", "dataset": "dataos://pg:sales/orders", "options": {}}
    target = {"name": "copy", "dataset": "dataos://pg:sales/orders_copy", "options": {"saveMode": "append"}}
    change(source, target)
    doc = job_manifest("copy", [source], [target], "SELECT * FROM src")
    with pytest.raises(ManifestError) as err:
        _load(tmp_path / "m", {"copy": doc}, depot_map(tmp_path))
    problems = "\n".join(err.value.problems)
    assert f"{tmp_path / 'm' / 'copy.yaml'}: workflow.dag[0]" in problems
    assert expected in problems


@pytest.mark.unit
def test_driver_jars_are_found_like_the_catalogs(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("FLARE_DEPOTS", str(depot_map(tmp_path)))
    jars = Jars()
    depot_drivers(Settings.from_env(), jars)
    assert sorted(jars.paths) == [MARIADB_JAR, PG_JAR]  # Debian's libmariadb-java, libpostgresql-jdbc-java
    own = tmp_path / "driver.jar"
    own.write_bytes(b"")
    monkeypatch.setenv("FLARE_DEPOTS", str(depot_map(tmp_path / "own", pg={**_pg(), "jar": str(own)})))
    jars = Jars()
    depot_drivers(Settings.from_env(), jars)
    assert sorted(jars.paths) == sorted([MARIADB_JAR, str(own)])  # the depot's own jar, not Debian's
    missing = {**_pg(), "jar": str(tmp_path / "nope.jar")}
    monkeypatch.setenv("FLARE_DEPOTS", str(depot_map(tmp_path / "missing", pg=missing)))
    with pytest.raises(MissingDependency, match="the jar of depot 'pg' points to .*nope.jar"):
        depot_drivers(Settings.from_env(), Jars())


def _pg(port: int = 5432) -> dict:
    return {
        "type": "jdbc",
        "engine": "postgresql",
        "host": "127.0.0.1",
        "port": port,
        "database": "shop",
        "user_env": "FLARE_TEST_PG_USER",
        "password_env": "FLARE_TEST_PG_PASSWORD",
    }


# --- a PostgreSQL server on loopback ---------------------------------------------------------------

PASSWORD = "pw-not-to-be-shown-7f3a"


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL server binaries missing")
def test_postgres_tables_read_and_written_through_dagster(
    settings: Settings, flare_home: Path, tmp_path: Path
) -> None:
    import psycopg2

    with postgres(["shop"]) as pg:
        conn = psycopg2.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname="shop")
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE ROLE flare LOGIN PASSWORD %s", (PASSWORD,))
        cur.execute("CREATE SCHEMA sales AUTHORIZATION flare")
        cur.execute("GRANT CREATE ON SCHEMA public TO flare")
        cur.execute("CREATE TABLE sales.orders (id INT, item TEXT, amount NUMERIC(10,2))")
        cur.execute(
            "INSERT INTO sales.orders VALUES (1, 'tea', 4.50), (2, 'coffee', 12.00), (3, 'cake', 18.25),"
            " (4, 'scone', 3.10)"
        )
        cur.execute("ALTER TABLE sales.orders OWNER TO flare")
        depots = depot_map(tmp_path, pg=_pg(pg.port))
        read = job_manifest(
            "pg-read",
            [
                {
                    "name": "orders",
                    "dataset": "dataos://pg:sales/orders",
                    "options": {"driver": "org.postgresql.Driver", "fetchsize": 100},
                    "query": "SELECT id, item, CAST(amount AS DOUBLE) AS amount FROM orders WHERE amount > 4",
                }
            ],
            [
                {
                    "name": "orders",
                    "dataset": "dataos://lakehouse:pgcopy/orders",
                    "options": {"saveMode": "overwrite"},
                }
            ],
        )
        write = job_manifest(
            "pg-write",
            [{"name": "copied", "dataset": "dataos://lakehouse:pgcopy/orders"}],
            [
                {
                    "name": "big",
                    "dataset": "dataos://pg:sales/big_orders?acl=rw",
                    "driver": "org.postgresql.Driver",
                    "format": "jdbc",
                    "options": {"saveMode": "overwrite"},
                },
                {
                    "name": "log",
                    "dataset": "dataos://pg:none/order_log",
                    "format": "jdbc",
                    "options": {"saveMode": "append"},
                },
            ],
            "SELECT id, item, amount * 2 AS doubled FROM copied",
        )
        write_job = job_of(write)
        write_job["steps"][0]["sequence"].append({"name": "log", "sql": "SELECT count(*) AS n FROM copied"})
        pipelines = tmp_path / "pipelines"
        _load(pipelines, {"read": read, "write": write}, depots)
        env = {
            **os.environ,
            "FLARE_PIPELINES": str(pipelines),
            "FLARE_DEPOTS": str(depots),
            "DAGSTER_HOME": str(tmp_path / "dagster"),
            "FLARE_TEST_PG_USER": "flare",
            "FLARE_TEST_PG_PASSWORD": PASSWORD,
        }
        (tmp_path / "dagster").mkdir()
        cmd = materialize_command("lakehouse/pgcopy/orders,pg/sales/big_orders,pg/none/order_log")
        for _ in range(2):  # the second run replaces big_orders and appends to order_log again
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-3000:]
            assert PASSWORD not in done.stdout + done.stderr

        copied = load_catalog(settings=settings).load_table("pgcopy.orders").scan().to_arrow().to_pylist()
        assert sorted((r["id"], r["item"], r["amount"]) for r in copied) == [
            (1, "tea", 4.5),
            (2, "coffee", 12.0),
            (3, "cake", 18.25),
        ]
        cur.execute("SELECT id, item, doubled FROM sales.big_orders ORDER BY id")
        assert cur.fetchall() == [(1, "tea", 9.0), (2, "coffee", 24.0), (3, "cake", 36.5)]
        cur.execute("SELECT n FROM public.order_log")
        assert cur.fetchall() == [(3,), (3,)]
        cur.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'big_orders'")
        assert cur.fetchall() == [("flare",)]  # written as the depot map's user
        conn.close()

        from dagster import AssetKey, DagsterInstance

        with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
            event = instance.get_latest_materialization_event(AssetKey(["pg", "sales", "big_orders"]))
            meta = event.asset_materialization.metadata
            assert meta["target"].value == "pg:sales.big_orders" and meta["rows_written"].value == 3
            shown = " ".join(str(v.value) for v in meta.values())
            assert PASSWORD not in shown and "jdbc:postgresql" not in shown


@pytest.mark.skipif(not mariadb_available(), reason="MariaDB server binaries missing")
def test_mysql_depot_with_mariadbs_driver(settings: Settings, flare_home: Path, tmp_path: Path) -> None:
    """Flare's MySQL template shape (MySQL's driver class named, rewriteBatchedStatements) on a
    MariaDB server, which speaks MySQL's protocol, through Debian's MariaDB driver."""
    with mariadb(["shop"]) as db:
        for host in ("localhost", "%"):  # localhost too, or the anonymous local user matches first
            db.sql(f"CREATE USER 'flare'@'{host}' IDENTIFIED BY '{PASSWORD}'")
            db.sql(f"GRANT ALL ON shop.* TO 'flare'@'{host}'")
        db.sql("CREATE TABLE cities (city_id INT, city_name VARCHAR(40), state_code CHAR(2))", "shop")
        db.sql(
            "INSERT INTO cities VALUES (1, 'Prattville', 'AL'), (2, 'Mobile', 'AL'), (3, 'Atlanta', 'GA')",
            "shop",
        )
        mysql = {
            "type": "jdbc",
            "engine": "mysql",
            "host": "127.0.0.1",
            "port": db.port,
            "database": "shop",
            "user_env": "FLARE_TEST_MYSQL_USER",
            "password_env": "FLARE_TEST_MYSQL_PASSWORD",
        }
        depots = depot_map(tmp_path, mysqldb=mysql)
        doc = job_manifest(
            "mysql-copy",
            [
                {
                    "name": "city_connect",
                    "dataset": "dataos://mysqldb:shop/cities",
                    "options": {"driver": "com.mysql.cj.jdbc.Driver"},
                }
            ],
            [
                {
                    "name": "cities",
                    "dataset": "dataos://mysqldb:shop/alabama?acl=rw",
                    "driver": "com.mysql.cj.jdbc.Driver",
                    "format": "jdbc",
                    "isStream": False,
                    "options": {
                        "saveMode": "overwrite",
                        "extraOptions": {"rewriteBatchedStatements": "true"},
                    },
                }
            ],
            "SELECT city_id, upper(city_name) AS city_name FROM city_connect WHERE state_code = 'AL'",
        )
        pipelines = tmp_path / "pipelines"
        _load(pipelines, {"copy": doc}, depots)
        (tmp_path / "dagster").mkdir()
        env = {
            **os.environ,
            "FLARE_PIPELINES": str(pipelines),
            "FLARE_DEPOTS": str(depots),
            "DAGSTER_HOME": str(tmp_path / "dagster"),
            "FLARE_TEST_MYSQL_USER": "flare",
            "FLARE_TEST_MYSQL_PASSWORD": PASSWORD,
        }
        cmd = materialize_command("mysqldb/shop/alabama")
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        assert PASSWORD not in done.stdout + done.stderr
        assert db.sql("SELECT city_id, city_name FROM alabama ORDER BY city_id", "shop") == [
            ["1", "PRATTVILLE"],
            ["2", "MOBILE"],
        ]
