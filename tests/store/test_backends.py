"""The store contract on every backend: embedded (Parquet + DuckDB views), PostgreSQL, and the
Parquet dataset on an S3-compatible object store (moto server on loopback)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from publisher import make_forecast
from store_helpers import AS_OF, DS, OTHER, H, publish, variant_of
from test_contract import realized_frame

from flowcast.columns import FORECAST_COLUMNS, REALIZED_COLUMNS
from flowcast.errors import PublishError
from flowcast.store import EmbeddedStore, ForecastContractError, ForecastStore, content_hash

N = 20


def test_round_trip_keys_and_hash(backend):
    store = backend.store
    assert isinstance(store, ForecastStore)
    fc = make_forecast(1, N, H, AS_OF)
    r = publish(store, fc)
    assert (r.dataset, r.rows, r.n_series, r.replaced_rows) == (DS, N * H, N, 0)
    back = store.read(dataset=DS, as_of=AS_OF)
    assert back.columns == FORECAST_COLUMNS[:8] + ["y_hat_q10", "y_hat_q90"] + FORECAST_COLUMNS[8:]
    assert back.select("unique_id", "ds", "step", "y_hat", "y_hat_q10", "y_hat_q90").equals(fc.sort("unique_id", "ds"))
    assert content_hash(back) == r.content_hash  # what is read back is exactly what was hashed
    assert store.receipt_of(DS, AS_OF)["content_hash"] == r.content_hash
    assert store.has(DS, AS_OF) and not store.has(DS, OTHER) and not store.has("other", AS_OF)
    assert store.as_ofs(DS) == [AS_OF] and store.datasets() == [DS]
    assert store.read(unique_id="s00003")["step"].to_list() == list(range(1, H + 1))
    assert store.read(model="gru").height == 0 and store.read(dataset="nope").columns == FORECAST_COLUMNS
    with pytest.raises(PublishError, match="nothing published for dataset sales as_of 2024-02-01"):
        store.receipt_of(DS, OTHER)
    # a second store object (another process would open the same) sees the same
    assert backend.reopen().read().equals(store.read())


def _publish_with_gaps(store) -> None:
    """Publish AS_OF with an 80% interval its first five series lack, and OTHER (3 series) without the 10%/90%
    quantiles: value columns empty in the first rows, or in one as_of alone."""
    first = pl.col("unique_id") < "s00005"
    fc = make_forecast(1, N, H, AS_OF).with_columns(
        pl.when(first).then(None).otherwise(pl.col("y_hat") + d).alias(c) for c, d in (("y_hat_lo80", -1.0),
                                                                                      ("y_hat_hi80", 1.0)))
    publish(store, make_forecast(2, 3, H, OTHER).drop("y_hat_q10", "y_hat_q90"), as_of=OTHER, variant=2)
    publish(store, fc)


def test_a_read_of_the_first_rows_has_the_columns_of_a_whole_read(backend):
    """store53: `read(rows=n)` (`flowcast forecasts --limit N`) left out a value column empty in its first n rows
    alone, so the columns of `--limit 5` and `--limit 500` differed. It is `read().head(n)` on every backend: a column
    is left out only where every matched row lacks it (one of the filters' series, another as_of's file)."""
    store = backend.store
    _publish_with_gaps(store)
    whole = store.read()
    for n in (1, 3 * H, 3 * H + 5 * H, whole.height):
        assert store.read(rows=n).equals(whole.head(n)), n
    assert "y_hat_lo80" in store.read(rows=5).columns and "y_hat_q10" in store.read(rows=5).columns
    assert store.read(rows=5, as_of=AS_OF).equals(store.read(as_of=AS_OF).head(5))
    assert store.read(rows=5, as_of=AS_OF)["y_hat_lo80"].null_count() == 5
    one = store.read(rows=2, unique_id="s00001")  # every matched row lacks the interval: left out, as read whole
    assert one.equals(store.read(unique_id="s00001").head(2)) and "y_hat_lo80" not in one.columns


def test_the_batches_and_the_summary_of_a_read_are_those_of_the_whole_read(backend):
    """store53: on PostgreSQL `flowcast forecasts` fetched every row for its table (to count them) and for csv and
    json (to write them). `read_batches` gives the rows of `read` a batch at a time, each with the columns of the whole
    read (one COPY read as it arrives there), and `read_summary` counts what `read` returns, whether each interval and
    quantile is there, by series, run and model (an aggregate query there), the same on every backend."""
    from flowcast.cli.store import _summarised
    from flowcast.store.contract import summary_order
    from flowcast.store.embedded import _distinct

    store = backend.store
    assert list(store.read_batches(size=7)) == [] and store.read_summary(_summarised)["rows"].sum() == 0
    _publish_with_gaps(store)
    odd = {"s00000": "a\nb", "s00001": 'c"d'}  # a batch ends where a row does, not at a newline in quoted text
    publish(store, make_forecast(3, 2, H, AS_OF).with_columns(pl.col("unique_id").replace_strict(odd)),
            dataset="other", variant=3)
    whole = store.read()
    assert set(odd.values()) <= set(whole["unique_id"])
    batches = list(store.read_batches(size=7))
    assert [b.height for b in batches] == [7] * (whole.height // 7) + [whole.height % 7]
    assert all(b.columns == whole.columns for b in batches) and pl.concat(batches).equals(whole)
    one = list(store.read_batches(dataset=DS, unique_id="s00001", size=4))
    assert pl.concat(one).equals(store.read(dataset=DS, unique_id="s00001")) and "y_hat_lo80" not in one[0].columns
    for asked in ({}, {"dataset": DS}, {"dataset": DS, "as_of": AS_OF, "unique_id": "s00007"}):
        summary = store.read_summary(_summarised, **asked)
        matched = store.read(**asked)
        assert summary.equals(summary_order(_distinct(matched.select(c for c in matched.columns if _summarised(c))))), \
            (asked, summary)
    assert store.read_summary(_summarised, dataset=DS)["rows"].sum() == (N + 3) * H


def test_first_rows_and_batches_of_a_postgres_database_with_its_own_collation_are_those_of_the_whole_read(pg_url):
    """store53: PostgreSQL sorted `--limit N`'s rows and the batches of csv and json in the database's collation (ICU en-US:
    'a-c', 'ab', 's0', 'S1'), polars the whole read by bytes ('S1', 'a-c', 'ab', 's0'): the first rows were not
    those of the whole read. Text is ordered by bytes in SQL too (COLLATE "C")."""
    import psycopg

    from flowcast.store.postgres import PostgresStore

    name = "store53_icu_en"
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name}")
        con.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
                    "LOCALE 'C.UTF-8'")
    try:
        store = PostgresStore(pg_url.rsplit("/", 1)[0] + f"/{name}")
        ids = {"s00000": "s0", "s00001": "S1", "s00002": "ab", "s00003": "a-c"}
        publish(store, make_forecast(1, 4, 2, AS_OF).with_columns(pl.col("unique_id").replace_strict(ids)))
        whole = store.read()
        assert whole["unique_id"].unique(maintain_order=True).to_list() == ["S1", "a-c", "ab", "s0"]
        for n in range(1, whole.height + 1):
            assert store.read(rows=n).equals(whole.head(n)), n
        assert pl.concat(store.read_batches(size=3)).equals(whole)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_series_ids_with_copys_special_text_round_trip(backend):
    """fixC53: a unique_id that is literally \\N was written unquoted into PostgreSQL's COPY input, where it means
    NULL: the publish failed (NOT NULL). Text is quoted; backslashes, tabs, newlines and quotes round-trip too."""
    store = backend.store
    ids = {"s00000": "\\N", "s00001": "a\\b", "s00002": "x\ty", "s00003": 'n\nl "q"'}
    fc = make_forecast(1, 4, 2, AS_OF).with_columns(pl.col("unique_id").replace_strict(ids))
    publish(store, fc)
    back = store.read()
    assert sorted(back["unique_id"].unique().to_list()) == sorted(ids.values())
    assert back.select("unique_id", "ds", "y_hat").sort("unique_id", "ds").equals(
        fc.select("unique_id", "ds", "y_hat").sort("unique_id", "ds"))
    assert pl.concat(store.read_batches(size=3)).equals(back)


def test_replace_one_key_only_and_datasets_are_separate(backend):
    store = backend.store
    publish(store, make_forecast(7, N, H, OTHER), as_of=OTHER, variant=7)
    a = publish(store, make_forecast(5, N, H, AS_OF), dataset="a", variant=5)
    r1 = publish(store, make_forecast(1, N, H, AS_OF), run_id="first")
    r2 = publish(store, make_forecast(1, N, H, AS_OF), run_id="second")
    assert r2.unchanged and r2.replaced_rows == N * H and r2.previous_content_hash == r1.content_hash
    r3 = publish(store, make_forecast(2, 3, H, AS_OF), variant=2)  # fewer series: the old rows all go
    assert r3.replaced_rows == N * H and not r3.unchanged
    assert variant_of(store.read(dataset=DS, as_of=AS_OF)) == {2} and store.read(dataset=DS, as_of=AS_OF).height == 3 * H
    assert variant_of(store.read(dataset=DS, as_of=OTHER)) == {7}
    assert variant_of(store.read(dataset="a")) == {5} and store.receipt_of("a", AS_OF)["content_hash"] == a.content_hash
    everything = store.read()
    assert everything.select("dataset", "as_of", "unique_id", "ds").n_unique() == everything.height  # no duplicates
    assert everything.group_by("dataset", "as_of").len().sort("dataset", "as_of").rows() == [
        ("a", AS_OF, N * H), (DS, OTHER, N * H), (DS, AS_OF, 3 * H)]
    assert store.datasets() == ["a", DS] and store.as_ofs(DS) == [OTHER, AS_OF]


def test_realized_accuracy_is_replaced_per_key_and_idempotent(backend):
    store = backend.store
    as_ofs = [OTHER, AS_OF]
    assert store.write_realized(DS, realized_frame(as_ofs)) == 12
    assert store.write_realized("b", realized_frame([AS_OF], models=("theta",), scale=9.0)) == 3
    first = store.read_realized(DS)
    assert first.columns == REALIZED_COLUMNS and first.height == 12
    assert store.write_realized(DS, realized_frame(as_ofs)) == 12  # a re-run: same rows, nothing doubled
    assert store.read_realized(DS).equals(first)
    # re-scoring one as_of (fewer models now) replaces that as_of's rows only
    store.write_realized(DS, realized_frame([AS_OF], models=("lstm",), scale=2.0))
    now = store.read_realized(DS)
    assert now.filter(pl.col("as_of") == OTHER).equals(first.filter(pl.col("as_of") == OTHER))
    mine = now.filter(pl.col("as_of") == AS_OF)
    assert mine["model"].unique().to_list() == ["lstm"] and mine["mae"].to_list() == [2.0, 4.0, 6.0]
    assert store.read_realized(as_of=AS_OF).group_by("dataset").len().sort("dataset").rows() == [("b", 3), (DS, 3)]
    assert store.read_realized("b")["model_version"].null_count() == 3
    assert store.read_realized(DS, datetime(2000, 1, 1)).height == 0
    assert store.read().height == 0  # realized rows are not forecasts


def test_republishing_an_as_of_with_other_forecasts_drops_the_realized_accuracy_of_the_ones_it_replaced(backend):
    """Regression: a re-run of a published as_of (a backfill with overwrite, a forecast re-run with another model)
    replaced its forecasts and kept the realized rows that scored the replaced ones: the realized table named the
    old model version with its errors, and a run rescored that as_of only when more points had arrived (never once
    settled), so a decay verdict stayed on forecasts no longer published. Those rows go with the forecasts they
    scored (the next run scores the new ones); a publish of the same forecasts keeps them."""
    store = backend.store
    publish(store, make_forecast(1, N, H, AS_OF))
    publish(store, make_forecast(7, N, H, OTHER), as_of=OTHER, variant=7)
    store.write_realized(DS, realized_frame([OTHER, AS_OF]))
    publish(store, make_forecast(1, N, H, AS_OF), run_id="again")  # the same forecasts: still what they scored
    assert store.read_realized(DS).height == 12
    publish(store, make_forecast(2, N, H, AS_OF), variant=2)  # lstm-v2's forecasts replace lstm-v1's
    assert variant_of(store.read(dataset=DS, as_of=AS_OF)) == {2}
    assert store.read_realized(DS, AS_OF).height == 0
    assert store.read_realized(DS)["as_of"].unique().to_list() == [OTHER]  # other as_of keep theirs
    assert backend.reopen().read_realized(DS).height == 6


def test_realized_rows_keep_the_points_their_mase_covers_and_older_rows_read_as_unknown(backend):
    """n_mase (the points MASE covers) round-trips on every backend; rows written without it read back as null,
    and more points than were scored is refused."""
    store = backend.store
    store.write_realized(DS, realized_frame([OTHER]).with_columns(n_mase=pl.col("n") - 1))
    store.write_realized(DS, realized_frame([AS_OF]))  # no n_mase: null
    back = store.read_realized(DS)
    assert back.columns == REALIZED_COLUMNS and back.schema["n_mase"] == pl.Int64
    assert back.filter(pl.col("as_of") == OTHER)["n_mase"].to_list() == [10, 11, 12] * 2
    assert back.filter(pl.col("as_of") == AS_OF)["n_mase"].null_count() == 6
    with pytest.raises(ForecastContractError, match="n_mase out of range"):
        store.write_realized(DS, realized_frame([AS_OF]).with_columns(n_mase=pl.col("n") + 1))


def test_realized_rows_keep_the_points_their_coverage_covers_and_older_rows_read_as_unknown(backend):
    """n_cov80 / n_cov95 (the points with that interval, probe45: a series with no typical change to scale its widths
    by is published without one) round-trip on every backend (PostgreSQL: a table an older flowcast created gets the
    columns); rows written without them read back as null; more points than were scored is refused."""
    store = backend.store
    store.write_realized(DS, realized_frame([OTHER]).with_columns(n_cov80=pl.col("n") - 1, n_cov95=pl.lit(0)))
    store.write_realized(DS, realized_frame([AS_OF]))  # an older flowcast's rows: null
    back = store.read_realized(DS)
    assert back.columns == REALIZED_COLUMNS and back.schema["n_cov80"] == back.schema["n_cov95"] == pl.Int64
    assert back.filter(pl.col("as_of") == OTHER)["n_cov80"].to_list() == [10, 11, 12] * 2
    assert back.filter(pl.col("as_of") == OTHER)["n_cov95"].to_list() == [0] * 6
    assert back.filter(pl.col("as_of") == AS_OF).select("n_cov80", "n_cov95").null_count().row(0) == (6, 6)
    with pytest.raises(ForecastContractError, match="n_cov95 out of range"):
        store.write_realized(DS, realized_frame([AS_OF]).with_columns(n_cov95=pl.col("n") + 1))


@pytest.mark.parametrize("column", ["n_mase", "lookahead", "rmsse", "rmsse_snaive", "n_cov80", "n_cov95"])
def test_a_realized_partition_of_an_older_flowcast_without_a_later_column_reads_back(tmp_path, column):
    """A partition written before `column` was recorded reads back with it null (not known)."""
    store = EmbeddedStore(tmp_path / "wh")
    store.write_realized(DS, realized_frame([AS_OF]))
    (part,) = (tmp_path / "wh" / "realized").rglob("*.parquet")
    pl.read_parquet(part).drop(column).write_parquet(part)
    back = store.read_realized(DS)
    assert back.columns == REALIZED_COLUMNS and back.height == 6 and back[column].null_count() == 6


@pytest.mark.parametrize("column", ["n_mase", "lookahead", "rmsse", "rmsse_snaive", "n_cov80", "n_cov95"])
def test_the_duckdb_realized_view_of_partitions_all_older_than_a_column_has_it_null(tmp_path, column):
    """faults20: `flowcast accuracy` reads realized files an older flowcast wrote (no `rmsse_snaive`) as null, and so
    does the DuckDB `realized` view where some files have the column; where none has it (a store whose realized
    accuracy an older flowcast wrote), a query naming it failed: 'Referenced column "rmsse_snaive" not found'. The
    view has every later column, null in the files without it."""
    import duckdb

    store = EmbeddedStore(tmp_path / "wh")
    store.write_realized(DS, realized_frame([AS_OF, OTHER]))
    for part in (tmp_path / "wh" / "realized").rglob("*.parquet"):
        pl.read_parquet(part).drop(column).write_parquet(part)
    store = EmbeddedStore(tmp_path / "wh")
    assert store.sync_views() is None
    with duckdb.connect(str(tmp_path / "wh" / "forecasts.duckdb"), read_only=True) as con:
        assert con.execute(f"SELECT count(*), count({column}) FROM realized").fetchall() == [(12, 0)]
        assert con.execute("SELECT count(*) FROM realized WHERE mae IS NOT NULL").fetchall() == [(12,)]


def test_realized_rmsse_round_trips_and_rows_without_it_read_as_unknown(backend):
    """rmsse (RMSSE on the points MASE covers) round-trips on every backend (PostgreSQL: a table an older flowcast
    created gets the column); rows written without it read back as null; a negative one is refused."""
    store = backend.store
    store.write_realized(DS, realized_frame([OTHER]).with_columns(rmsse=0.25 * pl.col("step")))
    store.write_realized(DS, realized_frame([AS_OF]))  # not computed: null
    back = store.read_realized(DS)
    assert back.columns == REALIZED_COLUMNS and back.schema["rmsse"] == pl.Float64
    assert back.filter(pl.col("as_of") == OTHER)["rmsse"].to_list() == [0.25, 0.5, 0.75] * 2
    assert back.filter(pl.col("as_of") == AS_OF)["rmsse"].null_count() == 6
    with pytest.raises(ForecastContractError, match="rmsse out of range"):
        store.write_realized(DS, realized_frame([AS_OF]).with_columns(rmsse=pl.lit(-1.0)))


def test_realized_seasonal_naive_rmsse_round_trips_and_rows_without_it_read_as_unknown(backend):
    """rmsse_snaive (seasonal naive's RMSSE on RMSSE's points, what an RMSSE verdict compares with) round-trips on
    every backend; rows written without it read back as null; a negative one is refused."""
    store = backend.store
    store.write_realized(DS, realized_frame([OTHER]).with_columns(rmsse=pl.lit(0.5), rmsse_snaive=0.5 * pl.col("step")))
    store.write_realized(DS, realized_frame([AS_OF]))  # an older flowcast's rows: null
    back = store.read_realized(DS)
    assert back.columns == REALIZED_COLUMNS and back.schema["rmsse_snaive"] == pl.Float64
    assert back.filter(pl.col("as_of") == OTHER)["rmsse_snaive"].to_list() == [0.5, 1.0, 1.5] * 2
    assert back.filter(pl.col("as_of") == AS_OF)["rmsse_snaive"].null_count() == 6
    with pytest.raises(ForecastContractError, match="rmsse_snaive out of range"):
        store.write_realized(DS, realized_frame([AS_OF]).with_columns(rmsse_snaive=pl.lit(-1.0)))


def test_realized_lookahead_round_trips(backend):
    """lookahead (forecasts by a model trained after their as_of) round-trips on every backend, and is written
    again identically (an older partition without it: the test above)."""
    store = backend.store
    store.write_realized(DS, realized_frame([OTHER]).with_columns(lookahead=pl.col("step") == 1))
    store.write_realized(DS, realized_frame([AS_OF]))  # not known: null
    back = store.read_realized(DS)
    assert back.columns == REALIZED_COLUMNS and back.schema["lookahead"] == pl.Boolean
    assert back.filter(pl.col("as_of") == OTHER)["lookahead"].to_list() == [True, False, False] * 2
    assert back.filter(pl.col("as_of") == AS_OF)["lookahead"].null_count() == 6
    store.write_realized(DS, back.filter(pl.col("as_of") == OTHER))
    assert store.read_realized(DS).equals(back)


def test_realized_accuracy_of_forecasts_replaced_or_removed_while_they_were_scored_is_not_written(backend):
    """Regression (two runs at once): a run scores the as_of it read, then writes the rows. A backfill with
    overwrite that re-published that as_of meanwhile (removing the realized rows of the forecasts it replaced),
    or a `flowcast gc` that removed it, was followed by the scoring run's write: realized rows for forecasts no
    longer published (another model's errors under the new publish), or for an as_of with no publish at all.
    With `scored` (the content hash of what each as_of's rows scored) such an as_of is left out, under the key's
    lock; the others are written."""
    store = backend.store
    first = publish(store, make_forecast(1, N, H, AS_OF))
    other = publish(store, make_forecast(7, N, H, OTHER), as_of=OTHER, variant=7)
    scored = {AS_OF: first.content_hash, OTHER: other.content_hash}  # what a scoring run read
    publish(store, make_forecast(2, N, H, AS_OF), variant=2)  # another run replaces AS_OF meanwhile
    assert store.write_realized(DS, realized_frame([OTHER, AS_OF]), scored=scored) == 6
    assert store.read_realized(DS)["as_of"].unique().to_list() == [OTHER]  # AS_OF's rows scored lstm-v1
    assert store.delete(DS, OTHER)  # gc removes OTHER meanwhile
    assert store.write_realized(DS, realized_frame([OTHER]), scored=scored) == 0
    assert store.read_realized(DS).height == 0
    now = {AS_OF: store.receipt_of(DS, AS_OF)["content_hash"]}
    assert store.write_realized(DS, realized_frame([AS_OF]), scored=now) == 6  # what is published: written
    assert backend.reopen().read_realized(DS)["as_of"].unique().to_list() == [AS_OF]


def test_a_publish_records_where_its_models_training_data_ended_so_lookahead_outlives_the_version(backend):
    """Regression: realized accuracy's `lookahead` (the forecasts' model was trained on data after their as_of:
    they saw the actuals they are scored on) was read from the registry only; once the version was removed
    (`flowcast gc --version`, a rebuilt registry) it was null, and the verdict counted those forecasts as honest
    without a word. A publish records its model's training as_of in its receipt; `trained_as_of` reads it for a
    version the registry no longer has, and a verdict over rows still unknown says so."""
    from flowcast.evaluation.realized import assess_decay, flag_lookahead
    from flowcast.ops.accuracy import trained_as_of, unflagged

    store = backend.store
    later = datetime(2024, 6, 1)  # a model trained on data up to June forecast March (a backfill)
    publish(store, make_forecast(1, N, H, AS_OF), variant=1, trained_as_of=later)
    publish(store, make_forecast(2, N, H, OTHER), as_of=OTHER, variant=2)  # a baseline, or an older flowcast
    assert backend.reopen().receipt_of(DS, AS_OF)["trained_as_of"].startswith("2024-06-01T00:00")
    assert not backend.reopen().receipt_of(DS, OTHER).get("trained_as_of")

    class GoneRegistry:  # every version removed
        def get(self, version, fetch=True):
            raise KeyError(version)

    rows = realized_frame([AS_OF, OTHER]).with_columns(
        pl.when(pl.col("as_of") == AS_OF).then(pl.lit("lstm-v1")).otherwise(pl.lit("lstm-v2")).alias("model_version"))
    trained = trained_as_of(GoneRegistry(), ["lstm-v1", "lstm-v2"], store=backend.reopen(), dataset=DS,
                            published=unflagged(rows))
    assert trained == {"lstm-v1": later, "lstm-v2": None}
    flagged = flag_lookahead(rows, trained)
    assert flagged.filter(pl.col("as_of") == AS_OF)["lookahead"].unique().to_list() == [True]
    assert flagged.filter(pl.col("as_of") == OTHER)["lookahead"].null_count() == flagged.height // 2
    d = assess_decay(flagged, {}, dataset=DS, window=5, tolerance=0.25, min_points=1)
    assert d.lookahead == 1 and d.lookahead_unknown == 1
    assert any("1 judged as_of (2024-02-01) has no record of whether its model was "
               "trained on data after it" in r for r in d.reasons)


def test_a_publish_records_whether_its_model_saw_past_its_as_of_and_realized_accuracy_reads_it_first(backend):
    """lookahead51: a forecast of 2024-03-01 by a model retrained on 2024-06-01 of data that ended before March
    (published without the forecast's warning) was marked lookahead: realized accuracy compared the training run's
    as_of with the forecast's. A publish records the warning's decision (`flows.forecast.saw_after`) as its
    receipt's `lookahead`; `recorded_lookahead` reads it and `flag_lookahead` takes it over the as_of comparison,
    either way. A receipt without it (an older flowcast's) is flagged from the as_ofs as before."""
    from flowcast.evaluation.realized import flag_lookahead
    from flowcast.ops.accuracy import recorded_lookahead, unflagged

    store = backend.store
    later = datetime(2024, 6, 1)
    publish(store, make_forecast(1, N, H, AS_OF), variant=1, trained_as_of=later, lookahead=False)
    publish(store, make_forecast(2, N, H, OTHER), as_of=OTHER, variant=2, trained_as_of=later)  # an older receipt
    third = datetime(2024, 1, 1)
    publish(store, make_forecast(3, N, H, third), as_of=third, variant=3, trained_as_of=AS_OF, lookahead=True)
    reopened = backend.reopen()
    assert [reopened.receipt_of(DS, a)["lookahead"] for a in (AS_OF, OTHER, third)] == ["false", "", "true"]

    rows = realized_frame([AS_OF, OTHER, third]).with_columns(
        pl.col("as_of").replace_strict({AS_OF: "lstm-v1", OTHER: "lstm-v2", third: "lstm-v3"},
                                       return_dtype=pl.Utf8).alias("model_version"))
    recorded = recorded_lookahead(reopened, DS, unflagged(rows))
    assert recorded == {(AS_OF, "lstm-v1"): False, (third, "lstm-v3"): True}
    # of another version than its publish's: not that publish's decision
    assert recorded_lookahead(reopened, DS, pl.DataFrame({"as_of": [AS_OF], "model_version": ["lstm-v2"]})) == {}
    # v1, v2 trained after their as_ofs, v3 before its: each recorded flag is the only reason for its row's value
    trained = {"lstm-v1": later, "lstm-v2": later, "lstm-v3": datetime(2023, 1, 1)}
    flagged = flag_lookahead(rows, trained, recorded)
    assert {a: flagged.filter(pl.col("as_of") == a)["lookahead"].unique().to_list() for a in (AS_OF, OTHER, third)} \
        == {AS_OF: [False], OTHER: [True], third: [True]}
    assert flagged.columns == [*rows.columns, "lookahead"]  # no helper column left behind


def test_rows_marked_lookahead_that_their_receipt_says_did_not_see_past_their_as_of_are_unmarked_once(backend):
    """fixC52: rows scored before realized accuracy read the receipt's `lookahead` (lookahead51) were marked from
    the training run's as_of, and kept that mark (`flag_lookahead` keeps a stored value) after the receipt said the
    model did not see past the as_of. `unmark_recorded_honest` clears such a mark, on every backend; a mark the
    receipt confirms, or one whose receipt records nothing (an older flowcast's), stays; a second call writes
    nothing."""
    from flowcast.ops.accuracy import unmark_recorded_honest

    store = backend.store
    later, third = datetime(2024, 6, 1), datetime(2024, 1, 1)
    publish(store, make_forecast(1, N, H, AS_OF), variant=1, trained_as_of=later, lookahead=False)
    publish(store, make_forecast(2, N, H, OTHER), as_of=OTHER, variant=2, trained_as_of=later)  # no flag recorded
    publish(store, make_forecast(3, N, H, third), as_of=third, variant=3, trained_as_of=later, lookahead=True)
    versions = {AS_OF: "lstm-v1", OTHER: "lstm-v2", third: "lstm-v3"}
    lstm = pl.col("model") == "lstm"
    store.write_realized(DS, realized_frame([third, OTHER, AS_OF]).with_columns(  # marked from `later` > each as_of
        pl.when(lstm).then(pl.col("as_of").replace_strict(versions, return_dtype=pl.Utf8)).alias("model_version"),
        pl.when(lstm).then(pl.lit(True)).alias("lookahead")))
    before = store.read_realized(DS)

    def marks(frame: pl.DataFrame) -> dict[tuple[datetime, str], list[bool | None]]:
        return {(a, m): frame.filter((pl.col("as_of") == a) & (pl.col("model") == m))["lookahead"].to_list()
                for a in versions for m in ("lstm", "seasonal_naive")}

    assert unmark_recorded_honest(store, DS, before) == [AS_OF]
    after = backend.reopen().read_realized(DS)
    assert marks(after) == {**marks(before), (AS_OF, "lstm"): [False] * 3}
    assert marks(before)[(AS_OF, "lstm")] == [True] * 3 and marks(after)[(AS_OF, "seasonal_naive")] == [None] * 3
    assert after.drop("lookahead").equals(before.drop("lookahead"))  # nothing else changed
    assert unmark_recorded_honest(backend.reopen(), DS, after) == []  # idempotent
    assert backend.reopen().read_realized(DS).equals(after)


_REWRITER = """
import sys
from datetime import datetime

import polars as pl
from publisher import store_from_arg

spec, path, dataset, as_of, digest = sys.argv[1:6]
print(store_from_arg(spec).write_realized(dataset, pl.read_parquet(path), scored={datetime.fromisoformat(as_of): digest}))
"""


def test_unmarking_lookahead_keeps_the_rows_a_scoring_wrote_after_they_were_read(db_backend, tmp_path):
    """store53: `unmark_recorded_honest` rewrote an as_of's realized rows from the rows its caller had read, without
    a lock: a scoring of corrected actuals that wrote the as_of in between (another process) was overwritten by the
    older rows. Here that scoring is a real second process, stopped while it holds the locks every realized-accuracy
    writer takes (its rows written, not yet in place or committed); the unmarking waits for them, then clears the mark
    of the rows that scoring wrote, whose values survive."""
    from proc_state import stopped

    from flowcast.ops.accuracy import unmark_recorded_honest

    store = db_backend.store
    r = publish(store, make_forecast(1, N, H, AS_OF), trained_as_of=datetime(2024, 6, 1), lookahead=False)
    lstm = pl.col("model") == "lstm"
    store.write_realized(DS, realized_frame([AS_OF]).with_columns(pl.when(lstm).then(pl.lit(True)).alias("lookahead")))
    read = store.read_realized(DS)  # what a run read before the other scoring wrote
    rescored = read.with_columns(pl.col("mae") + 10.0, pl.col("n") + 5)
    rescored.write_parquet(tmp_path / "rescored.parquet")
    fault = "publish:before_rename" if db_backend.name == "embedded" else "publish:realized_before_commit"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "FLOWCAST_FAULT": fault, "FLOWCAST_FAULT_SIGNAL": "SIGSTOP",
           "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root / "tests" / "publish_faults")])}
    writer = subprocess.Popen([sys.executable, "-c", _REWRITER, db_backend.spec, str(tmp_path / "rescored.parquet"),
                               DS, AS_OF.isoformat(), r.content_hash], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    done: list[list[datetime]] = []
    unmarking = threading.Thread(target=lambda: done.append(unmark_recorded_honest(db_backend.reopen(), DS, read)),
                                 daemon=True)
    try:
        assert stopped(writer), writer.communicate()
        unmarking.start()
        unmarking.join(2.0)
        assert unmarking.is_alive() and not done  # it waits for the writer's locks
    finally:
        if writer.poll() is None:
            os.kill(writer.pid, signal.SIGCONT)
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0 and out.strip() == str(read.height), err
    unmarking.join(120)
    assert done == [[AS_OF]]
    after = db_backend.reopen().read_realized(DS)
    assert after.drop("lookahead").equals(rescored.drop("lookahead"))  # the later writer's rows survive
    assert after.filter(lstm)["lookahead"].to_list() == [False] * 3 and after.filter(~lstm)["lookahead"].is_null().all()



def test_unmarking_several_as_ofs_takes_one_connection_or_one_views_sync(db_backend, monkeypatch):
    """store54: `unmark_recorded_honest` rewrote each as_of by a call of its own, which opened a connection (PostgreSQL)
    or synced the DuckDB views (embedded) each time; one call rewrites them all, each under its own locks (and on
    PostgreSQL in its own transaction), on one connection, the views synced once. Counted at those methods."""
    from flowcast.ops.accuracy import unmark_recorded_honest

    store = db_backend.store
    days = [datetime(2024, 1, d) for d in (1, 2, 3)]
    for i, day in enumerate(days, 1):
        publish(store, make_forecast(i, N, H, day), as_of=day, variant=i, trained_as_of=datetime(2024, 6, 1),
                lookahead=False)
    lstm = pl.col("model") == "lstm"
    store.write_realized(DS, realized_frame(days).with_columns(
        pl.when(lstm).then(pl.format("lstm-v{}", pl.col("as_of").dt.day())).alias("model_version"),
        pl.when(lstm).then(pl.lit(True)).alias("lookahead")))
    before = store.read_realized(DS)
    method = "_conn" if db_backend.name == "postgres" else "sync_views"
    real, calls = getattr(type(store), method), []

    def counted(self, *args, **kwargs):
        calls.append(args[0] if args else "sync")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(store), method, counted)
    assert unmark_recorded_honest(store, DS, before) == days
    assert len([c for c in calls if c.startswith(("rewrite", "sync"))]) == 1, calls
    monkeypatch.undo()
    after = db_backend.reopen().read_realized(DS)
    assert after.filter(lstm)["lookahead"].to_list() == [False] * 9
    assert after.drop("lookahead").equals(before.drop("lookahead"))

@pytest.mark.parametrize("columns", [["rmsse"], ["rmsse_snaive"], ["n_mase", "lookahead", "rmsse", "rmsse_snaive"]])
def test_a_postgres_realized_table_an_older_flowcast_created_gets_the_later_columns(pg_url, pg_schema, columns):
    """Regression: the columns added since the realized table was first created (n_mase, lookahead, now rmsse) were
    added only when the tables did not exist yet, so a store an older flowcast created failed every write and read
    of realized accuracy ('column "rmsse" does not exist'). Opening the store adds the missing ones; older rows
    read them as null."""
    import psycopg

    from flowcast.store.postgres import PostgresStore

    old = PostgresStore(pg_url, schema=pg_schema)
    old.write_realized(DS, realized_frame([AS_OF]))
    with psycopg.connect(pg_url, autocommit=True) as con:  # the table as an older flowcast created it
        for c in columns:
            con.execute(f"ALTER TABLE {pg_schema}.realized DROP COLUMN {c}")
    store = PostgresStore(pg_url, schema=pg_schema)
    assert store.read_realized(DS)[columns].null_count().row(0) == (6,) * len(columns)
    store.write_realized(DS, realized_frame([OTHER]).with_columns(rmsse=pl.lit(0.5), n_mase=pl.col("n")))
    back = store.read_realized(DS)
    assert back.columns == REALIZED_COLUMNS and back.filter(pl.col("as_of") == OTHER)["rmsse"].to_list() == [0.5] * 6


_OPEN_AND_READ = """
import sys
from flowcast.store.postgres import PostgresStore
print(PostgresStore(sys.argv[1], schema=sys.argv[2]).read_realized(sys.argv[3]).height, flush=True)
"""


def test_a_postgres_store_killed_while_it_adds_a_later_column_is_migrated_by_the_next_open(pg_url, pg_schema):
    """faults20: a store an older flowcast created (realized without rmsse_snaive) whose table a reader holds (an
    open transaction: a dashboard, a person's psql): the process that opens it (any flowcast command) waits in its
    ALTER TABLE. SIGKILLed there, it changed nothing (the migration is one transaction; its server session, waiting
    for the lock, rolls back once it gets it) and the next open adds the column and reads the old rows (null).
    The wait itself was for good and without a word, every later reader of the table queued behind it: it lasts
    store.pg_wait_s now, then fails naming the sessions that hold the table and what to do, nothing changed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psycopg

    from flowcast.errors import PublishError
    from flowcast.store.postgres import PostgresStore

    PostgresStore(pg_url, schema=pg_schema).write_realized(DS, realized_frame([AS_OF]))
    with psycopg.connect(pg_url, autocommit=True) as con:  # the table as an older flowcast created it
        con.execute(f"ALTER TABLE {pg_schema}.realized DROP COLUMN rmsse_snaive")

    def waiting_alters() -> list:
        with psycopg.connect(pg_url, autocommit=True) as con:
            return con.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE "
                               "%s", [f"ALTER TABLE {pg_schema}.realized%"]).fetchall()

    def column() -> list:
        with psycopg.connect(pg_url, autocommit=True) as con:
            return con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND "
                               "table_name = 'realized' AND column_name = 'rmsse_snaive'", [pg_schema]).fetchall()

    reader = psycopg.connect(pg_url, application_name="a dashboard")
    try:
        reader.execute(f"SELECT count(*) FROM {pg_schema}.realized").fetchone()  # its transaction stays open
        env = {**os.environ, "FLOWCAST_STORE__PG_WAIT_S": "600"}
        child = subprocess.Popen([sys.executable, "-c", _OPEN_AND_READ, pg_url, pg_schema, DS], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not waiting_alters() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.2)
        assert waiting_alters(), child.communicate()
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        with pytest.raises(PublishError) as err:
            PostgresStore(pg_url, schema=pg_schema, wait_s=1).read_realized(DS)
        said = " ".join(str(err.value).split())
        assert f"{pg_schema}.realized" in said and "realized.rmsse_snaive" in said and "waited 1 s" in said, said
        assert f"pid {reader.info.backend_pid} (a dashboard, idle in transaction" in said and "nothing was changed" in said
        assert column() == []
    finally:
        reader.rollback()
        reader.close()
    deadline = time.monotonic() + 30
    while waiting_alters() and time.monotonic() < deadline:  # the killed client's session, rolling back
        time.sleep(0.2)
    back = PostgresStore(pg_url, schema=pg_schema).read_realized(DS)
    assert back.height == 6 and back["rmsse_snaive"].null_count() == 6 and column() == [("rmsse_snaive",)]


def test_a_postgres_publish_adding_a_value_column_waits_for_a_reader_store_pg_wait_s_then_names_it(pg_url, pg_schema):
    """faults20: a publish with a value column the table lacks (a new interval level) adds it with an ALTER TABLE,
    which a reader's open transaction on the forecasts made wait for good, without a word (and every later reader
    of the table queued behind it). It waits store.pg_wait_s, then fails naming the column and the session;
    nothing changed; with the reader gone the publish adds it and lands."""
    import psycopg

    from flowcast.store.postgres import PostgresStore

    publish(PostgresStore(pg_url, schema=pg_schema), make_forecast(1, 2, H, AS_OF))
    wider = make_forecast(2, 2, H, OTHER).with_columns((pl.col("y_hat") - 2).alias("y_hat_q5"))
    reader = psycopg.connect(pg_url, application_name="a dashboard")
    try:
        reader.execute(f"SELECT count(*) FROM {pg_schema}.forecasts").fetchone()  # its transaction stays open
        with pytest.raises(PublishError) as err:
            publish(PostgresStore(pg_url, schema=pg_schema, wait_s=1), wider, as_of=OTHER, variant=2)
        said = " ".join(str(err.value).split())
        assert "forecasts.y_hat_q5" in said and "waited 1 s (store.pg_wait_s)" in said, said
        assert f"pid {reader.info.backend_pid} (a dashboard, idle in transaction" in said and "nothing was changed" in said
    finally:
        reader.rollback()
        reader.close()
    store = PostgresStore(pg_url, schema=pg_schema)
    assert not store.has(DS, OTHER)
    publish(store, wider, as_of=OTHER, variant=2)
    assert store.read(dataset=DS, as_of=OTHER)["y_hat_q5"].null_count() == 0


def test_a_postgres_csv_read_paused_after_its_first_batch_does_not_block_a_publish_adding_a_value_column(
        pg_url, pg_schema):
    """fixC53: `read_batches` kept its transaction and COPY open as long as its consumer took (`flowcast forecasts
    --format csv | less`): its lock on the table made a publish adding a value column wait store.pg_wait_s, then fail.
    The COPY is spooled at the server's speed and the transaction ends before the first batch is handed out."""
    from flowcast.store.postgres import PostgresStore

    store = PostgresStore(pg_url, schema=pg_schema)
    publish(store, make_forecast(1, 4, H, AS_OF))
    whole = store.read()
    batches = store.read_batches(size=5)
    try:
        first = next(batches)  # the consumer pauses here
        wider = make_forecast(2, 2, H, OTHER).with_columns((pl.col("y_hat") - 2).alias("y_hat_q5"))
        publish(PostgresStore(pg_url, schema=pg_schema, wait_s=1), wider, as_of=OTHER, variant=2)
        assert pl.concat([first, *batches]).equals(whole)  # the snapshot of the read: without the later publish
    finally:
        batches.close()
    assert store.read(dataset=DS, as_of=OTHER)["y_hat_q5"].null_count() == 0


def test_a_postgres_read_of_the_first_rows_walks_an_index_in_published_order(pg_url, pg_schema):
    """fixC53: the reads order text COLLATE "C" (bytes, as polars), which the primary key's index, in the
    database's collation, cannot serve: `--limit 50` scanned and sorted every matched row. An index in that
    collation serves it, with a filter too."""
    import psycopg
    from psycopg import sql

    from flowcast.store.postgres import PostgresStore

    store = PostgresStore(pg_url, schema=pg_schema)
    publish(store, make_forecast(1, 3000, H, AS_OF))
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"ANALYZE {pg_schema}.forecasts")
        for asked in ({}, {"dataset": DS}):
            where, params = store._where(**asked)
            query = sql.SQL("EXPLAIN ") + store._select(["unique_id", "y_hat"], where, sql.SQL(" LIMIT 50"))
            plan = "\n".join(r[0] for r in con.execute(query, params))
            assert "Index Scan using forecasts_read_idx" in plan and "Sort" not in plan, (asked, plan)


def test_a_postgres_check_of_which_value_columns_hold_a_value_stops_at_the_first_one(pg_url, pg_schema):
    """fixC53: whether a value column holds a value in some matched row (`read(rows=)`, `read_batches`) was a
    bool_or over every matched row; each column's EXISTS stops at its first value. The rows read are counted in
    the transaction's own statistics (pg_stat_xact_user_tables)."""
    import psycopg

    from flowcast.store.postgres import PostgresStore

    store = PostgresStore(pg_url, schema=pg_schema)
    fc = make_forecast(1, 3000, H, AS_OF)
    publish(store, fc.with_columns((pl.col("y_hat") - 2).alias("y_hat_q5")))
    assert fc.height == 18_000
    with psycopg.connect(pg_url, autocommit=True) as con, con.transaction():
        for asked in ({}, {"dataset": DS}):
            where, params = store._where(**asked)
            assert store._filled(con, ["y_hat_q5"], where, params) == ["y_hat_q5"]
        (got,) = con.execute("SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM "
                             "pg_stat_xact_user_tables WHERE schemaname = %s AND relname = 'forecasts'",
                             [pg_schema]).fetchone()
    assert got < 1_000, got  # bool_or read all 18,000 rows, twice


def _key_lock_free(backend, dataset: str, as_of: datetime) -> bool:
    """Whether another writer could take the key's lock, the one a publish takes, now (tried without waiting, from
    another handle: a lock file of its own, another PostgreSQL session)."""
    if backend.name == "embedded":
        from flowcast.store.parquet import partition_name

        with backend.reopen().data.lock(f"forecasts.dataset={dataset}.{partition_name(as_of)}", blocking=False) as got:
            return got
    import json

    import psycopg

    spec = json.loads(backend.spec)
    with psycopg.connect(spec["url"], autocommit=True) as con:  # one statement, one transaction: released after it
        row = con.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))",
                          ["|".join([spec["pg_schema"], "forecasts", dataset, as_of.isoformat()])]).fetchone()
    return bool(row and row[0])


def test_a_deletes_then_runs_under_the_keys_lock_once_the_key_is_removed(db_backend):
    """Regression: gc removed a deleted key's publish record after the delete had let the key's lock go, so a
    publish that landed (and recorded itself) in between lost its record. `delete(..., then=f)` calls f once the key
    is removed (on PostgreSQL after the delete's commit: pg43), the key's lock still held: no publish of the key can
    land before f returns. Not called when nothing was removed."""
    store = db_backend.store
    publish(store, make_forecast(1, N, H, AS_OF))
    seen = []

    def then() -> None:
        seen.append(_key_lock_free(db_backend, DS, AS_OF))

    assert _key_lock_free(db_backend, DS, AS_OF)
    assert store.delete(DS, AS_OF, then=then)
    assert seen == [False] and not store.has(DS, AS_OF)  # called under the key's lock
    assert not store.delete(DS, AS_OF, then=then) and len(seen) == 1  # nothing removed: not called
    assert _key_lock_free(db_backend, DS, AS_OF)


def test_unless_published_calls_then_under_the_keys_lock_only_while_the_key_holds_nothing(db_backend):
    """pg43: gc removes the publish record a delete killed before its `then` left through `unless_published`: f is
    called under the key's lock (no publish of the key lands before it returns) when the key holds nothing, and not
    when it holds a publish (one landed since gc listed the record)."""
    store = db_backend.store
    seen = []

    def then(as_of: datetime) -> Callable[[], None]:
        return lambda: seen.append(_key_lock_free(db_backend, DS, as_of))

    assert store.unless_published(DS, AS_OF, then(AS_OF)) and seen == [False]  # nothing published (no table yet)
    publish(store, make_forecast(1, N, H, AS_OF))
    assert not store.unless_published(DS, AS_OF, then(AS_OF)) and seen == [False]
    assert store.unless_published(DS, OTHER, then(OTHER)) and seen == [False, False]
    assert _key_lock_free(db_backend, DS, AS_OF) and _key_lock_free(db_backend, DS, OTHER)


def test_while_published_runs_under_the_keys_lock_only_while_the_key_holds_that_publish(db_backend):
    """gc43: a publish leaves the key's lock before it records itself, and a gc that deleted the key in between left
    the record of forecasts no longer there. `while_published(..., content_hash, f)` calls f under the key's lock (the
    one `publish` and `delete` take) only while the key holds the publish of that content hash."""
    store = db_backend.store
    first = publish(store, make_forecast(1, N, H, AS_OF)).content_hash
    seen = []

    def then() -> None:
        seen.append(_key_lock_free(db_backend, DS, AS_OF))

    assert store.while_published(DS, AS_OF, first, then) and seen == [False]  # called under the key's lock
    second = publish(store, make_forecast(2, N, H, AS_OF), variant=2).content_hash
    assert not store.while_published(DS, AS_OF, first, then) and len(seen) == 1  # replaced since: not called
    assert store.delete(DS, AS_OF)
    assert not store.while_published(DS, AS_OF, second, then) and len(seen) == 1  # deleted since: not called
    assert _key_lock_free(db_backend, DS, AS_OF)


def test_while_published_of_a_run_is_not_called_once_another_run_published_the_same_forecasts(backend):
    """lock44: `while_published` compared the content hash alone, so a run whose publish another run replaced with
    these very forecasts (the same hash) still found the key holding its publish: its late record went over the
    record of the run whose publish the key holds. With `run_id`, f is called only while the key holds the publish of
    that run; without it, the content hash alone is compared, as before."""
    store = backend.store
    digest = publish(store, make_forecast(1, N, H, AS_OF), run_id="first").content_hash
    assert publish(store, make_forecast(1, N, H, AS_OF), run_id="second").content_hash == digest
    called: list[str] = []
    assert not store.while_published(DS, AS_OF, digest, lambda: called.append("first"), run_id="first")
    assert store.while_published(DS, AS_OF, digest, lambda: called.append("second"), run_id="second")
    assert store.while_published(DS, AS_OF, digest, lambda: called.append("any"))
    assert called == ["second", "any"]


def test_current_publishes_names_every_key_with_a_token_another_publish_changes(backend):
    """gc43: gc reads each receipt once and again only for a key whose token changed (`ops.retention.PublishIndex`)."""
    store = backend.store
    assert store.current_publishes() == {}
    publish(store, make_forecast(1, N, H, AS_OF))
    publish(store, make_forecast(7, N, H, OTHER), as_of=OTHER, variant=7)
    before = store.current_publishes()
    assert sorted(before) == [(DS, OTHER), (DS, AS_OF)]
    publish(store, make_forecast(2, N, H, AS_OF), variant=2, run_id="run-again")
    after = store.current_publishes()
    assert after[(DS, OTHER)] == before[(DS, OTHER)] and after[(DS, AS_OF)] != before[(DS, AS_OF)]
    assert store.delete(DS, OTHER) and list(store.current_publishes()) == [(DS, AS_OF)]


def test_writers_of_one_key_of_a_store_in_an_object_store_queue_on_its_lock(s3_url):
    """gc43: on an object store (`store.url = "s3://..."`) writers of one key took no lock (`ParquetDataset.lock` was a
    no-op there), so gc's delete of a key and its record removal, a publish's record (`while_published`) and
    `publish(if_absent=True)` were not guarded: a delete landed while another writer held the key. They take the
    key's lock object (a conditional PUT, the registry's `FileStore.lock`): the delete waits for the holder."""
    import threading

    url, opts = s3_url
    store = EmbeddedStore(url, storage_options=opts)
    digest = publish(store, make_forecast(1, N, H, AS_OF)).content_hash
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        inside.set()
        release.wait(60)

    holder = threading.Thread(target=store.while_published, args=(DS, AS_OF, digest, hold))
    holder.start()
    deleted: list[bool] = []
    try:
        assert inside.wait(60)
        other = EmbeddedStore(url, storage_options=opts)  # another writer (another machine's)
        deleter = threading.Thread(target=lambda: deleted.append(other.delete(DS, AS_OF)))
        deleter.start()
        deleter.join(3)
        assert deleter.is_alive() and deleted == [] and store.has(DS, AS_OF), "the delete did not wait for the lock"
    finally:
        release.set()
        holder.join(60)
    deleter.join(60)
    assert deleted == [True] and not store.has(DS, AS_OF)


def test_a_writer_whose_object_store_key_lock_was_broken_deletes_nothing(s3_url):
    """lock43: a holder of a key's lock object checked that it still held it before an upload, not before a delete:
    a writer stopped longer than store.lock_timeout (a waiter broke its lock and took it) went on and deleted the key
    (gc's delete, a publish's removal of the realized accuracy it replaces) under the other writer's lock. It fails
    naming the lock, and the key is left as it is."""
    from flowcast.errors import LockLostError
    from flowcast.store.embedded import _key_lock
    from flowcast.store.fs import FileStore

    url, opts = s3_url
    store = EmbeddedStore(url, storage_options=opts)
    publish(store, make_forecast(1, N, H, AS_OF))
    store.write_realized(DS, realized_frame([AS_OF]))
    files = FileStore(url, storage_options=opts)
    name = _key_lock("realized", DS, AS_OF)
    with store.data.lock(name):
        files.remove(f".locks/{name}")  # what a waiter that broke it does, then takes it
        files.write_text(f".locks/{name}", "0a1b2c other-machine 42")
        with pytest.raises(LockLostError, match=rf"lost the lock .*/\.locks/{name} \(it is now held by 0a1b2c "
                                                r"other-machine 42\): realized accuracy of dataset "
                                                rf"{DS} as_of .* was not removed"):
            store.data.remove_key("realized", DS, AS_OF)
    assert store.read_realized(DS, AS_OF).height > 0 and store.has(DS, AS_OF)
    assert files.read_text(f".locks/{name}") == "0a1b2c other-machine 42"  # the new holder's lock left alone


def _break_after(store, obj, method: str, name: str, *, table: str | None = None) -> None:
    """Make `obj.method` (the real one: the key's change or check under its lock; of `table` alone, when given) hand
    the object-store lock `name` to another writer once it returned: what a waiter that broke it (its holder stopped
    past store.lock_timeout) does, then takes it."""
    from flowcast.store.fs import FileStore

    files = FileStore(store.location, storage_options=store.data.storage_options)
    real = getattr(obj, method)

    def then_broken(*args, **kwargs):
        out = real(*args, **kwargs)
        if table is not None and args[0] != table:
            return out
        files.remove(f".locks/{name}")
        files.write_text(f".locks/{name}", "0a1b2c other-machine 42")
        return out

    setattr(obj, method, then_broken)


@pytest.mark.parametrize("call", ["delete", "unless_published", "while_published"])
def test_what_follows_a_keys_change_is_not_done_once_its_object_store_lock_was_broken(s3_url, call):
    """lock44: `then()` of delete, unless_published and while_published (gc's removal of a publish record, a
    publish's record) ran without checking that this writer still held the key's lock object: one broken between the
    key's change (or check) and `then` (this writer stopped past store.lock_timeout) let `then` remove or write the
    record under another writer's lock. It fails naming the lock and the key, and `then` is not called."""
    from flowcast.errors import LockLostError
    from flowcast.store.embedded import _key_lock

    url, opts = s3_url
    store = EmbeddedStore(url, storage_options=opts)
    digest = publish(store, make_forecast(1, N, H, AS_OF)).content_hash
    name = _key_lock("forecasts", DS, AS_OF if call != "unless_published" else OTHER)
    called: list[bool] = []
    then = lambda: called.append(True)
    done = "written" if call == "while_published" else "removed"
    lost = (rf"lost the lock .*/\.locks/{name} \(it is now held by 0a1b2c other-machine 42\): the publish record of "
            rf"dataset {DS} as_of .* was not {done}")
    if call == "delete":
        _break_after(store, store.data, "remove_key", name, table="forecasts")  # once the forecasts are gone
        with pytest.raises(LockLostError, match=lost):
            store.delete(DS, AS_OF, then=then)
    elif call == "unless_published":
        _break_after(store, store, "has", name)
        with pytest.raises(LockLostError, match=lost):
            store.unless_published(DS, OTHER, then)
    else:
        _break_after(store, store.data, "metadata", name)
        with pytest.raises(LockLostError, match=lost):
            store.while_published(DS, AS_OF, digest, then)
    assert called == []
    assert store.data.fs.cat_file(f"{store.location}/.locks/{name}") == b"0a1b2c other-machine 42"  # left alone


def _two_stale_locks(s3_url: tuple[str, dict], since: str) -> tuple[EmbeddedStore, Any, str, str]:
    """An object store's two lock objects of keys of `sales`, each with its claim, unwritten for over its
    lock_timeout (stale): (the store, its files, the one the test writes again, what it writes there: renewed by its
    holder, or, `since` 'broken and taken', another writer's)."""
    import time

    from flowcast.store.fs import FileStore

    url, opts = s3_url
    store = EmbeddedStore(url, storage_options=opts, lock_timeout=0.5)
    files = FileStore(url, storage_options=opts)
    live, dead = ".locks/forecasts.dataset=sales.live", ".locks/forecasts.dataset=sales.dead"
    for lock in (live, dead):
        files.write_text(lock, f"0{lock[-4:]}0 host-a 4242 7")
        files.write_text(f"{lock}.claims/0{lock[-4:]}0", "")
    time.sleep(2.2)  # over lock_timeout, less the 1 s the whole seconds of the server's times cost: both stale
    return store, files, live, "0live0 host-a 4242 8" if since == "renewed" else "0b0b0b other-machine 42"


@pytest.mark.parametrize("since", ["renewed", "broken and taken"])
def test_gc_leaves_a_stale_lock_object_written_again_after_it_listed_it(s3_url, since):
    """lock44: gc listed the lock objects unwritten for store.lock_timeout, then deleted them: one renewed by its
    holder, or broken by a waiter that took it, between the listing and the delete was deleted all the same, and a
    third writer could go in beside its holder. It is deleted only while it is the object listed (read again just
    before: its ETag); a stale one unwritten since still goes, with its claim, and the live one keeps its claim."""
    store, files, live, written = _two_stale_locks(s3_url, since)
    real = store.data.fs.find

    def then_written(*args, **kwargs):
        out = real(*args, **kwargs)
        files.write_text(live, written)  # after the listing, before the delete
        return out

    store.data.fs.find = then_written
    try:
        assert store.remove_idle_locks() == 1
    finally:
        del store.data.fs.find  # (fsspec shares one file system object per set of options)
    assert files.read_text(live) == written
    assert files.list(".locks") == [live.rsplit("/", 1)[1], f"{live.rsplit('/', 1)[1]}.claims"]


@pytest.mark.parametrize("since", ["renewed", "broken and taken"])
def test_gc_leaves_a_stale_lock_object_written_again_between_its_last_read_and_the_delete(s3_url, since,
                                                                                        monkeypatch):
    """lockB44: gc read a stale lock object's ETag again just before it deleted it (lock44), then deleted it without a
    condition: one renewed by its holder, or broken and taken by a waiter, in that one request's gap was deleted all
    the same. On S3 the delete is conditional on the ETag read (DeleteObject If-Match): refused (412), it is left with
    its claim; a stale one unwritten since still goes."""
    store, files, live, written = _two_stale_locks(s3_url, since)
    real = store.data.fs.info
    read_again: list[str] = []

    def then_written(path, **kwargs):
        out = real(path, **kwargs)
        if path.endswith(live) and not read_again:  # gc's last read of the live lock, unchanged: then it is written
            read_again.append(path)
            files.write_text(live, written)
        return out

    monkeypatch.setattr(store.data.fs, "info", then_written)  # put back after (fsspec shares one per set of options)
    assert store.remove_idle_locks() == 1
    monkeypatch.undo()
    assert read_again, "gc did not read the live lock object again before its delete"
    assert files.read_text(live) == written
    assert files.list(".locks") == [live.rsplit("/", 1)[1], f"{live.rsplit('/', 1)[1]}.claims"]


def _s3_refusal(code: str, status: int) -> Exception:
    """What s3fs raises for DeleteObject answered `status` `code` (`s3fs.errors.translate_boto_error` of botocore's
    ClientError, kept as the cause), or for a parameter botocore refuses to send (ParamValidationError, as it is)."""
    from botocore.exceptions import ClientError, ParamValidationError
    from s3fs.errors import translate_boto_error

    if code == "ParamValidationError":
        return ParamValidationError(report='Unknown parameter in input: "IfMatch", must be one of: Bucket, Key')
    return translate_boto_error(ClientError({"Error": {"Code": code, "Message": f"{code} (If-Match)"},
                                             "ResponseMetadata": {"HTTPStatusCode": status}}, "DeleteObject"))


@pytest.mark.parametrize("code, status", [("NotImplemented", 501), ("InvalidArgument", 400), ("InvalidRequest", 400),
                                          ("400", 400), ("ParamValidationError", 0), ("AccessDenied", 403),
                                          ("RequestTimeout", 400), ("ExpiredToken", 400)])
def test_gc_sweeps_stale_lock_objects_of_a_server_without_conditional_deletes(s3_url, code, status, monkeypatch,
                                                                            caplog):
    """lockC44: gc's delete of a stale lock object sends DeleteObject If-Match (lockB44); an S3-compatible server that
    does not support the header refuses it (501 NotImplemented, 400 InvalidArgument, botocore its parameter), and
    gc's lock sweep failed there. A refusal of the header itself falls back to the plain delete (the re-read just
    before its guard), said once, not asked again; the stale lock objects go with their claims. Any other error
    (403 AccessDenied; a 400 of another code, RequestTimeout or ExpiredToken, which is no refusal of the header and
    turned conditional deletes off for the store, revB44) still fails the sweep, nothing deleted, nothing warned."""
    import logging
    import time

    from flowcast.store.fs import FileStore

    url, opts = s3_url
    store = EmbeddedStore(url, storage_options=opts, lock_timeout=0.5)
    files = FileStore(url, storage_options=opts)
    locks = [".locks/forecasts.dataset=sales.one", ".locks/forecasts.dataset=sales.two"]
    for lock in locks:
        files.write_text(lock, f"0{lock[-3:]}0 host-a 4242 7")
        files.write_text(f"{lock}.claims/0{lock[-3:]}0", "")
    time.sleep(2.2)  # over lock_timeout, less the 1 s the whole seconds of the server's times cost: stale
    real = store.data.fs.call_s3
    asked: list[str] = []

    def refusing(method, *args, **kwargs):
        if method == "delete_object" and "IfMatch" in kwargs:
            asked.append(kwargs["Key"])
            raise _s3_refusal(code, status)
        return real(method, *args, **kwargs)

    monkeypatch.setattr(store.data.fs, "call_s3", refusing)  # put back after (fsspec shares one per set of options)
    caplog.set_level(logging.INFO, logger="flowcast.store.parquet")
    if code in ("AccessDenied", "RequestTimeout", "ExpiredToken"):
        with pytest.raises(OSError, match=code):
            store.remove_idle_locks()
        monkeypatch.undo()
        assert len(asked) == 1 and sorted(files.list(".locks")) == sorted(
            n for lock in locks for n in (lock.rsplit("/", 1)[1], f"{lock.rsplit('/', 1)[1]}.claims"))
        assert store.data.conditional_deletes
        assert not [r for r in caplog.records if "does not support conditional deletes" in r.getMessage()]
        return
    assert store.remove_idle_locks() == 2
    monkeypatch.undo()
    assert files.list(".locks") == []
    assert len(asked) == 1  # not asked again of this store
    said = [r.getMessage() for r in caplog.records if "does not support conditional deletes" in r.getMessage()]
    assert len(said) == 1 and url in said[0] and (code if status else "IfMatch") in said[0]


def test_a_publish_whose_file_cannot_be_read_as_it_records_says_why_not_that_it_is_gone(tmp_path):
    """lock43: `while_published` took a key whose file could not be read (a transient read error, or damaged) for one
    that no longer holds the publish, and the run said 'no longer holds this publish (a gc deleted it, or another run
    published the as_of again, since)', which was untrue, and skipped the record. The read error is raised, naming
    the file and the error (the run's warning says it; the next run records the publish), nothing called."""
    from pathlib import Path

    store = EmbeddedStore(tmp_path / "wh")
    digest = publish(store, make_forecast(1, N, H, AS_OF)).content_hash
    path = Path(store.data.current("forecasts", DS, AS_OF) or "")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # cut short: its footer cannot be read
    called: list[bool] = []
    with pytest.raises(PublishError, match=rf"could not read {path}, .*dataset {DS} as_of .*: ArrowInvalid"):
        store.while_published(DS, AS_OF, digest, lambda: called.append(True))
    assert called == []
    assert not store.while_published(DS, OTHER, digest, lambda: called.append(True))  # holds nothing: False
    assert called == []


def test_a_series_without_an_interval_beside_series_with_one_round_trips(backend):
    """probe45: a series with no typical change to scale its widths by is published without bounds beside a constant
    series' zero-width interval; every backend keeps its null bounds beside the others' values, and its content hash
    (what `flowcast forecasts --verify` checks) is the one of what was published."""
    fc = make_forecast(1, 3, H, AS_OF).with_columns(
        *(pl.when(pl.col("unique_id") == "s00001").then(None).otherwise(pl.col("y_hat")).alias(c)
          for c in ("y_hat_lo80", "y_hat_hi80")))
    receipt = publish(backend.store, fc, horizon=H)
    back = backend.reopen().read(dataset=DS, as_of=AS_OF).sort("unique_id", "step")
    bare = back.filter(pl.col("y_hat_lo80").is_null())
    assert bare["unique_id"].unique().to_list() == ["s00001"] and bare.height == H
    assert back.filter(pl.col("y_hat_hi80").is_null()).height == H
    assert back.filter(pl.col("unique_id") != "s00001")["y_hat_lo80"].to_list() == \
        back.filter(pl.col("unique_id") != "s00001")["y_hat"].to_list()
    store = backend.reopen()
    if hasattr(store, "verify"):  # (the embedded store's files, PostgreSQL's rows: hashed as published)
        assert store.verify(DS, AS_OF) in (True, (1, [])), receipt
