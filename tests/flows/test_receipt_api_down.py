"""`flowcast forecast` whose Prefect API goes away between its publish's plot and its receipt (ops52): the receipt is
an artifact the run leaves through its own client, and this moment was untested. Real processes under the session's
Prefect API, reached through a relay the test closes (the API gone: every connection refused) while the run is
stopped there (FLOWCAST_FAULT=publish:before_receipt with SIGSTOP), then goes on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from api_relay import relay_to
from proc_state import stopped
from test_publish_completed_after_kill import AS_OF, PLOT_KEY, _args, _cfg, _flowcast, _home, _receipts

from flowcast.flows.common import completed_sentence
from flowcast.ops.quiet import fingerprint_path
from flowcast.store import EmbeddedStore


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.timeout(900)
def test_a_receipt_the_api_is_gone_for_is_left_once_by_the_rerun_and_the_error_says_so(tmp_path: Path) -> None:
    """The forecasts are published once (the run's rows alone in the store), the run fails (exit 1) saying they are
    published and that its receipt and event were not left, which the same command run again leaves: one receipt,
    no second plot artifact or publish; a third run leaves nothing again. The error named the publish, not the receipt
    the run never left, and its log never said the forecasts were published."""
    from prefect.settings import PREFECT_API_URL

    cfg = _cfg(tmp_path)
    home = _home(tmp_path, cfg, "home")
    plots, receipts = [a.id for a in _receipts(PLOT_KEY)], [a.id for a in _receipts()]
    with relay_to(str(PREFECT_API_URL.value())) as relay:
        relay.up()
        args, env = _args("forecast", cfg, home, AS_OF, fault="publish:before_receipt", signal_name="SIGSTOP")
        # (Prefect's client retries a refused connection about a minute, each call: once is enough here)
        env.update(PREFECT_API_URL=relay.url, PREFECT_CLIENT_MAX_RETRIES="1")
        first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert stopped(first, timeout=400), first.communicate()
            relay.down()
        finally:
            os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=600)
    assert first.returncode == 1 and json.loads(out.strip().splitlines()[-1])["status"] == "failed", out[-3000:]
    store = EmbeddedStore(home / "warehouse")
    stored = store.read(dataset="tiny", as_of=AS_OF)
    [published] = set(stored["run_id"])
    said = " ".join(err.split())
    assert (f"its forecasts of tiny as_of 2019-07-01 were published before the API went away (flow run {published}): "
            "they are whole, and the same command run again publishes them once; the API went away before that run "
            "left their receipt artifact and published event (its plot may be left): the same command run again "
            "leaves them, once") in said, err[-3000:]
    # ops53: the terminal said nothing while Prefect's client retried the gone API; one line says it (flowcast.ops.api_watch)
    assert (f"the Prefect API at {relay.url} does not answer (ConnectError: " in err
            and "the run waits for it (Prefect's client retries for up to about 2s, then the run fails)" in err), err[-3000:]
    assert [a for a in _receipts() if a.id not in receipts] == []  # the API was gone: no receipt
    [plot] = [a for a in _receipts(PLOT_KEY) if a.id not in plots]
    assert json.loads(fingerprint_path(home, "tiny", AS_OF).read_text())["saying"] == published

    rerun = _flowcast("forecast", cfg, home, AS_OF)
    assert rerun["published_rows"] == 0 and rerun["published_by"] == published, rerun
    assert completed_sentence(published, recorded=True, plot_by=published) in rerun["note"], rerun["note"]
    assert store.read(dataset="tiny", as_of=AS_OF).equals(stored)  # one publish, not a second
    [receipt] = [a for a in _receipts() if a.id not in receipts]
    assert store.receipt_of("tiny", AS_OF)["content_hash"] in str(receipt.data)
    assert [a.id for a in _receipts(PLOT_KEY) if a.id not in plots] == [plot.id]  # no second plot artifact
    assert "saying" not in json.loads(fingerprint_path(home, "tiny", AS_OF).read_text())

    again = _flowcast("forecast", cfg, home, AS_OF)  # done now: nothing left again
    assert again["published_by"] == published and "completes an interrupted publish" not in again["note"]
    assert [a.id for a in _receipts() if a.id not in receipts] == [receipt.id]
