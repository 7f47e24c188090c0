"""A cache of parsed and validated manifests, one entry per file content, so a code location with
hundreds of manifests does not parse and validate each of them in every run process and tick.

What is cached is the per-file result only (a validated Manifest, or a broken file's problems, or
"not a manifest"), which depends on nothing but the file's text, its path (problem lines name it) and
the code that parses it. The checks across files, against the depot map and against the catalog
(stream targets' `table_exists`) run on every load, on a fresh copy of the cached model.

The key is a SHA-256 of: the file's path and text, whether it was named or found in a folder, the
package version, the pydantic and Python versions, and the source of the manifest layer
(`flare_assets/spec`), so an entry is never used after any of those changed. A file that uses
`${VAR}` substitution is not cached: its result depends on the environment, and its values may be
secrets that have no place on disk. A missing, unreadable or corrupt entry is ignored and rebuilt;
entries are written to a temporary file and renamed, so concurrent loads never read a partial one.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from flare_assets.spec.env import ENV_VAR

T = TypeVar("T")
SPEC_DIR = Path(__file__).resolve().parent
FORMAT = b"flare-manifest-cache-1"


@cache
def code_fingerprint() -> bytes:
    """What the cached results depend on besides the file: versions and the manifest layer's source."""
    import importlib.metadata

    import pydantic

    try:
        version = importlib.metadata.version("flare_assets")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    digest = hashlib.sha256(FORMAT)
    for part in (version, pydantic.VERSION, sys.version):
        digest.update(part.encode() + b"\0")
    for source in sorted(SPEC_DIR.rglob("*.py")):
        digest.update(str(source.relative_to(SPEC_DIR)).encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.digest()


def entry_key(file: Path, text: str, named: bool) -> str:
    digest = hashlib.sha256(code_fingerprint())
    digest.update(str(file).encode("utf-8", "surrogateescape") + b"\0" + (b"1" if named else b"0"))
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def cacheable(text: str) -> bool:
    """Whether the file's result depends on its text alone (no `${VAR}` substitution)."""
    return ENV_VAR.search(text) is None


def cached(folder: Path | None, file: Path, text: str, named: bool, compute: Callable[[], T]) -> T:
    """`compute()`'s result for this file content, from `folder` when an entry is there; computed
    and stored otherwise. Every cache problem (unwritable folder, corrupt entry) falls back to
    computing: the cache only ever saves time."""
    if folder is None or not cacheable(text):
        return compute()
    key = entry_key(file, text, named)
    path = folder / key[:2] / f"{key}.pickle"
    try:
        with path.open("rb") as fh:
            stored_key, value = pickle.load(fh)
        if stored_key == key:
            return value
    except Exception:  # missing, truncated, from another version, unpicklable: rebuild it
        pass
    value = compute()
    _store(path, key, value)
    return value


def _store(path: Path, key: str, value: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pickle")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump((key, value), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except Exception:  # a read-only or full FLARE_HOME only costs the time the cache would save
        pass
