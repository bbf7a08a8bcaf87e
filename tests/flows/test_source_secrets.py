"""redact49: `flowcast run --data URL` stored the URL whole as its flow run's `source` parameter, password and token
in Prefect's database, UI and API. The parameter holds the URL as a log shows it (`u:***@...?token=***`); the flow,
run in the command's process, reads the URL itself; on a worker, the URL its configuration declares."""

from __future__ import annotations

import json

import pytest
from flow_helpers import source_dict, write_series
from typer.testing import CliRunner

from flowcast.cli import app
from flowcast.errors import ConfigError
from flowcast.flows.common import flow_settings
from flowcast.source_secrets import parameter_path


@pytest.mark.usefixtures("prefect_api")
def test_a_run_on_a_url_with_a_password_and_a_token_stores_neither_in_its_parameters(tmp_path, http_server):
    from prefect import get_client

    write_series(http_server.root / "sales.csv", n_series=2, n_months=48)
    url = http_server.url("sales.csv").replace("http://", "http://u:pw1@") + "?token=tok2"
    res = CliRunner().invoke(app, ["run", "--data", url, "--id-col", "store", "--time-col", "month", "--target-col",
                                   "sales", "--freq", "1mo", "--horizon", "3", "--models", "none", "--as-of",
                                   "2013-06-01", "--home", str(tmp_path / "home"), "--json"])
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.stdout.strip().splitlines()[-1])["run_id"]
    with get_client(sync_client=True) as client:
        params = client.read_flow_run(run_id).parameters
    stored = json.dumps(params)
    assert "pw1" not in stored and "tok2" not in stored, stored
    assert params["source"]["path"] == http_server.url("sales.csv").replace("http://", "http://u:***@") + "?token=***"
    # the flow read the URL itself: the token went to the server (the password too: a server without auth ignores it)
    assert ("GET", "/sales.csv?token=tok2", None) in http_server.requests, http_server.requests
    assert "pw1" not in res.output and "tok2" not in res.output


@pytest.mark.usefixtures("prefect_api")
def test_a_backfill_on_a_url_stores_no_secret_in_its_or_its_dates_parameters(tmp_path, http_server):
    """A backfill hands each date's run its own `source` parameter: the URL as shown, read back in this process."""
    from datetime import date, timedelta

    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    rows = [f"{s},{date(2023, 1, 1) + timedelta(weeks=i)},{10 + s + i % 4}" for s in (1, 2) for i in range(30)]
    (http_server.root / "w.csv").write_text("id,week,units\n" + "\n".join(rows) + "\n")
    url = http_server.url("w.csv").replace("http://", "http://u:pw3@") + "?access_token=tok4"
    res = CliRunner().invoke(app, ["backfill", url, "--id-col", "id", "--time-col", "week", "--target-col", "units",
                                   "--freq", "1w", "--horizon", "2", "--home", str(tmp_path / "home"), "--start",
                                   "2023-07-10", "--end", "2023-07-17", "--mode", "retrain", "--models", "none", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert [d["status"] for d in summary["outcomes"]] == ["published", "published"], summary
    with get_client(sync_client=True) as client:
        runs = [client.read_flow_run(summary["run_id"]), *client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[summary["run_id"]])))]
    assert len(runs) == 3, [r.name for r in runs]  # the backfill and its two dates
    for run in runs:
        stored = json.dumps(run.parameters)
        assert "pw3" not in stored and "tok4" not in stored, stored
        assert run.parameters["source"]["path"].endswith("/w.csv?access_token=***"), stored
    assert "pw3" not in res.output and "tok4" not in res.output


def test_a_worker_takes_the_url_its_configuration_declares(tmp_path, monkeypatch):
    """A flow run whose parameter hides a password another process was given (a deployment's run on a worker) reads
    the URL the worker's configuration declares, as `redact` shows it the same."""
    url = "https://u:worker-pw@h.example/data/sales.csv?token=worker-tok"
    shown = "https://u:***@h.example/data/sales.csv?token=***"
    monkeypatch.setenv("FLOWCAST_SOURCES__SALES__PATH", url)
    for k, v in {"TIME_COL": "month", "TARGET_COL": "sales", "FREQ": "1mo"}.items():
        monkeypatch.setenv(f"FLOWCAST_SOURCES__SALES__{k}", v)
    settings = flow_settings(home=str(tmp_path / "home"), source=source_dict(shown))
    assert settings.source is not None and settings.source.path == url


def test_a_hidden_secret_given_nowhere_is_refused_naming_the_url_as_shown(tmp_path):
    shown = "https://u:***@elsewhere.example/sales.csv?token=***"
    with pytest.raises(ConfigError) as err:
        flow_settings(home=str(tmp_path / "home"), source=source_dict(shown))
    assert shown in str(err.value) and "[sources.NAME]" in str(err.value)


def test_the_url_this_process_was_given_is_read_and_a_path_without_secrets_as_written(tmp_path):
    url = "https://u:given-pw@given.example/sales.csv?access_token=given-tok"
    hidden = parameter_path(url)
    assert hidden == "https://u:***@given.example/sales.csv?access_token=***"
    settings = flow_settings(home=str(tmp_path / "home"), source=source_dict(hidden))
    assert settings.source is not None and settings.source.path == url
    for plain in ("https://given.example/sales.csv", str(tmp_path / "sales.csv")):
        assert parameter_path(plain) == plain
        assert flow_settings(home=str(tmp_path / "home"), source=source_dict(plain)).source.path == plain


def test_a_second_url_shown_the_same_with_other_secrets_is_refused_naming_it_as_shown(tmp_path):
    """fixA49: the URLs this process was given are kept by their form as shown: a second one differing only in its
    password or token took the first one's place, and a flow read with the other URL's secrets. It is refused; the
    first is still the one read, and given again it is taken."""
    first = "https://u:pw-one@twice.example/sales.csv?token=tok-one"
    shown = parameter_path(first)
    for other in ("https://u:pw-two@twice.example/sales.csv?token=tok-one",
                  "https://u:pw-one@twice.example/sales.csv?token=tok-two"):
        with pytest.raises(ConfigError) as err:
            parameter_path(other)
        assert shown in str(err.value) and "pw-" not in str(err.value) and "tok-" not in str(err.value), err.value
    assert parameter_path(first) == shown
    assert flow_settings(home=str(tmp_path / "home"), source=source_dict(shown)).source.path == first
