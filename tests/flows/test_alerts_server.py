"""Alerts end to end: a real `prefect server start` on loopback runs flowcast's automations, and
a local HTTP receiver gets the notifications.

`flowcast serve` creates the four automations and the webhook block; `flowcast automations apply`
then changes nothing, a changed deadline updates one automation; then, each in its own process
against that server:
- a retrain on data over the quarantine threshold fails: `flowcast.data-quality.failed` fires
  "data quality failed" and `flowcast.run.failed` fires "run failed";
- a forecast publishes (`flowcast.forecast.published`) and nothing follows within the 10 s
  publish deadline: the proactive "forecast not published" fires.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from flow_helpers import write_series
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


TOML = """
[alerts]
webhook_url = "{url}"
publish_deadline = "10s"

[model]
cells = ["gru"]
lookback = 12
hidden_size = 8
num_layers = 1
max_steps = 3
launcher = "inline"
accelerator = "cpu"

[evaluation]
n_windows = 1
"""


@pytest.mark.slow
def test_automations_notify_a_webhook_through_a_real_server(production_home, tmp_path):
    with http_receiver() as rx, prefect_server(tmp_path / "server") as srv:
        cfg = tmp_path / "flowcast.toml"
        cfg.write_text(TOML.format(url=rx.url))

        # -- serve creates them (its schedules moved out of the way); apply then changes nothing
        names = [auto.RUN_FAILED, auto.QUALITY_FAILED, auto.DEGRADED, auto.NOT_PUBLISHED]
        never = {"FLOWCAST_RETRAIN_CRON": "0 0 29 2 *", "FLOWCAST_FORECAST_CRON": "0 0 29 2 *", "PYTHONPATH": SRC}
        srv.start([FLOWCAST, "serve", "--config", str(cfg), "--home", str(tmp_path / "served")],
                  tmp_path / "serve.log", cwd=tmp_path, env=never)

        def ours() -> list[str]:
            r = http("POST", f"{srv.api}/automations/filter", json={})
            return sorted(a["name"] for a in r.json()) if r.status_code == 200 else []

        srv.wait(lambda: ours() == sorted(names), 300, "flowcast serve to create the four automations")
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
        assert [a.action for a in back] == ["unchanged"] * 3 + ["updated"] and ours() == sorted(names)

        # -- a run on data over the quarantine threshold (12 of 120 rows unparsable > 5%)
        bad = write_series(tmp_path / "raw" / "bad.csv", n_series=1)
        raw = pl.read_csv(bad, infer_schema=False)
        raw.with_columns(pl.when(pl.int_range(pl.len()) % 10 == 3).then(pl.lit("n/a")).otherwise(pl.col("sales"))
                         .alias("sales")).write_csv(bad)
        failed = _flowcast(srv, "run", *_source_args(bad), "--config", str(cfg), "--home", str(tmp_path / "bad_home"),
                           "--as-of", "2019-06-01")
        assert failed.returncode == 2, failed.stderr[-3000:]
        assert "quarantine" in failed.stderr

        # -- a publish arms the deadline; nothing follows it
        csv = Path(production_home["source"]["path"])
        published = _flowcast(srv, "forecast", *_source_args(csv), "--config", str(cfg), "--home",
                              production_home["home"], "--as-of", "2019-01-01", "--json")
        assert published.returncode == 0, published.stderr[-3000:]
        assert json.loads(published.stdout.strip().splitlines()[-1])["published_rows"] == 24

        def got(subject: str) -> list[dict]:
            return [r for r in rx.received if r.get("subject", "").startswith(subject)]

        expected = {
            "flowcast: data quality failed for bad": "Dataset bad, as_of 2019-06-01T00:00:00: source 'bad'",
            "flowcast: run failed": "Dataset bad, as_of 2019-06-01T00:00:00: retrain run failed:",
            "flowcast: forecast not published for sales": "Dataset sales has published nothing for 10s since as_of "
                                                          "2019-01-01T00:00:00",
        }
        srv.wait(lambda: all(got(s) for s in expected), 180, f"notifications {list(expected)}; got {rx.received}")
        for subject, body in expected.items():
            assert body in got(subject)[0]["body"], (subject, got(subject))
        assert "quarantined" in got("flowcast: data quality failed")[0]["body"]
        assert len(got("flowcast: run failed")) == 1  # one failure, one notification
