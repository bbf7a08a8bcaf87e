"""faults51: whether a publish's receipt or plot artifact was left (`reporting.artifact_left`, read by a run completing
an interrupted publish) where the Prefect API cannot be read: said (`ArtifactsUnread`, a warning in the run's log
naming the API), never taken for 'none left' in silence, and quickly (a client of its own: the run's retries a refused
connection for about a minute). The run's publish stands: it leaves the receipt and plot, maybe second ones."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from prefect_server import free_port

from flowcast import reporting
from flowcast.flows.common import _left_before


@pytest.mark.usefixtures("prefect_api")
def test_a_check_the_api_does_not_answer_is_said_in_the_runs_log(caplog):
    from prefect import flow
    from prefect.settings import PREFECT_API_URL, temporary_settings

    dead = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there

    @flow
    def completing() -> tuple[object, object, float]:
        scope = reporting.Scope("tiny", datetime(2019, 7, 1))
        with temporary_settings({PREFECT_API_URL: dead}):
            with pytest.raises(reporting.ArtifactsUnread) as unread:
                reporting.receipt_left(scope, "killed-run", "c0ffee")
            start = time.monotonic()
            left = _left_before("tiny", datetime(2019, 7, 1), "killed-run", "c0ffee")
            took = time.monotonic() - start
        return unread.value, left, took

    unread, left, took = completing()
    assert "'publish-receipt-tiny'" in str(unread) and "127.0.0.1" in str(unread), unread
    # Prefect's own client retries a refused connection for about a minute: a check that waited so is not its own
    assert left == (None, None) and took < 40, took
    said = " ".join(caplog.text.split())
    assert ("Whether run killed-run left the plot and receipt artifacts of its publish of tiny as_of 2019-07-01 "
            "could not be checked: the artifacts under 'publish-receipt-tiny' could not be read") in said, said
    assert "This run leaves them, which may be second ones; the forecasts are published" in said

