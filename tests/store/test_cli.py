"""`flowcast forecasts`: formats, filters (--dataset among them), and what it says when nothing matches."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from publisher import make_forecast
from store_helpers import AS_OF, OTHER, H, publish
from typer.testing import CliRunner

from flowcast.columns import FORECAST_COLUMNS
from flowcast.store import EmbeddedStore


@pytest.mark.parametrize(("limit", "said"), [("1", "1 row, 1 dataset, 1 as_of, 1 series"),
                                             ("2", "2 rows, 1 dataset, 1 as_of, 1 series")])
def test_cli_forecasts_counts_one_row_in_the_singular(_isolated_home, limit, said):
    """review29: `flowcast forecasts --limit 1` closed with '1 rows, 1 dataset, ...' (plurals27 counted the datasets
    in words, not the rows)."""
    from flowcast.cli import app

    publish(EmbeddedStore(_isolated_home / "warehouse"), make_forecast(1, 3, H, AS_OF), dataset="sales")
    r = CliRunner().invoke(app, ["forecasts", "--limit", limit], terminal_width=400)
    assert r.exit_code == 0 and said in r.output, r.output


def test_cli_forecasts_counts_thousands_with_separators(_isolated_home):
    """newuser52: the forecasts of 100,000 series closed with '1400000 rows, 1 dataset, 1 as_of, 100000 series'."""
    from flowcast.cli import app

    publish(EmbeddedStore(_isolated_home / "warehouse"), make_forecast(1, 1_000, H, AS_OF), dataset="sales")
    r = CliRunner().invoke(app, ["forecasts"], terminal_width=400)
    assert r.exit_code == 0 and "6,000 rows, 1 dataset, 1 as_of, 1,000 series" in r.output, r.output[-300:]


def test_cli_forecasts_table_shows_the_first_rows_and_says_how_to_get_all(_isolated_home):
    """fixB52: `flowcast forecasts` printed every one of 1.4M rows as a table (111 s, 2.2 GB): without --limit the
    table has the first `TABLE_ROWS`, then the counts of every row and how to get them; --limit N shows N, and csv
    and json (for pipes) still give every row."""
    from flowcast.cli import app
    from flowcast.cli.store import STREAM_ROWS, TABLE_ROWS

    publish(EmbeddedStore(_isolated_home / "warehouse"), make_forecast(1, 1_000, H, AS_OF), dataset="sales")
    runner = CliRunner()
    r = runner.invoke(app, ["forecasts"], terminal_width=400)
    shown = [line for line in r.output.splitlines() if line.startswith("s0")]
    assert r.exit_code == 0 and len(shown) == TABLE_ROWS, r.output[-500:]
    assert (f"the first {TABLE_ROWS} of 6,000 rows, 1 dataset, 1 as_of, 1,000 series: --limit N shows the first N, "
            "--format csv > forecasts.csv (or --format json) writes every row") in r.output, r.output[-500:]
    r = runner.invoke(app, ["forecasts", "--limit", "120"], terminal_width=400)
    assert len([line for line in r.output.splitlines() if line.startswith("s0")]) == 120
    assert "120 rows, 1 dataset, 1 as_of, 20 series" in r.output and "the first" not in r.output, r.output[-300:]
    assert 6_000 < 2 * STREAM_ROWS  # csv and json written in more than one slice below
    import flowcast.cli.store as cli_store

    cli_store.STREAM_ROWS, before = 2_500, cli_store.STREAM_ROWS
    try:
        csv = pl.read_csv(runner.invoke(app, ["forecasts", "--format", "csv"]).stdout.encode())
        rows = json.loads(runner.invoke(app, ["forecasts", "--format", "json"]).stdout)
    finally:
        cli_store.STREAM_ROWS = before
    assert csv.height == len(rows) == 6_000 and csv["unique_id"].n_unique() == 1_000
    assert [r["unique_id"] for r in rows] == csv["unique_id"].to_list()


def test_cli_forecasts_on_postgres_reads_the_rows_it_shows_and_streams_csv_and_json(_isolated_home, pg_url,
                                                                                      pg_schema, monkeypatch):
    """store53: on PostgreSQL `flowcast forecasts` fetched every row to show 50 (or `--limit N`) and built all of
    them in memory for csv and json. The table fetches its rows alone (LIMIT), its counts and the lines under it from
    an aggregate query, and csv and json come a batch at a time (one streamed COPY): what the embedded store
    prints, the same words and rows."""
    from flowcast.cli import app
    from flowcast.cli.store import TABLE_ROWS
    from flowcast.store.postgres import PostgresStore

    fc = make_forecast(1, 1_000, H, AS_OF)
    last = pl.col("unique_id") == "s00999"  # past the first rows: said under the table, as every row is counted
    fc = fc.with_columns(*[pl.when(last).then(None).otherwise(pl.col("y_hat") + d).alias(c) for c, d in
                           (("y_hat_lo80", -1.0), ("y_hat_hi80", 1.0))])
    embedded = _isolated_home.parent / "embedded"
    publish(PostgresStore(pg_url, schema=pg_schema), fc, dataset="sales")
    publish(EmbeddedStore(embedded / "warehouse"), fc, dataset="sales")
    monkeypatch.setenv("FLOWCAST_STORE__URL", pg_url)
    monkeypatch.setenv("FLOWCAST_STORE__PG_SCHEMA", pg_schema)
    runner = CliRunner()
    import flowcast.cli.store as cli_store

    monkeypatch.setattr(cli_store, "STREAM_ROWS", 2_500)  # csv and json in several batches
    said = {}
    for args in (["forecasts"], ["forecasts", "--limit", "120"], ["forecasts", "--format", "csv"],
                 ["forecasts", "--format", "json"], ["forecasts", "--limit", "7", "--format", "csv"]):
        r = runner.invoke(app, args, terminal_width=400)
        assert r.exit_code == 0, (args, r.output)
        said[tuple(args)] = r.stdout if "--format" in args else r.output  # (the counts on stderr)
    table = said[("forecasts",)]
    assert len([line for line in table.splitlines() if line.startswith("s0")]) == TABLE_ROWS, table
    assert f"the first {TABLE_ROWS} of 6,000 rows, 1 dataset, 1 as_of, 1,000 series" in table, table[-500:]
    assert "no 80% interval for s00999, 1 of 1,000 series" in " ".join(table.split()), table[-500:]
    assert "120 rows, 1 dataset, 1 as_of, 20 series" in said[("forecasts", "--limit", "120")]
    csv = pl.read_csv(said[("forecasts", "--format", "csv")].encode())
    rows = json.loads(said[("forecasts", "--format", "json")])
    assert csv.height == len(rows) == 6_000 and [r["unique_id"] for r in rows] == csv["unique_id"].to_list()
    assert csv.columns == list(rows[0]) and "y_hat_lo80" in csv.columns
    assert pl.read_csv(said[("forecasts", "--limit", "7", "--format", "csv")].encode()).equals(csv.head(7))
    monkeypatch.delenv("FLOWCAST_STORE__URL")
    monkeypatch.setenv("FLOWCAST_HOME", str(embedded))
    for args, out in said.items():  # the embedded store's words and rows
        r = runner.invoke(app, list(args), terminal_width=400)
        assert (r.stdout if "--format" in args else r.output) == out, args


def test_cli_forecasts_lines_under_a_cut_table_are_of_every_row(_isolated_home):
    """fixB52: the table of the first rows says what is true of all the rows of its dataset and as_of: a series past
    them published without intervals is named under it, as it was when every row was printed."""
    from flowcast.cli import app
    from flowcast.cli.store import TABLE_ROWS

    fc = make_forecast(1, 20, H, AS_OF)
    last = pl.col("unique_id") == "s00019"
    fc = fc.with_columns(*[pl.when(last).then(None).otherwise(pl.col("y_hat") + d).alias(c) for c, d in
                           (("y_hat_lo95", -2.0), ("y_hat_lo80", -1.0), ("y_hat_hi80", 1.0), ("y_hat_hi95", 2.0))])
    assert fc.height > TABLE_ROWS and fc.head(TABLE_ROWS).filter(last).height == 0
    publish(EmbeddedStore(_isolated_home / "warehouse"), fc, dataset="sales")
    r = CliRunner().invoke(app, ["forecasts"], terminal_width=400)
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and "s00019" not in [line[:6] for line in r.output.splitlines()], r.output
    assert "(no 80% or 95% interval for s00019, 1 of 20 series: the run's notes say why)" in out, r.output


def test_cli_forecasts_limit_reads_only_the_rows_it_shows(_isolated_home):
    """fixI52: `--limit N` read every matching row to show N of them. It reads up to them (`EmbeddedStore.read(rows=)`):
    a damaged file of a later as_of is not even opened (read whole, it is left out with a warning)."""
    from flowcast.cli import app

    store = EmbeddedStore(_isolated_home / "warehouse")
    publish(store, make_forecast(1, 3, H, OTHER), as_of=OTHER, dataset="sales")
    publish(store, make_forecast(2, 3, H, AS_OF), variant=2, dataset="sales")
    whole = store.read()
    (part,) = (store.root / "forecasts" / "dataset=sales" / "as_of=2024-03-01T00:00:00").iterdir()
    part.write_bytes(part.read_bytes()[:400])
    runner = CliRunner()
    r = runner.invoke(app, ["forecasts", "--format", "csv"])
    skipped = "warning: left out dataset sales as_of 2024-03-01"  # the read's (the views' own warning aside)
    assert r.exit_code == 0 and skipped in " ".join(r.output.split()), r.output
    for fmt in ("csv", "table"):
        r = runner.invoke(app, ["forecasts", "--limit", "5", "--format", fmt], terminal_width=400)
        assert r.exit_code == 0 and "warning: left out" not in " ".join(r.output.split()), r.output
    assert "5 rows, 1 dataset, 1 as_of, 1 series" in r.output, r.output
    csv = pl.read_csv(runner.invoke(app, ["forecasts", "--limit", "5", "--format", "csv"]).stdout.encode())
    assert csv["y_hat"].to_list() == whole["y_hat"].head(5).to_list()


def test_cli_forecasts_formats_and_filters(_isolated_home):
    from flowcast.cli import app

    store = EmbeddedStore(_isolated_home / "warehouse")
    publish(store, make_forecast(1, 3, H, AS_OF), dataset="sales")
    publish(store, make_forecast(2, 3, H, OTHER), as_of=OTHER, variant=2, dataset="sales")
    publish(store, make_forecast(3, 2, H, AS_OF), variant=3, dataset="energy")
    runner = CliRunner()
    r = runner.invoke(app, ["forecasts", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert len(rows) == (2 * 3 + 2) * H  # every dataset
    assert list(rows[0]) == FORECAST_COLUMNS[:8] + ["y_hat_q10", "y_hat_q90"] + FORECAST_COLUMNS[8:]
    r = runner.invoke(app, ["forecasts", "--dataset", "sales", "--as-of", "2024-03-01", "--unique-id", "s00001",
                            "--format", "json"])
    rows = json.loads(r.stdout)
    assert len(rows) == H and {(x["dataset"], x["unique_id"], x["as_of"]) for x in rows} == {
        ("sales", "s00001", "2024-03-01T00:00:00")}
    r = runner.invoke(app, ["forecasts", "-d", "energy", "--format", "csv"])
    csv = pl.read_csv(r.stdout.encode())
    assert csv.height == 2 * H and csv["dataset"].unique().to_list() == ["energy"]
    assert csv.columns[:4] == ["dataset", "as_of", "unique_id", "ds"]
    # times as --format json writes them: no '.000000' on every period
    first = r.stdout.splitlines()[1].split(",")
    assert first[1] == "2024-03-01T00:00:00" and first[3].endswith("T00:00:00"), first
    r = runner.invoke(app, ["forecasts", "--as-of", "2024-02-01"])
    assert r.exit_code == 0 and "s00002" in r.stdout and "lstm-v2" in r.stdout and "1 dataset," in r.output
    r = runner.invoke(app, ["forecasts", "--format", "xml"])
    assert r.exit_code == 2 and "--format must be one of" in r.output
    r = runner.invoke(app, ["forecasts", "--as-of", "yesterday"])
    assert r.exit_code == 2 and "--as-of" in r.output
    r = runner.invoke(app, ["forecasts", "--model", "nope", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout) == []
    # a filter that matches nothing says what is published
    r = runner.invoke(app, ["forecasts", "--dataset", "sales", "--as-of", "2024-02-02"])
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "published as_of: sales: 2024-02-01, 2024-03-01" in text, text
    r = runner.invoke(app, ["forecasts", "--dataset", "nope"])
    assert "published datasets: energy, sales" in " ".join(r.output.split())
    r = runner.invoke(app, ["forecasts", "--dataset", "bad/name"])
    assert r.exit_code == 2 and "not usable as a store key" in r.output


def test_a_series_that_is_not_published_is_named_not_the_as_of(_isolated_home):
    """Regression: '--unique-id 999' of a dataset and as_of that are published said 'no published forecasts matching
    {...}; published as_of: ...', the one asked for among them: the id, the filter that matched nothing, went
    unsaid (a series '7' whose file wrote '007', a typo)."""
    from flowcast.cli import app

    store = EmbeddedStore(_isolated_home / "warehouse")
    publish(store, make_forecast(1, 3, H, AS_OF), dataset="sales")
    ids = sorted(store.read(dataset="sales")["unique_id"].unique().to_list())
    runner = CliRunner()
    r = runner.invoke(app, ["forecasts", "--dataset", "sales", "--as-of", "2024-03-01", "--unique-id", "zzz"])
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and f"series 'zzz' is not among the 3 series published there (e.g. {', '.join(ids)})" in text
    assert "published as_of" not in text
    typo = ids[0].upper()
    r = runner.invoke(app, ["forecasts", "--unique-id", typo])
    assert f"series {typo!r} is not among the 3 series published there (did you mean {ids[0]!r}" in " ".join(r.output.split())
    r = runner.invoke(app, ["forecasts", "--as-of", "2024-02-02", "--unique-id", ids[0]])  # the as_of is what's wrong
    assert "published as_of: sales: 2024-03-01" in " ".join(r.output.split())


def test_cli_forecasts_names_a_damaged_file_the_duckdb_views_leave_out(_isolated_home):
    """A damaged file nobody re-publishes is left out of the DuckDB views (every query of them failed on it):
    `flowcast forecasts` says which file and what to do, and the views answer."""
    import duckdb

    from flowcast.cli import app

    store = EmbeddedStore(_isolated_home / "warehouse")
    publish(store, make_forecast(1, 3, H, AS_OF), dataset="sales")
    publish(store, make_forecast(2, 3, H, OTHER), as_of=OTHER, variant=2, dataset="sales")
    (part,) = (store.root / "forecasts" / "dataset=sales" / "as_of=2024-02-01T00:00:00").iterdir()
    part.write_bytes(part.read_bytes()[:400])
    r = CliRunner().invoke(app, ["forecasts", "--format", "csv"])
    text = "".join(r.output.split())  # the console folds long lines
    assert r.exit_code == 0 and f"warning:theDuckDBviewsin{store.db_path}leaveout{part}" in text, r.output
    assert "re-publishthatdatasetandas_of,orremovethatfile" in text
    con = duckdb.connect(str(store.db_path), read_only=True)
    try:
        assert con.sql("SELECT count(*) FROM forecasts").fetchall() == [(3 * H,)]
    finally:
        con.close()


def test_csv_and_json_that_match_nothing_say_so_on_stderr(_isolated_home):
    """Regression (the README's `flowcast forecasts --dataset us_employment --as-of 2019-09-01 --unique-id <id>
    --format csv` after `make run`, whose as_of is now): --format csv printed a bare header and exit 0, not a word of
    what is published; the table said it. stdout stays the (empty) data, the sentence goes to stderr."""
    from flowcast.cli import app

    store = EmbeddedStore(_isolated_home / "warehouse")
    publish(store, make_forecast(1, 3, H, AS_OF), dataset="sales")
    runner = CliRunner()
    for fmt in ("csv", "json"):
        r = runner.invoke(app, ["forecasts", "--dataset", "sales", "--as-of", "2024-02-02", "--format", fmt])
        assert r.exit_code == 0, r.output
        assert "published as_of: sales: 2024-03-01" in " ".join(r.stderr.split()), (fmt, r.stderr)
        assert "published as_of" not in r.stdout
        assert (json.loads(r.stdout) == []) if fmt == "json" else r.stdout.startswith("dataset,as_of,unique_id")


def test_cli_forecasts_verify_names_the_damaged_as_of_and_exits_1(_isolated_home):
    from test_embedded import _damage_page

    from flowcast.cli import app

    store = EmbeddedStore(_isolated_home / "warehouse")
    publish(store, make_forecast(1, 3, H, AS_OF), dataset="sales")
    publish(store, make_forecast(2, 3, H, OTHER), as_of=OTHER, variant=2, dataset="sales")
    runner = CliRunner()
    r = runner.invoke(app, ["forecasts", "--verify"])
    assert r.exit_code == 0 and "2 files of published forecasts" in r.output and "all whole" in r.output, r.output
    part = Path(store.data.current("forecasts", "sales", OTHER))
    _damage_page(part)
    r = runner.invoke(app, ["forecasts", "--verify"])
    text = " ".join(r.output.split())
    assert r.exit_code == 1, r.output
    assert "damaged: published partition" in text and "dataset sales as_of 2024-02-01 (flowcast forecast --as-of 2024-02-01T00:00:00" in text
    assert "1 damaged" in text
    assert "flowcast forecast --as-of 2024-02-01T00:00:00" in text


def test_cli_forecasts_verify_finds_a_damaged_duckdb_file_and_rebuilds_it(_isolated_home):
    """faults29: bytes overwritten inside forecasts.duckdb (a disk error, a bad copy), its inode kept: every query of
    its views failed 'Corrupt database file: computed checksum ... does not match', while no flowcast command opened
    it (its sidecar says the views exist) and `--verify` said 'all whole', exit 0. It names the file, rebuilds it (it
    holds only views over the Parquet files) and exits 1; the next check finds it whole."""
    import duckdb
    from test_embedded import duck

    from flowcast.cli import app

    store = EmbeddedStore(_isolated_home / "warehouse")
    publish(store, make_forecast(1, 3, H, AS_OF), dataset="sales")
    with open(store.db_path, "r+b") as fh:  # in place, as a disk error damages it
        fh.seek(8192)
        block = fh.read(8)
        fh.seek(8192)
        fh.write(bytes(b ^ 0xFF for b in block))
    with pytest.raises(duckdb.Error, match="Corrupt database file"):
        duck(store, "SELECT count(*) AS n FROM forecasts")
    runner = CliRunner()
    r = runner.invoke(app, ["forecasts"])  # a reader does not open it: nothing says it (this check is --verify)
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["forecasts", "--verify"])
    text = " ".join(r.output.split())
    assert r.exit_code == 1, r.output
    assert f"damaged: the DuckDB file {store.db_path} cannot be read (Corrupt database file" in text, text
    assert "and was rebuilt from the Parquet dataset in" in text and "1 damaged" in text, text
    assert f"the damaged file is kept as {store.db_path}.damaged" in text, text
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == 3 * H
    r = runner.invoke(app, ["forecasts", "--verify"])
    assert r.exit_code == 0 and "all whole" in r.output, r.output


def test_cli_forecasts_verify_checks_the_realized_accuracy_files_too(_isolated_home):
    """Regression: --verify read only the forecasts files: a damaged realized-accuracy file (what `flowcast
    accuracy` and the degraded-accuracy check read) still gave 'all whole', exit 0. It is named, with its
    as_of and what rewrites it."""
    from test_contract import realized_frame
    from test_embedded import _damage_page

    from flowcast.cli import app

    store = EmbeddedStore(_isolated_home / "warehouse")
    publish(store, make_forecast(1, 3, H, AS_OF), dataset="sales")
    publish(store, make_forecast(2, 3, H, OTHER), as_of=OTHER, variant=2, dataset="sales")
    store.write_realized("sales", realized_frame([OTHER]))
    runner = CliRunner()
    r = runner.invoke(app, ["forecasts", "--verify"])
    assert r.exit_code == 0 and "3 files of published forecasts and realized accuracy" in r.output, r.output
    part = Path(store.data.current("realized", "sales", OTHER))
    _damage_page(part, "mae")
    r = runner.invoke(app, ["forecasts", "--verify"])
    text = " ".join(r.output.split())
    flat = "".join(r.output.split())  # the console folds long lines, paths among them
    assert r.exit_code == 1 and "1 damaged" in text and "all whole" not in text, text
    assert "damaged: realized-accuracy partition" in text and str(part) in flat, text
    assert "the next run that scores dataset sales as_of 2024-02-01 rewrites it" in text, text
    r = runner.invoke(app, ["forecasts", "--verify", "--as-of", "2024-03-01"])  # --as-of: that as_of's files only
    assert r.exit_code == 0 and "1 file of published" in r.output, r.output


def test_cli_forecasts_verify_of_a_dataset_nothing_is_published_for_is_not_all_whole(_isolated_home):
    """Regression: `flowcast forecasts --verify --dataset salse` (a typo) checked no file and said '0 published
    file(s) checked ...: all whole', exit 0; it names what it was asked and what is published."""
    from flowcast.cli import app

    publish(EmbeddedStore(_isolated_home / "warehouse"), make_forecast(1, 3, H, AS_OF), dataset="sales")
    r = CliRunner().invoke(app, ["forecasts", "--verify", "--dataset", "salse"])
    text = " ".join(r.output.split())
    assert r.exit_code != 0 and "all whole" not in text, text
    assert "no published forecasts of dataset salse" in text and "published datasets: sales" in text, text


def test_a_home_that_was_moved_away_is_named_with_how_to_point_at_it(tmp_path):
    """Regression: with the home moved (mv) and --home / FLOWCAST_HOME still naming the old place, the readers
    said 'no published forecasts in <old>/warehouse' and 'no registered models', as if nothing had run."""
    from flowcast.cli import app

    old, new = tmp_path / "old", tmp_path / "new"
    publish(EmbeddedStore(old / "warehouse"), make_forecast(1, 3, H, AS_OF))
    old.rename(new)
    runner = CliRunner()
    for args in (["forecasts"], ["models", "list"]):
        r = runner.invoke(app, [*args, "--home", str(old)])
        text = " ".join(r.output.split())
        assert r.exit_code == 0, r.output
        assert f"the home {old} does not exist either" in text and "point --home or FLOWCAST_HOME" in text, text
    r = runner.invoke(app, ["forecasts", "--home", str(new), "--format", "csv"])
    assert r.exit_code == 0 and pl.read_csv(r.stdout.encode()).height == 3 * H
    assert not old.exists()  # a reader creates nothing at the old place


def test_a_moved_home_whose_views_cannot_be_rebuilt_says_why_queries_fail_and_how_to_fix_it(tmp_path):
    """Regression: in a moved home (the original gone) whose forecasts.duckdb could not be rebuilt (held open,
    read-only), `flowcast forecasts` said nothing, while every query of the file failed with DuckDB's bare 'No
    files found that match the pattern <old home>/...'. It warns now, naming the old path and the fix."""
    import subprocess
    import sys

    from test_embedded import HOLD_DUCKDB

    from flowcast.cli import app

    old, new = tmp_path / "old", tmp_path / "new"
    publish(EmbeddedStore(old / "warehouse"), make_forecast(1, 3, H, AS_OF))
    old.rename(new)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_DUCKDB.replace("select count(*) from forecasts", "select 1"),
                               str(new / "warehouse" / "forecasts.duckdb"), "rw"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        r = CliRunner().invoke(app, ["forecasts", "--home", str(new)])
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "3 series" in text, r.output  # the forecasts read from Parquet all the same
    assert f"built for {old.resolve() / 'warehouse' / 'forecasts.duckdb'} (a copied or moved home)" in text, text
    assert "No files found that match the pattern" in text and "flowcast forecasts --home" in text
    r = CliRunner().invoke(app, ["forecasts", "--home", str(new)])  # released: this one rebuilds them, silently
    assert r.exit_code == 0 and "moved home" not in r.output


def test_empty_csv_header_has_the_interval_columns(_isolated_home):
    """Regression: `--format csv` matching nothing printed a header that stopped at y_hat, so a script reading
    the published columns (y_hat_lo80 ...) by name failed only on the days with nothing to read; the header is
    now the published default's: the 80% and 95% bounds around y_hat."""
    from flowcast.cli import app
    from flowcast.columns import INTERVAL_COLUMNS

    store = EmbeddedStore(_isolated_home / "warehouse")
    publish(store, make_forecast(1, 3, H, AS_OF), dataset="sales")
    r = CliRunner().invoke(app, ["forecasts", "--dataset", "nothing", "--format", "csv"])
    assert r.exit_code == 0, r.output
    header = r.stdout.splitlines()[0].split(",")
    assert header == FORECAST_COLUMNS[:8] + ["y_hat_lo95", "y_hat_lo80", "y_hat_hi80", "y_hat_hi95"] \
        + FORECAST_COLUMNS[8:], header
    assert set(INTERVAL_COLUMNS) <= set(header) and r.stdout.splitlines()[1:] == []


def test_cli_forecasts_published_as_of_said_is_taken_back_on_a_zoned_source(_isolated_home, tmp_path):
    """Regression (inst43): the as_ofs a filter matching nothing lists (`published as_of: ...`) are what a person gives
    --as-of next. A midnight UTC read '2024-03-01' there (`utc_text`), which `--dataset sales --as-of` reads as the
    day of the source's tz (midnight in New York, 05:00 UTC): the as_of it listed found nothing. It said the ISO time
    before, which --as-of takes back as that instant; now it keeps the clock, '2024-03-01 00:00 UTC', where a date
    alone would read another instant."""
    from flowcast.cli import app

    conf = tmp_path / "flowcast.toml"
    conf.write_text('[sources.sales]\npath = "sales.csv"\nid_cols = ["store"]\ntime_col = "day"\ntarget_col = "y"\n'
                    'freq = "1d"\ntz = "America/New_York"\n')
    store = EmbeddedStore(_isolated_home / "warehouse")
    publish(store, make_forecast(1, 3, H, AS_OF), dataset="sales")  # 2024-03-01 00:00 UTC: 19:00 the day before there
    runner = CliRunner()
    r = runner.invoke(app, ["forecasts", "--config", str(conf), "--dataset", "sales", "--as-of", "2024-02-02"])
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "published as_of: sales: " in text, text
    said = text.split("published as_of: sales: ")[1].split(";")[0].strip()
    r = runner.invoke(app, ["forecasts", "--config", str(conf), "--dataset", "sales", "--as-of", said, "--format",
                            "json"])
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 3 * H, (said, r.output)


def test_cli_forecasts_table_title_as_of_is_taken_back_on_a_zoned_source(_isolated_home, tmp_path):
    """Regression (inst43): a table's title says its as_of 'as --as-of takes it' (`forecast_tables`); a midnight UTC
    of a New York source read 'sales as of 2024-03-01', and `--dataset sales --as-of 2024-03-01` is New York's
    midnight, 05:00 UTC: nothing there. It keeps its clock now."""
    from flowcast.cli import app

    conf = tmp_path / "flowcast.toml"
    conf.write_text('[sources.sales]\npath = "sales.csv"\nid_cols = ["store"]\ntime_col = "day"\ntarget_col = "y"\n'
                    'freq = "1d"\ntz = "America/New_York"\n')
    publish(EmbeddedStore(_isolated_home / "warehouse"), make_forecast(1, 3, H, AS_OF), dataset="sales")
    r = CliRunner().invoke(app, ["forecasts", "--config", str(conf), "--dataset", "sales"], terminal_width=400)
    assert r.exit_code == 0 and "sales as of 2024-03-01 00:00 UTC: lstm-v1" in r.stdout, r.stdout
