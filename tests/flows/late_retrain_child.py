"""A retrain with overwrite off whose date another run publishes while it computes, in a process of its own so
that a test can SIGKILL it at a fault point (FLOWCAST_FAULT): the other run published before this process started,
and this run's first check (as it starts) is passed as if it had come just before that publish (the race window of
test_retrain_slot's `then_another_run_publishes`); the check under the key's lock in its publish still sees it.

usage: late_retrain_child.py FLOW_KWARGS_JSON [backfill]
(`backfill`: run as a backfill's date runs it, tagged `backfill`: its artifacts under the `backfill-` keys)
Prints the flow's result as one JSON line."""

from __future__ import annotations

import json
import sys

from flowcast.flows import pipeline, retrain_flow


def main() -> None:
    from prefect import tags

    from flowcast.flows.naming import BACKFILL_TAG

    kwargs = json.loads(sys.argv[1])
    pipeline.published_already = lambda settings, as_of: None  # the key was empty when this run started
    with tags(*([BACKFILL_TAG] if sys.argv[2:] == ["backfill"] else [])):
        print(json.dumps(retrain_flow(**kwargs), default=str), flush=True)


if __name__ == "__main__":
    main()
