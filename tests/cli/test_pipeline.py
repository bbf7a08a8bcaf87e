"""`flowcast run` and `flowcast tune`: options that cannot work are refused before anything starts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from flowcast.cli import app
from flowcast.cli import pipeline as cli_pipeline
from flowcast.flows.backfill import ERRORS_SAID

runner = CliRunner()


@pytest.mark.parametrize(("args", "said"), [
    (["run", "--budget", "-1"], "tuning.budget_minutes: Input should be greater than 0 (got -1.0)"),
    (["run", "--budget", "0"], "tuning.budget_minutes: Input should be greater than 0 (got 0.0)"),
    (["run", "--max-steps", "-5"], "model.max_steps: Input should be greater than or equal to -1 (got -5)"),
    # 0 trained nothing: the untrained networks were backtested and could be promoted; a backfill ignored it
    (["run", "--max-steps", "0"], "model.max_steps: max_steps = 0 trains nothing"),
    (["backfill", "--mode", "retrain", "--max-steps", "0", "--start", "2020-01-01", "--end", "2020-02-01"],
     "model.max_steps: max_steps = 0 trains nothing"),
    (["train", "--max-steps", "0"], "model.max_steps: max_steps = 0 trains nothing"),
    (["tune", "--budget", "-1"], "tuning.budget_minutes: Input should be greater than 0 (got -1.0)"),
    (["tune", "--trials", "0"], "tuning.n_trials: Input should be greater than or equal to 1 (got 0)"),
])
def test_bad_budget_or_steps_are_refused_before_prefect_starts(tmp_path, monkeypatch, args, said):
    """Regression: `flowcast run --budget -1` started Prefect's temporary server, then failed inside the flow
    with pydantic's multi-line text ('1 validation error for _FromFile ... https://errors.pydantic.dev/...');
    `--budget 0` silently ran without tuning; `flowcast tune --budget -1` read and prepared the data before
    its task failed (ERROR lines), and `--trials 0` ran a search of 0 trials."""
    monkeypatch.chdir(tmp_path)

    def no_prefect():
        raise AssertionError("Prefect was started for options that cannot work")

    monkeypatch.setattr(cli_pipeline, "_prefect_console", no_prefect)
    res = runner.invoke(app, [*args, "--dataset", "m3-yearly"], terminal_width=400)
    assert res.exit_code == 2, res.output
    assert said in res.output and "pydantic.dev" not in res.output


class _PrefectStarted(Exception):
    pass


def _stop_before_prefect(monkeypatch) -> list[bool]:
    """The CLI's Prefect start (`_prefect_console`) raises _PrefectStarted instead; the list it returns gets an
    entry each time it was reached (empty: the command stopped before Prefect)."""
    started: list[bool] = []

    def no_prefect(*_a, **_k):
        started.append(True)
        raise _PrefectStarted

    monkeypatch.setattr(cli_pipeline, "_prefect_console", no_prefect)
    return started


def _refused_or_started(res, started: list[bool], refused: object, exit_code: int) -> bool:
    """Whether the CLI result `res` of a command stopped before Prefect (`_stop_before_prefect`'s `started`) is the
    refusal the test expects: with `refused` None, Prefect started (False); else the command exited `exit_code`
    before anything of Prefect started (True)."""
    if refused is None:
        assert started and "_PrefectStarted" in res.output, res.output
        return False
    assert not started and res.exit_code == exit_code, res.output
    return True


@pytest.mark.parametrize("command", ["run", "forecast"])
@pytest.mark.parametrize(("text", "extra", "said"), [
    ("date,id,val\n2024-01-01,a,1\n2024-01-02,a,2\n", [],
     ("all 2 rows are after as_of=2020-01-01 (the first is 2024-01-01: pick an as_of from then on); "
     "nothing to validate")),
    # a planned future covariate on every row: the flow's own sentence, planned rows counted
    ("date,id,val,promo\n2024-01-01,a,1,0\n2024-01-02,a,2,1\n", ["--future-col", "promo"],
     ("all 2 rows are after as_of=2020-01-01 (2 of them kept for the planned values of their future "
     "covariates, not their targets; the first is 2024-01-01: pick an as_of from then on); nothing observed to validate")),
])
def test_an_as_of_before_the_data_is_said_before_prefect_starts(tmp_path, monkeypatch, command, text, extra, said):
    """Regression: `flowcast run --as-of <a date before any data>` (and `flowcast forecast`) started Prefect's
    temporary server and the flow (~30 s) before validate said that every row is after as_of. The same sentence
    now comes before Prefect starts, from the reader's own rules; an as_of on the first date starts the flow."""
    monkeypatch.chdir(tmp_path)
    started = _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text(text)
    args = [command, "s.csv", "--time-col", "date", "--id-col", "id", "--target-col", "val", "--freq", "1d", *extra]
    res = runner.invoke(app, [*args, "--as-of", "2020-01-01", "--json"], terminal_width=400)
    assert not started and res.exit_code == 2, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["error"] == f"s.csv: {said}"
    res = runner.invoke(app, [*args, "--as-of", "2024-01-01"], terminal_width=400)
    assert started and "_PrefectStarted" in res.output, res.output


@pytest.mark.parametrize("command", ["run", "forecast"])
def test_the_as_of_is_parsed_once(tmp_path, monkeypatch, command):
    """`flowcast forecast --as-of` parsed its as_of (reading the source's tz: a Parquet file's schema) three times,
    `flowcast run` twice: once to check the option, once more for the data check before Prefect starts, and
    (forecast) once again for the flow. Once now, the same instant handed to the check and the flow."""
    from flowcast.data import datasets

    monkeypatch.chdir(tmp_path)
    calls: list[object] = []
    real = datasets.source_tz
    monkeypatch.setattr(datasets, "source_tz", lambda settings: calls.append(settings) or real(settings))
    _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text("date,id,val\n2024-01-01,a,1\n2024-01-02,a,2\n")
    res = runner.invoke(app, [command, "s.csv", "--time-col", "date", "--id-col", "id", "--target-col", "val",
                              "--freq", "1d", "--as-of", "2024-01-02"], terminal_width=400)
    assert "_PrefectStarted" in res.output, res.output
    assert len(calls) == 1


@pytest.mark.parametrize("command", ["run", "forecast"])
@pytest.mark.parametrize(("text", "said"), [
    ("date,id,val\n", "s.csv: no rows (the file has a header but no data)"),
    ("date,id,val\n\n\n", "s.csv: no rows (the file has a header but no data, only 2 blank lines)"),
    ("date,id,val\n2024-01-01,a,abc\n2024-01-02,a,n/a?\n",
     ("source 's': no valid rows left: all 2 rows quarantined (y_not_number=2); e.g. source_row 0 (line 2 of s.csv): "
      "val 'abc' is not a number; see {home}/quarantine/s/{started}/quarantine.parquet; to mend them, read each "
      "check's rows and reasons in the data-quality report (`flowcast validate` with the run's options)")),
    # (no run, no artifact: rows42, it named the run's data-quality-s artifact, which nothing wrote)
    ("date,id,val\n2024-01-01,a,1\n", None),  # a row to run on: the flow starts
])
def test_a_file_that_leaves_nothing_to_run_on_is_said_before_prefect_starts(tmp_path, monkeypatch, command, text,
                                                                              said):
    """Regression: `flowcast run` (and `forecast`) with a CSV of a header alone, or whose every row is quarantined,
    started Prefect's temporary server and the flow (~20 s) before the flow's validation said so. The same sentence
    now comes first, and nothing of Prefect starts."""
    monkeypatch.chdir(tmp_path)
    started = _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text(text)
    res = runner.invoke(app, [command, "s.csv", "--time-col", "date", "--id-col", "id", "--target-col", "val",
                              "--freq", "1d", "--json"], terminal_width=400)
    if not _refused_or_started(res, started, said, 2):
        return
    home = (tmp_path / "flowcast_home").resolve()  # (conftest's FLOWCAST_HOME)
    folders = [p.name for p in (home / "quarantine" / "s").iterdir()] if "{started}" in said else [""]
    assert len(folders) == 1, folders  # without --as-of: the folder of the command's start (below)
    said = said.replace("{home}", str(home)).replace("{started}", folders[0])
    assert json.loads(res.stdout.strip().splitlines()[-1])["error"] == said


def _quarantined(path) -> list[tuple[str, str]]:
    import polars as pl

    return sorted(pl.read_parquet(path).select("check", "reason").iter_rows())


def _started_folder(root, before: datetime, after: datetime) -> str:
    """The one quarantine folder under `root` (a source's), checked to be named by an instant from `before` to
    `after` (UTC, to the second, as `validate.as_of_label` writes it): the start of a command without --as-of."""
    folders = [p.name for p in root.iterdir()]
    assert len(folders) == 1, folders
    at = datetime.strptime(folders[0], "%Y-%m-%dT%H-%M-%S").replace(tzinfo=UTC)
    assert before.replace(microsecond=0) <= at <= after, (folders, before, after)
    return folders[0]


@pytest.mark.parametrize("command", ["run", "forecast"])
@pytest.mark.parametrize(("as_of", "folder"), [(None, None), ("2024-01-05", "2024-01-05T00-00-00"),
                                               ("2024-01-05T06:30:00+02:00", "2024-01-05T04-30-00")])
def test_a_refusal_before_prefect_leaves_the_quarantine_file_the_run_writes(tmp_path, monkeypatch, command, as_of,
                                                                             folder):
    """Regression: a file whose every row was quarantined, refused before Prefect started, left no quarantine file
    (a scheduled run of it did): nobody could look up later which rows were refused and why. The refusal writes
    the run's file, in the run's folder (`quarantine/<source>/<as_of>`), every row in with its reason, and its
    error names it. followup22: without --as-of the folder was `all/`, which no run writes (a later clean run of
    the file, keyed by its start, never replaced it); it is the run key the run would have taken, the command's
    start (UTC, to the second), as a scheduled run's own refusal writes it."""
    monkeypatch.chdir(tmp_path)
    started = _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text("date,id,val\n2024-01-01,a,abc\n2024-01-02,a,1\n2024-01-02,a,2\n")
    before = datetime.now(UTC)
    res = runner.invoke(app, [command, "s.csv", "--time-col", "date", "--id-col", "id", "--target-col", "val",
                              "--freq", "1d", "--json", *(["--as-of", as_of] if as_of else [])], terminal_width=400)
    after = datetime.now(UTC)
    assert not started and res.exit_code == 2, res.output
    error = json.loads(res.stdout.strip().splitlines()[-1])["error"]
    root = tmp_path / "flowcast_home" / "quarantine" / "s"
    folder = folder or _started_folder(root, before, after)
    assert [p.name for p in root.iterdir()] == [folder]  # no `all/` beside it
    path = (root / folder / "quarantine.parquet").resolve()
    assert error.startswith("source 's': no valid rows left: all 3 rows quarantined ("), error
    assert f"; see {path}; to mend them" in error, error
    got = _quarantined(path)  # rows in = 3 = quarantined, each with its reason
    assert [c for c, _ in got] == ["duplicate_conflict", "duplicate_conflict", "y_not_number"]
    assert all(r for _, r in got)


_COLS = ["--time-col", "date", "--id-col", "id", "--target-col", "val", "--freq", "1d"]
_BACKFILL = ["backfill", "--start", "2024-01-01", "--end", "2024-01-03", "--mode", "retrain"]


@pytest.mark.parametrize(("text", "said"), [
    ("date,id,val\n", "s.csv: no rows (the file has a header but no data)"),
    ("date,id,val\n2024-01-01,a,abc\n2024-01-02,a,x\n",
     ("source 's': no valid rows left: all 2 rows quarantined (y_not_number=2); e.g. source_row 0 (line 2 of s.csv): "
     "val 'abc' is not a number; see {home}/quarantine/s/2024-01-03T00-00-00/quarantine.parquet; to mend them, read "
     "each check's rows and reasons in the data-quality report (`flowcast validate` with the run's options)")),
    ("date,id,val\n2024-02-01,a,1\n",
     ("s.csv: all 1 rows are after as_of=2024-01-03 (the first is 2024-02-01: pick an as_of from then on); "
     "nothing to validate")),
])
def test_a_backfill_of_a_file_that_leaves_nothing_to_run_on_is_refused_before_prefect_starts(tmp_path, monkeypatch,
                                                                                             text, said):
    """Regression: `flowcast backfill` had no check before Prefect: a header alone, a file whose every row is
    quarantined or whose data begins after --end started Prefect's temporary server (~20 s), then failed every date
    inside it, one by one, each with the same error. It is refused at once, the last date's error said (every
    earlier date sees no more rows), its quarantine file written where that date's run writes it."""
    monkeypatch.chdir(tmp_path)
    started = _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text(text)
    res = runner.invoke(app, [*_BACKFILL, "s.csv", *_COLS, "--json"], terminal_width=400)
    assert not started and res.exit_code == 2, res.output
    home = (tmp_path / "flowcast_home").resolve()  # (conftest's FLOWCAST_HOME)
    assert json.loads(res.stdout.strip().splitlines()[-1])["error"] == (
        "backfill refused before any date ran: its 3 dates to run (2024-01-01 to 2024-01-03) would all fail as the "
        "last one does (an earlier date sees no more rows): " + said.replace("{home}", str(home)))
    if "quarantined" in said:
        assert [c for c, _ in _quarantined(home / "quarantine" / "s" / "2024-01-03T00-00-00" / "quarantine.parquet")
                ] == ["y_not_number", "y_not_number"]


@pytest.mark.parametrize(("published", "overwrite", "refused"), [
    ([], [], "its 3 dates to run (2024-01-01 to 2024-01-03) would all fail as the last one does"),
    ([3], [], "its 2 dates to run (2024-01-01 to 2024-01-02) would all fail as the last one does"),
    # plurals27: it said '1 date(s)'; review29: 'its 1 date ... would all fail as the last one does'
    ([2, 3], [], "its 1 date to run (2024-01-01) would fail: "),
    ([1, 2, 3], [], None),  # every date published: skipped, nothing run, nothing to refuse
    ([1, 2, 3], ["--overwrite"], "its 3 dates to run (2024-01-01 to 2024-01-03) would all fail as the last one does"),
])
def test_a_backfill_is_refused_for_the_dates_it_would_run(tmp_path, monkeypatch, published, overwrite, refused):
    """The check is of the last date the backfill runs: one published already is skipped without --overwrite (its
    quarantine folder is not written), and a backfill whose dates are all published starts as it did (each
    skipped), with a file that became bad since."""
    from datetime import timedelta

    import polars as pl

    from flowcast.store import EmbeddedStore

    monkeypatch.chdir(tmp_path)
    started = _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text("date,id,val\n2024-01-01,a,abc\n")
    home = (tmp_path / "flowcast_home").resolve()  # (conftest's FLOWCAST_HOME)
    store = EmbeddedStore(home / "warehouse")
    for day in published:
        as_of = datetime(2024, 1, day)
        fc = pl.DataFrame({"unique_id": ["a"], "ds": [as_of + timedelta(days=1)], "step": pl.Series([1], dtype=pl.Int32),
                           "y_hat": [1.0]})
        store.publish(fc, dataset="s", as_of=as_of, model="naive", model_version="naive-v1", run_id=f"run-{day}",
                      created_at=as_of)
    res = runner.invoke(app, [*_BACKFILL, "s.csv", *_COLS, *overwrite, "--json"], terminal_width=400)
    if not _refused_or_started(res, started, refused, 2):
        return
    error = json.loads(res.stdout.strip().splitlines()[-1])["error"]
    assert error.startswith(f"backfill refused before any date ran: {refused}"), error
    last = refused.partition(")")[0][-10:]  # the last date to run: its quarantine folder, and no other
    folders = sorted(p.name for p in (home / "quarantine" / "s").iterdir())
    assert folders == [f"{last}T00-00-00"] and f"/{last}T00-00-00/quarantine.parquet; to mend them" in error, error


@pytest.mark.parametrize("command", [["run", "--as-of", "2024-01-05"], [*_BACKFILL]])
def test_a_refusal_before_prefect_on_a_full_disk_says_the_refusal_and_the_unwritten_quarantine_file(tmp_path,
                                                                                                    monkeypatch,
                                                                                                    command):
    """faults22: a file whose every row is quarantined, refused before Prefect, whose quarantine file cannot be
    written (the disk full: ENOSPC as the file's bytes go out). The write's error was taken for a source the check
    could not read: the command started Prefect's temporary server and the flow (1m44s on a real full tmpfs), whose
    quarantine task failed the same write 3 times, and the run failed naming the disk alone, never the refusal. It
    is refused at once now (exit 2), the refusal said first, then why there is no quarantine file; no partial file."""
    import errno

    from flowcast.atomic import atomic_file
    from flowcast.data import validate as validate_mod

    def disk_full(frame, path):
        with atomic_file(path) as fh:
            fh.write(b"PAR1")  # some bytes out, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(validate_mod, "atomic_write_parquet", disk_full)
    monkeypatch.chdir(tmp_path)
    started = _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text("date,id,val\n2024-01-01,a,abc\n2024-01-02,a,x\n")
    res = runner.invoke(app, [*command, "s.csv", *_COLS, "--json"], terminal_width=400)
    assert not started and res.exit_code == 2, res.output
    error = json.loads(res.stdout.strip().splitlines()[-1])["error"]
    folder = "2024-01-03T00-00-00" if command[0] == "backfill" else "2024-01-05T00-00-00"
    path = (tmp_path / "flowcast_home" / "quarantine" / "s" / folder / "quarantine.parquet").resolve()
    assert "source 's': no valid rows left: all 2 rows quarantined (y_not_number=2)" in error, error
    assert error.endswith(f"; its quarantine file (the rows and their reasons) could not be written: could not write "
                          f"{path}: no space left on device (the disk is full); the previous file, if any, is intact. "
                          "Free space there and run again to keep them (`flowcast validate` writes them too)"), error
    assert "see /" not in error  # no path of a file that is not there
    assert list(path.parent.iterdir()) == []  # no partial file, no temp file



@pytest.mark.parametrize(("text", "args"), [
    ("date,id,val\n2024-01-01,a,1\n", []),
    ("date,id,val\n2024-01-01,a,1\n", ["--deployment", "retrain/retrain"]),
    ("date,id,val\n2024-01-02,a,abc\n", ["--deployment", "retrain/retrain"]),
])
def test_a_backfill_with_a_date_to_run_or_on_a_deployment_starts_the_flow(tmp_path, monkeypatch, text, args):
    """A row to run on by the last date starts the backfill (its earlier dates, before the data, fail on their own,
    as they did); so does any file on a deployment, whose workers read the source where they run."""
    monkeypatch.chdir(tmp_path)
    started = _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text(text)
    res = runner.invoke(app, [*_BACKFILL, "s.csv", *_COLS, *args], terminal_width=400)
    assert started and "_PrefectStarted" in res.output, res.output


@pytest.mark.parametrize("command", [["run"], ["forecast"], _BACKFILL])
@pytest.mark.parametrize(("case", "said"), [
    ("header", "s.csv: no rows (the file has a header but no data)"),
    ("not_a_number", "(line 2 of s.csv): val 'abc' is not a number"),
    ("bad_date", "(line 2 of s.csv): time '2024-13-45' does not parse as ISO-8601"),
    ("duplicate_key", "(line 2 of s.csv): 2 rows for (a, 2024-01-01) with different y values (1.0 / 2.0)"),
    ("empty", "s.csv is empty (no header, no rows)"),
    ("directory", "directory s.csv holds no data files"),
    ("unreadable", "cannot read s.csv: [Errno 13] Permission denied: 's.csv'"),
    ("bom", None),  # a byte order mark before the header: read as any other file, the flow starts
])
def test_a_new_users_bad_file_is_named_with_what_is_wrong(tmp_path, monkeypatch, command, case, said):
    """What a new user meets with `run`, `forecast` and `backfill`: each bad file is refused before Prefect
    starts, the error naming the file and what is wrong with it (the backfill's said nothing before Prefect)."""
    import os

    monkeypatch.chdir(tmp_path)
    started = _stop_before_prefect(monkeypatch)
    f = tmp_path / "s.csv"
    body = {"header": "", "not_a_number": "2024-01-01,a,abc\n2024-01-02,a,x\n",
            "bad_date": "2024-13-45,a,1\nfoo,a,2\n", "duplicate_key": "2024-01-01,a,1\n2024-01-01,a,2\n",
            "unreadable": "2024-01-01,a,1\n", "bom": "2024-01-01,a,1\n2024-01-02,a,2\n"}
    if case == "directory":
        f.mkdir()
    elif case == "empty":
        f.write_bytes(b"")
    else:
        f.write_bytes((b"\xef\xbb\xbf" if case == "bom" else b"") + ("date,id,val\n" + body[case]).encode())
    if case == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads a file without read permission")
        f.chmod(0)
    res = runner.invoke(app, [*command, "s.csv", *_COLS, "--json"], terminal_width=400)
    if not _refused_or_started(res, started, said, 2):
        return
    error = json.loads(res.stdout.strip().splitlines()[-1])["error"]
    assert said in error and "s.csv" in error, error


def test_a_file_above_the_validation_size_is_left_to_the_flow(tmp_path, monkeypatch):
    """A source above VALIDATE_CHECK_MAX_BYTES is not validated whole before the flow (it would be twice)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_pipeline, "VALIDATE_CHECK_MAX_BYTES", 5)
    _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text("date,id,val\n")
    res = runner.invoke(app, ["run", "s.csv", "--time-col", "date", "--id-col", "id", "--target-col", "val",
                              "--freq", "1d"], terminal_width=400)
    assert "_PrefectStarted" in res.output, res.output


def test_an_as_of_before_the_data_of_a_large_file_is_left_to_the_flow(tmp_path, monkeypatch):
    """A source above AS_OF_CHECK_MAX_BYTES is not read before the flow (its time column would be parsed twice):
    the flow's validate says it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_pipeline, "AS_OF_CHECK_MAX_BYTES", 10)
    _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text("date,id,val\n2024-01-01,a,1\n2024-01-02,a,2\n")
    res = runner.invoke(app, ["run", "s.csv", "--time-col", "date", "--id-col", "id", "--target-col", "val",
                              "--freq", "1d", "--as-of", "2020-01-01"], terminal_width=400)
    assert "_PrefectStarted" in res.output, res.output


def test_backfill_table_keeps_dates_and_models_whole_in_80_columns():
    """Regression: `flowcast backfill` printed its outcomes in 80 columns as 'theta-…', 'in-pr…' and
    'foreca… sales 2024-0… (backf…': rich cut every column to fit the seven. Dates, status, rows and
    model stay whole; the worker column shows only when dates ran on workers; the rest wraps."""
    from rich.console import Console

    def outcome(day: int, worker: str) -> dict:
        return {"as_of": f"2024-04-{day:02d}T00:00:00", "status": "published", "rows": 21, "model": "hybrid-v12",
                "worker": worker, "flow_run": f"forecast sales 2024-04-{day:02d} (backfill)", "error": None}

    summary = {"published": 2, "skipped": 0, "failed": 0, "outcomes": [outcome(10, "in-process"), outcome(11, "in-process")]}
    console = Console(width=80, record=True)
    console.print(cli_pipeline._backfill_table(summary, "forecast", "every 1d"))
    text = console.export_text()
    assert "…" not in text and "worker" not in text, text
    assert "2024-04-10" in text and "hybrid-v12" in text and "(backfill)" in text
    summary["outcomes"][1]["worker"] = "node-b"
    console.print(cli_pipeline._backfill_table(summary, "forecast", "every 1d"))
    assert "node-b" in console.export_text()


def test_backfill_table_on_default_named_workers_keeps_dates_and_models_whole():
    """newuser50b: `flowcast backfill --deployment` on a worker started without --name printed, in 80 columns,
    `2018-1…  publ…  …  hybri…  ProcessWorker ae940fa3-1ab6-4e72-aa68-0791f4f…`: Prefect's default name (50
    characters) took the room of every other column. The table writes it with its id short."""
    from rich.console import Console

    worker = "ProcessWorker ae940fa3-1ab6-4e72-aa68-0791f4fd740a"
    summary = {"published": 3, "skipped": 0, "failed": 0, "outcomes": [
        {"as_of": f"2018-{month}-01T00:00:00", "status": "published", "rows": 1776, "model": "hybrid-v1",
         "worker": worker, "flow_run": f"forecast us_employment 2018-{month}-01 (backfill)", "error": None}
        for month in (10, 11, 12)]}
    console = Console(width=80, record=True)
    console.print(cli_pipeline._backfill_table(summary, "forecast", "every 1mo"))
    lines = console.export_text().splitlines()
    rows = [line.split() for line in lines if line.startswith(" 2018-")]
    assert rows == [[f"2018-{month}-01", "published", "1,776", "hybrid-v1", "ProcessWorker", "ae940fa3"]
                    for month in (10, 11, 12)], lines
    assert "…" not in "\n".join(lines), lines


@pytest.mark.parametrize(("rows", "shown"), [(1776, "1,776"), (0, "0"), (None, "—")])
def test_backfill_table_writes_rows_as_its_artifact_does(rows, shown):
    """ui43: `flowcast backfill`'s table read `1776` where the backfill-summary artifact of the same dates reads
    `1,776` (and an unknown count `None`): both write the count through `reporting.rows_text`."""
    from rich.console import Console

    from flowcast import reporting

    outcome = {"as_of": "2024-04-10T00:00:00", "status": "published", "rows": rows, "model": "hybrid-v12",
               "worker": "in-process", "flow_run": "forecast sales 2024-04-10 (backfill)", "error": None}
    console = Console(width=120, record=True)
    console.print(cli_pipeline._backfill_table({"published": 1, "skipped": 0, "failed": 0, "outcomes": [outcome]},
                                               "forecast", "every 1d"))
    row = next(line for line in console.export_text().splitlines() if "2024-04-10" in line)
    assert row.split()[:3] == ["2024-04-10", "published", shown], row
    assert reporting.backfill_rows([outcome])[0]["rows"] == shown


@pytest.mark.parametrize(("width", "beside"), [(80, False), (100, False), (140, True)])
def test_backfill_rows_stay_one_line_with_the_flow_runs_below_when_narrow(width, beside):
    """look42 (ui42's notes): at 80 columns the flow-run column wrapped each row of `flowcast backfill`'s table to
    3 lines ('forecast sales' / '2024-04-10' / '(backfill)'). Where it does not fit one line beside the others the
    table goes without it and the runs' names follow: the form they share, then each run named otherwise."""
    from rich.console import Console

    def outcome(day: int, worker: str) -> dict:
        return {"as_of": f"2024-04-{day:02d}T00:00:00", "status": "published", "rows": 21, "model": "hybrid-v12",
                "worker": worker, "flow_run": f"forecast sales 2024-04-{day:02d} (backfill)", "error": None}

    outcomes = [outcome(10, "node-a"), outcome(11, "node-b"), outcome(12, "node-a")]
    outcomes[1]["flow_run"] += " (attempt 2)"
    console = Console(width=width, record=True)
    console.print(cli_pipeline._backfill_table({"published": 3, "skipped": 0, "failed": 0, "outcomes": outcomes},
                                               "forecast", "every 1d"))
    lines = console.export_text().splitlines()
    rows = [line for line in lines if line.lstrip().startswith("2024-04-1") and "published" in line]
    assert len(rows) == 3 and "…" not in "".join(lines), lines  # one line each, nothing cut
    assert all(len(line.rstrip()) <= width for line in lines), lines
    assert ("flow run" in next(x for x in lines if "as_of (UTC)" in x)) == beside, lines
    if beside:
        assert "forecast sales 2024-04-11 (backfill) (attempt 2)" in rows[1], rows
    else:
        assert lines[-2:] == ["flow runs: forecast sales <as_of> (backfill), each named with its row's as_of",
                              "2024-04-11: forecast sales 2024-04-11 (backfill) (attempt 2)"], lines


@pytest.mark.parametrize("n_failed", [1, 6])
def test_backfill_table_points_below_for_the_errors_its_error_says_whole(n_failed):
    """Regression (ui40): a failed date's error filled the detail column of `flowcast backfill`'s table at 80
    columns, 29 lines of 20 characters, its quarantine path broken mid-word ('.flowcas t/quarantine'), then the
    same error was printed whole below the table. The cell says where it is; a date beyond the `ERRORS_SAID`
    the error names keeps its own."""
    from rich.console import Console

    from flowcast.flows.backfill import ERRORS_SAID

    def failed(day: int) -> dict:
        return {"as_of": f"2024-04-{day:02d}T00:00:00", "status": "failed", "rows": 0, "model": None,
                "worker": "in-process", "flow_run": f"forecast sales 2024-04-{day:02d} (backfill)",
                "error": f"source 'sales': day {day} refused, see /tmp/home/quarantine/sales/quarantine.parquet"}

    published = {"as_of": "2024-04-20T00:00:00", "status": "published", "rows": 21, "model": "theta-v2",
                 "worker": "in-process", "flow_run": "forecast sales 2024-04-20 (backfill)", "error": None}
    outcomes = [failed(day) for day in range(1, n_failed + 1)] + [published]
    summary = {"published": 1, "skipped": 0, "failed": n_failed, "outcomes": outcomes}
    console = Console(width=80, record=True)
    console.print(cli_pipeline._backfill_table(summary, "forecast", "every 1d"))
    text = console.export_text()
    assert text.count(cli_pipeline.FAILED_BELOW) == min(n_failed, ERRORS_SAID), text
    assert ("day 6" in text) == (n_failed > ERRORS_SAID), text  # a 6th failed date's error: only in its cell
    assert "theta-v2" in text


@pytest.mark.parametrize("workers", [False, True])
def test_backfill_rows_stay_one_line_at_80_columns_their_details_cut_and_whole_elsewhere(monkeypatch, workers):
    """bf43: at COLUMNS=80 the detail column wrapped: a skipped date's 'completed without publishing (the store holds
    run ...'s): Skipped: ...' took 9 lines, its run id broken mid-word, a 6th failed date's error 4. Every row is one
    line: the detail is cut with an ellipsis, a line under the table says so, and --json (the summary's outcomes) and
    the backfill-summary artifact keep it whole."""
    import io

    from rich.console import Console

    from flowcast import reporting
    from flowcast.flows.backfill import ERRORS_SAID

    run = "369eb2a9-8fa1-4c1e-9d2b-0123456789ab"
    skipped = (f"completed without publishing (the store holds run {run}'s): Skipped: sales as of 2024-04-21 00:00 "
               f"UTC is published already (1,776 rows of theta-v1, run {run}) and overwrite is off")
    error = "source 'sales': 12 of 183 rows quarantined, see /tmp/home/.flowcast/quarantine/sales/quarantine.parquet"
    worker = "node-a" if workers else "in-process"
    outcomes = [{"as_of": f"2024-04-{day:02d}T00:00:00", "status": "failed", "rows": 0, "model": None,
                 "worker": worker, "flow_run": f"forecast sales 2024-04-{day:02d} (backfill)", "error": error}
                for day in range(1, ERRORS_SAID + 2)]
    outcomes.append({"as_of": "2024-04-21T00:00:00", "status": "skipped", "rows": 0, "model": "theta-v1",
                     "worker": worker, "flow_run": "forecast sales 2024-04-21 (backfill)", "error": skipped})
    summary = {"published": 0, "skipped": 1, "failed": ERRORS_SAID + 1, "outcomes": outcomes}
    monkeypatch.setenv("COLUMNS", "80")
    console = Console(file=io.StringIO(), record=True)
    assert console.width == 80
    console.print(cli_pipeline._backfill_table(summary, "forecast", "every 1d"))
    lines = console.export_text().splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), lines
    rows = [line for line in lines if line.lstrip().startswith("2024-04-")]
    assert len(rows) == len(outcomes), lines  # one line each
    assert rows[-1].rstrip().endswith("…") and "completed without publish" in rows[-1], rows
    assert rows[ERRORS_SAID].rstrip().endswith("…") and "source 'sales'" in rows[ERRORS_SAID], rows
    assert all(cli_pipeline.FAILED_BELOW in row for row in rows[:ERRORS_SAID]), rows
    assert cli_pipeline.DETAILS_CUT in lines, lines
    # whole where the cells point: the summary --json prints, the artifact's rows
    assert [o["error"] for o in summary["outcomes"][ERRORS_SAID:]] == [error, skipped]
    assert reporting.backfill_rows(outcomes)[-1]["detail"] == skipped


def test_backfill_table_says_nothing_of_cut_details_where_none_was_cut():
    from rich.console import Console

    outcome = {"as_of": "2024-04-10T00:00:00", "status": "skipped", "rows": 0, "model": "theta-v1",
               "worker": "in-process", "flow_run": None, "error": "already published (overwrite=False)"}
    console = Console(width=80, record=True)
    console.print(cli_pipeline._backfill_table({"published": 0, "skipped": 1, "failed": 0, "outcomes": [outcome]},
                                               "forecast", "every 1d"))
    text = console.export_text()
    assert "already published (overwrite=False)" in text and cli_pipeline.DETAILS_CUT not in text, text


@pytest.mark.parametrize(("n_failed", "note", "cut"), [
    (ERRORS_SAID, None, False),  # only 'failed: see below' cut: each error follows whole below the table
    (ERRORS_SAID + 1, None, True),  # a 6th date's error, said nowhere else, cut
    (1, "as is…", False),  # a note holding an ellipsis of its own, shown whole
    (1, "already published by another run since this backfill started (overwrite=False)", True),
])
def test_backfill_table_says_details_were_cut_only_where_one_said_nowhere_else_was(n_failed, note, cut):
    """inst44: '(details cut to fit: ...)' followed the table wherever any cell held an ellipsis: a pointer cut
    ('failed: se…') whose error the backfill's error below says whole, a note with an ellipsis of its own. It follows
    only where the table cut a date's error or note that the output says nowhere else."""
    from rich.console import Console

    def failed(day: int) -> dict:
        return {"as_of": f"2024-04-{day:02d}T00:00:00", "status": "failed", "rows": 0, "model": None,
                "worker": "in-process", "flow_run": None, "error": f"day {day}: source 'sales' could not be read"}

    outcomes = [failed(day) for day in range(1, n_failed + 1)]
    if note is not None:
        outcomes.append({"as_of": "2024-04-20T00:00:00", "status": "skipped", "rows": 0, "model": "theta-v1",
                         "worker": "in-process", "flow_run": None, "error": note})
    summary = {"published": 0, "skipped": int(note is not None), "failed": n_failed, "outcomes": outcomes}
    console = Console(width=46, record=True)
    console.print(cli_pipeline._backfill_table(summary, "forecast", "every 1d"))
    text = console.export_text()
    assert "…" in text.replace("as is…", ""), text  # at this width some cell is cut
    assert (cli_pipeline.DETAILS_CUT in " ".join(text.split())) is cut, text  # (wrapped at this width)


@pytest.mark.parametrize("n_rewritten", [0, 1, 3])
def test_backfill_table_points_below_for_what_an_overwrite_replaced_its_ids_whole(n_rewritten):
    """Regression (cli41): at 80 columns the detail cell of a date `--overwrite` rewrote wrapped its note, the
    replaced run's id broken mid-word ('da4456a2-b968-4995-' / '92fa-c4b4754c2ec6'). The cell points below the
    table, where each rewritten date's note is one line, its id whole; a first publish keeps its plain cell."""
    from rich.console import Console

    from flowcast.flows.backfill import rewritten

    def published(day: int) -> dict:
        o = {"as_of": f"2024-04-{day:02d}T00:00:00", "status": "published", "rows": 1776, "model": "theta-v2",
             "worker": "in-process", "flow_run": f"forecast sales 2024-04-{day:02d} (backfill)", "error": None}
        held = {"rows": "1776", "run_id": f"369eb2a9-8fa1-4c1e-9d2b-{day:012d}", "model_version": "theta-v1"}
        return rewritten(o, held, None) if day <= n_rewritten else o

    summary = {"published": 4, "skipped": 0, "failed": 0, "outcomes": [published(day) for day in range(1, 5)]}
    console = Console(width=80, record=True)
    console.print(cli_pipeline._backfill_table(summary, "forecast", "every 1d"))
    console.print(cli_pipeline._rewritten_below(summary))
    text = console.export_text()
    said = " ".join(text.split())
    assert text.count(cli_pipeline.REWRITTEN_BELOW) == n_rewritten, text
    for day in range(1, n_rewritten + 1):
        run = f"369eb2a9-8fa1-4c1e-9d2b-{day:012d}"
        assert f"2024-04-{day:02d}: it replaced the 1,776 rows run {run} published (theta-v1)" in said, text
        assert run in text.split(), text  # whole, on one line
    assert text.count("replaced the") == n_rewritten and "…" not in text, text


@pytest.mark.parametrize("args", [
    ["run", "--data", "sales.csv", "--time-col", "date"],
    ["forecast", "--dataset", "us_employment", "--freq", "1d"],
    ["backfill", "--start", "2024-01-01", "--end", "someday", "--dataset", "m3-yearly"],
])
def test_a_failed_command_with_json_still_prints_one_json_object(tmp_path, monkeypatch, args):
    """Regression: `flowcast run --json` that failed printed nothing on stdout (the error went to stderr only):
    a script reading the last line of stdout had no object to parse. It now ends stdout with
    {"status": "failed", "error": ..., "exit_code": ...}, as `flowcast validate --json` did."""
    import json

    monkeypatch.chdir(tmp_path)
    # (a missing file is refused first; two stores, not one series: src44 reads a file of one store without options)
    (tmp_path / "sales.csv").write_text("date,store,units\n2024-01-01,a,3\n2024-01-02,b,4\n")
    res = runner.invoke(app, [*args, "--json"], terminal_width=400)
    assert res.exit_code == 2, res.output
    last = json.loads(res.stdout.strip().splitlines()[-1])
    assert last["status"] == "failed" and last["exit_code"] == 2
    assert ("--data sales.csv also needs --target-col (its columns" in last["error"]
            or "describe a file" in last["error"] or "--end must be an ISO date" in last["error"]), last


def test_leaderboard_figures_stay_whole_in_80_columns():
    """Regression: `flowcast run` printed a board whose MSIS read 2.134 as '2.1…' in 80 columns (rich's padding
    made the eight columns 81 wide), though every figure was meant to stay whole."""
    from rich.console import Console

    row = lambda rank, kind, smape, mase, c80, c95, msis: {"rank": rank, "kind": kind, "smape": smape, "mase": mase,
                                                           "coverage80": c80, "coverage95": c95, "msis": msis}
    board = {"damped": row(1, "statistical", 13.8912, 0.0, 0.828571, 1.0, 2.13456),
             "comb": row(2, "statistical", 14.1101, 0.0716123, 0.828571, 1.0, 2.15678),
             "seasonal_naive": row(5, "statistical", 3.06512, 1.0, 0.971428, 0.971428, 2.0),
             "production": row(None, "hybrid", 3.06512, 1.0, 0.971428, None, 1234.567)}
    console = Console(width=80, record=True)
    console.print(cli_pipeline._leaderboard_table(board, "damped"))
    text = console.export_text()
    assert "…" not in text and "2.135" in text and "0.07161" in text and "1235" in text, text
    assert "damped *" in text and "seasonal_naive" in text


def test_leaderboard_leaves_out_an_interval_column_blank_on_every_row():
    """newuser46: a short backtest's board read `cov95 n/a` and `MSIS n/a` on every row, under the run's note that they
    were blank; the leaderboard artifact leaves such a column out, and so does the console's table. A column with
    one value keeps its other rows' `n/a`."""
    from rich.console import Console

    row = lambda c95, msis: {"rank": 1, "kind": "statistical", "smape": 5.571, "mase": 0.8453, "coverage80": 0.9286,
                             "coverage95": c95, "msis": msis}
    console = Console(width=80, record=True)
    console.print(cli_pipeline._leaderboard_table({"theta": row(None, None), "naive": row(None, None)}, "theta"))
    shown = console.export_text()
    head = next(line.split() for line in shown.splitlines() if line.lstrip().startswith("rank"))
    assert head == ["rank", "model", "kind", "sMAPE", "MASE", "cov80"], head
    said = " ".join(shown.split())  # the title names the coverage it shows
    assert "lower is better; cov80: interval coverage on windows" in said, said
    console = Console(width=80, record=True)
    console.print(cli_pipeline._leaderboard_table({"theta": row(None, 3.5), "naive": row(None, None)}, "theta"))
    text = console.export_text()
    head = next(line.split() for line in text.splitlines() if line.lstrip().startswith("rank"))
    assert head == ["rank", "model", "kind", "sMAPE", "MASE", "cov80", "MSIS"] and "n/a" in text, text


@pytest.mark.parametrize("command", ["run", "forecast", "backfill", "tune", "train"])
def test_every_command_that_reads_a_file_takes_it_as_its_argument_as_validate_does(tmp_path, monkeypatch, command):
    """Regression: `flowcast validate sales.csv ...` worked, then `flowcast run sales.csv ...` (the same line with
    another command) failed with 'Got unexpected extra argument(s) (sales.csv)'. The file is the PATH argument
    or --data, never two different ones; refused here before Prefect starts."""
    monkeypatch.chdir(tmp_path)
    extra = ["--start", "2020-01-01", "--end", "2020-02-01"] if command == "backfill" else []
    # irregular dates: no freq to infer (a missing file is refused first, as not found)
    (tmp_path / "sales.csv").write_text("d,y\n2024-01-01,1\n2024-01-05,2\n2024-02-20,3\n")
    res = runner.invoke(app, [command, "sales.csv", "--time-col", "d", "--target-col", "y", *extra], terminal_width=400)
    assert res.exit_code == 2 and "--data sales.csv also needs --freq" in res.output, res.output
    res = runner.invoke(app, [command, "sales.csv", "--data", "other.csv", *extra], terminal_width=400)
    assert res.exit_code == 2 and "give the file once: PATH 'sales.csv' or --data 'other.csv'" in res.output


def test_models_none_runs_the_statistical_models_only(tmp_path, monkeypatch):
    """Regression: `flowcast run --models none` was refused ('--models takes rnn, lstm, gru; got ['none']'), and
    `--models ""` trained the configured networks: a run could not leave the networks out from the command line.
    `none` sets model.cells = [] for the run (checked here on the settings the run is given, before Prefect)."""
    from flowcast.cli.common import resolve_settings

    assert cli_pipeline._models(["none"]) == [] and cli_pipeline._models(["gru,rnn"]) == ["gru", "rnn"]
    seen = {}

    def settings_of_the_run(**kw):
        seen["settings"] = resolve_settings(**kw)
        raise SystemExit(0)  # stop before Prefect starts: the settings are what this test checks

    monkeypatch.setattr(cli_pipeline, "resolve_settings", settings_of_the_run)
    runner.invoke(app, ["run", "--dataset", "m3-yearly", "--models", "none"])
    assert seen["settings"].model.cells == []
    res = runner.invoke(app, ["run", "--models", "transformer"], terminal_width=400)
    assert res.exit_code == 2 and "--models takes rnn, lstm, gru, mlp, or none (the statistical models" in res.output


def test_a_retrain_backfill_takes_models_and_max_steps_as_run_does(tmp_path, monkeypatch):
    """Regression: `flowcast backfill --mode retrain` trains on every date, as `flowcast run` does, but took neither
    --models nor --max-steps ('No such option: --models'): only FLOWCAST_MODEL__* variables could leave the networks
    out or bound their training. Both go to every date's retrain; with --mode forecast (nothing trains) they are
    refused."""
    import json
    from datetime import date, timedelta

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWCAST_MODEL__CELLS", '["gru"]')  # what --models none must override for the run
    rows = [f"{s},{date(2023, 1, 1) + timedelta(weeks=i)},{10 + s + i % 4}" for s in (1, 2) for i in range(30)]
    (tmp_path / "w.csv").write_text("id,week,units\n" + "\n".join(rows) + "\n")
    opts = ["w.csv", "--id-col", "id", "--time-col", "week", "--target-col", "units", "--freq", "1w", "--horizon", "2",
            "--home", str(tmp_path / "home"), "--start", "2023-07-10", "--end", "2023-07-17"]
    res = runner.invoke(app, ["backfill", *opts, "--models", "none", "--max-steps", "5"], terminal_width=400)
    assert res.exit_code == 2
    assert "--models and --max-steps only go with --mode retrain, where each date trains its models" in " ".join(res.output.split())
    res = runner.invoke(app, ["backfill", *opts, "--mode", "retrain", "--models", "none", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert [d["status"] for d in summary["outcomes"]] == ["published", "published"], summary
    assert not (tmp_path / "home" / "runs").exists()  # no network trained on any date


def test_a_backfill_with_failed_dates_says_status_error_and_exit_code_in_its_json(tmp_path, monkeypatch):
    """Regression: `flowcast backfill --json` whose dates partly failed exited 1 with the summary alone
    ({"run_id", "dates", "failed": 1, "outcomes"}), without the "status", "error" and "exit_code" that every
    other failed --json command ends stdout with: a script checking `status` read a failure as success.
    A backfill that succeeds says "status": "completed"."""
    import json
    from datetime import date, timedelta

    monkeypatch.chdir(tmp_path)
    rows = [f"{s},{date(2023, 1, 2) + timedelta(weeks=i)},{10 + s + i % 4}" for s in (1, 2) for i in range(30)]
    (tmp_path / "w.csv").write_text("id,week,units\n" + "\n".join(rows) + "\n")
    opts = ["w.csv", "--id-col", "id", "--time-col", "week", "--target-col", "units", "--freq", "1w", "--horizon", "2",
            "--home", str(tmp_path / "home"), "--mode", "retrain", "--models", "none", "--json"]
    # 2022-12-26 is before the first observation: that date has no data and fails, 2023-07-10 publishes
    res = runner.invoke(app, ["backfill", *opts, "--start", "2022-12-26", "--end", "2023-07-10", "--every", "28w"])
    last = json.loads(res.stdout.strip().splitlines()[-1])
    assert res.exit_code != 0 and last["status"] == "failed" and last["exit_code"] == res.exit_code, last
    assert "1 of 2 backfill dates failed" in last["error"], last
    assert [o["status"] for o in last["outcomes"]] == ["failed", "published"], last
    res = runner.invoke(app, ["backfill", *opts, "--start", "2023-07-10", "--end", "2023-07-10", "--overwrite"])
    last = json.loads(res.stdout.strip().splitlines()[-1])
    assert res.exit_code == 0 and last["status"] == "completed" and last["published"] == 1, last


@pytest.mark.parametrize(("command", "says"), [
    (["reap"], "which process runs it (.flow-runs/ in the home)"),  # '<home>/.flow-runs/': markdown ate '<home>'
    (["run"], "root of run outputs (default: FLOWCAST_HOME, else ./.flowcast)"),
    (["validate"], ("(default: the configuration's dataset, else its one [sources.NAME], else the bundled "
                   "us_employment)")),
    (["forecast"], ("periods to forecast (default: the source's horizon, else its frequency's; flowcast forecast: "
                    "the production model's own)")),
    (["backfill"], "--models -m <str> with --mode retrain: model families each date trains"),
    (["backfill"], "--max-steps <int> with --mode retrain: training steps per model"),
    # review52: '1d for sub-daily data' alone, where FLOWCAST_FORECAST_CRON's slots are their default where it is set
    (["backfill"], ("--every <str> step between as_ofs: 1d, 1w, 1mo ... (default: the data's frequency; for "
                    "sub-daily data the slots of FLOWCAST_FORECAST_CRON where it is set, else 1d, the daily forecast's "
                    "step)")),
    (["gc"], "the retention policy (the [retention] section of the --config file)"),
    (["serve"], "Serve the retrain (Mondays 03:00), forecast (daily 06:00) and backfill deployments"),
    (["serve"], "FLOWCAST_TIMEZONE their zone (default: UTC)"),
    # train named no default for these four (new-user trial): the configuration's, never a recipe's
    (["train"], "--devices <str> number of devices (DDP when > 1), or auto: every GPU (default: [model] devices, 1)"),
    (["train"], "--accelerator <str> cpu | gpu | auto (default: [model] accelerator, auto: a GPU when there is one)"),
    (["train"], "--max-steps <int> optimisation steps (default: [model] max_steps, 300; flowcast run's"),
    (["train"], "--mode <str> windowed | forking (default: [model] mode, windowed)"),
])
def test_help_says_the_defaults_and_limits_a_new_user_needs(command, says):
    """Regression (new-user trial of every --help): --home, --dataset and --horizon named no default (a run wrote
    to ./.flowcast and read us_employment without a word on either); backfill listed --models and --max-steps as
    run does, though --mode forecast (its default) refuses them; gc named flowcast.toml, which is not read unless
    named; serve said 'weekly' and 'daily' but not when, nor how to change it; reap's '<home>/.flow-runs/' showed
    as '/.flow-runs/'. The defaults said are checked against the code's."""
    from pathlib import Path

    from flowcast.config import ModelConfig, Settings
    from flowcast.flows.deploy import FORECAST_CRON, RETRAIN_CRON, TIMEZONE

    fields = Settings.model_fields  # the defaults (the tests' environment sets FLOWCAST_HOME)
    model = ModelConfig()
    assert (model.devices, model.accelerator, model.max_steps, model.mode) == (1, "auto", 300, "windowed")
    assert (fields["home"].default, fields["dataset"].default) == (Path(".flowcast"), "us_employment")
    assert (RETRAIN_CRON, FORECAST_CRON, TIMEZONE) == ("0 3 * * 1", "0 6 * * *", "UTC")
    res = runner.invoke(app, [*command, "--help"], terminal_width=400)
    assert res.exit_code == 0, res.output
    said = " ".join(res.stdout.replace("│", " ").split())
    assert says in said, said


def test_forecast_whose_slot_another_run_published_prints_its_note(tmp_path, monkeypatch):
    """Regression (ops16): a forecast run that found its slot published by another run returns no Parquet path
    or counts of its own (`skipped`, the other run named in `note`); the command's summary read
    result['n_series'] and failed with KeyError. It prints the note, as for a run with nothing new."""
    monkeypatch.chdir(tmp_path)
    note = "us_employment as_of 2019-06-01 was published by run run-7 while this run computed: nothing published"
    skipped = {"as_of": "2019-06-01T00:00:00", "run_id": "r", "dataset": "us_employment", "published_rows": 0,
               "skipped": True, "published_by": "run-7", "note": note, "store": "x"}
    monkeypatch.setattr(cli_pipeline, "call_flow", lambda *a, **k: skipped)
    res = runner.invoke(app, ["forecast", "--home", str(tmp_path / "home"), "--as-of", "2019-06-01"],
                        terminal_width=400)
    assert res.exit_code == 0, res.output
    # (Prefect's log lines aside: the shared PREFECT_HOME's temporary server may have windows to drop first, tempapi46)
    said = " ".join(" ".join(line for line in res.output.splitlines()
                             if not re.match(r"\d\d:\d\d:\d\d\.\d+ \| ", line)).split())
    assert said.startswith(note) and "us_employment: " not in said, res.output  # the dataset named once (cli41)


@pytest.mark.parametrize(("metric", "shown", "hidden"), [
    ("mase", ("sMAPE", "MASE", "13.89", "0.7162"), ("RMSSE", "0.6543")),
    ("smape", ("sMAPE", "MASE", "13.89", "0.7162"), ("RMSSE", "0.6543")),
    ("rmsse", ("MASE", "RMSSE", "0.7162", "0.6543", "ranked on RMSSE"), ("sMAPE", "13.89")),
])
def test_the_leaderboard_table_shows_the_metric_it_is_ranked_on_whole_in_80_columns(metric, shown, hidden):
    """A board ranked on RMSSE (intermittent data) shows MASE and RMSSE (its sMAPE says little on zeros: --json
    has it); the others show sMAPE and MASE as before; every figure stays whole in 80 columns."""
    from rich.console import Console

    row = {"rank": 1, "kind": "statistical", "smape": 13.8912, "mase": 0.716212, "rmsse": 0.654321,
           "coverage80": 0.828571, "coverage95": 1.0, "msis": 2.13456}
    console = Console(width=80, record=True)
    console.print(cli_pipeline._leaderboard_table({"seasonal_naive": row}, "seasonal_naive", metric))
    text = console.export_text()
    assert "…" not in text and "seasonal_naive *" in text, text
    assert all(s in text for s in shown) and not any(h in text for h in hidden), text
    # headed as the leaderboard artifact heads them (ui31: 'smape', 'mase', 'msis' here, 'sMAPE', 'MASE', 'MSIS' there)
    head = next(line.split() for line in text.splitlines() if line.lstrip().startswith("rank"))
    point = ["sMAPE", "MASE"] if metric != "rmsse" else ["MASE", "RMSSE"]
    assert head == ["rank", "model", "kind", *point, "cov80", "cov95", "MSIS"], text


@pytest.mark.parametrize(("metric", "scored", "best"), [
    ("mase", "scored by snaive MASE", "Best MASE 0.8123."),
    ("rmsse", "scored by naive RMSSE", "Best RMSSE 0.6735."),
    ("smape", "scored by sMAPE", "Best sMAPE 13.19."),
])
def test_flowcast_tune_names_its_metric_as_the_leaderboard_does(metric, scored, best):
    """Regression: `flowcast tune` said 'scored by mase' and 'Best mase' where the leaderboard says 'snaive MASE'."""
    from flowcast.cli.tune import summary_lines

    value = {"mase": 0.81234, "rmsse": 0.67351, "smape": 13.1907}[metric]
    head, line = summary_lines({"dataset": "m", "trials": 3, "seconds": 12.0, "budget_minutes": 2.0, "metric": metric,
                                "best_value": value})
    assert head == f"m: 3 trials in 12 s (budget 2 min), {scored}" and line is not None and line.startswith(best)
    assert summary_lines({"dataset": "m", "trials": 0, "seconds": 1.0, "budget_minutes": 2.0, "metric": metric,
                          "best_value": None})[1] is None
    # newuser52: a search stopped by its 1-minute budget after its first trial said 'm: 1 trials in 68 s'
    assert summary_lines({"dataset": "m", "trials": 1, "seconds": 68.0, "budget_minutes": 1.0, "metric": metric,
                          "best_value": None})[0] == f"m: 1 trial in 68 s (budget 1 min), {scored}"


@pytest.mark.parametrize(("file", "extra", "noted"), [
    ("sales_v2.csv", [], True),  # a renamed export: a dataset of its own, said before the run
    ("sales.csv", [], False),  # the dataset the home has
    ("sales_v2.csv", ["--dataset", "sales"], False),  # named: goes on with it
    ("us_employment.csv", [], False),  # a bundled dataset's name: said apart (below)
    ("euro.csv", [], True),  # a name like none of the home's: no e.g. (newuser22: it offered the first by name)
])
def test_a_renamed_data_file_is_said_to_start_a_dataset_of_its_own(tmp_path, monkeypatch, file, extra, noted):
    """Regression: `flowcast run --data sales_v2.csv` in a home whose retrains read sales.csv started dataset
    'sales_v2' (named after the file) without a word before it trained: no production model, forecasts and realized
    accuracy of its own; only 'There was no model in production' said it, after training. The CLI now says so
    before the run, naming the home's datasets and --dataset."""
    from flowcast.registry import ModelRegistry

    monkeypatch.chdir(tmp_path)
    reg = ModelRegistry(tmp_path / "home" / "models")
    art = tmp_path / "art"
    (art / "ckpt").mkdir(parents=True)
    (art / "ckpt" / "model.ckpt").write_text("w")
    (art / "meta.json").write_text(json.dumps({"cell": "gru"}))
    for ds in ("sales", "us_employment"):
        mv = reg.register(art, name="gru", dataset=ds, created_at=datetime(2024, 1, 1))
        reg.promote(mv.version, dataset=ds)
    assert reg.datasets() == ["sales", "us_employment"]
    _stop_before_prefect(monkeypatch)
    (tmp_path / file).write_text("date,id,val\n2024-01-01,a,1\n2024-01-02,a,2\n2024-01-03,a,3\n")
    res = runner.invoke(app, ["run", file, "--time-col", "date", "--id-col", "id", "--target-col", "val", "--freq",
                              "1d", "--home", "home", *extra], terminal_width=400)
    assert "_PrefectStarted" in res.output, res.output
    said = " ".join(res.output.split())
    name = file.removesuffix(".csv")
    note = (f"note: {file} is dataset '{name}' (named after the file), new in this home, which has production "
            f"models of sales, us_employment: this run starts '{name}' afresh (no production model, forecasts of its "
            "own); to go on with one of those (a renamed or newer export), pass --dataset NAME"
            + (", e.g. --dataset sales" if name == "sales_v2" else ""))
    assert (note in said) == noted, said
    assert ("e.g. --dataset" in said) == (noted and name == "sales_v2"), said
    bundled = ("note: us_employment.csv is dataset 'us_employment' (named after the file), the name of a bundled "
               "dataset whose production model this home has: this run's candidates are scored against it, and its "
               "forecasts are published under that name; pass --dataset NAME to keep them apart")
    assert (bundled in said) == (file == "us_employment.csv"), said


@pytest.mark.parametrize(("n", "listed", "said"), [
    (0, [], None),
    (1, [{"unique_id": "S5", "reason": "ended: its last observation, 2019-12-01, is 48 periods (1mo) before the "
                                       "latest of any series"}],
     ("1 series excluded, not forecast: S5 (ended: its last observation, 2019-12-01, is 48 periods (1mo) before "
      "the latest of any series)")),
    (5, [{"unique_id": f"s{i}", "reason": "every row quarantined (y_not_number=2)"} for i in range(5)],
     ("5 series excluded, not forecast: s0 (every row quarantined (y_not_number=2)); s1 (every row quarantined "
      "(y_not_number=2)); s2 (every row quarantined (y_not_number=2)); and 2 more (--json: excluded)")),
])
def test_the_run_summary_names_the_series_it_did_not_forecast(n, listed, said):
    """ui19: `flowcast run` of a file of 6 series, one of them ended and set aside (ended_series = "exclude"),
    summed up '5 series' and named none; the reason was in a warning scrolled past, and in the UI only."""
    from flowcast.cli.common import out

    with out.capture() as cap:
        cli_pipeline._print_excluded({"series_excluded": n, "excluded": listed})
    text = " ".join(cap.get().split())
    assert text == (said or "")


@pytest.mark.parametrize("command", [["run"], ["forecast"], _BACKFILL])
@pytest.mark.parametrize("text", ["date,id,val\n2024-01-01,a,abc\n", "date,id,val\n", None])
def test_a_refusal_before_prefect_sends_no_event_without_a_prefect_api(tmp_path, monkeypatch, command, text):
    """Without PREFECT_API_URL the run's event went to Prefect's temporary server, which nobody watches; sending
    it from the refusal would start one (~20 s): none is sent (`_announce_refusal`, `_announce_run_refused`:
    every row quarantined, a header alone, a missing file), and no client of an API is opened."""
    import prefect.client.orchestration
    import prefect.events
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.chdir(tmp_path)
    started = _stop_before_prefect(monkeypatch)
    sent: list[dict] = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **kw: sent.append(kw) or kw)
    monkeypatch.setattr(prefect.client.orchestration, "get_client", lambda *a, **kw: sent.append(kw))
    if text is not None:
        (tmp_path / "s.csv").write_text(text)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert not PREFECT_API_URL.value()
        res = runner.invoke(app, [*command, "s.csv", *_COLS], terminal_width=400)
    assert not started and res.exit_code == 2 and not sent, res.output


def test_a_refusal_before_prefect_in_a_shared_home_names_the_shared_quarantine_file(tmp_path, monkeypatch):
    """In a home with `shared` (FLOWCAST_SHARED), the run copies its quarantine file under shared/quarantine, which
    every machine reads, and names that copy: so does the refusal before Prefect."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWCAST_SHARED", str(tmp_path / "shared"))
    started = _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text("date,id,val\n2024-01-01,a,abc\n")
    before = datetime.now(UTC)
    res = runner.invoke(app, ["run", "s.csv", *_COLS, "--json"], terminal_width=400)
    after = datetime.now(UTC)
    assert not started and res.exit_code == 2, res.output
    folder = _started_folder(tmp_path / "flowcast_home" / "quarantine" / "s", before, after)
    shared = tmp_path / "shared" / "quarantine" / "s" / folder / "quarantine.parquet"
    error = json.loads(res.stdout.strip().splitlines()[-1])["error"]
    assert f"; see {shared}; to mend them" in error, error
    assert _quarantined(shared) == _quarantined(tmp_path / "flowcast_home" / "quarantine" / "s" / folder /
                                                "quarantine.parquet")


@pytest.mark.parametrize("command", [["run"], ["forecast"], _BACKFILL])
@pytest.mark.parametrize(("path", "said"), [
    ("gone.csv", ("source 'mine': file not found: gone.csv (relative to the working directory {cwd}); nothing was "
                 "published from it: put the file back (or fix the path) and run again")),
    ("folder", "source 'mine': directory folder holds no data files"),
    ("parts/*.csv", "source 'mine': no file matches 'parts/*.csv' (relative to the working directory {cwd})"),
])
def test_a_configured_source_whose_files_are_missing_is_refused_before_prefect_starts(tmp_path, monkeypatch,
                                                                                      command, path, said):
    """Regression: a source configured under [sources.NAME] (a scheduled `flowcast run --config ...`) whose file is
    missing, a folder without a data file or a pattern matching none started Prefect's temporary server and the
    flow (~30 s) before its ingest said so (a `--data` file was refused at once): said before Prefect now, by
    `run`, `forecast` and `backfill` alike, naming the path."""
    monkeypatch.chdir(tmp_path)
    started = _stop_before_prefect(monkeypatch)
    (tmp_path / "folder").mkdir()
    (tmp_path / "flowcast.toml").write_text(
        f'dataset = "mine"\n[sources.mine]\npath = "{path}"\nid_cols = ["id"]\ntime_col = "date"\n'
        'target_col = "val"\nfreq = "1d"\n')
    res = runner.invoke(app, [*command, "--config", "flowcast.toml", "--json"], terminal_width=400)
    assert not started and res.exit_code == 2, res.output
    error = json.loads(res.stdout.strip().splitlines()[-1])["error"]
    assert error.endswith(said.replace("{cwd}", str(tmp_path))), error


@pytest.mark.parametrize(("note", "said"), [
    ("tiny as of 2019-03-01 00:00 was already published by run r-1", "tiny as of 2019-03-01 00:00 was already published"),
    ("no new observation of tiny since its last publish", "tiny: no new observation of tiny since"),
    ("tinyx as of 2019-03-01 00:00 is published already", "tiny: tinyx as of"),  # another dataset's name
])
def test_a_runs_note_names_its_dataset_once(note, said):
    """Regression (cli41): `flowcast forecast` printed 'tiny: tiny as of ...' before a note that names the dataset."""
    assert cli_pipeline._dataset_note({"dataset": "tiny", "note": note}).startswith(said)


@pytest.mark.parametrize("json_out", [False, True])
def test_run_whose_slot_another_run_retrained_prints_its_note(tmp_path, monkeypatch, json_out):
    """review21: a retrain skipped as it started (its schedule slot retrained already: `flowcast run` without
    --as-of is a slot run) returns every RETRAIN_KEYS key, null where it read no data (review20); the command's
    summary read result['leaderboard'] and result['decision'] and failed "'NoneType' object is not iterable"
    after the flow had ended well. It prints the note, as `flowcast forecast` does for its skipped run."""
    from flowcast.flows.pipeline import _retrain_result

    monkeypatch.chdir(tmp_path)
    note = ("us_employment as of 2019-06-01 00:00 was retrained already: run run-7 kept the production model. "
            "A scheduled retrain runs once per slot: this run trains, registers and publishes nothing")
    skipped = _retrain_result(as_of="2019-06-01T00:00:00+00:00", run_id="r", dataset="us_employment", registered={},
                              published_rows=0, skipped=True, retrained_by="run-7", note=note, store="x")
    monkeypatch.setattr(cli_pipeline, "call_flow", lambda *a, **k: skipped)
    res = runner.invoke(app, ["run", "--home", str(tmp_path / "home"), *(["--json"] if json_out else [])],
                        terminal_width=400)
    assert res.exit_code == 0, res.output
    if json_out:
        got = json.loads(res.stdout)
        assert got["skipped"] is True and got["retrained_by"] == "run-7" and got["note"] == note, got
        assert got["promoted"] is False and got["leaderboard"] == {} and got["published_rows"] == 0, got
    else:
        said = " ".join(res.output.split())
        assert said.startswith(note) and "us_employment: " not in said, res.output  # the dataset named once (cli41)


def test_forecast_summary_names_the_series_it_did_not_forecast(tmp_path, monkeypatch):
    """review21: `flowcast run`'s summary names the series it did not forecast (ui19: '5 series' of a file of 6, none
    named), `flowcast forecast`'s did not: an ended series set aside (ended_series = "exclude"), or one whose every
    row was quarantined, was in the flow's result (`excluded`, `series_excluded`) and in no line it printed."""
    from flowcast.flows.forecast import _result

    monkeypatch.chdir(tmp_path)
    excluded = [{"unique_id": "S5", "reason": "ended: its last observation, 2019-12-01, is 48 periods (1mo) before "
                                              "the latest of any series"}]
    done = _result(as_of="2024-01-01T00:00:00", run_id="r", dataset="d", n_series=5, rows_in=60, rows_valid=60,
                   rows_quarantined=0, excluded=excluded, series_excluded=1, model="theta", model_version="theta-v1",
                   published_rows=15, store="x", parquet="p", duckdb="db")
    monkeypatch.setattr(cli_pipeline, "call_flow", lambda *a, **k: done)
    res = runner.invoke(app, ["forecast", "--home", str(tmp_path / "home"), "--as-of", "2024-01-01"],
                        terminal_width=400)
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "d: 5 series" in said and ("1 series excluded, not forecast: S5 (ended: its last observation, 2019-12-01, "
                                      "is 48 periods (1mo) before the latest of any series)") in said, said


def _network(folder, future: list[str], past: list[str]):
    """A trained network's folder as far as the forecast's covariate check reads it: its meta.json (hparams.data
    records the covariates it was trained with, the calendar columns of its daily data first)."""
    from flowcast.data.calendar import calendar_columns

    folder.mkdir(parents=True)
    (folder / "model.ckpt").write_text("w")
    data = {"future_cols": [*calendar_columns("1d"), *future], "past_cols": past, "freq": "1d"}
    (folder / "meta.json").write_text(json.dumps({"cell": "gru", "freq": "1d", "hparams": {"data": data}}))
    return folder


@pytest.mark.parametrize(("trained", "given", "said"), [
    (["price"], [], ("the model was trained with the future-known covariate price, which the data does not declare: "
                     "declare it as its retrain did (--future-col price; future_cols in [sources.NAME])")),
    ([], ["--future-col", "price"], ("the data declares the future-known covariate price, which the model was not "
                                      "trained with: leave it out, or retrain with it (flowcast run)")),
    (["price"], ["--future-col", "price"], None),
    (["price"], ["--past-col", "price"], "the model was trained with the future-known covariate price"),
])
def test_a_forecast_of_other_covariates_than_the_model_s_is_refused_before_prefect(tmp_path, monkeypatch, trained,
                                                                                   given, said):
    """fcst44: `flowcast forecast` of data without the covariates the production network was trained with (or with
    others) said so only inside its flow, ~15 s after Prefect started. It is said before, in the words `predict`
    says it (`covariates_differ`: the covariates and the --future-col option), naming the network's folder."""
    from flowcast.errors import TrainingError
    from flowcast.models.predict import covariates_differ
    from flowcast.registry import ModelRegistry

    monkeypatch.chdir(tmp_path)
    reg = ModelRegistry(tmp_path / "home" / "models")
    reg.promote(reg.register(_network(tmp_path / "net", trained, []), name="gru", dataset="s",
                             as_of=datetime(2024, 1, 20), created_at=datetime(2024, 1, 20)).version, dataset="s")
    started = _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text("date,id,y,price\n" + "".join(f"2024-01-{d:02d},a,{d},1\n" for d in range(1, 21)))
    res = runner.invoke(app, ["forecast", "s.csv", "--time-col", "date", "--id-col", "id", "--target-col", "y",
                              "--freq", "1d", "--home", "home", "--as-of", "2024-01-20", *given], terminal_width=400)
    text = " ".join(res.output.split())
    if not _refused_or_started(res, started, said, TrainingError.exit_code):
        return
    # the network's folder absolute and resolved, as the flow's predict names it (it said 'home/models/...', as given)
    folder = (tmp_path / "home" / "models").resolve() / reg.production("s").path.relative_to(tmp_path / "home" / "models")
    assert said in text and "cal_" not in text and f"({folder})" in "".join(text.split()), text
    if not given:  # the very sentence of the flow's predict (one wording)
        assert covariates_differ("future_cols", [], ["cal_x", "price"], {"cal_x"}) in text, text


def test_a_forecast_at_an_as_of_checks_the_covariates_of_the_model_that_as_of_forecasts_with(tmp_path, monkeypatch):
    """The check before Prefect reads the model the run would forecast with: at an as_of before the production
    model's data ended, the older model promoted for data up to it (`run_model`), trained without the covariate."""
    from flowcast.registry import ModelRegistry

    monkeypatch.chdir(tmp_path)
    reg = ModelRegistry(tmp_path / "home" / "models")
    for name, future, trained in (("old", [], datetime(2024, 1, 10)), ("new", ["price"], datetime(2024, 1, 20))):
        reg.promote(reg.register(_network(tmp_path / name, future, []), name=name, dataset="s", as_of=trained,
                                 created_at=trained).version, dataset="s")
    started = _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text("date,id,y\n" + "".join(f"2024-01-{d:02d},a,{d}\n" for d in range(1, 21)))
    args = ["forecast", "s.csv", "--time-col", "date", "--id-col", "id", "--target-col", "y", "--freq", "1d",
            "--home", "home"]
    res = runner.invoke(app, [*args, "--as-of", "2024-01-12"], terminal_width=400)  # old's: no covariate, as given
    assert started and "_PrefectStarted" in res.output, res.output
    started.clear()
    res = runner.invoke(app, [*args, "--as-of", "2024-01-20"], terminal_width=400)  # new's: price, not given
    assert not started and "the future-known covariate price" in " ".join(res.output.split()), res.output


def _promoted(home, name: str, future: list[str], trained: datetime, net):
    """A network trained with the future covariates `future` on data up to `trained`, promoted for dataset s: its
    registered folder, absolute and resolved."""
    from flowcast.registry import ModelRegistry

    reg = ModelRegistry(home / "models")
    version = reg.register(_network(net, future, []), name=name, dataset="s", as_of=trained, created_at=trained)
    reg.promote(version.version, dataset="s")
    return version.path.resolve()


_S_CSV = "date,id,y,price\n" + "".join(f"2024-01-{d:02d},a,{d},1\n" for d in range(1, 21))
_S_BACKFILL = ["backfill", "s.csv", "--time-col", "date", "--id-col", "id", "--target-col", "y", "--freq", "1d",
               "--home", "home", "--start", "2024-01-19", "--end", "2024-01-20"]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_forecast_backfill_of_data_without_the_model_s_covariates_is_refused_before_prefect(tmp_path, monkeypatch,
                                                                                              overwrite):
    """back44: `flowcast backfill --mode forecast` of data without the covariate the production network was trained
    with started Prefect and failed each date inside its own run. It is refused before, naming the dates, the
    covariate and the --future-col option in the forecast's words (its refusal's exit code), and the network's
    folder absolute and resolved, as the flow names it."""
    from flowcast.errors import TrainingError
    from flowcast.models.predict import covariates_differ

    monkeypatch.chdir(tmp_path)
    net = _promoted(tmp_path / "home", "gru", ["price"], datetime(2024, 1, 10), tmp_path / "net")
    started = _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text(_S_CSV)
    res = runner.invoke(app, [*_S_BACKFILL, *overwrite, "--json"], terminal_width=400)
    assert not started and res.exit_code == TrainingError.exit_code == 1, res.output
    error = json.loads(res.stdout.strip().splitlines()[-1])["error"]
    assert error == ("backfill refused before any date ran: its 2 dates to run (2024-01-19 to 2024-01-20) would all "
                     f"fail: {covariates_differ('future_cols', [], ['cal_x', 'price'], {'cal_x'})} ({net})"), error
    assert "--future-col price" in error, error
    started.clear()  # declared as its retrain did: the dates run
    res = runner.invoke(app, [*_S_BACKFILL, *overwrite, "--future-col", "price"], terminal_width=400)
    assert started and "_PrefectStarted" in res.output, res.output


@pytest.mark.parametrize(("start", "every", "published", "refused"), [
    # 01-12's model (old) takes the data as declared: the backfill runs, 01-20's date fails in its own run
    ("2024-01-12", "8d", [], None),
    # published already, skipped: the one date left to run would fail
    ("2024-01-12", "8d", [12], ("its 1 date to run (2024-01-20) would fail: the model was trained with the "
                                "future-known covariate price")),
    ("2024-01-19", "1d", [], "its 2 dates to run (2024-01-19 to 2024-01-20) would all fail: the model was trained"),
    ("2024-01-19", "1d", [19, 20], None),  # every date published: skipped, nothing to refuse
])
def test_a_forecast_backfill_checks_each_date_with_the_model_that_date_forecasts_with(tmp_path, monkeypatch, start,
                                                                                      every, published, refused):
    """Each date is compared with the model it would forecast with (`run_model`): an early date the older model
    (trained without the covariate) forecasts runs as declared, so the backfill is refused only where every date it
    would run (not the ones published already) would fail."""
    import polars as pl

    from flowcast.store import EmbeddedStore

    monkeypatch.chdir(tmp_path)
    _promoted(tmp_path / "home", "old", [], datetime(2024, 1, 10), tmp_path / "old")
    new = _promoted(tmp_path / "home", "new", ["price"], datetime(2024, 1, 15), tmp_path / "new")
    store = EmbeddedStore(tmp_path / "home" / "warehouse")
    for day in published:
        fc = pl.DataFrame({"unique_id": ["a"], "ds": [datetime(2024, 1, day + 1)], "step": pl.Series([1], dtype=pl.Int32),
                           "y_hat": [1.0]})
        store.publish(fc, dataset="s", as_of=datetime(2024, 1, day), model="old", model_version="old-v1",
                      run_id=f"run-{day}", created_at=datetime(2024, 1, day))
    started = _stop_before_prefect(monkeypatch)
    (tmp_path / "s.csv").write_text(_S_CSV)
    res = runner.invoke(app, [*_S_BACKFILL[:-3], start, "--end", "2024-01-20", "--every", every, "--json"],
                        terminal_width=400)
    if not _refused_or_started(res, started, refused, 1):
        return
    error = json.loads(res.stdout.strip().splitlines()[-1])["error"]
    assert error.startswith(f"backfill refused before any date ran: {refused}"), error
    assert error.endswith(f"({new})"), error  # the model that date forecasts with


_DATA_LINES = {  # what a run's data left out: each key of the flow's result and the line it prints
    "gap_cut": ([{"unique_id": "s1", "reason": "interior gap of 4 periods from 2024-03-02 > max_gap=3: the 40 rows "
                                                "before 2024-03-06 are not used, the series starts there"}],
                ("Series starting after an interior gap longer than max_gap (its 40 rows before it not used): 1: s1: "
                 "interior gap of 4 periods from 2024-03-02")),
    "log1p_disabled": (["s2"], "s2"),
    "columns_ignored": (["note"], "note"),
}


@pytest.mark.parametrize("command", ["run", "forecast"])
def test_run_and_forecast_summaries_print_the_same_data_lines(tmp_path, monkeypatch, command):
    """fcst44: `flowcast forecast`'s summary left out the 'series starting after an interior gap' line (and the
    columns ignored, the series scaled without log1p) that `flowcast run`'s prints: only its log said it. Both print
    them from one function (`_print_data_lines`): each line is in either summary, word for word."""
    from flowcast.cli.common import out
    from flowcast.flows.forecast import _result
    from flowcast.flows.pipeline import _retrain_result

    monkeypatch.chdir(tmp_path)
    data = {"rows_before_gap": 40, **{k: v for k, (v, _) in _DATA_LINES.items()}}
    common = dict(as_of="2024-04-01T00:00:00", run_id="r", dataset="d", n_series=2, rows_in=80, rows_valid=80,
                  rows_quarantined=0, model_version="theta-v1", published_rows=10, store="x", parquet="p", duckdb="db",
                  **data)
    done = (_result(model="theta", **common) if command == "forecast" else _retrain_result(
        horizon=5, champion="theta", kind="statistical", leaderboard=[],
        decision={"promote": True, "publish": "theta", "reasons": ["the best"], "metric": "mase"}, **common))
    monkeypatch.setattr(cli_pipeline, "call_flow", lambda *a, **k: done)
    res = runner.invoke(app, [command, "--home", str(tmp_path / "home"), "--as-of", "2024-04-01"],
                        terminal_width=400)
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    with out.capture() as cap:
        cli_pipeline._print_data_lines(done)
    shown = " ".join(cap.get().split())
    assert shown and shown in said, (shown, said)
    for _, part in _DATA_LINES.values():
        assert part in shown, (part, shown)


def test_a_backfill_without_every_says_how_many_as_ofs_it_runs(tmp_path, monkeypatch):
    """Regression (newuser21): `flowcast backfill --start 2024-11-01 --end 2024-11-02` of an hourly file ran 25
    as_ofs (one per hour, the data's frequency), which only the progress bar said as it filled. Before anything runs
    the command says how many, how far apart and how to space them; with --every it says nothing. Session 50: those
    hourly as_ofs (49 for two days, about 6.5 minutes) were the default; sub-daily data are backfilled a day apart,
    as the daily forecast publishes, and the note says what --every 1h would run."""
    monkeypatch.chdir(tmp_path)
    _stop_before_prefect(monkeypatch)
    (tmp_path / "h.csv").write_text("time,id,kwh\n" + "".join(
        f"2024-10-31T{h:02d}:00:00Z,m1,{h}\n" for h in range(24)))
    args = ["backfill", "h.csv", "--time-col", "time", "--id-col", "id", "--target-col", "kwh",
            "--start", "2024-11-01", "--end", "2024-11-02"]
    res = runner.invoke(app, args, terminal_width=400)
    assert "_PrefectStarted" in res.output, res.output
    assert ("note: --every not given: 2 as_ofs, one every 1d (the daily forecast's step; the data's frequency is 1h) "
            "from 2024-11-01 to 2024-11-02; pass --every (--every 1h: one per period of the data, 25 runs) to space "
            "them otherwise") in " ".join(res.output.split()), res.output
    res = runner.invoke(app, [*args, "--every", "1d"], terminal_width=400)
    assert "_PrefectStarted" in res.output and "--every not given" not in res.output, res.output
    # review 51: half a day of hourly data ran 1 as_of (it ran 13) without a word: the note needed two dates
    res = runner.invoke(app, [*args[:-4], "--start", "2024-11-01T00:00", "--end", "2024-11-01T12:00"],
                        terminal_width=400)
    assert ("note: --every not given: 1 as_of, one every 1d (the daily forecast's step; the data's frequency is 1h) "
            "at 2024-11-01; pass --every (--every 1h: one per period of the data, 13 runs) to space them "
            "otherwise") in " ".join(res.output.split()), res.output
    # regression (newuser22): a daily file's backfill was offered '--every 1d', the spacing its dates already had
    (tmp_path / "d.csv").write_text("date,id,y\n" + "".join(f"2024-01-{d:02d},a,{d}\n" for d in range(1, 29)))
    res = runner.invoke(app, ["backfill", "d.csv", "--time-col", "date", "--id-col", "id", "--target-col", "y",
                              "--start", "2024-01-20", "--end", "2024-01-22"], terminal_width=400)
    assert ("note: --every not given: 3 as_ofs, one every 1d (the data's frequency) from 2024-01-20 to 2024-01-22; "
            "pass --every (e.g. --every 1w) to space them otherwise") in " ".join(res.output.split()), res.output


def test_a_sub_daily_backfill_without_every_says_it_runs_the_forecast_cron_s_slots(tmp_path, monkeypatch):
    """ops52: where FLOWCAST_FORECAST_CRON is set, a backfill of sub-daily data given no step runs that schedule's slots
    (it ran one as_of a day at the start's time, which no slot of an every-6-hours cron but the first had); the note
    says so, the end's day whole, and what --every 1h would run. In its zone (FLOWCAST_TIMEZONE) too; coarser data
    keep their own period."""
    monkeypatch.chdir(tmp_path)
    _stop_before_prefect(monkeypatch)
    monkeypatch.setenv("FLOWCAST_FORECAST_CRON", "0 */6 * * *")
    (tmp_path / "h.csv").write_text("time,id,kwh\n" + "".join(
        f"2024-10-31T{h:02d}:00:00Z,m1,{h}\n" for h in range(24)))
    args = ["backfill", "h.csv", "--time-col", "time", "--id-col", "id", "--target-col", "kwh",
            "--start", "2024-11-01", "--end", "2024-11-02"]
    res = runner.invoke(app, args, terminal_width=400)
    assert "_PrefectStarted" in res.output, res.output
    assert ("note: --every not given: 8 as_ofs, the slots of the forecast schedule (FLOWCAST_FORECAST_CRON="
            "'0 */6 * * *', UTC) from 2024-11-01 to 2024-11-02 18:00 UTC; pass --every (--every 1h: one per period of "
            "the data, 25 runs) to space them otherwise") in " ".join(res.output.split()), res.output
    monkeypatch.setenv("FLOWCAST_FORECAST_CRON", "0 6 * * *")
    monkeypatch.setenv("FLOWCAST_TIMEZONE", "Europe/Berlin")
    res = runner.invoke(app, args, terminal_width=400)
    assert ("note: --every not given: 2 as_ofs, the slots of the forecast schedule (FLOWCAST_FORECAST_CRON="
            "'0 6 * * *', Europe/Berlin) from 2024-11-01 05:00 UTC to 2024-11-02 05:00 UTC") in " ".join(
        res.output.split()), res.output
    res = runner.invoke(app, [*args[:-4], "--start", "2024-11-01T07:00", "--end", "2024-11-01T12:00"],
                        terminal_width=400)
    assert res.exit_code != 0 and "no slot of the forecast schedule (FLOWCAST_FORECAST_CRON='0 6 * * *', " \
        "Europe/Berlin) falls in it; widen the range or pass --every" in " ".join(res.output.split()), res.output
    # a per-minute cron's week is 10,080 slots: refused, where the schedule's reading stopped at its limit unsaid
    monkeypatch.setenv("FLOWCAST_FORECAST_CRON", "* * * * *")
    res = runner.invoke(app, [*args[:-4], "--start", "2024-11-01", "--end", "2024-11-07"], terminal_width=400)
    assert res.exit_code != 0 and "the forecast schedule ('* * * * *', Europe/Berlin) has more than 10,000 slots in " \
        "it; pass --every or a shorter range" in " ".join(res.output.split()), res.output
    (tmp_path / "d.csv").write_text("date,id,y\n" + "".join(f"2024-01-{d:02d},a,{d}\n" for d in range(1, 29)))
    res = runner.invoke(app, ["backfill", "d.csv", "--time-col", "date", "--id-col", "id", "--target-col", "y",
                              "--start", "2024-01-20", "--end", "2024-01-22"], terminal_width=400)
    assert "note: --every not given: 3 as_ofs, one every 1d (the data's frequency)" in " ".join(
        res.output.split()), res.output


@pytest.mark.parametrize(("freq", "every"), [("1h", "1d"), ("30m", "1d"), ("15m", "1d"), ("1d", "1d"), ("1b", "1b"),
                                             ("1w", "1w"), ("1mo", "1mo")])
def test_a_backfill_s_default_step_is_at_most_a_day(freq, every):
    """Session 50: the backfill flow (the command, a run from the UI) stepped sub-daily data by their period, 49 runs
    for two days of hourly data where the daily forecast publishes two; it steps them a day apart, coarser data by
    their own period."""
    from flowcast.flows.backfill import default_every

    assert default_every(freq) == every


@pytest.mark.parametrize(("step", "coarser"), [("1h", "1d"), ("15m", "1d"), ("1d", "1w"), ("1b", "1w"), ("1w", "4w"),
                                               ("1mo", "3mo"), ("1q", "1y"), ("1y", "2y"),
                                               # review25: a multiple of the unit was offered its own spacing or a
                                               # finer one (7d: 1w, 8w: 4w, 6mo: 3mo, 24h: 1d)
                                               ("7d", "14d"), ("14d", "28d"), ("4w", "8w"), ("8w", "16w"),
                                               ("3mo", "6mo"), ("6mo", "12mo"), ("4q", "8q"), ("24h", "48h"),
                                               ("2d", "1w"), ("2w", "4w")])
def test_the_backfill_note_offers_a_spacing_coarser_than_the_data_s(step, coarser):
    from flowcast.cli.pipeline import _coarser_every

    assert _coarser_every(step) == coarser


@pytest.mark.parametrize("command", [["run", "--as-of", "2024-01-01"], ["forecast", "--as-of", "2024-01-01"],
                                     ["backfill", "--start", "2024-01-01", "--end", "2024-01-03"]])
def test_a_refusal_of_a_missing_file_is_said_whatever_the_as_of_and_tz_given(tmp_path, monkeypatch, command):
    """Regression (review23): the announcement of a --data file refused before Prefect (`_refusal_announced`) read
    the --as-of given, a date alone at midnight in --tz, before the command had checked either: a --tz that names no
    zone failed it with `ZoneInfoNotFoundError: 'No time zone found with key Mars/Olympus'` in place of the refusal
    (`file not found`), where the command without the announcement said the refusal."""
    monkeypatch.chdir(tmp_path)
    started = _stop_before_prefect(monkeypatch)
    res = runner.invoke(app, [*command, "--data", "gone.csv", *_COLS, "--tz", "Mars/Olympus"], terminal_width=400)
    assert not started and res.exit_code == 2, res.output
    assert "file not found" in res.output and "ZoneInfoNotFoundError" not in res.output, res.output


@pytest.mark.parametrize("command", ["run", "forecast"])
@pytest.mark.parametrize(("published", "said"), [
    (True, ("unknown dataset 'meters': this home has forecasts of 'meters' (newest as_of 2024-04-07 22:00 UTC), read "
           "from a --data file, whose path and columns are not kept; give it again with --dataset meters and the "
           "options its run had (FILE --dataset meters --id-col ... --time-col ... --target-col ... --freq 1w "
           "--time-label end), or declare it once as [sources.meters] in a --config file; known datasets: m3-monthly")),
    (False, "unknown dataset 'meters'; known datasets: m3-monthly"),
])
def test_a_dataset_read_from_a_file_is_said_to_need_its_file_before_prefect_starts(tmp_path, monkeypatch, command,
                                                                                   published, said):
    """newuser25: after `flowcast run meters.parquet --id-col meter ...`, `flowcast forecast --dataset meters` started
    Prefect and its flow (~45 s) to fail with `unknown dataset 'meters'; known datasets:` and the bundled ones, as if
    the home held nothing of it. It is refused before Prefect starts, and where the home published the dataset the
    error says that it came from a --data file to give again, with the freq and time label its publish recorded."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWCAST_CONFIG", raising=False)

    def no_prefect():
        raise AssertionError("Prefect was started for a dataset that is not known")

    monkeypatch.setattr(cli_pipeline, "_prefect_console", no_prefect)
    home = tmp_path / "home"
    if published:
        rec = home / "published" / "meters" / "20240407T220000.json"
        rec.parent.mkdir(parents=True)
        rec.write_text(json.dumps({"dataset": "meters", "as_of": "2024-04-07T22:00:00", "tz": None,
                                   "time_label": "end", "freq": "1w"}))
    res = runner.invoke(app, [command, "--dataset", "meters", "--home", str(home)], terminal_width=400)
    assert res.exit_code == 2 and said in " ".join(res.output.split()), res.output


@pytest.mark.parametrize(("planned", "said"), [
    (0, "rows in 225, valid 225, quarantined 0"),
    (45, "rows in 270 (45 of them planned: after as_of, kept for their future covariates), valid 270, quarantined 0"),
])
def test_the_summary_counts_say_the_planned_rows_among_the_rows_in(planned, said):
    """Regression (newuser27): `flowcast run dayfirst.csv --future-col promo --as-of 2024-03-15` printed 'rows in 270,
    valid 270' for 225 observations by then: 45 rows after as_of were kept for their planned promo, which only the
    data-quality report said."""
    result = {"rows_in": 225 + planned, "rows_valid": 225 + planned, "rows_quarantined": 0, "rows_planned": planned}
    assert cli_pipeline.counts_said(result) == said
    assert cli_pipeline.counts_said({k: v for k, v in result.items() if k != "rows_planned"}).startswith(
        f"rows in {225 + planned}, ")  # an older result without the key


@pytest.mark.parametrize(("null_y", "said"), [
    (0, "rows in 143,412, valid 143,412, quarantined 0"),
    (71070, "rows in 143,412, valid 143,412 (71,070 without a target value), quarantined 0"),
])
def test_the_summary_counts_say_the_rows_without_a_target_value(null_y, said):
    """polish43: the run said 'valid 143412' of rows of which some had no target value, which the log alone named
    ('143,412 valid (71,070 without a target value)'); the summary says them, its counts with thousands separators."""
    result = {"rows_in": 143412, "rows_valid": 143412, "rows_quarantined": 0, "rows_null_y": null_y}
    assert cli_pipeline.counts_said(result) == said
    assert cli_pipeline.counts_said({k: v for k, v in result.items() if k != "rows_null_y"}) == (
        "rows in 143,412, valid 143,412, quarantined 0")  # an older result without the key


def test_the_summary_counts_say_the_exact_duplicates_dropped():
    """data43: exact duplicates are dropped and counted, not quarantined: the run's summary says them after the
    quarantined rows (rows in = valid + quarantined + these); an older result without the key says none."""
    result = {"rows_in": 12, "rows_valid": 9, "rows_quarantined": 1, "quarantine_checks": {"y_not_number": 1},
              "rows_duplicate": 2}
    assert cli_pipeline.counts_said(result) == ("rows in 12, valid 9, quarantined 1 (1 y_not_number), "
                                                "2 exact duplicates dropped (one copy kept)")
    assert cli_pipeline.counts_said({**result, "rows_duplicate": 0}).endswith("quarantined 1 (1 y_not_number)")


@pytest.mark.parametrize(("checks", "said"), [
    ({"time_unparsable": 1}, "quarantined 1 (1 time_unparsable)"),
    ({"y_not_numeric": 1, "time_unparsable": 3}, "quarantined 4 (3 time_unparsable, 1 y_not_numeric)"),
    ({"a": 1, "b": 5, "c": 2, "d": 3, "e": 1},
     "quarantined 12 (5 b, 3 d, 2 c, +2 more; see the data-quality report and q/s/quarantine.parquet)"),
    ({}, "quarantined 0"),
])
def test_the_summary_names_the_quarantine_reasons_with_counts(checks, said):
    """polish33: `flowcast run` / `flowcast forecast` said 'quarantined 1' alone; the checks the rows failed (the
    data-quality report's counts) are named, the 3 most frequent, the rest counted."""
    n = sum(checks.values())
    result = {"rows_in": 10, "rows_valid": 10 - n, "rows_quarantined": n, "quarantine_checks": checks,
              "quarantine_path": "q/s/quarantine.parquet"}
    assert cli_pipeline.counts_said(result) == f"rows in 10, valid {10 - n}, {said}"
    older = {k: v for k, v in result.items() if k not in ("quarantine_checks", "quarantine_path")}
    assert cli_pipeline.counts_said(older).endswith(f"quarantined {n}")  # an older result without the keys


@pytest.mark.parametrize(("checks", "hints", "said"), [
    ({"time_missing": 2}, {"time_missing": ["a totals row?", "a note line?"]},
     "quarantined 2 (2 time_missing: a totals row? a note line?)"),
    ({"y_not_numeric": 1, "time_unparsable": 3}, {"y_not_numeric": ["thousands separators?"]},
     "quarantined 4 (3 time_unparsable, 1 y_not_numeric: thousands separators?)"),
    ({"time_unparsable": 1}, {}, "quarantined 1 (1 time_unparsable)"),
])
def test_the_summary_gives_the_hint_of_a_quarantine_reason(checks, hints, said):
    """msg40: 'quarantined 2 (2 time_unparsable)' named a check, not what to do; where the rows' reasons ask what they
    are (the data-quality report's 'a totals row?'), the summary asks it too."""
    n = sum(checks.values())
    result = {"rows_in": 10, "rows_valid": 10 - n, "rows_quarantined": n, "quarantine_checks": checks,
              "quarantine_hints": hints}
    assert cli_pipeline.counts_said(result) == f"rows in 10, valid {10 - n}, {said}"


@pytest.mark.parametrize(("as_of", "tz", "said"), [
    (datetime(2024, 4, 15, tzinfo=UTC), None, "--as-of 2024-04-15 "),
    (datetime(2024, 4, 15, 6, tzinfo=UTC), None, "--as-of '2024-04-15 06:00 UTC' "),
    # its date alone is New York's midnight: the instant written whole
    (datetime(2024, 4, 15, tzinfo=UTC), "America/New_York", "--as-of '2024-04-15 00:00 UTC' "),
    (datetime(2024, 4, 15, 4, tzinfo=UTC), "America/New_York", "--as-of '2024-04-15 04:00 UTC' "),
])
def test_the_read_them_command_writes_the_as_of_as_forecasts_reads_it_back(tmp_path, as_of, tz, said):
    """It wrote '--as-of 2024-04-15T00:00:00+00:00' (the ISO instant): the shortest text that
    `flowcast forecasts --as-of` reads back as the run's as_of (a date alone in the dataset's tz)."""
    import shlex

    from flowcast.cli.common import parse_read_as_of
    from flowcast.config import Settings, SourceConfig

    src = SourceConfig(name="meters", path="m.csv", time_col="t", target_col="y", freq="1h", tz=tz)
    settings = Settings(home=tmp_path, sources={"meters": src})
    line = cli_pipeline._read_them({"dataset": "meters", "as_of": as_of.isoformat()}, settings, None, tmp_path)
    assert said in line, line
    args = shlex.split(line)
    assert parse_read_as_of(args[args.index("--as-of") + 1], settings, "meters") == as_of


@pytest.mark.parametrize(("result", "said"), [
    ({"parquet": "/h/p.parquet", "duckdb": "/h/forecasts.duckdb", "store": "/h"},
     "  Parquet: /h/p.parquet\n  DuckDB:  /h/forecasts.duckdb (table forecasts)"),
    ({"parquet": "/h/p.parquet", "duckdb": None, "store": "/h"},
     ("  Parquet: /h/p.parquet\n  DuckDB:  no views (not created: a warning in the run's log says why; a later "
      "publish creates them)")),
    ({"parquet": None, "duckdb": None, "store": "postgresql://fc:***@db/fc"},
     "  Store:   postgresql://fc:***@db/fc (table forecasts)"),
])
def test_a_summary_names_only_the_files_a_publish_made(result, said):
    """Regression (faults48): the summary of `flowcast run` and `flowcast forecast` named the DuckDB file ('DuckDB:
    .../forecasts.duckdb (table forecasts)') where a full disk had kept its views from being created, and read
    'Parquet: None' and 'DuckDB: None (table forecasts)' of a PostgreSQL store."""
    assert cli_pipeline._stored_where(result) == said
