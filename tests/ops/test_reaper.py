"""Prefect's temporary API never outlives a killed command (flowcast.ops.reaper): real processes,
real signals. The 'server' is a sleeping Python process whose command line carries the argument
Prefect starts its temporary server with, so the test does not wait for a real server to boot."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from flowcast.ops.reaper import SERVER_ARG, start_time

FAKE_SERVER = [sys.executable, "-c", "import time; time.sleep(600)", SERVER_ARG.decode()]

# a flowcast command: marks itself and starts its watchdog, starts its "temporary server", then waits
OWNER = f"""
import subprocess, sys, time
from flowcast.ops.reaper import watch_command
dog = watch_command()
server = subprocess.Popen({FAKE_SERVER!r})
print(dog.pid if dog else 0, server.pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if start_time(pid) is None:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_command_leaves_no_temporary_server_behind(sig):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL" and not k.startswith("FLOWCAST_OWNER")}
    stranger = subprocess.Popen(FAKE_SERVER)  # the same command line, not this command's: never touched
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True, env=env)
    try:
        dog, server = (int(x) for x in owner.stdout.readline().split())
        assert dog and start_time(dog) and start_time(server)
        os.kill(owner.pid, sig)
        owner.wait(timeout=30)
        assert _gone(server, 20), "the temporary server outlived the command"
        assert _gone(dog, 20), "the watchdog did not exit"
        assert start_time(stranger.pid) is not None
    finally:
        for p in (owner, stranger):
            p.kill()
            p.wait()


def test_the_temporary_api_gets_time_to_start_unless_its_timeout_is_set(monkeypatch):
    """Regression: on a loaded machine the temporary server took over Prefect's 20 s to start and
    `flowcast run` failed before reading any data ('Timed out while attempting to connect to
    ephemeral Prefect API server')."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    from flowcast.ops import reaper

    monkeypatch.setattr(reaper, "watch_command", lambda home=None: None)  # no watchdog for the test process
    monkeypatch.delenv(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.name, raising=False)
    with temporary_settings({PREFECT_API_URL: None}, restore_defaults={PREFECT_API_URL}):
        assert PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value() == 20  # Prefect's own
        with reaper.temporary_api():
            assert PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value() == reaper.STARTUP_TIMEOUT_S
        monkeypatch.setenv(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.name, "7")
        with temporary_settings({PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 7}), reaper.temporary_api():
            assert PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value() == 7  # the user's choice stays


def test_the_temporary_api_sends_no_telemetry_unless_the_user_asks(monkeypatch):
    """Regression: offline, Prefect's temporary server logged 'ERROR ... Failed to send telemetry'
    in every `flowcast run`. The server inherits the current settings as environment variables."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        get_current_settings,
        temporary_settings,
    )

    from flowcast.ops import reaper

    def server_env() -> dict[str, str]:  # what Prefect passes to the server process it starts
        return get_current_settings().to_environment_variables(exclude_unset=True)

    monkeypatch.setattr(reaper, "watch_command", lambda home=None: None)  # no watchdog for the test process
    monkeypatch.delenv(PREFECT_SERVER_ANALYTICS_ENABLED.name, raising=False)
    with temporary_settings({PREFECT_API_URL: None}, restore_defaults={PREFECT_API_URL}):
        with reaper.temporary_api():
            assert PREFECT_SERVER_ANALYTICS_ENABLED.value() is False
            assert server_env()[PREFECT_SERVER_ANALYTICS_ENABLED.name].lower() == "false"
        monkeypatch.setenv(PREFECT_SERVER_ANALYTICS_ENABLED.name, "true")
        with temporary_settings({PREFECT_SERVER_ANALYTICS_ENABLED: True}), reaper.temporary_api():
            assert PREFECT_SERVER_ANALYTICS_ENABLED.value() is True  # the user's choice stays


@pytest.mark.parametrize(("target", "error"), [("drop_final_windows", KeyboardInterrupt()),
                                               ("drop_final_windows_before_start", OSError("disk I/O error"))])
def test_the_temporary_api_leaves_no_command_claim_when_its_window_drop_is_interrupted(monkeypatch, tmp_path, target,
                                                                                          error):
    """Regression (pageB46): the command was claimed before the drop of the windows left open and outside the
    `try/finally` that removes its claim, so a Ctrl-C during the drop (or an error the drop did not catch) left the
    claim file behind in the home."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowcast.ops import prefect_runs, reaper

    claims: list[list[str]] = []

    def interrupted(*_: object) -> None:
        claims.append(sorted(p.name for p in (tmp_path / reaper.CLAIMS).glob("command-*.json")))
        raise error

    monkeypatch.setattr(reaper, "watch_command", lambda home=None: None)  # no watchdog for the test process
    monkeypatch.setattr(prefect_runs, target, interrupted)
    with (temporary_settings({PREFECT_API_URL: None}, restore_defaults={PREFECT_API_URL}),
          pytest.raises(type(error)), reaper.temporary_api(tmp_path)):
        pytest.fail("the server was entered")
    assert [len(names) for names in claims] == [1], claims  # the command was claimed as the drop ran
    assert not list((tmp_path / reaper.CLAIMS).glob("command-*.json"))


def test_reaping_leaves_live_and_foreign_claims_and_drops_damaged_ones(tmp_path):
    """Only a claim whose process is gone from this host is acted on (that needs an API: the
    server test, tests/flows/test_killed_runs_server.py); a live process's claim, another host's
    and a damaged file never reach the API."""
    from flowcast.ops.reaper import CLAIMS, reap

    folder = tmp_path / CLAIMS
    folder.mkdir()
    me = os.getpid()
    live = {"flow_run_id": "00000000-0000-0000-0000-000000000001", "pid": me, "pid_start": start_time(me),
            "host": socket.gethostname(), "api_url": "http://127.0.0.1:9/api"}
    foreign = {**live, "flow_run_id": "00000000-0000-0000-0000-000000000002", "pid": 1, "host": "elsewhere"}
    (folder / "live.json").write_text(json.dumps(live))
    (folder / "foreign.json").write_text(json.dumps(foreign))
    (folder / "damaged.json").write_text('{"flow_run_id": "0000')
    assert reap(tmp_path, current_api=False) == []
    assert sorted(p.name for p in folder.iterdir()) == ["foreign.json", "live.json"]


@pytest.mark.usefixtures("prefect_api")
def test_a_claim_whose_process_cannot_be_seen_from_here_is_never_marked(tmp_path):
    """Two containers on one machine may share its hostname (docker --network host) and a home,
    each seeing only its own processes: a live run of the other container is not in our /proc. A
    claim written in another pid namespace, or without a process start time (no /proc where it
    ran), is left alone; before, the answering API was asked and the claim dropped (a live run
    would have been marked Crashed)."""
    from flowcast.ops.reaper import CLAIMS, reap

    folder = tmp_path / CLAIMS
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    base = {"pid": dead.pid, "pid_start": "1", "host": socket.gethostname(), "api_url": ""}
    other_ns = {**base, "flow_run_id": "00000000-0000-0000-0000-000000000003", "pid_ns": "pid:[1]"}
    no_start = {**base, "flow_run_id": "00000000-0000-0000-0000-000000000004", "pid_start": None}
    (folder / "other_ns.json").write_text(json.dumps(other_ns))
    (folder / "no_start.json").write_text(json.dumps(no_start))
    assert reap(tmp_path) == []
    assert sorted(p.name for p in folder.iterdir()) == ["no_start.json", "other_ns.json"]
    # the same claim in this process's namespace, its process gone: acted on (the API has no such run)
    mine = {**other_ns, "pid_ns": os.readlink("/proc/self/ns/pid")}
    (folder / "other_ns.json").write_text(json.dumps(mine))
    assert [r.action for r in reap(tmp_path)] == ["unknown"]
    assert [p.name for p in folder.iterdir()] == ["no_start.json"]


@pytest.mark.usefixtures("prefect_api")
def test_the_task_runs_of_a_flow_run_a_worker_marked_crashed_end_with_it(tmp_path):
    """A deployment run killed on a work pool (kill -9 of the worker's flow process, the OOM killer)
    is marked Crashed by the worker itself, but the task runs its process was running ('train gru
    backtest', 'backtest gru') stayed Running in the UI for good: the next run in that home found
    the flow run final and only dropped its claim. Now those task runs are marked Crashed too."""
    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Crashed, Running

    from flowcast.ops.reaper import CLAIMS, reap

    @flow(name="retrain")
    def retrain() -> None: ...

    @task(name="train gru backtest")
    def train() -> None: ...

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(retrain, state=Running())
        running = client.create_task_run(train, run.id, dynamic_key="0", state=Running())
        done = client.create_task_run(train, run.id, dynamic_key="1", state=Completed())
        client.set_flow_run_state(run.id, Crashed(message="Process exited with status code: -9."), force=True)
        folder = tmp_path / CLAIMS
        folder.mkdir()
        claim = {"flow_run_id": str(run.id), "name": "retrain tiny 2019-06-01", "pid": dead.pid, "pid_start": "1",
                 "host": socket.gethostname(), "pid_ns": os.readlink("/proc/self/ns/pid"), "api_url": ""}
        (folder / f"{run.id}.json").write_text(json.dumps(claim))

        assert [(r.action, r.state) for r in reap(tmp_path)] == [("ended", "Crashed")]
        assert not list(folder.iterdir())
        state = client.read_task_run(running.id).state
        assert state.type.value == "CRASHED", state
        assert "its flow run ended Crashed: Process exited with status code: -9." in state.message
        assert client.read_task_run(done.id).state.type.value == "COMPLETED"
        assert client.read_flow_run(run.id).state.message == "Process exited with status code: -9."



@pytest.mark.usefixtures("prefect_api")
def test_a_run_that_ended_with_an_error_it_could_not_report_is_not_said_to_be_killed(tmp_path, monkeypatch):
    """Regression: a `flowcast run` whose Prefect server was down for 90 s failed (its training task could not
    take its concurrency slot) and exited 1 without reporting a final state; once the server was back its
    watchdog marked the run Crashed 'killed (SIGKILL) or its machine stopped', which it was not. The command
    writes its error into the claims of its runs as it ends (`note_unreported`, called by cli_errors), and the
    Crashed message names that error."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    from flowcast.ops import reaper

    @flow(name="retrain")
    def retrain() -> None: ...

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(retrain, state=Running())
        folder = tmp_path / reaper.CLAIMS
        folder.mkdir()
        path = folder / f"{run.id}.json"
        me = os.getpid()
        claim = {"flow_run_id": str(run.id), "name": "retrain tiny 2019-07-01", "pid": me, "pid_start": start_time(me),
                 "host": socket.gethostname(), "pid_ns": os.readlink("/proc/self/ns/pid"), "api_url": "",
                 "command": "flowcast run"}
        path.write_text(json.dumps(claim))
        monkeypatch.setitem(reaper._CLAIMED, str(run.id), path)
        reaper.note_unreported(ConnectionError("[Errno 111] Connection refused"))
        assert json.loads(path.read_text())["ended_with"] == "ConnectionError: [Errno 111] Connection refused"
        # this process stands for the command; the claim is made a dead process's, as once the command exited
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        path.write_text(json.dumps({**json.loads(path.read_text()), "pid": dead.pid, "pid_start": "1"}))

        assert [r.action for r in reaper.reap(tmp_path)] == ["crashed"]
        message = client.read_flow_run(run.id).state.message
        assert "ended with an error before it could report a final state (ConnectionError: [Errno 111]" in message
        assert "SIGKILL" not in message


@pytest.mark.usefixtures("prefect_api")
def test_a_killed_run_is_marked_crashed_with_the_last_error_it_logged(tmp_path):
    """A flow process that logged why it was failing and was then killed (the OOM killer while it handled a
    MemoryError, a kill -9 during a retry) was marked Crashed 'killed (SIGKILL) or its machine stopped'
    only; the reason was in its logs, two clicks away. The Crashed message now names the last error it
    logged."""
    from datetime import UTC, datetime

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import LogCreate
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort
    from prefect.states import Running

    from flowcast.ops.reaper import CLAIMS, reap

    @flow(name="retrain")
    def retrain() -> None: ...

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(retrain, state=Running())
        now = datetime.now(UTC)
        client.create_logs([
            LogCreate(name="prefect.task_runs", level=40, flow_run_id=run.id, timestamp=now,
                      message="Task run 'train gru' - MemoryError: unable to allocate 3.2 GiB\nTraceback ..."),
            LogCreate(name="prefect.flow_runs", level=20, flow_run_id=run.id, timestamp=now,
                      message="Retrying train gru"),
        ])
        folder = tmp_path / CLAIMS
        folder.mkdir()
        claim = {"flow_run_id": str(run.id), "name": "retrain tiny 2019-08-01", "pid": dead.pid, "pid_start": "1",
                 "host": socket.gethostname(), "pid_ns": os.readlink("/proc/self/ns/pid"), "api_url": ""}
        (folder / f"{run.id}.json").write_text(json.dumps(claim))
        # as the command's watchdog reaps it: the process it watched is the one that ran the run
        assert [r.action for r in reap(tmp_path, by="the watchdog of the flowcast command", by_pid=dead.pid)] \
            == ["crashed"]
        message = client.read_flow_run(run.id).state.message
        assert "killed (SIGKILL) or its machine stopped; it was Running; the last error it logged: Task run " \
               "'train gru' - MemoryError: unable to allocate 3.2 GiB. Marked Crashed by" in message, message
        # ui25: the pid was said twice ('... Marked Crashed by the watchdog of the flowcast command (pid 4242)')
        assert message.count(f"pid {dead.pid}") == 1, message
        assert "Marked Crashed by the watchdog of the flowcast command. It did not finish" in message, message
        assert "Traceback" not in message
        # ui21: its Logs tab says it too, last, where it stopped at the line before the kill without a word
        last = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])),
                                sort=LogSort.TIMESTAMP_ASC)[-1]
        assert (last.level, last.message) == (40, f"Crashed: {message}"), last


# a flowcast command started from a terminal: Prefect's temporary server is started (a health check), the
# command says which (a file named by its argument, renamed into place), then it waits
INTERRUPTED = """
import os, sys, time
from prefect.client.orchestration import get_client
from flowcast.ops.reaper import MARK, marked_servers, temporary_api
with temporary_api():
    with get_client(sync_client=True) as client:
        client.api_healthcheck()
    with open(sys.argv[1] + ".tmp", "w") as fh:
        fh.write(" ".join(map(str, marked_servers(os.environ[MARK]))))
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(600)
"""

# run by _terminal_job before the command: SIGINT and SIGQUIT back to their defaults, then the command itself
AS_A_TERMINAL_JOB = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                     "signal.signal(signal.SIGQUIT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])")


def _terminal_job(args: list[str], **kwargs) -> subprocess.Popen:
    """`args` started as a terminal starts a job: in its own process group (the group a Ctrl-C goes
    to) with SIGINT at its default. A shell running a script's `cmd &` (as a CI job may start the
    test suite) starts it with SIGINT ignored, and every process below inherits that across exec:
    there the command never saw the test's Ctrl-C and the test waited out its timeout. (A command
    that imports polars catches SIGINT all the same: polars installs its own handler.)"""
    return subprocess.Popen([sys.executable, "-c", AS_A_TERMINAL_JOB, *args], start_new_session=True, **kwargs)


def _said(command: subprocess.Popen, path, timeout: float) -> str:
    """What the command wrote to the file `path` (renamed into place: whole) once it is there; fails
    when the command ended first or took over `timeout` s (generous: a server on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text()
        assert command.poll() is None, f"the command ended ({command.returncode}) before it wrote {path.name}"
        time.sleep(0.1)
    raise AssertionError(f"the command did not write {path.name} in {timeout} s")


WAITS = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).touch(); time.sleep(600)"  # says it is ready


def test_a_terminal_job_gets_the_ctrl_c_even_where_the_tests_ignore_it(tmp_path):
    """Regression: the Ctrl-C test below timed out (120 s) in CI runs of the suite and passed alone:
    a test process started in the background of a script ignores SIGINT, and so did the command it
    started, whatever flowcast did. The command of a Ctrl-C test is started as a terminal's job."""
    ready = tmp_path / "ready"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under `.ci/run &`
    try:
        job = _terminal_job([sys.executable, "-c", WAITS, str(ready)])
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        _said(job, ready, 60)
        os.killpg(job.pid, signal.SIGINT)
        assert job.wait(timeout=60) == -signal.SIGINT  # KeyboardInterrupt: Python ends as the signal would
    finally:
        job.kill()
        job.wait()


def test_ctrl_c_reaches_the_command_not_its_temporary_server(tmp_path):
    """Regression: Prefect started its temporary server in the command's process group, so the Ctrl-C a
    terminal sends to that group stopped the server at once, while the command's flow engine, handling
    the KeyboardInterrupt, reported the crash to the dead API: `flowcast run` interrupted mid-training
    retried for minutes and ended with 'error: ConnectError: [Errno 111] Connection refused'. The server
    runs in its own session; the command stops it as it exits."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL" and not k.startswith("FLOWCAST_OWNER")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")  # its server's own database, not the shared ~/.prefect
    ready, err = tmp_path / "ready", tmp_path / "err"  # a file, not a pipe: the server inherits it and outlives the
    # command by a moment (a pipe read to its end waits for the server too; one nobody reads can fill and block)
    with err.open("w") as stderr:
        command = _terminal_job([sys.executable, "-c", INTERRUPTED, str(ready)], stdout=subprocess.DEVNULL,
                                stderr=stderr, env=env)
    try:
        (server,) = (int(x) for x in _said(command, ready, 300).split())  # its server answered
        assert os.getpgid(server) != command.pid, "the temporary server is in the command's process group"
        os.killpg(command.pid, signal.SIGINT)  # what Ctrl-C does
        try:
            command.wait(timeout=120)
        except subprocess.TimeoutExpired:  # say what would tell why: its signal masks and what it wrote
            with open(f"/proc/{command.pid}/status") as fh:
                masks = " ".join(line.strip() for line in fh if line.startswith(("SigBlk", "SigIgn", "SigCgt")))
            raise AssertionError(f"the command did not end within 120 s of its SIGINT ({masks}); it wrote: "
                                 f"{err.read_text()[-3000:]}") from None
        assert "KeyboardInterrupt" in err.read_text()
        assert _gone(server, 30), "the temporary server outlived the command"
    finally:
        command.kill()
        command.wait()


class _TaskRuns:
    """A Prefect client of _end_tasks' two calls: each read returns the next list of task runs."""

    def __init__(self, reads):
        self.reads, self.crashed = list(reads), []

    def read_task_runs(self, **_):
        return self.reads.pop(0) if self.reads else []

    def set_task_run_state(self, task_run_id, state, force):
        self.crashed.append(task_run_id)


def test_the_claim_of_a_run_that_ended_is_dropped_without_waiting(monkeypatch):
    """Regression: the reaper read a dead process's task runs for at least 3 s so that late ones are crashed too,
    but every finished run's claim is dropped that way (by the next run in the home, by its command's watchdog):
    each cost 3 s, at the start of every run and for each date of a backfill. A run that ended with no task run
    left is done at the first read; a dead one with task runs under way waits for the late ones."""
    import uuid
    from types import SimpleNamespace

    from flowcast.ops import reaper

    slept: list[float] = []
    monkeypatch.setattr(reaper.time, "sleep", lambda s: slept.append(s))
    monkeypatch.setattr(reaper, "TASK_SETTLE_S", (0.0, 60.0))  # until a read finds none left
    ended = _TaskRuns([[]])
    reaper._end_tasks(ended, uuid.uuid4(), lambda message: message, "ended", settle=False)
    assert slept == [] and ended.crashed == []
    late = _TaskRuns([[SimpleNamespace(id="train")], [SimpleNamespace(id="backtest")], []])
    reaper._end_tasks(late, uuid.uuid4(), lambda message: message, "ended", settle=False)
    assert late.crashed == ["train", "backtest"] and len(slept) == 2  # the late task run was read and crashed


def test_a_command_waits_for_a_prefect_api_that_is_restarting_and_names_one_that_stays_down(capsys):
    """Regression: with PREFECT_API_URL set and its server restarting as a command started (killed 5.5 s into a
    `flowcast run`, back 40 s later), the command failed at once, 'Failed to reach API', where a run already
    going waits for it. It waits now (saying so), and names an API that stays down, having started nothing.
    Here a real HTTP server starts answering /api/health while the command waits."""
    import http.server
    import socket
    import threading

    from flowcast.errors import FlowcastError
    from flowcast.ops.reaper import wait_for_api

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    with pytest.raises(FlowcastError, match=rf"the Prefect API at {url} \(PREFECT_API_URL\) did not answer for 0.5s "
                                            r"\(ConnectError.*nothing was started: start that server"):
        wait_for_api(url, wait_s=0.5)

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/api/health" else 404)
            self.end_headers()
            self.wfile.write(b"true")

        def log_message(self, *args) -> None:
            pass

    started = threading.Event()
    servers: list[http.server.HTTPServer] = []

    def serve_later() -> None:
        started.wait()  # the command is waiting: now the server comes back (it listens from here on)
        servers.append(http.server.HTTPServer(("127.0.0.1", port), Health))
        servers[0].serve_forever()

    def say(*args, **kwargs):  # the first 'waiting' line is the cue
        original(*args, **kwargs)
        started.set()

    import builtins

    original = builtins.print
    thread = threading.Thread(target=serve_later, daemon=True)
    thread.start()
    builtins.print = say
    try:
        wait_for_api(url, wait_s=120)
    finally:
        builtins.print = original
        if servers:
            servers[0].shutdown()
            servers[0].server_close()
        thread.join(timeout=30)
    err = capsys.readouterr().err
    assert f"the Prefect API at {url} does not answer" in err and "answers again: starting" in err, err


# a flowcast command that ran flow runs on its temporary API and ended normally: that API is stopped, the claims
# of its finished runs are left for the next reap (module doc of flowcast.ops.reaper)
ENDED_NORMALLY = """
import json, os, socket, sys, time, uuid
from pathlib import Path
from flowcast.ops.reaper import CLAIMS, _host, _pid_namespace, start_time, watch_command
home = Path(sys.argv[1])
dog = watch_command(home)
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()  # its API, stopped
(home / CLAIMS).mkdir(parents=True, exist_ok=True)
for _ in range(4):
    run = str(uuid.uuid4())
    (home / CLAIMS / f"{run}.json").write_text(json.dumps({
        "flow_run_id": run, "name": "retrain", "api_url": f"http://127.0.0.1:{port}/api", "pid": os.getpid(),
        "pid_start": start_time(os.getpid()), "host": _host(), "pid_ns": _pid_namespace(), "command": "flowcast run"}))
print(dog.pid if dog else 0, flush=True)
time.sleep(3)  # the watchdog is up and polling
"""


def test_the_watchdog_of_a_command_that_ended_normally_exits_at_once(tmp_path):
    """Regression: the watchdog asked the stopped temporary API about each finished run, which Prefect's client
    retried for about 3 s a claim: it outlived a command that ended normally by 15-20 s. Nothing listens there
    any more: it is not asked, the claims stay for the next run in the home."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL" and not k.startswith("FLOWCAST_OWNER")}
    owner = subprocess.Popen([sys.executable, "-c", ENDED_NORMALLY, str(tmp_path)], stdout=subprocess.PIPE,
                             text=True, env=env)
    dog = int(owner.stdout.readline())
    try:
        assert dog and start_time(dog)
        assert owner.wait(timeout=30) == 0
        assert _gone(dog, 2.5), "the watchdog outlived its command"
        assert len(list((tmp_path / ".flow-runs").glob("*.json"))) == 4  # kept for a reap that can ask an API
    finally:
        if start_time(dog):
            os.kill(dog, signal.SIGKILL)


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("case", ["claim-live", "claim-dead", "api-running", "api-crashed", "api-unknown"])
def test_whether_a_flow_run_still_runs_is_told_by_its_claim_then_by_its_prefect_state(tmp_path, case):
    """withdraw20: `run_alive` is what a retrain that skips its slot asks of the run pinning an unpublished winner
    (alive: it is about to publish it, and is left alone; dead: a killed run's, withdrawn). Its claim answers where
    its process can be checked from here (alive, or gone); otherwise (another host, no claim) the Prefect API's state
    of the run (final: not running); None where neither can say."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed, Running

    from flowcast.ops.reaper import CLAIMS, _host, _pid_namespace, run_alive

    @flow(name="retrain")
    def retrain() -> None: ...

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(retrain, state=Running())
        if case == "api-crashed":
            client.set_flow_run_state(run.id, Crashed(message="killed"), force=True)
    run_id = str(run.id) if case != "api-unknown" else "00000000-0000-0000-0000-00000000000f"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim = {"flow_run_id": run_id, "pid": proc.pid, "pid_start": start_time(proc.pid), "host": _host(),
                 "pid_ns": _pid_namespace()}
        if case.startswith("api"):  # a claim that cannot be checked here: another machine's
            claim["host"] = "another-machine"
        if case == "claim-dead":  # its process gone (SIGKILL), the API still saying Running
            proc.kill()
            proc.wait()
        (tmp_path / CLAIMS).mkdir()
        (tmp_path / CLAIMS / f"{run_id}.json").write_text(json.dumps(claim))
        expected = {"claim-live": True, "claim-dead": False, "api-running": True, "api-crashed": False,
                    "api-unknown": None}[case]
        assert run_alive(tmp_path, run_id) is expected
    finally:
        proc.kill()
        proc.wait()


CLAIM = {"pid": 4242, "host": "node1", "command": "flowcast run"}


@pytest.mark.parametrize(("by_pid", "marker"), [
    (4242, "Marked Crashed by the watchdog of the flowcast command"),  # its own command's watchdog: pid said once
    (None, "Marked Crashed by the watchdog of the flowcast command"),
    (5151, "Marked Crashed by the watchdog of the flowcast command (pid 5151)"),  # another command's: both named
])
def test_a_crashed_message_names_each_process_once(by_pid, marker):
    """ui25: a run its command's watchdog marked Crashed read 'the process that ran it (pid 4242 on node1, flowcast
    run) ... Marked Crashed by the watchdog of the flowcast command (pid 4242)': one process, named twice."""
    from flowcast.ops.reaper import crash_message

    message = crash_message(CLAIM, "Running", "", "the watchdog of the flowcast command", by_pid)
    assert message == ("the process that ran it (pid 4242 on node1, flowcast run) is gone without reporting a final "
                       f"state: killed (SIGKILL) or its machine stopped; it was Running. {marker}")


@pytest.mark.parametrize(("said", "expected"), [
    ("Process exited with status code: -9.",
     ("its flow run ended Crashed: Process exited with status code: -9. (the process that ran it, pid 4242 on node1, "
     "is gone). Marked Crashed by flowcast reap")),
    # an earlier reap's message names the process already: not again
    ("the process that ran it (pid 4242 on node1, flowcast run) is gone ...",
     ("its flow run ended Crashed: the process that ran it (pid 4242 on node1, flowcast run) is gone .... "
     "Marked Crashed by flowcast reap")),
    (None, ("its flow run ended Crashed (the process that ran it, pid 4242 on node1, is gone). Marked Crashed by "
           "flowcast reap")),
])
def test_the_task_runs_of_an_ended_run_name_its_process_once(said, expected):
    from flowcast.ops.reaper import ended_tasks_message

    assert ended_tasks_message(CLAIM, "Crashed", said, "flowcast reap") == expected


@pytest.mark.usefixtures("prefect_api")
def test_a_serve_killed_while_it_submitted_a_run_leaves_it_pending_until_the_next_serve_marks_it_crashed(tmp_path):
    """faults29: `flowcast serve` SIGKILLed just after its runner set a deployment run Pending ('Submitting'),
    before the run's own process recorded itself: the run stayed Pending ('Submitting') for good in the UI, never
    Crashed (nothing tied it to the dead serve: it had no claim), and it held the retrain deployment's one
    concurrency slot: the restarted serve's retrain waited in AwaitingConcurrencySlot until Prefect's lease on the
    slot lapsed (5 minutes later, seen on a real server). The next serve, as it starts (holding the serve lock of the
    home and API: no other serve of the home submits), marks Crashed the deployment runs of its home left Pending
    that no claim names; a claimed one (its process runs, the claim's reaper tells) and another home's are left."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Pending

    from flowcast.flows.deploy import reap_before_serving
    from flowcast.ops.reaper import CLAIMS

    @flow(name="retrain")
    def retrain(home: str = "") -> None: ...

    home = tmp_path / "home"
    (home / CLAIMS).mkdir(parents=True)
    with get_client(sync_client=True) as client:
        dep = client.create_deployment(flow_id=client.create_flow(retrain), name=f"retrain-{tmp_path.name}",
                                       concurrency_limit=1)

        def submitted(where: str) -> object:
            run = client.create_flow_run_from_deployment(dep, parameters={"home": where})
            client.set_flow_run_state(run.id, Pending(name="Submitting"))
            return run

        left = submitted(str(home.resolve()))
        waiting = submitted(str(home.resolve()))
        assert client.read_flow_run(waiting.id).state.name == "AwaitingConcurrencySlot"  # the slot the left run holds
        said: list[str] = []
        reap_before_serving(home, said.append)
        state = client.read_flow_run(left.id).state
        assert state.type.value == "CRASHED", state
        assert "stopped before the run's own process began" in state.message and "flowcast serve" in state.message
        assert any(str(left.id) in s and "Crashed" in s for s in said), said
        again = submitted(str(home.resolve()))  # the slot is free: the next run is submitted
        assert client.read_flow_run(again.id).state.type.value == "PENDING"
        (home / CLAIMS / f"{again.id}.json").write_text(json.dumps({"flow_run_id": str(again.id)}))
        elsewhere = client.create_flow_run_from_deployment(dep, parameters={"home": str(tmp_path / "other")})
        client.set_flow_run_state(elsewhere.id, Pending(name="Submitting"), force=True)
        reap_before_serving(home, said.append)
        assert client.read_flow_run(again.id).state.type.value == "PENDING"  # claimed: its own process tells
        assert client.read_flow_run(elsewhere.id).state.type.value == "PENDING"  # another home's


@pytest.mark.usefixtures("prefect_api")
def test_a_pending_run_whose_process_lives_unclaimed_is_left_to_it(tmp_path):
    """review31: a serve killed (SIGKILL of its pid) after its runner set a run Pending and started the run's
    process leaves that process alive (its child, not signalled), still importing before it claims itself. The next
    serve, starting at once, marked that live run Crashed ('nothing of it ran'); its process then set it Running
    (Prefect lets a run leave Crashed for Running) and ran it outside the deployment's concurrency slot, which the
    Crashed state had given back. A Pending run some live process of this host carries (the runner gives the run's
    process PREFECT__FLOW_RUN_ID) is left alone; once that process is gone, it is marked Crashed."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Pending

    from flowcast.flows.deploy import reap_before_serving

    @flow(name="retrain")
    def retrain(home: str = "") -> None: ...

    home = tmp_path / "home"
    home.mkdir()
    with get_client(sync_client=True) as client:
        dep = client.create_deployment(flow_id=client.create_flow(retrain), name=f"retrain-{tmp_path.name}")
        run = client.create_flow_run_from_deployment(dep, parameters={"home": str(home.resolve())})
        client.set_flow_run_state(run.id, Pending(name="Submitting"))
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                 env={**os.environ, "PREFECT__FLOW_RUN_ID": str(run.id)})
        try:
            assert start_time(child.pid) is not None
            said: list[str] = []
            reap_before_serving(home, said.append)
            assert client.read_flow_run(run.id).state.type.value == "PENDING", said  # its process runs it
            assert not said
        finally:
            child.kill()
            child.wait()
        reap_before_serving(home, said.append)
        assert client.read_flow_run(run.id).state.type.value == "CRASHED"  # gone before it claimed itself


@pytest.mark.usefixtures("prefect_api")
def test_a_killed_deployment_run_is_marked_crashed_saying_how_to_run_it_again(tmp_path):
    """ops trial 52: a SIGKILL of the whole `flowcast serve` process group; the restarted serve marked the retrain in
    flight Crashed naming the dead process only: a retrain someone asked for was lost until someone noticed. Its
    message says it did not finish, that what it published cannot be told from here, and the exact command that runs
    it again with its parameters, each secret hidden as stored (a run sent with its schema check off)."""
    import shlex

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    from flowcast.ops.reaper import CLAIMS, reap

    @flow(name="retrain")
    def retrain(home: str = "", as_of: str = "", source: dict | None = None, trials: int = 1) -> None: ...

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    where = str(tmp_path.resolve())
    with get_client(sync_client=True) as client:
        dep = client.create_deployment(flow_id=client.create_flow(retrain), name=f"retrain-{tmp_path.name}",
                                       enforce_parameter_schema=False)
        run = client.create_flow_run_from_deployment(dep, parameters={
            "home": where, "as_of": "2019-08-01", "source": {"path": "https://u:s3cret@h/x.csv"}, "trials": 3})
        client.set_flow_run_state(run.id, Running(), force=True)
        (tmp_path / CLAIMS).mkdir()
        claim = {"flow_run_id": str(run.id), "name": run.name, "pid": dead.pid, "pid_start": "1",
                 "host": socket.gethostname(), "pid_ns": os.readlink("/proc/self/ns/pid"), "api_url": "",
                 "command": "prefect.engine"}
        (tmp_path / CLAIMS / f"{run.id}.json").write_text(json.dumps(claim))
        assert [r.action for r in reap(tmp_path, by="flowcast serve, as it started")] == ["crashed"]
        message = client.read_flow_run(run.id).state.message
    assert "Marked Crashed by flowcast serve, as it started. It did not finish; whether it published anything " \
           "before it stopped cannot be told from here" in message, message
    again = (f"To run it again: prefect deployment run {shlex.quote(f'retrain/retrain-{tmp_path.name}')} "
             f"--param {shlex.quote('home=' + where)} --param as_of=2019-08-01 "
             """--param 'source={"path": "https://u:***@h/x.csv"}' --param trials=3""")
    assert message.endswith(again), message
    assert "s3cret" not in message


@pytest.mark.parametrize(("argv0", "expected"), [
    ("/usr/local/bin/flowcast", "flowcast run"),
    ("/work/.venv/lib/python3.12/site-packages/flowcast/__main__.py", "-m flowcast run"),
])
def test_the_command_to_run_again_is_one_a_person_can_type(monkeypatch, argv0, expected):
    """faults53: under `python -m flowcast` the Crashed message said `To run it again: __main__.py run ...`."""
    import sys

    from flowcast.ops import reaper

    monkeypatch.setattr(sys, "argv", [argv0, "run", "--as-of", "2019-06-01"])
    line = reaper._command_line()
    assert line.endswith(expected) and "__main__" not in line, line
