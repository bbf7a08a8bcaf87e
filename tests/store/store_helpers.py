"""Helpers of the store tests (fixtures in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

PUBLISHER = Path(__file__).resolve().parents[1] / "publish_faults" / "publisher.py"
AS_OF = datetime(2024, 3, 1)
OTHER = datetime(2024, 2, 1)
H = 6
N = 50
DS = "sales"


def publish(store, fc, as_of=AS_OF, variant=1, run_id=None, dataset=DS, **kw):
    return store.publish(fc, dataset=dataset, as_of=as_of, model="lstm", model_version=f"lstm-v{variant}",
                         run_id=run_id or f"run-{variant}", created_at=as_of + timedelta(hours=1), **kw)


def variant_of(frame: pl.DataFrame) -> set[int]:
    """Which publish(es) a frame holds (make_forecast encodes the variant in y_hat // 1e6)."""
    return set((frame["y_hat"] // 1_000_000).cast(pl.Int64).unique().to_list())


def child(spec: str, as_of: datetime, variant: int, n: int, fault: str | None = None, *extra: str,
          dataset: str = DS, horizon: int = H) -> subprocess.Popen:
    """tests/publish_faults/publisher.py in its own process (FLOWCAST_FAULT=fault when given)."""
    env = {k: v for k, v in os.environ.items() if k != "FLOWCAST_FAULT"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                         env.get("PYTHONPATH", "")])
    if fault:
        env["FLOWCAST_FAULT"] = fault
    return subprocess.Popen([sys.executable, str(PUBLISHER), spec, dataset, as_of.isoformat(), str(variant), str(n),
                             str(horizon), *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
