"""The SDLB housekeeping example's input: reporting units upload small JSON files into
landing/reporting_units/uploads/reporting_unit=rpXX/, a few records each."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

METRICS = ["revenue", "orders", "returns", "visitors"]


def generate_uploads(
    landing: Path, units: int = 8, uploads: int = 3, first: int = 1, seed: int = 11
) -> dict[str, int]:
    """Writes `uploads` files per reporting unit, numbered from `first` (a later call adds the next
    hour's uploads beside them). Returns the counts written."""
    rng = random.Random(seed * 1000 + first)
    root = landing / "reporting_units" / "uploads"
    records = 0
    for unit in range(1, units + 1):
        folder = root / f"reporting_unit=rp{unit:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(first, first + uploads):
            day = date(2026, 1, 1) + timedelta(days=n // 24)
            rows = [
                {
                    "upload": n,
                    "report_date": day.isoformat(),
                    "metric": m,
                    "value": round(rng.uniform(0, 1e4), 2),
                }
                for m in METRICS
            ]
            (folder / f"upload-{n:05d}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
            records += len(rows)
    return {"upload files": units * uploads, "upload records": records}
