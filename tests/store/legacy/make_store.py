"""Write a forecast store with flowcast's store code of commit 1493df0 (publish_v0.py).

usage: make_store.py WAREHOUSE SPEC_JSON
SPEC_JSON: a list of {"as_of": iso, "variant": int, "n": series, "h": horizon, "model": name,
"model_version": str | null}; each is published with that old code (Parquet as_of=<iso>/part-0.parquet
plus the DuckDB tables forecasts and publishes).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "publish_faults"))

from publish_v0 import ForecastStore
from publisher import make_forecast

warehouse, spec = sys.argv[1], json.loads(sys.argv[2])
store = ForecastStore(Path(warehouse))
for item in spec:
    as_of = datetime.fromisoformat(item["as_of"])
    r = store.publish(make_forecast(item["variant"], item["n"], item["h"], as_of), as_of=as_of, model=item["model"],
                      model_version=item["model_version"], run_id=f"old-{item['variant']}",
                      created_at=as_of + timedelta(hours=2))
    print(json.dumps({"as_of": item["as_of"], "content_hash": r.content_hash, "rows": r.rows}), flush=True)
