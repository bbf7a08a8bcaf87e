"""`flowcast gc --yes` against a concurrent publish, two real processes forced into the interleaving by a
FLOWCAST_FAULT pause point (gc stopped there with SIGSTOP, the other process run, gc continued with SIGCONT)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from proc_state import stopped

from flowcast.config import load_settings
from flowcast.ops.quiet import fingerprint_path, record_fingerprint
from flowcast.registry import ModelRegistry
from flowcast.store import open_store

NOW = datetime(2024, 6, 1, 12, 0)
PUBLISHER = Path(__file__).resolve().parents[1] / "publish_faults" / "pinned_publisher.py"


def _publish(settings, as_of: datetime, version: str) -> None:
    fc = pl.DataFrame({"unique_id": ["a"], "ds": [as_of + timedelta(days=31)], "step": [1], "y_hat": [1.0]},
                      schema_overrides={"step": pl.Int32})
    open_store(settings).publish(fc, dataset="sales", as_of=as_of, model="gru", model_version=version, run_id="r",
                                 created_at=NOW)


def _home_in_production(tmp_path: Path) -> tuple[Path, str]:
    """A home whose registry has one version of `sales` (a tiny checkpoint), in production: (home, version)."""
    home = tmp_path / "home"
    reg = ModelRegistry(home / "models")
    art = tmp_path / "art"
    (art / "ckpt").mkdir(parents=True)
    (art / "ckpt" / "model.ckpt").write_bytes(b"w" * 100)
    v1 = reg.register(art, name="gru", dataset="sales", created_at=NOW).version
    reg.promote(v1, dataset="sales")
    return home, v1


@pytest.mark.timeout(300)
def test_a_version_republished_after_gc_deleted_its_forecasts_stays(tmp_path):
    """Regression: `gc --forecasts-before D --yes` lets a version go when the only forecasts naming it are among those
    it deletes. It deleted them, then removed the version with their keys still counted as gone: a forecast backfill
    of such a date (a real process: pin the model `model_for_as_of` chose, publish, unpin) that re-published the key
    in between left published forecasts naming a version whose files gc removed. The publishes are read as the store
    holds them when each version goes, under the registry's lock after its pin check: the version stays."""
    home = tmp_path / "home"
    reg = ModelRegistry(home / "models")
    art = tmp_path / "art"
    (art / "ckpt").mkdir(parents=True)
    (art / "ckpt" / "model.ckpt").write_bytes(b"w" * 100)
    v1, v2, v3 = (reg.register(art, name="gru", dataset="sales", created_at=NOW).version for _ in range(3))
    reg.promote(v3, dataset="sales")
    settings = load_settings(home=home)
    old, kept = datetime(2023, 6, 1), datetime(2023, 9, 1)
    _publish(settings, old, v1)
    _publish(settings, kept, v3)
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text("[retention]\nkeep_versions = 0\n")

    env = {**os.environ, "FLOWCAST_FAULT": "gc:before_models", "FLOWCAST_FAULT_SIGNAL": "SIGSTOP"}
    gc = subprocess.Popen([sys.executable, "-m", "flowcast", "gc", "--home", str(home), "--config", str(cfg),
                           "--as-of", NOW.isoformat(), "--forecasts-before", "2023-08-01", "--yes", "--json"],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert stopped(gc), gc.communicate()
        assert open_store(settings).as_ofs("sales") == [kept]  # gc deleted the old key's forecasts, no version yet
        assert {v.version for v in reg.list()} == {v1, v2, v3}
        backfill = subprocess.run([sys.executable, str(PUBLISHER), str(home), "sales", old.isoformat(), v1],
                                  capture_output=True, text=True, timeout=120, check=False)
        assert backfill.returncode == 0, backfill.stderr
    finally:
        if gc.poll() is None:
            os.kill(gc.pid, signal.SIGCONT)
    out, err = gc.communicate(timeout=120)
    assert gc.returncode == 0, err
    said = json.loads(out.strip().splitlines()[-1])
    assert sorted(i["version"] for i in said["items"] if i["kind"] == "model") == [v1, v2]  # its plan
    assert [i["version"] for i in said["skipped"] if i["kind"] == "model"] == [v1]
    assert open_store(settings).receipt_of("sales", old)["model_version"] == v1
    left = {v.version for v in ModelRegistry(home / "models").list()}
    assert v1 in left, "gc removed the version the re-published forecasts name"
    assert v2 not in left and v3 in left


def _flocked_by(pid: int) -> set[int]:
    """The inodes of the files process `pid` holds an flock on now (/proc/locks)."""
    held = set()
    with open("/proc/locks") as fh:
        for line in fh:
            f = line.split()
            if "->" not in f and f[1] == "FLOCK" and f[4] == str(pid):
                held.add(int(f[5].rsplit(":", 1)[1]))
    return held


def _ended_or_waiting_on(proc: subprocess.Popen[str], holder: int, timeout: float = 120.0) -> bool:
    """Wait until `proc` ended (False) or holds open a file on which the stopped process `holder` holds an flock
    (True: it waits for that lock, which it cannot get before `holder` goes on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        held = _flocked_by(holder)
        for fd in Path(f"/proc/{proc.pid}/fd").glob("*"):
            try:
                if os.stat(fd).st_ino in held:
                    return True
            except OSError:
                continue
        time.sleep(0.1)
    raise AssertionError(f"the publisher neither ended nor waited on gc's lock in {timeout:g}s")


@pytest.mark.timeout(300)
def test_a_publish_record_written_while_gc_deletes_its_key_stays(tmp_path):
    """Regression: gc deleted a key's forecasts, checked the key was not published again, and then removed its
    publish record (`published/<dataset>/<as_of>.json`) without the key's lock: a backfill of that date (a real
    process: pin, publish, record the fingerprint, unpin) that published and recorded in between lost its record,
    so a quiet schedule published again what it held (and a `--data` dataset's tz was read from an older record).
    The record goes under the key's lock now, the one a publish takes: the publish waits for it and records after."""
    home, v1 = _home_in_production(tmp_path)
    settings = load_settings(home=home)
    old = datetime(2023, 6, 1)
    _publish(settings, old, v1)
    record = fingerprint_path(home, "sales", old)
    record_fingerprint(settings, dataset="sales", as_of=old, content_hash=open_store(settings).receipt_of(
        "sales", old)["content_hash"], fingerprint="fp-old", run_id="r")

    env = {**os.environ, "FLOWCAST_FAULT": "gc:before_record", "FLOWCAST_FAULT_SIGNAL": "SIGSTOP"}
    gc = subprocess.Popen([sys.executable, "-m", "flowcast", "gc", "--home", str(home), "--as-of", NOW.isoformat(),
                           "--forecasts-before", "2023-08-01", "--yes", "--json"],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    backfill = None
    try:
        assert stopped(gc), gc.communicate()
        assert open_store(settings).as_ofs("sales") == [] and record.exists()  # the forecasts gone, the record not
        backfill = subprocess.Popen([sys.executable, str(PUBLISHER), str(home), "sales", old.isoformat(), v1,
                                     "fp-new"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _ended_or_waiting_on(backfill, gc.pid)
    finally:
        if gc.poll() is None:
            os.kill(gc.pid, signal.SIGCONT)
    out, err = gc.communicate(timeout=120)
    assert gc.returncode == 0, err
    assert [i["kind"] for i in json.loads(out.strip().splitlines()[-1])["items"]] == ["forecast"]
    assert backfill is not None
    _, berr = backfill.communicate(timeout=120)
    assert backfill.returncode == 0, berr
    held = open_store(settings).receipt_of("sales", old)
    assert held["run_id"] == "backfill-2023-06-01"
    assert record.exists(), "gc removed the publish record of the backfill that published the key again"
    rec = json.loads(record.read_text())
    assert (rec["content_hash"], rec["data_fingerprint"]) == (held["content_hash"], "fp-new")


@pytest.mark.timeout(300)
def test_a_publish_record_written_after_gc_deleted_its_key_is_not_written(tmp_path):
    """Regression: a publish leaves the key's lock once its file is visible and records its fingerprint after. A
    backfill of a date (a real process: pin, publish, record, unpin) stopped in that gap while `gc --forecasts-before`
    deleted the key (and its record, under the key's lock) then wrote its record for good: a record naming forecasts
    no longer there. The record is written under the key's lock, only while the key holds that publish."""
    home, v1 = _home_in_production(tmp_path)
    settings = load_settings(home=home)
    old = datetime(2023, 6, 1)
    record = fingerprint_path(home, "sales", old)

    env = {**os.environ, "FLOWCAST_FAULT": "publish:before_record", "FLOWCAST_FAULT_SIGNAL": "SIGSTOP"}
    backfill = subprocess.Popen([sys.executable, str(PUBLISHER), str(home), "sales", old.isoformat(), v1, "fp-new"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert stopped(backfill), backfill.communicate()
        assert open_store(settings).as_ofs("sales") == [old] and not record.exists()  # published, not recorded
        gc = subprocess.run([sys.executable, "-m", "flowcast", "gc", "--home", str(home), "--as-of", NOW.isoformat(),
                             "--forecasts-before", "2023-08-01", "--yes", "--json"],
                            capture_output=True, text=True, timeout=120, check=False)
        assert gc.returncode == 0, gc.stderr
        assert [i["kind"] for i in json.loads(gc.stdout.strip().splitlines()[-1])["items"]] == ["forecast"]
    finally:
        if backfill.poll() is None:
            os.kill(backfill.pid, signal.SIGCONT)
    _, berr = backfill.communicate(timeout=120)
    assert backfill.returncode == 0, berr
    assert open_store(settings).as_ofs("sales") == []
    assert not record.exists(), "the backfill recorded a publish gc had deleted: a record of no forecasts"
