"""A scheduled retrain of one schedule slot in a process of its own, so that a test can SIGKILL it at a fault
point (FLOWCAST_FAULT): the retrain flow with no as_of, its scheduled start time the slot.

usage: slot_retrain_child.py SLOT_ISO FLOW_KWARGS_JSON
Prints the flow's result as one JSON line."""

from __future__ import annotations

import json
import sys
from datetime import datetime

from prefect.runtime import flow_run

from flowcast.flows import retrain_flow


def main() -> None:
    slot, kwargs = datetime.fromisoformat(sys.argv[1]), json.loads(sys.argv[2])
    flow_run.FIELDS["scheduled_start_time"] = lambda: slot
    print(json.dumps(retrain_flow(**kwargs), default=str), flush=True)


if __name__ == "__main__":
    main()
