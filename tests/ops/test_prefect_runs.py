"""`flowcast gc` and the flow runs Prefect's temporary server keeps (ops/prefect_runs.py): real flow runs on a
real temporary server in a temporary PREFECT_HOME, `flowcast gc` in its own process as a person runs it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# a flow run with a subflow, a log and an artifact each, for `home`, then the same for another home
CHILD = """
import sys
import threading
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

@flow(name="forecast-sub")
def sub(home: str) -> None:
    get_run_logger().info("sub of %s", home)
    create_markdown_artifact("sub", key="sub-report")

@flow(name="forecast")
def parent(home: str) -> None:
    get_run_logger().info("parent of %s", home)
    create_markdown_artifact("parent", key="parent-report")
    sub(home=home)

parent(home=sys.argv[1])
parent(home=sys.argv[2])
"""

TABLES = ("flow_run", "task_run", "log", "artifact")


def _env(prefect_home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, "PREFECT_HOME": str(prefect_home), "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
            "PYTHONWARNINGS": "ignore", **extra}


@pytest.fixture(scope="module")
def runs_db(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A temporary server's database holding a flow run and its subflow run of `home`, and the same of `other`."""
    root = tmp_path_factory.mktemp("prefect_runs")
    prefect_home, home, other = root / "prefect", root / "home", root / "other"
    for p in (prefect_home, home, other):
        p.mkdir()
    res = subprocess.run([sys.executable, "-c", CHILD, str(home.resolve()), str(other.resolve())], check=False, text=True,
                         env=_env(prefect_home, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120"),
                         capture_output=True, timeout=300)  # a loaded machine starts the server in more than 20 s
    assert res.returncode == 0, res.stderr[-3000:]
    return prefect_home / "prefect.db", home, other


@pytest.fixture
def copy(runs_db, tmp_path) -> tuple[Path, Path, Path]:
    """A private copy of that database (a PREFECT_HOME of its own), the two homes."""
    db, home, other = runs_db
    (tmp_path / "prefect").mkdir()
    src, dst = sqlite3.connect(db), sqlite3.connect(tmp_path / "prefect" / "prefect.db")
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    return tmp_path / "prefect", home, other


def _counts(prefect_home: Path, home: Path) -> dict[str, int]:
    """Rows of `home`'s flow runs in each table (task runs, logs, artifacts by their flow run)."""
    with sqlite3.connect(prefect_home / "prefect.db") as con:
        ids = [r[0] for r in con.execute("SELECT id FROM flow_run WHERE json_extract(parameters, '$.home') = ?",
                                         (str(home.resolve()),))]
        marks = ",".join("?" * len(ids)) or "NULL"
        out = {"flow_run": len(ids)}
        for table in TABLES[1:]:
            out[table] = con.execute(f"SELECT count(*) FROM {table} WHERE flow_run_id IN ({marks})", ids).fetchone()[0]
        return out


def _gc(prefect_home: Path, home: Path, as_of: datetime, *args: str, **env: str) -> dict:
    res = subprocess.run([sys.executable, "-m", "flowcast", "gc", "--home", str(home), "--as-of", as_of.isoformat(),
                          "--json", *args], check=False, env=_env(prefect_home, **env), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_gc_removes_the_home_s_old_flow_runs_from_the_temporary_server(copy):
    prefect_home, home, other = copy
    before, others = _counts(prefect_home, home), _counts(prefect_home, other)
    assert before["flow_run"] == 2 and before["log"] >= 2 and before["artifact"] == 2 and before["task_run"] >= 1
    late = datetime.now(UTC) + timedelta(days=91)  # every run ended more than prefect_runs_days (90) before

    dry = _gc(prefect_home, home, late)
    assert dry["prefect_flow_runs"]["flow_runs"] == 2
    assert _counts(prefect_home, home) == before  # a dry run deletes nothing

    done = _gc(prefect_home, home, late, "--yes")
    assert done["prefect_flow_runs"] == {**done["prefect_flow_runs"], "flow_runs": 2, "artifacts": 2}
    assert _counts(prefect_home, home) == dict.fromkeys(TABLES, 0)
    assert _counts(prefect_home, other) == others  # another home's runs in the same PREFECT_HOME stay
    with sqlite3.connect(prefect_home / "prefect.db") as con:  # no artifact key left naming a deleted artifact
        keys = {k for (k,) in con.execute("SELECT key FROM artifact_collection")}
    assert "sub-report" in keys and "parent-report" in keys  # the other home's still do


@pytest.mark.parametrize("days_after, env, expect", [
    (89, {}, 0),  # ended less than prefect_runs_days ago: kept
    (91, {"FLOWCAST_RETENTION__PREFECT_RUNS_DAYS": "100"}, 0),  # the setting moves the line
    (91, {"PREFECT_API_URL": "http://127.0.0.1:9/api"}, None),  # a server's runs are the server's to vacuum
])
def test_gc_keeps_recent_runs_and_leaves_a_configured_server_alone(copy, days_after, env, expect):
    prefect_home, home, _ = copy
    before = _counts(prefect_home, home)
    done = _gc(prefect_home, home, datetime.now(UTC) + timedelta(days=days_after), "--yes", **env)
    got = done["prefect_flow_runs"]
    assert (got if got is None else got["flow_runs"]) == expect
    assert _counts(prefect_home, home) == before


DAY = timedelta(days=1)
T0 = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize("last, now, busy, due", [
    (None, T0, False, True),  # the serve's first turn: as it starts
    (None, T0, True, False),  # never during a run of its home: the next turn looks again
    (T0, T0 + DAY - timedelta(seconds=1), False, False),  # once a day
    (T0, T0 + DAY, False, True),
    (T0, T0 + 3 * DAY, True, False),
])
def test_a_serve_vacuums_as_it_starts_then_once_a_day_and_never_during_a_run(last, now, busy, due):
    from flowcast.ops.prefect_runs import vacuum_due

    assert vacuum_due(last, now, DAY, busy=busy) is due


# a serve's vacuum (ServeVacuum) on a real temporary server started as `flowcast serve` starts it (`api_for_runs`)
SERVE_VACUUM = """
import asyncio, json, sqlite3, sys
from datetime import UTC, datetime, timedelta
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.settings import temporary_settings
from prefect.states import Completed, Running
from flowcast.flows.deploy import api_for_runs
from flowcast.ops.prefect_runs import ServeVacuum

home, db = sys.argv[1], sys.argv[2]

@flow(name="forecast")
def parent(home: str) -> None:
    pass

async def main() -> None:
    said, now, out = [], [datetime.now(UTC)], {}
    vacuum = ServeVacuum(home, 0, clock=lambda: now[0], say=said.append)
    async with get_client() as client:
        run = await client.create_flow_run(parent, parameters={"home": home}, state=Running())
        out["during_a_run"] = [repr(await vacuum.turn(client)), vacuum.last]
        await client.set_flow_run_state(run.id, Completed(), force=True)
        now[0] = datetime.now(UTC)
        locked = sqlite3.connect(db, timeout=0)  # another writer holds the database: the vacuum fails
        locked.execute("BEGIN IMMEDIATE")
        out["locked"] = [repr(await vacuum.turn(client)), vacuum.last is not None]
        locked.rollback()
        locked.close()
        now[0] += timedelta(hours=23)
        out["within_a_day"] = repr(await vacuum.turn(client))
        now[0] += timedelta(hours=1)
        done = await vacuum.turn(client)
        out["a_day_later"] = [done.flow_runs, done.artifacts]
    out["said"] = said
    print(json.dumps(out))

with temporary_settings(api_for_runs()):
    asyncio.run(main())
"""


def test_a_serves_vacuum_on_a_real_temporary_server_waits_for_runs_survives_a_failure_and_runs_daily(copy):
    """gc44: only `flowcast gc` vacuumed the temporary server's old flow runs, so a serve left running kept every
    run for good. Its vacuum (`ServeVacuum`, at the serve scheduler's turns) waits while a run of its home is in flight,
    a failure (the database locked by another writer) is a warning and the serve goes on, and it runs again a day
    later: the home's runs (the run that was in flight, a run and its subflow) go, another home's stay."""
    prefect_home, home, other = copy
    others = _counts(prefect_home, other)
    res = subprocess.run([sys.executable, "-c", SERVE_VACUUM, str(home.resolve()), str(prefect_home / "prefect.db")],
                         check=False, text=True, capture_output=True, timeout=300,
                         env=_env(prefect_home, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
                                  PREFECT_SERVER_DATABASE_TIMEOUT="1"))
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["during_a_run"] == ["None", None]  # not tried: the next turn looks again
    assert out["locked"] == ["None", True] and out["within_a_day"] == "None"
    assert len(out["said"]) == 2, out["said"]
    assert out["said"][0].startswith("the flow runs of Prefect's temporary server were not vacuumed: OperationalError")
    assert "locked" in out["said"][0] and out["said"][0].endswith("tries again in a day")
    assert out["a_day_later"] == [3, 2] and out["said"][1].startswith("removed 3 flow runs of this home")
    assert _counts(prefect_home, home) == dict.fromkeys(TABLES, 0)
    assert _counts(prefect_home, other) == others


def _end_times(prefect_home: Path, home: Path) -> dict[str, datetime]:
    """When each flow run of `home` ended, by its flow's name."""
    with sqlite3.connect(prefect_home / "prefect.db") as con:
        rows = con.execute("SELECT flow.name, flow_run.end_time FROM flow_run JOIN flow ON flow.id = flow_run.flow_id "
                           "WHERE json_extract(flow_run.parameters, '$.home') = ?", (str(home.resolve()),)).fetchall()
    return {name: datetime.fromisoformat(end).astimezone(UTC) for name, end in rows}


def test_gc_s_dry_run_counts_what_yes_removes_when_a_subflow_and_its_parent_straddle_the_cutoff(copy):
    """vac44: the dry run counted every run of the home that ended before the cutoff, subflows too, while the vacuum
    removes a subflow only with its parent: with the cutoff between a subflow's end and its parent's, gc said it would
    remove 1 flow run and gc --yes removed none. One selection (`_removable`) serves both now."""
    prefect_home, home, _ = copy
    before, ended = _counts(prefect_home, home), _end_times(prefect_home, home)
    assert ended["forecast-sub"] < ended["forecast"], ended
    cutoff = ended["forecast-sub"] + (ended["forecast"] - ended["forecast-sub"]) / 2
    as_of = cutoff + timedelta(days=90)  # prefect_runs_days (90) before it: between the two ends

    dry = _gc(prefect_home, home, as_of)["prefect_flow_runs"]["flow_runs"]
    done = _gc(prefect_home, home, as_of, "--yes")["prefect_flow_runs"]["flow_runs"]
    assert dry == done == 0  # the subflow stays with its parent, which ended after the cutoff
    assert _counts(prefect_home, home) == before


@pytest.fixture
def backlog(prefect_api, tmp_path) -> tuple[Path, list]:
    """A home (its path) with 7 flow runs on the test harness's temporary server, each Completed as it was created."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Completed

    @flow(name="forecast")
    def parent(home: str) -> None:
        pass

    home = (tmp_path / "home").resolve()

    async def create() -> list:
        async with get_client() as client:
            return [(await client.create_flow_run(parent, parameters={"home": str(home)}, state=Completed())).id
                    for _ in range(7)]

    return home, asyncio.run(create())


def _left(ids: list) -> int:
    """How many of the flow runs `ids` the harness's server still has."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> int:
        async with get_client() as client:
            return len(await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))))

    return asyncio.run(read())


class _SetAfter(threading.Event):
    """A serve's stop (a real Event) that sets itself as the vacuum looks at it after `batches` batches."""

    def __init__(self, batches: int) -> None:
        super().__init__()
        self.looks = 0
        self.batches = batches

    def is_set(self) -> bool:
        if self.looks == self.batches:
            self.set()
        self.looks += 1
        return super().is_set()


@pytest.mark.parametrize("stop_after, removed", [
    (0, 0),  # stopped before it began: nothing
    (1, 3),  # stopped after its first batch: that batch only
    (None, 7),  # never stopped: every batch (3, 3, 1)
])
def test_a_vacuum_deletes_in_batches_and_stops_between_them(backlog, stop_after, removed):
    """vac44: the serve's vacuum ran in a thread that nothing interrupts, one loop over the whole backlog: a serve
    stopped during its first vacuum of months of runs exited only once it was done, past its scheduler's 30 s. It
    deletes `batch` runs a transaction and looks at the serve's stop before each: stopped, it returns what it removed,
    which stays removed; the rest stays for the next vacuum."""
    from flowcast.ops.prefect_runs import vacuum

    home, ids = backlog
    stop = _SetAfter(stop_after) if stop_after is not None else threading.Event()
    done = vacuum(home, datetime.now(UTC) + DAY, serving=True, stop=stop, batch=3)
    assert done is not None and done.flow_runs == removed
    assert _left(ids) == len(ids) - removed
    if stop_after is not None:
        assert stop.looks == stop_after + 1  # it returned at the first look after the stop: no batch more
        rest = vacuum(home, datetime.now(UTC) + DAY, serving=True, batch=3)
        assert rest is not None and rest.flow_runs == len(ids) - removed and _left(ids) == 0  # the next vacuum


def test_a_stopped_serves_vacuum_starts_no_vacuum(backlog):
    from prefect.client.orchestration import get_client

    from flowcast.ops.prefect_runs import ServeVacuum

    home, ids = backlog
    serve_vacuum = ServeVacuum(home, 0, clock=lambda: datetime.now(UTC) + DAY, batch=3)
    serve_vacuum.stop()

    async def turn() -> object:
        async with get_client() as client:
            return await serve_vacuum.turn(client)

    assert asyncio.run(turn()) is None and serve_vacuum.last is None
    assert _left(ids) == len(ids)


@pytest.mark.parametrize("one_instant", [False, True])
def test_a_serves_in_flight_check_reads_past_its_first_page(prefect_api, tmp_path, one_instant):
    """vac44: the check read at most 200 in-flight runs: a run of the home past them was not seen and the vacuum ran
    beside it. Here a page of 1 run, the home's run behind two others (it started after them; or, `one_instant`, all
    three at one instant, in whatever order the API gives them, where the check reads on from the runs it read at that
    instant): it is found, and once it ended it is not. vac45: the requests leave out only those runs."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.states import Completed, Running, Scheduled

    from flowcast.ops.prefect_runs import ServeVacuum

    @flow(name="forecast")
    def parent(home: str) -> None:
        pass

    home, other = tmp_path / "home", tmp_path / "other"
    serve_vacuum = ServeVacuum(home, 0, clock=lambda: datetime.now(UTC))
    instant = datetime.now(UTC) + timedelta(days=3650)  # after every other run in flight on the session's server

    async def started(client, where: Path, n: int) -> object:
        state = Scheduled(scheduled_time=instant if one_instant else instant + timedelta(seconds=n))
        run = await client.create_flow_run(parent, parameters={"home": str(where.resolve())}, state=state)
        await client.set_flow_run_state(run.id, Running(), force=True)
        return run

    async def check() -> tuple[bool, bool]:
        async with get_client() as client:
            runs = [await started(client, other, 0), await started(client, other, 1), await started(client, home, 2)]
            assert len({r.expected_start_time for r in await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[run.id for run in runs])))}) == (1 if one_instant else 3)  # (one page of the
            # session's server held only some of them: CI read 2 of 3)
            read = client.read_flow_runs

            async def read_and_count(**kwargs):  # the ids each request of the check leaves out
                left_out.append(len(kwargs["flow_run_filter"].id.not_any_) if kwargs["flow_run_filter"].id else 0)
                return await read(**kwargs)

            during = await serve_vacuum.busy(client, page=1)
            client.read_flow_runs = read_and_count
            assert not await ServeVacuum(tmp_path / "nobody", 0, clock=lambda: None).busy(client, page=1)
            client.read_flow_runs = read
            for run in runs:
                await client.set_flow_run_state(run.id, Completed(), force=True)
            return during, await serve_vacuum.busy(client, page=1)

    left_out: list[int] = []
    assert asyncio.run(check()) == (True, False)
    # a check that reads every page (no run of its home) leaves out only the runs read at the latest instant (until
    # vac45: every run read before it, 3 here)
    assert max(left_out) == (3 if one_instant else 1), left_out


# more runs in flight than one page of the API's listing (its 200 at most), of other homes, and one of the home
IN_FLIGHT_PAGES = """
import asyncio, sys
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.settings import temporary_settings
from prefect.states import Pending, Running
from flowcast.flows.deploy import api_for_runs
from flowcast.ops.prefect_runs import ServeVacuum

@flow(name="forecast")
def parent(home: str) -> None:
    pass

async def main() -> None:
    async with get_client() as client:
        runs = [await client.create_flow_run(parent, parameters={"home": f"/homes/h{i}"},
                                             state=Running() if i % 2 else Pending()) for i in range(int(sys.argv[1]))]
        # the check reads them by expected start time: the one created last is on the last page
        last = runs[-1].parameters["home"]
        print(await ServeVacuum(last, 0, clock=lambda: None).busy(client),
              await ServeVacuum("/homes/none", 0, clock=lambda: None).busy(client))

with temporary_settings(api_for_runs()):
    asyncio.run(main())
"""


def test_a_serves_vacuum_sees_its_home_s_run_in_flight_among_more_than_a_page_of_runs(tmp_path):
    """revA44: `ServeVacuum.busy` read one page of the flow runs in flight (limit 200, every home's and every flow's,
    in the order of their random ids) and looked for its home's there: with more in flight (a PREFECT_HOME several
    homes share, a backfill's fan-out, runs left Pending) it missed its home's run and vacuumed during it. Every page
    is read; a home with no run in flight is still not busy."""
    (tmp_path / "prefect").mkdir()
    res = subprocess.run([sys.executable, "-c", IN_FLIGHT_PAGES, "201"], check=False, text=True, capture_output=True,
                         timeout=300, env=_env(tmp_path / "prefect", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split()[-2:] == ["True", "False"], res.stdout


def test_a_run_that_starts_during_a_serves_vacuum_stops_it_after_the_batch_under_way(backlog):
    """words44: the serve looked for a run of its home in flight once, before its vacuum began, and Prefect's runner
    may start one during it: the vacuum went on to the end beside it. It looks again between batches: a run started
    after the first batch stops it there; what went stays gone, and the rest (with the run, once it ended) goes at
    the next turn, not a day later."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Running

    from flowcast.ops.prefect_runs import ServeVacuum

    @flow(name="forecast")
    def parent(home: str) -> None:
        pass

    home, ids = backlog
    started: list = []

    class _RunStartsAfterItsFirstLook(ServeVacuum):
        """The serve's vacuum, with a real run of the home started on the server right after its first look."""

        async def busy(self, client, page=None):
            found = await super().busy(client, page)
            if not started:
                started.append(await client.create_flow_run(parent, parameters={"home": str(home)}, state=Running()))
            return found

    said: list[str] = []
    serve_vacuum = _RunStartsAfterItsFirstLook(home, 0, clock=lambda: datetime.now(UTC) + DAY, batch=3, say=said.append)

    async def turns() -> tuple:
        async with get_client() as client:
            first = await serve_vacuum.turn(client)
            last, during = serve_vacuum.last, await serve_vacuum.turn(client)
            await client.set_flow_run_state(started[0].id, Completed(), force=True)
            return first, last, during, await serve_vacuum.turn(client)

    first, last, during, after = asyncio.run(turns())
    assert first is not None and (first.flow_runs, first.stopped) == (3, True)  # one batch, then it saw the run
    assert last is None  # due again at the next turn
    assert during is None  # the run still in flight: no vacuum starts
    assert after is not None and (after.flow_runs, after.stopped) == (5, False)  # the rest and the ended run
    assert _left([*ids, started[0].id]) == 0
    assert len(said) == 2 and said[0].startswith("removed 3 flow runs of this home"), said
    assert said[0].endswith("; a run of this home started, the rest goes once no run is in flight")
    assert said[1].startswith("removed 5 flow runs of this home") and ";" not in said[1]


def test_a_stopped_vacuum_leaves_the_artifact_keys_to_the_next_vacuum(backlog):
    """words44: a vacuum stopped between batches (the serve stopping) still reconciled Prefect's artifact keys, a
    write more after the stop; and a vacuum that removed no artifact never reconciled, so the keys a stopped vacuum
    left named a deleted artifact for good. A stopped one skips it; the next one reconciles every key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    from flowcast.ops.prefect_runs import vacuum

    home, ids = backlog
    key = f"plot-{home.parent.name}".lower().replace("_", "-")
    keys = ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key]))

    async def create() -> None:
        async with get_client() as client:
            for run in ids:
                await client.create_artifact(ArtifactCreate(key=key, type="markdown", data="x", flow_run_id=run))

    async def collections() -> int:
        async with get_client() as client:
            return len(await client.read_latest_artifacts(artifact_filter=keys))

    asyncio.run(create())
    assert asyncio.run(collections()) == 1
    stop = _SetAfter(1)  # set as it looks after its one batch, which removed every run
    done = vacuum(home, datetime.now(UTC) + DAY, serving=True, stop=stop, batch=len(ids))
    assert done is not None and (done.flow_runs, done.artifacts, done.stopped) == (len(ids), len(ids), True)
    assert asyncio.run(collections()) == 1  # not reconciled: the key still names its deleted artifact
    rest = vacuum(home, datetime.now(UTC) + DAY, serving=True)
    assert rest is not None and (rest.flow_runs, rest.artifacts, rest.stopped) == (0, 0, False)
    assert asyncio.run(collections()) == 0


@pytest.mark.parametrize("failure, error", [
    ("raises", "RuntimeError: the API answered 500 for 'read_flow_runs'"),
    ("hangs", "TimeoutError: no answer in 0.5 s"),
])
def test_a_look_for_a_run_in_flight_that_fails_during_a_serves_vacuum_stops_it_after_the_batch(backlog, failure, error):
    """vacB44: a look between batches that failed (the API erring) failed the whole turn: the warning said the runs
    were not vacuumed though a batch had gone, and the rest waited a day; and a look that got no answer waited for
    good. A failed or unanswered look (`busy_timeout`) stops the vacuum as a started run does: what went is said,
    one warning names the error, and the next turn (the look answering) removes the rest."""
    from prefect.client.orchestration import get_client

    from flowcast.ops.prefect_runs import ServeVacuum

    home, ids = backlog
    looks: list[str] = []

    class _LookFailsAfterTheFirst(ServeVacuum):
        """The serve's vacuum whose second look (its first between batches) raises or never answers."""

        async def busy(self, client, page=None):
            looks.append(failure)
            if len(looks) == 2 and failure == "raises":
                raise RuntimeError("the API answered 500 for\n'read_flow_runs'")
            if len(looks) == 2:
                await asyncio.sleep(60)
            return await super().busy(client, page)

    said: list[str] = []
    serve_vacuum = _LookFailsAfterTheFirst(home, 0, clock=lambda: datetime.now(UTC) + DAY, batch=3,
                                           say=said.append, busy_timeout=0.5)

    async def turns() -> tuple:
        async with get_client() as client:
            first = await serve_vacuum.turn(client)
            return first, serve_vacuum.last, await serve_vacuum.turn(client)

    first, last, after = asyncio.run(turns())
    assert first is not None and (first.flow_runs, first.stopped) == (3, True)  # one batch, then the look failed
    assert last is None  # due again at the next turn, not a day later
    assert after is not None and (after.flow_runs, after.stopped) == (len(ids) - 3, False)
    assert _left(ids) == 0
    assert len(said) == 3, said
    assert said[0] == ("the vacuum of Prefect's temporary server stopped after a batch: its look for a run of this "
                       f"home in flight failed: {error}; the serve goes on and tries again at its next turn")
    assert said[1].startswith("removed 3 flow runs of this home")
    assert said[1].endswith("; its look for a run in flight failed, the rest goes once no run is in flight")
    assert said[2].startswith(f"removed {len(ids) - 3} flow runs of this home") and ";" not in said[2]


# flowcast's automations on a real temporary server; a final run of the home with a heartbeat after its final state
# (the crash-silent automation opens a window for it that counts nothing) and one with none; a vacuum while the windows are open, then with the
# automation paused
WATCHED = """
import asyncio, json, sqlite3, sys, time
from datetime import UTC, datetime, timedelta
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.events.worker import EventsWorker
from prefect.settings import temporary_settings
from prefect.states import Completed
from flowcast.config import Settings
from flowcast.flows.deploy import api_for_runs
from flowcast.ops.automations import CRASH_SILENT, apply
from flowcast.ops.prefect_runs import vacuum

home, db = sys.argv[1], sys.argv[2]

@flow(name="forecast")
def forecast(home: str) -> None:
    pass  # (never run: its runs are made final)

def windows() -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT count(*) FROM automation_bucket WHERE bucketing_key LIKE '%prefect.flow-run.%'"
                           ).fetchone()[0]

with temporary_settings(api_for_runs()):
    apply(Settings())
    async def created() -> list[str]:
        async with get_client() as client:
            return [str((await client.create_flow_run(forecast, parameters={"home": home}, state=Completed())).id)
                    for _ in range(2)]
    watched, silent = asyncio.run(created())
    # the heartbeat of a run whose final state the server never counted (a stopped server lost it): its window counts
    # nothing until it ends. (A run's own heartbeat before its Completed made a window counted 1, which the trigger's
    # next pass may remove at any moment: the test failed 3 times in 5, quietB45.) The Completed events go first.
    time.sleep(1)
    emit_event(event="prefect.flow-run.heartbeat", resource={"prefect.resource.id": f"prefect.flow-run.{watched}"})
    EventsWorker.drain_all()
    deadline = time.monotonic() + 120
    while not windows() and time.monotonic() < deadline:
        time.sleep(0.5)
    later = datetime.now(UTC) + timedelta(seconds=1)
    while datetime.now(UTC) < later:
        time.sleep(0.1)
    out = {"windows": windows(), "dry": vacuum(home, later, dry_run=True, serving=True).flow_runs,
           "open": vacuum(home, later, serving=True).flow_runs}
    async def pause() -> None:
        async with get_client() as client:
            await client.pause_automation((await client.read_automations_by_name(CRASH_SILENT))[0].id)
    asyncio.run(pause())
    out["paused"] = vacuum(home, later, serving=True).flow_runs
    print(json.dumps(out))
"""


def _on_a_temporary_server(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`script` run by a Python of its own (argv: a home, the temporary server's database), PREFECT_HOME in `tmp_path`;
    it exited 0."""
    (tmp_path / "prefect").mkdir()
    home = str((tmp_path / "home").resolve())
    res = subprocess.run([sys.executable, "-c", script, home, str(tmp_path / "prefect" / "prefect.db")], check=False,
                         text=True, capture_output=True, timeout=300,
                         env=_env(tmp_path / "prefect", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120"))
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def test_a_vacuum_keeps_a_run_an_automation_still_watches(tmp_path):
    """vac45 (soak44: about a minute after each restart's vacuum the server logged `Action failed: ...
    'change-flow-run-state' action: 404`): 'flowcast: crash silent runs' opens a window at each heartbeat of a run and
    marks the run Crashed as it ends with no final state counted in it. A serve's stop that took its temporary server
    down before its triggers counted the run's Cancelled left the window open; the restarted serve's vacuum deleted the
    run, and the window, evaluated as the server started again, acted on a run that was gone. A run an enabled
    automation's window still names is kept (dry run and vacuum alike); a run that sent no heartbeat goes, and so does
    the watched one once the automation is paused."""
    res = _on_a_temporary_server(WATCHED, tmp_path)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out == {"windows": 1, "dry": 1, "open": 1, "paused": 1}, out


# a served run's window left open with nothing counted (its Completed lost with the stopped server), beside a run that
# really went silent (still Running), then a command's start on the same database (drop, then the server)
RESTARTED = """
import asyncio, json, sqlite3, sys, time, uuid
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Running
from flowcast.config import Settings
from flowcast.flows.deploy import api_for_runs
from flowcast.ops.reaper import temporary_api
from flowcast.ops.automations import apply

home, db = sys.argv[1], sys.argv[2]

@flow(name="forecast")
def forecast(home: str) -> None:
    time.sleep(3)  # running when its heartbeat goes

def sql(query: str, *args: object) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute(query, args).fetchall()

server = SubprocessASGIServer()
server.start()
with temporary_settings({PREFECT_API_URL: server.api_url}):
    apply(Settings())
    done = forecast(home=home, return_state=True).state_details.flow_run_id
    async def running() -> str:
        async with get_client() as client:
            return str((await client.create_flow_run(forecast, parameters={"home": home}, state=Running())).id)
    silent = asyncio.run(running())
    # its heartbeat (the finished run's window, counted 1 once its Completed counted, goes at the trigger's next
    # proactive pass: a window of count 0 is what a lost final state leaves, copied from this one below)
    emit_event(event="prefect.flow-run.heartbeat", resource={"prefect.resource.id": f"prefect.flow-run.{silent}"})
    deadline = time.monotonic() + 60
    while not sql("SELECT 1 FROM automation_bucket WHERE bucketing_key LIKE ?", f"%{silent}%") and time.monotonic() < deadline:
        time.sleep(0.5)
    EventsWorker.drain_all()  # what the run sent goes before its server stops (left, it was retried at exit for a minute)
    APILogWorker.drain_all()
server.stop()
# the server stopped before its triggers counted the finished run's Completed: its window ends with nothing counted,
# as the silent run's does
con = sqlite3.connect(db)
con.row_factory = sqlite3.Row
con.execute("DELETE FROM automation_bucket WHERE bucketing_key LIKE ?", (f"%{done}%",))
row = dict(con.execute("SELECT * FROM automation_bucket WHERE bucketing_key LIKE ?", (f"%{silent}%",)).fetchone())
row.update(id=str(uuid.uuid4()), bucketing_key=row["bucketing_key"].replace(silent, str(done)),
           last_event=row["last_event"].replace(silent, str(done)))
con.execute(f"INSERT INTO automation_bucket ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
con.execute('UPDATE automation_bucket SET count = 0, "end" = start')
con.commit()
con.close()
with temporary_api(home), temporary_settings(api_for_runs()):  # a command's start (`flowcast run`) on the same database
    async def states() -> dict[str, str]:
        async with get_client() as client:
            return {name: (await client.read_flow_run(i)).state.type.value for name, i in (("done", done), ("silent", silent))}
    deadline = time.monotonic() + 60
    while (out := asyncio.run(states()))["silent"] != "CRASHED" and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(5)  # the finished run's action, where there was one, fired in the same pass
    out["windows"] = sql("SELECT count(*) FROM automation_bucket")[0][0]
    print(json.dumps(out))
"""


def test_a_command_start_drops_the_windows_of_runs_already_final(tmp_path):
    """quietB45 (soak45: after restarts the server logged `Action failed: 'Failed to set state: Run is already in
    terminal state COMPLETED.'` about 5 times): a temporary server stopped before its triggers counted a run's final
    state left 'flowcast: crash silent runs' a window with nothing counted, which the next server evaluated as it
    started, asking for Crashed on a finished run. tempapi46: a serve's start dropped such windows, but `flowcast run`,
    `forecast` and `backfill` start the same temporary server on the same prefect.db; every command drops them as it
    enters `temporary_api`, before anything starts the server: no `Action failed`, the finished run stays Completed,
    and a run that really went silent (still Running) is still marked Crashed."""
    res = _on_a_temporary_server(RESTARTED, tmp_path)
    lines = res.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == {"done": "COMPLETED", "silent": "CRASHED", "windows": 0}, res.stdout
    assert "Action failed" not in res.stdout + res.stderr, res.stderr[-3000:]
    assert "dropped 1 window(s) left open for flow runs already final" in res.stdout + res.stderr, res.stderr[-3000:]


def _windows_db(db, made: str) -> None:
    """A database at `db` with the tables `_holds_windows` reads (the columns it reads of Prefect's), as `made` says:
    'no table', 'no window', or one window keyed by a run that is 'running' or final ('completed')."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        if made == "no table":
            con.execute("CREATE TABLE t (x)")
        else:
            con.execute("CREATE TABLE automation_bucket (id TEXT, bucketing_key JSON)")
            con.execute("CREATE TABLE flow_run (id CHAR(36), state_type VARCHAR(9))")
        if made in ("running", "completed"):
            run = "0b6f3a56-2f4e-4b5e-9d1a-5f0f6a7c8d9e"
            con.execute("INSERT INTO flow_run VALUES (?, ?)", (run, made.upper()))
            con.execute("INSERT INTO automation_bucket VALUES ('b', ?)", (json.dumps([f"prefect.flow-run.{run}"]),))
        con.commit()


@pytest.mark.parametrize("made", ["none", "no table", "no window", "running"])
def test_a_command_start_with_no_window_to_drop_skips_prefects_database_layer(tmp_path, made):
    """tempapi46: every command that starts the temporary server looks for windows to drop; where there is no
    database yet (a fresh PREFECT_HOME), no `automation_bucket` table (a database not migrated yet) or no window of a
    run already final, the look ends with the standard library's sqlite3, never importing Prefect's database layer:
    None, else 0. revA46: the windows a live serve holds for its runs in flight ('running') made every other command
    pay about 1 s of Prefect's database layer for a drop that found nothing."""
    db = tmp_path / "prefect.db"
    if made != "none":
        _windows_db(db, made)
    code = ("import json, sys; from flowcast.ops.prefect_runs import drop_final_windows; dropped = drop_final_windows(); "
            "print(json.dumps([dropped, 'prefect.server.database' in sys.modules]))")
    res = subprocess.run([sys.executable, "-c", code], check=False, text=True, capture_output=True, timeout=120,
                         env=_env(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == [None if made == "none" else 0, False]


@pytest.mark.parametrize(("made", "holds"), [("no window", False), ("running", False), ("completed", True)])
def test_the_look_for_windows_finds_those_of_runs_already_final_only(tmp_path, made, holds):
    """revA46: `_holds_windows` says yes to a window keyed by a run already final, no to one of a run still running."""
    from flowcast.ops.prefect_runs import _holds_windows

    _windows_db(tmp_path / "prefect.db", made)
    assert _holds_windows(tmp_path / "prefect.db") is holds
