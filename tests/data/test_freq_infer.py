"""Reading a file's frequency off its dates (flowcast.data.freq_infer), for a --data file given without --freq."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from data_helpers import make_source
from typer.testing import CliRunner

from flowcast.data.freq_infer import Inferred, explain_freq, freq_of_step
from flowcast.errors import DataValidationError


@pytest.mark.parametrize(("seconds", "freq"), [
    (1800, "30m"), (900, "15m"), (3600, "1h"), (7200, "2h"), (86_400, "1d"), (3 * 86_400, "1d"),
    (7 * 86_400, "1w"), (14 * 86_400, "2w"), (31 * 86_400, "1mo"), (28 * 86_400, "1mo"), (92 * 86_400, "1q"),
    (365 * 86_400, "1y"), (366 * 86_400, "1y"), (45, None), (0, None), (40 * 86_400, None),
])
def test_a_step_names_its_frequency(seconds, freq):
    assert freq_of_step(seconds) == freq


def _file(tmp_path, dates, ids=("a", "b")):
    rows = [(i, d, 1.0) for i in ids for d in dates]
    path = tmp_path / "x.csv"
    pl.DataFrame(rows, schema=["id", "date", "val"], orient="row").write_csv(path)
    return make_source(path, freq="1d")


@pytest.mark.parametrize(("dates", "freq"), [
    ([datetime(2024, 1, 1) + timedelta(minutes=30 * i) for i in range(50)], "30m"),
    ([date(2024, 1, 1) + timedelta(days=i) for i in range(30)], "1d"),
    ([d for d in (date(2024, 1, 1) + timedelta(days=i) for i in range(40)) if d.weekday() < 5], "1b"),
    ([date(2024, 1, 7) + timedelta(weeks=i) for i in range(20)], "1w"),
    ([date(2020 + i // 12, i % 12 + 1, 1) for i in range(30)], "1mo"),
    ([date(2020 + i // 12, i % 12 + 1, 28) for i in range(30)], "1mo"),  # month ends are months
    ([date(2000 + i, 12, 31) for i in range(10)], "1y"),
    ([date(2000 + i, 6, 30) for i in range(10)], "12mo"),  # years ending in June keep June
    ([date(2020 + i // 4, 3 * (i % 4) + 3, 1) for i in range(12)], "1q"),
    ([date(2020 + i // 4, 3 * (i % 4) + 2, 1) for i in range(12)], "3mo"),  # quarters ending Feb/May/Aug/Nov
    # months stamped on varying days (1st, 15th, 28th): steps of 3 to 45 days named no frequency
    ([date(2018 + i // 12, i % 12 + 1, (1, 15, 28)[i % 3]) for i in range(30)], "1mo"),
    ([date(2018 + i // 12, i % 12 + 1, (28, 1)[i % 2]) for i in range(30)], "1mo"),
    ([date(2018 + i // 4, 3 * (i % 4) + 3, (5, 20, 1, 15)[i % 4]) for i in range(12)], "1q"),
])
def test_the_frequency_of_a_files_dates(tmp_path, dates, freq):
    got = explain_freq(_file(tmp_path, dates))
    assert isinstance(got, Inferred) and got.freq == freq and got.share == 1.0


def test_irregular_dates_name_no_frequency(tmp_path):
    days = [0, 1, 5, 6, 20, 22, 40, 47, 60, 100]
    said = explain_freq(_file(tmp_path, [date(2024, 1, 1) + timedelta(days=d) for d in days]))
    assert isinstance(said, str) and said.startswith("its dates step irregularly (the most common step, 1d, is")
    with pytest.raises(DataValidationError, match="gone.csv"):  # the error its run gives, not 'needs --freq'
        explain_freq(make_source(tmp_path / "gone.csv"))


@pytest.mark.parametrize(("period", "jitter", "said"), [
    ("30m", (-12, 16, 3, -20, 9), ("; 100% of its steps are within seconds of 30m: times a few seconds off a 30m grid, "
                                   "as a logger's clock writes them? round them to the grid before export (e.g. with "
                                   "polars' .dt.round('30m')), as --freq 30m quarantines each one off it")),
    ("30m", (-300, 420, 0, 240, -360), None),  # minutes off: no clock's jitter
    # early48: a daily logger's times, some seconds before midnight (read as the day before), were told nothing more
    ("1d", (-12, 16, 3, -20, 9), ("; 100% of its steps are within seconds of 1d: times a few seconds off a 1d grid, "
                                  "as a logger's clock writes them? round them to the grid before export (e.g. with "
                                  "polars' .dt.round('1d')), as --freq 1d reads each time by its date: one seconds "
                                  "before midnight is the day before, two rows on one day and none on the next")),
    ("1d", (-300, 420, 0, 240, -360), None),
], ids=["seconds", "minutes", "daily-seconds", "daily-minutes"])
def test_times_seconds_off_a_grid_are_told_so(tmp_path, period, jitter, said):
    """newuser47: half-hourly readings stamped a few seconds either side of the half hour (a logger's clock) were
    told only that their dates step irregularly, 'the most common step, 30m, is 3% of 959 consecutive steps'. The
    period most steps are within seconds of is named, with what to do; daily times seconds off midnight too."""
    start, step = datetime(2024, 1, 1), timedelta(minutes=30) if period == "30m" else timedelta(days=1)
    times = [start + i * step + timedelta(seconds=jitter[i % len(jitter)]) for i in range(40)]
    none_exact = explain_freq(_file(tmp_path, times))  # no step is the period exactly: none names a period
    times = [t if i % 5 > 1 else start + i * step for i, t in enumerate(times)]
    some_exact = explain_freq(_file(tmp_path, times))  # a fifth of the steps are the period exactly
    assert isinstance(none_exact, str) and isinstance(some_exact, str)
    if said is None:
        assert "within seconds" not in none_exact + some_exact, (none_exact, some_exact)
        return
    assert none_exact == f"no step between its times is a period of a frequency{said}", none_exact
    assert some_exact.startswith(f"its dates step irregularly (the most common step, {period}, is 21% of 78 "), some_exact
    assert some_exact.endswith(f"consecutive steps{said})"), some_exact


@pytest.mark.parametrize(("files", "said"), [
    (["x.parquet"], "x.parquet: no rows (the Parquet file has its columns but no rows)"),
    (["p1.parquet", "p2.parquet"], "no rows (its 2 Parquet files have their columns but no rows)"),
    (["x.csv"], "x.csv: no rows (the file has a header but no data)"),
])
def test_a_source_without_rows_says_what_is_true_of_its_files(tmp_path, files, said):
    """Regression: an empty Parquet file was told 'the file has a header but no data' (by explain_freq, asked for
    a --freq, and by validation): a Parquet file has no header; it has its columns and no rows."""
    from flowcast.config import ValidationConfig
    from flowcast.data.sources import ingest
    from flowcast.data.validate import validate

    empty = pl.DataFrame(schema={"id": pl.Utf8, "date": pl.Date, "val": pl.Float64})
    for name in files:
        empty.write_csv(tmp_path / name) if name.endswith(".csv") else empty.write_parquet(tmp_path / name)
    source = make_source(tmp_path / (files[0] if len(files) == 1 else "p*.parquet"), freq="1d")
    with pytest.raises(DataValidationError) as told:
        explain_freq(source)
    assert said in str(told.value)
    with pytest.raises(DataValidationError) as run:
        validate(ingest(source, None), source, ValidationConfig())
    assert said in str(run.value)


def test_a_file_given_without_freq_is_read_at_the_frequency_of_its_dates(tmp_path, monkeypatch):
    """Regression: `flowcast validate sales.csv` (or run) stopped at 'also needs --freq' where the dates say it; the
    command now says which frequency it read off them and goes on."""
    from flowcast.cli import app

    monkeypatch.chdir(tmp_path)
    rows = "".join(f"{date(2024, 1, 7) + timedelta(weeks=i)},s{j},{i}\n" for i in range(20) for j in (1, 2))
    (tmp_path / "sales.csv").write_text("week,store,units\n" + rows)
    res = CliRunner().invoke(app, ["validate", "sales.csv", "--time-col", "week", "--target-col", "units",
                                   "--id-col", "store"], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "note: --freq not given: sales.csv's dates step by 1w (100% of 38 consecutive steps), so --freq 1w is used" \
        in said
    assert "40 rows in: 40 valid" in said


@pytest.mark.parametrize(("body", "said"), [
    # Unix seconds: it stopped at 'also needs --freq'; given --freq, the run then said '--time-format %s'
    ("".join(f"a,{1704067200 + 86_400 * i},{i}\n" for i in range(10)),
     ("no value of its time column 'date' reads as a time (e.g. '1704067200' (Unix epoch seconds? declare its "
      "time_format: --time-format %s))")),
    ("".join(f"a,{d},{i}\n" for i, d in enumerate(["2024-01-01", "2024-01-02", "2024-01-09", "2024-03-01",
                                                     "2024-03-05", "2024-06-01"])),
     "its dates step irregularly (the most common step, 1d, is 20% of 5 consecutive steps)"),
    ("a,2024-01-01,1\nb,2024-01-01,2\n", "no series has two different times"),
    # polish30: German quarters were told "--time-format gives the format that reads them", which none does
    ("".join(f"a,{y}K{q},{q}\n" for y in (2017, 2018) for q in range(1, 5)),
     ("no value of its time column 'date' reads as a time (e.g. '2017K1' (a quarter? write it '2017Q1', which is "
      "read as its quarter; no --time-format reads quarters))")),
])
def test_a_file_whose_dates_settle_no_frequency_is_told_why(tmp_path, monkeypatch, body, said):
    """Regression: a file whose times did not parse (Unix seconds), or whose steps are irregular, was answered
    'also needs --freq' alone; the error now says why the frequency could not be read off its dates."""
    from flowcast.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("id,date,val\n" + body)
    res = CliRunner().invoke(app, ["validate", "x.csv", "--time-col", "date", "--target-col", "val", "--id-col", "id"],
                             terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "--data x.csv also needs --freq" in out and f"it could not be read off the file's dates: {said}" in out
    assert "gives the format that reads them" not in out, out  # a hint says what reads them (no strptime format reads '2017K1')


@pytest.mark.parametrize(("text", "said"), [
    ("", "x.csv is empty (no header, no rows)"),
    ("id,date,val\n", "x.csv: no rows (the file has a header but no data)"),
    ("id,date,val\na,2024-01-01,5,0\na,2024-01-02,6\n", "x.csv: line 2 has 4 fields where the header has 3"),
])
def test_a_file_without_rows_is_told_so_not_asked_for_freq(tmp_path, monkeypatch, text, said):
    """Regression: an empty file (or a header alone, or a row with more fields than its header: a decimal comma
    unquoted) given without --freq was asked for --freq, and told what was wrong only once given one."""
    from flowcast.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text(text)
    res = CliRunner().invoke(app, ["validate", "x.csv", "--time-col", "date", "--target-col", "val", "--id-col", "id"],
                             terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and said in out and "needs --freq" not in out, res.output


def _daily_then_hourly(tmp_path):
    """(history, file): a daily history through 10 January 2024 (two series), and the same file with hourly rows
    written after it (its later readings), as a run on 10 January and a later backfill of that date see it."""
    history = "".join(f"{date(2024, 1, 1) + timedelta(days=i)},s{j},{i}\n" for i in range(10) for j in (1, 2))
    later = "".join(f"{datetime(2024, 1, 11) + timedelta(hours=h):%Y-%m-%d %H:%M},s{j},{h}\n"
                    for h in range(60) for j in (1, 2))
    (tmp_path / "run").mkdir()
    (tmp_path / "backfill").mkdir()
    (tmp_path / "run" / "x.csv").write_text("date,store,units\n" + history)
    (tmp_path / "backfill" / "x.csv").write_text("date,store,units\n" + history + later)
    return tmp_path / "run" / "x.csv", tmp_path / "backfill" / "x.csv"


def test_the_frequency_is_read_off_the_rows_by_as_of(tmp_path):
    """pit20 (a leak after as_of): the frequency was read off the file's first 200,000 rows whatever the as_of, so
    hourly rows written after a daily history made a backfill at an earlier as_of read it as hourly."""
    from datetime import UTC

    run, backfill = _daily_then_hourly(tmp_path)
    as_of = datetime(2024, 1, 10, 12, tzinfo=UTC)
    found = [explain_freq(make_source(str(p), id_cols=["store"], time_col="date", target_col="units"), as_of)
             for p in (run, backfill)]
    assert [f.freq for f in found if isinstance(f, Inferred)] == ["1d", "1d"]
    assert found[0] == found[1]
    every_row = explain_freq(make_source(str(backfill), id_cols=["store"], time_col="date", target_col="units"))
    assert isinstance(every_row, Inferred) and every_row.freq == "1h"  # all rows: hourly (no as_of: as before)


@pytest.mark.parametrize("command", [["validate", "--as-of", "2024-01-10"],
                                     ["backfill", "--start", "2024-01-10", "--end", "2024-01-09"]])
def test_a_backfill_infers_the_frequency_its_run_did(tmp_path, monkeypatch, command):
    """pit20: `flowcast backfill --data FILE` (or run, validate) without --freq reads the frequency off the rows by
    its as_of (a backfill's --start): the same file with later hourly rows is read daily, as its run read it. (The
    backfill's --end before its --start stops it after the options are read, before any flow.)"""
    from flowcast.cli import app

    run, backfill = _daily_then_hourly(tmp_path)
    said = []
    for path in (run, backfill):
        monkeypatch.chdir(path.parent)
        res = CliRunner().invoke(app, [command[0], "x.csv", "--time-col", "date", "--target-col", "units",
                                       "--id-col", "store", "--home", str(path.parent / "home"), *command[1:]],
                                 terminal_width=400)
        said.append(" ".join(res.output.split()))
    for out in said:
        assert ("note: --freq not given: x.csv's dates step by 1d (100% of 18 consecutive steps by as_of "
                "2024-01-10), so --freq 1d is used") in out, out


def test_a_file_with_no_row_by_as_of_has_the_frequency_of_all_its_rows(tmp_path):
    """A backfill whose --start lies before a file's first row read the frequency off its rows by then, none, and
    said 'no rows (the file has a header but no data)' of a file full of rows. With no row by as_of there is no run's
    decision to match: the frequency is read off all its rows (the run itself then says as_of lies before the data)."""
    from datetime import datetime

    from flowcast.config import SourceConfig
    from flowcast.data.freq_infer import Inferred, explain_freq

    csv = tmp_path / "s.csv"
    csv.write_text("d,y\n" + "".join(f"2024-01-{day:02d},{day}\n" for day in range(1, 11)))
    src = SourceConfig(name="s", path=str(csv), time_col="d", target_col="y", freq="1d")
    early, whole = explain_freq(src, datetime(2020, 1, 1)), explain_freq(src)
    assert isinstance(early, Inferred) and early == whole and early.freq == "1d"


@pytest.mark.parametrize("kind", ["daily_then_hourly", "offsets", "planned", "end_labelled", "day_month"])
def test_the_frequencies_by_each_date_off_one_reading_are_each_dates_own(tmp_path, kind):
    """pit21: `freq_by_dates` reads the file once, by the last date, and infers each date's frequency off the rows that
    date observed: what `explain_freq_by` reads at each date on its own (one reading per date: 6 s for 100,000 rows),
    dates before the first row (None), on a daily history turning hourly, daily times written with offsets (seen by
    their instant), planned rows after each date (a future covariate's values: kept by ingest), hour-ending data and
    day/month dates whose order the rows by a date do not settle (read at each date on its own: the last date's
    reading read them monthly at every date)."""
    from datetime import UTC

    from flowcast.data.freq_infer import explain_freq_by, freq_by_dates

    kw: dict = {"id_cols": ["store"], "time_col": "date", "target_col": "units"}
    if kind == "daily_then_hourly":
        path = _daily_then_hourly(tmp_path)[1]
        dates = [datetime(2024, 1, d, 6) for d in (1, 2, 5, 10, 11, 12, 13, 14)]
    elif kind == "offsets":
        path = tmp_path / "o.csv"
        path.write_text("date,store,units\n" + "".join(
            f"{date(2024, 3, 1) + timedelta(days=2 * i if i < 6 else 6 + i)}T00:00:00{o},{s},{i}\n"
            for i in range(12) for s, o in (("a", "+05:00"), ("b", "-05:00"))))
        dates = [datetime(2024, 2, 29, 20), datetime(2024, 3, 3), datetime(2024, 3, 11, 2),
                 datetime(2024, 3, 16), datetime(2024, 3, 25)]
    elif kind == "planned":
        path = tmp_path / "p.csv"
        path.write_text("date,store,units,promo\n" + "".join(
            f"{date(2024, 1, 1) + timedelta(weeks=i)},s,{i if i < 5 else ''},{i % 2}\n" for i in range(12)))
        kw["future_cols"] = ["promo"]
        dates = [datetime(2023, 12, 1), datetime(2024, 1, 8), datetime(2024, 1, 29), datetime(2024, 3, 1)]
    elif kind == "day_month":  # 01/01/2024 .. 12/01/2024 read day first (1-12 January: no row settles the order)
        # until 01/13/2025 settles it month first: a reading by the last date read them monthly at every date
        path = tmp_path / "d.csv"
        path.write_text("date,store,units\n" + "".join(f"{m:02d}/01/2024,s,{m}\n" for m in range(1, 13))
                        + "01/13/2025,s,13\n")
        dates = [datetime(2024, 6, 15), datetime(2024, 12, 15), datetime(2025, 2, 1)]
    else:
        path = tmp_path / "e.csv"
        path.write_text("date,store,units\n" + "".join(
            f"{datetime(2024, 1, 1, 1) + timedelta(hours=h if h < 10 else 10 + 3 * (h - 10))},s,{h}\n"
            for h in range(30)))
        kw["time_label"] = "end"
        dates = [datetime(2024, 1, 1, 0, 30), datetime(2024, 1, 1, 5), datetime(2024, 1, 1, 12),
                 datetime(2024, 1, 3)]
    src = make_source(str(path), **kw)
    instants = [d.replace(tzinfo=UTC) for d in dates]
    assert freq_by_dates(src, instants) == [explain_freq_by(src, d) for d in instants]
    early = freq_by_dates(src, [datetime(2020, 1, 1, tzinfo=UTC), instants[-1]])  # before the first row
    assert early[0] == explain_freq_by(src, datetime(2020, 1, 1, tzinfo=UTC))
    assert (early[0] is None) == (kind != "planned")  # (planned rows are read at any as_of)


@pytest.mark.parametrize(("every", "freq", "aggregate", "found"), [
    (timedelta(minutes=15), "1h", "sum", Inferred("1h", 1.0, 94, step="15m")),  # 15-minute readings summed to hours
    (timedelta(hours=1), "1d", "mean", Inferred("1d", 1.0, 94, step="1h")),
    (timedelta(minutes=15), "1d", "last", Inferred("1d", 1.0, 94, step="15m")),
    (timedelta(hours=1), "1h", "sum", Inferred("1h", 1.0, 94)),  # rows at the source's own frequency: no step apart
    (timedelta(days=1), "1h", "sum", Inferred("1d", 1.0, 94)),  # rows coarser than it: their own step
    (timedelta(minutes=15), "1h", "none", Inferred("15m", 1.0, 94)),  # not aggregated: the rows' step
])
def test_an_aggregated_source_has_the_frequency_it_aggregates_to(tmp_path, every, freq, aggregate, found):
    """perf25: the frequency of an aggregated source's rows was their raw step ('1h' for hourly rows summed to days,
    `bench/aggregate_pit.py`'s infer_freq): it is the period they are combined into, the rows' step beside it
    (`Inferred.step`), by explain_freq_by and by freq_by_dates at each date alike."""
    from datetime import UTC

    from flowcast.data.freq_infer import explain_freq_by, freq_by_dates

    path = tmp_path / "r.csv"
    path.write_text("date,store,units\n" + "".join(f"{datetime(2024, 1, 1) + every * i:%Y-%m-%dT%H:%M:%S},{s},{i}\n"
                                                  for i in range(48) for s in ("a", "b")))
    src = make_source(str(path), id_cols=["store"], time_col="date", target_col="units", freq=freq, aggregate=aggregate)
    assert explain_freq(src) == found and found.written == (found.step or found.freq)
    last = datetime(2024, 1, 1, tzinfo=UTC) + every * 48
    assert freq_by_dates(src, [last]) == [explain_freq_by(src, last)] == [found]


@pytest.mark.parametrize(("freq", "found"), [
    ("300s", Inferred("300s", 1.0, 94, step="1m")),  # minute readings summed to 5-minute bins
    ("2m", Inferred("2m", 1.0, 94, step="1m")),
    ("30s", Inferred("1m", 1.0, 94)),  # rows coarser than it: their own step
    ("500ms", Inferred("1m", 1.0, 94)),
])
def test_an_aggregated_source_with_a_freq_in_seconds_has_a_frequency(tmp_path, freq, found):
    """review27: the comparison of an aggregated source's rows' step with its freq knew no unit finer than a minute
    (a freq polars and the configuration take: '300s'): explain_freq_by and freq_by_dates (`flowcast backfill
    --data ... --freq 300s --aggregate sum`'s check of each date's reading) failed with KeyError: 's'."""
    from datetime import UTC

    from flowcast.data.freq_infer import explain_freq_by, freq_by_dates

    path = tmp_path / "r.csv"
    every = timedelta(minutes=1)
    path.write_text("date,store,units\n" + "".join(f"{datetime(2024, 1, 1) + every * i:%Y-%m-%dT%H:%M:%S},{s},{i}\n"
                                                  for i in range(48) for s in ("a", "b")))
    src = make_source(str(path), id_cols=["store"], time_col="date", target_col="units", freq=freq, aggregate="sum")
    assert explain_freq(src) == found
    later = datetime(2024, 1, 1, 1, tzinfo=UTC)  # every row's period over
    assert freq_by_dates(src, [later]) == [explain_freq_by(src, later)] == [found]


@pytest.mark.parametrize(("freq", "aggregate", "time_label", "steps"), [
    ("1m", "sum", "start", 58),  # minutes 00:00..00:29 over at 00:30: 30 rows a series, 29 steps each
    ("300s", "sum", "start", 58),
    ("1h", "mean", "start", 58),
    ("1h", "sum", "end", 60),  # labelled by their ends: 00:00..00:30 over, 31 rows a series
    ("1m", "none", "start", 60),  # not aggregated: 00:00..00:30
])
@pytest.mark.parametrize("second", [0, 30])
def test_each_dates_reading_of_minute_rows_keeps_the_rows_its_run_kept(tmp_path, freq, aggregate, time_label, steps,
                                                                       second):
    """tz29: `freq_by_dates` cut an aggregated source's rows by `observed_through` (a period before as_of) and then
    left out the periods not over by that bound: the last minute each series' run had observed was cut twice, 2 fewer
    one-minute steps than `explain_freq_by` (ingest's own cut) counted. Both cut by `periods.as_of_bound`."""
    from datetime import UTC

    from flowcast.data.freq_infer import explain_freq_by, freq_by_dates

    path = tmp_path / "m.csv"
    every = timedelta(minutes=1)
    path.write_text("date,store,units\n" + "".join(f"{datetime(2024, 1, 1) + every * i:%Y-%m-%dT%H:%M:%S},{s},{i}\n"
                                                  for i in range(48) for s in ("a", "b")))
    src = make_source(str(path), id_cols=["store"], time_col="date", target_col="units", freq=freq,
                      aggregate=aggregate, time_label=time_label)
    at = datetime(2024, 1, 1, 0, 30, second, tzinfo=UTC)
    [by_dates] = freq_by_dates(src, [at])
    by_itself = explain_freq_by(src, at)
    assert isinstance(by_itself, Inferred) and by_itself.steps == steps
    assert by_dates == by_itself


@pytest.mark.parametrize(("dates", "freq"), [
    # German monthly dates, each the 1st ('01.02.2010'): no row settles the day/month order (every number 12 or
    # below); read month first they are 1-12 January of each year, steps of 1 day (92%) and a jump a year
    ([f"01.{m:02d}.{y}" for y in (2010, 2011, 2012) for m in range(1, 13)], Inferred("1mo", 1.0, 70)),
    ([f"05/{m:02d}/{y}" for y in (2010, 2011) for m in range(1, 13)], Inferred("1mo", 1.0, 46)),  # the 5th
    ([f"01.{m:02d}.{y}" for y in range(2015, 2020) for m in (1, 4, 7, 10)], Inferred("1q", 1.0, 38)),
    # equally regular either way (1-12 January, or the 1st of 12 months): read day first, as before
    ([f"{d:02d}/01/2024" for d in range(1, 13)], Inferred("1d", 1.0, 22)),
    # a two-digit year that may be first as well ('01.02.10': 2001-02-10?): German dd.mm.yy, read day first
    ([f"01.{m:02d}.{y}" for y in (10, 11, 12) for m in range(1, 13)], Inferred("1mo", 1.0, 70)),
])
def test_day_month_dates_no_row_settles_are_read_in_the_order_whose_steps_are_regular(tmp_path, dates, freq):
    """newuser31: a monthly export of German dates ('01.02.2010', every month's 1st) given no --freq was read at
    --freq 1d: its probe read the day/month order whose dates were spaced nearest the probe's own 1-minute step,
    month first (1-12 January of each year), and the run then lost 648 of 702 rows to the gaps of 353 days between
    those Januaries. The order whose dates step regularly by a frequency (day first: months) is read."""
    got = explain_freq(_file(tmp_path, dates))
    assert got == freq


@pytest.mark.parametrize("later", [
    "13.01.2021",  # day first (13 is no month): the rows would settle the order, day first
    "01.13.2021",  # month first: the rows would settle it the other way
    "01.01.2021",  # settles nothing: the same reading as without it
])
def test_the_day_month_order_of_regular_dates_is_read_off_the_rows_by_as_of(tmp_path, later):
    """newuser31's reading of day/month dates no row settles (`_regular_day_month`) asked all the file's rows
    whether they settle the order: a row written after as_of that did ('13.01.2021') left a backfill at an earlier
    as_of with the order its probe read (month first: 1-12 January, --freq 1d), where its run, whose rows by as_of
    settle nothing, reads them day first at 1mo. Nothing after as_of decides it: 1mo with or without that row."""
    from datetime import UTC

    from flowcast.data.freq_infer import explain_freq_by

    history = [f"01.{m:02d}.{y}" for y in (2019, 2020) for m in range(1, 13)]
    as_of = datetime(2020, 12, 31, tzinfo=UTC)
    by_as_of = explain_freq_by(_file(tmp_path, history), as_of)
    (tmp_path / "later").mkdir()
    with_later = explain_freq_by(_file(tmp_path / "later", [*history, later]), as_of)
    assert by_as_of == Inferred("1mo", 1.0, 46)
    assert with_later == by_as_of


@pytest.mark.parametrize(("spellings", "pair"), [
    (("A", "a "), "('A' / 'a')"),  # (a CSV's blanks around an id are dropped: 'a ' is 'a')
    (("Store A", "STORE A"), "('STORE A' / 'Store A')"),
])
def test_irregular_dates_of_a_series_written_two_ways_say_so(tmp_path, monkeypatch, spellings, pair):
    """newuser45: a daily series whose id was written 'A' on even days and 'a ' on odd ones read as two series of
    every other day beside a daily one, and `flowcast validate` without --freq was told only that its dates step
    irregularly (the most common step, 1d, is 50%): nothing named the pair, which the report names once given --freq.
    The error names the ids that differ only by letter case."""
    from flowcast.cli import app

    monkeypatch.chdir(tmp_path)
    rows = "".join(f"{spellings[i % 2]},{date(2024, 1, 1) + timedelta(days=i)},{i}\n"
                   f"B,{date(2024, 1, 1) + timedelta(days=i)},{i}\n" for i in range(40))
    (tmp_path / "two.csv").write_text("id,date,sales\n" + rows)
    res = CliRunner().invoke(app, ["validate", "two.csv", "--home", "h"], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "its dates step irregularly" in said, said
    assert f"1 group of series ids differ only by letter case {pair}" in said, said
    assert "if they are one series, export the id the same way in every row" in said, said


@pytest.mark.parametrize(("dates", "by_dates", "found", "profiles"), [
    ([f"{d}.01.2021" for d in range(13, 31)], False, Inferred("1d", 1.0, 34), 1),  # day first, settled by its 13
    ([f"2021-01-{d:02d}" for d in range(1, 29)], True, Inferred("1d", 1.0, 54), 1),  # no day/month date
    # newuser31's monthly dates no row settles, read day first at 1mo: their profile at 1mo, once more
    ([f"01.{m:02d}.{y}" for y in (2019, 2020) for m in range(1, 13)], False, Inferred("1mo", 1.0, 46), 2),
])
def test_inferring_a_frequency_reuses_the_profile_its_probe_read_the_time_column_by(tmp_path, monkeypatch, dates,
                                                                                     by_dates, found, profiles):
    """Frequency inference reads the file through ingest (its probe), which profiles the time column
    (`day_month._time_profile`: its day/month order, traits, whether its dates are dated by as_of); the inference
    then read the column again and profiled it again (`_regular_day_month`: up to three profiles; `_read_by_as_of`:
    one of every row). It reuses the probe's (`Ingested.by_as_of_profile`, `Ingested.time_profile`), with the same
    answers; only a reading at another freq than the probe's profiles again."""
    from flowcast.data import day_month, sources
    from flowcast.data.freq_infer import explain_freq_by, freq_by_dates

    calls = []
    real = day_month._time_profile
    for module in (sources, day_month):
        monkeypatch.setattr(module, "_time_profile", lambda *a: calls.append(a[2:]) or real(*a))
    source = _file(tmp_path, dates)
    assert (freq_by_dates(source, [datetime(2030, 1, 1, tzinfo=UTC)]) if by_dates else [explain_freq_by(source)]) \
        == [found]
    assert len(calls) == profiles, calls


# run in a child process: polars reads POLARS_IDEAL_MORSEL_SIZE when it starts
_MANY_MORSELS = """
import sys
import polars as pl
from flowcast.config import SourceConfig
from flowcast.data.freq_infer import explain_freq
from flowcast.data.schemas import DS_RAW
from flowcast.data.sources import ingest, parses_as_times
from flowcast.data.validate import _collect
from flowcast.errors import DataValidationError

path = sys.argv[1]
source = SourceConfig(name="t", path=path, id_cols=["id"], time_col="date", target_col="val", freq="1d")
print(parses_as_times(path, "date"))
print(explain_freq(source))
ingested = ingest(source, None)
try:
    _collect([ingested.frame.select(DS_RAW).head(10)], ingested, engine="streaming")
    print("read")
except DataValidationError as exc:
    print(exc)
"""


@pytest.mark.parametrize("sep", [";", ","])
def test_the_first_rows_of_a_day_first_file_of_many_morsels_are_read_and_a_panic_names_the_file(tmp_path, sep):
    """Regression (session 51): `flowcast run --data` of 1,000 series of 1,000 day-first days ('31/12/2020') ended in a
    Rust backtrace and polars' PanicException ('assertion failed: pipe.send_state == PortState::Done'): its streaming
    engine panicked where a head ended the read of a few hundred thousand rows early above the times' whole-column
    parse, guessing the time column (`sources.parses_as_times`) and inferring the frequency (`explain_freq`). Morsels
    of 100 rows make 3,000 rows as many morsels as 300,000; the first rows are read by the in-memory engine
    (`sources.first_rows`). A panic of polars, which is no Exception, is an error naming the file and what to try
    (`panics.panic_error`): the streaming engine still panics on that plan (polars 2.1; a polars that does not
    answers 'read', and this check goes with the workaround)."""
    import os
    import subprocess
    import sys
    from datetime import date

    days = [date(2020, 1, 1) + timedelta(days=d) for d in range(300)]
    path = tmp_path / "day_first.csv"
    path.write_text(f"date{sep}id{sep}val\n" + "".join(f"{d:%d/%m/%Y}{sep}s{i}{sep}{d.day}.0\n"
                                                     for i in range(10) for d in days))
    env = {**os.environ, "POLARS_IDEAL_MORSEL_SIZE": "100", "RUST_BACKTRACE": "0"}
    out = subprocess.run([sys.executable, "-c", _MANY_MORSELS, str(path)], capture_output=True, text=True, env=env,
                         cwd=tmp_path, check=False)  # (its output is asserted on, its stderr shown)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and len(lines) == 3, (out.stdout, out.stderr[-2000:])
    assert lines[:2] == ["True", "Inferred(freq='1d', share=1.0, steps=2990, step=None)"], lines
    assert lines[2].startswith(f"cannot read {path}: polars failed inside its query engine"), lines[2]
    assert "POLARS_ENGINE_AFFINITY=in-memory" in lines[2], lines[2]


@pytest.mark.parametrize(("shape", "step", "freq"), [
    ("%Y%m%d", timedelta(days=1), "1d"), ("%Y%m%dT%H%M", timedelta(minutes=15), "15m"),
    ("%Y%m%dT%H%M%SZ", timedelta(hours=1), "1h"), ("%Y%m%dT%H%M+0100", timedelta(hours=1), "1h")])
def test_the_frequency_of_basic_iso_times(tmp_path, shape, step, freq):
    """Regression (ingest53c): times in ISO-8601's basic format ('20240307T093000Z', as loggers write them) were not
    read, so no step was seen and the command asked for --freq. Their step names it as their extended form's does."""
    got = explain_freq(_file(tmp_path, [(datetime(2024, 3, 7) + i * step).strftime(shape) for i in range(30)]))
    assert isinstance(got, Inferred) and got.freq == freq and got.share == 1.0, got
