"""The forecast store on PostgreSQL (`store.url = "postgresql://user@host:port/db"`), psycopg 3.

Tables, in schema `store.pg_schema` (default `flowcast`), created on first use (publish_records on the first write
only; a role that may not create or alter them, SELECT only, reads the store as it is: `_conn`):

    publishes  (dataset, as_of) PRIMARY KEY: content_hash, model, model_version, run_id,
               created_at, rows, n_series, value_columns: one row per published key
    forecasts  (dataset, as_of, unique_id, ds) PRIMARY KEY; index (dataset, unique_id, as_of)
               for the read of one series; index (dataset, as_of, unique_id, ds), text COLLATE "C", for reads
               in published order (a LIMIT); value columns (y_hat_q*, y_hat_lo*/hi*) are added as
               nullable columns when first published. No foreign key to publishes: a per-row
               check would slow a large publish, and only the publish transaction (which
               writes both) and `delete` (which removes both) write these tables
    realized   (dataset, as_of, model, step) PRIMARY KEY: realized accuracy
    publish_records (dataset, as_of) PRIMARY KEY: content_hash, record (JSON text): the publish record
               (`ops.quiet`: the data fingerprint, tz, time label, freq) of the key's publish, written by
               `while_published` only while the key holds the publish of that content hash (and run), removed with
               the key. Every machine sharing the store reads it: a machine's own record file under its
               home was the only copy, so another machine's "nothing new" check and the tz / time label a
               date alone is read in could not see that publish

A publish is one transaction: a transaction-scoped advisory lock on (schema, dataset, as_of)
(publishers of one key queue, publishers of other keys run in parallel, on any machine), the
receipt row upserted, the key's rows deleted and the new ones copied in (COPY), the row count
checked, commit. A writer killed at any point leaves the old rows or the new ones (the server
rolls back an unfinished transaction when its connection drops); the primary key makes a
duplicate impossible. Connections are in autocommit mode, so every
`transaction()` block is a real BEGIN ... COMMIT. A read is one statement, so it sees one snapshot: whole keys only.
Readers take no lock that a writer waits for (MVCC). The content hash is computed in Python
exactly as the embedded store does. DDL (creating tables, adding a value column) runs only for what the catalog
says is missing (`catalog`, `plan`: asked at every connection, so tables another process dropped are made again),
under a transaction-scoped advisory lock of its own, so concurrent first publishers do not race; what is missing and
this role may not make fails the write before any DDL is sent (`unmakeable`, `PostgresStore.refuse_unmakeable`).
An index missing from a table that exists (a store made before the index) is built CONCURRENTLY outside that
transaction, under an advisory lock of its own, an INVALID one left by a killed build dropped and built again
(`late_indexes`, `PostgresStore._build_index`): a plain CREATE INDEX held off every publish while it built.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from flowcast.errors import (
    LockLostError,
    NothingPublished,
    PublishError,
    StoreLockWaitError,
    StoreUnreachableError,
    lock_lost_outcome,
    removal,
)
from flowcast.redaction import passwords, redact, redact_log_text
from flowcast.store.base import (
    PublishReceipt,
    already_published,
    fault,
    lookahead_text,
    prepare,
    same_published,
)
from flowcast.store.contract import (
    _VALUE_RE,
    check_dataset,
    empty_forecasts,
    empty_realized,
    normalise_read,
    normalise_realized,
    storage_ts,
    summary_order,
    validate_realized,
)
from flowcast.store.hashing import content_hash
from flowcast.timekeys import utc_text
from flowcast.wording import plural

_BASE_COLS = ["dataset", "as_of", "unique_id", "ds", "step", "model", "model_version", "y_hat", "run_id", "created_at"]
_TS_COLS = ("as_of", "ds", "created_at", "scored_at")
# the columns added to tables after they were first created (by an ALTER TABLE in `_ddl`)
_LATER_COLUMNS = {"realized": ("n_mase", "lookahead", "rmsse", "rmsse_snaive", "n_cov80", "n_cov95"),
                  "publishes": ("trained_as_of", "lookahead")}
_FORECAST_TYPES: dict[str, Any] = {"dataset": pl.Utf8, "unique_id": pl.Utf8, "step": pl.Int32, "model": pl.Utf8,
                                   "model_version": pl.Utf8, "run_id": pl.Utf8, "y_hat": pl.Float64}
_TEXT_COLS = ["dataset", "unique_id", "model", "model_version", "run_id"]  # the forecasts' text columns
log = logging.getLogger(__name__)
_INDEX_WAIT_S = 2.0  # the most a concurrent index build waits for one lock (`PostgresStore._build_index`)
_SPOOL_MEMORY = 64 << 20  # bytes of a csv/json read's COPY held in memory (`_copy_spool`); the rest on disk
_DDL_LOCK = 0x666C6F77  # "flow": the key of the DDL advisory lock


_PERMANENT = ("password authentication failed", "does not exist", "no pg_hba.conf entry", "invalid dsn",
              "invalid connection option", "missing \"=\"", "could not translate host name", "ssl is not enabled",
              "permission denied", "no password supplied")


def _transient(message: str) -> bool:
    """Whether a connection failure may pass by waiting (the server down, starting, restarting or busy)."""
    low = message.lower()
    return not any(p in low for p in _PERMANENT)


# what to do about a refusal waiting cannot change (`_transient` false), by libpq's text of it (psycopg gives a failed
# connection no SQLSTATE): the first pattern (a regular expression) found in it; the server is up and the cause is quoted, so not "start it"
_REFUSALS = (
    ("password authentication failed",  # 28P01
     ("The server is up and refused the password: check the user and password of store.url (FLOWCAST_STORE__URL), "
      "or the one libpq reads from PGPASSWORD or ~/.pgpass")),
    ("no password supplied",  # libpq's own (fe_sendauth): the server asked for a password the client has not got
     ("The server is up and asks for a password that store.url does not give: give it in store.url "
      "(as user:password before the @ of its host, FLOWCAST_STORE__URL), or in PGPASSWORD or ~/.pgpass, which libpq "
      "reads")),
    ('role ".*" does not exist',  # 28000
     "The server is up and has no such role: check the user of store.url (FLOWCAST_STORE__URL), or create that role"),
    ('database ".*" does not exist',  # 3D000
     ("The server is up and has no such database: check the database of store.url (FLOWCAST_STORE__URL), or create "
      "that database (createdb)")),
    ("no pg_hba.conf entry",  # 28000
     ("The server is up and its pg_hba.conf admits no connection of that user to that database from here: check the "
      "user and database of store.url (FLOWCAST_STORE__URL), or have the server admit them")),
    ("permission denied for database",  # 42501
     ("The server is up and the user of store.url may not connect to that database: check the user and database of "
      "store.url (FLOWCAST_STORE__URL), or GRANT CONNECT ON DATABASE to that user")),
)


def refusal_advice(message: str) -> str:
    """What to do about a connection failure `_transient` calls permanent (libpq's `message`): check the URL's
    user, password or database (the server is up and refused them), else fix store.url; '' for a transient one
    (the server down or unreachable: start it)."""
    if _transient(message):
        return ""
    return next((advice for pattern, advice in _REFUSALS if re.search(pattern, message, re.IGNORECASE)), FIX_URL)


FIX_URL = "Fix store.url (FLOWCAST_STORE__URL) as that error says"
"""The advice of a connection failure that only another store.url mends (a refusal of no known cause, a URL that libpq
cannot read)."""


def failure_reason(message: str) -> str:
    """libpq's cause of a failed connection, short: 'connection refused' of 'connection failed: connection to server
    at "127.0.0.1", port 1 failed: Connection refused / Is the server running on that host...' (its first line's
    text after the last 'failed: ', first letter lowercased, no full stop); the first line where it has none."""
    first = message.strip().splitlines()[0] if message.strip() else "no reason given"
    cause = first.rsplit("failed: ", 1)[-1].strip().rstrip(".")
    return cause[:1].lower() + cause[1:]


_QUOTED = re.compile(r"\"([^\"]*)\"|'([^']*)'")  # a part of a URL libpq or psycopg quotes in an error


def redact_error(message: str, url: str) -> str:
    """libpq's (or psycopg's) `message` of a failed connection to `url` without the password `redact` hides: a part of
    the URL it quotes ('invalid percent-encoded token: "s3cr%zzet"', 'unexpected spaces found in "s3 cret"', of a '@'
    in the password 'failed to resolve host 'ss@db'') is shown `***` where it is within a password, or begins with
    its part after a '@' or '/' (libpq reads a password's part after its first '@' as the host, after a '/' as the
    database); a URL within it is redacted as `redact` does, a keyword DSN's password too (`redact_log_text`)."""
    secrets = passwords(url)
    tails = [tail for s in secrets for tail in re.split(r"[@/]", s)[1:] if tail]

    def hidden(quoted: re.Match[str]) -> str:
        text = quoted[1] if quoted[1] is not None else quoted[2]
        if text and (any(text in s for s in secrets) or any(text.startswith(t) for t in tails)):
            return quoted[0][0] + "***" + quoted[0][-1]
        return quoted[0]

    return redact_log_text(_QUOTED.sub(hidden, message) if secrets else message)


def server_of(url: str) -> str:
    """'host H, port P, database D' of a PostgreSQL URL, with libpq's defaults where it names none (PGHOST, else the
    local socket; PGPORT, else 5432; PGDATABASE, else the user's name): a URL may leave any of them out."""
    import getpass
    import os

    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - a URL libpq cannot read: its own error says so; name what the env gives
        info = {}
    host = info.get("host") or os.environ.get("PGHOST") or "the local socket"
    port = info.get("port") or os.environ.get("PGPORT") or "5432"
    user = info.get("user") or os.environ.get("PGUSER") or getpass.getuser()
    database = info.get("dbname") or os.environ.get("PGDATABASE") or user
    return f"host {host}, port {port}, database {database}"


def _ddl(schema: str) -> list[tuple[str, str, str]]:
    """(object, what it is made in, statement) of every table, index and later column, in the order they are made
    (`plan`): an object is a relation's name or 'table.column'; 'schema' is the schema itself, made in the database."""
    s = schema
    return [
        ("schema", "", f"CREATE SCHEMA IF NOT EXISTS {s}"),
        ("publishes", "schema", f"""CREATE TABLE IF NOT EXISTS {s}.publishes (
            dataset text NOT NULL, as_of timestamp NOT NULL, content_hash text NOT NULL, model text NOT NULL,
            model_version text, run_id text NOT NULL, created_at timestamp NOT NULL, rows bigint NOT NULL,
            n_series bigint NOT NULL, value_columns text[] NOT NULL DEFAULT '{{}}',
            PRIMARY KEY (dataset, as_of))"""),
        ("forecasts", "schema", f"""CREATE TABLE IF NOT EXISTS {s}.forecasts (
            dataset text NOT NULL, as_of timestamp NOT NULL, unique_id text NOT NULL, ds timestamp NOT NULL,
            step integer NOT NULL CHECK (step >= 1), model text NOT NULL, model_version text,
            y_hat double precision NOT NULL, run_id text NOT NULL, created_at timestamp NOT NULL,
            PRIMARY KEY (dataset, as_of, unique_id, ds))"""),
        ("forecasts_series_idx", "forecasts",
         f"CREATE INDEX IF NOT EXISTS forecasts_series_idx ON {s}.forecasts (dataset, unique_id, as_of)"),
        # the published order in bytes (`PostgresStore._select`'s ORDER BY): the primary key's index, in the
        # database's collation, could not serve it, so `--limit 50` sorted every matched row (a store made before
        # this index gets it, built concurrently, at its next connection that may make it: `late_indexes`)
        ("forecasts_read_idx", "forecasts", (f'CREATE INDEX IF NOT EXISTS forecasts_read_idx ON {s}.forecasts '
                                             '(dataset COLLATE "C", as_of, unique_id COLLATE "C", ds)')),
        ("realized", "schema", f"""CREATE TABLE IF NOT EXISTS {s}.realized (
            dataset text NOT NULL, as_of timestamp NOT NULL, model text NOT NULL, model_version text,
            step integer NOT NULL CHECK (step >= 1), n bigint NOT NULL CHECK (n >= 1), mae double precision,
            mase double precision, smape double precision, coverage80 double precision,
            coverage95 double precision, mae_snaive double precision, mase_snaive double precision,
            scored_at timestamp NOT NULL,
            PRIMARY KEY (dataset, as_of, model, step))"""),
        # the points MASE covers: a table an older flowcast created lacks it
        ("realized.n_mase", "realized", f"ALTER TABLE {s}.realized ADD COLUMN IF NOT EXISTS n_mase bigint"),
        # RMSSE on the points MASE covers: likewise
        ("realized.rmsse", "realized", f"ALTER TABLE {s}.realized ADD COLUMN IF NOT EXISTS rmsse double precision"),
        # seasonal naive's RMSSE on those points: likewise
        ("realized.rmsse_snaive", "realized",
         f"ALTER TABLE {s}.realized ADD COLUMN IF NOT EXISTS rmsse_snaive double precision"),
        # the points the 80% and 95% coverage covers (a series published without that interval has none): likewise
        *((f"realized.n_cov{lv}", "realized", f"ALTER TABLE {s}.realized ADD COLUMN IF NOT EXISTS n_cov{lv} bigint")
          for lv in (80, 95)),
        # forecasts by a model trained on data after their as_of (null: not known; rows of an older flowcast)
        ("realized.lookahead", "realized", f"ALTER TABLE {s}.realized ADD COLUMN IF NOT EXISTS lookahead boolean"),
        # where the publishing version's training data ended (null: a baseline, or a publish of an older flowcast)
        ("publishes.trained_as_of", "publishes",
         f"ALTER TABLE {s}.publishes ADD COLUMN IF NOT EXISTS trained_as_of timestamp"),
        # whether that data ended after what a run at the as_of observed (null: not known, an older flowcast's)
        ("publishes.lookahead", "publishes", f"ALTER TABLE {s}.publishes ADD COLUMN IF NOT EXISTS lookahead boolean"),
        # the publish records (module doc): a store an older flowcast created lacks the table
        ("publish_records", "schema", f"""CREATE TABLE IF NOT EXISTS {s}.publish_records (
            dataset text NOT NULL, as_of timestamp NOT NULL, content_hash text NOT NULL, record text NOT NULL,
            PRIMARY KEY (dataset, as_of))"""),
    ]


@dataclass
class _Spool:
    """A COPY's CSV in a temporary file (`PostgresStore._copy_spool`): its header line and where each piece ends."""

    file: Any  # tempfile.SpooledTemporaryFile
    head: bytes = b""
    ends: list[int] = field(default_factory=list)

    def pieces(self) -> Iterator[bytes]:
        """Each piece, the header line first; the file is closed once they are read (or the reader stops)."""
        with self.file:
            self.file.seek(0)
            at = 0
            for end in self.ends:
                yield self.head + self.file.read(end - at)
                at = end


@dataclass(frozen=True)
class Catalog:
    """What of a schema's objects exist and what this role may make (`catalog`: one query)."""

    present: frozenset[str]  # 'schema' when it exists, the relations asked for that exist, their 'table.column's
    owned: frozenset[str]  # the relations this role has the owner's rights on (ALTER TABLE, CREATE INDEX on them)
    may_create_schema: bool  # CREATE on the database
    may_create_in_schema: bool  # CREATE on the schema (it exists)
    invalid: frozenset[str] = frozenset()  # the indexes of `present` marked INVALID (a concurrent build not finished)

    def may(self, parent: str, made: set[str]) -> bool:
        """Whether this role may make an object in `parent` ('' the database, 'schema', else a table: its owner),
        `made` being what it makes before."""
        if not parent:
            return self.may_create_schema
        if parent in made:
            return True
        return self.may_create_in_schema if parent == "schema" else parent in self.owned


def catalog(con: Any, schema: str, relations: list[str], column_tables: list[str]) -> Catalog:
    """`Catalog` of `schema`: which of `relations` (tables, indexes) exist and are this role's, the columns of
    `column_tables`, whether the role may create the schema or create in it. One query of pg_catalog (its columns,
    unlike information_schema's, whatever the role's column rights): a store's DDL runs only where it says something
    is missing, and a read only where the role may run it, so a server logs no refusal of a read-only role's DDL."""
    rows = con.execute(
        """WITH ns AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %(s)s),
        rel AS (SELECT c.oid, c.relname, pg_catalog.pg_has_role(c.relowner, 'USAGE') AS owned
                FROM pg_catalog.pg_class c JOIN ns ON c.relnamespace = ns.oid WHERE c.relname = ANY(%(rels)s))
        SELECT 'database', NULL::text, pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE')
        UNION ALL SELECT 'schema', 'schema', pg_catalog.has_schema_privilege(ns.oid, 'CREATE') FROM ns
        UNION ALL SELECT 'relation', relname, owned FROM rel
        UNION ALL SELECT 'invalid', rel.relname, NULL FROM rel JOIN pg_catalog.pg_index i ON i.indexrelid = rel.oid
                  WHERE NOT i.indisvalid
        UNION ALL SELECT 'column', rel.relname || '.' || a.attname, NULL FROM pg_catalog.pg_attribute a
                  JOIN rel ON a.attrelid = rel.oid
                  WHERE rel.relname = ANY(%(cols)s) AND a.attnum > 0 AND NOT a.attisdropped""",
        {"s": schema, "rels": relations, "cols": column_tables}).fetchall()
    return Catalog(present=frozenset(name for kind, name, _ in rows if kind not in ("database", "invalid")),
                   owned=frozenset(name for kind, name, owned in rows if kind == "relation" and owned),
                   may_create_schema=any(may for kind, _, may in rows if kind == "database"),
                   may_create_in_schema=any(may for kind, _, may in rows if kind == "schema"),
                   invalid=frozenset(name for kind, name, _ in rows if kind == "invalid"))


def late_indexes(ddl: list[tuple[str, str, str]], cat: Catalog) -> list[tuple[str, str]]:
    """(index, statement) of the indexes of `ddl` on a table that exists which `cat` lacks or holds INVALID, and
    this role may make (the table's owner): built one at a time outside the DDL transaction, CONCURRENTLY
    (`PostgresStore._build_index`), since a plain CREATE INDEX on a table of a million rows held off every publish
    for as long as it built. An index of a table made in the same plan is made with it (an empty table)."""
    return [(obj, stmt) for obj, parent, stmt in ddl
            if stmt.startswith("CREATE INDEX ") and parent in cat.present and cat.may(parent, set())
            and (obj not in cat.present or obj in cat.invalid)]


def plan(ddl: list[tuple[str, str, str]], cat: Catalog, *, may_only: bool = False) -> list[str]:
    """The statements of `ddl` ((object, parent, statement), `_ddl`) whose object `cat` lacks, in order: DDL on an
    object that exists is still checked for its rights by the server (CREATE ... IF NOT EXISTS needs CREATE on the
    schema, ADD COLUMN IF NOT EXISTS the table's owner and its lock) and refused. `may_only` (a read): only those
    this role may run (`Catalog.may`); the others are left to a write."""
    return [stmt for _, stmt in planned(ddl, cat, may_only=may_only)]


def planned(ddl: list[tuple[str, str, str]], cat: Catalog, *, may_only: bool = False) -> list[tuple[str, str]]:
    """(object, statement) of `plan`'s statements."""
    made: set[str] = set()
    out = []
    for obj, parent, stmt in ddl:
        if obj in cat.present or (may_only and not cat.may(parent, made)):
            continue
        made.add(obj)
        out.append((obj, stmt))
    return out


def unmakeable(ddl: list[tuple[str, str, str]], cat: Catalog) -> list[str]:
    """The objects of `ddl` that `cat` lacks and this role may not make (`Catalog.may`), in order: a write checks them
    before it sends any DDL, since the server refuses each such statement with an ERROR in its log."""
    allowed = {obj for obj, _ in planned(ddl, cat, may_only=True)}
    return [obj for obj, _ in planned(ddl, cat) if obj not in allowed]


class _ConnectionCut(PublishError):
    """The server closed the connection while a migration ran or waited for its lock (a restart, a failover, an
    administrator's pg_terminate_backend): nothing was changed (one DDL transaction), so `_conn` tries it again on
    a new connection within `wait_s` (a PublishError where it escapes: the registry index's own migration)."""


class PostgresStore:
    """Forecasts keyed by (dataset, as_of) and realized accuracy in PostgreSQL (module doc)."""

    def __init__(self, url: str, *, schema: str = "flowcast", connect_timeout: int = 15, wait_s: float = 60.0):
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            from flowcast.errors import ConfigError

            raise ConfigError(f"store.pg_schema {schema!r} must be a lower-case SQL identifier")
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.schema = schema
        self.connect_timeout = connect_timeout
        self.wait_s = wait_s  # how long a server that is not up yet (or restarting) is waited for
        self._gave_up: set[str] = set()  # the indexes whose concurrent build this object gave up on (`_build_index`)
        self._deferred: set[str] = set()  # the indexes whose build this object left for later, said once (ditto)
        # redacted here, the only guard: a publish receipt keeps it (a run's returned result and its receipt artifact)
        self.location = f"{redact(self.url)} (schema {schema})"

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"

    # ------------------------------------------------------------------ connections
    @contextlib.contextmanager
    def _conn(self, what: str, value_columns: list[str] | None = None, *, read: bool = False) -> Iterator[Any]:
        """A connection to a store whose tables exist with every column this flowcast records (`_create`), and the
        forecasts table with `value_columns` (`_add_value_columns`). A `read` needs no write right: it creates no
        publish_records table (only a write does: `records` reads a missing one as none), and a role that may not
        create the tables or add the columns (a read-only role, SELECT only) issues no DDL (`_create` asks the catalog
        what is missing and what the role may make) and reads the store as it is: a missing table as empty, a missing
        later column as null (`_has_table`, `_columns`). A server that closes the connection while
        those migrations run or wait for their lock (a restart, a failover) is waited for and the migration tried
        again, within `wait_s` in all: a restart during the wait failed the command at once ('terminating
        connection due to administrator command'), though a server restarting as it connects is waited for."""
        import psycopg

        t0 = time.monotonic()
        con = self._connect(what)
        lock_wait: float | None = None  # the first try: store.pg_wait_s; after a cut, what is left of it
        try:
            while True:
                try:
                    self._create(con, what, lock_wait, records=not read)  # asked at every connection (no cache)
                    if value_columns:
                        self._add_value_columns(con, what, value_columns, lock_wait)
                    break
                except _ConnectionCut as cut:
                    con.close()
                    left = self.wait_s - (time.monotonic() - t0)
                    if left <= 0:
                        raise PublishError(
                            f"{cut}, and was not back within store.pg_wait_s = {self.wait_s:g} s: could not "
                            f"{what}; previously published forecasts are intact") from cut
                    log.warning("%s; connecting again (store.pg_wait_s leaves %.0f s)", cut, left)
                    con = self._connect(what, wait_s=left)
                    lock_wait = round(max(1.0, self.wait_s - (time.monotonic() - t0)), 1)
            yield con
        except psycopg.Error as exc:
            raise PublishError(f"PostgreSQL store {self.location}: could not {what}: "
                               f"{' '.join(str(exc).split())}{self._lacking(con, exc)}; previously published "
                               "forecasts are intact") from exc
        finally:
            con.close()

    def _lacking(self, con: Any, exc: Exception) -> str:
        """For a refusal for want of a right: which role lacks it and how to give it (else '')."""
        import psycopg

        if not isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return ""
        s = self.schema
        return (f" (the role {con.info.user!r} of store.url lacks that right: it may read this store but not write "
                f"it. Grant it, e.g. GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {con.info.user}; "
                f"the tables and columns this flowcast adds to a store an older one made need CREATE ON SCHEMA {s} "
                "and the tables' owner (one write as that role adds them); or set store.url (FLOWCAST_STORE__URL) "
                "to a role that has it)")

    def refuse_unmakeable(self, con: Any, what: str, objects: list[str]) -> None:
        """A PublishError naming `objects` (`unmakeable`: the store lacks them and this role may not make them) and
        the rights that make them, raised before any DDL is sent: the server refused each statement with an ERROR in
        its log ('permission denied for schema', 'must be owner of table'), at every write."""
        if not objects:
            return
        s, user = self.schema, con.info.user
        raise PublishError(
            f"PostgreSQL store {self.location}: could not {what}: the store lacks "
            f"{', '.join(o if o == 'schema' else f'{s}.{o}' for o in objects)}, which the role {user!r} of store.url "
            f"may not make (nothing was sent to the server): making them needs CREATE ON SCHEMA {s} (on the database, "
            "for the schema itself) and the tables' owner. Run one write as the tables' owner, which adds them, or set "
            "store.url (FLOWCAST_STORE__URL) to a role that has those rights; previously published forecasts are "
            "intact")

    def _connect(self, what: str, wait_s: float | None = None) -> Any:
        """A connection; a server that refuses connections or is starting up, shutting down or in recovery
        (a restart, a failover) is tried again with backoff for up to `wait_s` seconds (default: the store's).
        Refusals that waiting cannot change (a wrong password, an unknown database or role) fail at once."""
        import psycopg

        wait_s = self.wait_s if wait_s is None else wait_s
        t0 = time.monotonic()
        delay, tries = 0.5, 0
        while True:
            tries += 1
            try:
                return psycopg.connect(self.url, connect_timeout=self.connect_timeout, autocommit=True)
            except psycopg.Error as exc:
                text = redact_error(" ".join(str(exc).split()), self.url)
                waited = time.monotonic() - t0
                # (a URL libpq cannot read, ProgrammingError: 'invalid percent-encoded token', does not mend by waiting)
                advice = refusal_advice(text) or (FIX_URL if isinstance(exc, psycopg.ProgrammingError) else "")
                if advice:  # (a DETAIL ends with its full stop: 'CONNECT privilege.')
                    # (the URL redacted whole here: FlowcastError's text redactor, the backstop, cannot tell where a
                    # password with a space ends, `postgresql://u:12 ab@h/db`; libpq's quoted password by redact_error)
                    raise StoreUnreachableError(f"cannot connect to the PostgreSQL store {redact(self.url)} to {what}: "
                                                f"{text.rstrip('.')}. {advice}", server_of(self.url), advice) from exc
                if waited + delay > wait_s:
                    raise StoreUnreachableError(
                        f"cannot connect to the PostgreSQL store {redact(self.url)} to {what}: {text} "
                        f"(tried {plural(tries, 'time')} "
                        f"over {waited:.0f} s, store.pg_wait_s = {self.wait_s:g}); is the server running and "
                        "reachable from here? Start it (or fix store.url), or wait longer with store.pg_wait_s "
                        "(FLOWCAST_STORE__PG_WAIT_S)", server_of(self.url)) from exc
                if tries == 1:  # a read of a URL nothing listens at waited store.pg_wait_s without a word (nuB46)
                    # (redacted here: this module's logger is no run logger, which `logs.RedactFilter` redacts)
                    log.warning("could not connect to %s (%s); trying again for up to %g s (store.pg_wait_s)",
                                redact(self.url), failure_reason(redact_error(str(exc), self.url)), wait_s)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _create(self, con: Any, what: str, lock_wait: float | None = None, *, records: bool = True) -> None:
        """The tables, the index and the columns added to the tables since (`_LATER_COLUMNS`: a store an older
        flowcast created lacked them and failed every read and write of realized accuracy: 'column "rmsse" does not
        exist'), each made only where the catalog says it is missing (`catalog`: one query; `plan`), none on a store
        that is whole. Asked at every connection, not remembered by the store object: another process (an
        administrator) may have dropped or made the tables since its last command, and a cached "made" failed its
        writes with 'relation ... does not exist'. `records=False` (a read): not the publish_records table, and only
        what this role may make: a read-only role (SELECT only) on a store an older flowcast created issues no DDL,
        and the reads take the store as it is. A write that needs what this role may not make (a role with rights
        on the rows only, on a store an older flowcast created) fails naming it before any DDL is sent: each refused
        statement was an ERROR in the server's log (`refuse_unmakeable`)."""
        cat = catalog(con, self.schema, [o for o, _, _ in _ddl(self.schema) if "." not in o and o != "schema"],
                      list(_LATER_COLUMNS))
        ddl = [d for d in _ddl(self.schema) if records or d[0] != "publish_records"]
        if records:
            self.refuse_unmakeable(con, what, unmakeable(ddl, cat))
        late = late_indexes(ddl, cat)
        late_names = {name for name, _ in late}
        stmts = plan([d for d in ddl if d[0] not in late_names], cat, may_only=not records)
        if stmts:  # IF NOT EXISTS still: another process may have made it since
            with self._migrating(con, lambda: [f"{t}.{c}" for t, c in self._missing_columns(con)], lock_wait):
                for stmt in stmts:
                    con.execute(stmt)
        for name, stmt in late:
            self._build_index(con, name, stmt, lock_wait)

    def _build_index(self, con: Any, name: str, stmt: str, lock_wait: float | None = None) -> None:
        """The index `name` of a table that exists, built by `stmt` CONCURRENTLY (`late_indexes`): publishes go on
        while it builds. Under a session advisory lock of the index's own, tried without waiting: a session that
        finds it held leaves the build to its holder (its index is INVALID until done, and dropping it as the leftover
        of a killed build would undo that build). A concurrent build waits for every older snapshot of the whole
        database: while another session holds one (`_snapshot_holders`: a pg_dump, a REPEATABLE READ dashboard) the
        build is not tried, without waiting, and left for a later command (said once per store object at INFO); it
        waited store.pg_wait_s at every command, then left an INVALID index. Under the lock an INVALID index is the
        leftover of a build killed, cut or given up: dropped and built again. Each single lock wait of the build (for
        a session it must outlast: a transaction left open that writes the table) is bounded by lock_timeout
        (`_INDEX_WAIT_S`, at most `lock_wait`, store.pg_wait_s): past it the build gives up with a warning naming
        those sessions, the reads go without the index (slower, as right) and this store object does not try again;
        the next one does."""
        import psycopg

        s, key = self.schema, (self.schema, "index", name)
        if name in self._gave_up or not con.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                                                    ["|".join(key)]).fetchone()[0]:
            return
        wait = min(_INDEX_WAIT_S, self.wait_s if lock_wait is None else lock_wait)
        started = None
        try:
            holders = self._snapshot_holders(con)
            if holders:
                if name not in self._deferred:
                    self._deferred.add(name)
                    log.info("PostgreSQL store %s: the index %s.%s is left for a later command: another session of "
                             "this database holds a snapshot, which a concurrent build would wait for (%s). Reads go "
                             "without it (slower) until then", self.location, s, name, holders)
                return
            con.execute("SELECT set_config('lock_timeout', %s, false)", [f"{max(1, round(wait * 1000))}ms"])
            (valid, started) = con.execute(
                "SELECT i.indisvalid, pg_catalog.clock_timestamp() FROM (SELECT) one LEFT JOIN pg_catalog.pg_index i "
                "ON i.indexrelid = pg_catalog.to_regclass(%s)", [f"{s}.{name}"]).fetchone()
            if valid:  # another session built it since the catalog was read
                return
            if valid is not None:
                log.info("PostgreSQL store %s: the index %s.%s is INVALID (a concurrent build of it was killed or gave "
                         "up): dropping it and building it again", self.location, s, name)
                con.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {s}.{name}")
            con.execute(stmt.replace("CREATE INDEX ", "CREATE INDEX CONCURRENTLY ", 1))
        except psycopg.Error as exc:
            if con.broken:
                raise _ConnectionCut(f"PostgreSQL store {self.location}: the server closed the connection while this "
                                     f"flowcast built the index {s}.{name} ({' '.join(str(exc).split())}); it is "
                                     "built again at the next connection") from exc
            self._gave_up.add(name)
            log.warning("PostgreSQL store %s: could not build the index %s.%s without blocking writes (%s; "
                        "lock_timeout %g s); the sessions whose transactions, older than the build, it waits for: %s. "
                        "Reads go without it (slower) until a later command builds it; end those transactions",
                        self.location, s, name, " ".join(str(exc).split()), wait,
                        self._holders(con, transactions=True, before=started))
        finally:
            if not con.broken:
                con.execute("RESET lock_timeout")
            self._unlock_key(con, *key)

    def _snapshot_holders(self, con: Any) -> str:
        """The other sessions of this database holding a snapshot (backend_xmin), in words (`_holders`), or "": a
        concurrent index build waits for each of them to end (autovacuum's excepted, as the server does)."""
        held = self._holders(con, transactions=True, snapshots_only=True)
        return "" if held == "none now" else held

    def _has_table(self, con: Any, table: str) -> bool:
        """Whether `table` exists (a read of a missing one answers empty). One this role may not read (a table a write
        made after the role was granted SELECT ON ALL TABLES: publish_records on an older store) is a PublishError
        naming the table, the role and the GRANT, asked of the catalog: the SELECT failed with 'permission denied'
        (an ERROR in the server's log) and a message that the role may read this store but not write it."""
        name = f"{self.schema}.{table}"
        owner, readable = con.execute(
            "SELECT pg_catalog.pg_get_userbyid(c.relowner), pg_catalog.has_table_privilege(c.oid, 'SELECT') "
            "FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass(%s)", [name]).fetchone() or (None, None)
        if owner is not None and not readable:
            user = con.info.user
            raise PublishError(
                f"PostgreSQL store {self.location}: the role {user!r} of store.url may not read the table {name} (no "
                f"SELECT on it: a table made after the role was granted its reads?). Grant it, e.g. GRANT SELECT ON "
                f"ALL TABLES IN SCHEMA {self.schema} TO {user}, and for the tables a write makes later ALTER DEFAULT "
                f"PRIVILEGES FOR ROLE {owner} IN SCHEMA {self.schema} GRANT SELECT ON TABLES TO {user}; or set "
                "store.url (FLOWCAST_STORE__URL) to a role that has it")
        return owner is not None

    def _columns(self, con: Any, table: str, wanted: list[str]) -> Any:
        """`wanted` columns of `table` for a SELECT list: a column the table lacks (an older flowcast's that this
        role may not migrate) reads as null."""
        from psycopg import sql

        have = set(self._column_names(con, table))
        return sql.SQL(", ").join(sql.Identifier(c) if c in have else sql.SQL("NULL AS {}").format(sql.Identifier(c))
                                  for c in wanted)

    @contextlib.contextmanager
    def _migrating(self, con: Any, missing: Callable[[], list[str]], lock_wait: float | None = None,
                   tables: tuple[str, ...] = ("realized", "forecasts", "publishes")) -> Iterator[None]:
        """One DDL transaction under the DDL lock. A session holding the tables (a reader's open transaction: a
        dashboard, a psql left `idle in transaction`) is waited for `wait_s` (lock_timeout), not for good: the ALTER
        waited without a word, and every later reader of the table queued behind it. Then a PublishError naming
        the columns (`missing()`, asked after the rollback), the sessions holding the tables and what to do
        (StoreLockWaitError: the publish task does not retry it)."""
        import psycopg

        wait = self.wait_s if lock_wait is None else lock_wait
        try:
            with con.transaction():
                con.execute("SELECT set_config('lock_timeout', %s, true)", [f"{max(1, round(wait * 1000))}ms"])
                con.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
                yield
        except psycopg.errors.LockNotAvailable as exc:
            raise StoreLockWaitError(
                f"PostgreSQL store {self.location}: could not add the columns this flowcast records to its tables "
                f"({', '.join(missing()) or 'none missing now'}): waited {wait:g} s (store.pg_wait_s) for the "
                f"sessions holding them: {self._holders(con, tables)}. End their transactions (or SELECT "
                "pg_terminate_backend(pid)), or wait longer with store.pg_wait_s (FLOWCAST_STORE__PG_WAIT_S); nothing "
                "was changed") from exc
        except psycopg.OperationalError as exc:
            if not con.broken:
                raise
            raise _ConnectionCut(f"PostgreSQL store {self.location}: the server closed the connection while this "
                                 f"flowcast added the columns it records ({' '.join(str(exc).split())}); nothing was "
                                 "changed") from exc

    def _holders(self, con: Any, tables: tuple[str, ...] = ("realized", "forecasts", "publishes"), *,
                 transactions: bool = False, snapshots_only: bool = False, before: datetime | None = None) -> str:
        """The other sessions holding a lock on `tables` of this store or its DDL lock, in words (pid, application,
        state and since when, query), for an error a person acts on. `transactions`: instead the other sessions of
        this database (autovacuum's excepted) whose transaction a concurrent index build waits for: one holding a
        snapshot (backend_xmin) or, unless `snapshots_only`, a transaction id (a write); with `before` (the server's
        time the build started), only transactions begun before it."""
        if transactions:
            which = ("a.datname = pg_catalog.current_database() AND a.backend_type NOT LIKE 'autovacuum%%' AND "
                     + ("a.backend_xmin IS NOT NULL" if snapshots_only else
                        "(a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL)")
                     + ("" if before is None else " AND a.xact_start < %s"))
            params: list[Any] = [] if before is None else [before]
        else:
            which = ("a.pid IN (SELECT l.pid FROM pg_locks l WHERE l.granted AND (l.relation = ANY(SELECT to_regclass(t) "
                     "FROM unnest(%s::text[]) t) OR (l.locktype = 'advisory' AND l.objid = %s)))")
            params = [[f"{self.schema}.{t}" for t in tables], _DDL_LOCK]
        rows = con.execute(
            "SELECT a.pid, a.application_name, a.state, to_char(a.xact_start, 'YYYY-MM-DD HH24:MI:SS'), "
            f"left(a.query, 80) FROM pg_stat_activity a WHERE a.pid <> pg_backend_pid() AND {which} ORDER BY a.pid",
            params).fetchall()
        return "; ".join(f"pid {pid} ({app or 'no application name'}, {state}, transaction since {since}: "
                         f"{' '.join(str(query).split())!r})" for pid, app, state, since, query in rows) or "none now"

    def _missing_columns(self, con: Any) -> list[tuple[str, str]]:
        have = set(con.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s "
                               "AND table_name = ANY(%s)", [self.schema, list(_LATER_COLUMNS)]).fetchall())
        return [(t, c) for t, cols in _LATER_COLUMNS.items() for c in cols if (t, c) not in have]

    def _column_names(self, con: Any, table: str) -> list[str]:
        return [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                                          "AND table_name = %s", [self.schema, table]).fetchall()]

    def _value_columns(self, con: Any, table: str = "forecasts") -> list[str]:
        return [c for c in self._column_names(con, table) if _VALUE_RE.match(c)]

    def _add_value_columns(self, con: Any, what: str, vcols: list[str], lock_wait: float | None = None) -> None:
        """The value columns of `vcols` the forecasts table lacks, added: only by a role that owns the table (one
        that does not is refused naming them before the ALTER is sent, `refuse_unmakeable`)."""
        from psycopg import sql

        missing = [c for c in vcols if c not in self._value_columns(con)]
        if not missing:
            return
        if "forecasts" not in catalog(con, self.schema, ["forecasts"], []).owned:
            self.refuse_unmakeable(con, what, [f"forecasts.{c}" for c in missing])
        with self._migrating(con, lambda: [f"forecasts.{c}" for c in missing], lock_wait):
            for c in missing:
                con.execute(sql.SQL("ALTER TABLE {}.forecasts ADD COLUMN IF NOT EXISTS {} double precision").format(
                    sql.Identifier(self.schema), sql.Identifier(c)))

    @staticmethod
    def _lock_key(con: Any, *parts: str, session: bool = False) -> None:
        """The advisory lock of `parts`: until the transaction ends, or with `session` until the connection closes
        (or unlocks it); either kind waits for the other."""
        con.execute(f"SELECT pg_advisory{'' if session else '_xact'}_lock(hashtextextended(%s, 0))", ["|".join(parts)])

    @staticmethod
    def _unlock_key(con: Any, *parts: str) -> None:
        """Let go of the session lock of `parts` (`_lock_key(..., session=True)`) now. Closing the connection lets it go
        too, but only once the server has seen the close: another session trying the lock at once could still find it
        held (a CI run did, after a delete). A connection already cut (or failing) lets it go as it closes."""
        import psycopg

        with contextlib.suppress(psycopg.Error):
            con.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", ["|".join(parts)])

    def _check_lock_held(self, con: Any, dataset: str, as_of: datetime, what: str, *parts: str) -> None:
        """LockLostError naming the key (dataset, as_of) and `what` (then not done) unless `con` still holds the
        advisory lock of `parts` (`_lock_key`, a session lock or its transaction's), as pg_locks shows it: a connection
        cut after a commit under a session lock, or inside a transaction under its lock (a server restart,
        pg_terminate_backend, a network cut), let the lock go with it, and a publish of the key may land before `what`
        is done, as an object store's lock lost (`fs.Lease.check`)."""
        import psycopg

        try:
            row = con.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted "
                "AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(%s, 0))",
                ["|".join(parts)]).fetchone()
            why = None if row and row[0] else "the server shows this session no longer holding it"
        except psycopg.OperationalError as exc:
            why = f"its connection was cut: {' '.join(str(exc).split())}"
        if why:
            raise LockLostError(f"lost the lock of dataset {dataset} as_of {utc_text(as_of)} on the PostgreSQL store "
                                f"{self.location} ({why}): {lock_lost_outcome(what)}")

    def _copy_in(self, con: Any, table: str, frame: pl.DataFrame) -> None:
        from psycopg import sql

        stmt = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT csv, HEADER true, NULL '\\N')").format(
            sql.Identifier(self.schema), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, frame.columns)))
        # text quoted: in CSV mode only an unquoted \N is NULL, so a unique_id that is literally \N stays one (unquoted,
        # it was read as NULL and failed NOT NULL); a null stays unquoted
        data = frame.write_csv(null_value="\\N", datetime_format="%Y-%m-%d %H:%M:%S%.6f",
                               quote_style="non_numeric").encode()
        with con.cursor().copy(stmt) as cp:
            for i in range(0, len(data), 1 << 20):
                cp.write(data[i:i + (1 << 20)])

    @staticmethod
    def _copy_stmt(query: Any, text_cols: list[str]) -> Any:
        """COPY (query) TO STDOUT as CSV with a header; `text_cols` always quoted, so that an empty string stays one
        and NULL (an empty field, unquoted) stays NULL: polars reads "" as an empty string and an empty field as null,
        but any marker as null quoted or not (NULL '\\N' read a unique_id that is literally \\N as null)."""
        from psycopg import sql

        quote = sql.SQL(", FORCE_QUOTE ({})").format(sql.SQL(", ").join(map(sql.Identifier, text_cols))) \
            if text_cols else sql.SQL("")
        return sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true, NULL ''{})").format(query, quote)

    def _copy_out(self, con: Any, query: Any, params: list[Any], text_cols: list[str]) -> bytes:
        """CSV of one query (one statement: one snapshot), its header line first (`_copy_stmt`)."""
        with con.cursor().copy(self._copy_stmt(query, text_cols), params) as cp:
            return b"".join(cp)

    def _copy_spool(self, con: Any, query: Any, params: list[Any], text_cols: list[str], rows: int) -> _Spool:
        """`_copy_out`'s CSV read at the server's speed into a spooled temporary file (memory up to `_SPOOL_MEMORY`,
        then disk), with where every `rows` rows end: the caller's transaction can end before the rows are parsed
        (`_Spool.pieces`). A COPY read as its consumer went (`flowcast forecasts --format csv | less`) kept its
        transaction, and its lock on the table, open that long: a publish adding a value column waited, then failed.
        libpq hands a COPY's data one row at a time (PQgetCopyData), so each piece ends where a row does, whatever
        newlines its quoted text holds."""
        spool = _Spool(tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY))  # noqa: SIM115 (closed by pieces())
        try:
            pending: bytearray | None = bytearray()  # the header line, until it is whole
            held = 0
            with con.cursor().copy(self._copy_stmt(query, text_cols), params) as cp:
                for chunk in cp:
                    if pending is not None:  # the header line (column names: no quoted newline)
                        pending += chunk
                        if (end := pending.find(b"\n")) < 0:
                            continue
                        spool.head, chunk = bytes(pending[:end + 1]), bytes(pending[end + 1:])
                        pending = None
                        if not chunk:
                            continue
                    spool.file.write(chunk)
                    held += 1
                    if held >= rows:
                        spool.ends.append(spool.file.tell())
                        held = 0
            if held:
                spool.ends.append(spool.file.tell())
        except BaseException:
            spool.file.close()
            raise
        return spool

    # ------------------------------------------------------------------ publish
    def publish(
        self,
        forecasts: pl.DataFrame,
        *,
        dataset: str,
        as_of: datetime,
        model: str,
        model_version: str | None,
        run_id: str,
        created_at: datetime,
        last_ds: pl.DataFrame | None = None,
        expected_ids: list[str] | None = None,
        horizon: int | None = None,
        before_visible: Callable[[str], None] | None = None,
        trained_as_of: datetime | None = None,
        lookahead: bool | None = None,
        if_absent: bool = False,
        refuse_if: Callable[[dict[str, str]], bool] | None = None,
        keep_same: bool = False,
    ) -> PublishReceipt:
        """Validate, then replace the forecasts of (dataset, as_of) in one transaction, with the
        realized accuracy of that key when the forecasts change (it scored the ones replaced).
        `before_visible(what)` is called right before the commit; what it raises rolls it back.
        `if_absent`: only into a key that holds nothing, checked in the transaction under the key's lock
        (AlreadyPublished and nothing written otherwise). `refuse_if(held)`: the same, only when the key holds a
        publish whose receipt it returns True for (called in the transaction, under the key's lock). `keep_same`: a
        key that holds these very forecasts (the same content hash) is left as it is: SamePublished, nothing written."""
        p = prepare(forecasts, dataset=dataset, as_of=as_of, model=model, model_version=model_version,
                    run_id=run_id, created_at=created_at, last_ds=last_ds, expected_ids=expected_ids,
                    horizon=horizon, trained_as_of=trained_as_of, lookahead=lookahead)
        s = self.schema
        with self._conn(f"publish dataset {p.dataset} as_of {utc_text(p.as_of)}", value_columns=p.vcols) as con:
            with con.transaction():
                self._lock_key(con, s, "forecasts", p.dataset, p.as_of.isoformat())
                prev = con.execute(f"SELECT rows, content_hash, run_id, model, model_version FROM {s}.publishes "
                                   "WHERE dataset = %s AND as_of = %s", [p.dataset, p.as_of]).fetchone()
                held = None if prev is None else {"rows": str(prev[0]), "content_hash": prev[1] or "",
                                                  "run_id": prev[2] or "", "model": prev[3] or "",
                                                  "model_version": prev[4] or ""}
                if held is not None and (if_absent or (refuse_if is not None and refuse_if(held))):
                    raise already_published(p.dataset, p.as_of, held)  # rolled back: nothing written
                if held is not None and keep_same and held["content_hash"] == p.digest:
                    raise same_published(p.dataset, p.as_of, held)  # rolled back: nothing written
                con.execute(
                    f"""INSERT INTO {s}.publishes AS p (dataset, as_of, content_hash, model, model_version, run_id,
                    created_at, rows, n_series, value_columns, trained_as_of, lookahead)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    ON CONFLICT (dataset, as_of) DO UPDATE SET content_hash = EXCLUDED.content_hash,
                    model = EXCLUDED.model, model_version = EXCLUDED.model_version, run_id = EXCLUDED.run_id,
                    created_at = EXCLUDED.created_at, rows = EXCLUDED.rows, n_series = EXCLUDED.n_series,
                    value_columns = EXCLUDED.value_columns, trained_as_of = EXCLUDED.trained_as_of,
                    lookahead = EXCLUDED.lookahead""",
                    [p.dataset, p.as_of, p.digest, p.model, p.model_version, p.run_id, p.created_at, p.frame.height,
                     p.n_series, p.vcols, p.trained_as_of, p.lookahead],
                )
                con.execute(f"DELETE FROM {s}.forecasts WHERE dataset = %s AND as_of = %s", [p.dataset, p.as_of])
                if prev is None or prev[1] != p.digest:  # the realized accuracy of the forecasts replaced
                    self._lock_key(con, s, "realized", p.dataset, p.as_of.isoformat())
                    con.execute(f"DELETE FROM {s}.realized WHERE dataset = %s AND as_of = %s", [p.dataset, p.as_of])
                fault("in_transaction")
                self._copy_in(con, "forecasts", p.frame)
                (n,) = con.execute(f"SELECT count(*) FROM {s}.forecasts WHERE dataset = %s AND as_of = %s",
                                   [p.dataset, p.as_of]).fetchone()
                if n != p.frame.height:  # cannot happen under the key's lock; checked, not assumed
                    raise PublishError(f"dataset {p.dataset} as_of {utc_text(p.as_of)} would hold {n} rows, "
                                       f"expected {p.frame.height}: rolled back")
                fault("before_commit")
                if before_visible is not None:
                    before_visible(f"forecasts of dataset {p.dataset} as_of {utc_text(p.as_of)}")
            fault("after_commit")
        replaced, previous = (int(prev[0]), prev[1]) if prev else (0, None)
        return p.receipt(replaced_rows=replaced, previous_content_hash=previous,
                         location=f"{self.location} table {s}.forecasts")

    def delete(self, dataset: str, as_of: datetime, *, then: Callable[[], None] | None = None) -> bool:
        """Remove what (dataset, as_of) published, its realized accuracy and its publish record row (an explicit
        request), in one transaction under the key's lock. `then()`: called when a publish was removed, after the
        commit, the key's lock still held (a session lock, taken before the transaction and let go when the
        connection closes after `then` returns: a publish of the key waits for it): what belongs to the removed
        publish alone (gc's record file) goes before another publish of the key can land and write its own. It was
        called before the commit: killed in between, the record file was gone and the rows not (pg43). A kill after
        the commit leaves the record file of a key that holds nothing, which the next gc removes
        (`unless_published`). A connection cut after the commit let the lock go: LockLostError naming the key, `then`
        not called (`_check_lock_held`; it was called all the same, beside a publish of the key landing, lockB44)."""
        check_dataset(dataset)
        as_of = storage_ts(as_of)
        s = self.schema
        with self._conn(f"delete dataset {dataset} as_of {utc_text(as_of)}") as con:
            self._lock_key(con, s, "forecasts", dataset, as_of.isoformat(), session=True)  # let go at the end
            try:
                with con.transaction():
                    n = con.execute(f"DELETE FROM {s}.publishes WHERE dataset = %s AND as_of = %s",
                                    [dataset, as_of]).rowcount
                    con.execute(f"DELETE FROM {s}.forecasts WHERE dataset = %s AND as_of = %s", [dataset, as_of])
                    con.execute(f"DELETE FROM {s}.realized WHERE dataset = %s AND as_of = %s", [dataset, as_of])
                    con.execute(f"DELETE FROM {s}.publish_records WHERE dataset = %s AND as_of = %s",
                                [dataset, as_of])
                    fault("delete_before_commit")
                if n > 0 and then is not None:
                    self._check_lock_held(con, dataset, as_of, removal(f"the publish record of dataset {dataset} "
                                          f"as_of {utc_text(as_of)}"), s, "forecasts", dataset, as_of.isoformat())
                    then()
            finally:
                self._unlock_key(con, s, "forecasts", dataset, as_of.isoformat())
        return n > 0

    def unless_published(self, dataset: str, as_of: datetime, then: Callable[[], None]) -> bool:
        """Call `then()` under the key's lock when (dataset, as_of) holds no publish (gc's removal of the record
        file a delete killed after its commit left); whether it was called. A connection cut before `then()` let the
        transaction's lock go with it: LockLostError naming the key, `then` not called (`_check_lock_held`; it was
        called all the same, unguarded, lockC44)."""
        check_dataset(dataset)
        as_of = storage_ts(as_of)
        s = self.schema
        with self._conn(f"check that dataset {dataset} as_of {utc_text(as_of)} is not published", read=True) as con, \
                con.transaction():
            self._lock_key(con, s, "forecasts", dataset, as_of.isoformat())
            if self._has_table(con, "publishes") and con.execute(
                    f"SELECT 1 FROM {s}.publishes WHERE dataset = %s AND as_of = %s", [dataset, as_of]).fetchone():
                return False
            self._check_lock_held(con, dataset, as_of, removal(f"the publish record of dataset {dataset} "
                                  f"as_of {utc_text(as_of)}"), s, "forecasts", dataset, as_of.isoformat())
            then()
        return True

    # ------------------------------------------------------------------ publish records
    def while_published(self, dataset: str, as_of: datetime, content_hash: str, then: Callable[[], None], *,
                        record: dict[str, Any] | Callable[[dict[str, Any] | None], dict[str, Any] | None] | None = None,
                        run_id: str | None = None) -> bool:
        """Call `then()` in one transaction under the key's lock (the one `publish` and `delete` take) while
        (dataset, as_of) holds the publish of `content_hash` made by the run `run_id` (when given), after keeping
        `record` (JSON-able, when given) as its publish record; a callable `record` is called with the record the
        table holds for the key, read in that transaction (None: none), and what it returns is kept (None: the row is
        left as it is); False, nothing written nor called, when the key holds
        none (deleted since) or another: also another run's publish of these very forecasts (the content hash alone
        was compared, and the first run's late record went over the second's, lock44). A connection cut before
        `then()` let the transaction's lock go with it (and the record's row): LockLostError naming the key, `then` not
        called (`_check_lock_held`; it was called all the same, unguarded, lockC44)."""
        import json

        check_dataset(dataset)
        as_of = storage_ts(as_of)
        s = self.schema
        with self._conn(f"record the publish of dataset {dataset} as_of {utc_text(as_of)}") as con, \
                con.transaction():
            self._lock_key(con, s, "forecasts", dataset, as_of.isoformat())
            held = con.execute(f"SELECT content_hash, run_id FROM {s}.publishes WHERE dataset = %s AND as_of = %s",
                               [dataset, as_of]).fetchone()
            if held is None or held[0] != content_hash or (run_id is not None and held[1] != run_id):
                return False
            if callable(record):
                row = con.execute(f"SELECT content_hash, record FROM {s}.publish_records WHERE dataset = %s AND "
                                  "as_of = %s", [dataset, as_of]).fetchone()
                try:
                    current = None if row is None else {**json.loads(row[1]), "content_hash": row[0]}
                except (ValueError, TypeError):  # a record that cannot be read: none (rewritten)
                    current = None
                record = record(current)
            if record is not None:
                con.execute(f"""INSERT INTO {s}.publish_records (dataset, as_of, content_hash, record) VALUES (%s, %s, %s, %s)
                            ON CONFLICT (dataset, as_of) DO UPDATE SET content_hash = EXCLUDED.content_hash,
                            record = EXCLUDED.record""", [dataset, as_of, content_hash, json.dumps(record)])
            self._check_lock_held(con, dataset, as_of, f"the publish record of dataset {dataset} as_of "
                                  f"{utc_text(as_of)}", s, "forecasts", dataset, as_of.isoformat())
            then()
        return True

    def records(self, dataset: str, as_of: datetime | None = None) -> list[dict[str, Any]]:
        """The publish records of `dataset` (of its `as_of` alone when given), newest as_of first, each the record
        as written with its `as_of` (ISO) and `content_hash` as the table holds them; a record whose JSON cannot be
        read is left out, with a warning naming its key."""
        import json

        where, params = self._where(dataset=check_dataset(dataset), as_of=as_of)
        from psycopg import sql

        with self._conn(f"read the publish records of dataset {dataset}", read=True) as con:
            if not self._has_table(con, "publish_records"):  # a store an older flowcast made, read-only: none yet
                return []
            rows = con.execute(sql.SQL("SELECT as_of, content_hash, record FROM {}.publish_records{} ORDER BY as_of "
                                       "DESC").format(sql.Identifier(self.schema), where), params).fetchall()
        out = []
        for at, digest, text in rows:
            try:
                rec = json.loads(text)
            except ValueError as exc:
                rec, why = None, str(exc)
            else:
                why = f"a JSON {type(rec).__name__}, not an object"
            if not isinstance(rec, dict):
                log.warning("the publish record of dataset %s as_of %s in %s cannot be read (%s); passed over",
                            dataset, utc_text(at), self.location, why)
                continue
            out.append({**rec, "as_of": at.isoformat(), "content_hash": digest})
        return out

    # ------------------------------------------------------------------ read
    def _where(self, **filters: Any) -> tuple[Any, list[Any]]:
        from psycopg import sql

        conds, params = [], []
        for col, value in filters.items():
            if value is not None:
                conds.append(sql.SQL("{} = %s").format(sql.Identifier(col)))
                params.append(storage_ts(value) if isinstance(value, datetime) else value)
        where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds) if conds else sql.SQL("")
        return where, params

    def read(self, *, dataset: str | None = None, as_of: datetime | None = None, unique_id: str | None = None,
             model: str | None = None, rows: int | None = None) -> pl.DataFrame:
        """Published forecasts, sorted by dataset, as_of, unique_id, ds (one snapshot); value columns null in every
        matched row are left out. `rows`: only the first rows (LIMIT: `flowcast forecasts --limit N` fetched every
        row to show N), with the columns of a whole read (`read().head(rows)`)."""
        from psycopg import sql

        if dataset is not None:
            check_dataset(dataset)
        with self._conn("read forecasts", read=True) as con, con.transaction():
            self._snapshot(con)
            if not self._has_table(con, "forecasts"):  # nothing published yet, read by a role that may not create
                return empty_forecasts()
            vcols = self._value_columns(con)
            where, params = self._where(dataset=dataset, as_of=as_of, unique_id=unique_id, model=model)
            query = self._select([*_BASE_COLS, *vcols], where,
                                 sql.SQL("") if rows is None else sql.SQL(" LIMIT {}").format(sql.Literal(rows)))
            data = self._copy_out(con, query, params, _TEXT_COLS)
            frame = self._parse(data, _FORECAST_TYPES | {c: pl.Float64 for c in vcols})
            if rows is None or frame.height == 0:
                return empty_forecasts() if frame.height == 0 else normalise_read(frame)
            held = {c for c in vcols if frame[c].null_count() < frame.height}  # the others: has a later row one?
            filled = held | set(self._filled(con, [c for c in vcols if c not in held], where, params))
        return normalise_read(frame, filled)

    def read_batches(self, *, dataset: str | None = None, as_of: datetime | None = None,
                     unique_id: str | None = None, model: str | None = None,
                     size: int = 50_000) -> Iterator[pl.DataFrame]:
        """What `read` returns, `size` rows at a time (one COPY, spooled, then parsed: `_copy_spool`): `flowcast
        forecasts --format csv|json` held every row of the store in memory to write them. Every batch has the same
        columns: the value columns with a value in some matched row (one aggregate query first). No batch where
        nothing matches. (A named cursor's rows, made Python objects one by one, took twice as long for 1M rows as this,
        about as long as the whole read.)"""
        if dataset is not None:
            check_dataset(dataset)
        with self._conn("read forecasts", read=True) as con, con.transaction():
            self._snapshot(con)
            if not self._has_table(con, "forecasts"):
                return
            where, params = self._where(dataset=dataset, as_of=as_of, unique_id=unique_id, model=model)
            vcols = self._filled(con, self._value_columns(con), where, params)
            spool = self._copy_spool(con, self._select([*_BASE_COLS, *vcols], where), params, _TEXT_COLS, size)
        for piece in spool.pieces():  # the transaction has ended: a slow consumer holds no lock (_copy_spool)
            yield normalise_read(self._parse(piece, _FORECAST_TYPES | {c: pl.Float64 for c in vcols}), set(vcols))

    def read_summary(self, columns: Callable[[str], bool], *, dataset: str | None = None,
                     as_of: datetime | None = None, unique_id: str | None = None,
                     model: str | None = None) -> pl.DataFrame:
        """`EmbeddedStore.read_summary`, as one aggregate query (GROUP BY): the distinct rows of the columns `columns`
        keeps, each value column only null or 0.0 (whether it is there), and `rows`, how many published rows each
        stands for; the rows' values never leave the server (`flowcast forecasts` fetched every row to show 50 and
        count them). A value column is there where a matched key's publish has it (its `value_columns`, as a
        Parquet file has its columns: 'no 95% interval was published') or a matched row a value in it; the table's
        columns of other publishes alone are left out."""
        from psycopg import sql

        if dataset is not None:
            check_dataset(dataset)
        with self._conn("read forecasts", read=True) as con, con.transaction():
            self._snapshot(con)
            if not self._has_table(con, "forecasts"):
                return pl.DataFrame(schema={"rows": pl.Int64})
            keyed, keyed_params = self._where(dataset=dataset, as_of=as_of)
            published = {r[0] for r in con.execute(sql.SQL("SELECT DISTINCT unnest(value_columns) FROM {}.publishes{}")
                                                   .format(sql.Identifier(self.schema), keyed), keyed_params)}
            vcols = [c for c in self._value_columns(con) if columns(c)]
            keys = [c for c in _BASE_COLS if columns(c)]
            where, params = self._where(dataset=dataset, as_of=as_of, unique_id=unique_id, model=model)
            marks = [sql.SQL("CASE WHEN {0} IS NULL THEN NULL ELSE 0.0 END AS {0}").format(sql.Identifier(c))
                     for c in vcols]
            grouped = [sql.Literal(i + 1) for i in range(len(keys) + len(vcols))]  # by position: the marks too
            query = sql.SQL("SELECT {}count(*) AS rows FROM {}.forecasts{}{}").format(
                sql.SQL("").join(sql.SQL("{}, ").format(c) for c in [*map(sql.Identifier, keys), *marks]),
                sql.Identifier(self.schema), where,
                sql.SQL(" GROUP BY {}").format(sql.SQL(", ").join(grouped)) if grouped else sql.SQL(""))
            data = self._copy_out(con, query, params, [c for c in keys if _FORECAST_TYPES.get(c) == pl.Utf8])
        frame = self._parse(data, _FORECAST_TYPES | {c: pl.Float64 for c in vcols} | {"rows": pl.Int64})
        return summary_order(frame.select(c for c in frame.columns if c not in vcols or c in published
                                          or frame[c].null_count() < frame.height))

    def _snapshot(self, con: Any) -> None:
        """The transaction begun on `con` reads one snapshot in all its statements (REPEATABLE READ), and writes
        nothing: the first rows and whether a later row has a value, or the batches and their columns, are of the same publishes."""
        con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    def _select(self, cols: list[str], where: Any, tail: Any = None) -> Any:
        """SELECT `cols` of the forecasts `where` matches, in published order (then `tail`: a LIMIT). Text in byte
        order (COLLATE "C"), as polars sorts what `read` returns: in a database's own collation (en_US: 's0' before
        'S1') the first rows of a LIMIT or the first batches were not those of the whole read."""
        from psycopg import sql

        return sql.SQL('SELECT {} FROM {}.forecasts{} ORDER BY dataset COLLATE "C", as_of, unique_id COLLATE "C", '
                       'ds{}').format(
            sql.SQL(", ").join(map(sql.Identifier, cols)), sql.Identifier(self.schema), where, tail or sql.SQL(""))

    def _filled(self, con: Any, vcols: list[str], where: Any, params: list[Any]) -> list[str]:
        """Those of the value columns `vcols` with a value in some row `where` (`_where`, of `params`) matches: one
        EXISTS per column, which stops at its first value (a bool_or scanned every matched row; none asked: no
        query)."""
        from psycopg import sql

        if not vcols:
            return []
        joint = sql.SQL(" AND " if params else " WHERE ")  # `_where` binds one parameter per condition
        query = sql.SQL("SELECT {}").format(sql.SQL(", ").join(
            sql.SQL("EXISTS (SELECT 1 FROM {}.forecasts{}{}{} IS NOT NULL)").format(
                sql.Identifier(self.schema), where, joint, sql.Identifier(c)) for c in vcols))
        found = con.execute(query, params * len(vcols)).fetchone()
        return [c for c, has in zip(vcols, found or (), strict=False) if has]

    @staticmethod
    def _parse(data: bytes, types: dict[str, Any]) -> pl.DataFrame:
        head = data.split(b"\n", 1)[0].decode().split(",")
        overrides = {c: (pl.Utf8 if c in _TS_COLS else types.get(c, pl.Utf8)) for c in head}
        frame = pl.read_csv(data, schema_overrides=overrides)  # an empty field is NULL (`_copy_stmt`)
        return frame.with_columns(pl.col(c).str.to_datetime(time_unit="us") for c in head if c in _TS_COLS)

    def _publishes(self, where: dict[str, Any]) -> list[tuple]:
        w, params = self._where(**where)
        from psycopg import sql

        with self._conn("read the published keys", read=True) as con:
            if not self._has_table(con, "publishes"):
                return []
            cols = self._columns(con, "publishes", ["dataset", "as_of", "content_hash", "model", "model_version",
                                                    "run_id", "created_at", "rows", "n_series", "trained_as_of",
                                                    "lookahead"])
            return con.execute(sql.SQL("SELECT {} FROM {}.publishes{} ORDER BY dataset, as_of").format(
                cols, sql.Identifier(self.schema), w), params).fetchall()

    def datasets(self) -> list[str]:
        return sorted({r[0] for r in self._publishes({})})

    def as_ofs(self, dataset: str) -> list[datetime]:
        return [r[1] for r in self._publishes({"dataset": check_dataset(dataset)})]

    def current_publishes(self) -> dict[tuple[str, datetime], str]:
        """{(dataset, as_of): a token of its publish (the receipt's columns)} of every published key, one query:
        another publish of the key changes it (its run, its start, its content hash)."""
        return {(r[0], r[1]): repr(r[2:]) for r in self._publishes({})}

    def has(self, dataset: str, as_of: datetime) -> bool:
        return bool(self._publishes({"dataset": check_dataset(dataset), "as_of": as_of}))

    def receipt_of(self, dataset: str, as_of: datetime) -> dict[str, str]:
        rows = self._publishes({"dataset": check_dataset(dataset), "as_of": as_of})
        if not rows:
            raise NothingPublished(f"nothing published for dataset {dataset} as_of {utc_text(storage_ts(as_of))} "
                               f"in {self.location}")
        names = ["dataset", "as_of", "content_hash", "model", "model_version", "run_id", "created_at", "rows",
                 "n_series", "trained_as_of", "lookahead"]
        return {k: (lookahead_text(v) if k == "lookahead" else "" if v is None else v.isoformat()
                    if isinstance(v, datetime) else str(v))
                for k, v in zip(names, rows[0], strict=True)}

    def verify(self, dataset: str, as_of: datetime) -> bool:
        """True when the stored rows of a key hash to the receipt's content hash."""
        frame = self.read(dataset=dataset, as_of=as_of)
        return content_hash(frame) == self.receipt_of(dataset, as_of)["content_hash"]

    # ------------------------------------------------------------------ realized accuracy
    def write_realized(self, dataset: str, frame: pl.DataFrame, *, scored: dict[datetime, str] | None = None) -> int:
        """Replace the realized-accuracy rows of every (dataset, as_of) in `frame`, in one transaction.
        With `scored` ({as_of: content hash of the forecasts scored}), an as_of whose publish is no
        longer those forecasts (re-published or removed since they were read) is left out."""
        valid = validate_realized(dataset, frame)
        s = self.schema
        as_ofs = sorted(valid["as_of"].unique().to_list())
        with self._conn(f"write realized accuracy of dataset {dataset}") as con, con.transaction():
            if scored is not None:  # the forecasts' locks first, as a publish takes them
                for a in as_ofs:
                    self._lock_key(con, s, "forecasts", dataset, a.isoformat())
                current = dict(con.execute(
                    f"SELECT as_of, content_hash FROM {s}.publishes WHERE dataset = %s AND as_of = ANY(%s)",
                    [dataset, as_ofs]).fetchall())
                as_ofs = [a for a in as_ofs if scored.get(a) is not None and current.get(a) == scored.get(a)]
                valid = valid.filter(pl.col("as_of").is_in(as_ofs))
            for a in as_ofs:
                self._lock_key(con, s, "realized", dataset, a.isoformat())
            con.execute(f"DELETE FROM {s}.realized WHERE dataset = %s AND as_of = ANY(%s)", [dataset, as_ofs])
            self._copy_in(con, "realized", valid)
            fault("realized_before_commit")
        return valid.height

    def rewrite_realized(self, dataset: str, scored: dict[datetime, str],
                         change: Callable[[pl.DataFrame], pl.DataFrame]) -> list[datetime]:
        """`EmbeddedStore.rewrite_realized`: the rows of each (dataset, as_of) of `scored` read and replaced by
        `change(rows)` in one transaction of its own, under the advisory locks `write_realized` takes (the key's
        forecasts', then its realized rows'), while the key holds the publish of its content hash; the as_ofs that
        did, oldest first. One connection for them all (it was one for each as_of)."""
        if not scored:
            return []
        s, keys = self.schema, sorted(scored)
        span = utc_text(keys[0]) if len(keys) == 1 else f"{utc_text(keys[0])} to {utc_text(keys[-1])} ({len(keys)})"
        held: list[datetime] = []
        with self._conn(f"rewrite the realized accuracy of dataset {dataset} as_of {span}") as con:
            for key in keys:
                as_of = storage_ts(key)
                with con.transaction():
                    self._lock_key(con, s, "forecasts", dataset, as_of.isoformat())
                    now = con.execute(f"SELECT content_hash FROM {s}.publishes WHERE dataset = %s AND as_of = %s",
                                      [dataset, as_of]).fetchone()
                    if now is None or now[0] != scored[key]:
                        continue
                    self._lock_key(con, s, "realized", dataset, as_of.isoformat())
                    rows = self._read_realized(con, dataset, as_of)
                    changed = change(rows) if rows.height else rows
                    if not changed.equals(rows):
                        con.execute(f"DELETE FROM {s}.realized WHERE dataset = %s AND as_of = %s", [dataset, as_of])
                        self._copy_in(con, "realized", validate_realized(dataset, changed))
                held.append(key)
        return held

    def read_realized(self, dataset: str | None = None, as_of: datetime | None = None) -> pl.DataFrame:
        if dataset is not None:
            check_dataset(dataset)
        with self._conn("read realized accuracy", read=True) as con:
            return self._read_realized(con, dataset, as_of)

    def _read_realized(self, con: Any, dataset: str | None, as_of: datetime | None) -> pl.DataFrame:
        """The realized-accuracy rows `read_realized` returns, read on `con` (in its transaction, if any)."""
        from psycopg import sql

        from flowcast.columns import REALIZED_COLUMNS

        if not self._has_table(con, "realized"):
            return empty_realized()
        where, params = self._where(dataset=dataset, as_of=as_of)
        query = sql.SQL("SELECT {} FROM {}.realized{} ORDER BY dataset, as_of, model, step").format(
            self._columns(con, "realized", list(REALIZED_COLUMNS)), sql.Identifier(self.schema), where)
        data = self._copy_out(con, query, params, ["dataset", "model", "model_version"])
        frame = self._parse(data, {"step": pl.Int32, **{c: pl.Int64 for c in ("n", "n_mase", "n_cov80", "n_cov95")},
                                   **{c: pl.Float64 for c in (
            "mae", "mase", "rmsse", "smape", "coverage80", "coverage95", "mae_snaive", "mase_snaive", "rmsse_snaive")}})
        if "lookahead" in frame.columns:  # COPY writes a boolean as t / f
            frame = frame.with_columns(pl.col("lookahead").cast(pl.Utf8).replace_strict(
                {"t": True, "f": False, "true": True, "false": False}, default=None, return_dtype=pl.Boolean))
        return empty_realized() if frame.height == 0 else normalise_realized(frame)
