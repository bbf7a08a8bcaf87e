"""A TCP relay between a test and its Prefect API, which the test cuts off (a server restarting), whose one reply
it loses (a request the server carried out, its answer never received), or whose one request it holds back (an API
slow to answer it)."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

from prefect_server import free_port


class Relay:
    """A TCP relay on a loopback port to the Prefect API at `target` (its URL): `up()` listens and forwards,
    `down()` closes the port and every connection made through it: the API, seen through `url`, gone, as when its
    server restarts. `lose_reply_to`: the next request that starts with these bytes reaches the API, and its
    connection is cut before the reply, which is lost. `hold(pattern, skip)`: the request that matches `pattern`
    (a regex of its first bytes) after `skip` that did is held back, its connection with it, until `release()`
    (`held` is set once one is). `replied(pattern)`: an event set once the whole reply to the next request that
    matches `pattern` has been passed on to the client (a readiness signal: the client has what it waited for)."""

    def __init__(self, target: str):
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{parts.path}"
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self.lose_reply_to: bytes | None = None  # the next request that starts so is carried out, its reply lost
        self.lost = 0  # the replies lost so far
        self._hold: tuple[re.Pattern[bytes], list[int]] | None = None
        self.held = threading.Event()  # a request held back (`hold`)
        self._released = threading.Event()
        self._awaited: tuple[re.Pattern[bytes], threading.Event] | None = None  # `replied`

    def replied(self, pattern: bytes) -> threading.Event:
        """Set once the whole reply (its Content-Length, or its last chunk) to the next request whose first bytes
        match `pattern` has been passed on to the client: where a test slept a second for a client to be at a step,
        and cut the API too soon on a loaded machine (ops53)."""
        event = threading.Event()
        self._awaited = (re.compile(pattern), event)
        return event

    def hold(self, pattern: bytes, skip: int = 0) -> None:
        self._hold = (re.compile(pattern), [skip])

    def release(self) -> None:
        self._hold = None
        self._released.set()

    def up(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """The port closed and every connection through it cut: every connection after it is refused, as by an API
        gone. The listener is shut down before it is closed, which wakes the accept under way in `_accept`: closed
        alone, the port went on listening until that accept returned, and the first connection after it was still
        taken and relayed to the API (ops52, fixC52)."""
        if self._listener is not None:
            with suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for s in self._open:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed: down()
                return
            upstream = socket.create_connection(self.target)
            self._open += [client, upstream]
            losing = threading.Event()  # this connection carries the request whose reply is lost
            awaiting: list = []  # [the `replied` event, the reply so far] of the request this connection carries
            threading.Thread(target=self._pump, args=(client, upstream, losing, True, awaiting), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, losing, False, awaiting), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, losing: threading.Event, request: bool,
              awaiting: list) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                if request and self._holds(data):
                    self.held.set()
                    self._released.wait()
                if request and (awaited := self._awaited) is not None and awaited[0].match(data):
                    self._awaited = None
                    awaiting[:] = [awaited[1], b""]  # (before the request is passed on: its reply comes after)
                if request and self.lose_reply_to is not None and data.startswith(self.lose_reply_to):
                    self.lose_reply_to = None
                    losing.set()
                elif not request and losing.is_set():  # the reply: the connection is cut instead
                    self.lost += 1
                    for s in (src, dst):
                        with suppress(OSError):
                            s.shutdown(socket.SHUT_RDWR)
                    return
                dst.sendall(data)
                if not request and awaiting:
                    awaiting[1] += data
                    if _whole_reply(awaiting[1]):
                        awaiting[0].set()
                        awaiting.clear()
        with suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


    def _holds(self, data: bytes) -> bool:
        """Whether `data` (a request's first bytes) is the one to hold back (`hold`)."""
        if (hold := self._hold) is None or not hold[0].match(data):
            return False
        if hold[1][0] > 0:
            hold[1][0] -= 1
            return False
        self._hold = None
        return True


def _whole_reply(reply: bytes) -> bool:
    """Whether `reply` holds a whole HTTP response: its headers and as many bytes as its Content-Length says (or, sent
    in chunks, the last, empty one)."""
    head, sep, body = reply.partition(b"\r\n\r\n")
    if not sep:
        return False
    if length := re.search(rb"(?im)^content-length:\s*(\d+)", head):
        return len(body) >= int(length.group(1))
    return not re.search(rb"(?im)^transfer-encoding:\s*chunked", head) or body.endswith(b"0\r\n\r\n")


@contextmanager
def relay_to(target: str) -> Iterator[Relay]:
    relay = Relay(target)
    try:
        yield relay
    finally:
        relay.release()
        relay.down()
