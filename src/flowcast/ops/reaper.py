"""Prefect's temporary local API never outlives the command that started it.

Without PREFECT_API_URL, a flow run from the command line talks to a temporary Prefect server
that Prefect starts as a child process (uvicorn) and stops from an `atexit` hook. A command
killed with SIGKILL runs no hook, and SIGTERM does not either (Prefect's flow engine turns it
into a crash of the run, then re-raises it with the default handler, which exits at once): the
server stayed behind, one orphan per killed run, each holding a port, a few hundred MB and
Prefect's database open.

`watch_command()` marks this process's environment with `FLOWCAST_OWNER=<pid>:<start
time>` (every child inherits it, the temporary server included) and starts a small watchdog
process in its own session, so that a signal sent to the command's process group does not take
it along. The watchdog polls the command; once the command is gone, it stops every temporary
Prefect server that carries the mark (SIGTERM, then SIGKILL after a grace period) and exits.
A command that ends normally has stopped its server already: the watchdog finds nothing.
Processes are identified by pid and start time, so a reused pid is never signalled.

While the command runs, the temporary server gets `STARTUP_TIMEOUT_S` to start instead of
Prefect's 20 s unless PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS is set: on a loaded
machine (several runs starting at once) it took longer, and the run failed before reading any
data with 'Timed out while attempting to connect to ephemeral Prefect API server'.

**Flow runs a killed command left Running.** A flow run whose process is killed with SIGKILL
(or whose machine stops) never reports a final state: against a real Prefect server (`prefect
server start`, PREFECT_API_URL set) it stayed "Running" in the UI for good. Prefect's flow-run
heartbeats only help where an automation watches them (`flowcast: crash silent runs`, applied by
`flowcast automations apply` or `flowcast serve`, and only after `workers.crash_after`); a plain
server has none. So every flowcast flow run records which process runs it (`claim_flow_run`:
`<home>/.flow-runs/<flow run id>.json`, with the API it reports to, the pid and its start time,
the host), and `reap(home)` marks Crashed, with a message naming the dead process, every claimed
flow run whose process is gone from this host while the API still has it in a non-final state
(its Running task runs too), then drops the claim; the claim of a run that ended is dropped, and the
task runs its dead process left Running are marked Crashed (a worker marks the flow run of a
killed process Crashed, not its task runs: they kept spinning in the UI's Task Runs tab).
Three places call it: the watchdog, as soon as its command is gone (before it stops the temporary
server, which still holds that run); every flowcast flow run as it starts (a later run in the same
home, for a watchdog that was killed too or a process that had none, e.g. `flowcast serve`); and
`flowcast reap`. A claim of another host, of another pid namespace (a container sharing the
hostname and the home) or without a process start time is left alone (its process cannot be
checked from here).
A flow run claims itself as Prefect asks for its name (flows.naming), before it is set Running;
a command that runs flows claims itself before any (`claim_command`: `command-<pid>-<start>.json`,
removed when it ends), so that a run killed between its creation and its own claim (Pending) is
found by the dead command's record: a non-final run of that home (its `home` parameter) created
after the command began and named by no claim, unless a live command of the home began before it.

Run as `python -m flowcast.ops.reaper OWNER_PID OWNER_START [HOME ...]`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import types
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MARK = "FLOWCAST_OWNER"
STARTUP_TIMEOUT_S = 120
SERVER_ARG = b"prefect.server.api.server:create_app"  # how Prefect starts its temporary server
CLAIMS = ".flow-runs"  # under the home: which process runs which flow run (module doc)


def start_time(pid: int) -> str | None:
    """The start time of a live process (clock ticks since boot, from /proc); None when it is
    gone or a zombie (killed and not yet reaped by its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def marked_servers(mark: str) -> dict[int, str]:
    """{pid: start time} of the live temporary Prefect servers whose environment carries `mark`."""
    want = f"{MARK}={mark}".encode()
    found: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if SERVER_ARG not in fh.read():
                    continue
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if want not in fh.read().split(b"\0"):
                    continue
        except OSError:  # gone meanwhile, or another user's
            continue
        if (started := start_time(pid)) is not None:
            found[pid] = started
    return found


def stop(processes: dict[int, str], grace: float = 5.0) -> None:
    """SIGTERM each process still alive (same pid and start time), then SIGKILL after `grace` s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = {p: s for p, s in processes.items() if start_time(p) == s}
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = {p: s for p, s in alive.items() if start_time(p) == s}
        if not alive:
            return


def watch(owner: int, owner_start: str, homes: Iterable[str | Path] = (), *, interval: float = 0.5,
          grace: float = 5.0) -> dict[int, str]:
    """Wait for `owner` to be gone, mark the flow runs it left Running in `homes` Crashed (while
    its temporary server, if any, still answers), then stop the temporary servers it left; returns
    them."""
    while start_time(owner) == owner_start:
        time.sleep(interval)
    for home in homes:
        try:
            reap(home, by="the watchdog of the flowcast command", by_pid=owner, current_api=False)
        except Exception:  # a claim left here is reaped by the next run in that home
            log.exception("could not reap the flow runs of %s", home)
    left = marked_servers(f"{owner}:{owner_start}")
    stop(left, grace)
    return left


def watch_command(home: str | Path | None = None) -> subprocess.Popen[bytes] | None:
    """Mark this process and start its watchdog (module doc): it stops the temporary Prefect API
    (when no API is configured) and marks Crashed the flow runs this process left non-final in
    `home`. None off Linux or when already watched."""
    me = os.getpid()
    mine = start_time(me)
    if mine is None or os.environ.get(MARK) == f"{me}:{mine}":
        return None
    os.environ[MARK] = f"{me}:{mine}"
    return subprocess.Popen(
        [sys.executable, "-m", "flowcast.ops.reaper", str(me), mine, *([str(Path(home).resolve())] if home else [])],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


# ------------------------------------------------------------------ flow runs left Running
@dataclass
class Reaped:
    flow_run_id: str
    name: str
    action: str  # crashed | ended (already final: claim dropped) | unknown (the API has no such run)
    state: str  # the state it was in
    message: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"flow_run_id": self.flow_run_id, "name": self.name, "action": self.action, "state": self.state,
                "message": self.message}


_CLAIMED: dict[str, Path] = {}  # flow run id -> its claim, written by this process


def _host() -> str:
    return socket.gethostname()


def _pid_namespace() -> str | None:
    """This process's pid namespace ('pid:[4026531836]'): containers on one machine may share its
    hostname (docker --network host, hostNetwork pods) while each sees only its own processes."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def claim_flow_run(home: str | Path, *, reap_others: bool = True, store: dict[str, str] | None = None,
                   as_of: datetime | None = None) -> Path | None:
    """Record that this process runs the current flow run (module doc), once; None outside a flow
    run or when it cannot be written. `store`: where it publishes (`crash_publish.run_store`, read by the
    reaper's Crashed message; a claim without it says whether it published 'cannot be told'). `as_of`: the as_of
    the run resolved, added to its claim once it has (a schedule slot's is its scheduled start, which its parameters
    do not hold: the Crashed message reads it there). With `reap_others`, then reap the claims of this home that
    dead processes left (a run killed before this one)."""
    from prefect.context import FlowRunContext

    from flowcast.atomic import atomic_write_text

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return None
    folder = Path(home) / CLAIMS
    path = folder / f"{ctx.flow_run.id}.json"
    if _CLAIMED.get(str(ctx.flow_run.id)) != path:  # not claimed yet (flows.naming claims it before it runs)
        me = os.getpid()
        api = str(getattr(ctx.client, "api_url", "") or "")
        claim = {"flow_run_id": str(ctx.flow_run.id), "name": ctx.flow_run.name, "api_url": api, "pid": me,
                 "pid_start": start_time(me), "host": _host(), "pid_ns": _pid_namespace(),
                 "command": _command_line(), **(store or {}), **({"as_of": as_of.isoformat()} if as_of else {})}
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(claim))
        except OSError as exc:  # a full disk: the run goes on, unclaimed (it would only miss being reaped)
            log.warning("could not record flow run %s in %s: %s", ctx.flow_run.id, folder, exc)
            return None
        _CLAIMED[str(ctx.flow_run.id)] = path
    elif as_of is not None:
        try:
            _add_to_claim(path, {"as_of": as_of.isoformat()})
        except (OSError, ValueError) as exc:  # its Crashed message then says what it published cannot be told
            log.warning("could not record the as_of of flow run %s in %s: %s", ctx.flow_run.id, path, exc)
    if not reap_others:
        return path
    try:
        from prefect import get_run_logger

        for r in reap(home, by=f"flow run '{ctx.flow_run.name}' ({ctx.flow_run.id}), which started in this home"):
            if r.action == "crashed":
                get_run_logger().warning(f"Marked flow run '{r.name}' ({r.flow_run_id}) Crashed: {r.message}")
    except Exception as exc:  # noqa: BLE001 - reaping others never fails this run
        log.warning("could not check the flow runs left in %s: %s", folder, exc)
    return path


def note_unreported(error: BaseException) -> None:
    """This process is ending with `error`: write it into the claims of the flow runs it ran, so that a run
    it could not report a final state for (its Prefect API unreachable, the error itself) is marked Crashed
    naming that error; the reaper used to say it was killed (SIGKILL). A claim of a run that reported its
    final state is dropped by the next reap all the same."""
    text = f"{type(error).__name__}: {error}"[:300]
    for path in list(_CLAIMED.values()):
        try:
            _add_to_claim(path, {"ended_with": text})
        except (OSError, ValueError):  # dropped meanwhile, or a full disk: the plain message stays
            continue


def _add_to_claim(path: Path, extra: dict[str, Any]) -> None:
    """`extra` written into the claim at `path` where this process made it (OSError, ValueError where it cannot be
    read or written)."""
    from flowcast.atomic import atomic_write_text

    claim = json.loads(path.read_text())
    if isinstance(claim, dict) and claim.get("pid") == os.getpid() and any(claim.get(k) != v for k, v in extra.items()):
        atomic_write_text(path, json.dumps({**claim, **extra}))


def crash_message(claim: dict[str, Any], was: str, logged: str, by: str, by_pid: int | None = None,
                  again: str = "") -> str:
    """The Crashed state's message of the flow run `claim` names: its process, how it ended, the state it was in, the
    last error it logged, who marked it (`by`, with `by_pid` where that process is another than the run's), then
    `again` (`run_again`: what it left and how to run it again). The watchdog of a command that ran its flow
    in-process named the pid twice ('the process that ran it (pid 4242 ...) ... Marked Crashed by the watchdog of the
    flowcast command (pid 4242)', ui25)."""
    pid = claim.get("pid")
    return (f"the process that ran it (pid {pid} on {claim.get('host')}, {claim.get('command') or 'flowcast'}) "
            f"{_how_it_ended(claim)}; it was {was}" + (f"; the last error it logged: {logged}" if logged else "")
            + f". Marked Crashed by {_marker(by, by_pid, pid)}" + (f". {again}" if again else ""))


def _cli_value(value: Any) -> str:
    """A parameter's value as `prefect deployment run --param KEY=VALUE` reads it back: Prefect's CLI parses VALUE as
    JSON and keeps the text where that fails, so a text that would parse as JSON ('123', 'true') is given quoted."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
    return json.dumps(value)


def _command_line() -> str:
    """The command a person types to run this process's command again: `flowcast run`, or `python -m flowcast run`
    under `python -m flowcast` (argv[0] is then `.../flowcast/__main__.py`, not a command anyone can run: faults53)."""
    prog = Path(sys.argv[0]).name
    if prog == "__main__.py":
        prog = f"{Path(sys.executable).name} -m {Path(sys.argv[0]).parent.name or 'flowcast'}"
    return " ".join([prog, *sys.argv[1:2]])


def run_again(claim: dict[str, Any], parameters: dict[str, Any] | None, deployment: str | None,
              published: str | None = None) -> str:
    """What a Crashed run's message says after who marked it: the run did not finish, what it published before it
    stopped (`published`: `crash_publish.what_it_published`, read off the store; None where that cannot be told,
    which the message says), and how to run it again with
    its parameters as stored (`stored_parameters`: each secret `***`, as Prefect shows them): `prefect deployment run
    'FLOW/DEPLOYMENT' --param KEY=VALUE ...` for a deployment's run (`deployment`), else the command that ran it. A
    retrain someone asked for and a serve's SIGKILL took was lost until someone noticed (ops trial 52)."""
    import shlex

    from flowcast.source_secrets import stored_parameters

    shown = stored_parameters(dict(parameters or {}))
    left = (f"It did not finish. {published} (running it again never publishes an as_of twice: forecasts the same as those published are skipped)"
            if published is not None else
            "It did not finish; whether it published anything before it stopped cannot be told from here (the reaper "
            "reads its Prefect state only; running it again never publishes an as_of twice: forecasts the same as those published are skipped)")
    if deployment:
        command = " ".join(["prefect deployment run", shlex.quote(deployment),
                            *(f"--param {shlex.quote(f'{k}={_cli_value(v)}')}" for k, v in shown.items())])
        return f"{left}. To run it again: {command}"
    said = ", ".join(f"{k}={_cli_value(v)}" for k, v in shown.items())
    return (f"{left}. To run it again: {claim.get('command') or 'flowcast'} with the options it had"
            + (f" (its parameters: {said})" if said else ""))


def _deployment_name(client: Any, run: Any) -> str | None:
    """'FLOW/DEPLOYMENT' of a deployment's flow run, as `prefect deployment run` takes it; None for another run or
    where the API cannot say (the deployment was deleted)."""
    if run.deployment_id is None:
        return None
    try:
        dep = client.read_deployment(run.deployment_id)
        return f"{client.read_flow(dep.flow_id).name}/{dep.name}"
    except Exception as exc:  # noqa: BLE001 - the message then names the parameters without the deployment
        log.debug("could not read the deployment of flow run %s: %s", run.id, exc)
        return None


def ended_tasks_message(claim: dict[str, Any], ended: str, said: str | None, by: str, by_pid: int | None = None) -> str:
    """The Crashed message of the task runs a gone process left Running under a flow run already `ended` (a worker,
    the crash-silent automation or an earlier reap marked it; `said`: its state's message). The process is named
    once: a message that names it already (an earlier reap's `crash_message`) is not followed by the same pid again."""
    pid = claim.get("pid")
    gone = "" if said and f"pid {pid} " in said else f" (the process that ran it, pid {pid} on {claim.get('host')}, is gone)"
    return f"its flow run ended {ended}{f': {said}' if said else ''}{gone}. Marked Crashed by {_marker(by, by_pid, pid)}"


def _marker(by: str, by_pid: int | None, pid: Any) -> str:
    """Who marks a run Crashed, its pid named where it is another process than the one that ran the run."""
    return by if by_pid is None or by_pid == pid else f"{by} (pid {by_pid})"


def _how_it_ended(claim: dict[str, Any]) -> str:
    error = claim.get("ended_with")
    if error:
        return f"ended with an error before it could report a final state ({error})"
    return "is gone without reporting a final state: killed (SIGKILL) or its machine stopped"


def _last_error_logged(client: Any, run_id: Any, limit: int = 300) -> str:
    """The newest ERROR (or worse) log line of a flow run, first line, at most `limit` characters; '' when
    there is none or the API cannot say. A process that died after its engine logged why (an exception in
    a task, 'Crash detected!') is marked Crashed with that reason, not only 'killed (SIGKILL)'."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel
    from prefect.client.schemas.sorting import LogSort

    try:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]),
                                                     level=LogFilterLevel(ge_=logging.ERROR)),
                                limit=1, sort=LogSort.TIMESTAMP_DESC)
    except Exception as exc:  # noqa: BLE001 - the reason is a courtesy: the run is marked all the same
        log.debug("could not read the logs of flow run %s: %s", run_id, exc)
        return ""
    if not logs:
        return ""
    first = next((ln.strip() for ln in str(logs[0].message).splitlines() if ln.strip()), "")
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _say_in_its_log(client: Any, run_id: Any, state: Any) -> None:
    """The Crashed state's message as the last line of the run's own log (an ERROR, as a final Failed or Crashed line
    is): a killed run's Logs tab in the UI stopped at its last line before the kill ('Trained gru backtest ...'),
    without a word of what became of it; the state's message was behind the Crashed badge alone."""
    from prefect.client.schemas.actions import LogCreate

    try:
        client.create_logs([LogCreate(name="flowcast.reaper", level=logging.ERROR, flow_run_id=run_id,
                                      timestamp=state.timestamp, message=f"Crashed: {state.message}")])
    except Exception as exc:  # noqa: BLE001 - a courtesy: the run is marked all the same
        log.debug("could not write to the log of flow run %s: %s", run_id, exc)


def _alive(claim: dict[str, Any]) -> bool | None:
    """Whether the claim's process still runs; None when that cannot be checked from here (unknown):
    another host, another pid namespace of this host (another container sharing the home: its
    processes are not in our /proc), or a claim without a start time (no /proc where it ran)."""
    if claim.get("host") != _host():
        return None
    ns = claim.get("pid_ns")
    if ns is not None and ns != _pid_namespace():
        return None
    pid, started = claim.get("pid"), claim.get("pid_start")
    if started is None:
        return None
    return isinstance(pid, int) and start_time(pid) == started


def _clients(claim: dict[str, Any], current_api: bool) -> list[Any]:
    """API clients that may know the claimed run: this process's API (the same database as a
    temporary API that is gone) first, then the one the run reported to."""
    url = claim.get("api_url")
    if not current_api and (not url or not _listens(str(url))):
        return []  # (the watchdog, before importing Prefect: its command's temporary API is stopped)
    from prefect.client.orchestration import SyncPrefectClient, get_client
    from prefect.settings import PREFECT_API_URL

    out: list[Any] = []
    if current_api:
        out.append(get_client(sync_client=True))
    # without this process's API the address was found listening just above: one connect per claim, not two
    if url and (not current_api or (url != PREFECT_API_URL.value() and _listens(str(url)))):
        out.append(SyncPrefectClient(url, httpx_settings={"timeout": 15}))
    return out


def _listens(url: str, timeout: float = 2.0) -> bool:
    """False when nothing listens at the API's address (connection refused): the temporary API of a command
    that ended is stopped for good, and Prefect's client retried it for about 3 s per claim, so the watchdog
    of a command that ended normally lingered 15-20 s. Anything else (a timeout, a name that does not
    resolve) is left for the client to try and report."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return True
    if not parts.hostname:
        return True
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return False
    except OSError:
        return True


def _crashed(**kwargs: Any) -> Any:
    """Prefect's Crashed state, imported only when an API answers (the watchdog of a command that ended
    normally has none to ask, and exits without importing Prefect)."""
    from prefect.states import Crashed

    return Crashed(**kwargs)


def reap(home: str | Path, *, by: str = "flowcast reap", by_pid: int | None = None,
         current_api: bool = True) -> list[Reaped]:
    """Mark Crashed the flow runs claimed in `home` whose process is gone while the API still has
    them non-final (module doc); drop the claims of runs that ended. `by`: who marks them, in their
    message, with `by_pid` where that is another process than the run's (`crash_message`). `current_api`:
    ask this process's Prefect API too (False in the watchdog: it must not start a temporary server)."""
    folder = Path(home) / CLAIMS
    if not folder.is_dir():
        return []
    done: list[Reaped] = []
    commands: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(folder.glob("*.json")):
        try:
            claim = json.loads(path.read_text())
            if isinstance(claim, dict) and claim.get("command_claim"):
                commands.append((path, claim))
                continue
            if not isinstance(claim, dict) or "flow_run_id" not in claim:
                raise ValueError("not a claim")
        except (OSError, ValueError) as exc:
            if isinstance(exc, FileNotFoundError):
                continue  # another reaper dropped it meanwhile
            log.warning("removed the damaged flow-run claim %s (%s)", path, exc)
            path.unlink(missing_ok=True)
            continue
        if _alive(claim) is not False:  # running, or on another host
            continue
        run_id = str(claim["flow_run_id"])
        found = _reap_one(claim, run_id, by, current_api, _crashed, by_pid, Path(home))
        if found is None:  # no API answered: keep the claim for a later try
            continue
        done.append(found)
        path.unlink(missing_ok=True)
    for path, claim in commands:
        if _alive(claim) is not False:
            continue
        found_all = _reap_unclaimed(folder, claim, [c for _, c in commands if _alive(c)], by, current_api, _crashed,
                                    by_pid)
        if found_all is None:
            continue
        done += found_all
        path.unlink(missing_ok=True)
    return done


def claim_command(home: str | Path) -> Path | None:
    """Record that this command is about to run flows in `home` (module doc): a flow run it starts
    is recorded by itself a moment after Prefect creates it; a kill in between leaves a run that
    only this record can tie to the dead command. None when it cannot be written."""
    from prefect.settings import PREFECT_API_URL

    from flowcast.atomic import atomic_write_text

    me = os.getpid()
    mine = start_time(me)
    folder = Path(home) / CLAIMS
    path = folder / f"command-{me}-{mine}.json"
    claim = {"command_claim": True, "pid": me, "pid_start": mine, "host": _host(), "pid_ns": _pid_namespace(),
             "api_url": PREFECT_API_URL.value() or "", "home": str(Path(home).resolve()),
             "since": time.time(), "command": _command_line()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(claim))
    except OSError as exc:
        log.warning("could not record this command in %s: %s", folder, exc)
        return None
    return path


def _reap_unclaimed(folder: Path, claim: dict[str, Any], live: list[dict[str, Any]], by: str, current_api: bool,
                    crashed: Any, by_pid: int | None = None) -> list[Reaped] | None:
    """The flow runs a dead command left non-final before they recorded themselves: in its home,
    started after it, named by no record; not one a live command of this home may have started
    (after that command began: it is left for a later reap). None when no API answered."""
    from datetime import UTC

    clients = _clients(claim, current_api)
    if not clients:
        return None
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    since = datetime.fromtimestamp(float(claim.get("since") or 0) - 1, UTC)
    claimed = {p.stem for p in folder.glob("*.json")}
    others = min((float(c.get("since") or 0) for c in live), default=None)
    for client in clients:
        try:
            with client:
                runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING])),
                    start_time=FlowRunFilterStartTime(after_=since, is_null_=None)), limit=200)
                runs += client.read_flow_runs(flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING])),
                    start_time=FlowRunFilterStartTime(is_null_=True)), limit=200)
        except Exception as exc:  # noqa: BLE001 - unreachable API: try the next, else keep the record
            log.debug("could not reach %s for the runs of a dead command: %s", getattr(client, "api_url", "?"), exc)
            continue
        out = []
        for run in {r.id: r for r in runs}.values():
            params = run.parameters or {}
            created = run.created.timestamp() if run.created else 0.0
            if (str(run.id) in claimed or str(params.get("home")) != claim.get("home") or created < since.timestamp()
                    or (others is not None and created >= others)):
                continue
            found = _reap_one({**claim, "flow_run_id": str(run.id), "name": run.name}, str(run.id), by, current_api,
                              crashed, by_pid, folder.parent)
            if found is not None:
                out.append(found)
        return out
    return None


# a dead process's task runs are read every second for at least the first (s) and until a read finds none left,
# for at most the second: the events its process sent before it died may still be on their way to the task runs
TASK_SETTLE_S = (3.0, 10.0)


def _end_tasks(client: Any, flow_run_id: Any, crashed: Any, message: str, *, settle: bool = True) -> None:
    """The task runs of a gone process's flow run left Running or Pending, Crashed with `message`. Prefect
    records a task run's states from the events its process sent, which the server may still be working
    through when the process is found gone (in a CI run a nested 'backtest gru' turned Running after the
    watchdog had crashed the rest, and stayed so): they are read again every second for at least
    TASK_SETTLE_S[0] and until a read finds none left, TASK_SETTLE_S[1] at most. Without `settle` (a flow run
    that ended: the claim of every finished run is dropped so, by the next run or the command's watchdog) a
    first read that finds none ends it at once: that run's process ended its tasks itself."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    began = time.monotonic()
    while True:
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            task_run_filter=TaskRunFilter(state=TaskRunFilterState(type=TaskRunFilterStateType(
                any_=[StateType.RUNNING, StateType.PENDING]))))
        for tr in tasks:
            client.set_task_run_state(tr.id, crashed(message=message), force=True)
        if not tasks and not settle:
            return
        settle = True  # its process died with task runs under way: more of their events may be on the way
        spent = time.monotonic() - began
        if spent >= TASK_SETTLE_S[1] or (not tasks and spent >= TASK_SETTLE_S[0]):
            return
        time.sleep(1.0)


def run_alive(home: str | Path, run_id: str) -> bool | None:
    """Whether flow run `run_id` still runs, as far as this process can tell: its claim in `home` (`claim_flow_run`)
    names a process of this host that is alive (True) or gone (False); without a claim that can be checked from here
    (another host or container, a claim dropped by a reap once the run ended), the Prefect API's state of the run: a
    final one (Completed, Failed, Crashed, Cancelled) is False, any other True (a run killed on another machine stays
    Running there until a reap, a worker or the `crash silent runs` automation marks it Crashed). None when neither
    can say (no claim, the API unreachable or without that run). What `withdraw_unpublished_winner` asks of the run
    that pins an unpublished winner: a live one is about to publish it and is left alone."""
    try:
        claim = json.loads((Path(home) / CLAIMS / f"{run_id}.json").read_text())
    except (OSError, ValueError):
        claim = None
    if isinstance(claim, dict) and (alive := _alive(claim)) is not None:
        return alive
    state = _api_state(run_id)
    return None if state is None else not state.is_final()


def still_runs(home: str | Path, run_id: str) -> bool:
    """Whether flow run `run_id` is known to run on: the Prefect API has not seen it end (a run of this very process
    that completed has a live claim), and `run_alive` says so. False where neither can say."""
    if (state := _api_state(run_id)) is not None and state.is_final():
        return False
    return run_alive(home, run_id) is True


def _api_state(run_id: str) -> Any:
    """The Prefect API's state of flow run `run_id`; None where it cannot say (no API, no such run, no id)."""
    from uuid import UUID

    try:
        uid = UUID(run_id)
    except ValueError:
        return None
    try:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            return client.read_flow_run(uid).state
    except Exception as exc:  # noqa: BLE001 - no API, or it has no such run: cannot say
        log.debug("could not read flow run %s: %s", run_id, exc)
        return None


def _reap_one(claim: dict[str, Any], run_id: str, by: str, current_api: bool, crashed: Any,
              by_pid: int | None = None, home: Path | None = None) -> Reaped | None:
    """Mark the flow run `claim` names Crashed where the API has it non-final (`reap`); `home`: where its claim is,
    the home its store is read from where its parameters name none (`crash_publish`)."""
    from uuid import UUID

    from flowcast.ops.crash_publish import what_it_published

    clients = _clients(claim, current_api)
    if not clients:
        return None
    from prefect.exceptions import ObjectNotFound

    name = str(claim.get("name") or run_id)
    answered = False
    for client in clients:
        try:
            with client:
                try:
                    run = client.read_flow_run(UUID(run_id))
                except ObjectNotFound:
                    answered = True
                    continue
                state = run.state
                if state is None or state.is_final():
                    # a worker (or the crash-silent automation) marked the flow run Crashed, but the task runs
                    # its dead process was running stay Running in the UI for good: they end with it
                    ended = state.name if state else "none"
                    _end_tasks(client, run.id, crashed, ended_tasks_message(
                        claim, ended, state.message if state is not None else None, by, by_pid), settle=False)
                    return Reaped(run_id, run.name or name, "ended", ended)
                logged = "" if claim.get("ended_with") else _last_error_logged(client, run.id)
                published = what_it_published(run.parameters, run_id, claim, home)
                message = crash_message(claim, state.name, logged, by, by_pid,
                                        run_again(claim, run.parameters, _deployment_name(client, run), published))
                ended = crashed(message=message)
                client.set_flow_run_state(run.id, ended)
                _say_in_its_log(client, run.id, ended)
                _end_tasks(client, run.id, crashed, f"its flow run crashed: {message}")
                return Reaped(run_id, run.name or name, "crashed", state.name, message)
        except Exception as exc:  # noqa: BLE001 - unreachable API: try the next, else keep the claim
            log.debug("could not reach %s for flow run %s: %s", getattr(client, "api_url", "?"), run_id, exc)
    return Reaped(run_id, name, "unknown", "") if answered else None


def reap_submitted(home: str | Path, *, by: str) -> list[Reaped]:
    """The deployment runs of `home` (their `home` parameter) that a killed `flowcast serve` left Pending as its runner
    submitted them ('Submitting'), before the run's own process began and recorded itself, marked Crashed. Nothing
    tied such a run to the dead serve (it had no claim, and a serve is no command that claims itself), so it stayed
    Pending for good in the UI, and held its deployment's concurrency slot: the restarted serve's retrain waited in
    AwaitingConcurrencySlot until Prefect's lease on that slot lapsed (5 minutes). Called by `flowcast serve` as it starts, holding the serve lock of the home and
    API (`ops.serving`): no other serve of the home submits runs then. A run some claim names (its process began: the
    claims' reaper tells whether it lives), one a live process of this host was started to run (`_live_flow_runs`:
    the killed serve's child, still starting, outlives it; marked Crashed, it set the run Running all the same, out of
    the concurrency slot the Crashed state gave back) and a work pool's run (its worker submits it) are left alone.
    Nothing of such a run happened: its process marks itself Running, after its claim, before its flow's first step."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    folder = Path(home) / CLAIMS
    want = str(Path(home).resolve())
    out: list[Reaped] = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING]))), limit=200)
        # read after the runs: a process that claims itself meanwhile was alive as they were listed (its claim, or
        # its environment, names it)
        alive = _live_flow_runs()
        claimed = {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()
        for run in runs:
            if (run.deployment_id is None or run.work_pool_name or str(run.id) in claimed or str(run.id) in alive
                    or str((run.parameters or {}).get("home")) != want):
                continue
            was = (run.state.name if run.state is not None else None) or "Pending"
            message = (f"the flowcast serve that was starting it (it was {was}) stopped before the run's own process "
                       f"began (killed, or its machine stopped): nothing of it ran. Marked Crashed by {by}")
            ended = _crashed(message=message)
            client.set_flow_run_state(run.id, ended)
            _say_in_its_log(client, run.id, ended)
            out.append(Reaped(str(run.id), run.name or str(run.id), "crashed", was, message))
    return out


def _live_flow_runs() -> set[str]:
    """The flow run ids that live processes of this host were started to run (Prefect's runner gives a served
    deployment's run process, `python -m prefect.engine`, PREFECT__FLOW_RUN_ID in its environment; a flow served in
    memory, `Flow.serve`, which flowcast does not use, runs in a spawned process without it): a serve killed after it
    started a run's process leaves that process alive (its child, not signalled), Pending until it claims itself and
    sets the run Running."""
    key = b"PREFECT__FLOW_RUN_ID="
    found: set[str] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit() or start_time(int(name)) is None:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:  # gone meanwhile, or another user's
            continue
        found.update(v[len(key):].decode(errors="replace") for v in env if v.startswith(key))
    return found


API_WAIT_S = 90.0  # how long a command waits for its Prefect server (PREFECT_API_URL) to answer before it starts


def api_unreachable(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, is a connection to the Prefect API that failed (httpx's or
    httpcore's; Prefect wraps it: 'RuntimeError: Failed to reach API at <url>')."""
    return any(type(e).__module__.startswith(("httpx", "httpcore")) for e in error_chain(exc))


def api_not_answering(exc: BaseException, *, api_only: bool = False) -> str | None:
    """The URL of the Prefect API (PREFECT_API_URL) that `exc` says did not answer (`api_unreachable`); None for any
    other error, and where no URL is set (Prefect's temporary local API of the command, which no restart awaits).
    `api_only`: `exc` came from a call of the API alone, whose events websocket (`wait_for_flow_run`) fails with the
    socket's own errors once its reconnections are spent (ConnectionRefusedError, websockets' ConnectionClosed):
    those count too."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    socket_failed = api_only and any(isinstance(e, ConnectionError) or type(e).__module__.startswith("websockets")
                                     for e in error_chain(exc))
    return url if url and (api_unreachable(exc) or socket_failed) else None


def api_wait_said(what: str, url: str, how: str, exc: BaseException, then: str) -> str:
    """`2019-03-01: the Prefect API at URL did not answer as ... (ConnectError: ...); waiting up to 90s for it, then
    running the date`: what a backfill says as it waits for its API (`wait_for_api`), in process and fanned out. The
    URL is redacted whole here: its run logger's filter (`logs.RedactFilter`), the backstop, reads URLs out of the line
    and cannot tell where a password with a space ends (`https://u:12 ab@h/api` was shown); so is the URL where the
    error names it, the rest of the error's text by the text redactor."""
    from flowcast.redaction import redact, redact_log_text

    error = redact_log_text(str(exc).replace(url, redact(url)))
    return (f"{what}: the Prefect API at {redact(url)} {how} ({type(exc).__name__}: {error}); "
            f"waiting up to {API_WAIT_S:g}s for it, then {then}")


def error_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the errors it was raised from (its cause, else its context), each once."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def api_health(url: str) -> str | None:
    """None where the Prefect API at `url` answers its health check (below HTTP 500), else why not ('ConnectError:
    All connection attempts failed', 'HTTP 503'): `wait_for_api`'s and `api_watch`'s one probe."""
    import httpx

    try:
        answer = httpx.get(f"{url.rstrip('/')}/health", timeout=5.0)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if answer.status_code < 500 else f"HTTP {answer.status_code}"


def wait_for_api(url: str, wait_s: float = API_WAIT_S) -> None:
    """Wait until the Prefect API at `url` answers its health check, saying so once on stderr; a FlowcastError
    naming it after `wait_s`. A server restarting (an upgrade, a crash and its supervisor) when a scheduled
    command started failed that command at once ('Failed to reach API'), where a run already going waits."""
    import sys
    import time

    from flowcast.errors import FlowcastError

    deadline = time.monotonic() + wait_s
    said = False
    while True:
        if (why := api_health(url)) is None:
            if said:
                print(f"the Prefect API at {url} answers again: starting", file=sys.stderr, flush=True)
            return
        if time.monotonic() >= deadline:
            raise FlowcastError(f"the Prefect API at {url} (PREFECT_API_URL) did not answer for {wait_s:g}s ({why}); "
                                "nothing was started: start that server (prefect server start, or make server), or "
                                "unset PREFECT_API_URL to run on a temporary one, and run the command again")
        if not said:
            print(f"the Prefect API at {url} does not answer ({why}): waiting up to {wait_s:g}s for it",
                  file=sys.stderr, flush=True)
            said = True
        time.sleep(1.0)


@contextmanager
def temporary_api(home: str | Path | None = None) -> Iterator[None]:
    """While a command runs flows: the command is watched (its temporary Prefect API, if any, and
    the flow runs it leaves non-final in `home`, module doc), its temporary API is given
    STARTUP_TIMEOUT_S to start unless its timeout was set (module doc), and sends Prefect no usage
    telemetry unless PREFECT_SERVER_ANALYTICS_ENABLED says so (offline, the server logged
    "ERROR ... Failed to send telemetry" in every run: an error that was none), and finds no window
    `flowcast: crash silent runs` left open for a run already final, which it evaluated as it started,
    logging `Action failed: ... already in terminal state` (`ops.prefect_runs.drop_final_windows`,
    in the log `flowcast.temporary_api`). A configured API that stops answering meanwhile is said on the terminal
    (`_api_watched`)."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    if PREFECT_API_URL.value():
        wait_for_api(str(PREFECT_API_URL.value()))
    watch_command(home)
    command: Path | None = None
    try:  # the claim inside: a Ctrl-C or an error at any point after it (the drop below included) removes it
        command = claim_command(home) if home is not None else None
        updates: dict[Any, Any] = {}
        if not PREFECT_API_URL.value():  # the server inherits these settings (as environment variables)
            from prefect.logging import get_logger

            from flowcast.ops.prefect_runs import drop_final_windows_before_start

            said = get_logger("flowcast.temporary_api")
            drop_final_windows_before_start(said.info, said.warning)  # before anything starts the server
            if PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.name not in os.environ:
                updates[PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS] = max(
                    STARTUP_TIMEOUT_S, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
            if PREFECT_SERVER_ANALYTICS_ENABLED.name not in os.environ:
                updates[PREFECT_SERVER_ANALYTICS_ENABLED] = False
        with temporary_settings(updates), _server_in_own_session(), _api_watched():
            yield
    finally:
        if command is not None:
            command.unlink(missing_ok=True)


@contextmanager
def _api_watched() -> Iterator[None]:
    """A configured Prefect API (PREFECT_API_URL) that stops answering while the command runs is said on the
    terminal, and when it answers again (`api_watch`: Prefect's client retried it for a minute, silently); a
    temporary API, the command's own, is not watched (no restart of it is awaited)."""
    from prefect.settings import PREFECT_API_URL

    from flowcast.ops.api_watch import watching

    if not PREFECT_API_URL.value():
        yield
        return
    with watching(str(PREFECT_API_URL.value())):
        yield


@contextmanager
def _server_in_own_session() -> Iterator[None]:
    """Prefect starts its temporary server as a plain child, in the command's process group, so the
    Ctrl-C a terminal sends that group stopped the server at once while the command's flow engine,
    handling the KeyboardInterrupt, tried to report the crash to it: `flowcast run` interrupted
    mid-training retried the dead API for minutes and ended with 'error: ConnectError: [Errno 111]
    Connection refused' instead of 'interrupted'. The server is started in its own session (as the
    watchdog is); it is stopped by Prefect's atexit hook, or by the watchdog when the command dies."""
    from prefect.server.api import server as prefect_server

    plain = prefect_server.subprocess
    own = types.ModuleType(plain.__name__)
    own.__dict__.update(vars(plain))
    own.Popen = functools.partial(plain.Popen, start_new_session=True)  # type: ignore[attr-defined]
    prefect_server.subprocess = own  # (that module's name only, not subprocess itself)
    try:
        yield
    finally:
        prefect_server.subprocess = plain


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2], sys.argv[3:])
