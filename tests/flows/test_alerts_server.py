"""Alerts end to end: a real `prefect server start` on loopback runs flowcast's automations, and
a local HTTP receiver gets the notifications.

`flowcast serve` creates the five notifying automations and the webhook block; `flowcast automations apply`
then changes nothing, a changed deadline updates one automation; then, each in its own process
against that server:
- a retrain on data over the quarantine threshold fails: `flowcast.data-quality.failed` fires
  "data quality failed" and `flowcast.run.failed` fires "run failed";
- a forecast publishes (`flowcast.forecast.published`) and nothing follows within the 10 s
  publish deadline: the proactive "forecast not published" fires;
- the data then shift by +500 after that as_of (a new regime): the next forecast run scores the
  earlier forecasts far worse than their backtest promised, `flowcast.accuracy.degraded` fires
  "accuracy degraded".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from flow_helpers import tiny_toml, write_series
from prefect_server import http, http_receiver, prefect_server

from flowcast.ops import automations as auto

SRC = str(Path(__file__).resolve().parents[2] / "src")
FLOWCAST = str(Path(sys.executable).parent / "flowcast")


def _flowcast(srv, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**srv.env, "PYTHONPATH": SRC}
    return subprocess.run([FLOWCAST, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _source_args(csv: Path) -> list[str]:
    return ["--data", str(csv), "--id-col", "store", "--time-col", "month", "--target-col", "sales", "--freq", "1mo",
            "--horizon", "6"]


@pytest.mark.slow
def test_automations_notify_a_webhook_through_a_real_server(production_home, tmp_path):
    with http_receiver() as rx, prefect_server(tmp_path / "server") as srv:
        cfg = tmp_path / "flowcast.toml"
        data = tmp_path / "data" / "tiny.csv"  # the production model's dataset, `tiny`, read from here
        data.parent.mkdir()
        data.write_bytes(Path(production_home["source"]["path"]).read_bytes())
        cfg.write_text(tiny_toml(data, sections=f'[alerts]\nwebhook_url = "{rx.url}"\npublish_deadline = "10s"\n'))

        # -- serve creates them (its schedules moved out of the way); apply then changes nothing
        names = [auto.RUN_FAILED, auto.QUALITY_FAILED, auto.DEGRADED, auto.NOT_PUBLISHED, auto.STALE_DATA,
                 auto.CRASH_SILENT]
        never = {"FLOWCAST_RETRAIN_CRON": "0 0 29 2 *", "FLOWCAST_FORECAST_CRON": "0 0 29 2 *", "PYTHONPATH": SRC}
        srv.start([FLOWCAST, "serve", "--config", str(cfg), "--home", str(tmp_path / "served")],
                  tmp_path / "serve.log", cwd=tmp_path, env=never)

        def ours() -> list[str]:
            r = http("POST", f"{srv.api}/automations/filter", json={})
            return sorted(a["name"] for a in r.json()) if r.status_code == 200 else []

        srv.wait(lambda: ours() == sorted(names), 300, "flowcast serve to create the six automations")
        applied = _flowcast(srv, "automations", "apply", "--config", str(cfg), "--json")
        assert applied.returncode == 0, applied.stderr[-3000:]
        actions = json.loads(applied.stdout.strip().splitlines()[-1])["automations"]
        assert [(a["name"], a["action"]) for a in actions] == [(n, "unchanged") for n in names]
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from flowcast.config import load_settings, with_overrides

        settings = load_settings(cfg)
        with temporary_settings({PREFECT_API_URL: srv.api}):  # the same code in this process
            moved = auto.apply(with_overrides(settings, alerts={"publish_deadline": "20s"}))
            assert [(a.name, a.action) for a in moved] == [(n, "updated" if n == auto.NOT_PUBLISHED else "unchanged")
                                                           for n in names]
            back = auto.apply(settings)
        assert [a.action for a in back] == ["unchanged"] * 3 + ["updated", "unchanged", "unchanged"]
        assert ours() == sorted(names)

        # -- a run on data over the quarantine threshold (12 of 120 rows unparsable > 5%)
        bad = write_series(tmp_path / "raw" / "bad.csv", n_series=1)
        raw = pl.read_csv(bad, infer_schema=False)
        raw.with_columns(pl.when(pl.int_range(pl.len()) % 10 == 3).then(pl.lit("n/a")).otherwise(pl.col("sales"))
                         .alias("sales")).write_csv(bad)
        failed = _flowcast(srv, "run", *_source_args(bad), "--config", str(cfg), "--home", str(tmp_path / "bad_home"),
                           "--as-of", "2019-06-01")
        assert failed.returncode == 2, failed.stderr[-3000:]
        assert "quarantine" in failed.stderr

        # -- a publish arms the deadline; nothing follows it for longer than 10 s
        def forecast(as_of: str) -> dict:
            res = _flowcast(srv, "forecast", "--dataset", "tiny", "--config", str(cfg), "--home",
                            production_home["home"], "--as-of", as_of, "--json")
            assert res.returncode == 0, res.stderr[-3000:]
            return json.loads(res.stdout.strip().splitlines()[-1])

        assert forecast("2019-01-01")["published_rows"] == 24

        # -- the actuals after 2019-01 shift by +500: the run at 2019-09 scores those forecasts
        raw = pl.read_csv(data)
        raw.with_columns(pl.when(pl.col("month") > "2019-01-01").then(pl.col("sales") + 500.0)
                         .otherwise(pl.col("sales")).alias("sales")).write_csv(data)
        assert forecast("2019-09-01")["published_rows"] == 24

        def got(subject: str) -> list[dict]:
            return [r for r in rx.received if r.get("subject", "").startswith(subject)]

        expected = {
            "flowcast: data quality failed for bad": "Dataset bad, as_of 2019-06-01: source 'bad'",
            "flowcast: run failed": "Dataset bad, as_of 2019-06-01: retrain run failed:",
            "flowcast: forecast not published for tiny": "Dataset tiny has published nothing for 10s since as_of "
                                                         "2019-0",
            "flowcast: accuracy degraded for tiny": "Dataset tiny, as_of 2019-09-01: realized MASE",
        }
        srv.wait(lambda: all(got(s) for s in expected), 180, f"notifications {list(expected)}; got {rx.received}")
        for subject, body in expected.items():
            assert body in got(subject)[0]["body"], (subject, got(subject))
        assert "quarantined" in got("flowcast: data quality failed")[0]["body"]
        assert len(got("flowcast: run failed")) == 1  # one failure, one notification
        assert "exceeds the backtest's" in got("flowcast: accuracy degraded")[0]["body"]
        assert len(got("flowcast: accuracy degraded")) == 1  # sent when it turned degraded
