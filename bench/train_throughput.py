"""Training throughput on M3 monthly: windows (forecast origins) per second, per cell and mode.

Settings: lookback 36, horizon 18, hidden 128, 2 layers, 1,024 windows per step (windowed and
bare); forking reads whole series (128 series per step, about 10,000 full origins). Modes:
  bare      the same optimisation step (RNNForecaster.shared_step, Adam, grad clip, cosine
            schedule) in a plain PyTorch loop over batches already gathered in memory: the limit
  windowed  flowcast's Lightning training (lazy packed windows, the Trainer from ModelConfig)
  forking   flowcast's forking-sequences mode; counts origins with a full horizon of targets
One JSON line per (cell, mode): {"cell", "mode", "precision", "windows_per_s", ...}.
Usage: python bench/train_throughput.py [--cells rnn,lstm,gru] [--steps 25] [--bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PYTHONWARNINGS", "ignore")

import torch

LOOKBACK, HORIZON, HIDDEN, LAYERS, BATCH = 36, 18, 128, 2, 1024
NEURALFORECAST = {"lstm": 1730, "gru": 2530, "rnn": 7020}


THREADS: int | None = None
FORK_BATCH = 128  # series per forking step (every origin of each: ~10k origins per step on M3 monthly)


def _cfg(**kw):
    from flowcast.config import ModelConfig

    base = {"lookback": LOOKBACK, "hidden_size": HIDDEN, "num_layers": LAYERS, "batch_size": BATCH,
            "launcher": "inline", "accelerator": "cpu", "devices": 1, "early_stopping_patience": None,
            "checkpoint_every": 10_000, "scheduler": "cosine", "val_check_interval": None, "num_threads": THREADS}
    base.update(kw)
    return ModelConfig(**base)


def _timer(warmup: int, counter):
    import lightning as L

    class Timer(L.Callback):
        """Wall time and samples from batch `warmup` to the end of training."""

        def __init__(self):
            self.t0 = None
            self.samples = 0
            self.steps = 0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == warmup:
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if self.t0 is not None:
                self.samples += counter(batch)
                self.steps += 1
                self.t1 = time.perf_counter()  # the last batch's end: validation is not counted

    return Timer()


def _full_origins(batch) -> int:
    m = batch["tmask"]
    return int((m.sum(-1) == m.shape[-1]).sum())


def run_lightning(td, cell: str, mode: str, steps: int, warmup: int, precision: str) -> dict:
    from flowcast.models.train import fit

    batch = FORK_BATCH if mode == "forking" else BATCH
    cfg = _cfg(mode=mode, max_steps=steps + warmup, batch_size=batch, precision=precision)
    timer = _timer(warmup, _full_origins if mode == "forking" else (lambda b: b["x"].shape[0]))
    with tempfile.TemporaryDirectory() as tmp:
        fit(td, cfg, tmp, cell=cell, extra_callbacks=[timer])
    secs = timer.t1 - timer.t0
    return {"windows_per_s": round(timer.samples / secs, 1), "steps": timer.steps, "seconds": round(secs, 2),
            "samples_per_step": round(timer.samples / max(1, timer.steps), 1)}


def run_bare(td, cell: str, steps: int, warmup: int, precision: str) -> dict:
    import lightning as L

    from flowcast.models.train import build_datamodule, build_module

    L.seed_everything(0, verbose=False)
    cfg = _cfg(mode="windowed", max_steps=steps + warmup)
    module, stats = build_module(td, cfg, cell)
    dm = build_datamodule(td, cfg, module, stats)
    g = torch.Generator().manual_seed(0)
    batches = [dm.train_ds.__getitems__(torch.randint(len(dm.train_ds), (BATCH,), generator=g).tolist())
               for _ in range(8)]  # in memory before the clock starts
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    module.train()
    t0 = None
    for i in range(steps + warmup):
        if i == warmup:
            t0 = time.perf_counter()
        b = batches[i % len(batches)]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision.startswith("bf16")):
            loss = module.shared_step(b, every_step=False)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
    secs = time.perf_counter() - t0
    return {"windows_per_s": round(steps * BATCH / secs, 1), "steps": steps, "seconds": round(secs, 2),
            "samples_per_step": BATCH}


def m3_monthly():
    from accuracy_members import m3_training_data

    td, _ = m3_training_data("m3-monthly", lookback=LOOKBACK, log1p=True, val_size=0)
    return td


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--modes", default="bare,windowed,forking")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--bf16", action="store_true", help="also measure bf16-mixed (autocast on CPU)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--fork-batch", type=int, default=128, help="series per forking step")
    a = ap.parse_args(argv)
    global THREADS, FORK_BATCH
    THREADS, FORK_BATCH = a.threads, a.fork_batch
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    td = m3_monthly()
    precisions = ["32-true", "bf16-mixed"] if a.bf16 else ["32-true"]
    for cell in a.cells.split(","):
        for precision in precisions:
            for mode in a.modes.split(","):
                if mode == "bare":
                    r = run_bare(td, cell, a.steps, a.warmup, precision)
                else:
                    r = run_lightning(td, cell, mode, a.steps, a.warmup, precision)
                line = {"bench": "train_throughput", "cell": cell, "mode": mode, "precision": precision, **r,
                        "lookback": LOOKBACK, "horizon": HORIZON, "hidden": HIDDEN, "layers": LAYERS,
                        "threads": torch.get_num_threads(), "neuralforecast_windows_per_s": NEURALFORECAST[cell]}
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
