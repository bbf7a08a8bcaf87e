"""A retrain on machine A publishing to a PostgreSQL store it shares with machine B (no shared home): the run's
publish record lands in the store, where B reads the fingerprint of the data A forecast from (before, only A's
`published/` folder had it). A real PostgreSQL server and a real Prefect API."""

from __future__ import annotations

from datetime import datetime

import pytest
from flow_helpers import TINY_OVERRIDES, source_dict

from flowcast.config import load_settings
from flowcast.ops.quiet import fingerprint_path, recorded_fingerprint
from flowcast.store import open_store

pytestmark = pytest.mark.usefixtures("prefect_api")
AS_OF = datetime(2019, 6, 1)


def test_a_publish_records_what_it_forecast_from_in_the_shared_store(tiny_csv, tmp_path, postgres, pg_database):
    from flowcast.flows import retrain_flow

    store = {"url": postgres.url(pg_database)}
    home_a, home_b = tmp_path / "machine-a", tmp_path / "machine-b"
    done = retrain_flow(as_of=AS_OF, source=source_dict(tiny_csv), home=str(home_a), models=[],
                        overrides={**TINY_OVERRIDES, "store": store})
    assert done["published_rows"] > 0
    b = load_settings(home=home_b, store=store)
    held = open_store(b).receipt_of("tiny", AS_OF)["content_hash"]
    [kept] = open_store(b).records("tiny")
    assert kept["content_hash"] == held and kept["run_id"] == done["run_id"]
    assert fingerprint_path(home_a, "tiny", AS_OF).exists() and not fingerprint_path(home_b, "tiny", AS_OF).exists()
    assert recorded_fingerprint(b, dataset="tiny", as_of=AS_OF, content_hash=held) == (kept["data_fingerprint"], "")


def test_a_run_whose_postgresql_store_is_down_stops_as_it_starts_naming_the_server(tiny_csv, tmp_path, own_postgres):
    """serve40: every run reads the dataset's publish records from a PostgreSQL store as it starts (the time label it
    was published with), so with the server down a run fails there, before any work, rather than at its publish an
    hour of training later. That stays (a run that cannot publish is stopped early), and it says so: which server
    (host, port, database), that the run stopped before any work, and what to do. A real server, stopped."""
    from flowcast.errors import PublishError
    from flowcast.flows import retrain_flow

    server = own_postgres
    db = server.create_database("serve40_down")
    url = server.url(db)
    server.stop()
    home = tmp_path / "home"
    with pytest.raises(PublishError) as err:
        retrain_flow(as_of=AS_OF, source=source_dict(tiny_csv), home=str(home), models=[],
                     overrides={**TINY_OVERRIDES, "store": {"url": url, "pg_wait_s": 1}})
    said = " ".join(str(err.value).split())
    assert said.startswith("the run stopped as it started, before reading or training anything: its forecast store, "
                           f"PostgreSQL at host 127.0.0.1, port {server.port}, database serve40_down, could not be connected to")
    assert f"cannot connect to the PostgreSQL store postgresql://postgres@127.0.0.1:{server.port}/serve40_down" in said
    assert "store.pg_wait_s = 1" in said and "Start that server" in said
    assert not (home / "models").exists() and not (home / "lake").exists()


@pytest.mark.parametrize(("refusal", "cause", "advice"), [
    ("password", 'password authentication failed for user "sched42"',
     "The server is up and refused the password: check the user and password of store.url (FLOWCAST_STORE__URL"),
    ("database", 'database "sched42_missing" does not exist',
     "The server is up and has no such database: check the database of store.url (FLOWCAST_STORE__URL), or create"),
    ("role", 'role "sched42_nobody" does not exist',
     "The server is up and has no such role: check the user of store.url (FLOWCAST_STORE__URL), or create"),
    ("no-password", "fe_sendauth: no password supplied",
     "The server is up and asks for a password that store.url does not give: give it in store.url"),
], ids=["wrong-password", "missing-database", "missing-role", "no-password"])
def test_a_run_refused_by_its_running_postgresql_store_says_what_to_check_not_to_start_it(
        tiny_csv, tmp_path, own_postgres, monkeypatch, refusal, cause, advice):
    """Regression (sched42): a permanent refusal by a server that is up (a wrong password, a database or role that does
    not exist) stopped the run with the cause quoted and then the advice 'Start that server', which runs. The advice
    follows the cause: check the URL's password, database or user. A real server, refusing.
    Regression (edge42): a URL without the password its role needs ('fe_sendauth: no password supplied') was taken
    for a server not up yet: retried for store.pg_wait_s, then 'Start that server'."""
    from flowcast.errors import StoreUnreachableError
    from flowcast.flows import retrain_flow

    server = own_postgres
    db = server.create_database("sched42_db")
    role = server.add_password_role("sched42", "right")
    base = f"postgresql://{role}:wrong@127.0.0.1:{server.port}/{db}"
    url = {"password": base, "database": server.url("sched42_missing"),
           "role": f"postgresql://sched42_nobody@127.0.0.1:{server.port}/{db}",
           "no-password": f"postgresql://{role}@127.0.0.1:{server.port}/{db}"}[refusal]
    monkeypatch.delenv("PGPASSWORD", raising=False)  # libpq's other places for a password: none
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no.pgpass"))
    home = tmp_path / "home"
    with pytest.raises(StoreUnreachableError) as err:
        retrain_flow(as_of=AS_OF, source=source_dict(tiny_csv), home=str(home), models=[],
                     overrides={**TINY_OVERRIDES, "store": {"url": url, "pg_wait_s": 5}})
    said = " ".join(str(err.value).split())
    assert said.startswith("the run stopped as it started, before reading or training anything")
    assert cause in said and advice in said and said.count("FLOWCAST_STORE__URL") == 1
    assert "Start that server" not in said and "Start it" not in said and "wrong" not in said  # (the password: redacted)
    assert f"{err.value.advice}, and run again" in said and "pg_wait_s" not in said  # (refused at once: not waited)
    assert not (home / "models").exists() and not (home / "lake").exists()
