"""Web events for the demo stream: JSON-lines files dropped into the landing depot, some malformed."""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

EVENT_TYPES = ["view"] * 6 + ["click"] * 3 + ["purchase"]


def drop_events(folder: Path, rows: int = 100, bad: int = 0, seed: int | None = None) -> Path:
    """Writes one file of `rows` events (and `bad` malformed lines) into `folder`, atomically: it is
    written under a hidden name, which Spark and the sensor skip, then renamed."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    lines = []
    for _ in range(rows):
        kind = rng.choice(EVENT_TYPES)
        event = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "user_id": rng.randrange(1, 500),
            "event_type": kind,
            "amount": round(rng.uniform(5, 300), 2) if kind == "purchase" else 0.0,
            "event_ts": now.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        lines.append(json.dumps(event))
    for n in range(bad):
        lines.insert(rng.randrange(len(lines) + 1), f'{{"event_id": "broken-{n}", "user_id": "n/a"')
    name = f"events-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.json"
    hidden = folder / f".{name}"
    hidden.write_text("\n".join(lines) + "\n")
    os.replace(hidden, folder / name)
    return folder / name
