"""The forecast store: contract, atomic replace, idempotence, and fault injection.

Kill tests run tests/publish_faults/publisher.py in a subprocess that SIGKILLs itself at a
named point (FLOWCAST_FAULT=publish:<point>) or is SIGKILLed by the test at a random moment.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent / "publish_faults"))
from publisher import make_forecast

from flowcast.columns import FORECAST_COLUMNS
from flowcast.errors import PublishError
from flowcast.publish import ForecastContractError, ForecastStore

PUBLISHER = Path(__file__).parent / "publish_faults" / "publisher.py"
AS_OF = datetime(2024, 3, 1)
OTHER = datetime(2024, 2, 1)
H = 6
N = 50
BIG = 4000  # series in the kill tests: 4000 x 6 = 24k rows, big enough for a multi-page Parquet file


def _publish(store, fc, as_of=AS_OF, variant=1, run_id=None, **kw):
    return store.publish(fc, as_of=as_of, model="lstm", model_version=f"lstm-v{variant}",
                         run_id=run_id or f"run-{variant}", created_at=as_of + timedelta(hours=1), **kw)


def _variant_of(frame: pl.DataFrame) -> set[int]:
    return set((frame["y_hat"] // 1_000_000).cast(pl.Int64).unique().to_list())


def _duckdb_rows(store: ForecastStore, as_of: datetime) -> pl.DataFrame:
    """Straight from DuckDB, without the store's reconcile."""
    con = duckdb.connect(str(store.db_path), read_only=True)
    try:
        return pl.from_arrow(con.sql("SELECT * FROM forecasts WHERE as_of = ?", params=[as_of]).to_arrow_table())
    finally:
        con.close()


def _no_temp_left(store: ForecastStore) -> bool:
    return not list(store.parquet_dir.rglob(".*")) and not (store.tmp_dir.exists() and any(store.tmp_dir.iterdir()))


def _visible_files(store: ForecastStore) -> list[Path]:
    """What a reader's glob sees: as_of=*/part-0.parquet (also what DuckDB's *.parquet glob matches)."""
    return sorted(store.parquet_dir.glob("as_of=*/*.parquet"))


# ---------------------------------------------------------------------- contract and round trip
def test_publish_read_round_trip(tmp_path):
    store = ForecastStore(tmp_path / "wh")
    fc = make_forecast(1, N, H, AS_OF)
    r = _publish(store, fc, horizon=H, expected_ids=fc["unique_id"].unique().to_list(),
                 last_ds=fc.select("unique_id").unique().with_columns(pl.lit(AS_OF).alias("last_ds")))
    assert (r.rows, r.n_series, r.replaced_rows, r.model_version) == (N * H, N, 0, "lstm-v1")
    assert r.quantile_cols == ["y_hat_q10", "y_hat_q90"]
    back = store.read(as_of=AS_OF)
    cols = FORECAST_COLUMNS[:7] + ["y_hat_q10", "y_hat_q90"] + FORECAST_COLUMNS[7:]
    assert back.columns == cols
    assert back.height == N * H
    assert back.select("unique_id", "ds", "step", "y_hat", "y_hat_q10", "y_hat_q90").equals(
        fc.sort("unique_id", "ds"))
    assert back["created_at"].unique().to_list() == [AS_OF + timedelta(hours=1)]
    assert pl.read_parquet(r.parquet_path).select(cols).equals(back)  # Parquet and DuckDB agree
    assert store.as_ofs() == [AS_OF] and store.has(AS_OF) and not store.has(OTHER)
    assert store.read(unique_id="s00003")["step"].to_list() == list(range(1, H + 1))
    assert store.read(model="gru").height == 0
    assert store.receipt_of(AS_OF)["content_hash"] == r.content_hash


def test_read_of_an_empty_store_creates_nothing(tmp_path):
    store = ForecastStore(tmp_path / "none")
    out = store.read()
    assert out.height == 0 and out.columns == FORECAST_COLUMNS
    assert not (tmp_path / "none").exists() and store.as_ofs() == []


def test_republish_replaces_exactly_that_as_of_with_the_same_hash(tmp_path):
    store = ForecastStore(tmp_path / "wh")
    other = _publish(store, make_forecast(7, N, H, OTHER), as_of=OTHER, variant=7)
    r1 = _publish(store, make_forecast(1, N, H, AS_OF), run_id="first")
    r2 = _publish(store, make_forecast(1, N, H, AS_OF), run_id="second")  # a re-run: same inputs, new run
    assert r1.content_hash == r2.content_hash  # the hash leaves run_id and created_at out
    assert r1.previous_content_hash is None and r2.previous_content_hash == r1.content_hash and r2.unchanged
    assert r2.replaced_rows == N * H
    back = store.read(as_of=AS_OF)
    assert back.height == N * H and back.select("unique_id", "ds").n_unique() == N * H  # no duplicates
    assert back["run_id"].unique().to_list() == ["second"]
    r3 = _publish(store, make_forecast(2, N, H, AS_OF), variant=2)
    assert r3.content_hash != r1.content_hash and not r3.unchanged
    assert _variant_of(store.read(as_of=AS_OF)) == {2}
    assert _variant_of(store.read(as_of=OTHER)) == {7}  # the other as_of is untouched
    assert store.receipt_of(OTHER)["content_hash"] == other.content_hash
    assert store.read().height == 2 * N * H


def test_content_hash_is_pinned_and_ignores_run_and_row_order():
    from flowcast.publish import content_hash

    f = pl.DataFrame({
        "as_of": [datetime(2024, 1, 1)] * 2, "unique_id": ["a", "b"], "ds": [datetime(2024, 1, 2)] * 2,
        "step": pl.Series([1, 1], dtype=pl.Int32), "model": ["lstm"] * 2,
        "model_version": pl.Series([None, None], dtype=pl.Utf8), "y_hat": [1.5, -2.0], "run_id": ["r", "r"],
        "created_at": [datetime(2024, 1, 1)] * 2,
    })
    # pinned: a change of this value means every published as_of changes hash (say so in the changelog)
    assert content_hash(f) == "861372d6571fad8ff45bdbe7ebd3b2ef7058fa50f13f1c914b9605445794d708"
    assert content_hash(f.reverse().with_columns(pl.lit("other").alias("run_id"))) == content_hash(f)
    assert content_hash(f.with_columns(pl.lit(1.5000001).alias("y_hat"))) != content_hash(f)
    assert content_hash(f.with_columns(pl.lit("").alias("model_version"))) != content_hash(f)  # null != ""


def test_model_version_may_be_none_for_a_baseline(tmp_path):
    store = ForecastStore(tmp_path / "wh")
    fc = make_forecast(1, 3, H, AS_OF).drop("y_hat_q10", "y_hat_q90")
    r = store.publish(fc, as_of=AS_OF, model="seasonal_naive", model_version=None, run_id="r",
                      created_at=AS_OF)
    back = store.read()
    assert back["model_version"].null_count() == back.height and r.model_version is None
    assert "y_hat_q10" not in back.columns  # quantile columns absent from every row are left out


def _bad(kind: str) -> tuple[pl.DataFrame, dict, str]:
    fc = make_forecast(2, N, H, AS_OF)
    nan_at = lambda col, v: fc.with_columns(
        pl.when((pl.col("unique_id") == "s00004") & (pl.col("step") == 3)).then(v).otherwise(pl.col(col)).alias(col))
    ids = fc["unique_id"].unique().to_list()
    return {
        "empty": (fc.head(0), {}, "refusing to publish an empty forecast"),
        "nan": (nan_at("y_hat", float("nan")), {}, r"y_hat: must be a finite number .* \(s00004, step 3\)=nan"),
        "inf": (nan_at("y_hat", float("inf")), {}, r"\(s00004, step 3\)=inf"),
        "null": (nan_at("y_hat", None), {}, r"\(s00004, step 3\)=None"),
        "nan_quantile": (nan_at("y_hat_q90", float("nan")), {}, r"y_hat_q90: must be a finite number"),
        "duplicate": (pl.concat([fc, fc.head(1)]), {}, r"duplicate \(unique_id, step\).*s00000, step 1"),
        "missing_step": (fc.filter(~((pl.col("unique_id") == "s00009") & (pl.col("step") == H))), {"horizon": H},
                         r"steps 1..6 exactly once; 1 series do not, e.g. \[\('s00009', 5, 5\)\]"),
        "step_beyond_horizon": (fc, {"horizon": H - 1}, r"step: less_than_or_equal_to\(5\)"),
        "missing_series": (fc.filter(pl.col("unique_id") != "s00011"), {"expected_ids": ids},
                           r"miss 1 of 50 series: \['s00011'\]"),
        "unexpected_series": (fc, {"expected_ids": ids[1:]},
                              r"unexpected series"),
        "ds_not_after_last_obs": (fc, {"last_ds": pl.DataFrame({"unique_id": ["s00002"],
                                                                "last_ds": [AS_OF + timedelta(days=2)]})},
                                  r"ds must lie after the series' last observation: 2 rows, e.g. \(s00002, step 1\)"),
        "missing_column": (fc.drop("step"), {}, r"lack columns \['step'\]"),
    }[kind]


@pytest.mark.parametrize("kind", ["empty", "nan", "inf", "null", "nan_quantile", "duplicate", "missing_step",
                                  "step_beyond_horizon", "missing_series", "unexpected_series",
                                  "ds_not_after_last_obs", "missing_column"])
def test_contract_failures_block_publishing_and_keep_good_forecasts(tmp_path, kind):
    store = ForecastStore(tmp_path / "wh")
    good = _publish(store, make_forecast(1, N, H, AS_OF))
    before = store.read()
    fc, kw, pattern = _bad(kind)
    with pytest.raises(ForecastContractError, match=pattern) as exc:
        _publish(store, fc, variant=2, **kw)
    assert isinstance(exc.value, PublishError) and exc.value.exit_code == 2  # bad input: not retried
    assert store.read().equals(before)
    assert store.receipt_of(AS_OF)["content_hash"] == good.content_hash
    assert _no_temp_left(store)


# ---------------------------------------------------------------------- write failures
def test_exception_while_serialising_leaves_the_store_unchanged(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    store = ForecastStore(tmp_path / "wh")
    _publish(store, make_forecast(1, N, H, AS_OF))
    before = store.read()
    real = pq.write_table

    def half_then_fail(table, where, **kw):
        real(table.slice(0, 10), where, **kw)  # bytes hit the temp file, then the writer dies
        raise RuntimeError("arrow writer exploded")

    monkeypatch.setattr(pq, "write_table", half_then_fail)
    with pytest.raises(PublishError, match="could not serialise forecasts for as_of 2024-03-01T00:00:00: "
                                           "RuntimeError: arrow writer exploded; previously published"):
        _publish(store, make_forecast(2, N, H, AS_OF), variant=2)
    with pytest.raises(PublishError):  # a new as_of: its half-made partition folder is removed too
        _publish(store, make_forecast(2, N, H, OTHER), as_of=OTHER, variant=2)
    monkeypatch.undo()
    assert store.read().equals(before)
    left = sorted(str(p.relative_to(store.parquet_dir)) for p in store.parquet_dir.rglob("*"))
    assert left == ["as_of=2024-03-01T00:00:00", "as_of=2024-03-01T00:00:00/part-0.parquet"]  # no temp, no dir
    assert _no_temp_left(store)


def test_full_disk_fails_clearly_and_keeps_published_data(tmp_path, monkeypatch):
    store = ForecastStore(tmp_path / "wh")
    _publish(store, make_forecast(1, N, H, AS_OF))
    before = store.read()
    real_fsync = os.fsync
    calls = {"n": 0}

    def enospc(fd):
        calls["n"] += 1
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", enospc)
    with pytest.raises(PublishError) as exc:
        _publish(store, make_forecast(2, N, H, AS_OF), variant=2)
    monkeypatch.setattr(os, "fsync", real_fsync)
    msg = str(exc.value)
    assert exc.value.exit_code == 1 and not isinstance(exc.value, ForecastContractError)  # I/O: retryable
    assert "No space left on device [ENOSPC] (the disk is full)" in msg
    assert "as_of 2024-03-01T00:00:00" in msg and "previously published forecasts are intact" in msg
    assert calls["n"] == 1
    assert store.read().equals(before)
    assert _no_temp_left(store)
    assert _publish(store, make_forecast(3, N, H, AS_OF), variant=3).rows == N * H  # and the next run works


def test_duckdb_failure_after_the_parquet_rename_is_reconciled(tmp_path, monkeypatch):
    store = ForecastStore(tmp_path / "wh")
    _publish(store, make_forecast(1, N, H, AS_OF))

    def boom(*a, **k):
        raise duckdb.IOException("IO Error: could not write to the WAL (disk full)")

    monkeypatch.setattr(ForecastStore, "_load_into_db", boom)
    with pytest.raises(PublishError, match="the source of truth.*reconciled on the next publish or read"):
        _publish(store, make_forecast(2, N, H, AS_OF), variant=2)
    monkeypatch.undo()
    assert _variant_of(_duckdb_rows(store, AS_OF)) == {1}  # the mirror is one publish behind ...
    assert _variant_of(store.read(as_of=AS_OF)) == {2}  # ... until the next read reconciles it
    assert _variant_of(_duckdb_rows(store, AS_OF)) == {2}


def test_duckdb_mirror_is_rebuilt_from_parquet(tmp_path):
    store = ForecastStore(tmp_path / "wh")
    _publish(store, make_forecast(1, N, H, AS_OF))
    _publish(store, make_forecast(2, N, H, OTHER), as_of=OTHER, variant=2)
    before = store.read()
    store.db_path.unlink()  # lost or deleted: the Parquet dataset is the truth
    assert store.read().equals(before)
    # a partition removed from the truth disappears from the mirror too
    part = store.parquet_dir / "as_of=2024-02-01T00:00:00"
    (part / "part-0.parquet").unlink()
    part.rmdir()
    assert store.read()["as_of"].unique().to_list() == [AS_OF]
    assert _duckdb_rows(store, OTHER).height == 0


# ---------------------------------------------------------------------- kill -9
def _child(wh: Path, variant: int, fault: str | None, *extra: str, n: int = BIG) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "FLOWCAST_FAULT"}
    if fault:
        env["FLOWCAST_FAULT"] = fault
    return subprocess.Popen([sys.executable, str(PUBLISHER), str(wh), AS_OF.isoformat(), str(variant), str(n),
                             str(H), *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize(
    "point, survivor",
    [
        ("after_parquet_tmp", 1),  # temp file written, not fsynced: old partition
        ("before_rename", 1),  # temp file fsynced, not renamed: old partition
        ("after_rename", 2),  # Parquet replaced, DuckDB not touched: new (DuckDB reconciled)
        ("in_transaction", 2),  # DuckDB DELETE done, not committed: rolled back, then reconciled to new
        ("before_commit", 2),  # DuckDB INSERT done, not committed: same
        ("after_commit", 2),  # both written: new
    ],
)
def test_sigkill_during_publish_leaves_old_or_new_and_the_next_run_completes(tmp_path, point, survivor):
    wh = tmp_path / "wh"
    store = ForecastStore(wh)
    old = _publish(store, make_forecast(1, BIG, H, AS_OF))
    proc = _child(wh, 2, f"publish:{point}")
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == -signal.SIGKILL, err

    # readers never see the temp file: it is outside the dataset, whose only file is part-0.parquet
    if point in ("after_parquet_tmp", "before_rename"):
        assert len(list(store.tmp_dir.iterdir())) == 1  # the dead publisher's temp file is there ...
    assert [p.relative_to(store.parquet_dir).as_posix() for p in store.parquet_dir.rglob("*") if p.is_file()] == [
        "as_of=2024-03-01T00:00:00/part-0.parquet"]  # ... but not in the dataset
    scanned = pl.scan_parquet(store.parquet_dir).collect()  # a reader scanning the whole dataset folder
    assert scanned.height == BIG * H and _variant_of(scanned) == {survivor}  # exactly old or new, whole
    raw = _duckdb_rows(store, AS_OF)  # DuckDB before any repair: exactly old or new too, never a mix
    assert raw.height == BIG * H and len(_variant_of(raw)) == 1

    back = store.read(as_of=AS_OF)  # reconciles
    assert back.height == BIG * H and back.select("unique_id", "ds").n_unique() == BIG * H
    assert _variant_of(back) == {survivor}
    if survivor == 1:
        assert store.receipt_of(AS_OF)["content_hash"] == old.content_hash
    assert _no_temp_left(store)  # the read under the lock removed the dead temp file

    proc = _child(wh, 3, None)  # the next run completes
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert _variant_of(store.read(as_of=AS_OF)) == {3} and store.read().height == BIG * H


def test_random_sigkills_never_leave_a_mix(tmp_path):
    """A child publishes variant 10, 11, 12, ... of one as_of in a loop; kill it at random moments."""
    wh = tmp_path / "wh"
    store = ForecastStore(wh)
    _publish(store, make_forecast(1, BIG, H, AS_OF))
    rng = random.Random(7)
    seen = set()
    for i in range(4):
        proc = _child(wh, 10 + 100 * i, None, "--loop")
        first = proc.stdout.readline()  # wait for one whole publish, then kill during a later one
        assert first.startswith("published"), proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.6))  # one publish of 24k rows takes a few tenths of a second
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        raw = _duckdb_rows(store, AS_OF)
        assert raw.height == BIG * H and len(_variant_of(raw)) == 1
        back = store.read(as_of=AS_OF)
        assert back.height == BIG * H and back.select("unique_id", "ds").n_unique() == BIG * H
        (variant,) = _variant_of(back)
        assert back["model_version"].unique().to_list() == [f"lstm-v{variant}"]  # rows and labels agree
        assert [p.name for p in _visible_files(store)] == ["part-0.parquet"]
        assert _variant_of(pl.scan_parquet(store.parquet_dir).collect()) == {variant}
        seen.add(variant)
    assert 1 not in seen  # every child completed at least one publish before it was killed


# ---------------------------------------------------------------------- concurrency
def test_concurrent_publishers_are_serialised(tmp_path):
    wh = tmp_path / "wh"
    env = {k: v for k, v in os.environ.items() if k != "FLOWCAST_FAULT"}
    cmd = lambda as_of, v: [sys.executable, str(PUBLISHER), str(wh), as_of.isoformat(), str(v), str(BIG), str(H)]
    procs = [subprocess.Popen(cmd(a, v), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for a, v in [(AS_OF, 1), (OTHER, 2), (AS_OF, 3)]]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    store = ForecastStore(wh)
    assert store.as_ofs() == [OTHER, AS_OF]  # two different as_of published at once: both land
    assert _variant_of(store.read(as_of=OTHER)) == {2}
    same = store.read(as_of=AS_OF)  # two publishers of one as_of: one wins whole, no duplicates
    assert same.height == BIG * H and len(_variant_of(same)) == 1 and _variant_of(same) <= {1, 3}


def test_lock_timeout_names_the_lock(tmp_path):
    import fcntl

    store = ForecastStore(tmp_path / "wh", lock_timeout=0.2)
    store.root.mkdir(parents=True)
    with open(store.lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        # a second open file description conflicts with the held lock even within one process
        with pytest.raises(PublishError, match=r"stayed locked by another publisher for 0.2s \(lock file .*\.lock\)"):
            _publish(store, make_forecast(1, 3, H, AS_OF))
    assert not store.has(AS_OF)


# ---------------------------------------------------------------------- CLI
def test_cli_forecasts_formats_and_filters(_isolated_home):
    from flowcast.cli import app

    store = ForecastStore(_isolated_home / "warehouse")
    _publish(store, make_forecast(1, 3, H, AS_OF))
    _publish(store, make_forecast(2, 3, H, OTHER), as_of=OTHER, variant=2)
    runner = CliRunner()
    r = runner.invoke(app, ["forecasts", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert isinstance(rows, list) and len(rows) == 2 * 3 * H
    assert list(rows[0]) == FORECAST_COLUMNS[:7] + ["y_hat_q10", "y_hat_q90"] + FORECAST_COLUMNS[7:]
    r = runner.invoke(app, ["forecasts", "--as-of", "2024-03-01", "--unique-id", "s00001", "--format", "json"])
    rows = json.loads(r.stdout)
    assert len(rows) == H and {x["unique_id"] for x in rows} == {"s00001"}
    assert {x["as_of"] for x in rows} == {"2024-03-01T00:00:00"}
    r = runner.invoke(app, ["forecasts", "--model", "lstm", "--format", "csv"])
    csv = pl.read_csv(r.stdout.encode())
    assert csv.height == 2 * 3 * H and csv.columns[:3] == ["as_of", "unique_id", "ds"]
    r = runner.invoke(app, ["forecasts", "--as-of", "2024-02-01"])
    assert r.exit_code == 0 and "s00002" in r.stdout and "lstm-v2" in r.stdout
    r = runner.invoke(app, ["forecasts", "--format", "xml"])
    assert r.exit_code == 2 and "--format must be one of" in r.output
    r = runner.invoke(app, ["forecasts", "--as-of", "yesterday"])
    assert r.exit_code == 2 and "--as-of must be an ISO date" in r.output
    r = runner.invoke(app, ["forecasts", "--model", "nope", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout) == []
    # an as_of that matches nothing lists what is published (an exact timestamp is needed)
    r = runner.invoke(app, ["forecasts", "--as-of", "2024-02-02"])
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "published as_of: 2024-02-01T00:00:00, 2024-03-01T00:00:00" in text, text


def test_damaged_files_give_clear_errors_and_a_way_out(tmp_path):
    store = ForecastStore(tmp_path / "wh")
    _publish(store, make_forecast(1, N, H, AS_OF))
    _publish(store, make_forecast(2, N, H, OTHER), as_of=OTHER, variant=2)
    before = store.read()
    store.db_path.write_bytes(b"definitely not a duckdb file" * 100)
    with pytest.raises(PublishError, match="delete it: it is only a mirror and is rebuilt from the Parquet dataset"):
        store.read()
    store.db_path.unlink()
    assert store.read().equals(before)
    # a partition damaged outside flowcast: named; re-publishing that as_of repairs it
    part = store.parquet_dir / "as_of=2024-02-01T00:00:00" / "part-0.parquet"
    part.write_bytes(b"PAR1 garbage")
    store.db_path.unlink()  # force the mirror to reload every partition
    with pytest.raises(PublishError, match=r"as_of=2024-02-01T00:00:00/part-0.parquet cannot be read.*re-publish"):
        store.read()
    r = _publish(store, make_forecast(3, N, H, OTHER), as_of=OTHER, variant=3)
    assert r.replaced_rows == 0 and r.previous_content_hash is None
    assert _variant_of(store.read(as_of=OTHER)) == {3} and _variant_of(store.read(as_of=AS_OF)) == {1}


HOLD_DUCKDB = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); c.execute('select 1'); print('ready', flush=True); sys.stdin.read()"


def test_reads_fall_back_to_parquet_while_another_program_holds_the_duckdb_file(tmp_path):
    """Regression: with the DuckDB file open in another process (a duckdb shell), `flowcast forecasts`
    failed and advised deleting the database; the Parquet dataset is the truth and is read instead."""
    store = ForecastStore(tmp_path / "wh")
    _publish(store, make_forecast(1, 3, H, AS_OF))
    _publish(store, make_forecast(2, 3, H, OTHER), as_of=OTHER, variant=2)
    expected = store.read()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_DUCKDB, str(store.db_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert store.read().equals(expected)
        assert store.read(as_of=OTHER, unique_id="s00001", model="lstm").equals(
            expected.filter((pl.col("as_of") == OTHER) & (pl.col("unique_id") == "s00001"))
        )
        assert store.read(as_of=datetime(2000, 1, 1)).height == 0
        with pytest.raises(PublishError, match="is held open by another program") as exc:
            _publish(store, make_forecast(3, 3, H, AS_OF), variant=3)
        assert "delete it" not in str(exc.value)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert store.read().equals(expected)  # the refused publish changed nothing
    _publish(store, make_forecast(3, 3, H, AS_OF), variant=3)  # once the other program is gone, it lands
    assert _variant_of(store.read(as_of=AS_OF)) == {3}
