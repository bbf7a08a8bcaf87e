"""pg41: a read-only PostgreSQL role (CONNECT, USAGE on the schema, SELECT on its tables) reads a store, also one an
older flowcast created (no publish_records table, realized and publishes without their later columns). Every read
(`flowcast forecasts`, the store's read API, a run's start check of the publish records) tried to create or alter
tables first and failed: 'permission denied'. Reads need no write right now; a write through the role fails naming
the right it lacks. A real PostgreSQL server."""

from __future__ import annotations

import json
import re
import uuid

import polars as pl
import psycopg
import pytest
from publisher import make_forecast
from store_helpers import AS_OF, DS, OTHER, H, publish
from test_contract import realized_frame
from typer.testing import CliRunner

from flowcast.cli import app
from flowcast.columns import REALIZED_COLUMNS
from flowcast.config import SourceConfig, load_settings
from flowcast.errors import ConfigError, PublishError
from flowcast.ops.quiet import check_time_label
from flowcast.store.postgres import PostgresStore

# what an older flowcast's store lacks: nothing, the publish_records table, and that with the later columns too
OLD = {"current": [], "no publish_records": ["publish_records"],
       "no later columns": ["publish_records", "realized.rmsse_snaive", "realized.lookahead", "realized.n_cov80",
                             "publishes.trained_as_of", "publishes.lookahead"]}


@pytest.fixture
def read_only(postgres, pg_url, pg_schema):
    """(url, role): a login role of its own with CONNECT on the database, USAGE on the schema and SELECT on every
    table in it, nothing more (dropped afterwards)."""
    role = f"ro_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"CREATE ROLE {role} LOGIN")
    yield (lambda: _grant(pg_url, pg_schema, role)), pg_url.replace("://postgres@", f"://{role}@", 1), role
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"DROP OWNED BY {role}")
        con.execute(f"DROP ROLE {role}")


def _grant(pg_url: str, schema: str, role: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as con:
        db = con.info.dbname
        con.execute(f"GRANT CONNECT ON DATABASE {db} TO {role}")
        con.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        con.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")


def _old_store(pg_url: str, schema: str, lacks: list[str]) -> PostgresStore:
    """A store with one publish and its realized accuracy, as an older flowcast left it (without `lacks`)."""
    owner = PostgresStore(pg_url, schema=schema)
    r = publish(owner, make_forecast(1, 3, H, AS_OF))
    owner.write_realized(DS, realized_frame([AS_OF]))
    owner.while_published(DS, AS_OF, r.content_hash, lambda: None,
                          record={"time_label": "end", "tz": None, "freq": "1d"})
    with psycopg.connect(pg_url, autocommit=True) as con:
        for gone in lacks:
            table, _, column = gone.partition(".")
            con.execute(f"ALTER TABLE {schema}.{table} DROP COLUMN {column}" if column else
                        f"DROP TABLE {schema}.{table}")
    return owner


def _old_store_read_only(pg_url: str, schema: str, read_only, lacks: list[str]):
    """(owner's store, the read-only role's store of it, the role, the tables' columns): `_old_store`, then the role
    granted its reads."""
    grant, ro_url, role = read_only
    owner = _old_store(pg_url, schema, lacks)
    grant()
    return owner, PostgresStore(ro_url, schema=schema), role, _schema_of(pg_url, schema)


def _schema_of(pg_url: str, schema: str) -> set[str]:
    with psycopg.connect(pg_url, autocommit=True) as con:
        return {f"{t}.{c}" for t, c in con.execute("SELECT table_name, column_name FROM information_schema.columns "
                                                  "WHERE table_schema = %s", [schema]).fetchall()}


@pytest.mark.parametrize("lacks", list(OLD.values()), ids=list(OLD))
def test_a_read_only_role_reads_a_store_of_any_age_without_changing_it(pg_url, pg_schema, read_only, lacks):
    owner, ro, _, before = _old_store_read_only(pg_url, pg_schema, read_only, lacks)
    everything = ro.read()
    assert ro.read(dataset=DS).height == 3 * H
    assert ro.datasets() == [DS] and ro.as_ofs(DS) == [AS_OF] and ro.has(DS, AS_OF) and not ro.has(DS, OTHER)
    held = ro.receipt_of(DS, AS_OF)
    assert ro.verify(DS, AS_OF)
    assert held["trained_as_of"] == "" and held["lookahead"] == ""  # null, also where the column is missing
    realized = ro.read_realized(DS)
    assert realized.columns == REALIZED_COLUMNS and realized.height == 6
    gone = [c.partition(".")[2] for c in lacks if c.startswith("realized.")]
    assert realized.select(gone).null_count().row(0) == (6,) * len(gone)
    records = ro.records(DS)
    assert [r["time_label"] for r in records] == ([] if "publish_records" in lacks else ["end"])
    assert _schema_of(pg_url, pg_schema) == before  # nothing created or added by a read
    # the owner's reads after (a role that may, opening the store adds what is missing)
    assert everything.equals(owner.read()) and held["content_hash"] == owner.receipt_of(DS, AS_OF)["content_hash"]


@pytest.mark.parametrize("lacks", list(OLD.values()), ids=list(OLD))
def test_flowcast_forecasts_and_a_runs_start_check_work_through_a_read_only_role(pg_url, pg_schema, read_only,
                                                                                 tmp_path, lacks):
    grant, ro_url, _ = read_only
    _old_store(pg_url, pg_schema, lacks)
    grant()
    env = {"FLOWCAST_STORE__URL": ro_url, "FLOWCAST_STORE__PG_SCHEMA": pg_schema, "COLUMNS": "300"}
    res = CliRunner().invoke(app, ["forecasts", "--home", str(tmp_path / "h"), "--dataset", DS, "--as-of",
                                   "2024-03-01", "--format", "json"], env=env)
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert len(rows) == 3 * H and {r["dataset"] for r in rows} == {DS}
    settings = load_settings(home=tmp_path / "h", store={"url": ro_url, "pg_schema": pg_schema})
    source = SourceConfig(name=DS, path="unused.csv", time_col="ds", target_col="y", freq="1d", time_label="start")
    if "publish_records" in lacks:  # no records yet: nothing to disagree with
        check_time_label(settings, source)
    else:  # the record is read: its time label 'end' is not the source's
        with pytest.raises(ConfigError, match="was published with time_label = 'end'"):
            check_time_label(settings, source)
    check_time_label(settings, source.model_copy(update={"time_label": "end"}))


@pytest.mark.parametrize("lacks", list(OLD.values()), ids=list(OLD))
def test_a_write_through_a_read_only_role_fails_naming_the_right_it_lacks(postgres, pg_url, pg_schema, read_only,
                                                                         lacks):
    """On a store an older flowcast made, the write is refused naming what the store lacks before any DDL is sent
    (the server logged each refused CREATE / ALTER as an ERROR); on a current one, the server refuses the rows."""
    owner, ro, role, before = _old_store_read_only(pg_url, pg_schema, read_only, lacks)
    assert ro.has(DS, AS_OF)  # a read first: the writes after it still make what they need
    fc = make_forecast(2, 3, H, OTHER)
    writes = {"publish": lambda: publish(ro, fc, as_of=OTHER, variant=2),
              "record": lambda: ro.while_published(DS, AS_OF, ro.receipt_of(DS, AS_OF)["content_hash"], lambda: None,
                                                 record={}),
              "write_realized": lambda: ro.write_realized(DS, realized_frame([AS_OF]).with_columns(n=pl.lit(9))),
              "delete": lambda: ro.delete(DS, AS_OF)}
    start = postgres.log_file.stat().st_size
    for name, write in writes.items():
        with pytest.raises(PublishError) as err:
            write()
        said = " ".join(str(err.value).split())
        if lacks:  # refused before any DDL, naming what is missing and the rights that make it
            assert f"which the role '{role}' of store.url may not make (nothing was sent to the server)" in said and \
                all(f"{pg_schema}.{gone}" in said.partition("the store lacks ")[2] for gone in lacks), (name, said)
            assert f"making them needs CREATE ON SCHEMA {pg_schema}" in said and "the tables' owner" in said, name
        else:  # the server refused the rows
            assert "permission denied for" in said and f"the role '{role}' of store.url lacks that right" in said
            assert f"GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {pg_schema} TO {role}" in said, name
    log = postgres.log_file.read_bytes()[start:].decode(errors="replace")
    assert lacks or "permission denied for table" in log  # a current store: the server refused the rows
    assert not lacks or not [line for line in log.splitlines() if any(r in line for r in REFUSED)], log
    assert _schema_of(pg_url, pg_schema) == before and owner.as_ofs(DS) == [AS_OF]
    assert owner.read_realized(DS)["n"].to_list() != [9] * 6


def test_a_writer_role_that_owns_no_table_adds_the_publish_records_table_an_older_store_lacks(pg_url, pg_schema,
                                                                                            read_only):
    """A role that may write rows and create tables in the schema but owns none of the existing ones: a store an
    older flowcast created without publish_records only (its other tables current) gets that table at the role's
    first write. Before, every later-column ALTER TABLE ran too, and the write failed: 'must be owner of table
    realized'."""
    grant, url, role = read_only
    owner = _old_store(pg_url, pg_schema, ["publish_records"])
    grant()
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {pg_schema} TO {role}")
        con.execute(f"GRANT CREATE ON SCHEMA {pg_schema} TO {role}")
    writer = PostgresStore(url, schema=pg_schema)
    digest = owner.receipt_of(DS, AS_OF)["content_hash"]
    assert writer.while_published(DS, AS_OF, digest, lambda: None, record={"time_label": "start"})
    assert [r["time_label"] for r in owner.records(DS)] == ["start"]


# what a read-only role's commands read: each read checked the catalog by trying the DDL (CREATE SCHEMA / TABLE IF NOT
# EXISTS, ALTER TABLE ... ADD COLUMN IF NOT EXISTS) and the server logged every refusal as an ERROR
READS = {"models": ["models", "list", "--json"], "forecasts": ["forecasts", "--dataset", DS, "--format", "json"],
         "accuracy": ["accuracy", "--dataset", DS, "--json"]}
REFUSED = ("permission denied", "must be owner")


@pytest.mark.parametrize("lacks", [*OLD.values(), ["publish_records", "publishes", "forecasts", "realized"]],
                         ids=[*OLD, "no tables"])
def test_a_read_only_roles_reads_run_no_ddl_the_server_refuses(postgres, pg_url, pg_schema, read_only, tmp_path,
                                                               lacks):
    """`flowcast models`, `forecasts` and `accuracy` and the store's reads through a SELECT-only role, on a store of
    any age (and one that holds no table yet): the server's log has no refusal, and a missing table reads as empty."""
    grant, ro_url, _ = read_only
    _old_store(pg_url, pg_schema, lacks)
    grant()
    start = postgres.log_file.stat().st_size
    env = {"FLOWCAST_STORE__URL": ro_url, "FLOWCAST_STORE__PG_SCHEMA": pg_schema, "COLUMNS": "300"}
    out = {}
    for name, args in READS.items():
        res = CliRunner().invoke(app, [*args, "--home", str(tmp_path / "h")], env=env)
        assert res.exit_code == 0, (name, res.output)
        out[name] = json.loads(res.stdout.strip().splitlines()[-1] if name != "forecasts" else res.stdout)
    ro = PostgresStore(ro_url, schema=pg_schema)
    published = "forecasts" not in lacks
    assert len(out["forecasts"]) == (3 * H if published else 0)
    assert list(out["accuracy"]["datasets"]) == ([DS] if published else [])
    assert ro.datasets() == ([DS] if published else []) and ro.has(DS, AS_OF) is published
    assert ro.read_realized(DS).height == (6 if published else 0)
    assert len(ro.records(DS)) == (0 if "publish_records" in lacks else 1)
    log = postgres.log_file.read_bytes()[start:].decode(errors="replace")
    assert not [line for line in log.splitlines() if any(r in line for r in REFUSED)], log


def test_a_table_made_after_the_read_only_roles_grant_is_named_with_the_grant_it_needs(postgres, pg_url, pg_schema,
                                                                                      read_only):
    """A read-only role granted its reads on a store without publish_records; a write then makes the table, which the
    role may not read (GRANT ... ON ALL TABLES covers the tables there then). The run's start check of the records
    failed with the server's 'permission denied' (an ERROR in its log) and said the role may read this store but not
    write it. It names the table, the role and the GRANTs now, asking the catalog, not the server's refusal."""
    owner, ro, role, _ = _old_store_read_only(pg_url, pg_schema, read_only, ["publish_records"])
    assert ro.records(DS) == []
    writer = PostgresStore(pg_url, schema=pg_schema)  # a later command: `owner` made its tables before the drop
    assert writer.while_published(DS, AS_OF, owner.receipt_of(DS, AS_OF)["content_hash"], lambda: None,
                                  record={"time_label": "end"})
    start = postgres.log_file.stat().st_size
    with pytest.raises(PublishError) as err:
        PostgresStore(ro.url, schema=pg_schema).records(DS)
    said = " ".join(str(err.value).split())
    assert f"the role '{role}' of store.url may not read the table {pg_schema}.publish_records" in said
    assert f"GRANT SELECT ON ALL TABLES IN SCHEMA {pg_schema} TO {role}" in said
    assert f"ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA {pg_schema} GRANT SELECT ON TABLES TO {role}" in said
    log = postgres.log_file.read_bytes()[start:].decode(errors="replace")
    assert not [line for line in log.splitlines() if any(r in line for r in REFUSED)], log
    read_only[0]()  # granted: read
    assert [r["time_label"] for r in ro.records(DS)] == ["end"]


def _dml_only(pg_url: str, schema: str, read_only) -> tuple[str, str]:
    """(url, role): the `read_only` role granted the rows too (SELECT, INSERT, UPDATE, DELETE on every table of the
    schema), no CREATE and no table of its own; every DDL statement it sends is logged (log_statement = 'ddl')."""
    grant, url, role = read_only
    grant()
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}")
        con.execute(f"ALTER ROLE {role} SET log_statement = 'ddl'")
    return url, role


def _refusals_and_ddl(postgres, start: int) -> list[str]:
    """The server log's lines since byte `start` that are an ERROR or a DDL statement."""
    log = postgres.log_file.read_bytes()[start:].decode(errors="replace")
    return [line for line in log.splitlines() if "ERROR" in line or re.search(r"statement: (CREATE|ALTER)", line)]


def test_a_role_with_rights_on_the_rows_only_writes_a_current_store_sending_no_ddl(postgres, pg_url, pg_schema,
                                                                                 read_only, tmp_path):
    """pg43: a role that may read and write the rows (no CREATE, owns no table) publishes, records, scores, indexes
    the registry and deletes on a store that is whole: no DDL reaches the server, so its log has no refusal."""
    from flowcast.registry import ModelRegistry
    from flowcast.store.registry_index import sync_registry

    owner = _old_store(pg_url, pg_schema, [])
    registry = ModelRegistry(tmp_path / "models")
    sync_registry(owner, registry)
    url, _ = _dml_only(pg_url, pg_schema, read_only)
    start = postgres.log_file.stat().st_size
    r = publish(PostgresStore(url, schema=pg_schema), make_forecast(2, 3, H, OTHER), as_of=OTHER, variant=2)
    assert PostgresStore(url, schema=pg_schema).while_published(DS, OTHER, r.content_hash, lambda: None,
                                                                record={"time_label": "end"})
    assert PostgresStore(url, schema=pg_schema).write_realized(DS, realized_frame([OTHER])) == 6
    assert sync_registry(PostgresStore(url, schema=pg_schema), registry)["versions"] == 0
    assert PostgresStore(url, schema=pg_schema).delete(DS, AS_OF)
    assert _refusals_and_ddl(postgres, start) == []
    assert owner.as_ofs(DS) == [OTHER] and [rec["time_label"] for rec in owner.records(DS)] == ["end"]


@pytest.mark.parametrize("lacks", [*[v for v in OLD.values() if v], ["forecasts.y_hat_q90"], ["model_versions"]],
                         ids=[*[k for k, v in OLD.items() if v], "a value column", "the registry index"])
def test_a_write_needing_what_a_rows_only_role_may_not_make_is_refused_before_any_ddl(postgres, pg_url, pg_schema,
                                                                                     read_only, tmp_path, lacks):
    """pg43: where the store lacks what a write needs (a store an older flowcast made, a value column first
    published, the registry index's tables) and the role may not make it, the write fails naming what is missing and
    the rights it takes, before any DDL is sent: each refused CREATE / ALTER was an ERROR in the server's log."""
    from flowcast.registry import ModelRegistry
    from flowcast.store.registry_index import sync_registry

    owner = _old_store(pg_url, pg_schema, [] if lacks == ["model_versions"] else lacks)
    url, role = _dml_only(pg_url, pg_schema, read_only)
    start = postgres.log_file.stat().st_size
    with pytest.raises(PublishError) as err:
        if lacks == ["model_versions"]:
            sync_registry(PostgresStore(url, schema=pg_schema), ModelRegistry(tmp_path / "models"))
        else:
            publish(PostgresStore(url, schema=pg_schema), make_forecast(2, 3, H, OTHER), as_of=OTHER, variant=2)
    said = " ".join(str(err.value).split())
    missing = said.partition("the store lacks ")[2].partition(", which the role")[0].split(", ")
    assert set(missing) >= {f"{pg_schema}.{gone}" for gone in lacks}, said
    assert f"which the role '{role}' of store.url may not make (nothing was sent to the server)" in said
    assert f"making them needs CREATE ON SCHEMA {pg_schema} (on the database, for the schema itself) and the " \
        "tables' owner. Run one write as the tables' owner" in said
    assert _refusals_and_ddl(postgres, start) == []
    assert owner.as_ofs(DS) == [AS_OF]


@pytest.mark.parametrize("dropped", ["DROP SCHEMA {s} CASCADE", "DROP TABLE {s}.publish_records",
                                     "ALTER TABLE {s}.realized DROP COLUMN rmsse", "DROP TABLE {s}.forecasts"])
def test_a_store_object_acts_on_tables_another_process_dropped_since_its_last_command(pg_url, pg_schema, dropped):
    """pg43: a store object remembered that it had made the tables: once another process (an administrator) dropped
    them, its every write failed ('relation ... does not exist'). It asks the catalog at each connection, so it makes
    them again; a second store object reads what it wrote."""
    first = PostgresStore(pg_url, schema=pg_schema)
    publish(first, make_forecast(1, 3, H, AS_OF))
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(dropped.format(s=pg_schema))
    r = publish(first, make_forecast(2, 3, H, OTHER), as_of=OTHER, variant=2)
    assert first.while_published(DS, OTHER, r.content_hash, lambda: None, record={"time_label": "end"})
    assert first.write_realized(DS, realized_frame([OTHER])) == 6
    second = PostgresStore(pg_url, schema=pg_schema)
    assert second.read(dataset=DS, as_of=OTHER).height == 3 * H and second.verify(DS, OTHER)
    assert [rec["time_label"] for rec in second.records(DS, OTHER)] == ["end"]
    assert second.read_realized(DS, OTHER).height == 6


def test_a_role_refused_connect_on_the_database_is_told_what_to_grant_in_one_sentence(postgres, pg_database):
    """A role without CONNECT on the store's database is refused at once, with the advice after the server's words:
    libpq's refusal ends its DETAIL with a full stop ('User does not have CONNECT privilege.'), and the advice was
    joined after it with another ('privilege.. The server is up ...')."""
    from flowcast.errors import StoreUnreachableError

    role = f"noconn_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.url(pg_database), autocommit=True) as con:
        con.execute(f"REVOKE CONNECT ON DATABASE {pg_database} FROM PUBLIC")
        con.execute(f"CREATE ROLE {role} LOGIN")
    try:
        url = postgres.url(pg_database).replace("://postgres@", f"://{role}@", 1)
        with pytest.raises(StoreUnreachableError) as err:
            PostgresStore(url, wait_s=30).datasets()
        said = " ".join(str(err.value).split())
        assert f'permission denied for database "{pg_database}"' in said, said
        assert "CONNECT privilege. The server is up and the user of store.url may not connect" in said, said
        assert ".." not in said and said.endswith("GRANT CONNECT ON DATABASE to that user"), said
    finally:
        with psycopg.connect(postgres.url("postgres"), autocommit=True) as con:
            con.execute(f"DROP ROLE {role}")
