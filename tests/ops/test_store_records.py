"""Publish records kept in a PostgreSQL store that two homes (two machines, no shared home) share: home B reads
what home A's publish recorded (its data fingerprint, tz, time label, freq) from the store. Before, each home read
its own `published/` folder alone: B's "nothing new" check found no fingerprint of A's publish, and B read a
`--data` dataset A published in UTC and as interval starts. A real PostgreSQL server (tests/conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from flowcast.config import Settings, SourceConfig
from flowcast.errors import ConfigError
from flowcast.ops.quiet import (
    check_time_label,
    dataset_time_label,
    dataset_tz,
    fingerprint_path,
    record_fingerprint,
    record_store,
    recorded_fingerprint,
)
from flowcast.store import open_store

AS_OF = datetime(2024, 3, 1)


def _forecasts(variant: int) -> pl.DataFrame:
    return pl.DataFrame({"unique_id": ["a", "a", "b", "b"], "step": [1, 2, 1, 2],
                         "ds": [AS_OF + timedelta(hours=h) for h in (1, 2, 1, 2)],
                         "y_hat": [float(variant), 2.0, 3.0, 4.0]})


def _publish(settings: Settings, variant: int) -> str:
    receipt = open_store(settings).publish(_forecasts(variant), dataset="meters", as_of=AS_OF, model="naive",
                                           model_version=None, run_id=f"run-{variant}", created_at=AS_OF)
    return receipt.content_hash


@pytest.fixture
def homes(postgres, pg_database, tmp_path) -> tuple[Settings, Settings]:
    store = {"url": postgres.url(pg_database)}
    return Settings(home=tmp_path / "machine-a", store=store), Settings(home=tmp_path / "machine-b", store=store)


def test_home_b_reads_the_record_of_home_a_publish_from_the_shared_store(homes):
    a, b = homes
    digest = _publish(a, 1)
    assert recorded_fingerprint(b, dataset="meters", as_of=AS_OF, content_hash=digest)[0] is None
    assert dataset_tz(b, "meters") is None and dataset_time_label(b, "meters") == ("start", None)
    record_fingerprint(a, dataset="meters", as_of=AS_OF, content_hash=digest, fingerprint="f1", run_id="run-1",
                       tz="Europe/Paris", time_label="end", freq="1h")
    assert not fingerprint_path(b.home, "meters", AS_OF).exists()  # nothing of A's under B's home
    assert recorded_fingerprint(b, dataset="meters", as_of=AS_OF, content_hash=digest) == ("f1", "")
    assert dataset_tz(b, "meters") == "Europe/Paris"
    assert dataset_time_label(b, "meters") == ("end", "1h")
    src = {"name": "meters", "path": "m.csv", "time_col": "t", "target_col": "y", "freq": "1h"}
    check_time_label(b, SourceConfig(**src, time_label="end"))
    with pytest.raises(ConfigError, match=r"'meters' was published with time_label = 'end'.*as_of 2024-03-01,"):
        check_time_label(b, SourceConfig(**src))
    from flowcast.data.datasets import resolve_source
    with pytest.raises(ConfigError, match=r"this home has forecasts of 'meters'.*--freq 1h --tz Europe/Paris "
                                          r"--time-label end"):
        resolve_source(b.model_copy(update={"dataset": "meters", "source": None}))


def test_a_record_of_forecasts_replaced_since_is_not_read_nor_written(homes):
    """B replaced A's forecasts: A's record names forecasts no longer there (its fingerprint says nothing of B's
    publish), and a record of them written late (A killed between its publish and its record) is refused."""
    a, b = homes
    first = _publish(a, 1)
    record_fingerprint(a, dataset="meters", as_of=AS_OF, content_hash=first, fingerprint="f1", run_id="run-1")
    second = _publish(b, 2)
    fp, why = recorded_fingerprint(b, dataset="meters", as_of=AS_OF, content_hash=second)
    assert fp is None and "kept no fingerprint" in why
    assert record_fingerprint(a, dataset="meters", as_of=AS_OF, content_hash=first, fingerprint="late",
                              run_id="run-1") is None
    assert [r["data_fingerprint"] for r in open_store(b).records("meters")] == ["f1"]
    record_fingerprint(b, dataset="meters", as_of=AS_OF, content_hash=second, fingerprint="f2", run_id="run-2")
    assert recorded_fingerprint(a, dataset="meters", as_of=AS_OF, content_hash=second) == ("f2", "")


def test_a_late_record_of_a_run_whose_forecasts_another_run_published_again_is_refused(homes):
    """lock44: B published the very forecasts A had (the same content hash) after A's publish, and recorded them; A's
    record, written late (A stopped between its publish and its record), was checked against the content hash alone
    and went over B's, naming A's run and data for B's publish. It is refused: the key holds B's publish."""
    a, b = homes
    digest = open_store(a).publish(_forecasts(1), dataset="meters", as_of=AS_OF, model="naive", model_version=None,
                                   run_id="run-a", created_at=AS_OF).content_hash
    assert open_store(b).publish(_forecasts(1), dataset="meters", as_of=AS_OF, model="naive", model_version=None,
                                 run_id="run-b", created_at=AS_OF).content_hash == digest
    assert record_fingerprint(b, dataset="meters", as_of=AS_OF, content_hash=digest, fingerprint="fb",
                              run_id="run-b") is not None
    assert record_fingerprint(a, dataset="meters", as_of=AS_OF, content_hash=digest, fingerprint="fa",
                              run_id="run-a") is None
    assert [(r["data_fingerprint"], r["run_id"]) for r in open_store(a).records("meters")] == [("fb", "run-b")]
    assert recorded_fingerprint(b, dataset="meters", as_of=AS_OF, content_hash=digest) == ("fb", "")


def test_a_removed_publish_takes_its_record_along(homes):
    a, b = homes
    digest = _publish(a, 1)
    record_fingerprint(a, dataset="meters", as_of=AS_OF, content_hash=digest, fingerprint="f1", run_id="run-1",
                       tz="Asia/Tokyo")
    assert open_store(b).delete("meters", AS_OF)
    assert open_store(a).records("meters") == [] and dataset_tz(b, "meters") is None


def test_a_store_an_older_flowcast_created_gets_the_records_table(homes, postgres, pg_database):
    import psycopg

    a, b = homes
    digest = _publish(a, 1)
    with psycopg.connect(postgres.url(pg_database), autocommit=True) as con:
        con.execute("DROP TABLE flowcast.publish_records")  # the tables as a flowcast before the records made them
    record_fingerprint(b, dataset="meters", as_of=AS_OF, content_hash=digest, fingerprint="f1", run_id="run-1")
    assert recorded_fingerprint(a, dataset="meters", as_of=AS_OF, content_hash=digest) == ("f1", "")


def test_a_single_home_keeps_its_records_in_files_only(tmp_path):
    """The embedded store (one machine): the record file, as before, and nothing else."""
    settings = Settings(home=tmp_path)
    digest = _publish(settings, 1)
    path = record_fingerprint(settings, dataset="meters", as_of=AS_OF, content_hash=digest, fingerprint="f1",
                              run_id="run-1", tz="Europe/Paris")
    assert path == fingerprint_path(tmp_path, "meters", AS_OF) and path.exists()
    assert record_store(settings) is None
    assert recorded_fingerprint(settings, dataset="meters", as_of=AS_OF, content_hash=digest) == ("f1", "")
    assert dataset_tz(settings, "meters") == "Europe/Paris"


@pytest.mark.parametrize("damage", ['{"data_fingerprint": "f', "[1, 2]", '"text"'])
def test_a_damaged_record_in_the_store_is_named_and_the_file_read(homes, postgres, pg_database, caplog, damage):
    import psycopg

    a, b = homes
    digest = _publish(a, 1)
    record_fingerprint(a, dataset="meters", as_of=AS_OF, content_hash=digest, fingerprint="f1", run_id="run-1")
    with psycopg.connect(postgres.url(pg_database), autocommit=True) as con:
        con.execute("UPDATE flowcast.publish_records SET record = %s", [damage])
    with caplog.at_level("WARNING", logger="flowcast.store.postgres"):
        assert recorded_fingerprint(a, dataset="meters", as_of=AS_OF, content_hash=digest) == ("f1", "")  # A's file
        assert recorded_fingerprint(b, dataset="meters", as_of=AS_OF, content_hash=digest)[0] is None
    said = [r.getMessage() for r in caplog.records]
    assert said and all("the publish record of dataset meters as_of 2024-03-01 in" in m for m in said), said


def test_home_b_reads_the_records_of_home_a_from_the_shared_home(tmp_path, caplog):
    """The same with a shared home (`shared`, the embedded store): A's records are copied there, and B read its own
    home's `published/` alone, so a --data dataset A published was read in UTC and as interval starts on B."""
    from pathlib import Path

    shared = tmp_path / "shared"
    a = Settings(home=tmp_path / "machine-a", shared=str(shared))
    b = Settings(home=tmp_path / "machine-b", shared=str(shared))
    record_fingerprint(a, dataset="meters", as_of=AS_OF, content_hash=_publish(a, 1), fingerprint="f1", run_id="run-1",
                       tz="Europe/Paris", time_label="end", freq="1h")
    assert dataset_tz(b, "meters") == "Europe/Paris" and dataset_time_label(b, "meters") == ("end", "1h")
    newer = shared / fingerprint_path(Path(), "meters", AS_OF + timedelta(days=1))
    newer.write_text('{"tz": "Asia/To')  # a damaged copy of a newer publish's record: named, the older one read
    with caplog.at_level("WARNING", logger="flowcast.ops.quiet"):
        assert dataset_tz(b, "meters") == "Europe/Paris"
    assert any(f"the publish record {newer} cannot be read" in r.getMessage() for r in caplog.records)


def test_the_record_saying_which_run_leaves_a_publishs_receipt_is_read_and_taken_over_in_the_store(homes):
    """faults49: the record of a publish names the run still to draw its plot and leave its receipt and event
    (`saying`); a re-run on another machine decides under the key's lock, from the record the store holds (none
    under its own home), whether to take that over, and keeps the data the record names; `said` takes it off, and
    only for the run that took it."""
    from flowcast.ops.quiet import said

    a, b = homes
    digest = _publish(a, 1)
    record_fingerprint(a, dataset="meters", as_of=AS_OF, content_hash=digest, fingerprint="f1", run_id="run-1",
                       saying="run-1")
    seen: list = []
    assert record_fingerprint(b, dataset="meters", as_of=AS_OF, content_hash=digest, fingerprint="fb",
                              run_id="run-1", saying="run-b", unless=lambda current: bool(seen.append(current))
                              ) is not None
    assert [(r["saying"], r["data_fingerprint"]) for r in seen] == [("run-1", "f1")]  # A's, read from the store
    [kept] = record_store(b).records("meters", AS_OF)
    assert (kept["saying"], kept["data_fingerprint"], kept["run_id"]) == ("run-b", "f1", "run-1")
    assert record_fingerprint(b, dataset="meters", as_of=AS_OF, content_hash=digest, fingerprint="fb",
                              run_id="run-1", saying="run-c", unless=lambda current: True) is None  # declined
    assert not said(a, dataset="meters", as_of=AS_OF, content_hash=digest, run_id="run-1", by="run-1")  # taken over
    assert record_store(b).records("meters", AS_OF)[0]["saying"] == "run-b"
    assert said(b, dataset="meters", as_of=AS_OF, content_hash=digest, run_id="run-1", by="run-b")
    assert "saying" not in record_store(a).records("meters", AS_OF)[0]
    assert recorded_fingerprint(a, dataset="meters", as_of=AS_OF, content_hash=digest) == ("f1", "")
