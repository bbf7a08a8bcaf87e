"""A real PostgreSQL server for tests: `initdb` in a temporary directory, `pg_ctl start` on a free
loopback port, stopped and deleted afterwards. No mock, no shared server.

PostgreSQL refuses to run as root (initdb and pg_ctl exit with "cannot be run as root"); CI runs
the tests as root, so there every server command runs as the `postgres` system user through
`runuser -u postgres --`, in a directory that user owns. As an ordinary user the commands run as
that user. The binaries come from FLOWCAST_PG_BIN, else the newest /usr/lib/postgresql/*/bin, else
PATH; without any, `running_postgres` raises PostgresUnavailable (the fixtures turn that into a
skip that names what is missing).

The server trusts local TCP connections (`initdb --auth=trust`, listening on 127.0.0.1 only) and
runs with fsync off: it holds test data only, and a killed *client* (what the fault tests do)
is unaffected by fsync.

    with running_postgres() as pg:
        url = pg.url(pg.create_database("flowcast"))              # postgresql://postgres@127.0.0.1:PORT/flowcast
        prefect_url = pg.url("prefect", driver="postgresql+asyncpg")
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SUPERUSER = "postgres"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here (or no `postgres` system user to run them as root)."""


def find_pg_bin() -> Path:
    """The folder with initdb/pg_ctl/createdb."""
    if env := os.environ.get("FLOWCAST_PG_BIN"):
        path = Path(env)
        if not (path / "pg_ctl").exists():
            raise PostgresUnavailable(f"FLOWCAST_PG_BIN={env} has no pg_ctl")
        return path
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1].parent
    if which := shutil.which("pg_ctl"):
        return Path(which).parent
    raise PostgresUnavailable("no PostgreSQL server binaries (pg_ctl) in FLOWCAST_PG_BIN, /usr/lib/postgresql/*/bin "
                              "or PATH; install postgresql (e.g. apt-get install postgresql-15)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One running server: `url(dbname)`, `create_database(name)`, `drop_database(name)`, `stop()`."""

    host = "127.0.0.1"

    def __init__(self, bin_dir: Path, root: Path, port: int, run_as: str | None):
        self.bin_dir, self.root, self.port, self.run_as = bin_dir, root, port, run_as
        self.data_dir = root / "data"
        self.log_file = root / "server.log"

    # ------------------------------------------------------------------ commands
    def _cmd(self, tool: str, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / tool), *args]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = env["LANG"] = "C.UTF-8"
        p = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, cwd=self.root, env=env)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}\n{self.log_tail()}")
        return p

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _client_args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", SUPERUSER]

    # ------------------------------------------------------------------ lifecycle
    def init(self) -> None:
        self._cmd("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")

    def start(self) -> None:
        opts = (f"-h {self.host} -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off "
                "-c synchronous_commit=off -c max_connections=200")
        self._cmd("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", opts, "-w", "-t", "120", "start",
                  timeout=150)
        deadline = time.monotonic() + 60
        while self._cmd("pg_isready", *self._client_args(), check=False, timeout=10).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on port {self.port} did not accept connections:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._cmd("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop", check=False,
                      timeout=90)

    # ------------------------------------------------------------------ databases
    def url(self, dbname: str = "postgres", driver: str = "postgresql") -> str:
        """`driver://postgres@127.0.0.1:PORT/dbname` (driver e.g. postgresql, postgresql+asyncpg)."""
        return f"{driver}://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq keyword form, for psycopg.connect."""
        return f"host={self.host} port={self.port} user={SUPERUSER} dbname={dbname}"

    def create_database(self, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"database name {name!r}: lower-case letters, digits and _ only")
        self._cmd("createdb", *self._client_args(), name)
        return name

    def drop_database(self, name: str) -> None:
        self._cmd("dropdb", *self._client_args(), "--force", "--if-exists", name, check=False)

    def add_password_role(self, role: str, password: str) -> str:
        """A login role that must give `password` (scram-sha-256 in pg_hba.conf, ahead of the trust lines; the
        server reloads it): `driver://role:password@host:port/` is its URL's start. Returns the role."""
        if not _NAME.match(role):
            raise ValueError(f"role name {role!r}: lower-case letters, digits and _ only")
        self.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        hba = self.data_dir / "pg_hba.conf"  # rewritten in place: it keeps its owner (postgres when run as root)
        hba.write_text(f"host all {role} {self.host}/32 scram-sha-256\n" + hba.read_text())
        self.psql("SELECT pg_reload_conf()")
        return role

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL with psql (tuples only, unaligned); returns stdout."""
        return self._cmd("psql", *self._client_args(), "-d", dbname, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql).stdout


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a fresh server in a temporary directory; stop it and delete the directory afterwards."""
    bin_dir = find_pg_bin()
    run_as = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(SUPERUSER)
        except KeyError:
            raise PostgresUnavailable("running as root and there is no `postgres` system user to run "
                                      "PostgreSQL as (initdb/pg_ctl refuse root)") from None
        if shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root without `runuser` to start PostgreSQL as `postgres`")
        run_as = SUPERUSER
    root = Path(tempfile.mkdtemp(prefix="flowcast-pg-"))
    if run_as:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    server = None
    try:
        for attempt in range(3):  # a free port can be taken between choosing it and binding it
            server = PostgresServer(bin_dir, root, free_port(), run_as)
            if attempt == 0:
                server.init()
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
