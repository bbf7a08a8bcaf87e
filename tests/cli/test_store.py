"""`flowcast models list`: the registered versions as a person reads them."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from rich.console import Console

from flowcast.cli.store import _versions_tables, with_end_labels


def test_versions_stay_whole_in_80_columns_one_table_per_dataset():
    """Regression: `flowcast models list` folded every column of one eight-column table to fit 80 columns:
    'statistic|al', 'hybrid-v1|2', an as_of cut to '2024-04-1|9 00:00:00+|00' (the offset half removed) and
    'seasonal_n|aive'. One table per dataset now (its name the title), every version, kind, as_of and score
    whole; what each is wraps by words."""
    desc = "statistical: theta; its fallbacks for series it cannot forecast (first that can): damped, seasonal_naive, naive; 80/95% conformal intervals"
    rows = [
        {"production": True, "version": "theta-v1", "dataset": "us_employment", "kind": "statistical",
         "as_of": "2024-04-19T06:30:00+00:00", "mase": 0.71653, "smape": 30.7076, "description": desc},
        {"production": False, "version": "hybrid-v12", "dataset": "us_employment", "kind": "hybrid",
         "as_of": "2024-04-19T00:00:00+00:00", "mase": 0.7, "smape": 31.0, "description": "hybrid: gru + theta"},
        {"production": True, "version": "gru-v3", "dataset": "energy", "kind": "network",
         "as_of": None, "mase": None, "smape": None, "description": "network: gru"},
    ]
    console = Console(width=80, record=True)
    for table in _versions_tables(rows):
        console.print(table)
    text = console.export_text()
    assert "…" not in text, text
    for whole in ("dataset us_employment", "dataset energy", "statistical", "hybrid-v12", "2024-04-19 06:30",
                  "2024-04-19 ", "0.7165", "30.71", "seasonal_naive,"):
        assert whole in text, (whole, text)
    assert "+00" not in text


@pytest.mark.parametrize(("version", "width", "beside"), [
    ("seasonal_naive-v3", 80, False),  # the fixed columns leave 12: what each is goes under the table
    ("seasonal_naive-v3", 100, True),
    ("theta-v1", 80, True),
])
def test_what_each_version_is_is_never_cut_off_whatever_its_name(version, width, beside):
    """ui20: `models list` gave 'what it is' at least 16 columns; a version named 'seasonal_naive-v3' left it 12 of
    an 80-column terminal, the table came out 84 wide and each of its lines lost 4 characters ('seasonal_nai', 'its
    fallback', 'cannot forec'). Where the column would be narrower than 16, what each version is is listed under the
    table, a line per version; every word of it is printed whole, every line within the width."""
    desc = ("statistical: seasonal_naive; its fallbacks for series it cannot forecast (first that can): naive; "
            "80/95% conformal intervals")
    rows = [{"production": True, "version": version, "dataset": "tiny", "kind": "statistical",
             "as_of": "2019-07-15T03:00:00+00:00", "mase": 1.0, "smape": 3.509, "description": desc}]
    console = Console(width=width, record=True)
    for table in _versions_tables(rows, width):
        console.print(table)
    text = console.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width, text
    words = " ".join(text.split())
    for word in desc.split():
        assert f" {word} " in f" {words} ", (word, text)
    assert ("what it is" in text) is beside
    if not beside:
        assert f"{version}: statistical: seasonal_naive; its fallbacks" in words, text


def test_a_dataset_ranked_on_rmsse_lists_its_rmsse_in_place_of_smape():
    """Intermittent data is ranked on RMSSE (its sMAPE says little on zeros): its table shows MASE and RMSSE,
    whole in 80 columns; a dataset ranked on MASE keeps MASE and sMAPE."""
    rows = [
        {"production": True, "version": "tsb-v1", "dataset": "parts", "kind": "statistical", "metric": "rmsse",
         "as_of": "2024-04-19T00:00:00+00:00", "mase": 0.9271, "smape": 151.234, "rmsse": 0.80123,
         "description": "statistical: tsb; its fallbacks for series it cannot forecast (first that can): naive; 80/95% conformal intervals"},
        {"production": False, "version": "naive-v1", "dataset": "parts", "kind": "statistical", "metric": None,
         "as_of": None, "mase": 1.0, "smape": 160.0, "rmsse": None, "description": "statistical: naive"},
        {"production": True, "version": "theta-v1", "dataset": "emp", "kind": "statistical", "metric": "mase",
         "as_of": None, "mase": 0.71653, "smape": 30.7076, "rmsse": 0.6, "description": "statistical: theta"},
    ]
    console = Console(width=80, record=True)
    tables = _versions_tables(rows)
    for table in tables:
        console.print(table)
    text = console.export_text()
    assert "…" not in text, text
    parts, emp = text.split("dataset emp")
    assert "RMSSE" in parts and "0.8012" in parts and "sMAPE" not in parts and "151.2" not in parts, parts
    assert "sMAPE" in emp and "30.71" in emp and "RMSSE" not in emp, emp
    # headed as the leaderboard artifact heads them (ui31: 'mase', 'smape', 'rmsse')
    heads = [line.split() for line in text.splitlines() if line.lstrip().startswith("version")]
    assert heads == [["version", "kind", "as_of", "(UTC)", "MASE", "RMSSE", "what", "it", "is"],
                     ["version", "kind", "as_of", "(UTC)", "MASE", "sMAPE", "what", "it", "is"]], text


def test_forecasts_table_fits_80_columns_with_what_rows_share_in_its_title():
    """Regression: `flowcast forecasts` printed polars' table of all 14 columns with every digit (y_hat
    100.90347018165181, the run id and created_at in each row): 280 columns, each row folded over four
    lines of a terminal. One table per (dataset, as_of) now, titled with the as_of as --as-of takes it,
    the model version and the run; per row the series, period, step and the bounds around y_hat, rounded
    to the values' magnitude; a model column only when a fallback made some rows; a level published for
    no row is left out and said."""
    from datetime import datetime

    import polars as pl

    from flowcast.cli.store import forecast_tables

    def rows(uid: str, version: str, level95: bool) -> list[dict]:
        return [{"dataset": "sales", "as_of": datetime(2024, 4, 19, 6, 30, 15), "unique_id": uid,
                 "ds": datetime(2024, 4, 19 + s), "step": s, "model": version.split("-")[0], "model_version": version,
                 "y_hat": 1234.56789 * s, "y_hat_lo95": 1000.0 * s if level95 else None, "y_hat_lo80": 1100.123 * s,
                 "y_hat_hi80": 1300.0 * s, "y_hat_hi95": 1400.0 * s if level95 else None,
                 "run_id": "d8fb9950-0c8c-4bef-afa5-67fe1837f56b", "created_at": datetime(2024, 4, 19, 6, 31)}
                for s in (1, 2)]

    frame = pl.DataFrame(rows("store-ÅLBORG-01", "hybrid-v12", False) + rows("s2", "theta-v3", False))
    text = forecast_tables(frame)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "sales as of 2024-04-19 06:30:15 UTC: 2 models" in text
    assert "run d8fb9950-0c8c-4bef-afa5-67fe1837f56b" in text
    assert "unique_id        ds          step" in text and "(UTC)  step" not in text
    assert "store-ÅLBORG-01  2024-04-20     1  hybrid-v12" in text and "1234.6" in text and "1100.1" in text
    assert "lo95" not in text and "(no 95% interval was published" in text
    one = forecast_tables(pl.DataFrame(rows("s1", "gru-v1", True)).with_columns(pl.col("ds").dt.date()))
    assert ": gru-v1\n" in one and "model" not in one.splitlines()[2] and "lo95" in one and "2024-04-21" in one
    hourly = forecast_tables(pl.DataFrame(rows("s1", "gru-v1", True)).with_columns(pl.col("ds").dt.offset_by("30m")))
    assert "ds (UTC)          step" in hourly and "2024-04-20 00:30     1" in hourly  # instants, said to be UTC
    # as every instant reads (`timekeys.utc_text`): seconds where a period has them (they were cut to the minute),
    # a midnight among clock times with its clock too (it read '2024-04-20' among '2024-04-20 06:00', wordsC45)
    secs = forecast_tables(pl.DataFrame(rows("s1", "gru-v1", True)).with_columns(
        pl.col("ds").dt.offset_by("-30s")))
    assert "ds (UTC)             step" in secs and "2024-04-19 23:59:30     1" in secs, secs
    mixed = forecast_tables(pl.DataFrame(rows("s1", "gru-v1", True)[:1] + [
        {**rows("s1", "gru-v1", True)[1], "ds": datetime(2024, 4, 20, 6)}]))
    assert [line.split()[:4] for line in mixed.splitlines()[4:6]] == [
        ["s1", "2024-04-20", "00:00", "1"], ["s1", "2024-04-20", "06:00", "2"]], mixed
    assert "ds (UTC)          step" in mixed, mixed


def test_a_sub_daily_forecast_table_shows_the_time_of_every_period():
    """wordsC45: `flowcast forecasts` of 15-minute data printed a midnight as its date alone, '2024-03-11' among
    '2024-03-10 23:45' and '2024-03-11 00:15'; a table of dates alone keeps its dates."""
    from datetime import date, datetime, timedelta

    import polars as pl

    from flowcast.cli.store import forecast_tables

    def frame(ds: list) -> pl.DataFrame:
        return pl.DataFrame({"dataset": "load", "as_of": datetime(2024, 3, 10, 23, 30), "unique_id": "a", "ds": ds,
                             "step": range(1, len(ds) + 1), "model": "naive", "model_version": "naive-v1",
                             "y_hat": [1.0] * len(ds), "run_id": "r"})

    quarter = forecast_tables(frame([datetime(2024, 3, 10, 23, 45) + timedelta(minutes=15 * i) for i in range(3)]))
    assert [line.split()[1:3] for line in quarter.splitlines()[4:7]] == [
        ["2024-03-10", "23:45"], ["2024-03-11", "00:00"], ["2024-03-11", "00:15"]], quarter
    days = forecast_tables(frame([date(2024, 3, 11), date(2024, 3, 12)]))
    assert [line.split()[1] for line in days.splitlines()[4:6]] == ["2024-03-11", "2024-03-12"], days
    assert "00:00" not in days and "ds (UTC)" not in days, days


@pytest.mark.parametrize(("fallen", "said"), [
    ({}, None),
    ({"east": "damped"}, "(east by damped, not seasonal_naive-v1's own model: its fallback for 1 series, the run's"),
    ({f"s{i}": "naive" for i in range(7)}, "(s0, s1, s2, s3, s4 and 2 more by naive, not seasonal_naive-v1's own"),
    ({"east, west": "damped", "south": "damped"}, "('east, west', south by damped, not seasonal_naive-v1's own"),
])
def test_a_forecast_table_names_the_series_a_fallback_forecast(fallen, said):
    """Regression (newuser22): a weekly file whose one series (40 weeks) was too short for the champion
    seasonal_naive (a season of 52) was published by damped, its fallback, and `flowcast forecasts` showed its rows
    in a table titled `seasonal_naive-v1` with no model column: damped's trend read as seasonal naive's forecast."""
    from flowcast.cli.store import forecast_tables

    ids = ["north", *fallen]
    frame = pl.DataFrame([
        {"dataset": "weekly", "as_of": datetime(2024, 1, 1), "unique_id": u, "ds": datetime(2024, 1, 7), "step": 1,
         "model": fallen.get(u, "seasonal_naive"), "model_version": "seasonal_naive-v1", "y_hat": 10.0,
         "y_hat_lo80": 9.0, "y_hat_hi80": 11.0, "y_hat_lo95": 8.0, "y_hat_hi95": 12.0, "run_id": "r",
         "created_at": datetime(2024, 1, 1)} for u in ids])
    text = forecast_tables(frame)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "seasonal_naive-v1\n" in text  # one version: its title, no model column
    if said is None:
        assert "own model" not in text, text
    else:
        assert said in " ".join(text.split()), text
        assert "--format csv gives each row's model)" in " ".join(text.split())


@pytest.mark.parametrize(("lacks", "said"), [
    ({}, None),
    ({"new": "80 95"}, "(no 80% or 95% interval for new, 1 of 3 series: the run's notes say why)"),
    ({"new": "80 95", "newer": "80 95"},
     "(no 80% or 95% interval for new, newer, 2 of 3 series: the run's notes say why)"),
    ({"new": "95", "newer": "95"}, "(no 95% interval for new, newer, 2 of 3 series: the run's notes say why)"),
    # wordsB46: new lacks both levels, newer the 95% only: each said of its own series
    ({"new": "80 95", "newer": "95"}, ("(no 80% or 95% interval for new, 1 of 3 series; no 95% interval for newer, "
     "1 of 3 series: the run's notes say why)")),
])
def test_a_forecast_table_says_which_series_have_no_interval(lacks, said):
    """probe45: a series with no typical change to scale its widths by is published without bounds beside a
    constant series' zero-width interval; the table showed its '-' cells and said nothing, where a level left out
    of every series is said ('(no 95% interval was published: ...)'). cachedir46: a level with too few calibration
    points is a constant series' zero width alone: the others lack that level only, and the line names it."""
    from flowcast.cli.store import forecast_tables

    frame = pl.DataFrame([
        {"dataset": "daily", "as_of": datetime(2024, 1, 1), "unique_id": u, "ds": datetime(2024, 1, 2), "step": 1,
         "model": "damped", "model_version": "damped-v1", "y_hat": 10.0,
         **{c: None if c[-2:] in lacks.get(u, "") else v for c, v in (("y_hat_lo80", 10.0), ("y_hat_hi80", 10.0),
                                                                      ("y_hat_lo95", 10.0), ("y_hat_hi95", 10.0))},
         "run_id": "r", "created_at": datetime(2024, 1, 1)} for u in ("flat", "new", "newer")])
    text = forecast_tables(frame)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "lo95" in text and "was published" not in text
    if said is None:
        assert "interval for" not in text, text
    else:
        assert said in " ".join(text.split()), text


@pytest.mark.parametrize(("freq", "ds", "ds_end"), [
    ("1h", datetime(2024, 3, 30, 13), datetime(2024, 3, 30, 14)),
    ("1d", datetime(2024, 1, 1), datetime(2024, 1, 2)),  # a daily total dated by the next midnight
    ("1b", datetime(2024, 1, 5), datetime(2024, 1, 6)),  # Friday's, by Saturday 00:00
    ("1mo", datetime(2024, 1, 1), datetime(2024, 2, 1)),
    ("12mo", datetime(2024, 6, 1), datetime(2024, 7, 1)),  # a fiscal year dated by the month it ends in
])
def test_forecasts_of_an_end_labelled_dataset_carry_their_end_label(tmp_path, freq, ds, ds_end):
    """`flowcast forecasts` adds ds_end (the label the data write) to an end-labelled dataset's rows, what its
    publish recorded; a start-labelled dataset's rows have none, and a listing of those alone is unchanged."""
    import json

    from flowcast.config import Settings
    from flowcast.ops.quiet import fingerprint_path

    settings = Settings(home=tmp_path)
    for name, label in (("hourend", "end"), ("plain", "start")):  # what each one's publish recorded
        record = fingerprint_path(tmp_path, name, datetime(2024, 1, 1))
        record.parent.mkdir(parents=True)
        record.write_text(json.dumps({"dataset": name, "as_of": "2024-01-01T00:00:00", "time_label": label,
                                      "freq": freq}))
    frame = pl.DataFrame({"dataset": ["hourend", "plain"], "as_of": [datetime(2024, 1, 1)] * 2,
                          "unique_id": ["a", "a"], "ds": [ds, ds], "step": [1, 1], "y_hat": [1.0, 2.0]})
    got = with_end_labels(frame, settings)
    assert got.columns == ["dataset", "as_of", "unique_id", "ds", "ds_end", "step", "y_hat"]
    assert got["ds_end"].to_list() == [ds_end, None]
    assert with_end_labels(frame.filter(pl.col("dataset") == "plain"), settings).columns == frame.columns
    # store53: csv and json are written a batch at a time; a batch of the plain dataset's rows has the column (null)
    # where the filters match an end-labelled one too (fixC53: not another dataset of the store), so that every
    # batch has the header's columns
    batch = with_end_labels(frame.filter(pl.col("dataset") == "plain"), settings, ["hourend", "plain"])
    assert batch.columns == got.columns and batch["ds_end"].to_list() == [None]


def test_csv_of_a_series_has_the_end_label_column_only_where_a_matched_dataset_is_end_labelled(tmp_path):
    """fixC53: without --dataset, csv and json took `ds_end` from every dataset of the store: the csv of a series of a
    start-labelled dataset got an all-null ds_end column when another dataset was end-labelled, and its --limit N
    (from its rows alone) did not. Both take it from the datasets the filters match."""
    import json

    from typer.testing import CliRunner

    from flowcast.cli.app import app
    from flowcast.config import Settings
    from flowcast.ops.quiet import fingerprint_path
    from flowcast.store import open_store

    as_of = datetime(2024, 1, 1)
    store = open_store(Settings(home=tmp_path))
    for name, label, uid in (("hourend", "end", "e1"), ("plain", "start", "p1")):
        record = fingerprint_path(tmp_path, name, as_of)
        record.parent.mkdir(parents=True)
        record.write_text(json.dumps({"dataset": name, "as_of": "2024-01-01T00:00:00", "time_label": label,
                                      "freq": "1h"}))
        fc = pl.DataFrame({"unique_id": [uid] * 2, "ds": [datetime(2024, 1, 1, 1), datetime(2024, 1, 1, 2)],
                           "step": [1, 2], "y_hat": [1.0, 2.0]})
        store.publish(fc, dataset=name, as_of=as_of, model="naive", model_version=None, run_id=f"run-{name}",
                      created_at=as_of)

    def header(*args: str) -> str:
        res = CliRunner().invoke(app, ["forecasts", "--format", "csv", "--home", str(tmp_path), *args])
        assert res.exit_code == 0, res.output
        return res.stdout.splitlines()[0]

    assert "ds_end" not in header("--unique-id", "p1") and header("--unique-id", "p1", "--limit", "1") == \
        header("--unique-id", "p1")
    assert "ds_end" in header("--unique-id", "e1") and header("--unique-id", "e1", "--limit", "1") == \
        header("--unique-id", "e1")
    assert "ds_end" in header() and header("--limit", "1") == header()


def test_a_by_hand_promote_and_rollback_record_when(tmp_path, _isolated_home):
    """Regression: `flowcast models promote` and `rollback` without --at recorded `"at": null` in the
    history (a flow's promotion records its run's start), so a retried `rollback --expected V` said
    'time not recorded' of a rollback done a minute before. Now: now, or --at, as naive UTC."""
    import json as _json

    from typer.testing import CliRunner

    from flowcast.cli import app
    from flowcast.registry import ModelRegistry

    reg = ModelRegistry(_isolated_home / "models")
    versions = []
    for name in ("rnn", "gru"):
        art = tmp_path / f"art_{name}"
        (art / "ckpt").mkdir(parents=True)
        (art / "ckpt" / "model.ckpt").write_text(name)
        (art / "meta.json").write_text(_json.dumps({"cell": name}))
        versions.append(reg.register(art, name=name, config={}, fingerprint={"source": "toy", "as_of": "2024-01-01"},
                                     metrics={"mase": 0.9}, as_of=datetime(2024, 1, 1),
                                     created_at=datetime(2024, 1, 1)).version)
    a, b = versions
    runner = CliRunner()
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    assert runner.invoke(app, ["models", "promote", a]).exit_code == 0
    assert runner.invoke(app, ["models", "promote", b, "--at", "2024-03-01T12:00+02:00"]).exit_code == 0
    assert runner.invoke(app, ["models", "rollback", "--expected", b]).exit_code == 0
    events = [e for e in reg.history("toy") if e["action"] in ("promote", "rollback")]
    assert [e["action"] for e in events] == ["promote", "promote", "rollback"]
    assert all(e["at"] is not None for e in events), events
    assert datetime.fromisoformat(events[0]["at"]) >= before and datetime.fromisoformat(events[2]["at"]) >= before
    assert events[1]["at"] == "2024-03-01T10:00:00"  # --at, in UTC, naive as the flows write it
    r = runner.invoke(app, ["models", "rollback", "--expected", b], terminal_width=400)  # a retry
    assert r.exit_code == 0 and "time not recorded" not in r.output and events[2]["at"] in r.output, r.output


@pytest.mark.parametrize(("values", "shown"), [
    ([100.9034, 250.0, 0.05], ["100.90", "250.00", "5.0000e-02"]),
    ([1.078e12, 1.2e-9, 1.3e-9], ["1.0780e+12", "1.2000e-09", "1.3000e-09"]),  # a huge and a tiny series
    ([1.2e-6, 3.4e-6], ["1.2000e-06", "3.4000e-06"]),  # probabilities: '0.000001' and '0.000003'
    ([0.0123456, 0.5], ["0.01235", "0.50000"]),
    ([0.0, 5.0, float("nan")], ["0.0000", "5.0000", "nan"]),
])
def test_a_forecast_table_shows_every_value_with_significant_digits(values, shown):
    """Regression: `flowcast forecasts` of a file with a series at 1e12 beside one at 1e-9 printed the small one's
    every y_hat and bound as '0' (one format per table: five significant digits of the typical value, scientific
    only beyond 1e9), and a table of values near 1e-6 showed one digit."""
    from flowcast.cli.store import _number_format

    fmt = _number_format(values)
    assert [fmt(v) for v in values] == shown


@pytest.mark.parametrize(("file", "how", "said"), [
    ("model.ckpt", "cut", "model.ckpt: damaged or cut short"), ("model.ckpt", "zeros", "model.ckpt: damaged or cut short"),
    ("model.ckpt", "missing", "model.ckpt: missing"), ("meta.json", "cut", "meta.json: cannot be read"),
    ("meta.json", "missing", "meta.json: missing"), (None, None, None)])
def test_models_show_names_a_damaged_or_missing_network_file(tmp_path, file, how, said):
    """faults19: a production version whose model.ckpt was cut short (or removed) was shown as usual, exit 0,
    and only the scheduled forecast found it. `models show` checks each network file (a checkpoint's zip CRCs,
    meta.json parses) and names the damaged ones with the way out."""
    import json
    import os

    import torch
    from typer.testing import CliRunner

    from flowcast.cli.app import app
    from flowcast.registry import ModelRegistry

    art = tmp_path / "art"
    art.mkdir()
    torch.save({"state_dict": {"w": torch.arange(4096.0)}}, art / "model.ckpt")
    (art / "meta.json").write_text(json.dumps({"cell": "gru", "hparams": {}, "metrics": {}}))
    home = tmp_path / "home"
    registry = ModelRegistry(home / "models")
    version = registry.register(art, name="gru", dataset="d", created_at=datetime(2020, 1, 1, tzinfo=UTC))
    registry.promote(version.version, dataset="d")
    if file is not None:
        os.chmod(version.path, 0o755)
        target = version.path / file
        os.chmod(target, 0o644)
        data = target.read_bytes()
        if how == "missing":
            target.unlink()
        else:
            target.write_bytes(data[: len(data) // 2] if how == "cut" else b"\0" * len(data))
    res = CliRunner().invoke(app, ["models", "show", version.version, "--home", str(home)], terminal_width=400)
    # registry19: it said DAMAGED and exited 0, so a script checking the version saw it whole: exit 1 now
    assert res.exit_code == (0 if said is None else 1), res.output
    text = " ".join(res.output.split())
    res_json = CliRunner().invoke(app, ["models", "show", version.version, "--json", "--home", str(home)])
    assert res_json.exit_code == res.exit_code, res_json.output
    damaged = json.loads(res_json.stdout)["damaged_files"]
    # `models list` reads each version.json only (exit 0, as fast as before); --verify checks the files too
    listed = CliRunner().invoke(app, ["models", "list", "--home", str(home)], terminal_width=200)
    assert listed.exit_code == 0 and "all whole" not in listed.output, listed.output
    verified = CliRunner().invoke(app, ["models", "list", "--verify", "--home", str(home)], terminal_width=400)
    checked = " ".join(verified.output.split())
    rows = json.loads(CliRunner().invoke(app, ["models", "list", "--verify", "--json", "--home", str(home)])
                      .stdout)["versions"]
    if said is None:
        assert "DAMAGED" not in text and damaged == []
        assert verified.exit_code == 0 and "1 version checked" in checked and "all whole" in checked, checked
        assert rows[0]["damaged_files"] == []
        return
    assert f"DAMAGED: {version.path / file}" in text and said in text
    assert "flowcast models rollback --dataset d" in text and len(damaged) == 1 and said in damaged[0]
    assert verified.exit_code == 1 and f"damaged: {version.version}: {version.path / file}" in checked, checked
    assert f"1 damaged ({version.version};" in checked and "*! " in checked and said in rows[0]["damaged_files"][0]


def test_models_history_numbers_events_in_the_order_written_and_says_its_times_are_run_starts(tmp_path,
                                                                                             _isolated_home):
    """rollback19: `models history` lists events in the order written, but each time is its run's start, so after
    two runs that overlapped a champion stamped 03:33:23 was listed above a withdraw stamped 03:33:20, with nothing
    saying why. Each line carries its order number (#N, per dataset) and the listing says what its times are."""
    import json as _json

    from typer.testing import CliRunner

    from flowcast.cli import app
    from flowcast.registry import ModelRegistry

    reg = ModelRegistry(_isolated_home / "models")
    art = tmp_path / "art"
    (art / "ckpt").mkdir(parents=True)
    (art / "ckpt" / "model.ckpt").write_text("w")
    a, b = (reg.register(art, name="gru", dataset="sales", created_at=datetime(2024, 1, 1)).version for _ in range(2))
    reg.promote(a, dataset="sales", at=datetime(2026, 12, 5, 3, 33, 10), reason="first")
    reg.record_champion(b, dataset="sales", at=datetime(2026, 12, 5, 3, 33, 23), reason="run started later")
    reg.promote(b, dataset="sales", at=datetime(2026, 12, 5, 3, 33, 20), reason="run started earlier, wrote later")
    r = CliRunner().invoke(app, ["models", "history", "--dataset", "sales"], terminal_width=300)
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert [x.split(" sales")[0] for x in lines] == ["#1 2026-12-05 03:33:10 UTC", "#2 2026-12-05 03:33:23 UTC",
                                                     "#3 2026-12-05 03:33:20 UTC"], lines
    note = " ".join(r.stderr.split())
    assert "in the order written" in note and "when the run that wrote it started" in note, r.stderr
    got = _json.loads(CliRunner().invoke(app, ["models", "history", "--json"]).stdout)["events"]
    assert [e["at"] for e in got] == ["2026-12-05T03:33:10", "2026-12-05T03:33:23", "2026-12-05T03:33:20"]


@pytest.mark.parametrize("datasets", [["sales"], ["sales", "alpha"]])
def test_models_history_of_several_datasets_says_it_is_grouped_by_dataset(tmp_path, _isolated_home, datasets):
    """polish30: across datasets the events come one dataset after another (A to Z), but the note said 'oldest first':
    alpha's 2026 event was listed above sales' 2024 one. It says it is grouped by dataset, oldest first within each;
    a single dataset's listing says 'oldest first' alone."""
    from typer.testing import CliRunner

    from flowcast.cli import app
    from flowcast.registry import ModelRegistry

    reg = ModelRegistry(_isolated_home / "models")
    art = tmp_path / "art"
    (art / "ckpt").mkdir(parents=True)
    (art / "ckpt" / "model.ckpt").write_text("w")
    for year, ds in zip((2026, 2024), datasets, strict=False):
        v = reg.register(art, name="gru", dataset=ds, created_at=datetime(2024, 1, 1)).version
        reg.promote(v, dataset=ds, at=datetime(year, 1, 1), reason="first")
    r = CliRunner().invoke(app, ["models", "history"], terminal_width=300)
    assert r.exit_code == 0, r.output
    assert [x.split()[1:3] for x in r.stdout.strip().splitlines()] == [
        [f"{y}-01-01", ds] for y, ds in sorted(zip((2026, 2024), datasets, strict=False), key=lambda t: t[1])]
    note = " ".join(r.stderr.split())
    grouped = "grouped by dataset (A to Z), each dataset's events oldest first, in the order written"
    assert (grouped in note) == (len(datasets) > 1) and "oldest first, in the order written" in note, note


@pytest.mark.parametrize(("action", "said"), [
    ("promote", "#2 2026-12-05 03:33:20 UTC sales promote b-v from a-v (better)"),
    ("withdraw", "#3 2026-12-05 03:33:20 UTC sales withdraw b-v, production back to a-v (refused)"),
    ("rollback", "#3 2026-12-05 03:33:20 UTC sales rollback a-v from b-v (by hand)"),
    # takeback21: a skipping run's withdrawal of a killed run's winner names both runs
    ("withdraw-for", ("#3 2026-12-05 03:33:20 UTC sales withdraw b-v, production back to a-v run skipper for run "
                      "killed (left)")),
    ("take_back", "#3 2026-12-05 03:33:20 UTC sales take_back c-v run r1 (refused)"),
])
def test_models_history_says_what_each_action_did_to_the_previous_model(tmp_path, _isolated_home, action, said):
    """ui20: every history line said its event's `previous` as 'from X', which reads right of a promotion ('promote
    b-v from a-v') and a rollback, but a withdrawal's `previous` is the production model it put back: 'withdraw
    damped-v2 from naive-v1' read as if naive-v1 were withdrawn from. Times were printed to the microsecond
    ('2026-12-05T05:58:38.565090'); they are to the second now, as the README's example (--json keeps them whole)."""
    from typer.testing import CliRunner

    from flowcast.cli import app
    from flowcast.registry import ModelRegistry

    reg = ModelRegistry(_isolated_home / "models")
    art = tmp_path / "art"
    (art / "ckpt").mkdir(parents=True)
    (art / "ckpt" / "model.ckpt").write_text("w")
    a, b = (reg.register(art, name=n, dataset="sales", created_at=datetime(2024, 1, 1)).version for n in ("a", "b"))
    reg.promote(a, dataset="sales", at=datetime(2026, 12, 5, 3, 33, 10, 565090), reason="first")
    at = datetime(2026, 12, 5, 3, 33, 20, 831292)
    reg.promote(b, dataset="sales", at=at, reason="better")
    if action == "withdraw":
        reg.withdraw(b, dataset="sales", at=at, reason="refused")
    elif action == "rollback":
        reg.rollback(dataset="sales", at=at, reason="by hand")
    elif action == "withdraw-for":
        reg.withdraw(b, dataset="sales", at=at, reason="left", run="skipper", for_run="killed")
    elif action == "take_back":
        c = reg.register(art, name="c", dataset="sales", created_at=datetime(2024, 1, 1)).version
        reg.delete(c, at=at, run="r1", dataset="sales", reason="refused")
        said = said.replace("c-v", c)
    r = CliRunner().invoke(app, ["models", "history", "--dataset", "sales"], terminal_width=300)
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "#1 2026-12-05 03:33:10 UTC sales promote a-v1 (first)", lines
    assert lines[-1] == said.replace("a-v", a).replace("b-v", b), lines


@pytest.mark.parametrize("command", [["models", "show"], ["models", "promote", "--dataset", "sales"]])
def test_a_withdrawn_and_removed_version_is_told_removed_not_unknown(tmp_path, _isolated_home, command):
    """ui20: a refused retrain's winner, withdrawn and removed, is named by the UI's follow-up leaderboard and
    decision and by `models history`; `flowcast models show damped-v2` said 'unknown model version', as of a typo.
    It says the version was removed and names its last event, numbered as `models history` numbers it. A name
    never registered still reads as unknown alone."""
    from typer.testing import CliRunner

    from flowcast.cli import app
    from flowcast.registry import ModelRegistry

    reg = ModelRegistry(_isolated_home / "models")
    art = tmp_path / "art"
    (art / "ckpt").mkdir(parents=True)
    (art / "ckpt" / "model.ckpt").write_text("w")
    a, b = (reg.register(art, name=n, dataset="sales", created_at=datetime(2024, 1, 1)).version for n in ("a", "b"))
    reg.promote(a, dataset="sales", at=datetime(2026, 12, 5, 3, 33, 10), reason="first")
    reg.promote(b, dataset="sales", at=datetime(2026, 12, 5, 3, 33, 20, 5), reason="better")
    reg.withdraw(b, dataset="sales", at=datetime(2026, 12, 5, 3, 33, 20, 5), reason="refused")
    assert b not in [v.version for v in reg.list()]  # removed: no publish names it
    r = CliRunner().invoke(app, [*command, b], terminal_width=300)
    said = " ".join(r.output.split())
    assert r.exit_code != 0 and f"unknown model version '{b}': it is no longer in this registry (removed; withdrawn " \
        "from production of sales at 2026-12-05 03:33:20 UTC, #3 of `flowcast models history --dataset sales`)" in said, said
    typo = CliRunner().invoke(app, [*command, "zzz-v9"], terminal_width=300)
    assert "unknown model version 'zzz-v9'; known:" in " ".join(typo.output.split()), typo.output


@pytest.mark.parametrize(("kind", "gone"), [("network", "."), ("hybrid", "members/gru-s1")])
def test_models_show_and_list_verify_name_a_network_whose_files_are_all_gone(tmp_path, kind, gone):
    """review21: a network's folder emptied (its meta.json and model.ckpt both gone: a partial copy, a folder
    cleaned by hand), or a blend's member folder removed, was shown whole: `damaged_network_files` looked only at
    the meta.json and model.ckpt files it found, so with neither there it found nothing to check. `models show`
    exited 0 and `models list --verify` said 'all whole' while the forecast failed 'no trained model at ...
    (meta.json missing)'. The recipe names the folder of each network it forecasts with: each is checked."""
    import json
    import os
    import shutil

    import torch
    from typer.testing import CliRunner

    from flowcast.cli.app import app
    from flowcast.registry import ModelRegistry

    art = tmp_path / "art"
    members = ["."] if kind == "network" else ["members/gru-s0", "members/gru-s1"]
    for m in members:
        (art / m).mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": {"w": torch.arange(64.0)}}, art / m / "model.ckpt")
        (art / m / "meta.json").write_text(json.dumps({"cell": "gru", "hparams": {}, "metrics": {}}))
    recipe = None if kind == "network" else {
        "components": [{"type": "network", "cell": "gru", "seed": s, "path": m} for s, m in enumerate(members)]
        + [{"type": "statistical", "model": "theta"}], "weights": [0.25, 0.25, 0.5]}
    home = tmp_path / "home"
    registry = ModelRegistry(home / "models")
    version = registry.register(art, name="gru" if kind == "network" else "hybrid", dataset="d", kind=kind,
                                recipe=recipe, created_at=datetime(2020, 1, 1, tzinfo=UTC))
    for d, _, _ in os.walk(version.path):
        os.chmod(d, 0o755)
    folder = (version.path / gone).resolve()
    if gone == ".":
        for f in ("meta.json", "model.ckpt"):
            (folder / f).unlink()
    else:
        shutil.rmtree(folder)
    res = CliRunner().invoke(app, ["models", "show", version.version, "--json", "--home", str(home)])
    damaged = json.loads(res.stdout)["damaged_files"]
    assert res.exit_code == 1 and damaged == [f"{folder / 'meta.json'}: missing", f"{folder / 'model.ckpt'}: missing"], \
        res.output
    verified = CliRunner().invoke(app, ["models", "list", "--verify", "--home", str(home)], terminal_width=400)
    checked = " ".join(verified.output.split())
    assert verified.exit_code == 1 and f"damaged: {version.version}: {folder / 'meta.json'}: missing" in checked, checked
    assert f"1 damaged ({version.version};" in checked, checked


def test_models_list_verify_names_a_version_whose_metadata_cannot_be_read(tmp_path):
    """review21: a version whose version.json is cut short is left out of `models list` (a warning), and `models
    list --verify` then said 'N version(s) checked ...: all whole' and exited 0: a script checking the registry saw it
    whole. It is named as damaged and the exit is 1 (`unreadable_versions` in `--json`)."""
    import json
    import os

    from typer.testing import CliRunner

    from flowcast.cli.app import app
    from flowcast.registry import ModelRegistry

    art = tmp_path / "art"
    art.mkdir()
    (art / "meta.json").write_text(json.dumps({"cell": "gru", "hparams": {}, "metrics": {}}))
    import torch

    torch.save({"state_dict": {"w": torch.arange(8.0)}}, art / "model.ckpt")
    home = tmp_path / "home"
    registry = ModelRegistry(home / "models")
    cut, whole = (registry.register(art, name="gru", dataset="d", created_at=datetime(2020, 1, 1, tzinfo=UTC)).version
                  for _ in range(2))
    registry.promote(whole, dataset="d")
    meta = home / "models" / "versions" / cut / "version.json"
    os.chmod(meta.parent, 0o755)
    os.chmod(meta, 0o644)
    meta.write_text('{"version": "gru')
    verified = CliRunner().invoke(app, ["models", "list", "--verify", "--home", str(home)], terminal_width=400)
    checked = " ".join(verified.output.split())
    assert verified.exit_code == 1, checked
    assert f"damaged: {cut}: corrupt registry entry {meta}" in checked and "2 versions checked" in checked, checked
    assert f"1 damaged ({cut};" in checked, checked
    res = CliRunner().invoke(app, ["models", "list", "--verify", "--json", "--home", str(home)])
    got = json.loads(res.stdout)
    assert res.exit_code == 1 and list(got["unreadable_versions"]) == [cut] and [r["version"] for r in got["versions"]] \
        == [whole], res.output
    # --name keeps it only when it is a version of that model; without --verify nothing changes (exit 0)
    assert CliRunner().invoke(app, ["models", "list", "--verify", "--name", "theta", "--home", str(home)]).exit_code == 0
    assert CliRunner().invoke(app, ["models", "list", "--home", str(home)]).exit_code == 0


def test_models_history_prints_as_of_in_utc_without_offset_and_a_reasons_first_sentence(tmp_path, _isolated_home):
    """alerts21: `models history` printed a run's as_of as recorded, '2024-01-08T03:00:00+00:00', where the README's
    example has none (times are UTC, as `flowcast forecasts` prints them), and a refused retrain's withdrawal printed
    its whole ~400-character note as its reason. The as_of is UTC without an offset (one recorded in another offset
    converted), the reason its first sentence, ' ...' after it and stderr saying so; --json keeps both as recorded."""
    import json as _json
    from datetime import timedelta, timezone

    from typer.testing import CliRunner

    from flowcast.cli import app
    from flowcast.registry import Kept, ModelRegistry

    reg = ModelRegistry(_isolated_home / "models")
    art = tmp_path / "art"
    (art / "ckpt").mkdir(parents=True)
    (art / "ckpt" / "model.ckpt").write_text("w")
    a, b = (reg.register(art, name=n, dataset="sales", created_at=datetime(2024, 1, 1)).version for n in ("a", "b"))
    reg.promote(a, dataset="sales", at=datetime(2024, 1, 1), reason="first")
    slot = datetime(2024, 1, 8, 5, tzinfo=timezone(timedelta(hours=2)))  # 03:00 UTC
    with reg.publishing("sales", a, at=datetime(2024, 1, 8, 3), kept=Kept(as_of=slot, run="run-0", reason="stays")) \
            as check:
        check("the publish")
    reg.promote(b, dataset="sales", at=datetime(2024, 1, 9), reason="better")
    why = ("sales as of 2024-01-09 00:00 is published already (6 rows of naive-v1, run r-2) and overwrite is off: "
           "another run published it while this one computed, e.g. run r-2. Its promotion of the winner was "
           "withdrawn: production of sales is a-v1 again.")
    reg.withdraw(b, dataset="sales", at=datetime(2024, 1, 9), reason=why)
    r = CliRunner().invoke(app, ["models", "history", "--dataset", "sales"], terminal_width=400)
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[1] == f"#2 2024-01-08 03:00 UTC sales keep {a} as_of 2024-01-08 03:00 UTC run run-0 (stays)", lines
    assert lines[3] == (f"#4 2024-01-09 sales withdraw {b}, production back to {a} (sales as of 2024-01-09 "
                        "00:00 is published already (6 rows of naive-v1, run r-2) and overwrite is off: another run "
                        "published it while this one computed, e.g. run r-2. ...)"), lines
    assert "cut to its first (' ...'), --json gives it whole" in " ".join(r.stderr.split()), r.stderr
    got = _json.loads(CliRunner().invoke(app, ["models", "history", "--json"]).stdout)["events"]
    assert got[1]["as_of"] == slot.isoformat() and got[3]["reason"] == why


@pytest.mark.parametrize(("recorded", "shown"), [
    ("2023-11-30T00:00:00+00:00", "2023-11-30"),  # a run's as_of, recorded with its offset: midnight UTC, a date
    ("2024-01-08T05:00:00+02:00", "2024-01-08 03:00 UTC"),  # another offset: converted
    ("2026-12-05T05:58:38.565090", "2026-12-05 05:58:38 UTC"),  # a run's start: naive UTC, to the microsecond
    (datetime(2026, 12, 5, 3, 33), "2026-12-05 03:33 UTC"),
    ("not a time", "not a time"),
])
def test_models_history_writes_its_times_as_every_other_command_does(recorded, shown):
    """look42 (ui42's notes): `flowcast models history` printed its times as ISO text ('2023-11-30T00:00:00') where
    every other command writes an instant ('2023-11-30' at midnight UTC, '2024-01-08 03:00 UTC': `timekeys.utc_text`)."""
    from flowcast.cli.store import recorded_text

    assert recorded_text(recorded) == shown


@pytest.mark.parametrize("version, as_of", [
    ("seasonal_naive-v1", "2026-12-05T06:29:05+00:00"),  # a run as of now: its as_of has a time of day
    ("seasonal_naive-v123", "2024-04-19T00:00:00+00:00"),
])
def test_no_line_of_the_versions_table_is_cut_at_80_columns(version: str, as_of: str):
    """Regression: `flowcast run` as of now (a time of day) registering `seasonal_naive-v1`, then `flowcast models
    list`: the table was wider than 80 columns and each line cut at the edge, so what the version is read
    'seasonal_nai', 'its fallback', 'cannot forec' (no ellipsis). The time takes a second line of its cell where
    it would leave fewer than 16 columns for what each is; every word is whole."""
    desc = ("statistical: seasonal_naive; its fallbacks for series it cannot forecast (first that can): damped, "
            "naive, theta; 80/95% conformal intervals")
    rows = [{"production": True, "version": version, "dataset": "weekly", "kind": "statistical", "as_of": as_of,
             "mase": 1.53512, "smape": 10.2119, "description": desc}]
    console = Console(width=80, record=True)
    for table in _versions_tables(rows):  # the console's width, 80
        console.print(table)
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines()), text
    words = set(text.split())
    for word in desc.split():
        assert word in words, (word, text)
    assert version in words and as_of[:10] in words and "1.535" in words, text


def _two_datasets(home, tmp_path):
    """A registry of two datasets: weekly's naive-v1 and theta-v3, weekly2's naive-v2 (in production each)."""
    from flowcast.registry import ModelRegistry

    reg = ModelRegistry(home / "models")
    made = {}
    for name, dataset in (("naive", "weekly"), ("naive", "weekly2"), ("theta", "weekly")):
        mv = reg.register(None, name=name, dataset=dataset, kind="statistical", recipe={"kind": "statistical",
                          "members": [{"kind": "statistical", "name": name, "weight": 1.0}]},
                          created_at=datetime(2024, 1, 1))
        made[mv.version] = dataset
    reg.promote("naive-v1", dataset="weekly")
    reg.promote("naive-v2", dataset="weekly2")
    assert made == {"naive-v1": "weekly", "naive-v2": "weekly2", "theta-v3": "weekly"}
    return reg


@pytest.mark.parametrize(("args", "code", "said"), [
    (["naive-v2", "--dataset", "weekly2"], 0, "naive-v2: statistical model of dataset weekly2 (in production)"),
    (["--dataset", "weekly2"], 0, "naive-v2: statistical model of dataset weekly2 (in production)"),
    (["-d", "weekly"], 0, "naive-v1: statistical model of dataset weekly (in production)"),
    (["theta-v3"], 0, "theta-v3: statistical model of dataset weekly"),
    (["naive-v1", "--dataset", "weekly2"], 1, ("naive-v1 is a model of dataset 'weekly', not 'weekly2' (--dataset): "
                                               "weekly2's versions: naive-v2 (`flowcast models list --dataset weekly2`)")),
    (["--dataset", "wekly"], 1, "dataset 'wekly' has no registered model in"),
    (["naive-v1", "--dataset", "wekly"], 1, "registered datasets: weekly, weekly2"),
    ([], 1, "this registry holds production models of several datasets ['weekly', 'weekly2']: name one (--dataset)"),
])
def test_models_show_takes_dataset_as_the_other_models_commands(tmp_path, _isolated_home, args, code, said):
    """newuser25: `flowcast models show --dataset X` was refused (`No such option: --dataset`) while `models list`,
    `history`, `promote` and `rollback` take it. It is accepted: beside a version it checks the version is X's (a
    version of another dataset names both and X's versions), alone it shows X's production model."""
    from typer.testing import CliRunner

    from flowcast.cli import app

    _two_datasets(_isolated_home, tmp_path)
    r = CliRunner().invoke(app, ["models", "show", *args], terminal_width=400)
    assert r.exit_code == code and said in " ".join(r.output.split()), r.output


def test_models_show_without_a_version_in_an_empty_home_says_what_to_do(tmp_path, _isolated_home):
    from typer.testing import CliRunner

    from flowcast.cli import app

    r = CliRunner().invoke(app, ["models", "show"], terminal_width=400)
    said = " ".join(r.output.split())
    assert r.exit_code == 1 and "no dataset has a model in production: name a VERSION" in said, said
    assert "`flowcast run` trains and registers one" in said, said


@pytest.mark.parametrize(("dataset", "noted"), [("weekly2", True), ("weekly", True), (None, False)])
def test_models_list_of_one_dataset_says_its_numbers_count_the_whole_home(tmp_path, _isolated_home, dataset, noted):
    """newuser25: version numbers are one count over the home, so a second dataset's first model is `naive-v2` and a
    user listing that dataset looked for its v1. `models list --dataset D` says so when D's numbers are not 1, 2, ...
    (weekly's are 1 and 3: weekly2's naive-v2 took 2); the whole home's listing says nothing."""
    from typer.testing import CliRunner

    from flowcast.cli import app

    _two_datasets(_isolated_home, tmp_path)
    r = CliRunner().invoke(app, ["models", "list", *(["--dataset", dataset] if dataset else [])], terminal_width=200)
    said = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    assert ("version numbers count the registrations of this whole home" in said) is noted, said
    if noted:
        assert f"not of {dataset} alone, so {dataset}'s versions are not numbered 1, 2, 3" in said, said


def test_models_list_after_gc_removed_v1_of_a_single_dataset_home_says_it_was_removed(tmp_path, _isolated_home):
    """polish27: after `flowcast gc --version naive-v1` in a home of one dataset, `models list --dataset weekly` (theta-v2,
    naive-v3) said its numbers 'count the registrations of this whole home ..., not of weekly alone': there is no
    other dataset; the gap is v1, removed, and a number is never reused."""
    from typer.testing import CliRunner

    from flowcast.cli import app
    from flowcast.registry import ModelRegistry

    reg = ModelRegistry(_isolated_home / "models")
    for name in ("naive", "theta", "naive"):
        reg.register(None, name=name, dataset="weekly", kind="statistical", recipe={"kind": "statistical",
                     "members": [{"kind": "statistical", "name": name, "weight": 1.0}]}, created_at=datetime(2024, 1, 1))
    reg.promote("theta-v2", dataset="weekly")
    r = CliRunner().invoke(app, ["gc", "--yes", "--version", "naive-v1"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert [v.version for v in reg.list()] == ["theta-v2", "naive-v3"]
    r = CliRunner().invoke(app, ["models", "list", "--dataset", "weekly"], terminal_width=200)
    said = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    assert "whole home" not in said, said
    assert ("note: weekly's versions are not numbered 1, 2, 3, ...: v1 was removed (`flowcast gc`, or by hand) and a "
            "number is never reused, so that a version's name alone names one model") in said, said


@pytest.mark.parametrize(("seqs", "held", "said"), [
    ([1], {}, None), ([1, 2, 3], {4: "e"}, None), ([3, 1, 2], {}, None), ([], {1: "e"}, None),
    ([2], {1: "e"}, "numbers count the registrations of this whole home"),  # another dataset's v1
    ([1, 3], {2: "e"}, "numbers count the registrations of this whole home"),
    ([2, 3], {}, "v1 was removed"),  # nothing else in the home: v1 was removed
    ([3, 5], {2: "e"}, "whole home (every dataset and model, never reused), not of d alone; v1 and v4 were removed"),
    ([2, 5], {}, "v1, v3 and v4 were removed"),
])
def test_the_numbering_note_says_why_numbers_skip_only_when_they_do(seqs, held, said):
    from flowcast.cli.store import numbering_note

    note = numbering_note("d", seqs, held)
    assert note is None if said is None else (note is not None and said in note), note


@pytest.mark.parametrize("uid", ["北京 store", "émoji 🚀", "ｆｕｌｌ", "plain"])
def test_a_forecast_table_lines_up_series_ids_of_wide_characters(uid):
    """Regression (newuser27): `flowcast forecasts` of a weekly file with ids `北京 store` and `émoji 🚀` padded them
    by str.ljust, one column per character, where a terminal gives CJK and emoji two: every later column of
    their rows stood one or two places to the right of the header's."""
    from rich.cells import cell_len

    from flowcast.cli.store import forecast_tables

    frame = pl.DataFrame([
        {"dataset": "w", "as_of": datetime(2024, 3, 1), "unique_id": u, "ds": datetime(2024, 2, 25), "step": 1,
         "model": "naive", "model_version": "naive-v2", "y_hat": 64.9, "y_hat_lo80": 55.4, "y_hat_hi80": 74.4,
         "y_hat_lo95": 53.1, "y_hat_hi95": 76.7, "run_id": "r", "created_at": datetime(2024, 3, 1)}
        for u in ("Zürich Süd", uid)])
    lines = forecast_tables(frame).splitlines()
    head = next(line for line in lines if line.startswith("unique_id"))
    body = [line for line in lines if "2024-02-25" in line]
    assert len(body) == 2
    for line in body:  # each column ends where the header's does, as a terminal shows it
        assert cell_len(line) == cell_len(head), (line, head)
        assert cell_len(line[:line.index("2024-02-25")]) == head.index("ds"), (line, head)


@pytest.mark.parametrize("uid", ["a" * 150 + "MIDDLE" + "z" * 144, "store-" + "x" * 40 + "-end", "s" * 21])
def test_a_forecast_table_cuts_a_long_series_id_in_the_middle_and_says_how_to_see_it_whole(uid):
    """Regression (nuB46): `flowcast forecasts` of a series with a 300-character id printed every row ~370 columns
    wide. An id longer than 22 columns shows its start and end around an ellipsis, once said under the table
    (`--format csv or json` has it whole); an id that fits is shown whole, without that line."""
    from flowcast.cli.store import forecast_tables

    frame = pl.DataFrame([
        {"dataset": "w", "as_of": datetime(2024, 3, 1), "unique_id": u, "ds": datetime(2024, 2, 25), "step": 1,
         "model": "naive", "model_version": "naive-v2", "y_hat": 64.9, "y_hat_lo80": 55.4, "y_hat_hi80": 74.4,
         "y_hat_lo95": 53.1, "y_hat_hi95": 76.7, "run_id": "r", "created_at": datetime(2024, 3, 1)}
        for u in (uid, uid + "2", "short")])
    text = forecast_tables(frame)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    long = len(uid) + 1 > 22
    cut = [line.split()[0] for line in text.splitlines() if "2024-02-25" in line]
    assert cut[2] == "short"
    if long:
        assert cut[0] != cut[1] and all(len(c) == 22 and "…" in c for c in cut[:2]), cut
        assert cut[0].startswith(uid[:10]) and cut[1].endswith("2"), cut
        assert text.count("--format csv or json") == 1 and "whole" in text, text
    else:
        assert cut[:2] == [uid, uid + "2"] and "whole" not in text, text


@pytest.mark.parametrize(("ids", "cut"), [
    # M5's ids differ in their middle: each read 'FOODS_3_09…_validation' at 22 columns, every row alike
    (["FOODS_3_090_CA_3_validation", "FOODS_3_090_CA_4_validation", "FOODS_3_091_CA_3_validation"], True),
    (["HOBBIES_1_001_CA_1_evaluation", "HOBBIES_1_001_CA_2_evaluation"], True),
    (["abcdefghij_1_klmnopqrstu", "abcdefghij_2_klmnopqrstu"], False),  # 24 columns, told apart whole alone
])
def test_a_forecast_table_tells_apart_long_ids_that_differ_in_their_middle(ids, cut):
    """revB47: ids longer than 22 columns were each cut in the middle alone, so ids that differ there (M5's
    'FOODS_3_090_CA_3_validation', '..._CA_4_...') read alike and the table's series could not be told apart. They
    are cut at the fewest columns that tell them apart, or shown whole; the note under the table says they are cut
    only where one is."""
    from flowcast.cli.store import forecast_tables

    frame = pl.DataFrame([
        {"dataset": "m5", "as_of": datetime(2016, 5, 22), "unique_id": u, "ds": datetime(2016, 5, 23), "step": 1,
         "model": "naive", "model_version": "naive-v1", "y_hat": 1.0, "y_hat_lo80": 0.0, "y_hat_hi80": 2.0,
         "y_hat_lo95": 0.0, "y_hat_hi95": 3.0, "run_id": "r", "created_at": datetime(2016, 5, 22)} for u in ids])
    text = forecast_tables(frame)
    shown = [line.split()[0] for line in text.splitlines() if "2016-05-23" in line]
    assert len(shown) == len(ids) and len(set(shown)) == len(ids), text
    assert all(s == u or ("…" in s and u.startswith(s.split("…")[0]) and u.endswith(s.split("…")[1]))
               for s, u in zip(shown, ids, strict=True)), shown
    assert any("…" in s for s in shown) is cut
    assert ("--format csv or json has them whole" in text) is cut, text
