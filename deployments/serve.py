"""`make serve`: serve the retrain (weekly), forecast (daily) and backfill deployments from
this one process, with their schedules; no work pool or worker needed. Open the UI with
`make server` in another terminal (and PREFECT_API_URL=http://127.0.0.1:4200/api here), or
let Prefect start its temporary local API.

Schedules: FLOWCAST_RETRAIN_CRON, FLOWCAST_FORECAST_CRON, FLOWCAST_TIMEZONE (see
flowcast.flows.deploy). The home (FLOWCAST_HOME, else ./.flowcast) is every deployment's `home`
parameter, made absolute, as `flowcast serve` gives it: the next serve of the home knows its runs.
"""

from flowcast.config import load_settings
from flowcast.flows.deploy import early_sigterm_stops, serve_all, serving
from flowcast.ops.reaper import temporary_api

if __name__ == "__main__":
    # one serve per home and Prefect API; without PREFECT_API_URL a watched temporary server (as `flowcast serve`);
    # a SIGTERM as it starts stops it as a later one does (exit 0); one as it exits is said, its clean-up ended
    with early_sigterm_stops(exits=True), serving(load_settings(None).home), temporary_api():
        serve_all()
