"""Servers the scale-out tests start on loopback and stop: PostgreSQL from Debian's packages and a
Spark standalone master with workers from the pyspark installation."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyspark


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def postgres_available() -> bool:
    return _pg_bin() is not None


@dataclass
class Postgres:
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def jdbc(self, database: str) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{database}"


@contextmanager
def postgres(databases: list[str]) -> Iterator[Postgres]:
    """A throwaway cluster (trust auth, loopback only); as root it runs as the postgres user."""
    pg_bin = _pg_bin()
    assert pg_bin is not None, "PostgreSQL server binaries missing: apt-get install postgresql"
    root = Path(tempfile.mkdtemp(prefix="flare-pg-", dir="/tmp"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data, log = root / "data", root / "server.log"

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)

    run(str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(pg_bin / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "start")
    try:
        for db in databases:
            run(str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", db)
        yield Postgres(port)
    finally:
        subprocess.run(
            [*as_user, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class SparkCluster:
    master_url: str
    ui_port: int
    work_dirs: list[Path]

    def state(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as resp:
            return json.loads(resp.read())


@contextmanager
def spark_standalone(
    root: Path, workers: int = 2, cores: int = 1, memory: str = "1500m"
) -> Iterator[SparkCluster]:
    """A master and `workers` workers, each its own JVM, bound to 127.0.0.1."""
    root.mkdir(parents=True, exist_ok=True)
    home = Path(pyspark.__file__).resolve().parent
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1"}
    port, ui = free_port(), free_port()
    spark_class = str(home / "bin" / "spark-class")
    procs = [
        subprocess.Popen(
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(ui),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(root / "master.log").open("w"),
        )
    ]
    cluster = SparkCluster(f"spark://127.0.0.1:{port}", ui, [root / f"worker-{i}" for i in range(workers)])
    try:
        for i, work in enumerate(cluster.work_dirs):
            work.mkdir(parents=True)
            procs.append(
                subprocess.Popen(
                    [
                        spark_class,
                        "org.apache.spark.deploy.worker.Worker",
                        cluster.master_url,
                        "--host",
                        "127.0.0.1",
                        "--cores",
                        str(cores),
                        "--memory",
                        memory,
                        "--webui-port",
                        str(free_port()),
                        "--work-dir",
                        str(work),
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=(root / f"worker-{i}.log").open("w"),
                )
            )
        deadline = time.monotonic() + 90
        while True:
            try:
                if cluster.state().get("aliveworkers") == workers:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Spark standalone cluster did not start; see {root}/*.log")
            time.sleep(0.5)
        yield cluster
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _mariadb_bins() -> tuple[str, str, str] | None:
    """mariadbd, mariadb-install-db and the mariadb client, when Debian's mariadb-server is installed."""
    server = shutil.which("mariadbd") or next((p for p in ("/usr/sbin/mariadbd",) if Path(p).exists()), None)
    install, client = shutil.which("mariadb-install-db"), shutil.which("mariadb")
    return (server, install, client) if server and install and client else None


def mariadb_available() -> bool:
    return _mariadb_bins() is not None


@dataclass
class MariaDB:
    port: int
    socket: Path
    client: str

    def sql(self, statement: str, database: str = "") -> list[list[str]]:
        """Runs SQL as root over the server's socket; the rows as tab-separated fields."""
        cmd = [self.client, "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-B", "-e", statement]
        done = subprocess.run(
            [*cmd, *([database] if database else [])], check=True, capture_output=True, text=True
        )
        return [line.split("\t") for line in done.stdout.splitlines()]


@contextmanager
def mariadb(databases: list[str]) -> Iterator[MariaDB]:
    """A throwaway MariaDB server (MySQL's protocol) on loopback, root reachable over its socket only."""
    bins = _mariadb_bins()
    assert bins is not None, "MariaDB server binaries missing: apt-get install mariadb-server"
    server, install, client = bins
    root = Path(tempfile.mkdtemp(prefix="flare-mariadb-", dir="/tmp"))
    user = ["--user=mysql"] if os.geteuid() == 0 else []
    if user:
        shutil.chown(root, "mysql", "mysql")
    data, sock, port = root / "data", root / "mysqld.sock", free_port()
    subprocess.run(
        [install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=socket", *user],
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [
            server,
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={root / 'mysqld.pid'}",
            f"--log-error={root / 'error.log'}",
            *user,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        db = MariaDB(port, sock, client)
        deadline = time.time() + 60
        while True:
            try:
                db.sql("SELECT 1")
                break
            except subprocess.CalledProcessError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        for name in databases:
            db.sql(f"CREATE DATABASE `{name}`")
        yield db
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)
