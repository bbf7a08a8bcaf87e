"""Child process for gc's race tests: what a forecast backfill date does with the model it chose
(`flows.forecast.forecast_flow`, `model_for_as_of`): pin the version, publish one forecast of (DATASET, AS_OF)
made by it, record the publish (FINGERPRINT given: `ops.quiet.record_fingerprint`, as `publish_forecasts` does right
after its publish), unpin it (a run publishes before it unpins).

usage: pinned_publisher.py HOME DATASET AS_OF VERSION [FINGERPRINT]
HOME is a flowcast home: its registry (HOME/models) and its embedded store, opened as a flow opens them.
"""

import sys
from datetime import datetime, timedelta

import polars as pl

from flowcast.config import load_settings
from flowcast.ops.quiet import record_fingerprint
from flowcast.shared import open_registry
from flowcast.store import open_store

home, dataset, as_of_s, version = sys.argv[1:5]
fingerprint = sys.argv[5] if len(sys.argv) > 5 else None
as_of = datetime.fromisoformat(as_of_s)
settings = load_settings(home=home)
registry = open_registry(settings)
run = f"backfill-{as_of:%Y-%m-%d}"
registry.pin(version, run=run, at=as_of, until=as_of + timedelta(days=3650))
fc = pl.DataFrame({"unique_id": ["a"], "ds": [as_of + timedelta(days=31)], "step": [1], "y_hat": [1.0]},
                  schema_overrides={"step": pl.Int32})
receipt = open_store(settings).publish(fc, dataset=dataset, as_of=as_of, model="gru", model_version=version,
                                       run_id=run, created_at=as_of)
if fingerprint is not None:
    record_fingerprint(settings, dataset=dataset, as_of=as_of, content_hash=receipt.content_hash,
                       fingerprint=fingerprint, run_id=run)
registry.unpin(version, run=run)
print(f"published {receipt.dataset} {receipt.as_of.isoformat()} {receipt.model_version}", flush=True)
