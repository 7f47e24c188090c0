"""Engine errors: what failed, named, in one line."""

from __future__ import annotations

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException


class JobFailed(RuntimeError):
    """A named part of a job failed; the message says which and why."""


SPARK_ERRORS = (PySparkException, Py4JJavaError)


def short(exc: Exception) -> str:
    """The reason in one line: for a JVM error, its innermost cause (a task's own exception)."""
    if isinstance(exc, Py4JJavaError):
        cause = exc.java_exception
        while cause.getCause() is not None:
            cause = cause.getCause()
        return str(cause.toString())
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def java_causes(exc: BaseException) -> list[str]:
    """Class names along a JVM error's cause chain (empty for Python-side errors)."""
    if not isinstance(exc, Py4JJavaError):
        return []
    names, cause = [], exc.java_exception
    while cause is not None:
        names.append(str(cause.getClass().getName()))
        cause = cause.getCause()
    return names
