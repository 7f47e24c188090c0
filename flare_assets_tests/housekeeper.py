"""A separate process running one output's housekeeping, for the crash tests to kill mid-way:
`python -m flare_assets_tests.housekeeper OUTPUT_JSON RUN_NUMBER`."""

from __future__ import annotations

import json
import sys

from flare_assets.depots import load_depots
from flare_assets.engine import housekeeping
from flare_assets.settings import Settings
from flare_assets.spark import get_session
from flare_assets.spec.model import Output


def main(output_json: str, run_number: int) -> None:
    settings = Settings.from_env()
    output = Output.model_validate(json.loads(output_json))
    spark = get_session(settings)
    ctx = housekeeping.context("crash", output, run_number)
    result = housekeeping.run(spark, output, load_depots(settings.depots), settings, ctx)
    print(json.dumps({"archived": len(result.archived), "compacted": len(result.compacted)}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
