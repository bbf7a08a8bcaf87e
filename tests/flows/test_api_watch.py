"""The Prefect API gone while a command runs (flowcast.ops.api_watch): Prefect's client retried its request for up to a
minute and flowcast said nothing meanwhile. A real Prefect client talks to the session's real API through a relay that
the test cuts off (the server gone, connections refused) and brings back."""

from __future__ import annotations

import logging
import threading

import httpx
import pytest
from api_relay import relay_to
from prefect import flow
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from flowcast.ops.api_watch import CLIENT_LOGGER, watching


@pytest.mark.timeout(120)
def test_an_api_that_stops_answering_is_said_once_on_stderr_and_so_is_its_return(prefect_api, capfd):
    """ops53: one line says the Prefect API at <url> does not answer and that the run waits, and one that it answers
    again, however many retries the outage took; Prefect's own DEBUG lines stay hidden, and the logger is as it was
    after the watch."""
    from prefect.client.orchestration import get_client

    logger = logging.getLogger(CLIENT_LOGGER)
    level, filters = logger.level, list(logger.filters)
    with relay_to(PREFECT_API_URL.value()) as relay, temporary_settings({PREFECT_API_URL: relay.url}):
        relay.up()
        with watching(relay.url) as watch, get_client(sync_client=True) as client:
            client.hello()  # connected once: Prefect's client retries a refused connection only after that
            assert capfd.readouterr().err == ""  # nothing said while the API answers
            relay.down()
            back = threading.Timer(7, relay.up)  # retried 2 s and 4 s on (with jitter), then after the API is back
            back.start()
            try:
                assert client.hello().status_code == 200  # the request waited for the API and went through
            finally:
                back.join()
            watch._probe.join(10)  # (the probe said it answers again: it ends so)
    err = _said_outage_and_back(capfd, relay.url)
    assert RETRY_LINE_SHOWN not in err  # Prefect's DEBUG lines of its retries stay hidden
    assert (logger.level, list(logger.filters)) == (level, filters)


RETRY_LINE_SHOWN = "Encountered retryable exception"


@pytest.mark.timeout(60)
def test_a_watch_ends_with_its_command_while_the_api_is_still_gone(prefect_api, capfd):
    """The command ends (fails, or is stopped) while its API is gone: its probe stops with it, nothing more is said."""
    from prefect.client.orchestration import get_client

    with relay_to(PREFECT_API_URL.value()) as relay, temporary_settings({PREFECT_API_URL: relay.url}):
        relay.up()
        with watching(relay.url, poll_s=0.2) as watch:
            with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 1}), get_client(sync_client=True) as client:
                client.hello()
                relay.down()
                with pytest.raises(httpx.ConnectError):
                    client.hello()
            assert watch.waiting
        assert not watch.waiting  # stopped with the watch: no thread outlives the command
    said = [line for line in capfd.readouterr().err.splitlines() if line.startswith("the Prefect API at")]
    assert len(said) == 1 and "does not answer" in said[0] and "about 2s" in said[0], said


def test_a_command_on_a_configured_api_is_watched_and_one_on_its_temporary_api_is_not():
    """`reaper.temporary_api` watches the API a command runs on (`_api_watched`) where PREFECT_API_URL names it; a
    temporary API, the command's own, stops only with the command."""
    from flowcast.ops.api_watch import ApiWatch
    from flowcast.ops.reaper import _api_watched

    logger = logging.getLogger(CLIENT_LOGGER)
    for url, watched in (("http://127.0.0.1:9/api", True), ("", False)):
        with temporary_settings({PREFECT_API_URL: url}), _api_watched():
            assert any(isinstance(f, ApiWatch) and f.url == url for f in logger.filters) is watched
            assert (logger.level == logging.DEBUG) is watched
        assert not any(isinstance(f, ApiWatch) for f in logger.filters)


@pytest.mark.timeout(60)
def test_a_retried_request_the_api_answers_through_says_no_outage(prefect_api):
    """fixA53: any httpx error of a retried request was said as an outage: a stale keep-alive connection's
    RemoteProtocolError, or a slow answer's ReadTimeout, printed 'does not answer ... the run waits' and then 'answers
    again' of an API that never stopped. The probe's own health check decides: the API answers, nothing is said."""
    said: list[str] = []
    with watching(PREFECT_API_URL.value(), say=said.append, poll_s=0.2) as watch:
        for error in (httpx.RemoteProtocolError("Server disconnected without sending a response."),
                      httpx.ReadTimeout("timed out")):
            watch.lost(error)
            watch._probe.join(10)
            assert not watch._probe.is_alive() and not watch.waiting
    assert said == []


def test_a_child_logger_of_prefects_client_shows_no_debug_line_while_watched(capfd):
    """fixA53: lowering Prefect's client logger to DEBUG lowered its child loggers too, whose records its filter never
    sees: their DEBUG lines reached the console while a command was watched. They stay hidden; what their level showed
    before still shows."""
    logger = logging.getLogger(CLIENT_LOGGER)
    console = logging.StreamHandler()  # the console, as Prefect's logging configuration puts it on its loggers
    logging.getLogger("prefect").addHandler(console)
    before = logger.level
    logger.setLevel(logging.INFO)
    try:
        child = logging.getLogger(f"{CLIENT_LOGGER}.fixa53.child")
        with watching("http://127.0.0.1:9/api", say=lambda _: None):
            assert child.isEnabledFor(logging.DEBUG)  # lowered with its parent: the handler's filter hides it
            child.debug("a child's DEBUG line")
            child.info("a child's INFO line")
            logger.debug("the client's own DEBUG line")
        err = capfd.readouterr().err
        assert "DEBUG line" not in err and "a child's INFO line" in err, err
        assert not console.filters  # put back with the watch
    finally:
        logger.setLevel(before)
        logging.getLogger("prefect").removeHandler(console)


@pytest.mark.timeout(60)
def test_the_watch_line_starts_a_line_of_its_own_after_prefects_unended_log_error(prefect_api, capfd):
    """faults53: Prefect's log worker, failing to send to the API gone, writes '--- Error logging to API ---' and its
    error with no newline ('All connection attempts failed'); the watch's line was glued to that error. A line that
    ended leaves no blank line before it either; stderr is as it was after the watch."""
    import sys

    from prefect.client.orchestration import get_client

    before = sys.stderr
    with relay_to(PREFECT_API_URL.value()) as relay, temporary_settings({PREFECT_API_URL: relay.url}):
        relay.up()
        with watching(relay.url, poll_s=0.2), temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 1}), \
                get_client(sync_client=True) as client:
            client.hello()
            relay.down()
            sys.stderr.write("--- Error logging to API ---\nAll connection attempts failed")  # as Prefect does
            with pytest.raises(httpx.ConnectError):
                client.hello()
    assert sys.stderr is before
    lines = capfd.readouterr().err.splitlines()
    assert "All connection attempts failed" in lines, lines
    said = [line for line in lines if "the Prefect API at" in line]
    assert len(said) == 1 and said[0].startswith(f"the Prefect API at {relay.url} does not answer"), lines
    assert "" not in lines, lines


@flow(name="ops54-created-once-the-api-answers", persist_result=False)
def _created(x: int) -> dict[str, int]:
    return {"x": x}


@pytest.mark.timeout(120)
def test_an_api_cut_after_the_start_up_check_and_before_the_run_is_created_is_waited_out(prefect_api, capfd):
    """note53: the API cut right after the start-up check (`wait_for_api`) and back seconds later failed the command
    at once ('RuntimeError: Failed to reach API'): Prefect's client retries a refused connection only once it has
    connected, and the flow engine's client is new. The outage is waited out as one later in the run is (the same
    two lines, up to Prefect's retry window), and the run is created once the API answers."""
    from flowcast.cli.common import call_flow
    from flowcast.ops.reaper import _api_watched, wait_for_api

    with relay_to(PREFECT_API_URL.value()) as relay, temporary_settings({PREFECT_API_URL: relay.url}):
        relay.up()
        with _api_watched():
            wait_for_api(relay.url)  # the start-up check: the API answers
            relay.down()
            back = threading.Timer(5, relay.up)
            back.start()
            try:
                assert call_flow(_created, x=3) == {"x": 3}
            finally:
                back.join()
    _said_outage_and_back(capfd, relay.url)


@pytest.mark.timeout(60)
def test_an_api_still_gone_after_the_retry_window_fails_the_command_before_its_run_is_created(prefect_api, capfd):
    """The wait for a run's creation is bounded as Prefect's client's retries are (PREFECT_CLIENT_MAX_RETRIES: 1, a 2 s
    window here): the API still gone, the command fails with the API's error, its outage said once, and no flow run
    was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    from flowcast.cli.common import call_flow
    from flowcast.ops.reaper import _api_watched, api_unreachable

    with relay_to(PREFECT_API_URL.value()) as relay, temporary_settings({PREFECT_API_URL: relay.url}):
        relay.up()
        with _api_watched(), temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 1}):
            relay.down()
            with pytest.raises(Exception) as failed:
                call_flow(_created, x=4)
    assert api_unreachable(failed.value), failed.value
    said = [line for line in capfd.readouterr().err.splitlines() if line.startswith("the Prefect API at")]
    assert len(said) == 1 and "does not answer" in said[0] and "about 2s" in said[0], said
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["ops54-created-once-the-api-answers"])))
    assert all(r.parameters != {"x": 4} for r in runs), runs


def test_a_command_whose_stderr_is_guarded_keeps_its_stream_and_the_watch_line_starts_a_line(monkeypatch):
    """ops54: the command's guarded stderr (`streams.guard`, every CLI command) tells the watch whether the last text
    ended its line; the watch puts no stream of its own in front of it."""
    import io
    import sys

    from flowcast.ops.api_watch import _stderr
    from flowcast.streams import GuardedStream

    guarded = GuardedStream(io.StringIO())
    monkeypatch.setattr(sys, "stderr", guarded)
    with watching("http://127.0.0.1:9/api", say=lambda _: None):
        assert sys.stderr is guarded
        guarded.write("All connection attempts failed")
        _stderr("the Prefect API at ... does not answer")
        _stderr("the Prefect API at ... answers again")
    assert sys.stderr is guarded
    assert guarded.wrapped.getvalue().splitlines() == [
        "All connection attempts failed", "the Prefect API at ... does not answer", "the Prefect API at ... answers again"]


def test_a_stderr_the_watch_wraps_raises_its_errors_as_it_did(monkeypatch):
    """fixB54: where sys.stderr is not guarded (flowcast as a library, tests), the stream the watch puts there only
    keeps where the last line ended: a closed stderr still raises inside the watch, and is put back after it."""
    import io
    import sys

    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    with watching("http://127.0.0.1:9/api", say=lambda _: None):
        assert sys.stderr is not closed and getattr(sys.stderr, "wrapped", None) is closed
        with pytest.raises(ValueError, match="closed file"):
            print("the Prefect API at ... does not answer", file=sys.stderr)
    assert sys.stderr is closed


def _runs_of(x: int) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["ops54-created-once-the-api-answers"])))
    return [r for r in runs if r.parameters == {"x": x}]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("lost", "x"), [(httpx.ReadError, 5401), (httpx.ReadTimeout, 5402)])
def test_a_run_whose_create_request_reached_the_api_is_not_created_again(prefect_api, monkeypatch, capfd, lost, x):
    """fixB54: any transport error raised as the flow run was being created was retried, and one whose request had
    reached the API (its reply lost: a ReadError, a ReadTimeout) created a second Pending run. Only a connection never
    made is retried; here the error is raised, and the API holds the one run its request created."""
    from prefect.flow_engine import FlowRunEngine

    from flowcast.cli.common import call_flow
    from flowcast.ops.reaper import _api_watched

    create = FlowRunEngine.create_flow_run
    calls: list[int] = []

    def reply_lost(self, client):  # the POST reaches the API and creates the run; its reply is lost
        calls.append(1)
        create(self, client)
        raise lost("the reply to the run's creation was lost")

    monkeypatch.setattr(FlowRunEngine, "create_flow_run", reply_lost)
    with _api_watched(), pytest.raises(lost):
        call_flow(_created, x=x)
    assert len(calls) == 1 and len(_runs_of(x)) == 1, (calls, _runs_of(x))
    assert "the Prefect API at" not in capfd.readouterr().err


@pytest.mark.timeout(60)
def test_a_connection_never_made_to_an_api_that_answers_at_once_is_retried_with_a_line(prefect_api, monkeypatch,
                                                                                        capfd):
    """fixB54: a connection refused as the run was being created, the API answering by the time the watch probes it,
    was retried with nothing said; one line says it, and the run is created once."""
    from prefect.flow_engine import FlowRunEngine

    from flowcast.cli.common import call_flow
    from flowcast.ops.reaper import _api_watched

    create = FlowRunEngine.create_flow_run
    calls: list[int] = []

    def refused_once(self, client):
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("All connection attempts failed")
        return create(self, client)

    monkeypatch.setattr(FlowRunEngine, "create_flow_run", refused_once)
    with _api_watched():
        assert call_flow(_created, x=5403) == {"x": 5403}
    said = [line for line in capfd.readouterr().err.splitlines() if line.startswith("the Prefect API at")]
    assert said == [(f"the Prefect API at {PREFECT_API_URL.value()} did not answer as the run was being created and "
                     "answers now: the run is created again")], said
    assert len(calls) == 2 and len(_runs_of(5403)) == 1


def _said_outage_and_back(capfd, url: str) -> str:
    """stderr so far, asserting it holds exactly the watch's two lines: the outage (a refused connection) and the
    API back."""
    err = capfd.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("the Prefect API at")]
    assert len(said) == 2, err
    assert said[0].startswith(f"the Prefect API at {url} does not answer (ConnectError: ") and said[0].endswith(
        "): the run waits for it (Prefect's client retries for up to about 62s, then the run fails)"), err
    assert said[1] == f"the Prefect API at {url} answers again: the run goes on", err
    return err
