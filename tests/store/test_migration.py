"""A store written by the code before forecasts were keyed by dataset (commit 1493df0, run from
tests/store/legacy/publish_v0.py in its own process) is migrated on first open, losing nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
from publisher import make_forecast
from store_helpers import publish

from flowcast.config import load_settings
from flowcast.registry import ModelRegistry
from flowcast.store import EmbeddedStore, open_store

MAKE_OLD = Path(__file__).parent / "legacy" / "make_store.py"
A, B, C = datetime(2024, 1, 1), datetime(2024, 2, 1), datetime(2024, 3, 1)
H = 4


def old_store(warehouse: Path, items: list[dict]) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                                       os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, str(MAKE_OLD), str(warehouse), json.dumps(items)], env=env,
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def register(models: Path, tmp_path: Path, name: str, source: str) -> str:
    art = tmp_path / f"art-{name}"
    art.mkdir()
    (art / "model.ckpt").write_text("weights")
    mv = ModelRegistry(models).register(art, name=name, config={}, fingerprint={"source": source}, metrics={},
                                        as_of=None, created_at=datetime(2024, 1, 1))
    return mv.version


ITEMS = [
    {"as_of": A.isoformat(), "variant": 1, "n": 5, "h": H, "model": "gru", "model_version": "gru-v1"},
    {"as_of": B.isoformat(), "variant": 2, "n": 5, "h": H, "model": "seasonal_naive", "model_version": None},
    {"as_of": C.isoformat(), "variant": 3, "n": 6, "h": H, "model": "lstm", "model_version": "lstm-v9"},
]


def old_rows(warehouse: Path) -> pl.DataFrame:
    """Every row the old store holds, straight from its Parquet files (its source of truth)."""
    files = sorted((warehouse / "forecasts").glob("as_of=*/part-0.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files]).sort("as_of", "unique_id", "ds")


def test_a_store_written_by_the_old_code_is_migrated_losing_nothing(tmp_path):
    home = tmp_path / "home"
    wh = home / "warehouse"
    assert register(home / "models", tmp_path, "gru", "tiny") == "gru-v1"
    receipts = old_store(wh, ITEMS)
    before = old_rows(wh)
    assert before.height == (5 + 5 + 6) * H and "dataset" not in before.columns
    con = duckdb.connect(str(wh / "forecasts.duckdb"), read_only=True)  # the old mirror: a table
    assert con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'forecasts'"
                       ).fetchall() == [("BASE TABLE",)]
    con.close()

    # a reader opening the old store before any writer: every row, under its dataset, nothing written
    reader = EmbeddedStore(wh, resolve_legacy=None)
    seen = reader.read()
    assert seen.height == before.height and set(seen["dataset"]) == {"default"}  # no registry given: rule 4
    assert sorted(p.name for p in (wh / "forecasts").iterdir()) == [f"as_of={a.isoformat()}" for a in (A, B, C)]

    store = open_store(load_settings(home=home))  # first open: migrates
    after = store.read()
    assert after.height == before.height
    assert set(after["dataset"]) == {"tiny"}  # A: its model version's source; B, C: the only dataset of the others
    assert after.drop("dataset").sort("as_of", "unique_id", "ds").equals(before.select(after.drop("dataset").columns))
    assert store.as_ofs("tiny") == [A, B, C] and store.datasets() == ["tiny"]
    assert not list((wh / "forecasts").glob("as_of=*"))  # the old layout is gone ...
    for rec in receipts:  # ... each receipt moved with its rows
        meta = store.receipt_of("tiny", datetime.fromisoformat(rec["as_of"]))
        assert meta["content_hash_before_dataset"] == rec["content_hash"]
        assert meta["migrated_from"] == f"forecasts/as_of={rec['as_of']}/part-0.parquet" and meta["dataset"] == "tiny"
    # the DuckDB tables became views over the migrated files
    con = duckdb.connect(str(wh / "forecasts.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'forecasts'"
                           ).fetchall() == [("VIEW",)]
        assert con.execute("SELECT dataset, count(*) FROM forecasts GROUP BY ALL").fetchall() == [("tiny", before.height)]
        assert con.execute("SELECT count(*) FROM publishes WHERE dataset = 'tiny'").fetchall() == [(3,)]
    finally:
        con.close()

    # after the migration: identical forecasts hash the same, and other datasets stay apart
    migrated_hash = store.receipt_of("tiny", A)["content_hash"]
    again = store.publish(make_forecast(1, 5, H, A), dataset="tiny", as_of=A, model="gru", model_version="gru-v1",
                          run_id="new-run", created_at=datetime(2024, 6, 1))
    assert again.replaced_rows == 5 * H and again.previous_content_hash == migrated_hash and again.unchanged
    publish(store, make_forecast(7, 2, H, A), as_of=A, variant=7, dataset="other")
    assert store.read(dataset="tiny").height == before.height
    assert open_store(load_settings(home=home)).migrate() == []  # idempotent


def test_rules_without_a_registry_and_with_an_explicit_name(tmp_path):
    wh = tmp_path / "home" / "warehouse"
    old_store(wh, ITEMS[1:])  # a baseline and a version the registry does not know
    shutil.copytree(wh, tmp_path / "copy")
    store = open_store(load_settings(home=tmp_path / "home"))
    assert set(store.read()["dataset"]) == {"default"} and store.read().height == (5 + 6) * H
    named = open_store(load_settings(home=tmp_path / "other", store={"url": str(tmp_path / "copy"),
                                                                      "legacy_dataset": "us_employment"}))
    assert named.datasets() == ["us_employment"] and named.as_ofs("us_employment") == [B, C]


def test_an_interrupted_migration_neither_loses_nor_duplicates(tmp_path):
    home = tmp_path / "home"
    wh = home / "warehouse"
    old_store(wh, ITEMS[:1])
    legacy = wh / "forecasts" / f"as_of={A.isoformat()}" / "part-0.parquet"
    kept = legacy.read_bytes()
    store = EmbeddedStore(wh, legacy_dataset="tiny")
    assert len(store.migrate()) == 1
    legacy.parent.mkdir()
    legacy.write_bytes(kept)  # as if killed after writing the new file, before removing the old one
    assert store.read().height == 5 * H and store.as_ofs("tiny") == [A]  # the new file wins, no duplicate
    assert store.migrate() == [] and not legacy.exists()  # the next migration only removes the old file
    assert store.read().height == 5 * H


def test_a_reader_never_migrates_nor_writes(tmp_path):
    wh = tmp_path / "wh"
    old_store(wh, ITEMS[:2])
    stamp = {p: p.stat().st_mtime_ns for p in wh.rglob("*") if p.is_file()}
    store = EmbeddedStore(wh, legacy_dataset="tiny")
    assert store.read().height == 10 * H and store.has("tiny", A) and store.receipt_of("tiny", B)
    assert {p: p.stat().st_mtime_ns for p in wh.rglob("*") if p.is_file()} == stamp


def test_the_summary_of_a_store_not_yet_migrated_counts_every_row(tmp_path):
    """fixI52: `flowcast forecasts`' summary of a partition read before its migration put the column subset in
    published order, which asks for ds, step, y_hat: ColumnNotFoundError "ds" on every legacy store."""
    from flowcast.cli.store import _summarised

    wh = tmp_path / "wh"
    old_store(wh, ITEMS)
    reader = EmbeddedStore(wh, resolve_legacy=None)
    summary = reader.read_summary(_summarised)
    assert summary["rows"].sum() == old_rows(wh).height and set(summary["dataset"]) == {"default"}
    assert "ds" not in summary.columns and summary["unique_id"].n_unique() == 6
    assert reader.read().columns[:4] == ["dataset", "as_of", "unique_id", "ds"]  # whole rows still in order
