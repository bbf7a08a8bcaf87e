"""Prefect flows of flowcast: `retrain_flow`, `forecast_flow`, `backfill_flow`.

They live in the installed package so that `flowcast run` works from any directory; the
repository's `flows/*.py` re-export them for `prefect deploy` entrypoints. Importing this
package imports Prefect (not torch): keep it out of `flowcast --help`'s import path.
Importing it also quiets Prefect's run logs where they repeat flowcast (`flowcast.flows.logs`).
"""

from flowcast.flows import logs
from flowcast.flows.backfill import backfill_flow
from flowcast.flows.forecast import forecast_flow
from flowcast.flows.pipeline import retrain_flow

logs.install()

__all__ = ["backfill_flow", "forecast_flow", "retrain_flow"]
