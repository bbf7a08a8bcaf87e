"""The backfill flow: recompute forecasts as they would have been made on past dates.

One child flow run per as_of in [start, end] stepping by `every`: the forecast flow
(mode="forecast": today's production model on the data up to each date) or the retrain flow
(mode="retrain": models trained on the data up to each date; the production pointer is left
alone and each date publishes its own best model). Dates that already have published
forecasts (for this dataset) are skipped unless `overwrite`. A failing date does not stop the others: every
date's outcome is listed at the end (log, `backfill-summary` artifact, return value) and the
run fails only after all dates were tried.

With `deployment` set (e.g. "forecast/forecast") the dates fan out through
`run_deployment`, one flow run per date with an idempotency key, so that the workers of a
work pool process dates in parallel; a retried backfill does not start a date twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, Self

import polars as pl
from prefect import flow, get_run_logger

from flowcast import reporting
from flowcast.config import SourceConfig
from flowcast.errors import ConfigError, FlowcastError
from flowcast.flows.common import flow_settings, naive_utc, run_identity
from flowcast.ops.hooks import on_run_failure

Outcome = dict[str, Any]  # as_of, status (published | skipped | failed), rows, model, run_id, error
_listeners: list[Callable[[Outcome], None]] = []


class BackfillError(FlowcastError):
    """Some dates of a backfill failed; `summary` holds every date's outcome."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message)
        self.summary = summary


class listen:
    """`with listen(callback): backfill_flow(...)` calls back once per date as it finishes
    (the CLI's progress bar). In-process only; remote runs report through the artifact."""

    def __init__(self, callback: Callable[[Outcome], None]):
        self.callback = callback

    def __enter__(self) -> Self:
        _listeners.append(self.callback)
        return self

    def __exit__(self, *exc: object) -> None:
        _listeners.remove(self.callback)


def _notify(outcome: Outcome) -> None:
    for cb in _listeners:
        try:
            cb(outcome)
        except Exception:  # noqa: BLE001, S110 - a broken progress display must not stop the backfill
            pass


def backfill_dates(start: datetime, end: datetime, every: str) -> list[datetime]:
    """as_of values from start to end inclusive, stepping by a polars duration ('1d', '1mo')."""
    start, end = naive_utc(start), naive_utc(end)
    if end < start:
        raise ConfigError(f"backfill end {end:%Y-%m-%d %H:%M} is before start {start:%Y-%m-%d %H:%M}")
    try:
        dates = pl.datetime_range(start, end, interval=every, eager=True, time_unit="us").to_list()
    except Exception as exc:
        raise ConfigError(f"backfill every={every!r} is not a duration such as 1d, 1w, 1mo: {exc}") from exc
    return dates


def _error_of(state: Any) -> str:
    try:
        state.result(raise_on_failure=True)
    except Exception as exc:  # noqa: BLE001 - any child failure becomes one line of the summary
        return f"{type(exc).__name__}: {exc}" if not isinstance(exc, FlowcastError) else str(exc)
    return state.message or state.name


@flow(name="backfill", validate_parameters=True, on_failure=[on_run_failure])
def backfill_flow(
    start: datetime,
    end: datetime,
    every: str | None = None,
    mode: Literal["forecast", "retrain"] = "forecast",
    overwrite: bool = False,
    deployment: str | None = None,
    dataset: str | None = None,
    source: SourceConfig | None = None,
    horizon: int | None = None,
    config_file: str | None = None,
    home: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the forecast (or retrain) flow once per as_of from `start` to `end` every `every`
    (default: the data's frequency). Already published dates are skipped unless `overwrite`.

    Args:
        start: first as_of, an instant (ISO timestamp; without a UTC offset it means UTC).
        end: last as_of (inclusive), an instant (without a UTC offset it means UTC).
        every: step between as_ofs, a duration such as 1d, 1w, 1mo (default: the data's frequency).
        deployment: fan out through this deployment ("flow-name/deployment-name") instead of
            running the dates here one after another.
    """
    from flowcast.data.datasets import resolve_source
    from flowcast.store import open_store

    log = get_run_logger()
    settings = flow_settings(
        config_file=config_file, home=home, dataset=dataset, source=source, horizon=horizon, overrides=overrides
    )
    run_id, _ = run_identity()
    src = resolve_source(settings)
    step = every or src.freq
    dates = backfill_dates(start, end, step)
    store = open_store(settings)
    todo, outcomes = [], []
    for d in dates:
        if not overwrite and store.has(src.name, d):
            o = {"as_of": d.isoformat(), "status": "skipped", "rows": 0, "model": None, "run_id": None,
                 "error": "already published (overwrite=False)"}
            outcomes.append(o)
            _notify(o)
        else:
            todo.append(d)
    log.info(f"Backfill ({mode}) over {len(dates)} date(s) every {step}: {len(todo)} to run, "
             f"{len(dates) - len(todo)} already published")

    common = {"dataset": dataset, "source": source, "horizon": horizon, "config_file": config_file, "home": home,
              "overrides": overrides}
    if deployment:
        outcomes += _fan_out(deployment, todo, common, mode, run_id, log)
    else:
        from flowcast.flows.forecast import forecast_flow
        from flowcast.flows.pipeline import retrain_flow

        for d in todo:
            child = forecast_flow if mode == "forecast" else retrain_flow
            kw = dict(common) if mode == "forecast" else dict(common, promote=False)
            state = child.with_options(flow_run_name=f"{mode}-{d:%Y-%m-%dT%H%M}")(as_of=d, return_state=True, **kw)
            if state.is_completed() and state.result().get("unchanged"):  # nothing new since the last publish
                res = state.result()
                o = {"as_of": d.isoformat(), "status": "skipped", "rows": 0, "model": res.get("model_version"),
                     "run_id": res.get("run_id"), "error": f"unchanged: {res.get('note')}"}
                log.info(f"{d:%Y-%m-%d %H:%M}: {res.get('note')}")
            elif state.is_completed():
                res = state.result()
                o = {"as_of": d.isoformat(), "status": "published", "rows": res.get("published_rows", 0),
                     "model": res.get("model_version") or res.get("champion"), "run_id": res.get("run_id"),
                     "error": None}
                log.info(f"{d:%Y-%m-%d %H:%M}: published {o['rows']} rows")
            else:
                o = {"as_of": d.isoformat(), "status": "failed", "rows": 0, "model": None, "run_id": None,
                     "error": _error_of(state)}
                log.error(f"{d:%Y-%m-%d %H:%M}: failed: {o['error']}")
            outcomes.append(o)
            _notify(o)

    outcomes.sort(key=lambda o: str(o["as_of"]))
    reporting.backfill_artifact(outcomes)
    failed = [o for o in outcomes if o["status"] == "failed"]
    summary = {
        "run_id": run_id, "mode": mode, "every": step, "dates": len(dates),
        "published": sum(o["status"] == "published" for o in outcomes),
        "skipped": sum(o["status"] == "skipped" for o in outcomes),
        "failed": len(failed), "outcomes": outcomes,
    }
    if failed:
        msg = f"{len(failed)} of {len(dates)} backfill date(s) failed: " + "; ".join(
            f"{o['as_of']}: {o['error']}" for o in failed[:5]
        )
        log.error(msg)
        raise BackfillError(msg, summary)
    log.info(f"Backfill done: {summary['published']} published, {summary['skipped']} skipped")
    return summary


def _fan_out(deployment: str, dates: list[datetime], common: dict[str, Any], mode: str, run_id: str,
             log: Any) -> list[Outcome]:
    """One deployment run per date (idempotency key per backfill run and date), then wait."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    params = {k: (v.model_dump(mode="json") if isinstance(v, SourceConfig) else v) for k, v in common.items()
              if v is not None}
    if mode == "retrain":
        params["promote"] = False
    launched = {}
    for d in dates:
        fr: Any = run_deployment(  # a FlowRun (the sync call of an async-dual function)
            name=deployment, parameters={**params, "as_of": d.isoformat()}, timeout=0,
            idempotency_key=f"backfill-{run_id}-{mode}-{d.isoformat()}", flow_run_name=f"{mode}-{d:%Y-%m-%dT%H%M}",
        )
        launched[d] = fr.id
        log.info(f"{d:%Y-%m-%d %H:%M}: started flow run {fr.name} on {deployment}")
    outcomes: list[Outcome] = []
    with get_client(sync_client=True) as client:
        pending = dict(launched)
        while pending:
            for d, fid in list(pending.items()):
                fr = client.read_flow_run(fid)
                if fr.state is None or not fr.state.is_final():
                    continue
                del pending[d]
                o: Outcome
                if fr.state.is_completed():
                    o = {"as_of": d.isoformat(), "status": "published", "rows": None, "model": None,
                         "run_id": str(fid), "error": None}
                else:
                    o = {"as_of": d.isoformat(), "status": "failed", "rows": 0, "model": None, "run_id": str(fid),
                         "error": fr.state.message or fr.state.name}
                outcomes.append(o)
                _notify(o)
            if pending:
                time.sleep(2)
    return outcomes
