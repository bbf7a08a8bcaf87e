"""The flows end to end under the session's temporary Prefect API, on 4 tiny monthly series."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flow_helpers import AS_OF, artifacts_of, newest_artifact, source_dict

from flowcast.errors import DataValidationError, RegistryError
from flowcast.registry import ModelRegistry
from flowcast.reporting import artifact_key, progress_key
from flowcast.store import EmbeddedStore

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_retrain_publishes_and_leaves_every_artifact(trained):
    kw, s = trained
    home = Path(kw["home"])
    # counts reconcile; 4 series x 114 months up to 2019-06
    assert s["rows_in"] == s["rows_valid"] + s["rows_quarantined"] == 4 * 114
    assert s["n_series"] == 4 and s["horizon"] == 6
    board = {r["model"]: r for r in s["leaderboard"]}
    assert set(board) == {"gru", "naive", "seasonal_naive", "theta", "damped", "dotm", "comb", "hybrid"}  # monthly recipe
    assert {board[m]["kind"] for m in board} == {"network", "statistical", "hybrid"}
    assert all(r["smape"] is not None and r["mase"] is not None for r in s["leaderboard"])
    # the best row publishes, whatever its kind, and is promoted (nothing was in production)
    best = min((r for r in s["leaderboard"] if r["rank"]), key=lambda r: r["rank"])
    assert best["rank"] == 1 and s["decision"]["publish"] == best["model"] and s["decision"]["action"] == "first"
    assert s["decision"]["promote"] and s["published_rows"] == 4 * 6
    production = ModelRegistry(home / "models").history("tiny")[0]["version"]
    assert production == s["registered"][best["model"]] and production.startswith(best["model"] + "-v")
    assert s["registered"]["gru"].startswith("gru-v")  # refit_all registers every cell

    store = EmbeddedStore(home / "warehouse")
    assert store.as_ofs("tiny") == [AS_OF]
    published = store.read(dataset="tiny", as_of=AS_OF)
    assert published.height == 24 and published["run_id"].unique().to_list() == [s["run_id"]]
    assert published["ds"].min() == datetime(2019, 7, 1)  # the first period after as_of

    arts = artifacts_of(s["run_id"])
    expected = {artifact_key(k, "tiny") for k in ("quality", "leaderboard", "leaderboard_details", "decision", "plot",
                                                  "receipt")} | {
        progress_key("gru all data", "tiny"), progress_key("gru backtest", "tiny")}
    assert expected <= set(arts), sorted(arts)
    assert [a.data for a in arts[progress_key("gru backtest", "tiny")]] == [100.0]
    assert "rows quarantined" in arts[artifact_key("quality", "tiny")][0].data
    decision, before = (a.data for a in arts[artifact_key("decision", "tiny")])  # newest first
    assert f"### Published: **{best['model']}** ({production})" in decision
    assert "There was no model in production" in decision and "x (1 -" not in decision
    # followup21: written 'To publish' before the publish, 'Published' once it landed (no withdrawn follow-up)
    assert before.startswith(f"### To publish: **{best['model']}** ({production})") and "Published:" not in before
    assert "data:image/png;base64," in arts[artifact_key("plot", "tiny")][0].data
    # the receipt: its paths relative to the home, the home a row of its own, no bare flow run id (artifacts19)
    receipt = {r["field"]: r["value"] for r in json.loads(arts[artifact_key("receipt", "tiny")][0].data)}
    assert receipt["home"] == str(home.absolute()) and "flow run" not in receipt and s["run_id"] not in str(receipt)
    assert receipt["stored in (under home)"].startswith("warehouse/") and not receipt["DuckDB views (under home)"].startswith("/")
    pngs = list((home / "reports").glob("forecast_*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:4] == b"\x89PNG"


def test_a_second_run_on_the_same_data_and_as_of_is_served_from_the_preprocessing_cache(production_home):
    """A run on the same source, settings and as_of as an earlier run in this home reads the
    earlier run's cache record (its preprocess task run is Cached, no new record) and publishes
    every series; another as_of computes (Completed) and adds a record. This home is a copy of the
    trained one, whose record names a result file in the original folder: a moved or copied home
    computes once instead of failing on that record."""
    from flow_helpers import task_states_of

    from flowcast.flows import forecast_flow

    cache = Path(production_home["home"]) / "cache" / "prefect"
    copied = {p.name for p in cache.iterdir()}
    assert len(copied) == 1 and next(iter(copied)).startswith("flowcast-preprocess-")
    first = forecast_flow(as_of=AS_OF, **production_home)
    assert task_states_of(first["run_id"])["preprocess"] == ["Completed"]
    records = {p.name for p in cache.iterdir()}
    assert len(records - copied) == 1
    again = forecast_flow(as_of=AS_OF, **production_home)
    assert task_states_of(again["run_id"])["preprocess"] == ["Cached"]
    # the same forecasts as the first run's: not published again (publish29)
    assert {p.name for p in cache.iterdir()} == records and again["published_by"] == first["run_id"]
    other = forecast_flow(as_of=datetime(2019, 7, 1), **production_home)
    assert task_states_of(other["run_id"])["preprocess"] == ["Completed"]
    assert len({p.name for p in cache.iterdir()} - records) == 1


def test_preprocess_task_is_served_from_its_cache_on_a_rerun(flow_kwargs):
    """Same fingerprint and as_of: the second call is Cached and returns the same TrainingData;
    another fingerprint computes again. Keys and values live under this home's cache folder."""
    from prefect import flow

    from flowcast.config import load_settings
    from flowcast.data.datasets import resolve_source
    from flowcast.data.sources import ingest
    from flowcast.data.validate import validate
    from flowcast.flows import tasks

    settings = load_settings(source=flow_kwargs["source"], home=flow_kwargs["home"], **flow_kwargs["overrides"])
    source = resolve_source(settings)
    valid = validate(ingest(source, AS_OF), source, settings.validation).valid

    @flow
    def three_calls():
        run = tasks.cached_preprocess(settings)
        return [run(valid, source, settings, AS_OF, fp, return_state=True) for fp in ("fp-a", "fp-a", "fp-b")]

    first, again, other = three_calls()
    assert [first.name, again.name, other.name] == ["Completed", "Cached", "Completed"]
    assert again.result()[0].frame.equals(first.result()[0].frame)
    cache = Path(flow_kwargs["home"]).resolve() / "cache"
    assert len(list((cache / "prefect").iterdir())) == 2 and any((cache / "results").iterdir())


def test_forecast_flow_uses_the_production_model(production_home):
    from flowcast.flows import forecast_flow

    s = forecast_flow(as_of=datetime(2019, 9, 1), **production_home)
    assert s["model_version"] == ModelRegistry(Path(production_home["home"]) / "models").production().version
    assert s["published_rows"] == 24
    arts = artifacts_of(s["run_id"])
    assert {artifact_key(k, "tiny") for k in ("quality", "plot", "receipt")} <= set(arts)


def test_a_run_removes_what_the_retention_policy_lets_go(production_home):
    """Left running on a schedule (2-minute forecast runs on a real server), a home grew by every run's
    preprocessing cache entry (1.1 MB a run on us_employment), forecast plot and training folder: the
    policy's ages were applied only by `flowcast gc --yes`, which nothing runs. Each run now removes,
    as it starts, what [retention] lets go by age; young items and model versions stay."""
    import os
    import time

    from flowcast.flows import forecast_flow

    home = Path(production_home["home"])

    def put(rel: str, days_old: float) -> Path:
        path = home / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
        when = time.time() - days_old * 86400
        for p in [path, *path.relative_to(home).parents][:-2]:  # the file and its folders below the kind's
            os.utime(home / p, (when, when))
        return path

    old = [put("runs/20240101T000000-aaaa/gru-s0/last.ckpt", 40), put("cache/prefect/flowcast-preprocess-old", 10),
           put("cache/results/flowcast-preprocess-old", 10), put("reports/forecast_tiny_20240101T000000.png", 40),
           put("quarantine/tiny/2024-01-01T00:00:00/quarantine.parquet", 100)]
    young = [put("runs/20260101T000000-bbbb/gru-s0/last.ckpt", 1), put("cache/prefect/flowcast-preprocess-new", 1),
             put("reports/forecast_tiny_20260101T000000.png", 1)]
    versions = sorted(p.name for p in (home / "models" / "versions").iterdir())
    s = forecast_flow(as_of=datetime(2019, 9, 1), **production_home)
    assert s["published_rows"] == 24
    assert [p for p in old if p.exists()] == []
    assert not (home / "runs" / "20240101T000000-aaaa").exists() and not (home / "quarantine" / "tiny").exists()
    assert all(p.exists() for p in young)
    assert sorted(p.name for p in (home / "models" / "versions").iterdir()) == versions


def test_forecast_without_a_declared_horizon_uses_the_production_models(production_home):
    """A source that declares no horizon (a --data file, a model trained with --horizon 6): the
    forecast flow forecasts the production model's 6 steps, not the monthly default of 12, which
    that model cannot forecast."""
    from flowcast.flows import forecast_flow

    kw = {**production_home, "source": {k: v for k, v in production_home["source"].items() if k != "horizon"}}
    s = forecast_flow(as_of=datetime(2019, 9, 1), **kw)
    assert s["published_rows"] == 4 * 6


def test_forecast_without_production_model_says_so(flow_kwargs):
    from flowcast.flows import forecast_flow

    with pytest.raises(RegistryError, match="no production model"):
        forecast_flow(as_of=AS_OF, **flow_kwargs)


def test_forecast_with_versions_but_none_in_production_names_them(production_home):
    """After runs where no model beat the baseline (or a pointer reset), `flowcast run` is not the
    answer: the error names the registered versions and how to promote one."""
    from flowcast.flows import forecast_flow

    (Path(production_home["home"]) / "models" / "production.json").unlink()
    with pytest.raises(RegistryError, match=r"no production model .*flowcast models promote VERSION.*gru-v\d+"):
        forecast_flow(as_of=AS_OF, **production_home)


def test_full_disk_for_the_plot_does_not_fail_a_published_run(production_home, monkeypatch):
    """The forecast plot is written after the publish: a full disk there leaves the forecasts
    published and the run completed (it failed with a bare 'OSError: [Errno 28]')."""
    import errno

    from flowcast import reporting
    from flowcast.flows import forecast_flow

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(reporting, "plot_forecasts", full)
    s = forecast_flow(as_of=datetime(2019, 10, 1), **production_home)
    assert s["published_rows"] == 24
    assert EmbeddedStore(Path(production_home["home"]) / "warehouse").has("tiny", datetime(2019, 10, 1))


def test_a_publish_that_failed_after_its_rename_is_retried_and_publishes_once(production_home, monkeypatch):
    """Regression (faults17): the key folder's fsync failing (EIO) after the new file's rename left the file
    visible under 'previously published forecasts are intact'; the publish task's retry of a scheduled slot
    (overwrite off: only into an empty key) found it and the run published nothing ('published already', by
    itself), its realized accuracy never scored. The file is taken back and the retry publishes it, once."""
    import errno

    from flowcast.flows import forecast_flow
    from flowcast.store import parquet

    real, failed = parquet._fsync_dir, []

    def eio_once(path):
        if not failed and path.name.startswith("as_of=2019-10-01") and any(path.iterdir()):
            failed.append(path)
            raise OSError(errno.EIO, "Input/output error")
        real(path)

    monkeypatch.setattr(parquet, "_fsync_dir", eio_once)
    s = forecast_flow(as_of=datetime(2019, 10, 1), overwrite=False, **production_home)
    assert failed and s["published_rows"] == 24 and not s.get("skipped"), s
    store = EmbeddedStore(Path(production_home["home"]) / "warehouse")
    assert store.read(dataset="tiny", as_of=datetime(2019, 10, 1))["run_id"].unique().to_list() == [s["run_id"]]
    assert len(list(failed[0].iterdir())) == 1


def test_backfill_three_dates_then_nothing_new(production_home):
    from flowcast.flows import backfill_flow

    store = EmbeddedStore(Path(production_home["home"]) / "warehouse")
    before = set(store.as_ofs("tiny"))
    dates = [datetime(2018, 1, 1), datetime(2018, 2, 1), datetime(2018, 3, 1)]
    first = backfill_flow(start=dates[0], end=dates[-1], every="1mo", **production_home)
    assert (first["published"], first["skipped"], first["failed"]) == (3, 0, 0)
    assert set(store.as_ofs("tiny")) - before == set(dates)
    hashes = {d: store.receipt_of("tiny", d)["content_hash"] for d in dates}
    runs = {d: store.read(dataset="tiny", as_of=d)["run_id"][0] for d in dates}
    # each date sees only its own past: the first forecast period follows the as_of
    for d in dates:
        assert store.read(dataset="tiny", as_of=d)["ds"].min() == d.replace(month=d.month + 1)

    again = backfill_flow(start=dates[0], end=dates[-1], every="1mo", **production_home)
    assert (again["published"], again["skipped"], again["failed"]) == (0, 3, 0)
    assert [(o["worker"], o["flow_run"]) for o in first["outcomes"]] == [
        ("in-process", f"forecast tiny {d:%Y-%m-%d} (backfill)") for d in dates]
    assert [(o["rows"], o["model"], o["run_id"]) for o in again["outcomes"]] == [  # what is there, from the store
        (24, o["model"], o["run_id"]) for o in first["outcomes"]]
    assert {d: store.receipt_of("tiny", d)["content_hash"] for d in dates} == hashes
    assert {d: store.read(dataset="tiny", as_of=d)["run_id"][0] for d in dates} == runs

    redo = backfill_flow(start=dates[0], end=dates[0], every="1mo", overwrite=True, **production_home)
    assert redo["published"] == 1 and store.read(dataset="tiny", as_of=dates[0])["run_id"][0] != runs[dates[0]]


def test_backfill_failing_date_is_reported_and_others_complete(production_home):
    from flowcast.flows import backfill_flow
    from flowcast.flows.backfill import BackfillError

    # 2009-06 precedes the data (no rows: fails); 2013-06 and 2017-06 have history
    with pytest.raises(BackfillError, match="1 of 3 backfill date") as info:
        backfill_flow(start=datetime(2009, 6, 1), end=datetime(2017, 6, 1), every="4y", **production_home)
    summary = info.value.summary
    status = {o["as_of"][:10]: o["status"] for o in summary["outcomes"]}
    assert status == {"2009-06-01": "failed", "2013-06-01": "published", "2017-06-01": "published"}
    failed = next(o for o in summary["outcomes"] if o["status"] == "failed")
    assert "rows are after as_of=2009-06-01" in failed["error"], failed
    assert failed["begins"] == "2010-01-01", failed  # what --json prints of the date: DataValidationError.begins
    store = EmbeddedStore(Path(production_home["home"]) / "warehouse")
    assert store.has("tiny", datetime(2013, 6, 1)) and store.has("tiny", datetime(2017, 6, 1))
    assert not store.has("tiny", datetime(2009, 6, 1))
    # the error names what was done (a full disk's listed only the failures; the dates done were in the table)
    # and that the date before the data cannot be run, not that a re-run runs it
    assert "2009-06-01 precedes the data's first as_of " in str(info.value)
    assert str(info.value).endswith("; done, whole: 2013-06-01 (published), 2017-06-01 "
                                    "(published); a re-run of the backfill skips those")


def test_a_run_before_the_data_labels_its_flow_run_with_when_the_data_begins(production_home):
    """newuser49: a deployment's backfill read the date its data begins out of a worker's failed run's message (its
    state keeps the message, not the exception), so rewording the message lost it: the run carries it as a label."""
    from prefect.client.orchestration import get_client

    from flowcast.flows import forecast_flow
    from flowcast.flows.common import BEGINS_LABEL

    state = forecast_flow(as_of=datetime(2009, 6, 1), return_state=True, **production_home)
    assert state.is_failed()
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.labels[BEGINS_LABEL] == "2010-01-01", run.labels



def test_flaky_http_source_is_retried_where_the_bytes_are_read(production_home, http_server, monkeypatch):
    """The source is a CSV on a real local HTTP server (Python's http.server, no Range support)
    that answers 503 twice, then serves: the read retries with backoff and the run completes."""
    import shutil

    from flow_helpers import source_dict

    from flowcast.data import remote
    from flowcast.flows import forecast_flow

    monkeypatch.setattr(remote, "READ_BACKOFF_S", 0.05)
    shutil.copy(Path(production_home["source"]["path"]), http_server.root / "sales.csv")
    http_server.failures += [503, 503]
    kw = dict(production_home, source=source_dict(http_server.url("sales.csv")))
    s = forecast_flow(as_of=datetime(2019, 3, 1), **kw)
    assert s["published_rows"] == 24 and s["rows_in"] == 4 * 111
    assert [m for m, _, _ in http_server.requests] == ["GET", "GET", "GET"]


def test_changed_values_at_an_http_url_are_never_served_from_the_cache(production_home, http_server):
    """Regression: a URL's fingerprint ignored its content, so after every value of the served
    file changed (same rows) the preprocessing cache served the old data (for up to 7 days)."""
    import polars as pl
    from flow_helpers import source_dict

    from flowcast.flows import forecast_flow

    served = http_server.root / "sales.csv"
    raw = pl.read_csv(Path(production_home["source"]["path"]), infer_schema=False)
    raw.write_csv(served)
    kw = dict(production_home, source=source_dict(http_server.url("sales.csv")))
    first = forecast_flow(as_of=datetime(2019, 3, 1), **kw)
    cache = Path(kw["home"]) / "cache" / "prefect"
    n_records = len(list(cache.iterdir()))
    store = EmbeddedStore(Path(kw["home"]) / "warehouse")
    before = store.read(dataset="tiny", as_of=datetime(2019, 3, 1))
    raw.with_columns((pl.col("sales").cast(pl.Float64) * 3).round(3).cast(pl.Utf8)).write_csv(served)
    second = forecast_flow(as_of=datetime(2019, 3, 1), **kw)
    assert second["rows_valid"] == first["rows_valid"]  # the same rows, other values
    assert len(list(cache.iterdir())) == n_records + 1  # a new preprocessing, not the first one's cached result
    after = store.read(dataset="tiny", as_of=datetime(2019, 3, 1))
    assert after["y_hat"].mean() > 2 * before["y_hat"].mean()  # forecasts of the new values


def test_user_errors_are_not_retried(flow_kwargs, tmp_path):
    """A missing file is a user error (exit code 2): it fails at once with one sentence."""
    from flowcast.flows import retrain_flow

    kw = dict(flow_kwargs, source=source_dict(tmp_path / "nope.csv"))
    with pytest.raises(DataValidationError, match="file not found"):
        retrain_flow(as_of=AS_OF, **kw)


@pytest.mark.parametrize(("body", "said", "recorded"), [
    ("", "sales.csv: no rows (the file has a header but no data)", "Refused: the source left this run nothing"),
    ("2019-01-01,S0,abc\n2019-02-01,S0,n/a?\n", ("; see {home}/quarantine/tiny/2019-06-01T00-00-00/"
     "quarantine.parquet; to mend them, read each check's rows and reasons in the data-quality report (the run's "
     "data-quality-tiny artifact"), "rows quarantined | 2 (100.00%)"),
])
def test_a_scheduled_run_on_a_file_with_nothing_to_run_on_leaves_its_record(flow_kwargs, tmp_path, body, said,
                                                                             recorded):
    """What a deployment's run (no command before it) does with the file `flowcast run` refuses before Prefect: it
    fails with the same error, and leaves the data-quality artifact in the UI. A header alone left none (its
    failed state only), and 'no valid rows left' named no quarantine file."""
    from flowcast.flows import retrain_flow

    csv = tmp_path / "bad" / "sales.csv"
    csv.parent.mkdir()
    csv.write_text("month,store,sales\n" + body)
    kw = dict(flow_kwargs, source=source_dict(csv))
    state = retrain_flow(as_of=AS_OF, return_state=True, **kw)
    assert state.is_failed()
    with pytest.raises(DataValidationError) as err:
        state.result()
    assert said.replace("{home}", kw["home"]) in str(err.value), str(err.value)
    quality = artifacts_of(state.state_details.flow_run_id)[artifact_key("quality", "tiny")][0].data
    assert recorded in quality


def test_bad_rows_are_quarantined_with_reasons_and_counts_reconcile(production_home, tmp_path):
    import polars as pl
    from flow_helpers import write_series

    from flowcast.flows import forecast_flow

    csv = write_series(tmp_path / "bad" / "sales.csv")
    raw = pl.read_csv(csv, infer_schema=False)
    raw = raw.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("n/a"))
        .when(pl.int_range(pl.len()) == 200).then(pl.lit("-3"))  # a negative count
        .otherwise(pl.col("sales")).alias("sales")
    )
    raw.write_csv(csv)
    kw = dict(production_home, source=dict(source_dict(csv), y_min=0.0))
    s = forecast_flow(as_of=datetime(2019, 12, 1), **kw)
    assert (s["rows_in"], s["rows_valid"], s["rows_quarantined"]) == (480, 478, 2)
    q = pl.read_parquet(Path(kw["home"]) / "quarantine" / "tiny" / "2019-12-01T00-00-00" / "quarantine.parquet")
    assert q.height == 2 and q["reason"].null_count() == 0
    assert sorted(q["sales"].to_list()) == ["-3", "n/a"]
    quality = artifacts_of(s["run_id"])[artifact_key("quality", "tiny")][0].data
    assert "rows quarantined | 2" in quality


def test_imputed_points_are_counted_in_the_run_summary_and_the_quality_report(production_home, tmp_path):
    """Actuals are observations (issue 9): gaps the preprocessing fills are counted per run."""
    import polars as pl
    from flow_helpers import write_series

    from flowcast.flows import forecast_flow

    csv = write_series(tmp_path / "gaps" / "sales.csv")
    raw = pl.read_csv(csv, infer_schema=False)
    raw.filter(~pl.int_range(pl.len()).is_in([50, 51, 300])).write_csv(csv)  # two gaps: S0 (2 months), S2 (1)
    kw = dict(production_home, source=source_dict(csv))
    s = forecast_flow(as_of=datetime(2019, 12, 1), **kw)
    assert (s["rows_in"], s["rows_valid"], s["rows_imputed"], s["rows_planned"]) == (477, 477, 3, 0)
    quality = artifacts_of(s["run_id"])[artifact_key("quality", "tiny")][0].data
    assert "not scored in backtests or realized accuracy): 3 of 480" in quality


def test_retrain_with_a_model_in_production_replaces_it_only_when_it_must(production_home):
    """gru-v1 (5 training steps) is in production and far behind the statistical models. A
    retrain scores it as the `production` candidate on the same windows; even a 99% margin does
    not keep it: it is demoted (the published forecast is never worse than the best statistical
    model) and the champion is promoted by compare and swap from gru-v1. The next retrain, with
    that champion in production, the same margin and naive as the only statistical row, keeps
    it: nothing registered or promoted, and it publishes the production model's forecasts."""
    from flowcast.flows import retrain_flow

    registry = ModelRegistry(Path(production_home["home"]) / "models")
    store = EmbeddedStore(Path(production_home["home"]) / "warehouse")
    before = registry.production("tiny").version
    ev = {"n_windows": 1, "margin": 0.99}
    s = retrain_flow(as_of=datetime(2019, 9, 1),
                     **{**production_home, "overrides": {**production_home["overrides"], "evaluation": ev}})
    board = {r["model"]: r for r in s["leaderboard"]}
    assert s["decision"]["incumbent"] == before and board["production"]["mase"] > board["damped"]["mase"]
    assert s["decision"]["action"] == "demote" and s["decision"]["promote"]
    champion = registry.production("tiny")
    assert champion.version == s["model_version"] != before and champion.name == s["decision"]["publish"]
    last = registry.history("tiny")[-1]
    assert (last["action"], last["version"], last["previous"]) == ("promote", champion.version, before)
    assert set(store.read(dataset="tiny", as_of=datetime(2019, 9, 1))["model_version"]) == {champion.version}

    events_before = len(registry.history("tiny"))
    ev = {**ev, "statistical": ["naive"]}
    s = retrain_flow(as_of=datetime(2019, 10, 1),
                     **{**production_home, "overrides": {**production_home["overrides"], "evaluation": ev}})
    board = {r["model"]: r for r in s["leaderboard"]}
    assert s["decision"]["incumbent"] == champion.version and board["production"]["mase"] < board["naive"]["mase"]
    assert s["decision"]["action"] == "keep" and not s["decision"]["promote"] and s["registered"] == {}
    assert registry.production("tiny").version == champion.version == s["model_version"]
    # production kept: no pointer moved; the one new event is the record of the kept slot (ops17's `keep`)
    added = registry.history("tiny")[events_before:]
    assert [e["action"] for e in added] == ["keep"] and added[0]["version"] == champion.version
    published = store.read(dataset="tiny", as_of=datetime(2019, 10, 1))
    assert published.height == 24 and set(published["model_version"]) == {champion.version}


def test_a_daily_schedule_on_monthly_data_publishes_only_when_something_is_new(production_home):
    """2019-09-01 publishes; 2019-09-02 sees the same observations with the same production
    model: it says so, emits flowcast.forecast.unchanged and publishes nothing; with
    publish.skip_unchanged = false it publishes again."""
    from flow_helpers import events_named

    from flowcast.flows import forecast_flow

    store = EmbeddedStore(Path(production_home["home"]) / "warehouse")
    first = forecast_flow(as_of=datetime(2019, 9, 1), **production_home)
    assert first["published_rows"] == 24 and not first.get("unchanged")
    quiet = forecast_flow(as_of=datetime(2019, 9, 2), **production_home)
    assert quiet["unchanged"] and quiet["published_rows"] == 0
    assert "no new observation of tiny since its last publish (as_of 2019-09-01)" in quiet["note"]
    assert not store.has("tiny", datetime(2019, 9, 2))
    # in the UI's run list it is told from a run that published (ops17: 'forecast tiny 2019-09-02', Completed())
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        said, published = client.read_flow_run(quiet["run_id"]), client.read_flow_run(first["run_id"])
    assert said.state.is_completed() and said.state.message == f"Nothing published: {quiet['note']}"
    assert said.name == "forecast tiny 2019-09-02 (unchanged)" and "unchanged" in said.tags
    assert published.name == "forecast tiny 2019-09-01"
    # ui42: it said what it published, where its page's side panel read 'State Message: None'
    assert published.state.message == (f"Published {first['published_rows']:,} forecast rows from "
                                       f"{first['model']} ({first['model_version']}): tiny as of 2019-09-01")
    sent = events_named("flowcast.forecast.unchanged",
                        where=lambda e: e["resource"]["flowcast.as_of"] == "2019-09-02T00:00:00")
    assert sent and sent[0]["resource"]["prefect.resource.id"] == "flowcast.dataset.tiny"
    assert any(r["prefect.resource.id"] == f"prefect.flow-run.{quiet['run_id']}" for r in sent[0]["related"])
    loud = {**production_home, "overrides": {**production_home["overrides"], "publish": {"skip_unchanged": False}}}
    again = forecast_flow(as_of=datetime(2019, 9, 3), **loud)
    assert again["published_rows"] == 24 and store.has("tiny", datetime(2019, 9, 3))


def test_a_revised_history_is_published_by_a_quiet_schedule(production_home, tmp_path):
    """Regression: the quiet-schedule check compared each series' next period, the horizon and the model only:
    a source that revised a value before as_of (same rows, same last month) was 'unchanged' and the corrected
    forecasts were never published. The fingerprint of the data recorded with each publish catches it."""
    import shutil

    import polars as pl

    from flowcast.flows import forecast_flow

    csv = tmp_path / "feed" / "sales.csv"
    csv.parent.mkdir(parents=True)
    shutil.copy(production_home["source"]["path"], csv)
    kw = {**production_home, "source": {**production_home["source"], "path": str(csv)}}
    store = EmbeddedStore(Path(kw["home"]) / "warehouse")
    assert forecast_flow(as_of=datetime(2019, 9, 1), **kw)["published_rows"] == 24
    assert forecast_flow(as_of=datetime(2019, 9, 2), **kw)["unchanged"]  # nothing new, nothing revised
    raw = pl.read_csv(csv)
    revised = raw.with_columns(pl.when((pl.col("store") == "S1") & (pl.col("month") == "2019-08-01"))
                               .then(pl.col("sales") * 3).otherwise(pl.col("sales")).alias("sales"))
    assert revised.height == raw.height and not revised.equals(raw)
    revised.write_csv(csv)
    later = forecast_flow(as_of=datetime(2019, 9, 3), **kw)
    assert later["published_rows"] == 24 and not later.get("unchanged")
    assert store.has("tiny", datetime(2019, 9, 3))
    assert forecast_flow(as_of=datetime(2019, 9, 4), **kw)["unchanged"]  # the revision is published: quiet again


def test_a_rerun_of_a_published_as_of_replaces_it_even_when_its_data_match_the_publish_before(production_home,
                                                                                               tmp_path):
    """Regression: a re-run of an as_of that was published (a backfill with overwrite, a run repeated after the
    source corrected a value) was compared with the publish before it, found 'unchanged' and published nothing:
    the as_of kept the forecasts of the data it was first run on (here a value tripled by mistake, corrected
    since), and the backfill listed the date as skipped. A re-run replaces its as_of, as the module doc says."""
    import shutil

    import polars as pl

    from flowcast.flows import forecast_flow

    csv = tmp_path / "feed" / "sales.csv"
    csv.parent.mkdir(parents=True)
    shutil.copy(production_home["source"]["path"], csv)
    kw = {**production_home, "source": {**production_home["source"], "path": str(csv)}}
    store = EmbeddedStore(Path(kw["home"]) / "warehouse")
    sep, sep2 = datetime(2019, 9, 1), datetime(2019, 9, 2)
    assert forecast_flow(as_of=sep, **kw)["published_rows"] == 24
    raw = pl.read_csv(csv)
    raw.with_columns(pl.when((pl.col("store") == "S1") & (pl.col("month") == "2019-08-01"))
                     .then(pl.col("sales") * 3).otherwise(pl.col("sales")).alias("sales")).write_csv(csv)
    assert forecast_flow(as_of=sep2, **kw)["published_rows"] == 24  # from the mistaken value
    raw.write_csv(csv)  # corrected
    rerun = forecast_flow(as_of=sep2, **kw)
    assert rerun["published_rows"] == 24 and not rerun.get("unchanged"), rerun.get("note")
    values = ["unique_id", "ds", "y_hat"]
    assert store.read(dataset="tiny", as_of=sep2).select(values).equals(store.read(dataset="tiny", as_of=sep)
                                                                        .select(values))


def test_a_damaged_earlier_publish_does_not_stop_a_later_as_of_from_publishing(production_home):
    """Regression: the quiet-schedule check read the dataset's last earlier publish, and a damaged
    Parquet file there (a disk error, a truncated copy) failed every later forecast run with
    'published partition ... cannot be read'. The check is skipped with a warning naming the
    file; the new as_of publishes (realized accuracy, which needs the old one, is a warning)."""
    from flowcast.flows import forecast_flow

    store = EmbeddedStore(Path(production_home["home"]) / "warehouse")
    assert forecast_flow(as_of=datetime(2019, 9, 1), **production_home)["published_rows"] == 24
    [part] = (Path(production_home["home"]) / "warehouse" / "forecasts").glob("dataset=tiny/as_of=2019-09-01*/*.parquet")
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])  # cut short
    later = forecast_flow(as_of=datetime(2019, 10, 1), **production_home)
    assert later["published_rows"] == 24 and not later.get("unchanged")
    assert store.read(dataset="tiny", as_of=datetime(2019, 10, 1)).height == 24
    # realized accuracy leaves the damaged as_of out, not every as_of: 2019-06-01 is scored through October
    assert store.read_realized("tiny", datetime(2019, 6, 1))["step"].to_list() == [1, 2, 3, 4]
    assert store.read_realized("tiny", datetime(2019, 9, 1)).height == 0
    from typer.testing import CliRunner

    from flowcast.cli import app

    r = CliRunner().invoke(app, ["forecasts", "--home", production_home["home"], "--format", "csv"])
    assert r.exit_code == 0, r.output
    said = f"warning: left out dataset tiny as_of 2019-09-01: published partition {part}"
    assert "".join(said.split()) in "".join(r.stderr.split())  # the console wraps long paths
    views = f"warning: the DuckDB views in {store.db_path} leave out {part}, dataset tiny as_of 2019-09-01,"
    assert "".join(views.split()) in "".join(r.stderr.split())
    import duckdb  # every query of forecasts.duckdb failed on the damaged file ('No magic bytes found')

    con = duckdb.connect(str(store.db_path), read_only=True)
    try:
        assert sorted(con.sql("SELECT strftime(as_of, '%Y-%m-%d'), count(*) FROM forecasts GROUP BY 1").fetchall()) == [
            ("2019-06-01", 24), ("2019-10-01", 24)]
    finally:
        con.close()
    import io

    import polars as pl

    listed = pl.read_csv(io.StringIO(r.stdout))["as_of"].cast(pl.Utf8).str.slice(0, 10).value_counts(sort=True)
    assert sorted(listed.rows()) == [("2019-06-01", 24), ("2019-10-01", 24)]


@pytest.mark.parametrize("damage", ["cut short", "overwritten"])
def test_a_damaged_preprocessing_cache_entry_is_dropped_not_fatal(production_home, damage):
    """Regression: a cached TrainingData that could not be read back (a full disk or a kill while
    Prefect rewrote it: its result file is written in place; or damage on disk) failed every run of
    that data and as_of ('Error: Incorrect padding', 'UnpicklingError') until the entry expired,
    7 days later. It is removed with a warning and the data preprocessed again."""
    from flowcast.flows import forecast_flow

    as_of = datetime(2019, 9, 1)
    first = forecast_flow(as_of=as_of, **production_home)
    assert first["published_rows"] == 24
    values = sorted((Path(production_home["home"]) / "cache" / "results").glob("flowcast-preprocess-*"),
                    key=lambda p: p.stat().st_mtime)
    value = values[-1]  # this run's entry
    value.write_bytes(value.read_bytes()[:100] if damage == "cut short" else b"\x1d" * 300)
    again = forecast_flow(as_of=as_of, **production_home)
    assert not again["unchanged"] and again["published_by"] == first["run_id"]  # ran whole: the same forecasts
    assert value.stat().st_size > 300  # written again, whole
    assert EmbeddedStore(Path(production_home["home"]) / "warehouse").read(dataset="tiny", as_of=as_of).height == 24


@pytest.mark.parametrize("damage", ["value deleted", "value cut short, no digest"])
def test_a_preprocessing_cache_entry_whose_value_is_gone_runs_the_task_once_completed(production_home, caplog, damage):
    """Regression (faults44): with the cached value `cache/results/<key>` deleted and its record left (someone cleaned
    `cache/results`; an `rm -rf cache` reaching `results/` first), Prefect failed the preprocess task on the record
    ('ERROR ... Path .../cache/results/<key> does not exist': a Failed task under a Completed run in the UI) before
    flowcast's warning and recompute, and kept that failure's exception as a 191-byte entry under cache/prefect and
    cache/results that nothing read. The check before the task finds the record without its value and removes it
    with a warning: the task runs once, Completed, the same forecasts, and cache/ holds what it held before. So too
    (cache45) a value cut short with no digest to check it against (an entry an older flowcast wrote, or its digest
    removed): Prefect's read of it failed the task first ('Incorrect padding'), a Failed task in the UI; the check
    before the task reads it back now."""
    from flow_helpers import task_states_of

    from flowcast.flows import forecast_flow

    as_of = datetime(2019, 9, 1)
    first = forecast_flow(as_of=as_of, **production_home)
    cache = Path(production_home["home"]).resolve() / "cache"
    held = sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file())
    value = max((cache / "results").glob("flowcast-preprocess-*"), key=lambda p: p.stat().st_mtime)  # this run's
    if damage == "value deleted":
        value.unlink()
    else:
        (cache / "digests" / value.name).unlink()
        value.write_bytes(value.read_bytes()[:100])
    caplog.clear()
    again = forecast_flow(as_of=as_of, **production_home)
    states = task_states_of(again["run_id"])
    assert states["preprocess"] == ["Completed"], states
    assert not [name for name, seen in states.items() if "Failed" in seen], states
    said = [r.getMessage() for r in caplog.records if value.name in r.getMessage()]
    assert len(said) == 1 and "removed, preprocessing again" in said[0], said
    assert ("has lost its value (the file is gone" if damage == "value deleted" else "could not be read back") in said[0]
    assert not [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert again["published_by"] == first["run_id"]  # the same forecasts: nothing published again
    assert EmbeddedStore(Path(production_home["home"]) / "warehouse").read(dataset="tiny", as_of=as_of).height == 24
    assert sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file()) == held  # no orphan entries
    assert value.exists()  # written again


def _flip_a_last_y(value: Path) -> float:
    """Flip one bit, on disk, of the last observation of a series in the cached TrainingData `value` (a base64
    pickle, as Prefect writes it): the entry still reads back, with another number. Returns the value flipped."""
    import base64
    import pickle
    import struct

    data = base64.b64decode(value.read_bytes())
    frame = pickle.loads(data)[0].frame
    for y in reversed(frame["y"].drop_nulls().to_list()):
        if data.count(packed := struct.pack("<d", y)) == 1:
            break
    bad = bytearray(data)
    bad[data.index(packed) + 6] ^= 0x10
    value.write_bytes(base64.encodebytes(bytes(bad)))
    assert pickle.loads(base64.b64decode(value.read_bytes()))[0].frame["y"].to_list() != frame["y"].to_list()
    return y


def test_a_preprocessing_cache_value_flipped_on_disk_is_dropped_not_used(production_home, caplog):
    """Regression (faults31): a byte of the cached TrainingData flipped on disk (its polars frames carry no
    checksum) read back whole, with another y: every run of that data and as_of for 7 days forecast from data that
    was not the source's, and the re-run of a published as_of replaced its forecasts with those, exit 0, without a
    word. The value's digest, recorded after the task, no longer matches: the entry is removed with a warning
    naming it, and the data preprocessed again, so the run finds the same forecasts published."""
    from flowcast.flows import forecast_flow

    as_of = datetime(2019, 9, 1)
    first = forecast_flow(as_of=as_of, **production_home)
    home = Path(production_home["home"])
    values = sorted((home / "cache" / "results").glob("flowcast-preprocess-*"), key=lambda p: p.stat().st_mtime)
    value = values[-1]  # this run's entry
    _flip_a_last_y(value)
    again = forecast_flow(as_of=as_of, **production_home)
    assert again["published_by"] == first["run_id"], "the run forecast from the damaged entry"
    said = [r.getMessage() for r in caplog.records if "does not match the digest" in r.getMessage()]
    assert len(said) == 1 and str(value.name) in said[0] and "preprocessing again" in said[0], said
    reread = forecast_flow(as_of=as_of, **production_home)  # the entry written again, whole, with its digest
    assert reread["published_by"] == first["run_id"]
    assert len([r for r in caplog.records if "does not match the digest" in r.getMessage()]) == 1


def test_a_preprocessing_cache_entry_that_cannot_be_written_is_named(production_home, monkeypatch, caplog):
    """Regression (faults17): with the cache folder full (a tmpfs with 4 KB free) the run went on, as it should,
    but its log said only Prefect's 'An error was encountered while committing transaction
    'flowcast-preprocess-...'': no file, no reason. A warning names the entry and the folder's room."""
    import errno

    import prefect.filesystems

    from flowcast.flows import forecast_flow

    def full(self, path, content, **_):  # `_sync=True`, which Prefect passes: without it a TypeError stood in for ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(prefect.filesystems.LocalFileSystem, "write_path", full)
    as_of = datetime(2019, 9, 1)
    assert forecast_flow(as_of=as_of, **production_home)["published_rows"] == 24  # the run goes on
    cache = Path(production_home["home"]).resolve() / "cache"
    said = [r.getMessage() for r in caplog.records if "could not be written" in r.getMessage()]
    assert len(said) == 1 and f"The preprocessing cache entry {cache / 'prefect'}" in said[0], said
    assert "KB free in" in said[0] and "preprocesses again" in said[0]


def test_a_preprocessing_cache_value_cut_short_by_a_full_disk_is_removed(production_home, monkeypatch, caplog):
    """Regression (faults28): on a full disk Prefect's write of the cached value stops part way (a tmpfs home with
    160 KB free kept 152 KB of a 3 MB value) and its record is never committed, so nothing reads the value back, but
    it stayed on the disk: the room it took made the publish that followed fail with ENOSPC where it fitted. A value
    whose record was not committed is removed, and the warning says so."""
    import errno

    import prefect.filesystems

    from flowcast.flows import forecast_flow

    def fills_up(self, path, content, **_):  # a full disk: the bytes that fit, then ENOSPC (`_sync`: Prefect's)
        target = self._resolve_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content[: len(content) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    cache = Path(production_home["home"]).resolve() / "cache"
    before = {p.relative_to(cache) for p in cache.rglob("flowcast-preprocess-*")}  # the fixture's own runs
    monkeypatch.setattr(prefect.filesystems.LocalFileSystem, "write_path", fills_up)
    assert forecast_flow(as_of=datetime(2019, 9, 1), **production_home)["published_rows"] == 24  # the run goes on
    after = {p.relative_to(cache) for p in cache.rglob("flowcast-preprocess-*")}
    assert after == before, f"a cut-short value stayed on the full disk: {sorted(map(str, after - before))}"
    said = [r.getMessage() for r in caplog.records if "could not be written" in r.getMessage()]
    assert len(said) == 1 and "the value it left, never committed, was removed" in said[0], said


def test_the_realized_accuracy_artifact_says_the_runs_as_of_with_its_time(production_home):
    """Every artifact's description starts with the run's as_of, with its time when it has one ("As of
    2019-04-01 06:00: ..."); the realized-accuracy one said the date only, so the runs of one day (a
    forecast every 2 minutes on a server, or hourly) all read "As of 2026-12-03" in its history."""
    from flowcast.flows import forecast_flow
    from flowcast.ops.accuracy import artifact_key

    forecast_flow(as_of=datetime(2019, 1, 1), **production_home)
    later = forecast_flow(as_of=datetime(2019, 4, 1, 6, 0), **production_home)
    [art] = artifacts_of(later["run_id"])[artifact_key("tiny")]
    assert art.description == "As of 2019-04-01 06:00 UTC: realized accuracy of the published forecasts for tiny", \
        art.description


def test_each_run_scores_earlier_forecasts_once_their_actuals_arrive(production_home, tmp_path):
    """Forecasts published at 2019-01-01 are scored by the run at 2019-04-01 on the three months
    observed since (steps 1-3, 4 series each) and again, completed, at 2019-09-01; a re-run of
    an as_of writes nothing new. A level shift in the actuals after 2019-01 (the data changed
    regime) makes the dataset degraded: stored, shown by `flowcast accuracy`, an event."""
    import json

    import polars as pl
    from flow_helpers import events_named, write_series
    from typer.testing import CliRunner

    from flowcast.cli import app
    from flowcast.config import load_settings
    from flowcast.flows import forecast_flow
    from flowcast.ops.accuracy import artifact_key, read_status
    from flowcast.store import open_store

    csv = write_series(tmp_path / "shifted" / "sales.csv")
    raw = pl.read_csv(csv)
    raw.with_columns(pl.when(pl.col("month") > "2019-01-01").then(pl.col("sales") + 500.0).otherwise(pl.col("sales"))
                     .alias("sales")).write_csv(csv)
    kw = {**production_home, "source": {**production_home["source"], "path": str(csv)}}
    settings = load_settings(home=kw["home"])
    store = open_store(settings)
    jan = datetime(2019, 1, 1)

    forecast_flow(as_of=jan, **kw)
    april = forecast_flow(as_of=datetime(2019, 4, 1), **kw)
    rows = store.read_realized("tiny", jan)
    assert rows.select("step", "n").rows() == [(1, 4), (2, 4), (3, 4)]
    published = store.read(dataset="tiny", as_of=jan)
    actual = raw.with_columns(pl.col("month").str.to_datetime().alias("ds"))
    joined = published.join(actual.rename({"store": "unique_id"}).select("unique_id", "ds", "sales"),
                            on=["unique_id", "ds"])
    want = joined.group_by("step").agg((pl.col("sales") + 500.0 - pl.col("y_hat")).abs().mean().alias("mae"))
    got = dict(rows.select("step", "mae").rows())
    assert all(abs(got[s] - m) < 1e-9 for s, m in want.filter(pl.col("step") <= 3).rows())
    arts = artifacts_of(april["run_id"])
    assert artifact_key("tiny") in arts and "Realized accuracy of tiny" in arts[artifact_key("tiny")][0].data

    before = store.read_realized("tiny")
    forecast_flow(as_of=datetime(2019, 4, 1), **kw)  # a re-run: the same rows, nothing duplicated
    assert store.read_realized("tiny").equals(before)

    september = forecast_flow(as_of=datetime(2019, 9, 1), **kw)
    n = dict(store.read_realized("tiny").group_by("as_of").agg(pl.col("n").sum()).rows())
    # the run's own summary says what it scored and the status it came to (what `--json` prints)
    assert april["realized"]["scored_as_ofs"] == [jan.isoformat()] and april["realized"]["recorded"]
    assert september["realized"]["decay"]["degraded"] and september["realized"]["event"]
    assert n[jan] == 24 and n[datetime(2019, 4, 1)] == 20 and n[datetime(2019, 6, 1)] == 12
    status = read_status(Path(kw["home"]), "tiny")
    assert status is not None and status.degraded and status.realized_mase > 10 * status.promised_mase
    sent = [e for e in events_named("flowcast.accuracy.degraded") if e["resource"]["flowcast.dataset"] == "tiny"]
    assert sent and "exceeds the backtest's" in sent[0]["payload"]["message"]

    res = CliRunner().invoke(app, ["accuracy", "--home", kw["home"], "--dataset", "tiny", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])["datasets"]["tiny"]
    assert out["status"]["degraded"] and [r["n"] for r in out["as_ofs"]][:1] == [24]
    res = CliRunner().invoke(app, ["accuracy", "--home", kw["home"], "--dataset", "tiny"])
    assert res.exit_code == 0, res.output
    assert "2019-01-01 " in res.stdout and "…" not in res.stdout, res.stdout  # every figure whole in 80 columns


def test_an_as_of_is_settled_two_of_its_own_horizons_after_it_not_two_of_todays(production_home):
    """Regression: realized accuracy called an as_of settled (never read again) two horizons after it, the
    horizon being the scoring run's: 2018-01-01 published 6 months, the runs after it forecast 2 (`--horizon
    2`), and the run at 2018-05-01, which had scored steps 1..4, settled it; its steps 5 and 6 (June, July)
    were never scored. It is settled two of the horizons it was published with after it (its receipt)."""
    import polars as pl

    from flowcast.flows import forecast_flow

    store = EmbeddedStore(Path(production_home["home"]) / "warehouse")
    jan = datetime(2018, 1, 1)
    assert forecast_flow(as_of=jan, **production_home)["published_rows"] == 4 * 6
    short = {**production_home, "horizon": 2}
    forecast_flow(as_of=datetime(2018, 5, 1), **short)
    assert store.read_realized("tiny", jan)["step"].to_list() == [1, 2, 3, 4]
    forecast_flow(as_of=datetime(2018, 9, 1), **short)
    rows = store.read_realized("tiny", jan)
    assert rows.select("step", "n").rows() == [(s, 4) for s in range(1, 7)], rows
    n = dict(store.read_realized("tiny").group_by("as_of").agg(pl.col("n").sum()).rows())
    assert n[datetime(2018, 5, 1)] == 4 * 2  # published with 2 steps: both scored


def test_a_publish_failing_after_the_promotion_withdraws_the_promoted_model(production_home, monkeypatch):
    """A retrain promoted its winner, then its publish failed (a full disk): production pointed at
    a model whose forecasts were never published. The promotion is undone in one registry
    transaction (the version removed, a `withdraw` event); the run fails with the publish's error.
    Run again with room, it publishes and promotes once."""
    import errno

    import pyarrow.parquet as pq

    from flowcast.errors import PublishError
    from flowcast.flows import retrain_flow

    registry = ModelRegistry(Path(production_home["home"]) / "models")
    store = EmbeddedStore(Path(production_home["home"]) / "warehouse")
    before, versions = registry.production("tiny").version, [v.version for v in registry.list()]
    kw = {**production_home, "overrides": {**production_home["overrides"], "evaluation": {"n_windows": 1}}}
    write_table = pq.write_table

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(PublishError, match="No space left"):
        retrain_flow(as_of=datetime(2019, 9, 1), **kw)
    assert registry.production("tiny").version == before
    assert [v.version for v in registry.list()] == versions  # the promoted version is gone
    last = registry.history("tiny")[-1]
    assert last["action"] == "withdraw" and last["previous"] == before and "No space left" in last["reason"]
    assert not store.has("tiny", datetime(2019, 9, 1))
    # review23: its decision, written before the publish ('To publish': 'the next version of this key says what
    # came of it'), stayed the key's newest for good; its follow-up says the run failed and what production is
    decision = newest_artifact("promotion-decision-tiny")
    assert decision.data.startswith("## Not published: this run failed"), decision.data
    assert "No space left" in decision.data and last["version"] in decision.data, decision.data
    assert f"Production of tiny is {before}." in decision.data and "this run failed" in decision.description

    monkeypatch.setattr(pq, "write_table", write_table)
    s = retrain_flow(as_of=datetime(2019, 9, 1), **kw)
    assert newest_artifact("promotion-decision-tiny").data.startswith("### Published: ")
    assert s["decision"]["promote"] and registry.production("tiny").version == s["model_version"] != before
    assert len(registry.list()) == len(versions) + 1
    assert set(store.read(dataset="tiny", as_of=datetime(2019, 9, 1))["model_version"]) == {s["model_version"]}


def test_a_past_as_of_is_never_forecast_by_a_model_trained_on_later_data(production_home):
    """Regression: `flowcast forecast --as-of` (and a forecast backfill's dates) before the production model's
    training data ended forecast with it anyway: gru trained up to 2019-06-01 published 'as of 2019-03-01' from
    weights, combination and calibration fitted on actuals after that date. A date takes the newest model promoted
    for data up to it; with none it keeps production and says its forecasts are not what a run then could make."""
    from flowcast.flows import forecast_flow

    reg = ModelRegistry(Path(production_home["home"]) / "models")
    gru = reg.production("tiny")
    theta = reg.register(None, name="theta", dataset="tiny", kind="statistical",
                         recipe={"components": [{"type": "statistical", "model": "theta"}]},
                         as_of=datetime(2019, 1, 1), created_at=datetime(2019, 1, 1)).version
    reg.promote(theta, reason="the model of January")
    reg.promote(gru.version, reason="the model of June")
    assert reg.production("tiny").version == gru.version

    march = forecast_flow(as_of=datetime(2019, 3, 1), **production_home)
    assert march["model_version"] == theta and march["model"] == "theta"
    assert (f"{gru.version} was trained at as_of 2019-06-01 (last observation 2019-06-01), after this as_of: {theta}"
            in march["note"])
    pub = EmbeddedStore(Path(production_home["home"]) / "warehouse").read(dataset="tiny", as_of=datetime(2019, 3, 1))
    assert set(pub["model_version"]) == {theta} and "gru" not in set(pub["model"])

    early = forecast_flow(as_of=datetime(2018, 6, 1), **production_home)  # nothing promoted for data up to then
    assert early["model_version"] == gru.version
    assert "no model of tiny was promoted for data up to it: these forecasts are not the ones" in early["note"]
    # 5 months of data, fewer than gru's lookback: its series fall back, a note of its own beside the one above, each
    # a paragraph of the receipt that its table counts (ui44: the forecast flow joined its notes into one, and a
    # backfill date's receipt said `1, above the table` over one paragraph of four)
    first = forecast_flow(as_of=datetime(2010, 5, 1), **production_home)
    [receipt] = artifacts_of(first["run_id"])[artifact_key("receipt", "tiny")]
    paragraphs = receipt.description.split("\n\n")[1:]
    assert len(paragraphs) >= 2 and all(p.startswith("Note: ") for p in paragraphs), paragraphs
    assert [p for p in paragraphs if "fallback" in p] == [p for p in paragraphs if p.startswith("Note: 4 series")]
    assert paragraphs[-1].startswith(f"Note: {gru.version} was trained at as_of 2019-06-01"), paragraphs
    assert {"field": "notes", "value": f"{len(paragraphs)}, above the table"} in json.loads(receipt.data)
    assert " ".join(p.removeprefix("Note: ") for p in paragraphs) == first["note"]  # the CLI's: one text
    later = forecast_flow(as_of=datetime(2019, 7, 1), **production_home)
    assert later["model_version"] == gru.version and "was trained at" not in (later["note"] or "")


def test_a_retrain_records_the_last_observation_of_data_that_ended_before_its_as_of(tmp_path):
    """Regression: a model retrained as of 2026 on data that ended in 2014 was said to be "trained on data up to"
    its run's as_of: the versions a retrain registers record the newest ds of their training data, and the production
    model of a later run names it (`ModelVersion.trained_text`)."""
    from flow_helpers import TINY_OVERRIDES, write_series

    from flowcast.flows import retrain_flow

    csv = write_series(tmp_path / "raw" / "sales.csv", n_months=60)  # 2010-01 .. 2014-12
    kw = {"source": source_dict(csv), "home": str(tmp_path / "home"), "overrides": TINY_OVERRIDES}
    summary = retrain_flow(as_of=datetime(2026, 12, 6, 4, 31), **kw)
    reg = ModelRegistry(Path(kw["home"]) / "models")
    assert summary["registered"]
    for version in summary["registered"].values():
        mv = reg.get(version, fetch=False)
        assert mv.fingerprint["last_observation"] == "2014-12-01T00:00:00", version
        assert mv.trained_text() == "as_of 2026-12-06 04:31 UTC (last observation 2014-12-01)"


def _in_production_today(csv: Path, tmp_path: Path) -> tuple[dict[str, Any], Any]:
    """The flow arguments of a tiny home on `csv` and its production model, retrained on statistical candidates only
    at as_of 2026-12-06 04:31 (long after the data ended) and promoted (the past-as_of and lookahead tests)."""
    from flow_helpers import TINY_OVERRIDES

    from flowcast.flows import retrain_flow

    kw = {"source": source_dict(csv), "home": str(tmp_path / "home"), "overrides": TINY_OVERRIDES}
    summary = retrain_flow(as_of=datetime(2026, 12, 6, 4, 31), models=[], **kw)
    reg = ModelRegistry(Path(kw["home"]) / "models")
    production = reg.production("tiny") or reg.get(summary["model_version"])
    if reg.production("tiny") is None:
        reg.promote(production.version, reason="the model of today")
    return kw, production


def test_a_past_as_of_after_the_model_s_data_ended_is_forecast_without_the_lookahead_warning(tmp_path):
    """new-user51: `flowcast forecast --as-of 2024-02-25` with production retrained today on data that ended 2024-02-18
    warned "these forecasts are not the ones a run at this as_of could have made", though the model saw nothing after
    that as_of: the check compared the as_of with the as_of of the run that trained it. It compares with the last
    observation the model's data held (the registry's `last_observation`): an as_of after it, or at it (the month
    dated as_of is observed by a run at as_of), forecasts without the warning; one before it still says so."""
    from flow_helpers import write_series

    from flowcast.config import load_settings
    from flowcast.flows import forecast_flow
    from flowcast.flows.backfill import model_for_backfill

    csv = write_series(tmp_path / "raw" / "sales.csv", n_months=60)  # 2010-01 .. 2014-12
    kw, production = _in_production_today(csv, tmp_path)
    assert production.fingerprint["last_observation"] == "2014-12-01T00:00:00"
    warning = "these forecasts are not the ones a run at this as_of could have made"

    for as_of in (datetime(2015, 2, 1), datetime(2014, 12, 1)):  # after the data ended, and exactly at its end
        run = forecast_flow(as_of=as_of, **kw)
        assert run["model_version"] == production.version and run["published_rows"] > 0, run
        assert warning not in (run["note"] or "") and "after this as_of" not in (run["note"] or ""), run["note"]
    before = forecast_flow(as_of=datetime(2014, 11, 30), **kw)  # December's value is after it: a true warning
    assert before["model_version"] == production.version
    assert f"{production.version} was trained at as_of 2026-12-06 04:31 UTC (last observation 2014-12-01)" in \
        before["note"] and warning in before["note"], before["note"]
    said = model_for_backfill(load_settings(home=kw["home"]), "tiny")
    assert "except a date before its training data ended (last observation 2014-12-01)" in said, said


def test_realized_accuracy_marks_lookahead_by_where_the_model_s_data_ended_as_the_forecast_s_warning_does(tmp_path):
    """lookahead51: a forecast published without the lookahead warning (its model, retrained today, had data to
    2013-12 only; the forecast's as_of 2014-01-01) still had its realized rows marked `lookahead` and left out of the
    verdict: realized accuracy compared the training run's as_of (today) with the forecast's. Its publish records
    the warning's decision (the receipt's `lookahead`) and realized accuracy reads it: that as_of is scored as
    honest, one before the data's end (warned) is left out, and a receipt without the flag (an older flowcast's
    publish) is read as before, from the training run's as_of."""
    import polars as pl
    from flow_helpers import write_series

    from flowcast.flows import forecast_flow

    csv = write_series(tmp_path / "raw" / "sales.csv", n_months=48)  # 2010-01 .. 2013-12
    kw, production = _in_production_today(csv, tmp_path)
    assert production.fingerprint["last_observation"] == "2013-12-01T00:00:00"
    write_series(csv, n_months=60)  # the year 2014 arrives (the months before unchanged)
    warned, honest, old = datetime(2013, 6, 1), datetime(2014, 1, 1), datetime(2014, 2, 1)
    runs = {a: forecast_flow(as_of=a, **kw) for a in (warned, honest, old)}
    assert "could have made" in runs[warned]["note"] and "could have made" not in (runs[honest]["note"] or "")
    store = EmbeddedStore(Path(kw["home"]) / "warehouse")
    assert [store.receipt_of("tiny", a)["lookahead"] for a in (warned, honest, old)] == ["true", "false", "false"]
    # `old` published again as an older flowcast did: the training run's as_of in its receipt, no flag
    published = store.read(dataset="tiny", as_of=old)
    store.publish(published.select("unique_id", "ds", "step", "y_hat", *[c for c in published.columns
                                                                         if c.startswith(("lo_", "hi_", "q_"))]),
                  dataset="tiny", as_of=old, model=production.name, model_version=production.version,
                  run_id="an-older-flowcast", created_at=datetime(2014, 2, 1, 1), trained_as_of=production.as_of)
    assert store.receipt_of("tiny", old)["lookahead"] == ""

    last = forecast_flow(as_of=datetime(2014, 8, 1), **kw)  # scores the three on the actuals to July
    realized = store.read_realized("tiny")
    flags = {a: realized.filter(pl.col("as_of") == a)["lookahead"].unique().to_list() for a in (warned, honest, old)}
    assert flags == {warned: [True], honest: [False], old: [True]}, (flags, last["realized"])
    assert realized.filter(pl.col("as_of") == honest).height > 0
    decay = last["realized"]["decay"]  # the verdict judges the honest one, and leaves the other two out
    assert decay["as_ofs"] == [honest.isoformat()] and decay["lookahead"] == 2 and decay["judged"], decay




@pytest.mark.parametrize("damage", ["emptied", "cut short"])
def test_a_damaged_preprocessing_cache_digest_is_named_not_blamed_on_the_value(production_home, caplog, damage):
    """Regression (faults32): the digest file of a preprocessing cache entry (`cache/digests/<key>`) emptied or cut
    short, its value whole: the warning said the value `does not match the digest written with it (...: , the value
    now bafecab6...): damaged on disk, it would have given this run other data than the source's`, though the value
    read back to the very digest the file had held. It names the digest file as damaged now; the entry is still
    removed (the value cannot be checked) and preprocessed again, and the same forecasts are found published."""
    from flowcast.flows import forecast_flow

    as_of = datetime(2019, 9, 1)
    first = forecast_flow(as_of=as_of, **production_home)
    digests = sorted((Path(production_home["home"]) / "cache" / "digests").glob("flowcast-preprocess-*"),
                     key=lambda p: p.stat().st_mtime)
    digest = digests[-1]  # this run's entry
    whole = digest.read_text()
    digest.write_text("" if damage == "emptied" else whole[:10])
    again = forecast_flow(as_of=as_of, **production_home)
    assert again["published_by"] == first["run_id"]
    said = [r.getMessage() for r in caplog.records if digest.name in r.getMessage() and r.levelname == "WARNING"]
    assert len(said) == 1, said
    assert f"digest {digest} of the preprocessing cache entry" in said[0] and "is damaged" in said[0], said
    assert ("empty" if damage == "emptied" else repr(whole[:10])) in said[0], said
    assert "does not match" not in said[0] and "other data than the source's" not in said[0], said
    assert "preprocessing again" in said[0], said
    assert digest.read_text() == whole  # written again with the entry: the same value, the same digest


def test_a_run_on_a_url_with_a_password_and_a_token_says_neither(flow_kwargs, http_server, caplog, prefect_logging):
    """redact48: a run refused on an HTTP source whose URL holds a password and a token named the URL whole in its
    log ('Reading ... from'), its error (printed, kept as the run's state in Prefect's database) and its data-quality
    artifact (the error and the files read). Each says it `u:***@...?token=***` now."""
    import logging

    from flowcast.flows import retrain_flow
    from flowcast.mdtext import md_text

    (http_server.root / "sales.csv").write_text("month,store,sales\n")  # a header alone: refused, naming the URL
    url = http_server.url("sales.csv").replace("http://", "http://u:pw1@") + "?token=tok2"
    kw = dict(flow_kwargs, source=source_dict(url))
    with caplog.at_level(logging.INFO):
        state = retrain_flow(as_of=AS_OF, return_state=True, **kw)
    assert state.is_failed() and http_server.requests  # the URL was read
    with pytest.raises(DataValidationError) as err:
        state.result()
    quality = artifacts_of(state.state_details.flow_run_id)[artifact_key("quality", "tiny")][0].data
    shown = http_server.url("sales.csv").replace("http://", "http://u:***@") + "?token=***"
    for text in (str(err.value), state.message, quality, caplog.text):
        assert "pw1" not in text and "tok2" not in text, text
    assert shown in str(err.value) and md_text(shown) in quality and f"from {shown}" in caplog.text


@pytest.mark.parametrize("secret", ["u:12 ab@", "u:a b c d@", "?token=a b"])
def test_the_reading_line_hides_a_password_or_token_with_spaces_whole(flow_kwargs, http_server, caplog,
                                                                      prefect_logging, secret):
    """fixA49: the 'Reading ... from' line left the URL to the run loggers' filter, which reads URLs out of a line
    and cannot tell where a password with a space ends: `u:12 ab@`, `u:a b c d@` and `token=*** b` were shown. The
    line names the URL redacted whole, whatever the run does with it after."""
    import logging

    from flowcast.flows import retrain_flow
    from flowcast.redaction import redact

    plain = http_server.url("sales.csv")
    url = plain + secret if secret.startswith("?") else plain.replace("http://", f"http://{secret}")
    with caplog.at_level(logging.INFO):
        retrain_flow(as_of=AS_OF, return_state=True, **dict(flow_kwargs, source=source_dict(url)))
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Reading ")]
    assert len(said) == 1 and f" from {redact(url)}, observations up to " in said[0], said
