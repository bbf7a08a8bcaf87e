"""The embedded store: the Parquet dataset (one file per (dataset, as_of)) and the DuckDB views
over it; keys, atomic replace, write failures, readers that take no lock and writers that a
program holding the DuckDB file open cannot stop."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from publisher import make_forecast
from store_helpers import AS_OF, DS, OTHER, H, N, child, publish, variant_of
from tmpfs import fill, resize, tmpfs

from flowcast.columns import FORECAST_COLUMNS, REALIZED_COLUMNS
from flowcast.errors import PublishError
from flowcast.store import EmbeddedStore, ForecastContractError
from flowcast.store.duckdb_views import TABLES

COLS = FORECAST_COLUMNS[:8] + ["y_hat_q10", "y_hat_q90"] + FORECAST_COLUMNS[8:]


def duck(store: EmbeddedStore, sql: str) -> pl.DataFrame:
    """A query through the DuckDB file, read-only, as the README shows."""
    con = duckdb.connect(str(store.db_path), read_only=True)
    try:
        return pl.from_arrow(con.sql(sql).to_arrow_table())
    finally:
        con.close()


def files(store: EmbeddedStore) -> list[str]:
    """Every file of the forecasts dataset, the random tag of each file name left out."""
    return sorted(re.sub(r"-[0-9a-f]{8}\.parquet$", ".parquet", p.relative_to(store.root).as_posix())
                  for p in (store.root / "forecasts").rglob("*") if p.is_file())


def test_publish_read_round_trip_and_the_duckdb_views(tmp_path):
    store = EmbeddedStore(tmp_path / "wh")
    fc = make_forecast(1, N, H, AS_OF)
    r = publish(store, fc, horizon=H, expected_ids=fc["unique_id"].unique().to_list(),
                last_ds=fc.select("unique_id").unique().with_columns(pl.lit(AS_OF).alias("last_ds")))
    assert (r.dataset, r.rows, r.n_series, r.replaced_rows, r.model_version) == (DS, N * H, N, 0, "lstm-v1")
    assert r.quantile_cols == ["y_hat_q10", "y_hat_q90"] and r.notes == []
    key_dir = store.root / "forecasts" / f"dataset={DS}" / "as_of=2024-03-01T00:00:00"
    assert Path(r.parquet_path).parent == key_dir and re.fullmatch(r"part-00000001-[0-9a-f]{8}\.parquet",
                                                                   Path(r.parquet_path).name)
    back = store.read(dataset=DS, as_of=AS_OF)
    assert back.columns == COLS and back.height == N * H
    assert back.select("unique_id", "ds", "step", "y_hat", "y_hat_q10", "y_hat_q90").equals(fc.sort("unique_id", "ds"))
    assert back["dataset"].unique().to_list() == [DS]
    assert pl.read_parquet(r.parquet_path).select(COLS).equals(back)  # the file is self-describing
    assert store.as_ofs(DS) == [AS_OF] and store.has(DS, AS_OF) and not store.has(DS, OTHER)
    assert not store.has("other", AS_OF) and store.datasets() == [DS]
    assert store.read(unique_id="s00003")["step"].to_list() == list(range(1, H + 1))
    assert store.read(model="gru").height == 0 and store.read(dataset="other").height == 0
    assert store.receipt_of(DS, AS_OF)["content_hash"] == r.content_hash
    # DuckDB reads the same rows through its views (no second copy), and the receipt per key
    assert duck(store, "SELECT * FROM forecasts ORDER BY unique_id, ds").equals(back)
    pub = duck(store, "SELECT dataset, as_of, content_hash, model_version, rows, n_series FROM publishes")
    assert pub.rows() == [(DS, AS_OF, r.content_hash, "lstm-v1", N * H, N)]


def test_read_of_an_empty_store_creates_nothing(tmp_path):
    store = EmbeddedStore(tmp_path / "none")
    out = store.read()
    assert out.height == 0 and out.columns == FORECAST_COLUMNS
    assert store.read_realized().height == 0
    assert not (tmp_path / "none").exists() and store.as_ofs(DS) == [] and store.datasets() == []


def test_republish_replaces_exactly_that_key_with_the_same_hash(tmp_path):
    store = EmbeddedStore(tmp_path / "wh")
    other = publish(store, make_forecast(7, N, H, OTHER), as_of=OTHER, variant=7)
    r1 = publish(store, make_forecast(1, N, H, AS_OF), run_id="first")
    r2 = publish(store, make_forecast(1, N, H, AS_OF), run_id="second")  # a re-run: same inputs, new run
    assert r1.content_hash == r2.content_hash  # the hash leaves run_id and created_at out
    assert r1.previous_content_hash is None and r2.previous_content_hash == r1.content_hash and r2.unchanged
    assert r2.replaced_rows == N * H
    back = store.read(as_of=AS_OF)
    assert back.height == N * H and back.select("unique_id", "ds").n_unique() == N * H  # no duplicates
    assert back["run_id"].unique().to_list() == ["second"]
    r3 = publish(store, make_forecast(2, N, H, AS_OF), variant=2)
    assert r3.content_hash != r1.content_hash and not r3.unchanged
    assert variant_of(store.read(as_of=AS_OF)) == {2}
    assert variant_of(store.read(as_of=OTHER)) == {7}  # the other as_of is untouched
    assert store.receipt_of(DS, OTHER)["content_hash"] == other.content_hash
    assert store.read().height == 2 * N * H
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == 2 * N * H


def test_publishing_dataset_b_never_touches_dataset_a(tmp_path):
    """Regression: keyed by as_of alone, publishing a second dataset for the same as_of into the
    same home replaced the first dataset's forecasts."""
    store = EmbeddedStore(tmp_path / "wh")
    a = publish(store, make_forecast(1, N, H, AS_OF), dataset="a")
    path_a = Path(a.parquet_path)
    before = (path_a.read_bytes(), os.stat(path_a).st_ino, os.stat(path_a).st_mtime_ns)
    b = publish(store, make_forecast(2, 7, H, AS_OF), dataset="b", variant=2)
    b2 = publish(store, make_forecast(3, 7, H, AS_OF), dataset="b", variant=3)  # and re-publish b
    assert b.replaced_rows == 0 and b2.replaced_rows == 7 * H  # b never counted a's rows as its own
    assert (path_a.read_bytes(), os.stat(path_a).st_ino, os.stat(path_a).st_mtime_ns) == before  # a untouched
    assert variant_of(store.read(dataset="a")) == {1} and store.read(dataset="a").height == N * H
    assert variant_of(store.read(dataset="b")) == {3} and store.read(dataset="b").height == 7 * H
    assert store.receipt_of("a", AS_OF)["content_hash"] == a.content_hash
    assert store.datasets() == ["a", "b"] and store.as_ofs("a") == store.as_ofs("b") == [AS_OF]
    both = store.read(as_of=AS_OF)
    assert both.group_by("dataset").len().sort("dataset").rows() == [("a", N * H), ("b", 7 * H)]
    assert duck(store, "SELECT dataset, count(*) FROM forecasts GROUP BY ALL ORDER BY 1").rows() == [
        ("a", N * H), ("b", 7 * H)]


# ---------------------------------------------------------------------- write failures
def test_exception_while_serialising_leaves_the_store_unchanged(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, AS_OF))
    before = store.read()
    real = pq.write_table

    def half_then_fail(table, where, **kw):
        real(table.slice(0, 10), where, **kw)  # bytes hit the temp file, then the writer dies
        raise RuntimeError("arrow writer exploded")

    monkeypatch.setattr(pq, "write_table", half_then_fail)
    with pytest.raises(PublishError, match="could not serialise forecasts of dataset sales as_of 2024-03-01: "
                                           "RuntimeError: arrow writer exploded; previously published"):
        publish(store, make_forecast(2, N, H, AS_OF), variant=2)
    with pytest.raises(PublishError):  # a new as_of: its half-made partition folder is removed too
        publish(store, make_forecast(2, N, H, OTHER), as_of=OTHER, variant=2)
    monkeypatch.undo()
    assert store.read().equals(before)
    assert files(store) == ["forecasts/dataset=sales/as_of=2024-03-01T00:00:00/part-00000001.parquet"]
    assert not (store.root / "forecasts" / "dataset=sales" / "as_of=2024-02-01T00:00:00").exists()
    assert not any(store.tmp_dir.iterdir())


def test_full_disk_fails_clearly_and_keeps_published_data(tmp_path, monkeypatch):
    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, AS_OF))
    before = store.read()
    real_fsync = os.fsync
    calls = {"n": 0}

    def enospc(fd):
        calls["n"] += 1
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", enospc)
    with pytest.raises(PublishError) as exc:
        publish(store, make_forecast(2, N, H, AS_OF), variant=2)
    monkeypatch.setattr(os, "fsync", real_fsync)
    msg = str(exc.value)
    assert exc.value.exit_code == 1 and not isinstance(exc.value, ForecastContractError)  # I/O: retryable
    assert "No space left on device [ENOSPC] (the disk is full)" in msg
    assert "dataset sales as_of 2024-03-01 " in msg and "previously published forecasts are intact" in msg
    # faults49: the store's folder, whose disk is full, and the bytes the file needed and those left there
    needed = re.search(rf"\(([0-9,]+) bytes to write, [0-9,]+ bytes free in {re.escape(str(store.location))}\)", msg)
    assert needed and int(needed.group(1).replace(",", "")) > 0, msg
    assert calls["n"] == 1
    assert store.read().equals(before)
    assert not any(store.tmp_dir.iterdir())
    assert publish(store, make_forecast(3, N, H, AS_OF), variant=3).rows == N * H  # and the next run works


@pytest.mark.parametrize("first", [True, False], ids=["first-publish", "replacing"])
def test_a_write_that_fails_after_its_rename_takes_the_new_file_back(tmp_path, monkeypatch, first):
    """Regression (faults17): the folder's fsync after the rename failing (EIO) raised 'previously published
    forecasts are intact' with the new file already visible, so the publish task's retry with `if_absent` (a
    scheduled forecast) found its own file and published nothing ('published already'), and a retrain withdrew
    its promotion while its forecasts stayed published. The new file is taken back: what the error says is true."""
    from flowcast.store import parquet

    store = EmbeddedStore(tmp_path / "wh")
    if not first:
        publish(store, make_forecast(1, N, H, AS_OF))
    before, names = store.read(), files(store)
    real = parquet._fsync_dir

    def eio_after_rename(path):
        if path.name.startswith("as_of=") and any(path.iterdir()):  # the key's folder, the new file in it
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(path)

    monkeypatch.setattr(parquet, "_fsync_dir", eio_after_rename)
    with pytest.raises(PublishError, match="previously published forecasts are intact"):
        publish(store, make_forecast(2, N, H, AS_OF), variant=2, if_absent=first)
    monkeypatch.undo()
    assert files(store) == names and store.read().equals(before) and store.has(DS, AS_OF) is not first
    if first:  # the retry of the same publish lands once
        assert publish(store, make_forecast(2, N, H, AS_OF), variant=2, if_absent=True).rows == N * H
        assert variant_of(store.read()) == {2} and len(files(store)) == 1


def test_a_superseded_file_that_cannot_be_removed_leaves_the_publish_done(tmp_path, monkeypatch, caplog):
    """Regression (faults17): removing the file a publish superseded (after the new one's rename) failing
    (EIO) failed the publish although its forecasts were published; the publish task's retry then wrote them
    again (or, a scheduled run's, found its own file and said 'published already'). A warning now."""
    store = EmbeddedStore(tmp_path / "wh", superseded_grace_s=0)
    publish(store, make_forecast(1, N, H, AS_OF))
    real = os.unlink

    def eio(path, *a, **kw):
        if str(path).endswith(".parquet"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(path, *a, **kw)

    monkeypatch.setattr(os, "unlink", eio)
    assert publish(store, make_forecast(2, N, H, AS_OF), variant=2).rows == N * H
    monkeypatch.undo()
    assert variant_of(store.read()) == {2} and len(files(store)) == 2
    assert "stay until the next publish of the key or flowcast gc" in caplog.text and "[EIO]" in caplog.text
    publish(store, make_forecast(3, N, H, AS_OF), variant=3)  # the next publish removes both
    assert variant_of(store.read()) == {3} and len(files(store)) == 1


def test_a_writer_lock_that_cannot_be_opened_names_it_and_changes_nothing(tmp_path):
    """Regression: with the store's lock folder unwritable (a read-only or full disk) a publish
    failed with a bare 'OSError(30, Read-only file system)' that named no file."""
    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, AS_OF))
    before = store.read()
    locks = store.root / ".locks"
    for f in locks.iterdir():
        f.unlink()
    locks.rmdir()
    locks.write_text("")  # a file where the lock folder goes: mkdir fails for real
    with pytest.raises(PublishError, match=r"could not open the writer lock .*wh/\.locks/forecasts\.dataset=sales\."
                                           r"as_of=2024-03-01T00:00:00\.lock of the forecast store: File exists "
                                           r"\[EEXIST\]; previously published forecasts are intact") as exc:
        publish(store, make_forecast(2, N, H, AS_OF), variant=2)
    assert exc.value.exit_code == 1  # I/O: the publish task retries it
    assert store.read().equals(before) and files(store) == [
        "forecasts/dataset=sales/as_of=2024-03-01T00:00:00/part-00000001.parquet"]
    locks.unlink()
    assert publish(store, make_forecast(3, N, H, AS_OF), variant=3).rows == N * H


def test_a_views_sidecar_that_cannot_be_written_never_fails_a_publish_that_landed(tmp_path):
    """Regression: the first publish of a store on a nearly full disk wrote its forecasts and created
    the DuckDB views, then failed writing the small sidecar forecasts.duckdb.views.json; the task
    retried a publish that had landed, and a `.forecasts.duckdb.views.json.<pid>.tmp` stayed behind."""
    store = EmbeddedStore(tmp_path / "wh")
    store.root.mkdir(parents=True)
    (store.root / "forecasts.duckdb.views.json").mkdir()  # the sidecar cannot be replaced: a real OSError
    r = publish(store, make_forecast(1, N, H, AS_OF))
    assert r.notes == [] and store.read().height == N * H
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == N * H
    assert [p.name for p in store.root.iterdir() if p.is_file() and p.name.endswith(".tmp")] == []


def test_a_damaged_partition_is_named_and_republishing_repairs_it(tmp_path):
    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, AS_OF))
    publish(store, make_forecast(2, N, H, OTHER), as_of=OTHER, variant=2)
    (part,) = (store.root / "forecasts" / "dataset=sales" / "as_of=2024-02-01T00:00:00").iterdir()
    part.write_bytes(b"PAR1 garbage")  # damaged outside flowcast
    with pytest.raises(PublishError, match=r"as_of=2024-02-01T00:00:00/part-0000000\d-\w+.parquet cannot be read.*re-publish"):
        store.read(as_of=OTHER)  # asked for by its as_of: an error naming it
    assert variant_of(store.read(as_of=AS_OF)) == {1}  # the other keys stay readable
    # a read of every as_of (`flowcast forecasts`, realized accuracy) leaves the damaged one out, said
    everything = store.read()
    assert variant_of(everything) == {1} and everything.height == N * H
    [left_out] = store.skipped
    assert "left out dataset sales as_of 2024-02-01:" in left_out and str(part) in left_out
    r = publish(store, make_forecast(3, N, H, OTHER), as_of=OTHER, variant=3)
    assert r.replaced_rows == 0 and r.previous_content_hash is None
    assert variant_of(store.read(as_of=OTHER)) == {3} and variant_of(store.read(as_of=AS_OF)) == {1}


def test_a_deleted_duckdb_file_is_recreated_by_the_next_publish(tmp_path):
    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, AS_OF))
    store.db_path.unlink()  # lost or deleted: it holds only views, the Parquet dataset is the truth
    assert store.read().height == N * H  # reads never needed it
    publish(store, make_forecast(2, N, H, OTHER), as_of=OTHER, variant=2)
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == 2 * N * H


def test_value_columns_of_a_later_publish_appear_in_the_views(tmp_path):
    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, 3, H, AS_OF).drop("y_hat_q10", "y_hat_q90"))
    fc = make_forecast(2, 3, H, OTHER).with_columns((pl.col("y_hat") - 3).alias("y_hat_lo95"),
                                                    (pl.col("y_hat") + 3).alias("y_hat_hi95"))
    publish(store, fc, as_of=OTHER, variant=2)
    got = duck(store, "SELECT as_of, count(y_hat_lo95) AS lo, count(y_hat_q10) AS q FROM forecasts GROUP BY 1 "
                      "ORDER BY 1")
    assert got.rows() == [(OTHER, 3 * H, 3 * H), (AS_OF, 0, 0)]
    assert store.read(as_of=AS_OF).columns == FORECAST_COLUMNS  # all-null value columns left out
    assert "y_hat_lo95" in store.read(as_of=OTHER).columns


# ---------------------------------------------------------------------- readers and writers
HOLD_DUCKDB = ("import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro'); "
               "c.execute('select count(*) from forecasts').fetchall(); print('ready', flush=True); sys.stdin.read()")


@pytest.mark.parametrize("mode", ["ro", "rw"])
def test_a_program_holding_the_duckdb_file_never_stops_a_publish(tmp_path, mode):
    """Regression: with the DuckDB file open in another process (the README's read-only query, a
    DuckDB shell), publishing failed ('held open by another program') and the Parquet dataset,
    the source of truth, could not be written."""
    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, 3, H, AS_OF))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_DUCKDB, str(store.db_path), mode],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        r = publish(store, make_forecast(2, 3, H, OTHER), as_of=OTHER, variant=2)  # a new key
        r2 = publish(store, make_forecast(3, 3, H, AS_OF), variant=3)  # a replaced key
        assert r.notes == [] and r2.notes == []  # the views exist: the DuckDB file was not even opened
        assert variant_of(store.read(as_of=OTHER)) == {2} and variant_of(store.read(as_of=AS_OF)) == {3}
        # the first realized rows need a new view, which must wait for the file: the write still lands
        from test_contract import realized_frame

        assert store.write_realized(DS, realized_frame([AS_OF])) == 6
        assert store.read_realized().height == 6
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert store.sync_views() is None  # once the program is gone, the views are created
    assert duck(store, "SELECT count(*) AS n FROM realized")["n"][0] == 6
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == 2 * 3 * H


def test_the_first_publish_while_the_duckdb_file_is_held_says_so_and_lands(tmp_path):
    store = EmbeddedStore(tmp_path / "wh")
    store.root.mkdir(parents=True)
    duckdb.connect(str(store.db_path)).close()  # an empty DuckDB file, then held by another program
    holder = subprocess.Popen([sys.executable, "-c", HOLD_DUCKDB.replace("select count(*) from forecasts", "select 1"),
                               str(store.db_path), "rw"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        r = publish(store, make_forecast(1, 3, H, AS_OF))
        assert len(r.notes) == 1 and "held open by another program" in r.notes[0] and "later publish" in r.notes[0]
        assert store.read().height == 3 * H  # published
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    publish(store, make_forecast(2, 3, H, OTHER), as_of=OTHER, variant=2)
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == 2 * 3 * H


def test_readers_take_no_lock_and_never_open_duckdb(tmp_path, monkeypatch):
    """Every writer lock is held elsewhere and opening DuckDB is forbidden: reads still work."""
    store = EmbeddedStore(tmp_path / "wh", lock_timeout=0.2)
    publish(store, make_forecast(1, 3, H, AS_OF))
    held = []
    for lock in store.data.locks_dir.glob("*.lock"):
        fh = open(lock, "a+")  # noqa: SIM115 - held for the test
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        held.append(fh)
    (store.data.locks_dir / "migrate.lock").touch()
    fh = open(store.data.locks_dir / "migrate.lock", "a+")  # noqa: SIM115
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    held.append(fh)

    def no_duckdb(*a, **k):
        raise AssertionError("a reader opened DuckDB")

    monkeypatch.setattr(duckdb, "connect", no_duckdb)
    try:
        assert variant_of(store.read()) == {1} and store.read(dataset=DS, as_of=AS_OF).height == 3 * H
        assert store.has(DS, AS_OF) and store.as_ofs(DS) == [AS_OF] and store.receipt_of(DS, AS_OF)
        assert store.read_realized().height == 0
        # a writer of the same key waits for the key's lock and says which one
        with pytest.raises(PublishError, match=r"stayed locked by another writer for 0.2s \(lock file .*as_of="):
            publish(store, make_forecast(2, 3, H, AS_OF), variant=2)
    finally:
        for fh in held:
            fh.close()


@pytest.mark.parametrize("damage", ["empty", "cut short", "header flipped", "block flipped"])
def test_a_duckdb_file_a_full_disk_left_damaged_is_rebuilt_with_its_views(tmp_path, damage):
    """Regression: a full disk (or a kill) while forecasts.duckdb was first written left it empty or
    cut short; every later publish then said it was 'held open by another program' and the views
    never came back. It holds only views: it is rebuilt, its stale write-ahead log kept aside with it (never
    replayed into the rebuilt file).
    faults29: bytes overwritten inside it (a disk error, a bad copy) fail DuckDB's block checksum ('Corrupt
    database file: computed checksum ... does not match'); that was taken for a file DuckDB could not open, said
    to be created by 'a later publish', and never rebuilt: every query of the views failed for good."""
    good = EmbeddedStore(tmp_path / "good")
    publish(good, make_forecast(1, 3, H, AS_OF))
    store = EmbeddedStore(tmp_path / "wh")
    store.root.mkdir(parents=True)
    data = good.db_path.read_bytes()
    at = 0 if damage == "header flipped" else 8192
    flipped = data[:at] + bytes(b ^ 0xFF for b in data[at:at + 8]) + data[at + 8:]
    store.db_path.write_bytes({"empty": b"", "cut short": data[:8192]}.get(damage, flipped))
    store.db_path.with_name(store.db_path.name + ".wal").write_bytes(b"\0" * 100)
    r = publish(store, make_forecast(1, N, H, AS_OF))
    (note,) = r.notes  # said (fixE52: it was rebuilt without a word), the damaged file kept aside
    assert note.startswith(f"the DuckDB file {store.db_path} cannot be read (") and "and was rebuilt from" in note, note
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == N * H
    assert sorted(p.name for p in store.root.iterdir() if p.is_file()) == [
        "forecasts.duckdb", "forecasts.duckdb.checked.json", "forecasts.duckdb.damaged",
        "forecasts.duckdb.damaged.wal", "forecasts.duckdb.views.json"]
    assert store.root.joinpath("forecasts.duckdb.damaged").read_bytes() == (
        {"empty": b"", "cut short": data[:8192]}.get(damage, flipped))
    # fixI52: its log kept beside it first (it was deleted: what was only in it lost), and the note says where
    assert store.root.joinpath("forecasts.duckdb.damaged.wal").read_bytes() == b"\0" * 100
    assert f"the damaged file is kept as {store.db_path}.damaged (its log as {store.db_path}.damaged.wal): " in note


@pytest.mark.parametrize("parquet_damaged", [False, True])
def test_a_duckdb_file_cut_to_a_third_is_rebuilt_and_said(tmp_path, caplog, parquet_damaged):
    """Regression (faults52): forecasts.duckdb cut to a third by a fault outside flowcast (its inode kept) was rebuilt
    by the next publish without a word, or not at all where its sidecar said the views were current (no publish opened
    it: every query of the views failed). The next publish (or open) looks into a file whose size is not the one
    recorded, rebuilds it from the Parquet dataset and says so: the file, what DuckDB said, what it was rebuilt from,
    the rows and as_ofs its views show, what they leave out (a damaged Parquet file) and where the damaged file is."""
    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, AS_OF))
    publish(store, make_forecast(1, N, H, OTHER), as_of=OTHER)
    whole = store.db_path.stat().st_size
    os.truncate(store.db_path, whole // 3)  # a real truncated file, in place
    with pytest.raises(duckdb.Error, match="Could not read enough bytes"):
        duck(store, "SELECT count(*) AS n FROM forecasts")
    if parquet_damaged:  # a Parquet file the views must leave out: what it holds is not rebuilt
        damaged = next((store.root / "forecasts" / f"dataset={DS}" / "as_of=2024-03-01T00:00:00").glob("*.parquet"))
        os.truncate(damaged, damaged.stat().st_size // 2)
    later = EmbeddedStore(tmp_path / "wh")
    with caplog.at_level(logging.WARNING, logger="flowcast.store.embedded"):
        r = publish(later, make_forecast(2, N, H, AS_OF + timedelta(days=60)), as_of=AS_OF + timedelta(days=60))
    aside = store.root / "forecasts.duckdb.damaged"
    shown = 2 if parquet_damaged else 3
    rebuilt = [n for n in r.notes if "was rebuilt from" in n]
    assert len(rebuilt) == 1 and later.views_rebuilt == rebuilt, r.notes
    assert rebuilt[0] == (
        f"the DuckDB file {store.db_path} cannot be read (IO Error: Could not read enough bytes from file "
        f"\"{store.db_path}\": attempted to read {whole - whole // 3} bytes from location {whole // 3}) and was "
        f"rebuilt from the Parquet dataset in {store.root.resolve()}, the source of truth (the file holds only views "
        f"over it, no forecast of its own): its views show {shown * N * H} forecast rows of {shown} as_of in 1 dataset; "
        + ("they leave out 1 damaged Parquet file, each named in its own warning: what it holds is not in the views "
           "until re-published" if parquet_damaged else "nothing published is missing from them")
        + f"; the damaged file is kept as {aside}: anything added to it by hand (a table or a view of your "
        "own) is only there; remove it once not needed"), rebuilt[0]
    assert [m for m in caplog.messages if "was rebuilt from" in m] == rebuilt  # the log says it once
    assert aside.stat().st_size == whole // 3
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == shown * N * H
    # said once: the next publish finds the file whole
    assert not [n for n in publish(later, make_forecast(3, N, H, OTHER), as_of=OTHER, variant=3).notes
                if "rebuilt" in n]


# a tmpfs of 16k holds the forecasts file and not DuckDB's first write; one of 64k fails its checkpoint (DuckDB writes
# 268 KB); a file-size limit (RLIMIT_FSIZE, any user) fails with EFBIG where a disk fails with ENOSPC
@pytest.mark.parametrize("disk", ["tmpfs 16k", "tmpfs 64k", "fsize 8192"])
def test_a_first_publish_on_a_full_disk_leaves_no_duckdb_file(tmp_path, disk):
    """Regression (ops31): a full warehouse disk on the first publish, forecasts.duckdb not there yet, left an empty or
    cut-short forecasts.duckdb (and its log) where DuckDB had started creating it. The file is built beside its place
    and linked there whole: the publish is done, its receipt says the views were not created, and no file is left."""
    how, size = disk.split()
    if how == "fsize":
        root = tmp_path / "wh"
        out, err = child(str(root), AS_OF, 1, 3, None, "--fsize", size).communicate(timeout=300)
        (note,) = [line.removeprefix("note ") for line in out.splitlines() if line.startswith("note ")]
        assert "File too large" in note, (out, err)
        room = contextlib.nullcontext(root)
    else:
        room = tmpfs(tmp_path / "disk", size)
    with room as folder:
        store = EmbeddedStore(folder if how == "fsize" else folder / "wh")
        if how == "tmpfs":
            receipt = publish(store, make_forecast(1, 3, H, AS_OF))
            (note,) = receipt.notes
            assert "No space left on device" in note
            assert receipt.duckdb_path is None  # no file holds views: the run's summary names none (faults48)
        assert note.startswith(f"the DuckDB views in {store.db_path} were not created because DuckDB could not create "
                               "it (") and note.endswith("nothing was left in its place, the forecasts are published "
                                                         "in the Parquet dataset and a later publish creates the views")
        assert store.read().height == 3 * H
        assert sorted(p.name for p in store.root.iterdir()) == [".locks", ".tmp", "forecasts",
                                                                "forecasts.duckdb.checked.json"]
        if how == "tmpfs":
            resize(folder, "4m")
        receipt = publish(store, make_forecast(2, N, H, AS_OF), variant=2)
        assert receipt.notes == [] and receipt.duckdb_path == store.db_path  # room again: the views
        assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == N * H


def test_a_views_update_that_fails_on_a_full_disk_leaves_no_empty_write_ahead_log(tmp_path):
    """Regression (faults48): the views brought up to date in an existing forecasts.duckdb on a full disk failed at
    their commit ('Could not write file ".../forecasts.duckdb.wal": No space left on device') and left a 0-byte
    forecasts.duckdb.wal beside it for good. The empty log is removed, the views made before still read every
    publish, and a later update with room brings them up to date."""
    with tmpfs(tmp_path / "disk", "1m") as folder:
        store = EmbeddedStore(folder / "wh")
        assert publish(store, make_forecast(1, 3, H, AS_OF)).notes == []
        assert publish(store, make_forecast(2, 3, H, OTHER), as_of=OTHER, variant=2).notes == []
        store.views.state_path.unlink()  # the views are looked at in DuckDB again (as after a home was moved)
        fill(folder)
        note = store.sync_views()  # what a publish and `open_store` do
        assert note is not None and "No space left on device" in note, note
        assert store.views.made() is False
        assert sorted(p.name for p in store.root.iterdir() if p.is_file()) == [
            "forecasts.duckdb", "forecasts.duckdb.checked.json"]
        assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == 2 * 3 * H
        (folder / "filler").unlink()
        assert store.sync_views() is None and store.views.current(set(TABLES))


def test_the_write_ahead_log_of_a_views_update_is_kept_when_it_holds_something(tmp_path):
    """The removal of an empty log (faults48) never takes one with content: DuckDB replays it as it opens the file."""
    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, 3, H, AS_OF))
    wal = store.db_path.with_name(store.db_path.name + ".wal")
    for content in (b"", b"\0" * 10):
        wal.write_bytes(content)
        store.views._drop_empty_wal()
        assert wal.exists() == bool(content)


@pytest.mark.skipif(sys.platform != "linux" or os.uname().machine != "x86_64",
                    reason="the child's seccomp filter is written for x86-64 Linux")
@pytest.mark.parametrize("refused", ["EPERM", "EOPNOTSUPP", "ENOSYS"])
def test_a_first_publish_where_the_file_system_makes_no_hard_links_creates_the_views(tmp_path, refused):
    """Regression (review32): the first forecasts.duckdb is built beside its place and hard-linked there; a file
    system without hard links falls back to a rename. sshfs without its hardlink extension, and other FUSE file
    systems that leave link unimplemented, answer ENOSYS, which was not among the errors that fall back: every
    publish said the views 'were not created ... a later publish creates the views', and none ever did. The child's
    kernel answers link(2) with the error (a seccomp filter, `publisher.refuse_links`)."""
    root = tmp_path / "wh"
    out, err = child(str(root), AS_OF, 1, 3, None, "--no-link", refused).communicate(timeout=300)
    if "no seccomp filter" in err:
        pytest.skip(err.strip())
    assert out.startswith("published 1 "), (out, err)
    assert [line for line in out.splitlines() if line.startswith("note ")] == []
    store = EmbeddedStore(root)
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == 3 * H
    assert sorted(p.name for p in store.root.iterdir() if p.is_file()) == [
        "forecasts.duckdb", "forecasts.duckdb.checked.json", "forecasts.duckdb.views.json"]


@pytest.mark.parametrize("damaged", [False, True])
def test_the_duckdb_file_being_built_beside_its_place_is_no_dead_writers_temp_file(tmp_path, monkeypatch, damaged):
    """Regression (review32): the file DuckDB builds beside forecasts.duckdb ('.forecasts.duckdb.<8 chars>.tmp',
    mkstemp's) was named as `atomic_file`'s temp files are, and DuckDB holds no flock on it, so any atomic write in
    the warehouse folder meanwhile (another publisher's forecasts.duckdb.checked.json or views.json) removed it as a
    dead writer's: the build then failed ('No such file or directory'), its receipt said the views were not created
    (or the damaged file not rebuilt). Another publisher's write comes here as the views are built (`fault`'s point)."""
    from flowcast.atomic import atomic_write_text
    from flowcast.store import duckdb_views

    store = EmbeddedStore(tmp_path / "wh")
    if damaged:
        store.root.mkdir(parents=True)
        store.db_path.write_bytes(b"")
    monkeypatch.setattr(duckdb_views, "fault", lambda point: atomic_write_text(store.root / "other.json", "{}"))
    notes = publish(store, make_forecast(1, N, H, AS_OF)).notes  # the damaged file's rebuild said, nothing else
    assert [n for n in notes if "and was rebuilt from the Parquet dataset" not in n] == [] and len(notes) == damaged
    monkeypatch.undo()
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == N * H
    assert not [p.name for p in store.root.iterdir() if p.name.startswith(".forecasts.duckdb.")]


def test_what_a_killed_creation_of_the_duckdb_file_left_beside_it_goes_with_a_later_publish(tmp_path):
    """Regression (review32): a publish killed while it built forecasts.duckdb beside its place left its temp file
    or log ('.forecasts.duckdb.<random>.tmp.wal'); the next publish created the file and, its views current, no later
    publish looked again: only a rebuild of a damaged file swept such files, so they stayed for good. A publish
    removes those older than a live writer's (`_STALE_TMP_S`); a younger one may be a live creation's, kept."""
    root = tmp_path / "wh"
    _, err = child(str(root), AS_OF, 1, 3, "publish:in_views").communicate(timeout=300)
    store = EmbeddedStore(root)
    publish(store, make_forecast(1, 3, H, AS_OF))  # creates the file: the leftovers are too young to be a dead one's
    left = sorted(p.name for p in root.iterdir() if p.name.startswith(".forecasts.duckdb."))
    assert left, err  # the killed creation's log
    young = root / ".forecasts.duckdb.young.tmp"
    young.write_bytes(b"")
    old = time.time() - 2 * 600
    for name in left:
        os.utime(root / name, (old, old))
    publish(store, make_forecast(2, 3, H, OTHER), as_of=OTHER, variant=2)  # its views current
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".forecasts.duckdb.")) == [young.name]
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == 2 * 3 * H


def test_a_damaged_duckdb_file_that_cannot_be_rebuilt_leaves_the_publish_done(tmp_path, monkeypatch):
    """Regression (faults17): the rebuild of a damaged forecasts.duckdb that could not create its temp file (a
    full disk, no inode left) raised a bare OSError out of a publish whose forecasts were in place: the run failed
    (a retrain withdrew its promotion) and the publish task's retry of a scheduled forecast found its own file and
    published nothing. The receipt says it, as for a DuckDB file that cannot be opened."""
    import tempfile

    store = EmbeddedStore(tmp_path / "wh")
    store.root.mkdir(parents=True)
    store.db_path.write_bytes(b"")

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tempfile, "mkstemp", full)
    (note,) = publish(store, make_forecast(1, N, H, AS_OF), if_absent=True).notes
    monkeypatch.undo()
    assert f"the DuckDB views in {store.db_path} could not be brought up to date" in note
    assert "No space left on device [ENOSPC] (the disk is full)" in note and "a later publish" in note
    assert store.read().height == N * H
    publish(store, make_forecast(2, N, H, AS_OF), variant=2)  # room again: the next publish rebuilds it
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == N * H


def test_a_duckdb_file_that_cannot_be_opened_is_not_said_to_be_held_open(tmp_path, monkeypatch):
    import duckdb

    store = EmbeddedStore(tmp_path / "wh")

    def full(*_a, **_k):
        raise duckdb.IOException('IO Error: Could not write file "forecasts.duckdb": No space left on device')

    monkeypatch.setattr(duckdb, "connect", full)
    (note,) = publish(store, make_forecast(1, N, H, AS_OF)).notes
    assert "were not created because DuckDB could not create it (IO Error: Could not write file" in note
    assert "No space left on device" in note and "held open" not in note
    assert store.read().height == N * H


def test_a_delete_stopped_between_its_tables_leaves_no_realized_rows_of_forecasts_gone(tmp_path, monkeypatch):
    """Regression: a delete (`flowcast gc --forecasts-before`) removed the key's forecasts, then its realized
    rows; a kill in between left realized rows of an as_of with no publish, which no later gc lists (gc plans
    from the published as_of) and the accuracy table kept for good. The realized rows go first (as a publish
    removes them first): stopped there, the forecasts are still published and the next delete removes them."""
    from test_contract import realized_frame

    store = EmbeddedStore(tmp_path / "wh")
    first = publish(store, make_forecast(1, N, H, AS_OF))
    store.write_realized(DS, realized_frame([AS_OF]), scored={AS_OF: first.content_hash})
    assert store.read_realized(DS).height == 6
    real_remove = store.data.remove_key

    def stopped(table, dataset, as_of):  # the process dies after the first table's files are gone
        real_remove(table, dataset, as_of)
        raise SystemExit(f"killed after removing {table}")

    monkeypatch.setattr(store.data, "remove_key", stopped)
    with pytest.raises(SystemExit):
        store.delete(DS, AS_OF)
    monkeypatch.undo()
    again = EmbeddedStore(tmp_path / "wh")
    published = set(again.as_ofs(DS))
    assert set(again.read_realized(DS)["as_of"].unique().to_list()) <= published  # no orphan realized rows
    assert again.delete(DS, AS_OF)  # the re-run of gc still lists it and completes
    assert again.as_ofs(DS) == [] and again.read_realized(DS).height == 0


@pytest.mark.parametrize("grace_s,kept", [(0.0, 1), (3600.0, 3)])
def test_a_publish_removes_its_keys_files_superseded_longer_than_the_grace(tmp_path, grace_s, kept):
    """A re-publish deletes the files of its key whose successor is older than store.superseded_grace_s
    (`_drop_superseded`, the same rule `ParquetDataset.superseded` lists for gc): with no grace only the
    current file stays; within an hour's grace the replaced files stay (a query may still read them) and are
    what `superseded` lists once that grace has passed, never the current one."""
    from flowcast.store.parquet import is_part

    store = EmbeddedStore(tmp_path / "wh", superseded_grace_s=grace_s)
    for i in range(3):
        publish(store, make_forecast(i + 1, N, H, AS_OF))
    key_dir = store.root / "forecasts" / f"dataset={DS}" / "as_of=2024-03-01T00:00:00"
    parts = sorted(str(p) for p in key_dir.iterdir() if is_part(p.name))
    assert len(parts) == kept and store.read(dataset=DS, as_of=AS_OF).height == N * H
    newest = os.stat(parts[-1]).st_mtime
    assert store.data.superseded("forecasts", newest) == []  # nothing superseded longer than the grace yet
    later = [(older, successor) for older, successor, _ in store.data.superseded("forecasts", newest + 2 * grace_s + 1)]
    assert later == list(itertools.pairwise(parts))


def test_lock_files_of_deleted_keys_go_and_removing_one_never_lets_two_writers_in(tmp_path):
    """Regression: every key ever written left two empty lock files under .locks/ for good (an hourly forecast kept
    8,760 a year after gc removed the forecasts). A delete removes its key's lock files and `flowcast gc --yes`
    the idle ones; a writer waiting on a lock file that is removed takes the lock on the file that replaces it, so
    two writers are never inside one key together."""
    import threading
    import time

    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, AS_OF))
    locks = store.root / ".locks"
    assert sorted(p.name.split(".")[0] for p in locks.iterdir()) == ["forecasts", "realized"]
    assert store.delete(DS, AS_OF) and not list(locks.iterdir())

    inside, seen, order = [0], [], []

    def writer(name: str, hold: float, remove: bool = False) -> None:
        with store.data.lock("k", remove=remove):
            inside[0] += 1
            seen.append(inside[0])
            order.append(name)
            time.sleep(hold)
            inside[0] -= 1

    first = threading.Thread(target=writer, args=("first", 0.5, True))
    first.start()
    time.sleep(0.1)
    waiting = [threading.Thread(target=writer, args=(f"w{i}", 0.2)) for i in range(3)]
    for t in waiting:
        t.start()
    for t in [first, *waiting]:
        t.join(timeout=30)
    assert order[0] == "first" and sorted(order[1:]) == ["w0", "w1", "w2"]
    assert seen == [1, 1, 1, 1]  # never two inside at once
    publish(store, make_forecast(1, N, H, AS_OF))
    with store.data.lock("held"):
        assert store.remove_idle_locks() == 3  # the publish's two and 'k'; not the held one
        assert [p.name for p in locks.iterdir()] == ["held.lock"]


def test_republishing_a_damaged_partition_brings_the_duckdb_views_back(tmp_path):
    """Regression: `flowcast forecast --as-of` of a key whose file was damaged (the remedy its error names)
    published, but the damaged file stayed beside the new one for `superseded_grace_s` and, since the
    views read every file of the dataset, every query of forecasts.duckdb still failed on it ('No magic
    bytes found'), whatever as_of it asked for; and the publish's warning did not say what to do."""
    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, AS_OF))
    publish(store, make_forecast(2, N, H, OTHER), as_of=OTHER, variant=2)
    (part,) = (store.root / "forecasts" / "dataset=sales" / "as_of=2024-02-01T00:00:00").iterdir()
    part.write_bytes(part.read_bytes()[:500])  # cut short outside flowcast
    with pytest.raises(duckdb.Error, match="magic bytes"):
        duck(store, "SELECT count(*) AS n FROM forecasts")
    r = publish(store, make_forecast(3, N, H, OTHER), as_of=OTHER, variant=3)
    assert r.notes == [] and not part.exists()  # nothing can read it: no grace to give it
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == 2 * N * H
    assert variant_of(duck(store, "SELECT * FROM forecasts")) == {1, 3}


@pytest.mark.parametrize("damage", ["cut short", "garbage"])
def test_a_damaged_file_nobody_republishes_is_left_out_of_the_duckdb_views_and_named(tmp_path, damage):
    """Regression: a damaged Parquet file of an earlier as_of that nobody re-publishes broke EVERY query of
    forecasts.duckdb ('No magic bytes found in <file>'), the views reading every file of the dataset, while
    the runs succeeded and `flowcast forecasts` left it out. The views leave it out now, and say which."""
    store = EmbeddedStore(tmp_path / "wh", superseded_grace_s=3600)
    publish(store, make_forecast(1, N, H, AS_OF))
    publish(store, make_forecast(2, N, H, OTHER), as_of=OTHER, variant=2)
    (part,) = (store.root / "forecasts" / "dataset=sales" / "as_of=2024-02-01T00:00:00").iterdir()
    part.write_bytes(part.read_bytes()[:500] if damage == "cut short" else b"not parquet at all" * 40)
    later = datetime(2024, 4, 1)
    r = publish(store, make_forecast(3, N, H, later), as_of=later, variant=3)  # a run of a later as_of
    assert len(r.notes) == 1 and str(part) in r.notes[0] and "re-publish that dataset and as_of" in r.notes[0]
    assert "as_of 2024-02-01, whose footer" in r.notes[0] and store.views_left_out == r.notes
    assert variant_of(duck(store, "SELECT * FROM forecasts")) == {1, 3}  # every query failed on it
    assert duck(store, "SELECT count(*) AS n FROM publishes")["n"][0] == 2
    publish(store, make_forecast(4, N, H, AS_OF), variant=4)  # later publishes of healthy keys are seen
    assert variant_of(duck(store, "SELECT * FROM forecasts")) == {3, 4}
    # the damaged key re-published: its file is back in the views, which read the whole dataset again
    r = publish(store, make_forecast(5, N, H, OTHER), as_of=OTHER, variant=5)
    assert r.notes == [] and store.views_left_out == []
    assert variant_of(duck(store, "SELECT * FROM forecasts")) == {3, 4, 5}
    assert "as_of=*" in json.loads(store.views.state_path.read_text())["views"]["forecasts"]


def test_a_damaged_realized_file_left_out_of_the_views_names_the_run_that_rewrites_it(tmp_path):
    """Regression (faults17): a damaged realized-accuracy file was said to be repaired by a re-publish of its
    as_of, which keeps it when the forecasts are the same; the run that scores the dataset rewrites it (as the
    store's own warning says)."""
    from test_contract import realized_frame

    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, AS_OF))
    store.write_realized(DS, realized_frame([AS_OF]))
    (part,) = (store.root / "realized" / f"dataset={DS}" / "as_of=2024-03-01T00:00:00").iterdir()
    part.write_bytes(part.read_bytes()[:300])
    store.views.state_path.unlink()  # the views looked at again, as after a later write
    store.sync_views()
    (note,) = store.views_left_out
    assert str(part) in note and "the next run that scores that dataset rewrites it" in note
    assert "re-publish that dataset and as_of, or" not in note
    # the as_of as every message writes one, its folder's ISO key in the path (it read 'as_of 2024-03-01T00:00:00')
    assert f"{part}, dataset {DS} as_of 2024-03-01, whose footer" in note, note


def _left_out_said(caplog, part) -> int:
    return sum(1 for r in caplog.records if r.name == "flowcast.store.embedded" and "leave out" in r.getMessage()
               and str(part) in r.getMessage())


def _damaged_home(tmp_path):
    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, AS_OF))
    publish(store, make_forecast(2, N, H, OTHER), as_of=OTHER, variant=2)
    (part,) = (store.root / "forecasts" / "dataset=sales" / "as_of=2024-02-01T00:00:00").iterdir()
    part.write_bytes(part.read_bytes()[:400])
    return store, part


def test_a_damaged_file_the_views_leave_out_is_warned_of_once_not_at_every_write(tmp_path, caplog):
    """Regression (faults18): a run logged 'the DuckDB views ... leave out <file>' about 7 times, once per
    store it opened and per write (publish, realized accuracy). Once per process outside a flow run; the
    receipts still note it every time."""
    from test_contract import realized_frame

    from flowcast.store.factory import repair_views

    store, part = _damaged_home(tmp_path)
    caplog.set_level("WARNING", logger="flowcast.store.embedded")
    store.sync_views()
    assert _left_out_said(caplog, part) == 1 and len(store.views_left_out) == 1
    repair_views(EmbeddedStore(tmp_path / "wh"))  # another task opening the store
    later = datetime(2024, 4, 1)
    r = publish(store, make_forecast(3, N, H, later), as_of=later, variant=3)
    store.write_realized(DS, realized_frame([AS_OF]))
    assert _left_out_said(caplog, part) == 1, [r.getMessage() for r in caplog.records]
    assert len(r.notes) == 1 and str(part) in r.notes[0]  # the receipt still says it


def test_a_damaged_file_the_views_leave_out_is_warned_of_once_per_flow_run(tmp_path, prefect_api):
    import logging

    from prefect import flow, task

    _, part = _damaged_home(tmp_path)

    @task
    def a_task() -> None:
        EmbeddedStore(tmp_path / "wh").sync_views()

    @flow
    def a_run() -> None:
        for _ in range(2):
            EmbeddedStore(tmp_path / "wh").sync_views()
        a_task()

    said: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = said.append  # type: ignore[method-assign]  # Prefect's logging setup may stop propagation
    logger = logging.getLogger("flowcast.store.embedded")
    logger.addHandler(handler)
    try:
        a_run()
        assert [str(part) in r.getMessage() for r in said] == [True]
        a_run()  # the next run says it again
        assert [str(part) in r.getMessage() for r in said] == [True, True]
    finally:
        logger.removeHandler(handler)


def test_a_key_whose_newest_file_is_damaged_never_shows_the_file_it_superseded(tmp_path):
    store = EmbeddedStore(tmp_path / "wh", superseded_grace_s=3600)  # the superseded file stays
    publish(store, make_forecast(1, N, H, AS_OF))
    publish(store, make_forecast(2, N, H, OTHER), as_of=OTHER, variant=2)
    publish(store, make_forecast(3, N, H, OTHER), as_of=OTHER, variant=3)
    old, newest = sorted((store.root / "forecasts" / "dataset=sales" / "as_of=2024-02-01T00:00:00").iterdir())
    newest.write_bytes(newest.read_bytes()[:300])
    assert store.sync_views() is None and [str(newest) in p for p in store.views_left_out] == [True]
    assert variant_of(duck(store, "SELECT * FROM forecasts")) == {1}  # never variant 2, superseded
    old.write_bytes(b"garbage")  # the older one damaged instead: the newest is read
    newest.unlink()
    publish(store, make_forecast(4, N, H, OTHER), as_of=OTHER, variant=4)
    assert variant_of(duck(store, "SELECT * FROM forecasts")) == {1, 4}
    assert store.delete(DS, AS_OF)  # a key the views listed, removed: the views follow
    assert variant_of(duck(store, "SELECT * FROM forecasts")) == {4}


def test_a_publish_waits_for_a_duckdb_file_held_for_a_moment_and_creates_the_views(tmp_path):
    """Regression (faults40): three first publishes into a fresh warehouse at once said in 3 of 8 trials `the DuckDB
    views ... were not created because the file is held open by another program ...; a later publish creates the
    views`, while the views were there: another publisher of the store held the file for the moment it took to
    create them. A lock held for a moment is waited for now (a program holding it for good still gets the note)."""
    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, 3, H, OTHER), as_of=OTHER)
    store.views.state_path.unlink()  # its views not recorded yet: the file another publisher is creating them in
    holder = subprocess.Popen([sys.executable, "-c", HOLD_DUCKDB.replace("select count(*) from forecasts", "select 1"),
                               str(store.db_path), "rw"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        release = threading.Timer(1.0, holder.stdin.close)  # it lets go while this publish waits for the file
        release.start()
        r = publish(store, make_forecast(2, 3, H, AS_OF), variant=2)
        release.join()
    finally:
        if not holder.stdin.closed:
            holder.stdin.close()
        holder.wait(timeout=30)
    assert r.notes == []
    assert store.views.current({"forecasts"})
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == 2 * 3 * H


@pytest.mark.parametrize("held", [False, True])
def test_the_views_of_a_copied_home_never_read_the_original_homes_files(tmp_path, held):
    """Regression: in a copy of a home (cp -a) whose views were not rebuilt (no flowcast command ran there
    yet, the DuckDB file held open, read-only), the views still read the ORIGINAL home's files: a query
    of the copy silently returned the other home's forecasts. They stop with an error naming both now,
    and the first command that opens the copy's store rebuilds them."""
    a = EmbeddedStore(tmp_path / "a" / "warehouse")
    publish(a, make_forecast(1, N, H, AS_OF))
    subprocess.run(["cp", "-a", str(tmp_path / "a"), str(tmp_path / "b")], check=True)
    publish(a, make_forecast(2, N, H, AS_OF), variant=2)  # the original changes afterwards
    b_db = tmp_path / "b" / "warehouse" / "forecasts.duckdb"
    if held:  # a DuckDB shell holds the copy's file while a run publishes there: the views cannot be rebuilt
        holder = subprocess.Popen([sys.executable, "-c", HOLD_DUCKDB.replace("select count(*) from forecasts",
                                                                           "select 1"), str(b_db), "rw"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "ready"
            r = publish(EmbeddedStore(tmp_path / "b" / "warehouse"), make_forecast(3, N, H, OTHER), as_of=OTHER,
                        variant=3)
            assert len(r.notes) == 1 and "held open by another program" in r.notes[0]
            assert f"built for {os.path.realpath(tmp_path / 'a' / 'warehouse' / 'forecasts.duckdb')}" in r.notes[0]
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
    con = duckdb.connect(str(b_db), read_only=True)
    try:
        with pytest.raises(duckdb.Error, match=r"built for .*/a/warehouse/forecasts.duckdb.*opened at .*/b/warehouse"):
            con.sql("SELECT * FROM forecasts").fetchall()
        with pytest.raises(duckdb.Error, match="flowcast forecasts --home"):
            con.sql("SELECT count(*) FROM publishes WHERE rows < 0").fetchall()
    finally:
        con.close()
    b = EmbeddedStore(tmp_path / "b" / "warehouse")
    assert b.sync_views() is None  # what `flowcast forecasts` and every publish do when they open it
    assert variant_of(duck(b, "SELECT * FROM forecasts")) == ({1, 3} if held else {1})  # the copy's own forecasts
    assert variant_of(duck(a, "SELECT * FROM forecasts")) == {2}


def _damage_page(path, column: str = "y_hat") -> None:
    """Flip one byte in the middle of `column`'s data page, leaving the footer whole (a disk error, a bad copy)."""
    import pyarrow.parquet as pq

    md = pq.ParquetFile(path).metadata
    names = [md.row_group(0).column(i).path_in_schema for i in range(md.num_columns)]
    col = md.row_group(0).column(names.index(column))
    data = bytearray(path.read_bytes())
    data[col.data_page_offset + col.total_compressed_size // 2] ^= 0x5A
    path.write_bytes(bytes(data))
    assert pq.ParquetFile(path).metadata.num_rows == md.num_rows  # the footer still reads


def test_bytes_damaged_inside_a_data_page_are_detected_named_and_repaired_by_republishing(tmp_path):
    """Regression: a byte overwritten in the middle of a y_hat data page (the footer intact) was read
    back as other forecast values, silently, by every reader (`flowcast forecasts`, realized accuracy,
    the unchanged check). Each page carries a CRC now, checked on every read."""
    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, AS_OF, noise=True))
    publish(store, make_forecast(2, N, H, OTHER, noise=True), as_of=OTHER, variant=2)
    good = store.read(as_of=OTHER)
    part = Path(store.data.current("forecasts", DS, OTHER))
    _damage_page(part)
    with pytest.raises(PublishError, match=r"cannot be read .*CRC.*re-publish dataset sales as_of "
                                           r"2024-02-01 \(flowcast forecast --as-of 2024-02-01T00:00:00"):
        store.read(as_of=OTHER)
    everything = store.read()  # every as_of: the damaged one left out and said, never read wrong
    assert variant_of(everything) == {1} and str(part) in store.skipped[0]
    checked, problems = store.verify()
    assert checked == 2 and len(problems) == 1 and str(part) in problems[0] and "2024-02-01" in problems[0]
    publish(store, make_forecast(2, N, H, OTHER, noise=True), as_of=OTHER, variant=2)  # the repair: re-publish
    assert store.verify() == (2, []) and store.read(as_of=OTHER).equals(good)


def test_verify_names_a_file_whose_content_is_not_what_its_publish_recorded(tmp_path):
    """A file written without page CRCs (by flowcast before them) is checked against the content hash its
    publish recorded in the footer."""
    import pyarrow.parquet as pq

    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, AS_OF))
    part = Path(store.data.current("forecasts", DS, AS_OF))
    table = pq.read_table(part)
    y = table.column("y_hat").to_pylist()
    y[3] += 1.0  # what a damaged page without a CRC reads as
    changed = table.set_column(table.schema.get_field_index("y_hat"), "y_hat", pl.Series(y).to_arrow())
    pq.write_table(changed.replace_schema_metadata(table.schema.metadata), part, compression="zstd")
    assert store.read(as_of=AS_OF).height == N * H  # no CRC to fail: only the hash can tell
    checked, [problem] = store.verify()
    assert checked == 1 and "content hash" in problem and str(part) in problem


@pytest.mark.parametrize("runs", [1, 64, 65, 1000])
def test_the_warnings_said_per_run_are_bounded_in_a_long_running_process(runs):
    """Regression (polish19): the (run, sentence) pairs warned of once per flow run (sync_views) stayed in memory
    for the life of the process, one set entry per run and damaged file: a `flowcast serve` running for months grew
    without bound. Only the last 64 runs that warned are remembered: the newest still says each sentence once, the
    oldest evicted one says it again (its run long over)."""
    from flowcast.store import embedded

    embedded._SAID.clear()
    problem = "the DuckDB views in /x leave out /x/part.parquet"
    for i in range(runs):
        assert embedded._first_said(f"run-{i}", problem) is True
        assert embedded._first_said(f"run-{i}", problem) is False
    assert len(embedded._SAID) == min(runs, embedded._SAID_RUNS)
    assert embedded._first_said(f"run-{runs - 1}", problem) is False  # the newest run remembers
    assert embedded._first_said(f"run-{runs - 1}", problem + " too") is True
    assert embedded._first_said("run-0", problem) is (runs > embedded._SAID_RUNS)  # evicted: said once more
    assert len(embedded._SAID) <= embedded._SAID_RUNS
    embedded._SAID.clear()


# ---------------------------------------------------------------------- views of tables without a readable file
def _columns(store: EmbeddedStore, view: str) -> list[tuple[str, str]]:
    return duck(store, f"DESCRIBE {view}").select("column_name", "column_type").rows()


@pytest.mark.parametrize("realized", ["never scored", "its only file damaged"])
def test_the_realized_view_exists_empty_with_its_columns_until_a_readable_file(tmp_path, caplog, realized):
    """Regression (faults32): with no realized-accuracy file yet, or its only one damaged, forecasts.duckdb had no
    `realized` view and the README's query of it failed 'Table with name realized does not exist'. It is empty
    now, with the columns and types it has once files exist, the damaged file named as before."""
    from test_contract import realized_frame

    store = EmbeddedStore(tmp_path / "wh")
    r = publish(store, make_forecast(1, N, H, AS_OF))
    part = None
    if realized == "its only file damaged":
        store.write_realized(DS, realized_frame([AS_OF]))
        (part,) = (store.root / "realized" / f"dataset={DS}" / "as_of=2024-03-01T00:00:00").iterdir()
        part.write_bytes(part.read_bytes()[:300])
        caplog.set_level("WARNING", logger="flowcast.store.embedded")
        assert store.sync_views() is None  # what `open_store` does for every command
        assert str(part) in store.views_left_out[0] and _left_out_said(caplog, part) == 1
    assert duck(store, "SELECT count(*) AS n FROM realized")["n"][0] == 0
    empty = _columns(store, "realized")
    assert store.write_realized(DS, realized_frame([AS_OF]), scored={AS_OF: r.content_hash}) == 6
    assert store.views_left_out == [] and (part is None or not part.exists())
    assert duck(store, "SELECT count(*) AS n FROM realized")["n"][0] == 6
    assert _columns(store, "realized") == empty  # the same names and types, from the store's declared schema
    assert [c for c, _ in empty] == REALIZED_COLUMNS


def test_the_forecasts_views_exist_empty_when_no_file_reads_and_after_every_key_is_removed(tmp_path):
    """Regression: a store whose only forecasts file was damaged lost its `forecasts` and `publishes` views (dropped:
    'Table with name forecasts does not exist'), and one whose every key was removed (`flowcast gc`) kept views over
    a glob matching nothing ('No files found that match the pattern'). Both are empty now, with their columns."""
    from test_contract import realized_frame

    store = EmbeddedStore(tmp_path / "wh", superseded_grace_s=3600)
    r = publish(store, make_forecast(1, N, H, AS_OF).drop("y_hat_q10", "y_hat_q90"))
    whole = {v: _columns(store, v) for v in ("forecasts", "publishes")}
    (part,) = (store.root / "forecasts" / f"dataset={DS}" / "as_of=2024-03-01T00:00:00").iterdir()
    good = part.read_bytes()
    part.write_bytes(good[:400])
    assert store.sync_views() is None and len(store.views_left_out) == 1
    for view in ("forecasts", "publishes"):
        assert duck(store, f"SELECT count(*) AS n FROM {view}")["n"][0] == 0
        assert _columns(store, view) == whole[view]
    part.write_bytes(good)  # put back: read again
    assert store.sync_views() is None and store.views_left_out == []
    assert duck(store, "SELECT count(*) AS n FROM forecasts")["n"][0] == N * H
    store.write_realized(DS, realized_frame([AS_OF]), scored={AS_OF: r.content_hash})
    assert store.delete(DS, AS_OF)
    for view in ("forecasts", "publishes", "realized"):
        assert duck(store, f"SELECT count(*) AS n FROM {view}")["n"][0] == 0


def test_a_read_of_the_first_rows_reads_no_more_and_its_summary_counts_every_row(tmp_path):
    """fixE52: `flowcast forecasts`' table read every matching row (1.4M rows, 1.04 GB peak) to show 50 and count
    the rest. `read(rows=n)` is `read().head(n)`, read up to those rows (a damaged file of a later key is not even
    opened); `read_summary` counts every row (`rows`) and series from the columns asked for, without their values."""
    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, OTHER), as_of=OTHER)
    publish(store, make_forecast(2, N, H, AS_OF), variant=2)
    whole = store.read()
    for n in (1, 7, N * H, N * H + 3, 2 * N * H, 10**6):
        assert store.read(rows=n).equals(whole.head(n)), n
    assert store.read(rows=4, unique_id="s00003").equals(store.read(unique_id="s00003").head(4))
    assert store.read(rows=4, model="nobody").height == 0

    def asked(c: str) -> bool:
        return c in ("dataset", "as_of", "unique_id", "run_id") or c.startswith(("y_hat_lo", "y_hat_q"))

    summary = store.read_summary(asked)
    assert summary["rows"].sum() == whole.height and summary["unique_id"].n_unique() == N
    assert summary.group_by("run_id").agg(pl.col("rows").sum()).sort("run_id").rows() == [("run-1", N * H),
                                                                                          ("run-2", N * H)]
    assert set(summary.columns) == {c for c in whole.columns if asked(c)} | {"rows"} and "ds" not in summary.columns
    assert any(c.startswith("y_hat_q") for c in summary.columns)  # whether each value is there, not the value
    assert set(summary.select(pl.col("^y_hat_.*$")).unpivot()["value"].to_list()) <= {0.0, None}
    one = store.read_summary(asked, unique_id="s00003", as_of=AS_OF)
    assert one["rows"].sum() == H and one["unique_id"].to_list() == ["s00003"]
    later = next((store.root / "forecasts" / f"dataset={DS}" / "as_of=2024-03-01T00:00:00").glob("*.parquet"))
    os.truncate(later, 100)  # the later key's file damaged: the first rows never reach it, the summary says it
    assert store.read(rows=5).equals(whole.head(5)) and store.skipped == []
    assert store.read_summary(asked)["rows"].sum() == N * H and len(store.skipped) == 1, store.skipped


def test_the_summary_is_sorted_so_the_ids_named_under_a_table_are_the_same_each_time(tmp_path):
    """fixI52: `read_summary` grouped without keeping order, so the first 5 series named under a cut table
    ('no 80% interval for ...') were 5 random ones of those lacking it, different from one run to the next."""
    from flowcast.cli.store import _summarised, forecast_tables

    store = EmbeddedStore(tmp_path / "wh")
    fc = make_forecast(1, 400, 2, AS_OF).with_columns(
        pl.when(pl.col("unique_id").str.slice(-1).cast(pl.Int32) % 2 == 1).then(None)
        .otherwise(pl.col("y_hat") - d).alias(c) for c, d in (("y_hat_lo80", 1.0), ("y_hat_hi80", -1.0)))
    publish(store, fc)
    publish(store, make_forecast(2, 300, 2, OTHER), as_of=OTHER, variant=2)
    summary = store.read_summary(_summarised)
    assert summary["rows"].sum() == 400 * 2 + 300 * 2
    assert summary.equals(summary.sort("dataset", "as_of", "unique_id", "model", "model_version", "run_id",
                                       nulls_last=True))
    assert summary["as_of"].to_list()[0] == OTHER and summary["unique_id"].to_list()[:3] == ["s00000", "s00001",
                                                                                            "s00002"]
    text = " ".join(forecast_tables(store.read(as_of=AS_OF, rows=50),
                                    whole=store.read_summary(_summarised, as_of=AS_OF)).split())
    assert "no 80% interval for s00001, s00003, s00005, s00007, s00009 and 195 more, 200 of 400 series" in text, text


def test_a_read_of_the_first_rows_finds_the_value_columns_they_lack_in_the_files_footers(tmp_path, monkeypatch):
    """store54: whether a value column the first rows lack holds a value in a later matched row was read from that
    column whole, every row of every matched file, a batch at a time. The footers' statistics (each row group's null
    count) say it without decoding a row, and a column found is not looked for in the later files; a filter the
    statistics cannot decide reads the row group (those columns alone). Rows decoded are counted at pyarrow's readers."""
    import pyarrow.parquet as pq

    store = EmbeddedStore(tmp_path / "wh")
    gap = pl.when(pl.col("unique_id") < "s00005").then(None).otherwise(pl.col("y_hat") - 1)
    publish(store, make_forecast(1, 2000, H, OTHER).with_columns(gap.alias("y_hat_lo80"), (gap + 2).alias("y_hat_hi80")),
            as_of=OTHER)
    publish(store, make_forecast(2, 2000, H, AS_OF).with_columns(
        *((pl.col("y_hat") + d).alias(c) for c, d in (("y_hat_lo80", -1), ("y_hat_hi80", 1), ("y_hat_lo95", -2),
                                                       ("y_hat_hi95", 2)))), variant=2)
    whole = store.read()
    decoded: list[int] = []
    batches, group = pq.ParquetFile.iter_batches, pq.ParquetFile.read_row_group

    def iter_batches(self, *args, **kwargs):
        for batch in batches(self, *args, **kwargs):
            decoded.append(batch.num_rows)
            yield batch

    def read_row_group(self, *args, **kwargs):
        table = group(self, *args, **kwargs)
        decoded.append(table.num_rows)
        return table

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", iter_batches)
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", read_row_group)
    got = store.read(rows=5)
    assert got.equals(whole.head(5)) and got["y_hat_lo80"].null_count() == 5 and "y_hat_hi95" in got.columns
    assert decoded == [2000 * H]  # the first file's first batch alone; the check read 2 x 12,000 more
    for n, asked in ((2, {"unique_id": "s00001"}), (3, {"unique_id": "s00007"}), (4, {"as_of": OTHER}),
                     (1, {"model": "nobody"})):
        assert store.read(rows=n, **asked).equals(store.read(**asked).head(n)), asked
    assert "y_hat_hi95" not in store.read(rows=3, as_of=OTHER).columns
