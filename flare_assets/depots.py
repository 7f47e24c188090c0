"""The depot map: `dataos://depot:collection/dataset` -> an Iceberg table, a folder of files, or a
table of a database reached through JDBC."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flare_assets.spec.address import Address, parse_address
from flare_assets.spec.errors import ManifestError, load_yaml, validate

__all__ = ["Address", "Depot", "DepotMap", "load_depots", "parse_address"]

FILE_FORMATS = ("csv", "json", "parquet", "orc", "text", "avro")


@dataclass(frozen=True)
class JdbcEngine:
    """What flare_assets knows of one database: its driver class, the driver jar's Debian package and
    paths, Maven coordinates, URL scheme, default port, and the driver classes manifests may name."""

    driver: str
    deb: str
    jars: tuple[str, ...]
    maven: str
    scheme: str
    port: int
    quote: str
    aliases: tuple[str, ...]


POSTGRES = JdbcEngine(
    driver="org.postgresql.Driver",
    deb="libpostgresql-jdbc-java",
    jars=("/usr/share/java/postgresql.jar",),
    maven="org.postgresql:postgresql:42.7.4",
    scheme="postgresql",
    port=5432,
    quote='"',
    aliases=("org.postgresql.Driver",),
)
# MySQL servers are reached with MariaDB's driver, the one Debian packages; its 2.x versions take
# jdbc:mysql: URLs, the scheme by which Spark picks its MySQL dialect (backquoted identifiers)
MARIADB = JdbcEngine(
    driver="org.mariadb.jdbc.Driver",
    deb="libmariadb-java",
    jars=("/usr/share/java/mariadb-java-client.jar",),
    maven="org.mariadb.jdbc:mariadb-java-client:2.7.6",
    scheme="mysql",
    port=3306,
    quote="`",
    aliases=("org.mariadb.jdbc.Driver", "com.mysql.cj.jdbc.Driver", "com.mysql.jdbc.Driver"),
)
JDBC_ENGINES = {"postgresql": POSTGRES, "mysql": MARIADB, "mariadb": MARIADB}
JDBC_KEYS = ("engine", "url", "host", "port", "database", "user_env", "password_env", "driver", "jar")
# the collection of a database dataset that means "the connection's default schema"
DEFAULT_SCHEMA = "none"


class Depot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["iceberg", "file", "jdbc"]
    path: str | None = Field(
        default=None,
        description="file depots: the root folder (relative: under FLARE_HOME)",
    )
    format: Literal["csv", "json", "parquet", "orc", "text", "avro"] | None = None
    options: dict[str, str | int | bool] = Field(default_factory=dict)
    description: str | None = None
    engine: Literal["postgresql", "mysql", "mariadb"] | None = Field(
        default=None, description="jdbc depots: the database"
    )
    url: str | None = Field(
        default=None, description="jdbc depots: the JDBC URL, instead of host/port/database"
    )
    host: str | None = None
    port: int | None = None
    database: str | None = None
    user_env: str | None = Field(default=None, description="jdbc depots: the env var holding the user name")
    password_env: str | None = Field(
        default=None, description="jdbc depots: the env var holding the password"
    )
    driver: str | None = Field(
        default=None, description="jdbc depots: the driver class (default: the engine's)"
    )
    jar: str | None = Field(
        default=None, description="jdbc depots: the driver jar, used before the Debian one"
    )

    @model_validator(mode="after")
    def _jdbc_keys(self) -> Depot:
        given = [k for k in JDBC_KEYS if getattr(self, k) is not None]
        if self.type != "jdbc":
            if given:
                raise ValueError(f"{', '.join(given)}: go with type jdbc, not {self.type}")
            return self
        if self.engine is None and self.url is not None:  # jdbc:postgresql://... names its engine
            scheme = self.url.split(":")[1] if self.url.count(":") > 1 else ""
            self.engine = scheme if scheme in JDBC_ENGINES else None  # type: ignore[assignment]
        if self.engine is None:
            raise ValueError(
                f"a jdbc depot names its engine (or has a url starting jdbc:ENGINE:); "
                f"allowed: {', '.join(JDBC_ENGINES)}"
            )
        if self.path is not None or self.format is not None:
            raise ValueError("path and format go with file depots; a jdbc depot has url or host and database")
        if self.url is not None:
            if self.host or self.port or self.database:
                raise ValueError("give url, or host, port and database, not both")
            if not self.url.startswith("jdbc:"):
                raise ValueError(
                    f"url {self.url!r} is not a JDBC URL (jdbc:{self.jdbc.scheme}://host:port/db)"
                )
            if re.search(r"(?i)(password|user)=", self.url):
                raise ValueError(
                    "url carries credentials; name their env vars with user_env and password_env"
                )
        elif not self.host or not self.database:
            raise ValueError("a jdbc depot has url, or host and database (and port)")
        for key in ("user_env", "password_env"):
            value = getattr(self, key)
            if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
                raise ValueError(f"{key} names an environment variable; {value!r} is not a variable name")
        return self

    @property
    def jdbc(self) -> JdbcEngine:
        assert self.engine is not None
        return JDBC_ENGINES[self.engine]

    def jdbc_url(self) -> str:
        if self.url:
            # the same driver and server; Spark knows the MySQL dialect by the jdbc:mysql: scheme only
            return re.sub(r"^jdbc:mariadb:", "jdbc:mysql:", self.url)
        return f"jdbc:{self.jdbc.scheme}://{self.host}:{self.port or self.jdbc.port}/{self.database}"

    def jdbc_credentials(self, name: str) -> dict[str, str]:
        """user and password, read from the environment variables the depot names."""
        found: dict[str, str] = {}
        for key, var in (("user", self.user_env), ("password", self.password_env)):
            if var is None:
                continue
            value = os.environ.get(var)
            if value is None:
                raise ValueError(f"depot {name!r} reads its {key} from ${var}, which is not set")
            found[key] = value
        return found

    def jdbc_table(self, collection: str, dataset: str) -> str:
        """The table a dataset names: `schema.table`, or `table` in the default schema (`none`)."""

        def ident(part: str) -> str:
            q = self.jdbc.quote
            return part if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part) else q + part.replace(q, q + q) + q

        return ident(dataset) if collection == DEFAULT_SCHEMA else f"{ident(collection)}.{ident(dataset)}"


class DepotMap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    depots: dict[str, Depot]

    def jdbc_depots(self) -> list[str]:
        return [name for name, d in self.depots.items() if d.type == "jdbc"]

    def is_iceberg(self, address: Address) -> bool:
        """A table of an Iceberg depot (files an output writes to its storage are not)."""
        return not address.files and self.depots[address.depot].type == "iceberg"

    def iceberg_depots(self) -> list[str]:
        return [name for name, d in self.depots.items() if d.type == "iceberg"]

    @property
    def default_lakehouse(self) -> str:
        names = self.iceberg_depots()
        if not names:
            raise ManifestError("the depot map has no depot of type iceberg")
        return names[0]


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> DepotMap:
    return validate(DepotMap, load_yaml(Path(path)), Path(path))


def load_depots(path: Path) -> DepotMap:
    if not path.exists():
        raise ManifestError(f"{path}: depot map not found (set FLARE_DEPOTS)")
    return _load(str(path), path.stat().st_mtime)
