"""`flowcast serve` against a real Prefect server reads the schedules' slots on the server's clock, not its own
(`flows.deploy.server_clock`): a serve more than about 30 s behind its server lost a slot, one ahead named future
slots missed. The offset comes from the HTTP `Date` header of the server's answer (`clock_offset`); the skew is
injected through the clock the serve reads this machine's now from."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

SENT = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
RECEIVED = SENT + timedelta(milliseconds=100)


@pytest.mark.parametrize(("header", "offset"), [
    # (a Date of D: the server answered between D and D + 2 s; the request's middle is 12:00:00.05)
    ("Sun, 06 Dec 2026 12:00:42 GMT", timedelta(seconds=42.95)),  # the server ahead
    ("Sun, 06 Dec 2026 11:59:18 GMT", timedelta(seconds=-41.05)),  # the server behind
    ("Sun, 06 Dec 2026 12:00:00 GMT", timedelta(0)),  # agreeing, as far as a whole-second header tells
    ("Sun, 06 Dec 2026 11:59:59 GMT", timedelta(0)),  # (its second just turned: dated a second back)
    ("Sun, 06 Dec 2026 12:00:02 GMT", timedelta(seconds=2.95)),  # past what the header can blur: ahead
    ("Sun, 06 Dec 2026 12:00:42 -0000", timedelta(seconds=42.95)),  # no zone said: UTC, as HTTP dates are
    (None, None),  # no header
    ("", None),
    ("yesterday", None),  # not an HTTP date
    ("Sun, 06 Dec 2026 25:61:00 GMT", None),
], ids=["ahead", "behind", "agree", "agree-dated-back", "ahead-2s", "no-zone", "missing", "empty", "malformed",
        "bad-time"])
def test_the_servers_offset_is_read_from_its_date_header(header, offset):
    from flowcast.flows.deploy import clock_offset

    assert clock_offset(header, SENT, RECEIVED) == offset


@pytest.mark.parametrize(("seconds", "said"), [
    (42.4, "the Prefect server's clock is 42 s ahead of this machine's"),
    (-42.4, "the Prefect server's clock is 42 s behind this machine's"),
    (5.0, None),
    (-5.0, None),
    (0.0, None),
])
def test_only_a_large_skew_is_said(seconds, said):
    from flowcast.flows.deploy import skew_sentence

    sentence = skew_sentence(timedelta(seconds=seconds))
    assert sentence == said if said is None else sentence is not None and sentence.startswith(said + ": ")


def test_without_a_server_the_serve_reads_its_own_clock(monkeypatch):
    """Prefect's temporary server (no PREFECT_API_URL) runs on the serve's machine: nothing is asked or said."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowcast.flows.deploy import server_clock

    def clock() -> datetime:
        return SENT

    said: list[str] = []
    with temporary_settings({PREFECT_API_URL: None}):
        assert server_clock(said.append, clock) is clock
    assert said == []


@pytest.fixture(scope="module")
def server_api(tmp_path_factory) -> Iterator[str]:
    """A real `prefect server start` (tests/prefect_server.py) for this module's tests."""
    from prefect_server import prefect_server

    with prefect_server(tmp_path_factory.mktemp("server")) as srv:
        yield srv.api


def _skewed(seconds: float) -> Callable[[], datetime]:
    """This machine's clock as a machine `seconds` ahead of it (negative: behind) would read it."""
    return lambda: datetime.now(UTC) + timedelta(seconds=seconds)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("skew", "said"), [
    (-42, "ahead of"),  # the serve's machine 42 s behind its server
    (42, "behind"),  # 42 s ahead
    (-3, None),  # within CLOCK_SKEW_SAID_S: the serve reads the server's clock, without a word
    (0, None),
])
def test_the_serve_reads_the_servers_clock(server_api, skew, said):
    """The server's clock is this machine's (loopback); a serve machine whose clock is `skew` s off reads the server's
    now all the same (within the header's blur, about a second, and the test's own time), and says the skew when it is
    large."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowcast.flows.deploy import server_clock

    sentences: list[str] = []
    with temporary_settings({PREFECT_API_URL: server_api}):
        now = server_clock(sentences.append, _skewed(skew))
    before, read, after = datetime.now(UTC), now(), datetime.now(UTC)
    # (a busy machine: uvicorn's Date a tick late, the request slow; the skew itself is 42 s)
    assert before - timedelta(seconds=3) <= read <= after + timedelta(seconds=3), (skew, before, read)
    if said is None:
        assert sentences == []
    else:
        [sentence] = sentences
        found = re.search(rf"clock is (\d+) s {said} this machine's", sentence)
        assert found is not None and abs(int(found[1]) - 42) <= 3, sentence


@pytest.mark.timeout(300)
def test_a_server_without_a_date_header_leaves_the_serve_its_own_clock(tmp_path, caplog, prefect_logging):
    """A Prefect API whose answers carry no `Date` header (Prefect's server app under uvicorn --no-date-header, as
    behind a proxy that drops it): the serve reads its machine's clock, says one debug line, and nothing else."""
    import logging

    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect_server import prefect_server

    from flowcast.flows.deploy import server_clock

    clock = _skewed(-42)
    sentences: list[str] = []
    caplog.set_level(logging.DEBUG, logger="prefect.flowcast.serve")
    with prefect_server(tmp_path / "server", uvicorn_args=("--no-date-header",)) as srv, \
            temporary_settings({PREFECT_API_URL: srv.api}):
        assert server_clock(sentences.append, clock) is clock
    assert sentences == []
    [line] = [r.getMessage() for r in caplog.records if r.name == "prefect.flowcast.serve"]
    assert line == (f"could not read the time of the Prefect API {srv.api} (its answer carried no readable HTTP Date "
                    "header); the serve reads this machine's clock"), line


@pytest.mark.timeout(300)
def test_serve_all_checks_and_schedules_on_the_servers_clock(server_api, tmp_path, monkeypatch, caplog,
                                                             prefect_logging):
    """`serve_all` on a machine 42 s behind its server: the missed-slot check's instant (`since`) and the clock its
    catch-up reads (`until`) are the server's, and the skew is said as the serve starts."""
    import logging

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowcast.flows import deploy
    from flowcast.ops import automations

    served: dict[str, object] = {}
    monkeypatch.setattr(deploy, "serve", lambda deployments, **kw: served.update(kw))
    monkeypatch.setattr(automations, "ensure", lambda settings, say: None)
    monkeypatch.setattr(deploy, "_utc_now", _skewed(-42))  # the serve machine's clock, where deploy reads it
    caplog.set_level(logging.WARNING, logger="prefect.flowcast.serve")
    with temporary_settings({PREFECT_API_URL: server_api}):
        deploy.serve_all({"home": str(tmp_path / "home")})
    clock = served["clock"]
    assert callable(clock)
    for read in (served["since"], clock()):
        assert abs(read - datetime.now(UTC)) < timedelta(seconds=3), (read, datetime.now(UTC))
    said = [r.getMessage() for r in caplog.records if r.name == "prefect.flowcast.serve"]
    assert any(" s ahead of this machine's: the serve reads the schedules' slots" in s for s in said), said
