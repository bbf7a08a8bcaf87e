"""`flowcast validate`: exit codes 0/1/2 and --json on the last line of stdout."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flowcast.cli import app

runner = CliRunner()
FILE_OPTS = ["--id-col", "id", "--time-col", "date", "--target-col", "val", "--freq", "1d"]


def write(tmp_path: Path, bad_rows: int = 0, n: int = 80) -> Path:
    lines = ["date,id,val"]
    start = date(2020, 1, 1)
    lines += [f"{start + timedelta(days=i)},a,{i}" for i in range(n)]
    lines += [f"{start + timedelta(days=n + i)},a,oops" for i in range(bad_rows)]
    p = tmp_path / "obs.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_clean_file_exits_0(tmp_path):
    res = runner.invoke(app, ["validate", str(write(tmp_path)), *FILE_OPTS, "--json"])
    assert res.exit_code == 0, res.output
    rep = last_json(res.stdout)
    assert rep["status"] == "clean" and rep["rows_in"] == rep["rows_valid"] == 80 and rep["reconciled"]


def test_the_report_printed_to_a_terminal_shows_no_markdown_escapes(tmp_path):
    """newuser25: `flowcast validate` printed the data-quality report's markdown as the UI's artifact has it, escapes
    and all: `([validation] ended_series = "forecast", ...)` read `(\\[validation\\] ended\\_series = ...)`, and an id
    `store_1` read `store\\_1`. The terminal gets them as written."""
    start = date(2020, 1, 1)
    lines = ["date,id,val"] + [f"{start + timedelta(days=i)},store_1,{i}" for i in range(80)]
    lines += [f"{start + timedelta(days=i)},store_2,{i}" for i in range(40)]  # ended 40 days before the other
    p = tmp_path / "obs.csv"
    p.write_text("\n".join(lines) + "\n")
    res = runner.invoke(app, ["validate", str(p), *FILE_OPTS], terminal_width=400)
    said = " ".join(res.stdout.split())
    assert res.exit_code == 0, res.output
    assert '([validation] ended_series = "forecast", the default;' in said and "'store_2' (last data" in said, said
    assert "\\" not in res.stdout, res.stdout


@pytest.mark.parametrize(("bad", "said"), [(1, "1 row quarantined ("), (2, "2 rows quarantined (")])  # ('row(s)')
def test_quarantined_rows_exit_1_and_are_written(tmp_path, bad, said):
    res = runner.invoke(app, ["validate", "--data", str(write(tmp_path, bad_rows=bad)), *FILE_OPTS, "--json"])
    assert res.exit_code == 1, res.output
    rep = last_json(res.stdout)
    assert rep["status"] == "quarantined" and rep["checks"] == {"y_not_number": bad} and rep["rows_quarantined"] == bad
    assert rep["exit_code"] == 1
    assert Path(rep["quarantine_path"]).exists()
    # regression: the closing line folded the path at 80 columns ('.../qua' 'rantine/...'): it is printed whole
    closing = next(line for line in res.stderr.splitlines() if said in line)
    assert closing.endswith(rep["quarantine_path"]) and len(rep["quarantine_path"]) > 40, res.stderr


def test_threshold_exceeded_exits_2_with_report(tmp_path):
    res = runner.invoke(app, ["validate", str(write(tmp_path, bad_rows=10)), *FILE_OPTS, "--json"])
    assert res.exit_code == 2
    rep = last_json(res.stdout)
    assert rep["status"] == "failed" and "threshold 5.0%" in rep["error"]
    assert rep["exit_code"] == 2  # as in every failed command's object (it was missing here)


def test_dataset_level_failure_exits_2_without_traceback(tmp_path):
    res = runner.invoke(app, ["validate", str(write(tmp_path)), *FILE_OPTS[:-2], "--freq", "1d", "--target-col", "value"])
    assert res.exit_code == 2
    assert "declared column 'value' (renamed to 'val'?) missing" in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_bundled_dataset_with_as_of_human_report(tmp_path):
    res = runner.invoke(app, ["validate", "--dataset", "vic_elecdemand", "--as-of", "2014-06-30"])
    assert res.exit_code == 0, res.output
    assert "## Data quality: vic_elecdemand" in res.stdout and "rows after as_of" in res.stdout


@pytest.mark.parametrize("args,needle", [
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--dataset", "vic_elecdemand", "--as-of", "yesterday"], "--as-of must be an ISO date"),
    # regression: file options were silently ignored next to --dataset
    (["--dataset", "vic_elecdemand", "--freq", "1h"], "--freq describe a file given with --data; dataset 'vic_elecdemand' declares its own"),
    (["--tz", "UTC"], "--tz describe a file: pass it with --data PATH"),
    # regression: --data silently won over --dataset
    (["--dataset", "vic_elecdemand", "--data", "x.csv", *FILE_OPTS], "--dataset vic_elecdemand and --data x.csv both name the data"),
])
def test_bad_options_exit_2(args, needle):
    res = runner.invoke(app, ["validate", *args])
    assert res.exit_code == 2 and needle in " ".join(res.output.split())


@pytest.mark.parametrize("args,env,needle", [
    # pydantic's multi-line text with URLs used to be printed as is
    (["--freq", "1day"], {}, "invalid source options: freq: freq must be a polars duration string"),
    ([], {"FLOWCAST_MODEL__LOOKBACK": "abc"}, ("FLOWCAST_MODEL__LOOKBACK='abc' (model.lookback, from the environment): Input should be a valid integer, unable "
      "to parse string as an integer")),
    # an unknown time zone used to surface as polars' ComputeError with exit 1
    (["--tz", "australia/melbourne"], {}, "unknown time zone tz='australia/melbourne' (did you mean 'Australia/Melbourne'?)"),
])
def test_option_errors_are_one_line_and_exit_2(tmp_path, monkeypatch, args, env, needle):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    opts = [*FILE_OPTS[:-2], *(args if "--freq" in args else ["--freq", "1d", *args])]
    res = runner.invoke(app, ["validate", str(write(tmp_path)), *opts])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert needle in text and "errors.pydantic.dev" not in text and "Traceback" not in text


@pytest.mark.parametrize("args,needle", [
    (["--as-of", "2019-01-01"], "all 80 rows are after as_of=2019-01-01"),
    (["--target-col", "value"], "declared column 'value' (renamed to 'val'?) missing"),
])
def test_json_on_a_failure_before_the_report(tmp_path, args, needle):
    """Regression: with --json, failures during ingest/validate printed no JSON at all."""
    opts = [*FILE_OPTS[:-4], "--freq", "1d", *(["--target-col", "val"] if "--target-col" not in args else []), *args]
    res = runner.invoke(app, ["validate", str(write(tmp_path)), *opts, "--json"])
    assert res.exit_code == 2, res.output
    rep = last_json(res.stdout)
    assert rep["status"] == "failed" and rep["exit_code"] == 2 and needle in rep["error"]


def test_semicolon_file_from_the_command_line(tmp_path):
    p = write(tmp_path)
    p.write_text(p.read_text().replace(",", ";"))
    res = runner.invoke(app, ["validate", str(p), *FILE_OPTS, "--json"])
    assert res.exit_code == 0, res.output
    assert last_json(res.stdout)["rows_valid"] == 80


def test_a_file_name_with_spaces_gives_a_dataset_name_the_store_can_key(tmp_path):
    """Regression: `flowcast run --data "Sales Data 2023 (v2).csv"` trained, backtested and promoted a model
    for dataset 'Sales Data 2023 (v2)', then failed at publish ('not usable as a store key'), leaving a
    production model without published forecasts. The name is now the stem as a key."""
    p = write(tmp_path).rename(tmp_path / "Sales Data 2023 (v2).csv")
    res = runner.invoke(app, ["validate", "--data", str(p), *FILE_OPTS, "--json"])
    assert res.exit_code == 0, res.output
    assert last_json(res.stdout)["source"] == "Sales_Data_2023_v2"


@pytest.mark.parametrize(("data", "name"), [
    ("sales.csv", "sales"), ("sales.csv.gz", "sales"), ("Sales.CSV", "Sales"), ("x/sales.parquet", "sales"),
    # regression: cut at the first dot, two files' series shared one dataset 'store' (one model, one publish)
    ("store.north.csv", "store.north"), ("store.south.csv.gz", "store.south"), ("v1.2.3", "v1.2.3"),
    ("sales/*.csv", "sales"), (".csv", "csv"), (".csv.gz", "csv"), ("a.gz.b.csv", "a.gz.b"), ("x.JSONL", "x"),
    # redact48: a URL's query made it a glob, named for its folder: the user and password ('u_pw1_h')
    ("https://u:pw1@h/x.csv?token=tok2", "x"), ("https://u:p?w/1@h/data/x.csv.gz", "x"), ("s3://bucket/sales/*.csv", "sales"),
    ("https://h/?token=tok2", "h"), ("https://h/export/?token=tok2", "export"),
    # revR48: an object store's glob ('?' no query; at the bucket's top, named for the bucket), a URL urllib cannot
    # split: they were named 'day', 'custom', and an unexpected ValueError ('Invalid IPv6 URL') failed the command
    ("s3://bucket/sales/day_?.csv", "sales"), ("s3://bucket/*.parquet", "bucket"), ("https://[h/x.csv", "x"),
    ("https://h?token=tok2", "h"), ("https://u:pw@h:8443#top", "h_8443"), ("file:///data/sales.csv", "sales"),
    # ingest54: a file:// URL's path is read percent-decoded, and so named ('my_20sales' was its name)
    ("file:///data/my%20sales.csv", "my_sales"), ("file://localhost/data/my%20sales/*.csv", "my_sales"),
    # fixC54: an escaped '*' is the file name's, no glob's (named 'data', for its folder)
    ("file:///data/q%2A.csv", "q"), ("file:///data/q%2A/*.csv", "q"),
    # secrets52: a keyword DSN's password was in the name ('host_db_password_s3cret_dbname_x'), which logs show
    ("host=db password=s3cret dbname=x", "host_db_password_dbname_x"), ("/data/my password=1 x.csv", "my_password_1_x"),
])
def test_the_dataset_name_of_a_file_drops_only_its_format_and_compression_suffixes(data, name):
    from flowcast.cli.common import _name_of

    assert _name_of(data) == name


def test_a_glob_names_the_dataset_after_its_folder(tmp_path):
    """Regression: `--data 'sales/*.csv'` named the dataset '*', which the store cannot key."""
    (tmp_path / "sales").mkdir()
    write(tmp_path).rename(tmp_path / "sales" / "part-1.csv")
    res = runner.invoke(app, ["validate", "--data", str(tmp_path / "sales" / "*.csv"), *FILE_OPTS, "--json"])
    assert res.exit_code == 0, res.output
    assert last_json(res.stdout)["source"] == "sales"


def test_validate_measures_freshness_as_a_run_does(tmp_path, monkeypatch):
    """Regression: `flowcast validate` said nothing about how old the data were (`flowcast run` measures it,
    `flowcast.data.freshness`): a file whose latest day is years old was 'clean', then every run warned that
    its forecasts lay in the past, or failed on [validation] max_staleness. validate now measures the periods
    from the latest observation to --as-of (to now without one, as a run without one), warns when every
    forecast period lies before it, and fails (exit 2, with the report) past max_staleness."""
    csv = write(tmp_path)  # 80 days from 2020-01-01: the latest is 2020-03-20
    res = runner.invoke(app, ["validate", str(csv), *FILE_OPTS, "--as-of", "2020-03-23", "--horizon", "7", "--json"])
    assert res.exit_code == 0, res.output
    fresh = last_json(res.stdout)["freshness"]
    assert fresh["periods_behind"] == 3 and fresh["stale"] is False and fresh["latest_ds"].startswith("2020-03-20")
    assert "| periods from the latest observation to as_of | 3 |" in res.stderr

    res = runner.invoke(app, ["validate", str(csv), *FILE_OPTS, "--horizon", "7", "--json"])  # measured to now
    fresh = last_json(res.stdout)["freshness"]
    assert res.exit_code == 0 and fresh["stale"] is True and fresh["periods_behind"] > 365 and fresh["measured_at"]
    said = " ".join(res.stderr.split())
    assert "periods from the latest observation to now (" in said
    assert "The latest observation, 2020-03-20, is" in said and "every forecast period (the next 7) lies before" in said

    monkeypatch.setenv("FLOWCAST_VALIDATION__MAX_STALENESS", "2")
    res = runner.invoke(app, ["validate", str(csv), *FILE_OPTS, "--as-of", "2020-03-23", "--json"])
    assert res.exit_code == 2
    failed = last_json(res.stdout)
    assert failed["status"] == "failed" and "3 periods (1d) before as_of" in failed["error"]
    assert "max_staleness = 2" in failed["error"] and failed["rows_valid"] == 80  # the report comes with it


def test_an_undeclared_column_is_said_with_how_to_use_it(tmp_path):
    """Regression: a covariate column of a file given with --data ('temp') was listed as 'undeclared columns
    (ignored)' with no word on how to use it (the command line has no option for covariates)."""
    csv = tmp_path / "obs.csv"
    csv.write_text("date,id,val,temp\n" + "".join(f"2020-01-{d:02d},a,{d},{d % 3}\n" for d in range(1, 29)))
    res = runner.invoke(app, ["validate", str(csv), *FILE_OPTS, "--json"])
    assert res.exit_code == 0, res.output
    assert last_json(res.stdout)["undeclared_columns"] == ["temp"]
    said = " ".join(res.stderr.split())
    assert "undeclared columns (ignored): temp; to use one as a covariate, declare the source in a configuration " \
           "file ([sources.NAME], --config) with it in future_cols" in said


def _stores_with_id_like_columns(folder: Path) -> Path:
    """Three stores over 28 days, their id declared: a name of each store, a region two of them share, an order
    number per row, the weather, a price and a yes/no promotion."""
    rows = []
    for s, (name, region) in enumerate([("Berlin Mitte", "north"), ("Hamburg", "north"), ("Munich", "south")]):
        rows += [f"2020-01-{d:02d},s{s},{name},{region},ORD-{s * 100 + d:05d},{('sun', 'rain')[d % 2]},{d % 3 + 1.5},"
                 f"{('yes', 'no')[d % 2]},{d}\n" for d in range(1, 29)]
    csv = folder / "stores.csv"
    csv.write_text("date,id,store_name,region,order_id,weather,price,promo,val\n" + "".join(rows))
    return csv


def test_id_like_columns_are_not_offered_as_covariates(tmp_path):
    """newuser31: the undeclared-columns note offered every ignored column as a covariate, a name of each series
    and an order number among them (a text covariate that changes is no number: every row would be quarantined).
    Only the columns that could be covariates are offered; the id-like ones are named for what they look like."""
    res = runner.invoke(app, ["validate", str(_stores_with_id_like_columns(tmp_path)), *FILE_OPTS, "--json"])
    assert res.exit_code == 0, res.output
    said = " ".join(res.stderr.split())
    assert ("undeclared columns (ignored): store_name, region, order_id, weather, price, promo; to use region, price "
            "or promo as a covariate, declare the source in a configuration file") in said, said
    assert ("store_name looks like an id or a per-series category (one value per series, each series its own: "
            "another name of the series, or a category of which each series has its own, such as a region; to key "
            "the series by it, give it with --id-col; to use it as a static covariate, with --static-col)") in said, said
    assert "order_id looks like an id of rows (a different value on nearly every row)" in said, said
    # several of one kind are said together
    from flowcast.data.validate import ignored_columns_line

    assert ignored_columns_line(["a", "b", "c"], {"a": "series_name", "c": "series_name"}) == (
        "undeclared columns (ignored): a, b, c; to use b as a covariate, declare the source in a configuration file "
        "([sources.NAME], --config) with it in future_cols (known ahead: prices, promotions, calendars), past_cols "
        "(known up to each period) or static_cols (one value per series), or give a --data file with --future-col, "
        "--past-col or --static-col; a, c look like ids or per-series categories (one value per series, each series "
        "its own: other names of the series, or categories of which each series has its own, such as a region; to "
        "key the series by one, give it with --id-col; to use one as a static covariate, with --static-col)")
    assert ("weather is text that changes within a series (a past or future covariate is a number: write it as one, "
            "e.g. a 0/1 column per value)") in said, said


def test_a_category_of_one_value_per_series_is_not_called_an_id_for_certain(tmp_path):
    """msg40: three series, each in its own region: the note said `region looks like an id column`, a certainty it
    lacks (a few series each with its own category value cannot be told from ids). It says it could be either, and
    how to use it either way; the JSON kind is unchanged."""
    rows = [f"2020-01-{d:02d},s{s},{region},{d}\n" for s, region in enumerate(["north", "south", "east"])
            for d in range(1, 29)]
    csv = tmp_path / "regions.csv"
    csv.write_text("date,id,region,val\n" + "".join(rows))
    res = runner.invoke(app, ["validate", str(csv), *FILE_OPTS, "--json"])
    assert res.exit_code == 0, res.output
    said = " ".join(res.stderr.split())
    assert "looks like an id column" not in said, said
    assert ("region looks like an id or a per-series category (one value per series, each series its own: another "
            "name of the series, or a category of which each series has its own, such as a region; to key the series "
            "by it, give it with --id-col; to use it as a static covariate, with --static-col)") in said, said
    assert last_json(res.stdout)["not_covariates"] == {"region": "series_name"}


def _with_pandas_csv_index(folder: Path) -> Path:  # pandas' to_csv: its row index first, under an empty header
    csv = folder / "obs.csv"
    csv.write_text(",date,id,val\n" + "".join(f"{d - 1},2020-01-{d:02d},a,{d}\n" for d in range(1, 29)))
    return csv


def _with_pandas_parquet_index(folder: Path) -> Path:  # to_parquet of a frame whose index is not its default
    pq = folder / "obs.parquet"
    pl.DataFrame({"__index_level_0__": list(range(28)), "date": [date(2020, 1, d) for d in range(1, 29)],
                  "id": ["a"] * 28, "val": [float(d) for d in range(28)]}).write_parquet(pq)
    return pq


@pytest.mark.parametrize(("write", "said"), [
    (_with_pandas_csv_index, ("undeclared columns (ignored): column_1 (the first column, without a header: the row "
                              "index pandas' to_csv writes; to_csv(index=False) leaves it out)")),
    (_with_pandas_parquet_index, ("undeclared columns (ignored): __index_level_0__ (the row index pandas' to_parquet "
                                  "writes; to_parquet(index=False) leaves it out)")),
], ids=["to_csv", "to_parquet"])
def test_the_row_index_pandas_writes_is_said_for_what_it_is(tmp_path, write, said):
    """Regression (new-user trial): a file written by pandas' to_csv (its row index first, under an empty header)
    was said to have an undeclared column 'column_1', a name the file does not hold, and one written by
    to_parquet with a row index other than its default keeps it as '__index_level_0__', said to be an undeclared
    column; each came with advice to declare it as a covariate. It is named as pandas' index, with how to leave
    it out; the file reads as before."""
    res = runner.invoke(app, ["validate", str(write(tmp_path)), *FILE_OPTS, "--json"])
    assert res.exit_code == 0, res.output
    assert last_json(res.stdout)["rows_valid"] == 28
    assert said in " ".join(res.stderr.split()), res.stderr


def test_the_report_gives_an_example_of_each_failed_check(tmp_path):
    """Regression: the report counted the rows of each failed check ('| y_not_number | 2 |') and said where the
    quarantine file was; the reason, the value and what to do were only in that Parquet file. Each check now
    shows its first row's reason."""
    res = runner.invoke(app, ["validate", str(write(tmp_path, bad_rows=2)), *FILE_OPTS, "--json"])
    assert res.exit_code == 1, res.output
    said = f"source_row 80 (line 82 of {tmp_path / 'obs.csv'}): val 'oops' is not a number"
    assert last_json(res.stdout)["check_examples"] == {"y_not_number": said}
    # the console wraps long lines (a long temporary path) wherever it must: compared without whitespace
    assert f"-**y_not_number**:2rows,e.g.{said}".replace(" ", "") in "".join(res.stderr.split())


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Tokyo", "UTC"])
def test_a_date_alone_includes_that_day_of_a_daily_source_in_any_zone(tmp_path, tz):
    """Regression: --as-of 2021-06-30 was midnight UTC: on a daily America/New_York source, 29 June 20:00 there,
    and the run's data ended on 29 June (Tokyo and UTC kept 30 June)."""
    lines = ["date,id,val"] + [f"{date(2021, 6, 20) + timedelta(days=i)},a,{i}" for i in range(20)]
    p = tmp_path / "obs.csv"
    p.write_text("\n".join(lines) + "\n")
    res = runner.invoke(app, ["validate", str(p), *FILE_OPTS, "--tz", tz, "--as-of", "2021-06-30", "--json"])
    assert res.exit_code == 0, res.output
    rep = last_json(res.stdout)
    assert rep["ds_max"].startswith("2021-06-30"), rep["ds_max"]


def test_a_wide_file_given_without_target_col_is_read_as_one_series_per_column(tmp_path):
    """Regression: a wide file (a date column and one column per series, a spreadsheet's export) needed
    --target-col; given one, that column was read as the one series and the others reported as 'undeclared columns
    (ignored)' with a hint to declare them as covariates. Without --target-col and --id-col, a file whose other
    columns hold numbers and whose dates are each written once is read as wide (said on stderr and in the report);
    with --target-col it says the other number columns are not used; a long file (dates repeated) is read long,
    its integer store ids a series."""
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(20)]
    wide = tmp_path / "wide.csv"
    wide.write_text("date,north,south,east\n" + "".join(f"{d},{i},{2 * i},{3 * i}\n" for i, d in enumerate(days)))
    res = runner.invoke(app, ["validate", str(wide), "--time-col", "date", "--freq", "1d", "--json"])
    assert res.exit_code == 0, res.output
    rep = last_json(res.stdout)
    assert rep["n_series"] == 3 and rep["rows_valid"] == 60 and rep["wide_columns"] == ["north", "south", "east"]
    assert "read as a wide file, each of its 3 columns a series (north, south, east)" in " ".join(res.stderr.split())
    res = runner.invoke(app, ["validate", str(wide), "--time-col", "date", "--target-col", "north", "--freq", "1d",
                              "--json"])
    assert res.exit_code == 0 and last_json(res.stdout)["n_series"] == 1
    said = " ".join(res.stderr.split())
    assert "reads --target-col north as its one series; its other number columns (south, east) are not used" in said
    long = tmp_path / "long.csv"  # integer store ids: numbers too, but each date is written once per store
    long.write_text("date,store,units\n" + "".join(f"{d},{s},{i}\n" for s in (1, 2) for i, d in enumerate(days)))
    res = runner.invoke(app, ["validate", str(long), "--time-col", "date", "--freq", "1d", "--json"])
    said = " ".join(res.stderr.split())  # (its 'store' and 'units' are taken for the series and the target: tgt43)
    assert res.exit_code == 0 and last_json(res.stdout)["n_series"] == 2, res.output
    assert "unique_id <- 'store', ds <- 'date', y <- 'units'" in said and "read as a wide file" not in said, said


def test_dataset_with_data_names_the_files_dataset(tmp_path):
    """Regression: a retrain of `--data sales_2024-01-31.csv` keeps its model as dataset 'sales_2024-01-31', and
    the next day's export could not be forecast with it: `flowcast forecast --data sales_2024-02-01.csv` looked for
    a model of 'sales_2024-02-01', and `--dataset sales_2024-01-31 --data ...` was refused ('both name the data
    to read'). With --data, --dataset names the file's dataset, unless it is a bundled or configured one."""
    res = runner.invoke(app, ["validate", str(write(tmp_path)), "--dataset", "sales", *FILE_OPTS])
    assert res.exit_code == 0, res.output
    assert "## Data quality: sales" in res.stdout


def test_ids_equal_but_for_leading_zeros_are_named_end_to_end(tmp_path):
    """'007' and '7' (Excel dropped the zeros in some rows) stay two series as written, and validate names them."""
    p = tmp_path / "obs.csv"
    start = date(2020, 1, 1)
    p.write_text("date,id,val\n" + "".join(f"{start + timedelta(days=i)},{u},{i}\n" for u in ("007", "7")
                                             for i in range(40)))
    res = runner.invoke(app, ["validate", str(p), *FILE_OPTS, "--json"], terminal_width=400)
    assert res.exit_code == 0, res.output
    rep = last_json(res.stdout)
    assert rep["n_series"] == 2 and rep["rows_in"] == rep["rows_valid"] == 80 and rep["reconciled"]
    assert rep["zero_padded_ids"] == [["007", "7"]]
    assert "differ only by leading zeros ('007' / '7')" in res.output


def test_decimal_declares_the_files_decimal_mark_and_the_report_says_an_unsettled_column(tmp_path):
    """A ';' file whose every value is '1.234'-like (1234 or 1.234?): `flowcast validate` says how the column was
    read and how to declare it; `--decimal ,` reads '.' as thousands and says nothing more. A value other than
    ',' or '.' is refused."""
    start = date(2020, 1, 1)
    p = tmp_path / "de.csv"
    p.write_text("date;id;val\n" + "".join(f"{start + timedelta(days=i)};a;{i + 1}.{i % 9 + 1}23\n" for i in range(80)))
    res = runner.invoke(app, ["validate", str(p), *FILE_OPTS, "--json"])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "numbers: column 'val' of" in said and "read as 1.123 ('.' as the decimal point)" in said
    assert last_json(res.stdout)["number_notes"]
    res = runner.invoke(app, ["validate", str(p), *FILE_OPTS, "--decimal", ",", "--json"])
    assert res.exit_code == 0, res.output
    assert last_json(res.stdout)["number_notes"] == [] and "numbers:" not in res.output
    res = runner.invoke(app, ["validate", str(p), *FILE_OPTS, "--decimal", "x"])
    assert res.exit_code == 2 and "decimal" in res.output and "Traceback" not in res.output


def test_y_min_option_declares_the_bound_of_a_file(tmp_path):
    """Regression: a --data user could not declare that counts cannot be negative (y_min lived in a configuration
    file only): `--y-min 0` quarantines a row below it, as `y_min = 0` in [sources.NAME] does."""
    p = tmp_path / "counts.csv"
    p.write_text("date,id,val\n" + "".join(f"2020-01-{d:02d},a,{-1 if d == 5 else d % 3}\n" for d in range(1, 21)))
    res = runner.invoke(app, ["validate", str(p), *FILE_OPTS, "--json"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["validate", str(p), *FILE_OPTS, "--y-min", "0", "--json", "--home", str(tmp_path / "h")])
    assert res.exit_code == 1, res.output
    rep = last_json(res.stdout)
    assert rep["rows_quarantined"] == 1 and "y_out_of_range" in json.dumps(rep)


def test_covariates_of_a_file_are_declared_on_the_command_line(tmp_path):
    """Regression: the daily electricity demand with its temperature (and the forecast temperature of the next days
    as rows with an empty target) could not use the temperature from the command line: the run said 'Undeclared
    columns (ignored): tmax' and to write a configuration file. `--future-col tmax` declares it (`--past-col`,
    `--static-col` the others), and the note that the file's other number columns are not used leaves it out."""
    lines = ["date,demand,tmax"] + [f"2024-01-{d:02d},{'' if d > 24 else 100 + d},{20 + d % 5}" for d in range(1, 32)]
    p = tmp_path / "elec.csv"
    p.write_text("\n".join(lines) + "\n")
    opts = [str(p), "--time-col", "date", "--target-col", "demand", "--freq", "1d", "--horizon", "7",
            "--as-of", "2024-01-24", "--home", str(tmp_path / "h"), "--json"]
    res = runner.invoke(app, ["validate", *opts], terminal_width=400)
    assert res.exit_code == 0, res.output
    assert last_json(res.stdout)["undeclared_columns"] == ["tmax"]
    res = runner.invoke(app, ["validate", *opts, "--future-col", "tmax"], terminal_width=400)
    assert res.exit_code == 0, res.output
    rep = last_json(res.stdout)
    assert rep["undeclared_columns"] == [] and rep["rows_planned"] == 7
    assert rep["preprocess"]["future_missing"] == {"tmax": 0}
    assert "other number columns" not in res.output
    res = runner.invoke(app, ["validate", "--dataset", "us_employment", "--future-col", "tmax"], terminal_width=400)
    assert res.exit_code == 2 and "--future-col describe a file given with --data" in res.output


def test_a_standard_time_file_read_in_its_places_zone_is_told_the_zone_once(tmp_path):
    """Regression (new-user trial): a file of half hours in standard time all year, validated with --tz
    Australia/Melbourne: its skipped hour's rows were quarantined, each reason naming Etc/GMT-10, but the closing
    line said only '2 row(s) quarantined'. It names the zone that reads the file once."""
    from datetime import UTC, datetime, timezone

    aest = timezone(timedelta(hours=10))
    start = datetime(2020, 10, 3, 14, 0)  # 2020-10-04T00:00+10:00; Melbourne skips 02:00-02:59 that night
    rows = [f"{(start + i * timedelta(minutes=30)).replace(tzinfo=UTC).astimezone(aest):%Y-%m-%dT%H:%M},O,{i}"
            for i in range(2 * 48)]
    path = tmp_path / "demand.csv"
    path.write_text("time,meter,kwh\n" + "\n".join(rows) + "\n")
    opts = [str(path), "--id-col", "meter", "--time-col", "time", "--target-col", "kwh", "--freq", "30m"]
    res = runner.invoke(app, ["validate", *opts, "--tz", "Australia/Melbourne"], terminal_width=400)
    assert res.exit_code == 1, res.output
    said = " ".join(res.stderr.split())  # the console folds its lines at 80 columns
    closing = said.split("2 rows quarantined", 1)[1]
    assert "2 local times that Australia/Melbourne skips (daylight saving starts)" in closing, said
    assert closing.count("read it with --tz Etc/GMT-10") == said.count("read it with --tz Etc/GMT-10") == 1
    assert runner.invoke(app, ["validate", *opts, "--tz", "Etc/GMT-10"]).exit_code == 0


@pytest.mark.parametrize(("checks", "tz", "zone"), [
    ({"time_nonexistent": 2, "y_not_number": 1}, "Australia/Melbourne", "Etc/GMT-10"),
    ({"time_nonexistent": 1}, "America/New_York", "Etc/GMT+5"),
    ({"time_nonexistent": 1}, "Europe/London", "UTC"),
    ({"time_nonexistent": 1}, "Australia/Adelaide", None),  # standard time UTC+09:30: no Etc zone holds it
    ({"time_ambiguous": 2}, "Australia/Melbourne", None),  # no skipped hour: nothing says standard time
    ({"time_nonexistent": 1}, None, None),
])
def test_standard_time_line_names_the_zone_that_reads_the_file(checks, tz, zone):
    from flowcast.data.validate import standard_time_line

    line = standard_time_line(checks, tz)
    assert (line is None) if zone is None else (f"read it with --tz {zone} (tz = '{zone}'" in line), line


def test_the_repeated_hour_of_a_data_file_is_read_by_file_order_with_ambiguous_infer(tmp_path):
    """Regression (new-user trial): hourly New York times written without their offset had the hour repeated on
    3 November quarantined, the reason saying to declare ambiguous = 'infer', which only a configuration file could:
    `--ambiguous` says it for a --data file (run, forecast, backfill, validate, train, tune)."""
    hours = [f"2024-11-{d:02d} {h:02d}:00" for d in (2, 3) for h in range(24)]
    hours.insert(24 + 2, "2024-11-03 01:00")  # the hour the clocks repeat, once each side of the change
    p = tmp_path / "ny.csv"
    p.write_text("date,id,val\n" + "".join(f"{h},a,{i}\n" for i, h in enumerate(hours)))
    opts = [str(p), *FILE_OPTS[:-1], "1h", "--tz", "America/New_York", "--json"]
    before = runner.invoke(app, ["validate", *opts])
    assert before.exit_code == 1 and last_json(before.stdout)["rows_quarantined"] == 2, before.output
    assert "(--ambiguous infer)" in json.dumps(last_json(before.stdout))
    res = runner.invoke(app, ["validate", *opts, "--ambiguous", "infer"])
    assert res.exit_code == 0, res.output
    rep = last_json(res.stdout)
    assert rep["rows_in"] == rep["rows_valid"] == 49 and rep["rows_quarantined"] == 0
    bad = runner.invoke(app, ["validate", *opts, "--ambiguous", "first"])
    assert bad.exit_code == 2 and "ambiguous" in bad.output and "'infer'" in bad.output, bad.output


@pytest.mark.parametrize(("mode", "excluded"), [("forecast", []), ("exclude", ["b"])])
def test_validate_counts_ended_series_and_those_set_aside(tmp_path, monkeypatch, mode, excluded):
    """`[validation] ended_series`: validate prepares the data as a run does, so with "exclude" the series that ended
    more than a horizon before the latest observation (b: 30 days beside a's 80) is among the excluded, with its
    reason, and counted ended and set aside; with "forecast" (the default) it is only counted ended."""
    csv = write(tmp_path)
    with csv.open("a") as f:
        f.writelines(f"{date(2020, 1, 1) + timedelta(days=i)},b,{i}\n" for i in range(30))
    monkeypatch.setenv("FLOWCAST_VALIDATION__ENDED_SERIES", mode)
    res = runner.invoke(app, ["validate", str(csv), *FILE_OPTS, "--as-of", "2020-03-21", "--horizon", "7", "--json"])
    assert res.exit_code == 0, res.output
    rep = last_json(res.stdout)
    assert (rep["freshness"]["series_ended"], rep["freshness"]["series_ended_excluded"]) == (1, len(excluded))
    assert [e["unique_id"] for e in rep["excluded"]] == excluded
    assert all(e["reason"].startswith("ended: its last observation, 2020-01-30, is 50 periods") for e in rep["excluded"])
    said = " ".join(res.stderr.split())
    assert ("all set aside" in said) is bool(excluded) and ("forecast from its own last observation" in said) is not excluded
    # the report (its markdown, on stderr with --json) says a run forecasts it all the same, and when it last had data
    assert ("Ended series forecast anyway: 1 series" in said) is not excluded
    assert ("'b' (last data 2020-01-30)." in said) is not excluded


@pytest.mark.parametrize(("how", "rows_valid", "quarantined"), [
    ([], 0, 4),  # several readings a day are duplicates: every row quarantined, the error says --aggregate
    (["--aggregate", "sum"], 4, 0),
    (["--aggregate", "last"], 4, 0),
])
def test_aggregate_option_combines_rows_finer_than_freq(tmp_path, monkeypatch, how, rows_valid, quarantined):
    """Regression: a --data file of readings finer than --freq (two a day at --freq 1d) had every row quarantined as
    duplicates, and the error said to 'declare the source's aggregate', which only a [sources.NAME] table in a
    configuration file could: no option set it. --aggregate sum|mean|last does, on every command that reads data."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.csv").write_text("time,id,val\n2020-01-01T06:00,a,1\n2020-01-01T18:00,a,2\n"
                                    "2020-01-02T06:00,a,3\n2020-01-02T18:00,a,4\n")
    res = runner.invoke(app, ["validate", "r.csv", "--id-col", "id", "--time-col", "time", "--target-col", "val",
                              "--freq", "1d", *how, "--json", "--home", "home"], terminal_width=400)
    rep = last_json(res.stdout)
    assert (rep["rows_valid"], rep["rows_quarantined"]) == (rows_valid, quarantined), res.output
    if how:
        assert rep["status"] == "clean" and res.exit_code == 0, res.output
    else:
        assert "combine them with --aggregate sum, mean or last" in " ".join(res.output.split())


def test_aggregate_without_a_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["validate", "--aggregate", "sum"], terminal_width=400)
    assert res.exit_code == 2 and "--aggregate describe a file: pass it with --data PATH" in res.output


@pytest.mark.parametrize("repeat", [["--id-col", "id", "--id-col", "id"], ["--id-col", "id", "--past-col", "p", "--past-col", "p"]])
def test_a_column_option_given_twice_is_named(tmp_path, monkeypatch, repeat):
    """Regression: `--id-col id --id-col id` said "cannot read r.csv: multiple fields with name 'id' found", blaming
    the file for the command line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.csv").write_text("date,id,val,p\n2020-01-01,a,1,2\n2020-01-02,a,2,2\n")
    res = runner.invoke(app, ["validate", "r.csv", "--time-col", "date", "--target-col", "val", *repeat, "--json"],
                        terminal_width=400)
    opt = "--id-col id" if repeat.count("id") == 2 and repeat.count("p") == 0 else "--past-col p"
    assert res.exit_code == 2 and last_json(res.stdout)["error"] == f"{opt} given more than once: name each column once"


def test_an_error_while_reading_the_dates_for_freq_names_the_files_dataset(tmp_path, monkeypatch):
    """Regression: a --data file without --freq is read once for its frequency, as a source named 'probe', and that
    reading's errors named it: "source 'probe': unknown time zone tz='Europe/Berln'". They name the file's
    dataset, as the run does."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meter.csv").write_text("time,id,val\n2020-01-01 00:00,a,1\n2020-01-01 01:00,a,2\n2020-01-01 02:00,a,3\n")
    res = runner.invoke(app, ["validate", "meter.csv", "--id-col", "id", "--time-col", "time", "--target-col", "val",
                              "--tz", "Europe/Berln", "--json"], terminal_width=400)
    error = last_json(res.stdout)["error"]
    assert error.startswith("source 'meter': unknown time zone tz='Europe/Berln' (did you mean 'Europe/Berlin'?)"), error
    assert "probe" not in res.output


@pytest.mark.parametrize(("bad_rows", "n", "code"), [(2, 0, 2), (30, 10, 2), (1, 80, None)])
def test_a_refused_source_on_a_full_disk_is_said_with_its_report_and_why_there_is_no_file(tmp_path, monkeypatch,
                                                                                          bad_rows, n, code):
    """Regression (review25): `flowcast run` and the flow say a refusal whose quarantine file cannot be written (a
    full disk) as the refusal, then why there is no file (`validate.quarantine_unwritten`), and send the user to
    `flowcast validate`; `flowcast validate` itself failed naming the disk alone: no report, no refusal, no counts.
    A source that is not refused (1 row of 81 quarantined) still fails on the file it cannot write."""
    import errno

    from flowcast.atomic import atomic_file
    from flowcast.data import validate as validate_mod

    def disk_full(frame, path):
        with atomic_file(path) as fh:
            fh.write(b"PAR1")  # some bytes out, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(validate_mod, "atomic_write_parquet", disk_full)
    res = runner.invoke(app, ["validate", str(write(tmp_path, bad_rows=bad_rows, n=n)), *FILE_OPTS, "--json"],
                        terminal_width=400)
    said = " ".join(res.output.split())
    assert "no space left on device (the disk is full)" in said, said
    if code is None:  # not refused: the rows it would leave out need their file
        assert res.exit_code != 0 and "could not be written" not in said, said
        return
    rep = last_json(res.stdout)
    assert res.exit_code == code and rep["status"] == "failed" and rep["rows_quarantined"] == bad_rows, said
    assert rep["quarantine_path"] is None, rep
    assert "quarantined" in rep["error"] and rep["error"].split("; its quarantine file (the rows and their reasons) "
                                                                "could not be written: could not write ")[1], rep


def test_a_text_column_that_tells_series_apart_is_named_as_the_id_when_none_is_declared(tmp_path):
    """newuser43: a long file of three shops validated without --id-col (every row one series, each week
    duplicated) was told in its report 'shop is text that changes within a series (a past or future covariate is a
    number: write it as one, e.g. a 0/1 column per value)': advice to one-hot the series' own key. It is named as
    what may tell the series apart, to give with --id-col; with --id-col given, a changing text column is said as
    before."""
    rows = [f"{shop},2024-01-{d:02d},{d}\n" for shop in ["north, east", "south", "west side"] for d in range(1, 29)]
    csv = tmp_path / "weekly.csv"
    # (a column named 'outlet': one named 'shop' is guessed as the series where no --id-col is given, newuser53)
    csv.write_text("outlet,week,sales\n" + "".join(f'"{r.split(",2024")[0]}",2024{r.split(",2024")[1]}' for r in rows))
    res = runner.invoke(app, ["validate", str(csv), "--time-col", "week", "--target-col", "sales", "--freq", "1d"])
    said = " ".join(res.output.split())
    assert "outlet is text that changes within a series" not in said, said
    assert ("outlet may be what tells the series apart: no id column is declared, so every row is read as one series, "
            "and its times repeat; name it with --id-col (or the source's id_cols)") in said, said
    flags = tmp_path / "flags.csv"
    flags.write_text("shop,week,sales,weather\n" + "".join(
        f"s{s},2024-01-{d:02d},{d},{'sun' if d % 2 else 'rain'}\n" for s in range(2) for d in range(1, 29)))
    res = runner.invoke(app, ["validate", str(flags), "--id-col", "shop", "--time-col", "week", "--target-col",
                              "sales", "--freq", "1d"])
    said = " ".join(res.output.split())
    assert "weather is text that changes within a series" in said and "tells the series apart" not in said, said


def test_the_series_too_short_for_a_network_are_counted_as_a_run_counts_them(tmp_path):
    """newuser44: a file of two 60-day series and one of 2 days. A run fits the lookback and validation span to
    its data (lookback 36 -> 14) and said `1 of 3 series has fewer than the 31 periods a network needs (c)`;
    `flowcast validate` kept the default spans and said all three were too short for a network (`3 (a, b, c)`)."""
    start = date(2024, 1, 1)
    lines = ["date,id,val"] + [f"{start + timedelta(days=i)},{s},{10 + i % 7}" for s in "ab" for i in range(60)]
    lines += [f"{start + timedelta(days=i)},c,{i}" for i in range(2)]
    p = tmp_path / "obs.csv"
    p.write_text("\n".join(lines) + "\n")
    res = runner.invoke(app, ["validate", str(p), *FILE_OPTS], terminal_width=400)
    assert res.exit_code == 0, res.output
    said = " ".join(res.stdout.split())
    assert "| series too short for a network (statistical models forecast them) | 1 (c) |" in said, said


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(("text", "said"), [
    ("", "s.csv is empty (no header, no rows)"),
    ("date,id,val\n", "s.csv: no rows (the file has a header but no data)"),
    ("date,id,val\r\n\r\n\r\n", "s.csv: no rows (the file has a header but no data, only 2 blank lines)"),
    ("\ufeffDatum;Filiale;Umsatz\n", "s.csv: no rows (the file has a header but no data)"),
])
def test_a_file_of_no_rows_is_told_so_before_it_is_asked_for_its_columns(tmp_path, monkeypatch, command, text, said):
    """newuser44: an empty file, or a header alone, given without its column options was told `--data s.csv also
    needs --time-col, --target-col (its columns: date, id, val)`; given them, it was then told it has no rows."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.csv").write_text(text, encoding="utf-8", newline="")
    res = runner.invoke(app, [command, "s.csv", "--json"], terminal_width=400)
    assert res.exit_code == 2, res.output
    assert last_json(res.stdout)["error"] == said, res.output


def test_a_parquet_file_of_no_rows_is_told_so_and_not_read_as_wide(tmp_path, monkeypatch):
    """newuser44: a Parquet file of its columns alone (`day` a Date, `shop` text) was said to be read as a wide file,
    'each of its 3 columns a series (shop, ...)', before it was told it has no rows: no value of `shop` was text."""
    from datetime import date

    monkeypatch.chdir(tmp_path)
    pl.DataFrame({"day": [date(2024, 1, 1)], "shop": ["a"], "units": [1]}).head(0).write_parquet(tmp_path / "e.parquet")
    res = runner.invoke(app, ["validate", "e.parquet"], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and said == "error: e.parquet: no rows (the Parquet file has its columns but no rows)", said


@pytest.mark.parametrize("sep", [",", "\t"], ids=["csv", "tsv"])
def test_a_trailing_separators_empty_column_is_not_offered_as_a_covariate(tmp_path, sep):
    """newuser47: a file whose every line ends with its separator (a TSV export's trailing tab) has a last column
    without a header or any value, which polars names column_4: the note listed it among the undeclared columns
    with advice to declare it as a covariate. It is said to be empty, with nothing to declare."""
    lines = ["date", "id", "val", ""], *([f"2020-01-{d:02d}", "a", str(d), ""] for d in range(1, 29))
    csv = tmp_path / "obs.tsv"
    csv.write_text("".join(sep.join(line) + "\n" for line in lines))
    res = runner.invoke(app, ["validate", str(csv), *FILE_OPTS, "--json"])
    assert res.exit_code == 0, res.output
    out = last_json(res.stdout)
    assert out["rows_valid"] == 28
    said = " ".join(res.stderr.split())
    assert ("undeclared columns (ignored): column_4; column_4 has no value in any row (a separator at the end of "
            "every line, a trailing tab or comma, makes such a column): nothing to declare") in said, said
    assert "as a covariate" not in said, said


def test_a_named_column_with_no_value_is_not_said_to_be_a_trailing_separators(tmp_path):
    """revG47: a column with a header and no value in any row (a 'promo' left blank) was said to be what 'a separator
    at the end of every line, a trailing tab or comma, makes': only a column without a header is that."""
    csv = tmp_path / "obs.csv"
    csv.write_text("date,id,val,promo\n" + "".join(f"2020-01-{d:02d},a,{d},\n" for d in range(1, 29)))
    res = runner.invoke(app, ["validate", str(csv), *FILE_OPTS, "--json"])
    assert res.exit_code == 0, res.output
    said = " ".join(res.stderr.split())
    assert "undeclared columns (ignored): promo; promo has no value in any row: nothing to declare" in said, said
    assert last_json(res.stdout)["not_covariates"] == {"promo": "blank"}


def test_a_row_longer_than_the_header_is_named_before_the_columns_are_guessed(tmp_path):
    """newuser47: a TSV whose rows end with a tab, its header not, given without column options, failed with
    polars' own words, `ComputeError: found more fields than defined in 'Schema' Consider setting
    'truncate_ragged_lines=True'`, while guessing its columns; given them, the run named the line. It is named as
    the run names it, before anything is guessed."""
    tsv = tmp_path / "obs.tsv"
    tsv.write_text("date\tid\tval\n" + "".join(f"2020-01-{d:02d}\ta\t{d}\t\n" for d in range(1, 29)))
    res = runner.invoke(app, ["validate", str(tsv)], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 2, said
    expected = (f"error: {tsv}: line 2 has 4 fields where the header has 3 ('2020-01-01\\ta\\t1\\t'): each line "
                "ending with a tab, a separator its header does not end with?")
    assert expected.replace(" ", "") in said.replace(" ", ""), said  # (a long path wraps at the terminal's width)
    assert "ComputeError" not in said
