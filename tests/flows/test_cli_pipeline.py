"""`flowcast run` and `flowcast backfill` through the Typer app, under the session's Prefect API."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowcast.cli import app
from flowcast.registry import ModelRegistry
from flowcast.store import EmbeddedStore

pytestmark = pytest.mark.usefixtures("prefect_api")

TINY_TOML = """
[model]
cells = ["gru", "rnn"]
lookback = 12
hidden_size = 8
num_layers = 1
batch_size = 64
max_steps = 5
launcher = "inline"
accelerator = "cpu"

[evaluation]
n_windows = 1
"""


def _tiny(csv: Path) -> Path:
    """The fixture's data under the name the trained home knows it by: models are per dataset, and
    `--data` names the dataset after the file ("tiny", as the flows' source)."""
    import shutil

    tiny = csv.with_name("tiny.csv")
    if not tiny.exists():
        shutil.copy(csv, tiny)
    return tiny


def _source_args(csv: Path) -> list[str]:
    return ["--data", str(csv), "--id-col", "store", "--time-col", "month", "--target-col", "sales",
            "--freq", "1mo", "--horizon", "6"]


def test_run_json_reports_the_run(tiny_csv, tmp_path):
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TINY_TOML)
    home = tmp_path / "home"
    result = CliRunner().invoke(app, ["run", *_source_args(_tiny(tiny_csv)), "--config", str(cfg), "--home", str(home),
                                      "--as-of", "2019-06-01", "--models", "gru", "--max-steps", "4", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["as_of"] == "2019-06-01T00:00:00+00:00"  # one instant, UTC (no offset given: UTC)
    assert out["n_series"] == 4 and out["rows_in"] == out["rows_valid"] + out["rows_quarantined"] == 456
    assert (out["rows_imputed"], out["rows_planned"], out["future_missing"]) == (0, 0, {})  # what preprocessing did
    assert out["rows_null_y"] == 0  # valid rows without a target value (the summary says them where some are)
    # fresh data: the latest observation is as_of's own month, no series ended early
    assert (out["latest_ds"], out["periods_behind"], out["series_ended"]) == ("2019-06-01T00:00:00", 0, 0)
    # --models overrides the config's cells
    assert set(out["leaderboard"]) == {"gru", "naive", "seasonal_naive", "theta", "damped", "dotm", "comb", "hybrid"}
    assert all({"smape", "mase", "rmsse"} <= set(v) for v in out["leaderboard"].values())
    assert out["metric"] == "mase" and "RMSSE" not in (out["note"] or "")  # not intermittent: ranked on MASE
    assert out["published_rows"] == 24 and Path(out["store"]) == home.resolve() / "warehouse"
    assert out["champion"] and out["run_id"]
    assert EmbeddedStore(home / "warehouse").has("tiny", datetime(2019, 6, 1))
    # only the winner, whatever its kind, is built on all data, registered and promoted (refit_all is off)
    registered = ModelRegistry(home / "models").list()
    best = min((m for m, r in out["leaderboard"].items() if r["rank"]), key=lambda m: out["leaderboard"][m]["rank"])
    assert [v.name for v in registered] == [best] and out["promoted"]
    assert ModelRegistry(home / "models").production("tiny").name == best


def test_a_stale_source_fails_the_run_past_max_staleness(tiny_csv, tmp_path, monkeypatch):
    """A source that stopped being updated: as_of 2030 on data that end in 2019 (or whenever the
    fixture ends) fails the run with validation.max_staleness set, before any training."""
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TINY_TOML)
    monkeypatch.setenv("FLOWCAST_VALIDATION__MAX_STALENESS", "3")
    result = CliRunner().invoke(app, ["run", *_source_args(_tiny(tiny_csv)), "--config", str(cfg),
                                      "--home", str(tmp_path / "home"), "--as-of", "2030-01-01", "--json"])
    assert result.exit_code == 2, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["status"] == "failed" and "stale" in out["error"] and "max_staleness = 3" in out["error"]
    assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())


def test_a_stale_source_is_said_and_its_event_sent(tiny_csv, tmp_path, monkeypatch):
    """Without max_staleness a stale source still runs: the summary says how far behind the data are
    and the run sends flowcast.data.stale (the flow's decision to send it; delivery is Prefect's)."""
    from flowcast import events

    sent: list[tuple[str, dict]] = []
    real = events.emit
    monkeypatch.setattr(events, "emit", lambda event, **kw: (sent.append((event, kw)), real(event, **kw))[1])
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TINY_TOML)
    result = CliRunner().invoke(app, ["run", *_source_args(_tiny(tiny_csv)), "--config", str(cfg), "--home",
                                      str(tmp_path / "home"), "--as-of", "2030-01-01", "--models", "rnn",
                                      "--max-steps", "2"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())  # sentences fold at the terminal's width
    assert "Stale data: the latest observation" in said and "periods (1mo) before as_of" in said
    # regression: the date read '(2015-08-01T00:00:00)', a timestamp of a monthly period
    assert "T00:00:00" not in said.split("Stale data:")[1].split("before as_of")[0]
    assert "[yellow]" not in result.stdout  # the console prints no markup: tags would show as text
    # the published file's path is printed whole, never folded at the terminal's width (copyable)
    parquet = next(line for line in result.stdout.splitlines() if line.strip().startswith("Parquet:"))
    assert parquet.strip().endswith(".parquet") and Path(parquet.split("Parquet:")[1].strip()).exists()
    stale = [kw for e, kw in sent if e == events.STALE]
    assert len(stale) == 1 and stale[0]["dataset"] == "tiny" and stale[0]["periods_behind"] >= 6
    assert "before as_of" in stale[0]["message"]


def test_run_and_forecast_json_carry_the_same_freshness_keys(tiny_csv, tmp_path):
    """Regression (new-user trial): `flowcast run --json` had `series_ended` but not `stale` (nor `freq`), though the
    flow decided it and `flowcast forecast --json` printed it: a script watching for a dead source read the run's
    JSON and found no freshness verdict. Both now carry `freshness.RUN_KEYS`, with the same values for the same
    data and as_of."""
    from flowcast.data.freshness import RUN_KEYS

    csv = _tiny(tiny_csv)
    args = [*_source_args(csv), "--home", str(tmp_path / "home"), "--as-of", "2030-01-01", "--json"]
    ran = CliRunner().invoke(app, ["run", *args, "--models", "none"])
    assert ran.exit_code == 0, ran.output
    run = json.loads(ran.stdout.strip().splitlines()[-1])
    forecast = CliRunner().invoke(app, ["forecast", *args])
    assert forecast.exit_code == 0, forecast.output
    fc = json.loads(forecast.stdout.strip().splitlines()[-1])
    assert set(RUN_KEYS) <= set(run) and set(RUN_KEYS) <= set(fc)
    assert {k: run[k] for k in RUN_KEYS} == {k: fc[k] for k in RUN_KEYS}
    assert run["stale"] is True and run["freq"] == "1mo" and run["periods_behind"] > 6
    assert run["latest_ds_end"] is None  # start-labelled data: no end label


def test_forecast_says_stale_data_as_run_does(tiny_csv, tmp_path):
    """Regression (new-user trial): `flowcast run` printed a 'Stale data' line when every forecast period lay before
    as_of; `flowcast forecast` between retrains only logged it, among Prefect's INFO lines, also when it published
    nothing new for want of a new observation."""
    args = [*_source_args(_tiny(tiny_csv)), "--home", str(tmp_path / "home"), "--as-of", "2030-01-01"]
    assert CliRunner().invoke(app, ["run", *args, "--models", "none"]).exit_code == 0
    # the same data, model and horizon: nothing new is published; a shorter horizon publishes
    for extra, outcome in (([], "nothing new is published"), (["--horizon", "5"], "Published 20 forecast rows")):
        said = CliRunner().invoke(app, ["forecast", *args[:-2], "--as-of", "2030-01-02", *extra])
        assert said.exit_code == 0, said.output
        flat = " ".join(said.stdout.split())
        assert outcome in flat and "Stale data: the latest observation" in flat, flat
        assert "periods (1mo) before as_of" in flat


def test_series_the_data_lost_since_the_last_publish_are_named_and_can_fail_the_run(tiny_csv, tmp_path, monkeypatch):
    """A partial export: the next month's file lacks one of the 4 series the last publish forecast."""
    import polars as pl

    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TINY_TOML)
    home = tmp_path / "home"
    args = ["--config", str(cfg), "--home", str(home), "--models", "rnn", "--max-steps", "2", "--json"]
    first = CliRunner().invoke(app, ["run", *_source_args(_tiny(tiny_csv)), "--as-of", "2019-06-01", *args])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout.strip().splitlines()[-1])["series_lost"] == 0  # no earlier publish
    full = pl.read_csv(tiny_csv)
    gone = sorted(full["store"].unique().to_list())[1]
    partial = tmp_path / "partial" / "tiny.csv"
    partial.parent.mkdir()
    full.filter(pl.col("store") != gone).write_csv(partial)
    monkeypatch.setenv("FLOWCAST_VALIDATION__MAX_SERIES_LOST", "0.1")
    failed = CliRunner().invoke(app, ["run", *_source_args(partial), "--as-of", "2019-07-01", *args])
    assert failed.exit_code == 2, failed.output
    error = json.loads(failed.stdout.strip().splitlines()[-1])["error"]
    assert "1 of the 4 series of the last publish (25.0%)" in error and str(gone) in error
    assert not EmbeddedStore(home / "warehouse").has("tiny", datetime(2019, 7, 1))
    monkeypatch.delenv("FLOWCAST_VALIDATION__MAX_SERIES_LOST")
    warned = CliRunner().invoke(app, ["run", *_source_args(partial), "--as-of", "2019-07-01", *args])
    assert warned.exit_code == 0, warned.output
    assert json.loads(warned.stdout.strip().splitlines()[-1])["series_lost"] == 1


def test_run_prints_a_leaderboard_without_json(tiny_csv, tmp_path):
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TINY_TOML.replace('cells = ["gru", "rnn"]', 'cells = ["rnn"]'))
    import polars as pl

    csv = _tiny(tiny_csv)  # with a covariate column the command line cannot declare
    pl.read_csv(csv).with_columns(promo=pl.col("sales") % 2).write_csv(csv)
    result = CliRunner().invoke(app, ["run", *_source_args(csv), "--config", str(cfg),
                                      "--home", str(tmp_path / "home"), "--as-of", "2019-06-01"])
    assert result.exit_code == 0, result.output
    # regression: the column was left out of training without a word in the run's output (only the data-quality
    # artifact listed it): the output names it and says how to declare it
    said = " ".join(result.stdout.split())
    assert "Undeclared columns (ignored): promo; to use one as a covariate, declare the source" in said
    assert "future_cols" in said
    assert "Backtest leaderboard" in result.stdout and "seasonal_naive" in result.stdout and "rnn" in result.stdout
    assert "Published 24 forecast rows" in result.stdout
    assert "…" not in result.stdout, result.stdout  # every figure whole in 80 columns (was "0.48…")
    # regression: the command it says to read them with left out the run's --home (and --config): run as printed,
    # it read the default home and found 'no published forecasts'
    import shlex

    said = shlex.split(result.stdout.split("Read them: ", 1)[1].splitlines()[0])
    assert said[:2] == ["flowcast", "forecasts"] and "--home" in said
    read = CliRunner().invoke(app, [*said[1:], "--format", "csv"])
    assert read.exit_code == 0 and len(read.stdout.strip().splitlines()) == 1 + 24, read.output


@pytest.mark.parametrize("args,code,message", [
    (["--data", "/nonexistent/sales.csv", "--time-col", "month", "--target-col", "sales", "--freq", "1mo"], 2,
     "file not found"),
    (["--data", "x.csv", "--time-col", "month"], 2, "also needs --target-col (its columns"),
    (["--models", "transformer"], 2, "--models takes rnn, lstm, gru"),
    (["--as-of", "last tuesday"], 2, "--as-of must be an ISO date"),
    (["--dataset", "no_such_dataset"], 2, "unknown dataset"),
])
def test_run_errors_are_one_sentence(tmp_path, monkeypatch, args, code, message):
    monkeypatch.chdir(tmp_path)
    # (a missing one is refused as not found; two stores, not one series: src44 reads a file of one store so)
    (tmp_path / "x.csv").write_text("month,store,sales\n2024-01-01,a,1\n2024-02-01,b,2\n")
    result = CliRunner().invoke(app, ["run", "--home", str(tmp_path / "home"), *args])
    assert result.exit_code == code, result.output
    assert message in result.stderr and "Traceback" not in result.output + result.stderr


def test_backfill_json_and_rerun(production_home, tmp_path):
    kw = production_home
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TINY_TOML)
    args = ["backfill", *_source_args(_tiny(Path(kw["source"]["path"]))), "--config", str(cfg), "--home", kw["home"],
            "--start", "2018-04-01", "--end", "2018-06-01", "--json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    s = json.loads(first.stdout.strip().splitlines()[-1])
    assert (s["published"], s["skipped"], s["failed"], s["every"]) == (3, 0, 0, "1mo")
    again = json.loads(CliRunner().invoke(app, args).stdout.strip().splitlines()[-1])
    assert (again["published"], again["skipped"]) == (0, 3)


def test_backfill_with_a_failing_date_exits_nonzero(production_home, tmp_path):
    kw = production_home
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TINY_TOML)
    result = CliRunner().invoke(app, ["backfill", *_source_args(_tiny(Path(kw["source"]["path"]))), "--config", str(cfg),
                                      "--home", kw["home"], "--start", "2009-06-01", "--end", "2013-06-01",
                                      "--every", "4y"])
    assert result.exit_code == 1
    assert "1 of 2 backfill dates failed" in result.stderr
    assert "2013-06-01" in result.stdout and "published" in result.stdout
    # its error and progress write the dates as the table and every other line do (`timekeys.utc_text`), where
    # they said '2009-06-01T00:00:00: ...' and 'backfill 2013-06-01T00:00 published'
    said = " ".join(result.stderr.split())
    assert "2009-06-01 precedes the data's first as_of 2010-01-01" in said and "done, whole: 2013-06-01 (published)" in said, said
    assert "backfill 2013-06-01 published" in said, said
    error = said[said.index("error: "):]  # (Prefect's log lines above name the Parquet partition as_of=...T00:00:00)
    assert "T00:00" not in error and "2013-06-01T00:00 published" not in said, said


@pytest.mark.parametrize("clock", ["", "T06:00"])
def test_every_line_of_a_backfill_writes_its_dates_one_way(production_home, tmp_path, clock):
    """dates42: one `flowcast backfill` wrote its dates three ways: a date run here as '2013-06-01 00:00 UTC:
    published ...' (`timekeys.instant_text`), its failure, progress and error as '2009-06-01: failed' and '2009-06-01
    06:00' without a zone (`as_of_text`). Every line now writes them as the dates' run names do (`timekeys.utc_text`:
    a midnight UTC a date alone, a clock time followed by UTC); the table's cells as every table's, its header
    saying UTC (`utc_text(zone=False)`). A real backfill of 2 dates, the first before the data (it fails)."""
    from flowcast.timekeys import utc_text

    kw = production_home
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TINY_TOML)
    first, last = f"2009-06-01{clock}", f"2013-06-01{clock}"
    result = CliRunner().invoke(app, ["backfill", *_source_args(_tiny(Path(kw["source"]["path"]))), "--config",
                                      str(cfg), "--home", kw["home"], "--start", first, "--end", last, "--every", "4y"],
                                terminal_width=200)
    assert result.exit_code == 1, result.output
    said = " ".join(result.stderr.split())
    # each mention of a date (not a Parquet partition's `as_of=...` in a path, nor the clock of the log line after it,
    # `08:01:53.655 | INFO`) is its `utc_text`, whole
    mentions = re.findall(r"(?<!as_of=)(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?![.:\d]))?(?: UTC)?)", said)
    assert {m for m in mentions if m[:10] in (first[:10], last[:10])} == {utc_text(first), utc_text(last)}, said
    assert f"{utc_text(last)}: published " in said and f"{utc_text(first)}: failed: " in said, said
    assert f"backfill {utc_text(last)} published" in said and f"done, whole: {utc_text(last)} (published)" in said
    assert f"Beginning subflow run 'forecast tiny {utc_text(last)} (backfill)'" in said, said
    rows = [line.strip() for line in result.stdout.splitlines()  # (not a flow run's name wrapped in its cell)
            if re.match(r"20(09|13)-06-01[ :0-9]* +(failed|published) ", line.strip())]
    assert "as_of (UTC)" in result.stdout and len(rows) == 2, result.stdout
    assert [f"{r} ".startswith(f"{utc_text(d, zone=False)} ") for r, d in zip(rows, (first, last), strict=True)] == [True] * 2


def test_a_backfill_with_overwrite_names_the_run_it_replaced_whole_in_80_columns(production_home, tmp_path):
    """Regression (cli41): at 80 columns the detail cell of a date `--overwrite` rewrote wrapped its note and broke
    the replaced run's id mid-word. The cell points below the table, where the note is said whole."""
    kw = production_home
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TINY_TOML)
    args = ["backfill", *_source_args(_tiny(Path(kw["source"]["path"]))), "--config", str(cfg), "--home", kw["home"],
            "--start", "2019-03-01", "--end", "2019-03-01"]
    first = CliRunner().invoke(app, [*args, "--json"])
    assert first.exit_code == 0, first.output
    replaced = json.loads(first.stdout.strip().splitlines()[-1])["outcomes"][0]["run_id"]
    again = CliRunner().invoke(app, [*args, "--overwrite"], env={"COLUMNS": "80"}, terminal_width=80)
    assert again.exit_code == 0, again.output
    assert max(map(len, again.stdout.splitlines())) <= 80, again.stdout
    said = " ".join(again.stdout.split())
    assert "rewritten: see below" in said and said.count("replaced the 24 rows") == 1, again.stdout
    assert f"2019-03-01: it replaced the 24 rows run {replaced} published (gru-v2)" in said, again.stdout
    assert replaced in again.stdout.split(), again.stdout  # whole, on one line


def test_a_backfills_rows_are_one_line_each_in_80_columns(production_home, tmp_path):
    """look42 (ui42's notes): at COLUMNS=80 the flow-run column of `flowcast backfill`'s table wrapped each row to 3
    lines. Each row is one line; the runs' names follow the table."""
    kw = production_home
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TINY_TOML)
    args = ["backfill", *_source_args(_tiny(Path(kw["source"]["path"]))), "--config", str(cfg), "--home", kw["home"],
            "--start", "2019-02-01", "--end", "2019-03-01"]
    res = CliRunner().invoke(app, args, env={"COLUMNS": "80"}, terminal_width=80)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.lstrip().startswith("as_of (UTC)"))
    assert [line.split()[:2] for line in lines[head + 2:head + 4]] == [["2019-02-01", "published"],
                                                                       ["2019-03-01", "published"]], res.stdout
    assert not lines[head + 4].strip() and max(map(len, lines)) <= 80, res.stdout  # no wrapped second line
    said = " ".join(res.stdout.split())
    assert "flow runs: forecast tiny <as_of> (backfill), each named with its row's as_of" in said, res.stdout
    # bf43: the detail column wrapped too; a re-run's skipped dates (their publisher named first) are one line each,
    # cut with an ellipsis, and --json says them whole
    again = CliRunner().invoke(app, args, env={"COLUMNS": "80"}, terminal_width=80)
    assert again.exit_code == 0, again.output
    lines = again.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.lstrip().startswith("as_of (UTC)"))
    rows = lines[head + 2:head + 4]
    assert [row.split()[:2] for row in rows] == [["2019-02-01", "skipped"], ["2019-03-01", "skipped"]], again.stdout
    assert not lines[head + 4].strip() and max(map(len, lines)) <= 80, again.stdout
    assert "flow run" not in lines[head], again.stdout  # no date ran one: its room goes to the detail
    whole = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout.strip().splitlines()[-1])["outcomes"]
    for row, o in zip(rows, whole, strict=True):
        cell = row.split(None, 4)[4].rstrip()
        assert cell == o["error"] or (cell.endswith("…") and o["error"].startswith(cell[:-1])), (row, o["error"])


def test_forecast_command_publishes_with_the_production_model(production_home, tmp_path):
    kw = production_home
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TINY_TOML)
    args = ["forecast", *_source_args(_tiny(Path(kw["source"]["path"]))), "--config", str(cfg), "--home", kw["home"],
            "--as-of", "2019-03-01", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout.strip().splitlines()[-1])
    production = ModelRegistry(Path(kw["home"]) / "models").production()
    assert s["model_version"] == production.version and s["published_rows"] == 4 * 6
    published = EmbeddedStore(Path(kw["home"]) / "warehouse").read(dataset="tiny", as_of=datetime(2019, 3, 1))
    assert published.height == 24 and set(published["model_version"]) == {production.version}


def test_forecast_of_an_as_of_holding_the_same_forecasts_names_the_dataset_once(production_home, tmp_path):
    """Regression (cli41): a second `flowcast forecast` of an as_of, whose forecasts the key held already, printed
    'tiny: tiny as of 2019-03-01 was already published ...': its note names the dataset itself."""
    kw = production_home
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(TINY_TOML)
    args = ["forecast", *_source_args(_tiny(Path(kw["source"]["path"]))), "--config", str(cfg), "--home", kw["home"],
            "--as-of", "2019-03-01"]
    assert CliRunner().invoke(app, args).exit_code == 0
    again = CliRunner().invoke(app, args, terminal_width=400)
    assert again.exit_code == 0, again.output
    said = " ".join(again.stdout.split())
    assert said.startswith("tiny as of 2019-03-01 was already published by run"), said
    assert "tiny: tiny" not in said, said


def test_forecast_command_without_a_production_model_is_one_sentence(tiny_csv, tmp_path):
    result = CliRunner().invoke(app, ["forecast", *_source_args(tiny_csv), "--home", str(tmp_path / "empty")])
    assert result.exit_code != 0
    assert "no production model" in result.stderr and "Traceback" not in result.output + result.stderr


def test_forecast_of_a_dataset_without_production_names_those_that_have_one(production_home):
    """Regression: after `flowcast run --data sales.csv ...` (production of dataset 'sales'), a plain
    `flowcast forecast` (the default dataset) said 'no production model of us_employment ...: run the
    retrain flow first', which the user had just done; it names the datasets this home has models of."""
    from flowcast.registry import ModelRegistry

    kw = production_home
    names = sorted(ModelRegistry(Path(kw["home"]) / "models").productions())
    result = CliRunner().invoke(app, ["forecast", "--home", kw["home"]])
    said = " ".join(result.stderr.split())
    assert result.exit_code != 0 and "no production model of us_employment" in said
    assert f"this home has production models of {', '.join(names)} only" in said and "retrain flow first" not in said


def test_run_on_single_observations_says_why_naive_publishes(tmp_path):
    """Every series has one observation: `flowcast run` publishes naive without a leaderboard, and
    both its JSON and its text say why (no backtest, intervals not calibrated)."""
    csv = tmp_path / "new.csv"
    csv.write_text("store,month,sales\nA,2019-05-01,10\nB,2019-05-01,20\n")
    args = ["run", *_source_args(csv), "--home", str(tmp_path / "home"), "--as-of", "2019-06-01"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert (out["champion"], out["kind"], out["leaderboard"], out["promoted"], out["published_rows"]) == (
        "naive", "statistical", {}, True, 2 * 6)
    assert "Each of the 2 series has a single observation: there is nothing to backtest" in out["reasons"][0]
    assert "could not be calibrated without a backtest" in out["note"]
    result = CliRunner().invoke(app, [*args[:-1], "2019-06-02"])
    assert result.exit_code == 0, result.output
    assert "Backtest leaderboard" not in result.stdout and "nothing to backtest" in result.stdout
    assert "published, not promoted" in result.stdout and "Published 12 forecast rows" in result.stdout


def _monthly_csv(path: Path, spans: dict[str, tuple[str, str]]) -> Path:
    """store, month, sales: each store's months from its first to its last (inclusive), a seasonal pattern."""
    import polars as pl

    frames = []
    for k, (store, (first, last)) in enumerate(spans.items()):
        months = pl.date_range(datetime.fromisoformat(first), datetime.fromisoformat(last), "1mo", eager=True)
        frames.append(pl.DataFrame({"store": store, "month": months.dt.strftime("%Y-%m-%d"),
                                    "sales": [100.0 + 10 * k + 5 * ((i % 12) - 6) ** 2 / 6 + i for i in range(len(months))]}))
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.concat(frames).write_csv(path)
    return path


def test_a_series_that_ended_long_ago_is_set_aside_with_exclude_and_forecast_again_when_it_comes_back(tmp_path,
                                                                                                      monkeypatch):
    """validation.ended_series = "exclude" (FLOWCAST_VALIDATION__ENDED_SERIES): a store closed at the end of 2020 beside
    two open through 2024. Once it has ended, it is neither backtested nor published (no forecast dated 2021 beside
    2025's), the JSON counts it ended and excluded and lists it with its reason, and the series lost since the last
    publish (which forecast it) do not count it: it is in the data. When its observations resume it is forecast again."""
    import polars as pl

    monkeypatch.setenv("FLOWCAST_VALIDATION__ENDED_SERIES", "exclude")
    home = tmp_path / "home"
    spans = {"open1": ("2018-01-01", "2024-12-01"), "open2": ("2018-01-01", "2024-12-01"),
             "closed": ("2018-01-01", "2020-12-01")}
    csv = _monthly_csv(tmp_path / "raw" / "shops.csv", spans)
    args = ["--data", str(csv), "--id-col", "store", "--time-col", "month", "--target-col", "sales", "--freq", "1mo",
            "--horizon", "3", "--home", str(home), "--models", "none", "--json"]

    def run(as_of: str) -> dict:
        result = CliRunner().invoke(app, ["run", *args, "--as-of", as_of])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout.strip().splitlines()[-1])

    def published(as_of: datetime) -> pl.DataFrame:
        return EmbeddedStore(home / "warehouse").read(dataset="shops", as_of=as_of)

    # as_of 2021-01: every store's last month is 2020-12, none ended: all three published
    before = run("2021-01-01")
    assert (before["n_series"], before["series_ended"], before["series_ended_excluded"]) == (3, 0, 0)
    assert sorted(published(datetime(2021, 1, 1))["unique_id"].unique()) == ["closed", "open1", "open2"]

    after = run("2025-01-01")
    assert (after["n_series"], after["series_ended"], after["series_ended_excluded"], after["series_lost"]) == (2, 1, 1, 0)
    assert after["n_series"] + after["series_excluded"] == 3  # every series of the data: forecast or excluded
    assert after["rows_in"] == after["rows_valid"] + after["rows_quarantined"] == 84 + 84 + 36
    [why] = [e["reason"] for e in after["excluded"] if e["unique_id"] == "closed"]
    assert why.startswith("ended: its last observation, 2020-12-01, is 48 periods (1mo) before the latest")
    assert after["published_rows"] == 6
    rows = published(datetime(2025, 1, 1))
    assert sorted(rows["unique_id"].unique()) == ["open1", "open2"] and rows.height == 6
    assert rows["ds"].min() == datetime(2025, 1, 1)  # nothing dated before as_of

    # it reopens: three months of late 2024 arrive, and it is forecast again from them
    spans["closed"] = ("2024-10-01", "2024-12-01")
    reopened = pl.concat([pl.read_csv(csv), pl.read_csv(_monthly_csv(tmp_path / "raw" / "back.csv",
                                                                     {"closed": spans["closed"]}))])
    reopened.write_csv(csv)
    back = run("2025-02-01")
    assert (back["n_series"], back["series_ended"], back["series_ended_excluded"], back["series_lost"]) == (3, 0, 0, 0)
    assert back["series_excluded"] == 0
    assert not [e for e in back["excluded"] if e["unique_id"] == "closed"]
    assert sorted(published(datetime(2025, 2, 1))["unique_id"].unique()) == ["closed", "open1", "open2"]


def test_a_refusal_killed_after_its_quarantine_file_leaves_it_whole_and_a_clean_run_of_the_as_of_after(
        tmp_path, monkeypatch):
    """faults22: `flowcast run` of a file whose every row is quarantined, refused before Prefect, a real process
    SIGKILLed with its quarantine file written, before its error and events (FLOWCAST_FAULT=cli:quarantined). The
    file is whole (every row and its reason), no temp file beside it; the same command run again refuses it again
    (exit 2) into the same one file; and once the source is mended, a run of that as_of publishes and removes the
    file (its rows no longer describe the source), its result saying nothing is quarantined."""
    import os
    import signal
    import subprocess
    import sys

    import polars as pl

    monkeypatch.setenv("FLOWCAST_EVALUATION__N_WINDOWS", "1")
    home, csv = tmp_path / "home", tmp_path / "s.csv"
    csv.write_text("date,id,val\n2024-01-01,a,abc\n2024-01-02,a,x\n")
    args = ["run", str(csv), "--time-col", "date", "--id-col", "id", "--target-col", "val", "--freq", "1d",
            "--as-of", "2024-01-05", "--home", str(home), "--models", "none", "--horizon", "3"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWCAST_", "PREFECT_API"))}
    killed = subprocess.run([sys.executable, "-m", "flowcast", *args], env={**env, "FLOWCAST_FAULT": "cli:quarantined"},
                            check=False, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    folder = home / "quarantine" / "s" / "2024-01-05T00-00-00"
    assert [p.name for p in folder.iterdir()] == ["quarantine.parquet"]  # whole, no temp file
    assert pl.read_parquet(folder / "quarantine.parquet")["check"].to_list() == ["y_not_number", "y_not_number"]
    again = CliRunner().invoke(app, [*args, "--json"], terminal_width=400)
    assert again.exit_code == 2, again.output
    error = json.loads(again.stdout.strip().splitlines()[-1])["error"]
    assert error.startswith("source 's': no valid rows left: all 2 rows quarantined (y_not_number=2)"), error
    assert f"; see {folder.resolve() / 'quarantine.parquet'}; to mend them" in error, error
    assert [p.name for p in folder.iterdir()] == ["quarantine.parquet"]
    days = pl.date_range(datetime(2023, 11, 1), datetime(2024, 1, 5), "1d", eager=True)
    pl.DataFrame({"date": days, "id": "a", "val": [float(i % 7) for i in range(len(days))]}).write_csv(csv)
    clean = CliRunner().invoke(app, [*args, "--json"], terminal_width=400)
    assert clean.exit_code == 0, clean.output
    out = json.loads(clean.stdout.strip().splitlines()[-1])
    assert out["rows_quarantined"] == 0 and out["published_rows"] == 3, out
    assert list(folder.iterdir()) == []  # the refused rows' file is gone: they no longer describe the source



def _shops_run(tmp_path: Path, home: Path, ended: str, last: str) -> dict:
    """`flowcast run --json` as of 2025-01-01 (statistical models, horizon 3) on two shops open 2018-01 to 2024-12
    and `ended`, open 2018-01 to `last`: its result."""
    csv = _monthly_csv(tmp_path / "raw" / "shops.csv", {"open1": ("2018-01-01", "2024-12-01"),
                                                         "open2": ("2018-01-01", "2024-12-01"),
                                                         ended: ("2018-01-01", last)})
    result = CliRunner().invoke(app, ["run", "--data", str(csv), "--id-col", "store", "--time-col", "month",
                                      "--target-col", "sales", "--freq", "1mo", "--horizon", "3", "--home", str(home),
                                      "--models", "none", "--json", "--as-of", "2025-01-01"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_an_ended_series_forecast_anyway_is_said_in_the_data_quality_artifact_and_marked_in_the_plot(tmp_path,
                                                                                                     monkeypatch):
    """Regression: with ended_series = "forecast" (the default) a store closed at the end of 2020 is forecast from
    its own last observation and published beside 2025's forecasts; the data-quality artifact only counted it in its
    table, and the forecast plot drew it like any other. The artifact now names it, with when it last had data, and
    the plot's caption says it is marked (its panel's title and a line at its last observation).
    The same run has one backtest window (3 series): its leaderboard's cov95 and MSIS cells are blank, and the
    leaderboard's description and the run's notes say why (they said nothing)."""
    monkeypatch.setenv("FLOWCAST_EVALUATION__N_WINDOWS", "1")
    import polars as pl
    from flow_helpers import artifacts_of

    from flowcast.mdtext import md_text
    from flowcast.reporting import artifact_key

    home = tmp_path / "home"
    out = _shops_run(tmp_path, home, "closed", "2020-12-01")
    assert (out["n_series"], out["series_ended"], out["series_ended_excluded"]) == (3, 1, 0)
    rows = EmbeddedStore(home / "warehouse").read(dataset="shops", as_of=datetime(2025, 1, 1))
    assert rows.filter(pl.col("unique_id") == "closed")["ds"].max() == datetime(2021, 3, 1)  # forecast anyway
    arts = artifacts_of(out["run_id"])
    quality = arts[artifact_key("quality", "shops")][0].data
    assert ("Ended series forecast anyway: 1 series stopped more than a horizon before the latest observation "
            "(2024-12-01), and a run forecasts it all the same") in quality
    assert quality.rstrip().endswith("'closed' (last data 2020-12-01).")
    plot = arts[artifact_key("plot", "shops")][0]
    assert "1 ended series forecast from its own last observation, long before the others' (marked): 'closed'" \
        in plot.data
    # one window: each half of the 3 series calibrated on the other's 3 or 6 points, under 19 for a 95% interval
    assert out["spans"]["n_windows"] == 1 and all(r["coverage95"] is None for r in out["leaderboard"].values())
    why = ("cov95 and MSIS are blank: the backtest has one window, so its intervals are checked by splitting its "
           "3 series in two halves, each calibrated on the other half's points: 3 and 6 points")
    assert f"Leaderboard: {why}" in out["note"]
    board = arts[artifact_key("leaderboard", "shops")][0]
    assert md_text(why) in board.description


def test_an_ended_series_set_aside_is_in_no_backtest_window_and_the_run_says_so(tmp_path, monkeypatch):
    """ended_series = "exclude": a store that closed in August 2024 (4 months before the others' last, horizon 3) is set
    aside, so it is in no backtest window, also the older windows whose cut came before it closed (a run at that cut
    would have forecast it: the decision to set it aside uses data after the cut). Intended (README, Ended series);
    the run's notes say it and count such series, where before nothing did."""
    monkeypatch.setenv("FLOWCAST_VALIDATION__ENDED_SERIES", "exclude")
    home = tmp_path / "home"
    out = _shops_run(tmp_path, home, "late", "2024-08-01")
    assert (out["n_series"], out["series_ended"], out["series_ended_excluded"]) == (2, 1, 1)
    assert out["spans"]["n_windows"] >= 2  # the oldest cut, 2024-06 or before, came before late's last month
    assert ('1 ended series set aside ([validation] ended_series = "exclude"), \'late\', is in no backtest window either: '
            "the leaderboard scores the series this run publishes; 1 of them ('late') still had observations after the "
            "oldest backtest cut (") in out["note"]  # the run's notes, as its decision artifact and log say them


def _refused_before_prefect(tmp_path: Path, monkeypatch, name: str, text: str | None, command: list[str],
                            *extra: str):
    """`flowcast <command> <name>.csv ... --json` (the file's `text`; None: no file) in `tmp_path`, refused before
    Prefect starts (exit 2; a start of Prefect's flow fails the test): the CLI's result."""
    from flowcast.cli import pipeline as cli_pipeline

    def no_prefect(*_a, **_k):
        raise AssertionError("Prefect's flow was started for a file with nothing to run on")

    monkeypatch.setattr(cli_pipeline, "_prefect_console", no_prefect)
    monkeypatch.chdir(tmp_path)
    if text is not None:
        (tmp_path / f"{name}.csv").write_text(text)
    res = CliRunner().invoke(app, [*command, f"{name}.csv", "--time-col", "date", "--id-col", "id", "--target-col",
                                   "val", "--freq", "1d", *extra, "--json"], terminal_width=400)
    assert res.exit_code == 2, res.output
    return res


@pytest.mark.parametrize("command", [["run"], ["backfill", "--start", "2024-01-01", "--end", "2024-01-02"]])
def test_a_refusal_before_prefect_sends_the_runs_data_quality_event(tmp_path, monkeypatch, command):
    """Regression: `flowcast run` (or `backfill`) on a server (PREFECT_API_URL) refused an all-quarantined file
    before Prefect started and sent nothing, where its run had sent `flowcast.data-quality.failed`: a command on a
    schedule (cron) alerted nobody. The refusal sends the run's event, figures and quarantine file in its payload
    (a backfill's labelled so), and still starts nothing of Prefect's flow."""
    from flow_helpers import events_named

    from flowcast import events

    name = f"refused{len(command)}"  # one dataset per case: the events of the session's API are shared
    res = _refused_before_prefect(tmp_path, monkeypatch, name, "date,id,val\n2024-01-01,a,abc\n2024-01-02,a,x\n",
                                  command, *(["--mode", "retrain"] if len(command) > 1 else []))
    error = json.loads(res.stdout.strip().splitlines()[-1])["error"]
    found = events_named(events.QUALITY_FAILED, where=lambda e: e["resource"].get("flowcast.dataset") == name)
    assert len(found) == 1, found
    payload, resource = found[0]["payload"], found[0]["resource"]
    assert error.endswith(payload["message"]) and payload["refused_before_run"] is True
    assert (payload["rows_in"], payload["rows_valid"], payload["rows_quarantined"]) == (2, 0, 2)
    assert Path(payload["quarantine"]).exists() and f"; see {payload['quarantine']}; to mend them" in error, error
    assert resource["flowcast.backfill"] == ("true" if len(command) > 1 else "false")


@pytest.mark.parametrize("flow", ["retrain", "forecast"])
@pytest.mark.parametrize("kind", ["header", "missing", "quarantined"])
def test_a_refusal_before_prefect_without_as_of_labels_its_events_with_the_runs_key(tmp_path, monkeypatch, flow,
                                                                                     kind):
    """followup22: `flowcast run` (or `forecast`) without --as-of, refused before Prefect (a header alone, a missing
    file, every row quarantined), sent `flowcast.run.failed` (and `flowcast.data-quality.failed`) with an empty
    `flowcast.as_of`, and wrote its quarantine under `all/`, which no run writes (a later clean run never replaced
    it). Both carry the run key the run would have taken, the command's start (UTC, to the second), as a run's own
    failure labels its events (its start); the quarantine file is in that key's folder, its path in the payload."""
    from flow_helpers import events_named

    from flowcast import events

    name = f"unkeyed{kind}{flow}"  # one dataset per case: the events of the session's API are shared
    before = datetime.now(UTC).replace(microsecond=0)
    _refused_before_prefect(tmp_path, monkeypatch, name, _REFUSED[kind], ["run" if flow == "retrain" else "forecast"])
    after = datetime.now(UTC)

    def ours(e: dict) -> bool:
        return e["resource"].get("flowcast.dataset") == name

    failed = events_named(events.RUN_FAILED, where=ours)
    assert len(failed) == 1, failed
    label = failed[0]["resource"]["flowcast.as_of"]
    assert label and before <= datetime.fromisoformat(label).replace(tzinfo=UTC) <= after, (label, before, after)
    quality = events_named(events.QUALITY_FAILED, where=ours, timeout=0)  # sent before it, when at all
    assert [e["resource"]["flowcast.as_of"] for e in quality] == ([label] if kind == "quarantined" else [])
    if kind == "quarantined":  # in the folder of that key, which a run of it (`--as-of <label>`) replaces
        folder = datetime.fromisoformat(label).strftime("%Y-%m-%dT%H-%M-%S")
        path = Path(quality[0]["payload"]["quarantine"])
        assert path.exists() and path.parent.name == folder and path.parent.parent.name == name
        assert [p.name for p in path.parent.parent.iterdir()] == [folder]


def test_a_command_that_sends_an_event_as_it_exits_sends_it_without_prefects_still_processing_warning(tmp_path):
    """followup22: the `flowcast` command, run as a process, that sent an event just before it exited (a refusal
    before Prefect: `flowcast.run.failed`) left it to Prefect's exit hook, which sent it printing `EventsWorker -
    Still processing items: 1 items remaining...` on stderr, a WARNING under the command's one-line error. The
    command waits for its events to be sent before it exits (`events.flush`): the event arrives, stderr is the
    error alone."""
    import os
    import subprocess
    import sys

    from flow_helpers import events_named
    from prefect.settings import PREFECT_API_URL

    from flowcast import events

    name = "flushed"
    (tmp_path / f"{name}.csv").write_text("date,id,val\n")  # a header alone: refused before Prefect starts
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
           "PREFECT_API_URL": str(PREFECT_API_URL.value()), "FLOWCAST_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "flowcast", "run", f"{name}.csv", "--time-col", "date", "--id-col",
                           "id", "--target-col", "val", "--freq", "1d"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"error: {name}.csv: no rows (the file has a header but no data)", done.stderr
    found = events_named(events.RUN_FAILED, where=lambda e: e["resource"].get("flowcast.dataset") == name)
    assert len(found) == 1 and found[0]["payload"]["refused_before_run"] is True, found


_REFUSED = {  # what a refusal before Prefect refuses: the file's text (None: no file)
    "header": "date,id,val\n",
    "empty": "",
    "missing": None,
    "after": "date,id,val\n2024-02-01,a,1\n",  # every row after the as_of (2024-01-03)
    "quarantined": "date,id,val\n2024-01-01,a,abc\n",
}
_COMMANDS = {"retrain": ["run", "--as-of", "2024-01-03"], "forecast": ["forecast", "--as-of", "2024-01-03"],
             "backfill": ["backfill", "--start", "2024-01-01", "--end", "2024-01-03"]}


@pytest.mark.parametrize("flow", list(_COMMANDS))
@pytest.mark.parametrize("kind", list(_REFUSED))
def test_every_refusal_before_prefect_sends_the_run_failed_event_its_automation_fires_on(tmp_path, monkeypatch,
                                                                                          flow, kind):
    """alerts21: `flowcast run`, `forecast` or `backfill` on a server (PREFECT_API_URL) that refused a header-only,
    empty or missing file, or every row after as_of, before Prefect started sent no event at all (an all-quarantined
    one only `flowcast.data-quality.failed`), where the run had failed with `flowcast.run.failed`: a cron job of the
    command alerted nobody through the *run failed* automation. Every refusal sends it now, as the run's failure did:
    the dataset, as_of and backfill labels, its flow (the server's record, role `flow`: what the automation's trigger
    matches) and tags related, the error in its message; the data-quality event still only for rows quarantined."""
    import uuid

    from flow_helpers import events_named
    from prefect.client.orchestration import get_client
    from prefect.server.events.schemas.automations import EventTrigger
    from prefect.server.events.schemas.events import ReceivedEvent

    from flowcast import events
    from flowcast.config import load_settings
    from flowcast.ops import automations as auto

    name = f"alerts{kind}{flow}"  # one dataset per case: the events of the session's API are shared
    res = _refused_before_prefect(tmp_path, monkeypatch, name, _REFUSED[kind], _COMMANDS[flow])
    error = json.loads(res.stdout.strip().splitlines()[-1])["error"]

    def ours(e: dict) -> bool:
        return e["resource"].get("flowcast.dataset") == name

    found = events_named(events.RUN_FAILED, where=ours)
    assert len(found) == 1, found
    event = found[0]
    payload, resource = event["payload"], event["resource"]
    assert payload["message"] == f"{flow} run refused before it started: {error}", (payload, error)
    assert payload["refused_before_run"] is True and payload["flow"] == flow
    assert resource["flowcast.as_of"] == ("2024-01-01T00:00:00" if flow == "backfill" else "2024-01-03T00:00:00")
    assert resource["flowcast.backfill"] == ("true" if flow == "backfill" else "false")
    with get_client(sync_client=True) as client:
        flow_id = client.read_flow_by_name(flow).id
    related = {r["prefect.resource.id"]: r for r in event["related"]}
    assert related[f"prefect.flow.{flow_id}"]["prefect.resource.role"] == "flow"
    assert {"prefect.tag.flowcast", f"prefect.tag.{flow}"} <= set(related)
    triggers = {a.name: EventTrigger.model_validate(a.trigger.model_dump(mode="json"))
                for a in auto.desired(load_settings(), uuid.uuid4())}
    assert triggers[auto.RUN_FAILED].covers(ReceivedEvent.model_validate(event))  # the automation fires on it
    quality = events_named(events.QUALITY_FAILED, where=ours, timeout=0)  # sent before it, when at all
    assert len(quality) == (1 if kind == "quarantined" else 0), quality
    assert all(triggers[auto.QUALITY_FAILED].covers(ReceivedEvent.model_validate(e)) for e in quality)


@pytest.mark.parametrize("kind", ["header", "quarantined"])
def test_a_refusal_before_prefect_ends_without_prefects_events_worker_warning(tmp_path, kind):
    """Regression (ui21): `flowcast run` of a header-only file against a server (PREFECT_API_URL) printed its error,
    then Prefect's `WARNING | EventsWorker - Still processing items: 1 items remaining...` as the process exited with
    the refusal's event not sent yet: the event is sent before the command ends (a real process: the warning is
    Prefect's exit handler's)."""
    import os
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    (tmp_path / "s.csv").write_text(_REFUSED[kind])
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "flowcast", "run", "s.csv", "--time-col", "date", "--id-col", "id",
                           "--target-col", "val", "--freq", "1d", "--as-of", "2024-01-03", "--home", str(tmp_path / "h")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "error: " in done.stderr and "Still processing items" not in done.stderr, done.stderr[-2000:]


def test_the_run_summary_says_the_valid_rows_without_a_target_value(tmp_path):
    """polish43: `flowcast run` said 'valid 143412' of data some of whose rows had no target value, which its log alone
    said; its summary says them, and its JSON carries them (rows_null_y)."""
    csv = _monthly_csv(tmp_path / "raw" / "shops.csv", {"a": ("2011-01-01", "2020-12-01")})
    lines = csv.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ","  # a month with no sales written
    csv.write_text("\n".join(lines) + "\n")
    args = ["run", "--data", str(csv), "--id-col", "store", "--time-col", "month", "--target-col", "sales",
            "--freq", "1mo", "--horizon", "3", "--home", str(tmp_path / "home"), "--models", "none", "--as-of",
            "2021-01-01"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["rows_null_y"] == 1
    result = CliRunner().invoke(app, args, terminal_width=400)
    said = " ".join(result.output.split())
    assert result.exit_code == 0 and "valid 120 (1 without a target value), quarantined 0" in said, said


def test_the_run_summary_names_the_checks_of_its_quarantined_rows(tmp_path):
    """polish33: `flowcast run` of an export ending in a totals row and a footer note said 'quarantined 2' alone; its
    summary names the check they failed with its count (the data-quality report's), and its JSON carries them."""
    csv = _monthly_csv(tmp_path / "raw" / "shops.csv", {"a": ("2011-01-01", "2020-12-01")})
    with csv.open("a") as f:
        f.write("a,Total,1234\na,\"Source: Bureau of Labor Statistics, retrieved 2020-01-15\",\n")
    home = tmp_path / "home"
    args = ["run", "--data", str(csv), "--id-col", "store", "--time-col", "month", "--target-col", "sales",
            "--freq", "1mo", "--horizon", "3", "--home", str(home), "--models", "none", "--as-of", "2021-01-01"]
    result = CliRunner().invoke(app, args, terminal_width=400)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    # msg40: with what each row looks like, as the data-quality report asks it
    assert "valid 120, quarantined 2 (2 time_unparsable: a totals row? a note line?)" in said, said
    out = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout.strip().splitlines()[-1])
    assert out["rows_quarantined"] == 2 and out["quarantine_checks"] == {"time_unparsable": 2}
    assert out["quarantine_hints"] == {"time_unparsable": ["a totals row?", "a note line?"]}


def test_a_forecast_whose_every_row_is_its_fallbacks_names_the_fallback_in_its_receipt(tmp_path, monkeypatch):
    """iv44, end to end: `flowcast forecast` as of a date on which every series had 2 observations (fewer than
    `recipes.SHORT_HISTORY`) publishes naive's rows for all of them; the publish receipt named the production model,
    whose version made no row ('from theta (theta-v1)'). It names naive, the fallback for every series, and the
    version that forecast none. wordsB45: so does the command's own line, which read 'Published 6 forecast rows from
    theta-v1'; review46: and the plot's caption."""
    from flow_helpers import artifacts_of

    from flowcast.reporting import artifact_key

    monkeypatch.setenv("FLOWCAST_EVALUATION__STATISTICAL", '["naive", "theta"]')  # two candidates: quicker
    csv = _monthly_csv(tmp_path / "raw" / "shops.csv", {"a": ("2019-01-01", "2020-12-01"),
                                                         "b": ("2019-01-01", "2020-12-01")})
    home = tmp_path / "home"
    source = ["--data", str(csv), "--id-col", "store", "--time-col", "month", "--target-col", "sales", "--freq", "1mo",
              "--horizon", "3", "--home", str(home)]
    ran = CliRunner().invoke(app, ["run", *source, "--json", "--models", "none", "--as-of", "2021-01-01"])
    assert ran.exit_code == 0, ran.output
    production = json.loads(ran.stdout.strip().splitlines()[-1])["model_version"]
    assert not production.startswith("naive"), production  # a champion other than the fallback

    result = CliRunner().invoke(app, ["forecast", *source, "--as-of", "2019-02-01"])
    assert result.exit_code == 0, result.output
    fell = f"naive, the fallback for every series ({production} forecast none)"
    assert f"Published 6 forecast rows from {fell}\n" in result.output, result.output
    as_of = datetime(2019, 2, 1, tzinfo=UTC)
    stored = EmbeddedStore(home / "warehouse").receipt_of("shops", as_of)
    assert (stored["model_version"], int(stored["rows"])) == (production, 2 * 3)
    published = EmbeddedStore(home / "warehouse").read(dataset="shops", as_of=as_of)
    assert set(published["model"]) == {"naive"}  # every row the fallback's
    (receipt,) = artifacts_of(stored["run_id"])[artifact_key("receipt", "shops")]
    said = f"Published 6 forecast rows of 2 series of shops as of 2019-02-01 from {fell}."
    assert receipt.description.startswith(f"As of 2019-02-01: {said}\n\n"), receipt.description
    assert json.loads(receipt.data)[:2] == [  # ui46: rows of the sentence's parts (as one, it was cut in the UI)
        {"field": "published", "value": "6 forecast rows of 2 series of shops as of 2019-02-01"},
        {"field": "from", "value": fell}], receipt.data
    # review46: so does the plot's caption, which named the production model ('Forecasts of 2 of 2 series from theta')
    (plot,) = artifacts_of(stored["run_id"])[artifact_key("plot", "shops")]
    assert f"Forecasts of 2 of 2 series from {fell} " in plot.description, plot.description
    # uiB46: its notes said 'theta publishes no 95% interval ...' of the model that made no row; they name naive
    model = stored["model"]
    assert f"{model} publishes no" not in receipt.description and f"{model}'s " not in receipt.description, \
        receipt.description
