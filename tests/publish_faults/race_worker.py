"""Child process for the publish race test: a worker that retrains and publishes one as_of, again and again.

usage: race_worker.py MODELS_DIR STORE WORKER ROUNDS
Each round reads the production model of dataset `sales`, decides (every other round it registers
and promotes a new statistical version, compare and swap on what it read; otherwise it keeps
production), then publishes a forecast naming the version it decided on, under
`ModelRegistry.publishing` (only while production is still that version). Prints one line a round:
`published VERSION`, `lost-promotion` or `moved`. STORE is what publisher.py takes (a folder or a
JSON [store] section).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

from publisher import make_forecast, store_from_arg

from flowcast.errors import ProductionMovedError
from flowcast.registry import ModelRegistry, Promotion

DS = "sales"
AS_OF = datetime(2024, 3, 1)


def main() -> None:
    models, store_arg, worker, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    reg, store = ModelRegistry(models), store_from_arg(store_arg)
    for r in range(rounds):
        now = reg.production(DS)
        started = now.version if now is not None else None
        decided = started
        if started is None or (worker + r) % 2 == 0:
            try:
                decided = reg.register(None, name=f"w{worker}", dataset=DS, kind="statistical",
                                       recipe={"components": [{"type": "statistical", "model": "naive"}]},
                                       created_at=datetime(2024, 1, 1),
                                       then=Promotion("promote", expected=started, reason=f"worker {worker}")).version
            except ProductionMovedError:
                print("lost-promotion", flush=True)
                continue
        variant = worker * 100 + r
        try:
            with reg.publishing(DS, decided):
                store.publish(make_forecast(variant, 3, 2, AS_OF), dataset=DS, as_of=AS_OF, model=f"w{worker}",
                              model_version=decided, run_id=f"run-{variant}", created_at=AS_OF + timedelta(hours=1),
                              horizon=2)
        except ProductionMovedError:
            print("moved", flush=True)
            continue
        print(f"published {decided}", flush=True)


if __name__ == "__main__":
    main()
