"""A real `prefect server start` on a free loopback port (SQLite in a temporary folder), and a
local HTTP receiver that records what is POSTed to it: for end-to-end tests of serving,
events and automations. Both are stopped (process group SIGINT then SIGKILL, server shutdown)
when their context exits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGINT to the process group we started (graceful), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def http(method: str, url: str, **kw: Any) -> httpx.Response:
    """One API call; a busy SQLite server answers 503 for a moment, so that is retried (as
    Prefect's own client does)."""
    r = None
    for _ in range(20):
        r = httpx.request(method, url, timeout=10, **kw)
        if r.status_code not in (429, 503):
            return r
        time.sleep(0.5)
    assert r is not None
    return r


@dataclass
class Server:
    api: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen
    others: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)

    def logs(self, n: int = 2000) -> str:
        parts = [f"--- {self.log.name}\n{self.log.read_text(errors='replace')[-n:]}"]
        parts += [f"--- {log.name}\n{log.read_text(errors='replace')[-n:]}" for _, log in self.others]
        return "\n".join(parts)

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll `predicate` every second until it returns something truthy; fail with the logs
        on a timeout or when a process we started exits early."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p, log in [(self.proc, self.log), *self.others]:
                if p.poll() is not None:
                    raise AssertionError(f"{what}: a process exited early (rc {p.returncode}):\n"
                                         f"{log.read_text(errors='replace')[-3000:]}")
            value = predicate()
            if value:
                return value
            time.sleep(1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.logs()}")

    def start(self, args: list[str], log: Path, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start another process (e.g. `serve`) against this server; stopped with the server. Its SIGINT is the
        default one, as a terminal's Ctrl-C reaches it: the suite run as a background job (`make test &`, nohup, some
        CI runners) has SIGINT ignored, which a child inherits and Python then keeps ignoring, so a test's Ctrl-C did
        nothing (test_serve_grace's Ctrl-C during the grace failed so: the run in flight ended on its own)."""
        import signal

        # an ignored SIGINT is inherited through exec, a handled one is reset to the default: handled while it starts
        ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        if ignored:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            proc = subprocess.Popen(args, env={**self.env, **(env or {})}, cwd=cwd, stdout=log.open("wb"),
                                    stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            if ignored:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.others.append((proc, log))
        return proc


@contextmanager
def prefect_server(tmp: Path, extra_env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                   uvicorn_args: tuple[str, ...] | None = None) -> Iterator[Server]:
    """`args`: more options of `prefect server start` (e.g. --no-services). `uvicorn_args`: Prefect's server app
    (`prefect.server.api.server:create_app`, what `prefect server start` serves) under uvicorn itself, with these
    options of uvicorn's that `prefect server start` does not pass on (e.g. --no-date-header)."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp / 'prefect.db'}", **(extra_env or {})}
    env.pop("PREFECT_API_KEY", None)
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "server.log"
    command = ([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), *args]
               if uvicorn_args is None else
               [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app", "--host",
                "127.0.0.1", "--port", str(port), *uvicorn_args])
    proc = subprocess.Popen(
        command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = Server(api, env, log, proc)
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"{api}/health", timeout=2).status_code == 200  # not retried: polled
            except httpx.HTTPError:
                return False

        server.wait(healthy, 300, "the Prefect server")
        yield server
    finally:
        for p, _ in reversed(server.others):
            stop(p)
        stop(proc)


@dataclass
class Receiver:
    url: str
    received: list[dict[str, Any]]

    def matching(self, text: str) -> list[dict[str, Any]]:
        return [r for r in self.received if text in json.dumps(r)]


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    """A thread serving http.server on loopback that records each POSTed JSON body."""
    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                data = {"raw": body.decode(errors="replace")}
            with lock:
                received.append(data)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{httpd.server_address[1]}/hook", received)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
