"""flowcast.flows.logs: a failure flowcast explains is said once, by the run's final line."""

from __future__ import annotations

import logging
import sys

import pytest

from flowcast.errors import RegistryError, TrainingError
from flowcast.flows.logs import QuietFilter


def _record(msg: str, *, task_name: str | None, exc: BaseException | None = None, level: int = logging.ERROR):
    rec = logging.LogRecord("prefect.task_runs", level, __file__, 1, msg, (), (type(exc), exc, None) if exc else None)
    if task_name:
        rec.task_name = task_name
    return rec


def test_prefects_task_failed_line_of_an_explained_failure_is_dropped():
    """Regression: `flowcast forecast --horizon 14` with a 12-step network said its TrainingError twice,
    once by Prefect 3's task engine (`Task run failed with exception: TrainingError(...)`, an ERROR) and
    once by the flow's final `Finished in state Failed(...)`: the README promises once."""
    f = QuietFilter()
    err = TrainingError("model m forecasts 12 steps; asked for horizon=14")
    assert not f.filter(_record(f"Task run failed with exception: {err!r}", task_name="forecast", exc=err))
    assert not f.filter(_record(f"Task run failed with exception: {err!r} - Retries are exhausted",
                                task_name="publish", exc=err))
    # a retry is news (INFO, the run goes on), a bug keeps Prefect's report, someone else's task its own
    retry = f"Task run failed with exception: {RegistryError('x')!r} - Retry 1/3 will start 2 second(s) from now"
    assert f.filter(_record(retry, task_name="publish", level=logging.INFO))
    bug = _record(f"Task run failed with exception: {KeyError('y')!r}", task_name="forecast", exc=KeyError("y"))
    assert f.filter(bug) and bug.exc_info is not None
    assert f.filter(_record(f"Task run failed with exception: {err!r}", task_name="someone-elses", exc=err))


@pytest.mark.usefixtures("prefect_api")
def test_a_flowcast_task_failing_in_a_flow_is_said_once(tmp_path, caplog):
    """Through Prefect's real engine: the failing flowcast task's lines are dropped, the flow's final line
    says it, as an ERROR."""
    from prefect import flow

    import flowcast.flows  # noqa: F401 - installs the filter
    from flowcast.config import load_settings
    from flowcast.flows.tasks import promote_task

    settings = load_settings(home=str(tmp_path / "home"))

    @flow(name="said-once")
    def said_once() -> None:
        promote_task(settings, "nope-v1", reason="test")

    with caplog.at_level(logging.INFO), pytest.raises(RegistryError):
        said_once()
    lines = [r for r in caplog.records if r.name in ("prefect.task_runs", "prefect.flow_runs")
             and "nope-v1" in r.getMessage()]
    assert [r.name for r in lines] == ["prefect.flow_runs"], [r.getMessage() for r in lines]
    assert lines[0].getMessage().startswith("Finished in state Failed(") and lines[0].levelno == logging.ERROR


def test_the_tune_task_is_one_of_flowcasts_own():
    """Regression: `flowcast tune` logged `Task run 'tune-ad7' - Finished in state Completed()`: its task lives
    in flowcast.flows.tune, not flowcast.flows.tasks, so the filter took it for someone else's (and Prefect
    named its run with a random suffix)."""
    from flowcast.flows.logs import flowcast_task_names
    from flowcast.flows.tune import tune_task

    assert "tune" in flowcast_task_names() and "validate" in flowcast_task_names()
    assert not QuietFilter().filter(_record("Finished in state Completed()", task_name="tune", level=logging.INFO))
    assert tune_task.task_run_name == "tune hyperparameters"


def test_a_constant_declared_covariate_is_said_in_the_runs_log(tmp_path, caplog, prefect_api):
    """Regression: a declared covariate of one value on every row (a promo flag 0 everywhere) was used without a word
    in the run's log, where an empty one was warned about. Through the flows' own load_data, in a Prefect flow."""
    from datetime import UTC, datetime

    import polars as pl
    from flow_helpers import source_dict, write_series
    from prefect import flow

    import flowcast.flows  # noqa: F401 - installs the filter
    from flowcast.config import load_settings
    from flowcast.flows.common import load_data

    csv = write_series(tmp_path / "raw" / "sales.csv", n_series=2, n_months=30)
    pl.read_csv(csv).with_columns(pl.lit(0).alias("promo"), pl.lit(1).alias("open")).write_csv(csv)
    settings = load_settings(home=str(tmp_path / "home"), source={**source_dict(csv), "future_cols": ["promo"],
                                                                  "past_cols": ["open"]})

    @flow(name="constant-covariate")
    def read_it() -> None:
        load_data(settings, datetime(2012, 6, 1, tzinfo=UTC))

    with caplog.at_level(logging.INFO):
        read_it()
    said = [r for r in caplog.records if "Declared covariate" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in said] == [(logging.WARNING, (
        "Declared covariates 'open' (1 on every row), 'promo' (0 on every row) are constant: they carry no "
        "information, a network learns nothing from them; check the file's column (an export that filled it with "
        "one value?), or leave it undeclared"))]


def test_times_that_may_be_quarters_are_said_in_the_runs_log(tmp_path, caplog, prefect_api):
    """ops31: the 'Times:' warning of a time column written year-number 1 to 4 (read as January to April, maybe
    quarters) had no test of the run's log. Through the flows' own load_data, in a Prefect flow: one WARNING, naming
    the column, its first and last values and how quarters are written."""
    from datetime import UTC, datetime

    import polars as pl
    from flow_helpers import source_dict, write_series
    from prefect import flow

    import flowcast.flows  # noqa: F401 - installs the filter
    from flowcast.config import load_settings
    from flowcast.flows.common import load_data

    csv = write_series(tmp_path / "raw" / "sales.csv", n_series=2, n_months=12)  # 2017-1 .. 2019-4, per series
    pl.read_csv(csv).with_columns(pl.Series("month", [f"{2017 + t // 4}-{t % 4 + 1}" for _ in range(2)
                                                      for t in range(12)])).write_csv(csv)
    settings = load_settings(home=str(tmp_path / "home"), source=source_dict(csv))

    @flow(name="quarter-numbers")
    def read_it() -> None:
        load_data(settings, datetime(2020, 1, 1, tzinfo=UTC))

    with caplog.at_level(logging.INFO):
        read_it()
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.getMessage().startswith("Times:")]
    assert said == [(logging.WARNING, (
        "Times: every value of the time column 'month' is a year and a number 1 to 4 ('2017-1' .. '2019-4'), read as "
        "a month: '2017-1' is 2017-01-01, and no month after April is written. If they are quarters, write them "
        "'2017Q1' (year, Q, quarter; '2017-Q1' too), which are read as quarters (--freq 1q); no --time-format reads a "
        "quarter"))], caplog.text


@pytest.mark.parametrize(("task_name", "said"), [
    ("preprocess", "Not computed again: an earlier run's result for the same input and settings was reused (cached)"),
    ("someone-elses", "Finished in state Cached(type=COMPLETED)"),  # not flowcast's: Prefect's line as it is
])
def test_a_flowcast_tasks_cached_state_is_said_in_words(task_name, said):
    """Regression (ui21): a re-run's log in the UI read `Finished in state Cached(type=COMPLETED)` under `preprocess
    shops`, Prefect's vocabulary between flowcast's sentences."""
    from flowcast.flows.logs import flowcast_task_names

    assert "preprocess" in flowcast_task_names()
    rec = _record("Finished in state Cached(type=COMPLETED)", task_name=task_name, level=logging.INFO)
    assert QuietFilter().filter(rec) and rec.getMessage() == said


def _flow_record(msg: str, run: str) -> logging.LogRecord:
    rec = logging.LogRecord("prefect.flow_runs", logging.INFO, __file__, 1, msg, (), None)
    rec.flow_run_id = run
    return rec


@pytest.mark.parametrize(("before", "said"), [
    ([("Flow run was cancelled.", "run-1")],
     "Finished in state Cancelled(): cancelled by the runner that started it, which set that state"),
    ([], "Finished in state Running()"),  # not cancelled: Prefect's line as it is
    ([("Flow run was cancelled.", "run-2")], "Finished in state Running()"),  # another run cancelled
    ([("Flow run was cancelled.", "run-1"), ("Finished in state Running()", "run-1")],
     "Finished in state Running()"),  # the cancelled run's last line already said so: a later run of it says its own
])
def test_a_flow_run_its_runner_cancelled_does_not_end_its_log_saying_running(before, said):
    """serveB46: a flow run that `flowcast serve`'s stop cancelled (Cancelled, 'Runner is shutting down.') ended its
    log with Prefect's `Finished in state Running()`: the engine leaves a cancel its runner asked for to the runner
    and logs its own last state."""
    quiet = QuietFilter(task_names=set())
    for msg, run in before:
        assert quiet.filter(_flow_record(msg, run))
    rec = _flow_record("Finished in state Running()", "run-1")
    assert quiet.filter(rec) and rec.getMessage() == said


@pytest.mark.parametrize("args", [(), ("https://u:pw1@h/x.csv?token=tok2",)])
def test_a_url_in_a_runs_log_line_is_shown_without_its_secrets(args):
    """redact48: a run's line naming a URL (a library's error, a changed source's files) showed its password and
    token in the terminal and the UI; flowcast's own lines hide them, every other line now too."""
    msg = "Source changed while it was read: %s" if args else "Source changed while it was read: https://u:pw1@h/x.csv?token=tok2"
    rec = _record(msg, task_name="someone-elses", level=logging.WARNING)
    rec.args = args
    assert QuietFilter().filter(rec)
    assert rec.getMessage() == "Source changed while it was read: https://u:***@h/x.csv?token=***"


def test_a_url_in_a_runs_traceback_is_shown_without_its_secrets():
    """revR48: a line's traceback (Prefect's `Encountered exception during execution` of an unexpected error, a
    library's naming the URL it could not read) showed the password and token that its line hid."""
    try:
        raise OSError("cannot read https://u:pw1@h/x.csv?token=tok2")
    except OSError as exc:
        rec = _record("Encountered exception during execution:", task_name="someone-elses", exc=exc)
        rec.exc_info = sys.exc_info()
    assert QuietFilter().filter(rec)
    shown = logging.Formatter().format(rec)
    assert "OSError: cannot read https://u:***@h/x.csv?token=***" in shown and "test_logs.py" in shown, shown
    assert "pw1" not in shown and "tok2" not in shown, shown


@pytest.mark.parametrize("logs, kind", [("full", "RedactFilter"), ("", "QuietFilter")])
def test_a_runs_log_hides_secrets_whatever_flowcast_prefect_logs_keeps(monkeypatch, logs, kind):
    """redact49: with FLOWCAST_PREFECT_LOGS=full no filter was installed, and a URL's password and token were shown in
    every line and traceback; `full` keeps every line (a task's `Finished in state Completed()` too), redacted."""
    from flowcast.flows import logs as run_logs

    for name in run_logs.LOGGERS:  # as a process that imports flowcast.flows first
        monkeypatch.setattr(logging.getLogger(name), "filters", [])
    monkeypatch.setenv("FLOWCAST_PREFECT_LOGS", logs)
    installed = run_logs.install()
    assert type(installed).__name__ == kind
    assert all(logging.getLogger(name).filters == [installed] for name in run_logs.LOGGERS)
    assert installed.filter(_record("Finished in state Completed()", task_name="ingest", level=logging.INFO)) == (
        logs == "full")
    try:
        raise OSError("cannot read https://u:pw1@h/x.csv?token=tok2")
    except OSError as exc:
        rec = _record("Reading https://u:pw1@h/x.csv?token=tok2 failed", task_name="ingest", exc=exc)
        rec.exc_info = sys.exc_info()
    assert installed.filter(rec)
    shown = logging.Formatter().format(rec)
    assert "https://u:***@h/x.csv?token=***" in shown and "pw1" not in shown and "tok2" not in shown, shown


def test_a_flows_parameter_validation_error_hides_the_urls_it_prints(monkeypatch):
    """rev50: a flow called from Python gets its URLs whole; Prefect's `prefect.flows` logger, as their validation
    fails, printed 'Parameters: {...}' with each password and token, a logger no filter was on."""
    from flowcast.flows import logs as run_logs

    for name in run_logs.LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "filters", [])
    monkeypatch.delenv("FLOWCAST_PREFECT_LOGS", raising=False)
    run_logs.install()
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("prefect.flows")
    handler = Keep()
    logger.addHandler(handler)
    try:
        logger.error("Parameter validation failed for flow 'retrain': []\nParameters: {'source': {'path': "
                     "'https://u:hunter2pw@h/x.csv?token=tok123'}}")
    finally:
        logger.removeHandler(handler)
    assert seen and "hunter2pw" not in seen[0] and "tok123" not in seen[0] and "https://u:***@h/x.csv" in seen[0], seen


def test_a_keyword_dsns_password_in_a_runs_log_line_is_hidden():
    """fixA51: `RedactFilter` redacted a line holding '://' alone: a keyword DSN's password (`host=db password=s3cret`,
    a library's error, Prefect's parameters) was shown whole, in the line and its traceback."""
    from flowcast.flows.logs import RedactFilter

    try:
        raise OSError("cannot connect: host=db user=u password=s3cret dbname=x")
    except OSError as exc:
        rec = _record("Reading host=db password='s3 cret' dbname=x failed", task_name="ingest", exc=exc)
        rec.exc_info = sys.exc_info()
    assert RedactFilter().filter(rec)
    shown = logging.Formatter().format(rec)
    assert "Reading host=db password=*** dbname=x failed" in shown, shown
    assert "OSError: cannot connect: host=db user=u password=*** dbname=x" in shown, shown
    assert "s3cret" not in shown and "s3 cret" not in shown, shown


def test_a_flows_failed_validation_logs_and_raises_its_parameters_as_stored(monkeypatch):
    """fixA51: as a flow's parameters failed their validation, Prefect's `Flow.validate_parameters` logged them
    (`Parameters: {...}`, and each error's input) as given: a DSN's password and an option's secret, which no filter of
    the text finds, were shown whole. `SecretSafeFlow` logs them as stored (`stored_parameters`), naming what failed;
    its error says the same; Prefect's own line is withheld."""
    from prefect.exceptions import ParameterTypeError

    from flowcast.flows import retrain_flow

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("prefect.flows")
    monkeypatch.setattr(logger, "filters", [])  # no `RedactFilter`: the flow hides them itself
    handler = Keep()
    logger.addHandler(handler)
    source = {"path": "host=db password=s3cret dbname=x", "time_col": "t", "target_col": "y", "freq": "1mo"}
    try:
        with pytest.raises(ParameterTypeError) as err:
            retrain_flow.validate_parameters({"source": source, "horizon": "twelve",
                                              "overrides": {"shared_options": {"secret": "opt-s3cret", "pin": 1}}})
    finally:
        logger.removeHandler(handler)
    assert len(seen) == 1 and "s3cret" not in seen[0], seen
    assert seen[0].startswith("Parameter validation failed for flow 'retrain': ") and "horizon: Input" in seen[0], seen
    assert "'path': 'host=db password=*** dbname=x'" in seen[0] and "{'secret': '***', 'pin': 1}" in seen[0], seen
    assert "horizon: Input" in str(err.value) and "s3cret" not in str(err.value), err.value
    assert retrain_flow.validate_parameters({"horizon": 12})["horizon"] == 12 and len(seen) == 1


@pytest.mark.usefixtures("prefect_api")
def test_a_flow_run_whose_parameters_fail_validation_shows_no_secret(tmp_path, caplog):
    """fixA51, through Prefect's engine: a run whose parameters fail their validation fails naming the parameter, and
    neither its log (lines and tracebacks) nor its state shows the DSN's password or the option's secret it was given."""
    from flowcast.flows import retrain_flow

    source = {"path": "host=db password=s3cret dbname=x", "time_col": "t", "target_col": "y", "freq": "1mo"}
    with caplog.at_level(logging.INFO):
        state = retrain_flow(source=source, horizon="twelve", home=str(tmp_path / "home"),  # type: ignore[arg-type]
                             overrides={"shared_options": {"secret": "opt-s3cret"}}, return_state=True)
    assert state.is_failed() and "horizon" in str(state.message) and "s3cret" not in str(state.message), state.message
    assert "Parameters: {" in caplog.text and "password=***" in caplog.text, caplog.text
    assert "s3cret" not in caplog.text, caplog.text


def test_a_traceback_without_a_secret_is_left_to_the_formatter():
    try:
        raise OSError("cannot read https://h/x.csv")
    except OSError as exc:
        rec = _record("Encountered exception during execution:", task_name="someone-elses", exc=exc)
    assert QuietFilter().filter(rec) and rec.exc_text is None and rec.exc_info is not None


def test_a_dropped_lines_traceback_is_not_formatted_and_a_kept_ones_is_redacted():
    """fixA49: `QuietFilter` formatted and redacted a record's traceback before deciding to drop it. The checks come
    first: a dropped record is left as it was; a kept one is redacted as before."""
    from flowcast.errors import DataValidationError

    def failed(msg: str, exc: BaseException, task_name: str) -> logging.LogRecord:
        try:
            raise exc from OSError("cannot read https://u:pw1@h/x.csv?token=tok2")  # (its traceback names the URL)
        except type(exc):
            rec = _record(msg, task_name=task_name, exc=exc)
            rec.exc_info = sys.exc_info()
        return rec

    f = QuietFilter()
    err = DataValidationError("cannot read https://u:pw1@h/x.csv?token=tok2")
    dropped = failed("Encountered exception during execution: https://u:pw1@h/x.csv?token=tok2", err, "ingest")
    assert not f.filter(dropped) and dropped.exc_text is None and "pw1" in dropped.msg
    kept = failed("Reading https://u:pw1@h/x.csv?token=tok2 failed", OSError("https://u:pw1@h/x.csv?token=tok2"),
                  "ingest")
    assert f.filter(kept)
    shown = logging.Formatter().format(kept)
    assert shown.startswith("Reading https://u:***@h/x.csv?token=*** failed\n"), shown
    assert "OSError: https://u:***@h/x.csv?token=***" in shown and "pw1" not in shown and "tok2" not in shown, shown
