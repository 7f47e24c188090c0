"""A seeded, deterministic retail data set: customers as csv, orders as json lines, in the landing depot."""

from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

from flare_assets.demo.uploads import generate_uploads

CITIES = ["Zurich", "Basel", "Bern", "Geneva", "Lausanne", "Lugano", "Luzern", "St. Gallen"]
SEGMENTS = ["consumer", "corporate", "small_business"]
STATUSES = ["delivered"] * 8 + ["shipped", "cancelled"]
FIRST = ["Anna", "Luca", "Mia", "Noah", "Lea", "Elias", "Lina", "Leon", "Emma", "Liam", "Sara", "Jan"]
LAST = ["Meier", "Muller", "Schmid", "Keller", "Weber", "Huber", "Frei", "Brunner", "Baumann", "Graf"]


def generate(landing: Path, customers: int = 200, orders: int = 2000, seed: int = 7) -> dict[str, int]:
    """Writes landing/retail/customers/customers.csv and landing/retail/orders/orders-0001.json, and the
    reporting units' uploads (demo/uploads.py)."""
    rng = random.Random(seed)
    cdir, odir = landing / "retail" / "customers", landing / "retail" / "orders"
    cdir.mkdir(parents=True, exist_ok=True)
    odir.mkdir(parents=True, exist_ok=True)
    with (cdir / "customers.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer_id", "name", "city", "segment", "signup_date"])
        for cid in range(1, customers + 1):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            signup = datetime(2023, 1, 1) + timedelta(days=rng.randrange(600))
            writer.writerow([cid, name, rng.choice(CITIES), rng.choice(SEGMENTS), signup.date().isoformat()])
    start = datetime(2024, 1, 1)
    with (odir / "orders-0001.json").open("w") as fh:
        for oid in range(1, orders + 1):
            ts = start + timedelta(minutes=rng.randrange(60 * 24 * 90))
            row = {
                "order_id": oid,
                "customer_id": rng.randrange(1, customers + 1),
                "order_ts": ts.isoformat(),
                "status": rng.choice(STATUSES),
                "quantity": rng.randrange(1, 6),
                "unit_price": round(rng.uniform(2, 250), 2),
            }
            fh.write(json.dumps(row) + "\n")
    return {"customers": customers, "orders": orders, **generate_uploads(landing)}
