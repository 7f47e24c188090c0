"""Where the JVM pieces come from: an env var path, a pip or Debian package, or Maven coordinates."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from flare_assets.settings import Settings

ICEBERG_JAR = "iceberg-spark-runtime-3.5_2.12-1.10.2.jar"
ICEBERG_PIP = "snowpark-connect-deps-iceberg"
ICEBERG_PIP_GOOD = "1.0.2"  # 1.0.3 ships a jar without the shaded Jackson classes
ICEBERG_MAVEN = "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.2"

SQLITE_JARS = (
    "/usr/share/java/sqlite-jdbc.jar",
    "/usr/share/java/xerial-sqlite-jdbc.jar",
)
SQLITE_JNI = "/usr/lib/x86_64-linux-gnu/jni"
SQLITE_MAVEN = "org.xerial:sqlite-jdbc:3.46.1.3"
POSTGRES_JARS = ("/usr/share/java/postgresql.jar",)
POSTGRES_MAVEN = "org.postgresql:postgresql:42.7.4"


class MissingDependency(RuntimeError):
    """A JVM piece is missing; the message says what to install."""


@dataclass
class Jars:
    paths: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    library_path: list[str] = field(default_factory=list)


def require_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise MissingDependency(
            "Java 17 is required to run Spark: install it (Debian: apt-get install openjdk-17-jre-headless) "
            "or set JAVA_HOME."
        )
    return java


def _pip_iceberg_jar() -> Path | None:
    spec = importlib.util.find_spec("snowpark_connect_deps_iceberg")
    if spec is None or not spec.submodule_search_locations:
        return None
    if importlib.metadata.version(ICEBERG_PIP) != ICEBERG_PIP_GOOD:
        return None
    jar = Path(list(spec.submodule_search_locations)[0]) / "jars" / ICEBERG_JAR
    return jar if jar.exists() else None


def _env_path(value: str | None, what: str) -> Path | None:
    if not value:
        return None
    path = Path(value)
    if not path.exists():
        raise MissingDependency(f"{what} points to {value}, which does not exist.")
    return path


def iceberg_runtime(settings: Settings, jars: Jars) -> None:
    found = _env_path(settings.iceberg_jar, "FLARE_ICEBERG_JAR") or _pip_iceberg_jar()
    if found:
        jars.paths.append(str(found))
    elif settings.allow_maven:
        jars.packages.append(ICEBERG_MAVEN)
    else:
        raise MissingDependency(
            f"The Iceberg Spark runtime jar was not found: pip install '{ICEBERG_PIP}=={ICEBERG_PIP_GOOD}' "
            f"(not 1.0.3), or set FLARE_ICEBERG_JAR to {ICEBERG_JAR}, or set FLARE_MAVEN=1 to fetch "
            f"{ICEBERG_MAVEN} from Maven."
        )


def jdbc_driver(settings: Settings, jars: Jars) -> None:
    """The catalog's JDBC driver, chosen by the catalog URI."""
    uri = settings.catalog_uri
    if uri.startswith("jdbc:sqlite:"):
        candidates, coords, deb = (
            SQLITE_JARS,
            SQLITE_MAVEN,
            "libxerial-sqlite-jdbc-java",
        )
    elif uri.startswith("jdbc:postgresql:"):
        candidates, coords, deb = (
            POSTGRES_JARS,
            POSTGRES_MAVEN,
            "libpostgresql-jdbc-java",
        )
    else:
        return
    found = _env_path(settings.jdbc_jar, "FLARE_JDBC_JAR") or next(
        (Path(c) for c in candidates if Path(c).exists()), None
    )
    if found:
        jars.paths.append(str(found))
        if deb.startswith("libxerial") and Path(SQLITE_JNI).exists():
            jars.library_path.append(SQLITE_JNI)
    elif settings.allow_maven:
        jars.packages.append(coords)
    else:
        raise MissingDependency(
            f"The JDBC driver for {uri.split(':')[1]} was not found: apt-get install {deb}, "
            f"or set FLARE_JDBC_JAR to its jar, or set FLARE_MAVEN=1 to fetch {coords} from Maven."
        )


def depot_drivers(settings: Settings, jars: Jars) -> None:
    """The JDBC driver of each jdbc depot of the depot map: the depot's `jar`, the Debian package's
    jar, or Maven coordinates when FLARE_MAVEN allows."""
    from flare_assets.depots import load_depots

    if not settings.depots.exists():
        return
    depot_map = load_depots(settings.depots)
    for name in depot_map.jdbc_depots():
        depot = depot_map.depots[name]
        engine = depot.jdbc
        found = _env_path(depot.jar, f"the jar of depot {name!r}") or next(
            (Path(c) for c in engine.jars if Path(c).exists()), None
        )
        if found:
            if str(found) not in jars.paths:
                jars.paths.append(str(found))
        elif settings.allow_maven:
            if engine.maven not in jars.packages:
                jars.packages.append(engine.maven)
        else:
            raise MissingDependency(
                f"The JDBC driver of depot {name!r} ({depot.engine}) was not found: apt-get install "
                f"{engine.deb}, or set the depot's jar: to its jar, or set FLARE_MAVEN=1 to fetch "
                f"{engine.maven} from Maven."
            )


def resolve(settings: Settings) -> Jars:
    require_java()
    jars = Jars()
    iceberg_runtime(settings, jars)
    jdbc_driver(settings, jars)
    depot_drivers(settings, jars)
    for extra in settings.extra_jars:
        jars.paths.append(str(_env_path(extra, "FLARE_EXTRA_JARS")))
    jars.packages.extend(settings.extra_packages)
    return jars
