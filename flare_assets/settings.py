"""Settings from environment variables, each with an embedded default (the README's configuration
table lists them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEMO_DIR = PACKAGE_DIR / "demo"


class HomeError(RuntimeError):
    """FLARE_HOME (or a folder of state under it) is missing, cannot be created or is read-only."""


class SettingsError(ValueError):
    """A setting's value is not one the runtime takes; the message names the variable."""


def writable_folder(path: Path, what: str = "FLARE_HOME") -> Path:
    """`path`, created if missing; HomeError naming it when it cannot be created or written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HomeError(
            f"{what} {path} does not exist and cannot be created: {exc.strerror}; "
            "set FLARE_HOME to a writable folder"
        ) from None
    if not path.is_dir():
        raise HomeError(f"{what} {path} is not a folder; set FLARE_HOME to a writable folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise HomeError(
            f"{what} {path} is read-only: runs keep their catalog, tables and state there; "
            "set FLARE_HOME to a writable folder"
        )
    return path


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything the runtime needs to know about where state lives and how to reach the engines."""

    home: Path
    pipelines: Path
    depots: Path
    spark_master: str
    spark_ui: bool
    catalog_uri: str
    warehouse: str
    iceberg_jar: str | None = None
    jdbc_jar: str | None = None
    allow_maven: bool = False
    spark_conf: dict[str, str] = field(default_factory=dict)
    catalog_user: str | None = None
    catalog_password: str | None = None
    catalog_properties: dict[str, str] = field(default_factory=dict)
    extra_jars: list[str] = field(default_factory=list)
    extra_packages: list[str] = field(default_factory=list)
    jvm_archive: Path | None = None
    strict: bool = False
    manifest_cache: Path | None = None

    @property
    def catalog_kind(self) -> str:
        """sqlite (the embedded default), postgresql or rest, from the catalog URI."""
        for prefix, kind in (("jdbc:sqlite:", "sqlite"), ("jdbc:postgresql://", "postgresql")):
            if self.catalog_uri.startswith(prefix):
                return kind
        if self.catalog_uri.startswith(("http://", "https://")):
            return "rest"
        raise SettingsError(
            f"FLARE_CATALOG_URI={self.catalog_uri!r}: allowed: jdbc:sqlite:PATH, "
            "jdbc:postgresql://HOST:PORT/DB or http(s)://REST-CATALOG"
        )

    @property
    def embedded_catalog(self) -> bool:
        return self.catalog_kind == "sqlite"

    @property
    def sqlite_path(self) -> Path:
        return Path(self.catalog_uri.removeprefix("jdbc:sqlite:"))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("FLARE_HOME") or Path.cwd() / ".flare").resolve()
        return cls(
            home=home,
            pipelines=Path(env.get("FLARE_PIPELINES") or DEMO_DIR / "pipelines").resolve(),
            depots=Path(env.get("FLARE_DEPOTS") or DEMO_DIR / "depots.yaml").resolve(),
            spark_master=env.get("FLARE_SPARK_MASTER") or "local[*]",
            spark_ui=_flag(env.get("FLARE_SPARK_UI")),
            catalog_uri=env.get("FLARE_CATALOG_URI") or f"jdbc:sqlite:{home / 'catalog.db'}",
            warehouse=env.get("FLARE_WAREHOUSE") or str(home / "warehouse"),
            iceberg_jar=env.get("FLARE_ICEBERG_JAR") or None,
            jdbc_jar=env.get("FLARE_JDBC_JAR") or None,
            allow_maven=_flag(env.get("FLARE_MAVEN")),
            spark_conf=parse_conf(env.get("FLARE_SPARK_CONF", ""), "FLARE_SPARK_CONF"),
            catalog_user=env.get("FLARE_CATALOG_USER") or None,
            catalog_password=env.get("FLARE_CATALOG_PASSWORD") or None,
            catalog_properties=parse_conf(
                env.get("FLARE_CATALOG_PROPERTIES", ""), "FLARE_CATALOG_PROPERTIES"
            ),
            extra_jars=[j for j in env.get("FLARE_EXTRA_JARS", "").split(",") if j.strip()],
            extra_packages=[p for p in env.get("FLARE_EXTRA_PACKAGES", "").split(",") if p.strip()],
            jvm_archive=_archive_folder(env.get("FLARE_JVM_ARCHIVE")),
            strict=_flag(env.get("FLARE_STRICT")),
            manifest_cache=_cache_folder(env.get("FLARE_MANIFEST_CACHE"), home),
        )

    def writable_home(self) -> Path:
        """FLARE_HOME, created if missing; HomeError naming the path when it cannot hold state."""
        return writable_folder(self.home)

    def existing_home(self) -> Path:
        """FLARE_HOME for commands that read what runs wrote: HomeError when it does not exist."""
        if not self.home.is_dir():
            raise HomeError(
                f"FLARE_HOME {self.home} does not exist: nothing has run there yet; set FLARE_HOME to "
                "the folder your runs use, or materialize something first"
            )
        return self.home

    def resolve(self, path: str | Path) -> Path:
        """Relative paths (depot folders, checkpoints) live under FLARE_HOME."""
        p = Path(path)
        return p if p.is_absolute() else self.home / p


def _archive_folder(value: str | None) -> Path | None:
    """Where the JVM class archive lives (see jvm_archive.py); `off` starts JVMs without one."""
    if (value or "").strip().lower() in {"off", "false", "0", "no"}:
        return None
    if value:
        return Path(value).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "flare_assets" / "jvm"


def _cache_folder(value: str | None, home: Path) -> Path | None:
    """Where parsed manifests are cached by content (spec/cache.py); `off` parses every file on
    every load."""
    if (value or "").strip().lower() in {"off", "false", "0", "no"}:
        return None
    return Path(value).expanduser().resolve() if value else home / "cache" / "manifests"


def parse_conf(text: str, name: str = "the value") -> dict[str, str]:
    """`k=v,k2=v2` as a dict; used for FLARE_SPARK_CONF and FLARE_CATALOG_PROPERTIES."""
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    bad = [p[0] for p in pairs if len(p) != 2]
    if bad:
        raise SettingsError(f"{name}: expected key=value pairs separated by commas, got {bad}")
    return {k.strip(): v.strip() for k, v in pairs}
