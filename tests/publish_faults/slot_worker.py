"""Child process for the same-slot race test: one scheduled run of a schedule slot, reduced to what it does with
the store. It checks that the slot's key is empty (as a run with overwrite off does as it starts), waits until
every racer has checked (a file barrier: all of them found it empty), then publishes with `if_absent`, as the
run's publish does.

usage: slot_worker.py STORE BARRIER_DIR WORKER N_WORKERS
Prints one line: `published run-W` or `held run-X` (the run the store named, nothing written) or `checked-held`.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from publisher import make_forecast, store_from_arg

from flowcast.errors import AlreadyPublished

DS = "sales"
AS_OF = datetime(2024, 3, 1)


def main() -> None:
    store_arg, barrier, worker, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    store = store_from_arg(store_arg)
    if store.has(DS, AS_OF):
        print("checked-held", flush=True)
        return
    (barrier / f"checked-{worker}").touch()
    deadline = time.monotonic() + 120
    while len(list(barrier.glob("checked-*"))) < n:  # every racer found the slot empty
        if time.monotonic() > deadline:
            raise SystemExit("the other racers never checked")
        time.sleep(0.01)
    try:
        store.publish(make_forecast(worker + 1, 3, 2, AS_OF), dataset=DS, as_of=AS_OF, model="naive",
                      model_version=f"naive-v{worker}", run_id=f"run-{worker}", created_at=AS_OF + timedelta(hours=1),
                      horizon=2, if_absent=True)
    except AlreadyPublished as held:
        print(f"held {held.held.get('run_id')}", flush=True)
        return
    print(f"published run-{worker}", flush=True)


if __name__ == "__main__":
    main()
