"""Which process a run works in, and whether it still does: a run killed with `kill -9` leaves no
word, so sensors and pool waits tell a dead run by its process being gone from this host."""

from __future__ import annotations

import os
import socket


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]  # a zombie has exited


def worker_identity(pid: int | None = None) -> str:
    """`host:pid:start-ticks` of this (or the given) process."""
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or ''}"


def worker_alive(identity: str | None) -> bool | None:
    """Whether the recorded worker still runs; None when it cannot be told from here (another host,
    no record)."""
    if not identity or identity.count(":") < 2:
        return None
    host, pid_text, ticks = identity.rsplit(":", 2)
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if ticks:
        return _start_ticks(pid) == ticks
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
