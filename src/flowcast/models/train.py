"""Training: the Lightning Trainer built from `ModelConfig`, launched in its own process.

`train_model` is what flows and the CLI call. With `cfg.launcher == "process"` it saves the
TrainingData to the run directory and starts `python -m flowcast.models.train_entry` (one
device) or `python -m torch.distributed.run --standalone --nproc_per_node=N -m
flowcast.models.train_entry` (N devices, DDP): Lightning's own `ddp` launcher would re-execute
sys.argv, which under Prefect re-runs the flow. With `[distributed] launcher = "rendezvous"`
this machine is node 0 of `nnodes`: the job is posted for the other nodes and torchrun meets
them at the rendezvous (flowcast.models.nodes). Rank 0 appends progress as JSON lines to a file
that this process tails and hands to `on_progress`. With `launcher == "inline"` the same `fit`
runs in this process.

Run directory layout (`out_dir`): `checkpoints/last.ckpt` (every `checkpoint_every` steps, for
`resume`), `checkpoints/best.ckpt` (lowest val_loss), `model.ckpt` (the chosen weights),
`meta.json` (cell, hparams, data fingerprint, metrics), `logs/` (CSVLogger), `progress.jsonl`.
Every checkpoint write is atomic (temp file, fsync, rename): a crash while saving leaves the
previous checkpoint intact.

With `mirror` (a folder or fsspec URL in the shared home) the run's checkpoints are copied there
as training goes (launcher process: each new `last.ckpt`, whole, after the progress event that
follows it; inline: at the end) and the finished run (`model.ckpt`, `meta.json`, checkpoints)
at the end, so that `resume` on another machine continues from the last checkpoint copied.

**A run killed while it trained.** Each training writes `training.json` first: its key, a digest
of everything the network's weights depend on (the training data's every frame and its meta,
the model settings, the cell, and the polars, torch and Lightning versions: `training_key`).
`resumable(runs, key)` finds, among the run folders under `runs` (`<home>/runs`), a training of
that key that never finished (no `model.ckpt`) and whose `checkpoints/last.ckpt` loads; the
retrain flow copies its checkpoints into its own run folder and resumes from them, so re-running
`flowcast run` for the same as_of after a kill continues where the killed run stopped instead of
training from scratch. A training that finished is never reused (a re-run trains again), one
whose key differs in anything (another as_of, new rows, other settings) is never resumed, and a
damaged checkpoint is passed over (`resumable(..., unreadable=)` hands it back with the loader's error; the
flows warn `restarted from scratch: checkpoint <path> unreadable (<error>)` and set it aside, once: `set_aside`
renames it `last.ckpt.unreadable`, kept for inspection, which no later run loads or warns about again). A resumed network is not bit-identical to an uninterrupted one
(the random order of the training windows after the checkpoint is drawn anew), as with `flowcast
train --resume`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, cast

from flowcast.atomic import FULL_DISK_MARKS, atomic_copy, atomic_file, atomic_write_text, fsync_dir
from flowcast.config import DistributedConfig, ModelConfig
from flowcast.errors import ModelFileError, StorageError, TrainingError, TrainingStoppedError
from flowcast.mdtext import id_text

if TYPE_CHECKING:
    from flowcast.data.training_data import TrainingData

Progress = Callable[[dict], None]


@dataclass
class ModelArtifact:
    path: Path  # run directory: model.ckpt, checkpoints/, meta.json
    cell: str
    hparams: dict
    metrics: dict  # val_loss, train_seconds, steps, ...
    meta: dict = field(default_factory=dict)
    # how `flows.tasks.train_task` started it when a killed run's training of the same key was there, one sentence
    # for the run's notes ('gru backtest resumed from step 40 of 600 of a killed run's training (<folder>).', or
    # restarted from scratch, its checkpoint unreadable); '' otherwise (ckpt33: the run's summary said neither)
    start_note: str = ""

    @property
    def checkpoint(self) -> Path:
        return self.path / "model.ckpt"

    @classmethod
    def load(cls, path: str | Path) -> ModelArtifact:
        path = Path(path)
        meta_file = path / "meta.json"
        if not meta_file.exists():
            raise ModelFileError(f"no trained model at {path} (meta.json missing)")
        try:
            meta = json.loads(meta_file.read_text())
            found = cls(path=path, cell=meta["cell"], hparams=meta["hparams"], metrics=meta["metrics"], meta=meta)
        except (OSError, ValueError, KeyError, TypeError) as exc:  # cut short or overwritten: name the file
            raise ModelFileError(f"the model file {meta_file} cannot be read ({type(exc).__name__}: {exc}): it is "
                                 "damaged or cut short") from exc
        if not (path / "model.ckpt").exists():
            raise ModelFileError(f"model at {path} has meta.json but no model.ckpt ({path / 'model.ckpt'} is missing)")
        return found


# ---------------------------------------------------------------------------- Trainer pieces


def resolve_accelerator(cfg: ModelConfig) -> str:
    if cfg.accelerator != "auto":
        return cfg.accelerator
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def resolve_devices(cfg: ModelConfig) -> int:
    """Number of processes to launch: an int, or "auto" = every GPU (1 on CPU)."""
    if cfg.devices != "auto":
        return int(cfg.devices)
    if resolve_accelerator(cfg) == "gpu":
        import torch

        return max(1, torch.cuda.device_count())
    return 1


def resolve_precision(cfg: ModelConfig, accelerator: str) -> str:
    if cfg.precision:
        return cfg.precision
    return "bf16-mixed" if accelerator == "gpu" else "32-true"


class CheckpointWrite:
    """One training's stop on a signal: SIGTERM or SIGINT ends it with exit 128 + N, so that the launcher tells a
    training stopped from outside from a failed one (`_stopped_by`); a signal that comes while a checkpoint is being
    written (`checkpoint`) is held until the checkpoint is whole, then stops it (`stop_deferred`).

    `with CheckpointWrite() as stop:` installs its handlers and, on exit (normal or by an exception), puts back the
    handlers it found and drops a stop still held; `fit(..., stop=stop)` writes its checkpoints under it
    (train_entry). Lightning turns a SIGTERM into a SystemExit without a code (exit 0, without a model), and a SIGINT
    into exit 1; it calls the handler found here after its own, and the SystemExit raised ends the fit (the last
    checkpoint is intact: every checkpoint is written to a temp file and renamed).

    Why the hold: the SystemExit, raised inside torch.save, left its zip writer half done, and the RuntimeError its
    exit then raised ('unexpected pos 25984 vs 25876') replaced it: a training stopped by a SIGTERM as it wrote a
    checkpoint exited 1, a TrainingError (the candidate's fault) instead of a TrainingStoppedError (session 38, CI).
    Why one per training: as process-wide class state, a stop held (or the handlers installed) by one training
    outlived it, and the next training in the same process (a test's, an in-process candidate's) stopped at its
    first checkpoint (c2174ea: 10 failures in one pytest worker)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.writing = False
        self.pending: int | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> Self:
        self._previous = {sig: signal.getsignal(sig) for sig in self.SIGNALS}
        try:
            for sig in self.SIGNALS:
                signal.signal(sig, self._stop)
        except BaseException:  # (not the main thread: ValueError) nothing is left installed
            self._restore()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():  # (None: a handler not set from Python, which cannot be put back)
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        self._previous = {}
        self.writing, self.pending = False, None

    def _stop(self, signum: int, _frame: object) -> None:
        if not self.stop_deferred(signum):
            raise SystemExit(128 + signum)

    def stop_deferred(self, signum: int) -> bool:
        """True where a checkpoint is being written: the stop (128 + signum) comes once it is whole."""
        if self.writing:
            self.pending = signum
        return self.writing

    @contextmanager
    def checkpoint(self) -> Iterator[None]:
        """A checkpoint being written: a stop signal that comes meanwhile is raised once the write has ended (said
        once: a training that lives on, caught, writes its next checkpoints as ever). A write that failed (a full
        disk) keeps its error as the reason, which names the stop: raised over it, the stop said 'stopped from
        outside, a re-run resumes' and nobody learnt that the disk was full (ckpt40)."""
        self.writing = True
        try:
            yield
        except BaseException as exc:  # (any: none leaves `writing` set)
            signum = self._end_write()
            if signum is not None:
                exc.add_note(f"{signal.Signals(signum).name} came while this checkpoint was written: the training "
                             "stops on the write's error")
            raise
        if (signum := self._end_write()) is not None:
            raise SystemExit(128 + signum)

    def _end_write(self) -> int | None:
        """The write has ended (whole or not): the stop held meanwhile, dropped from here."""
        self.writing = False
        signum, self.pending = self.pending, None
        return signum


def _atomic_checkpoint_io(stop: CheckpointWrite):
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        """torch.save to a temp file in the same directory, fsync, then rename over the target; a stop signal that
        comes meanwhile ends the training once the checkpoint is whole (`stop`, the training's `CheckpointWrite`)."""

        def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
            import torch

            with stop.checkpoint(), atomic_file(path) as fh:
                torch.save(checkpoint, fh)

    return AtomicCheckpointIO()


PROGRESS_EVERY_SECONDS = 5.0  # a progress event at least this often while training
PROGRESS_UPDATES = 20  # and about this many over a run (every max_steps / 20 steps)


def progress_due(step: int, elapsed: float, last_step: int, last_elapsed: float, *, max_steps: int,
                 every_seconds: float = PROGRESS_EVERY_SECONDS) -> bool:
    """Whether training should report progress now: every max_steps/PROGRESS_UPDATES steps or
    every `every_seconds`, whichever comes first (never twice for one step)."""
    if step <= last_step:
        return False
    every_steps = max(1, max_steps // PROGRESS_UPDATES) if max_steps > 0 else 50
    return step - max(last_step, 0) >= every_steps or elapsed - last_elapsed >= every_seconds


def _progress_callback(fn: Progress, max_steps: int, every_seconds: float = PROGRESS_EVERY_SECONDS):
    import lightning as L

    class ProgressReporter(L.Callback):
        """Rank 0 reports {epoch, step, max_steps, elapsed, train_loss, val_loss} during training
        (every few steps or seconds, `progress_due`), after each validation and at the end."""

        last_step = -1
        last_elapsed = 0.0
        t0: float | None = None

        def _elapsed(self) -> float:
            return time.perf_counter() - self.t0 if self.t0 is not None else 0.0

        def _emit(self, trainer) -> None:
            if trainer.global_rank != 0 or trainer.sanity_checking or trainer.global_step == self.last_step:
                return
            self.last_step = trainer.global_step
            self.last_elapsed = self._elapsed()
            m = trainer.callback_metrics
            get = lambda k: float(m[k]) if k in m else None
            fn({"epoch": trainer.current_epoch, "step": trainer.global_step, "max_steps": max_steps,
                "elapsed": round(self.last_elapsed, 2), "train_loss": get("train_loss"), "val_loss": get("val_loss")})

        def on_train_start(self, trainer, pl_module) -> None:
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if trainer.global_rank == 0 and progress_due(trainer.global_step, self._elapsed(), self.last_step,
                                                         self.last_elapsed, max_steps=max_steps,
                                                         every_seconds=every_seconds):
                self._emit(trainer)

        def on_validation_end(self, trainer, pl_module) -> None:
            self._emit(trainer)

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self._emit(trainer)

        def on_train_end(self, trainer, pl_module) -> None:
            self._emit(trainer)

    return ProgressReporter()


def network_data(td: TrainingData) -> TrainingData:
    """The series a network trains on: those of at least `td.meta.min_length` periods (the shorter
    ones are forecast by statistical models, `TrainingData.marks`). Raises TrainingError when none is."""
    if not td.meta.min_length:
        return td
    sub = td.network_subset()
    if sub.n_series == 0:
        longest = int(cast(int, td.lengths()["length"].max() or 0))
        raise TrainingError(f"no series is long enough for a network: they need {td.meta.min_length} periods "
                            f"(lookback {td.meta.lookback} + horizon {td.meta.horizon} + val_size "
                            f"{td.meta.val_size}, or horizon + val_size + 1 with short_series='pad'), the longest "
                            f"of the {td.n_series} has {longest}")
    return sub


def build_module(td: TrainingData, cfg: ModelConfig, cell: str):
    from flowcast.models.rnn import RNNForecaster, cell_mode
    from flowcast.models.windows import fit_cov_stats

    meta = td.meta
    stats = fit_cov_stats(td)
    mode = cell_mode(cfg.mode, cell)  # the mlp cell trains windowed whatever model.mode says
    fork_length = cfg.fork_length
    if mode == "forking" and fork_length is None:
        longest = int(cast(int, td.lengths()["length"].max()) or 1) - meta.val_size
        fork_length = max(longest, meta.lookback, 2)
    data = {
        "future_cols": list(meta.future_cols), "past_cols": list(meta.past_cols),
        "static_cols": list(meta.static_cols), "freq": meta.freq, "cov_stats": stats.as_dict(),
        "window_short": cfg.window_short,
        "scaler": meta.scaler, "log1p": bool(meta.log1p),  # the target's scaling its inputs had (predict repeats it)
    }
    module = RNNForecaster(
        cell=cell, n_past=len(meta.past_cols), n_future=len(meta.future_cols), n_static=len(meta.static_cols),
        lookback=cfg.lookback, horizon=meta.horizon, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
        dropout=cfg.dropout, mode=mode, fork_length=fork_length, loss=cfg.loss, quantiles=list(cfg.quantiles),
        optimizer=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, scheduler=cfg.scheduler,
        max_steps=cfg.max_steps, data=data,
        # the direct per-step path on the declared future covariates only (calendar features keep theirs)
        future_skip=len(meta.declared_future_cols),
    )
    return module, stats


def start_from(module: Any, ckpt: Path, cell: str) -> None:
    """Load the weights of the network checkpoint `ckpt` into `module` (model.init_from)."""
    import torch

    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    except (OSError, KeyError, RuntimeError, EOFError) as exc:
        raise TrainingError(f"cannot start {cell} from {ckpt}: not a readable network checkpoint ({exc})") from exc
    own = module.state_dict()
    if any(k.startswith("fut_skip.") for k in own) and not any(k.startswith("fut_skip.") for k in state):
        # a network saved before the direct future-covariate path: it starts as that network (the path at 0)
        state = {**state, **{k: torch.zeros_like(v) for k, v in own.items() if k.startswith("fut_skip.")}}
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise TrainingError(f"cannot start {cell} from {ckpt}: its weights do not fit this network (another cell, "
                            f"hidden_size, num_layers or covariates?): {str(exc).splitlines()[0]}") from exc


def trainer_epochs(cfg: ModelConfig) -> int | None:
    """The Trainer's max_epochs: model.max_epochs; else unbounded (-1) under a step limit, else None (Lightning's
    default, 1000 epochs)."""
    return cfg.max_epochs if cfg.max_epochs is not None else (-1 if cfg.max_steps > 0 else None)


def build_datamodule(td: TrainingData, cfg: ModelConfig, module, stats):
    from flowcast.models.windows import WindowDataModule, pack

    packed = pack(td, stats)
    mode = module.hparams.mode  # the cell's own (flowcast.models.rnn.cell_mode)
    return WindowDataModule(
        packed, lookback=module.eval_lookback, horizon=td.meta.horizon,
        val_size=td.meta.val_size, mode=mode, batch_size=cfg.batch_size, samples_per_epoch=cfg.samples_per_epoch,
        short=cfg.window_short, fork_length=module.hparams.fork_length, seed=cfg.seed, num_workers=cfg.num_workers,
        pin_memory=cfg.pin_memory,
    )


LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's INFO lines at WARNING while flowcast trains: 'GPU available: False, used: False',
    'TPU available', the litlogger tip, '`Trainer.fit` stopped: `max_steps=5` reached', '`weights_only`
    was not set, defaulting to `False`' (twice each under Prefect, which also logs them) say nothing a
    user acts on, and a `flowcast tune` (whose trials train in the flow's process) printed seven per
    trial. Its warnings and errors still show."""
    import logging
    import warnings

    import lightning.pytorch  # noqa: F401  (its first import sets these loggers to INFO)

    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        if lg.getEffectiveLevel() < logging.WARNING:
            lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # what Lightning's own code is told by torch ('`isinstance(treespec, LeafSpec)` is deprecated',
            # a FutureWarning raised in lightning/pytorch/utilities/_pytree.py) is for its developers
            for category in (FutureWarning, DeprecationWarning):
                warnings.filterwarnings("ignore", category=category, module=r"lightning\.")
            yield
    finally:
        for lg, level in zip(loggers, saved, strict=True):
            lg.setLevel(level)


def fit(
    td: TrainingData, cfg: ModelConfig, out_dir: str | Path, *, cell: str, resume: bool = False,
    on_progress: Progress | None = None, devices: int | None = None, num_nodes: int = 1,
    extra_callbacks: list | None = None, stop: CheckpointWrite | None = None,
) -> ModelArtifact | None:
    """Train in this process (one rank of a torchrun job, or alone). Rank 0 writes the artifact
    and returns it; other ranks return None. Lightning's INFO chatter is quieted (`quiet_lightning`).
    `stop`: the training's stop on a signal, installed by the caller (train_entry), which holds a signal that comes
    while a checkpoint is written until it is whole; without it, a `CheckpointWrite` of this training's own that
    installs no handler."""
    with quiet_lightning():
        return _fit(td, cfg, out_dir, cell=cell, resume=resume, on_progress=on_progress, devices=devices,
                    num_nodes=num_nodes, extra_callbacks=extra_callbacks, stop=stop or CheckpointWrite())


def _fit(
    td: TrainingData, cfg: ModelConfig, out_dir: str | Path, *, cell: str, resume: bool,
    on_progress: Progress | None, devices: int | None, num_nodes: int, extra_callbacks: list | None,
    stop: CheckpointWrite,
) -> ModelArtifact | None:
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, RichProgressBar
    from lightning.pytorch.loggers import CSVLogger

    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    accelerator = resolve_accelerator(cfg)
    devices = devices or resolve_devices(cfg)
    world = devices * num_nodes
    if accelerator == "cpu":  # don't oversubscribe the cores: split them over the local ranks
        torch.set_num_threads(cfg.num_threads or max(1, (os.cpu_count() or 1) // devices))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    td = network_data(td)
    module, stats = build_module(td, cfg, cell)
    if cfg.init_from:  # a resumed training then restores its own checkpoint over these weights
        start_from(module, Path(cfg.init_from), cell)
    dm = build_datamodule(td, cfg, module, stats)
    has_val = dm.val_ds is not None and len(dm.val_ds) > 0

    callbacks: list[Any] = [
        ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1,
                        every_n_train_steps=cfg.checkpoint_every, enable_version_counter=False),
    ]
    if has_val:
        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val_loss", mode="min",
                                         save_top_k=1, enable_version_counter=False, save_on_train_epoch_end=False))
        if cfg.early_stopping_patience:
            callbacks.append(EarlyStopping(monitor="val_loss", patience=cfg.early_stopping_patience, mode="min",
                                           check_on_train_epoch_end=False))
    if on_progress is not None:
        callbacks.append(_progress_callback(on_progress, cfg.max_steps))
    callbacks.extend(extra_callbacks or [])
    show_bar = sys.stderr.isatty()
    if show_bar:
        callbacks.append(RichProgressBar())
    # validation cadence in global steps: each epoch but not more often than every 20 steps,
    # spread so that the last validation falls on the last step (a short run still validates)
    per_epoch = math.ceil((cfg.samples_per_epoch or len(dm.train_ds)) / max(1, cfg.batch_size * world))
    val_every = cfg.val_check_interval or max(per_epoch, 20)
    if cfg.max_steps > 0:
        val_every = min(val_every, cfg.max_steps)
        val_every = math.ceil(cfg.max_steps / math.ceil(cfg.max_steps / val_every))
    strategy = cfg.strategy
    if strategy == "auto" and world > 1:
        strategy = "ddp"
    trainer = L.Trainer(
        accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
        precision=cast(Any, resolve_precision(cfg, accelerator)), max_steps=cfg.max_steps,
        max_epochs=trainer_epochs(cfg),
        val_check_interval=val_every if has_val else None, check_val_every_n_epoch=None if has_val else 1,
        gradient_clip_val=cfg.grad_clip, callbacks=callbacks, logger=CSVLogger(out_dir, name="logs", version=0),
        enable_progress_bar=show_bar, enable_model_summary=False, use_distributed_sampler=False,
        log_every_n_steps=max(1, min(10, per_epoch)),  # not more than an epoch's batches: Lightning warns then
        plugins=[_atomic_checkpoint_io(stop)], default_root_dir=out_dir, num_sanity_val_steps=0,
        limit_val_batches=1.0 if has_val else 0,
    )
    ckpt_path = ckpt_dir / "last.ckpt"
    t0 = time.perf_counter()
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt_path) if resume and ckpt_path.exists() else None)
    except ValueError as exc:
        raise TrainingError(f"training {cell} failed: {exc}") from exc
    seconds = time.perf_counter() - t0
    # the final `last` checkpoint: resume after a completed run is a no-op
    trainer.save_checkpoint(ckpt_path)
    if trainer.global_rank != 0:
        return None
    best = ckpt_dir / "best.ckpt"
    chosen = best if has_val and best.exists() else ckpt_path
    val_loss = None
    for cb in callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.monitor == "val_loss" and cb.best_model_score is not None:
            val_loss = float(cb.best_model_score)
    train_loss = trainer.callback_metrics.get("train_loss")
    if not torch.isfinite(torch.tensor(float(train_loss) if train_loss is not None else 0.0)):
        raise TrainingError(diverged_message(cell, float(cast(torch.Tensor, train_loss)), td))
    atomic_copy(chosen, out_dir / "model.ckpt")
    metrics = {"val_loss": val_loss, "train_loss": float(train_loss) if train_loss is not None else None,
               "train_seconds": seconds, "steps": int(trainer.global_step), "epochs": int(trainer.current_epoch),
               "world_size": world, "accelerator": accelerator}
    meta: dict[str, Any] = {"cell": cell, "hparams": _jsonable(dict(module.hparams)), "metrics": metrics,
                            "train_seconds": seconds,
            "fingerprint": td.meta.fingerprint, "as_of": td.meta.as_of, "source": td.meta.source,
            "horizon": td.meta.horizon, "freq": td.meta.freq, "checkpoint": "model.ckpt", "config": cfg.model_dump(),
            "network_min_length": int(td.meta.min_length), "n_series": td.n_series}
    atomic_write_text(out_dir / "meta.json", json.dumps(meta, indent=2, default=str))
    return ModelArtifact(path=out_dir, cell=cell, hparams=meta["hparams"], metrics=metrics, meta=meta)


def extreme_series(td: TrainingData, n: int = 3) -> list[tuple[str, float, float]]:
    """The `n` series with the largest |scaled y| (a non-finite scaled value counts as infinite):
    (unique_id, largest |scaled y|, largest |y|), the most extreme first."""
    import polars as pl

    scaled = td.scale(td.frame.select("unique_id", "y")).get_column("y")
    per = pl.DataFrame({"unique_id": td.frame.get_column("unique_id"), "z": scaled, "y": td.frame.get_column("y")})
    return [
        (str(u), float(z), float(y)) for u, z, y in per.group_by("unique_id").agg(
            pl.when(pl.col("z").is_finite()).then(pl.col("z").abs()).otherwise(float("inf")).max().alias("z"),
            pl.col("y").abs().max().alias("y"),
        ).sort("z", "unique_id", descending=[True, False], nulls_last=True).head(n).iter_rows()
    ]


def diverged_message(cell: str, train_loss: float, td: TrainingData) -> str:
    """What a diverged training says: the loss, and the series with the most extreme scaled values
    (a gross outlier or entry error in one series is the usual cause)."""
    shown = ", ".join(f"{id_text(u)} (|scaled y| up to {z:.3g}, |y| up to {y:.3g})" for u, z, y in extreme_series(td))
    return (f"training {cell} diverged: train_loss={train_loss}; the series with the most extreme scaled values: "
            f"{shown}: check them for outliers or entry errors (declare y_min/y_max to quarantine such values)")


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


# ---------------------------------------------------------------------------- launcher


def launch_command(n_devices: int, args: list[str]) -> list[str]:
    """The command that trains in its own process: torchrun for several devices."""
    if n_devices > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n_devices}",
                "-m", "flowcast.models.train_entry", *args]
    return [sys.executable, "-m", "flowcast.models.train_entry", *args]


def _full_disk(log_tail: str) -> str | None:
    """Why a training process could not write its files, from its log (a full disk, a file-size
    limit), or None."""
    if any(m in log_tail.lower() for m in FULL_DISK_MARKS):
        return "no space left on device (the disk is full)"
    if any(m in log_tail for m in ("File too large", "[Errno 27]")):
        return "file too large (a file-size limit)"
    return None


CANNOT_WRITE_EXIT = 74  # EX_IOERR: the training process stopped on a write it could not make (train_entry)
_NOT_WRITTEN = ("no space left on device or a file-size limit (the training process stopped on a write it could "
                "not make; its log may be empty: it is on the same disk)")


def _stopped_by(rc: int, log_tail: str = "") -> str | None:
    """The signal from outside (SIGKILL, SIGTERM, SIGINT, SIGHUP) that stopped a training process, or
    None when it exited by itself or crashed (SIGSEGV, SIGABRT: the training's own failure). From its
    exit code (-N: killed by signal N; 128 + N: train_entry's exit on SIGTERM or SIGINT) or, under
    torchrun (which exits 1 whatever happened), from its log: its agent's 'SignalException: Process
    N got signal: 15', a rank's 'Signal 9 (SIGKILL) received by PID N' or 'exitcode : 143'; and a
    log ending in an uncaught KeyboardInterrupt (exit 1: 'Could not import runpy module')."""
    import re

    outside = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    found = [-rc if rc < 0 else rc - 128]
    # torchrun's summary lists the other ranks' failures before its 'Root Cause (first observed failure)': a rank
    # SIGKILLed, the agent SIGTERMs the rest, and on a loaded machine they are listed first (CI 54: 'stopped by
    # SIGTERM' for a rank sent SIGKILL). The root cause is read first, then the whole tail.
    root = log_tail.rfind("Root Cause")
    for text in ((log_tail[root:],) if root >= 0 else ()) + (log_tail,):
        for pattern in (r"SignalException: Process \d+ got signal: (\d+)", r"Signal (\d+) \(SIG\w+\) received by PID",
                        r"exitcode\s*:\s*(?:-(\d+)|1(?:30|43)\b)"):
            for m in re.finditer(pattern, text):
                found.append(int(m.group(1)) if m.group(1) else int(m.group(0)[-3:]) - 128)
    lines = log_tail.strip().splitlines()
    if lines and lines[-1].strip() == "KeyboardInterrupt":  # SIGINT while Python started, before train_entry ran
        found.append(signal.SIGINT)
    for n in found:
        if n in outside:
            return signal.Signals(n).name
    return None


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


KEY_FILE = "training.json"


def training_key(td: TrainingData, cfg: ModelConfig, cell: str) -> str:
    """A digest of what a training's weights depend on (module doc): equal keys, same training."""
    import hashlib
    from dataclasses import asdict

    import lightning
    import polars as pl
    import torch

    h = hashlib.sha256()
    h.update(json.dumps({"cell": cell, "config": cfg.model_dump(mode="json"), "meta": asdict(td.meta),
                         "versions": [pl.__version__, torch.__version__, lightning.__version__]},
                        sort_keys=True, default=str).encode())
    _hash_frames(h, td)
    return h.hexdigest()[:32]


def _hash_frames(h: Any, td: TrainingData) -> None:
    for name in ("frame", "scalers", "static", "future_exog", "imputed", "excluded"):
        frame = getattr(td, name)
        h.update(name.encode())
        if frame is not None:
            h.update(json.dumps([[c, str(t)] for c, t in frame.schema.items()]).encode())
            h.update(frame.hash_rows(seed=0).to_numpy().tobytes())


FileSeen = tuple[int, int, int]  # (inode, size, mtime_ns) of a file as it was read: replaced since, it differs


def _seen(path: Path) -> FileSeen | None:
    """`FileSeen` of the file at `path` now; None when there is none."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _loads(ckpt: Path) -> tuple[int | None, str, FileSeen | None]:
    """(the global step, '', seen) of a checkpoint that loads; (None, why, seen) when it does not (damaged, cut
    short): the loader's error, its first sentence ('UnpicklingError: pickle data was truncated'). `seen`: the file
    read (`FileSeen`), the same before and after the load (one replaced while it was read is read again)."""
    import torch

    for _ in range(3):
        before = _seen(ckpt)
        try:
            state = torch.load(ckpt, map_location="cpu", weights_only=False)
            step, why = int(state["global_step"]), ""
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is passed over
            text = str(exc).strip().split("\n")[0].split(". ")[0]
            step, why = None, f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        if _seen(ckpt) == before:
            break
    return step, why, before


def resumable(runs: Path, key: str, exclude: Path | None = None,
              unreadable: list[tuple[Path, str, FileSeen | None]] | None = None) -> tuple[Path, int] | None:
    """(folder, step) of an unfinished training of `key` under `runs/<run>/<training>/` whose last
    checkpoint loads, the one furthest along (module doc); None when there is none. The last checkpoints of
    `key` passed over because they do not load are appended to `unreadable`, each with why (`_loads`) and the file
    read (for `set_aside`): the caller says so (cache32: a cut `last.ckpt` was passed over without a word, training
    from scratch)."""
    best: tuple[Path, int] | None = None
    for marker in runs.glob(f"*/*/{KEY_FILE}"):
        folder = marker.parent
        if exclude is not None and folder.resolve() == Path(exclude).resolve():
            continue
        try:
            mark = json.loads(marker.read_text())
            if mark.get("key") != key or mark.get("resumed_by"):  # resumed once: superseded
                continue
        except (OSError, ValueError, AttributeError):
            continue
        last = folder / "checkpoints" / "last.ckpt"
        if (folder / "model.ckpt").exists() or not last.exists():
            continue
        step, why, seen = _loads(last)
        if step is None and unreadable is not None:
            unreadable.append((last, why, seen))
        if step is not None and (best is None or step > best[1]):
            best = (folder, step)
    return best


UNREADABLE_SUFFIX = ".unreadable"  # a last checkpoint set aside (`set_aside`): `last.ckpt.unreadable`


def set_aside(ckpt: Path, seen: FileSeen | None = None) -> Path | None:
    """Rename a last checkpoint that does not load (`resumable(..., unreadable=)`) to `<name>.unreadable` beside it
    (one rename, the folder fsynced) and return that path: kept for inspection, and no longer `last.ckpt`, so that
    `resumable` passes its folder over without loading it again and the flows warn about it once (ckpt33: every
    later run of the same key loaded the damaged file again and warned again). OSError when it cannot be renamed.

    `seen`: the file that failed to load (`FileSeen`). Only that file is renamed: one that replaced it since (a
    training still writing that folder renames each new checkpoint over it) is loaded again, and left in place
    (None) when it loads or when it is gone; one that does not load is set aside in its turn (ckpt40: the good
    checkpoint of a live training could be renamed away)."""
    aside = ckpt.with_name(ckpt.name + UNREADABLE_SUFFIX)
    for _ in range(3):
        now = _seen(ckpt)
        if seen is not None and now != seen:
            if now is None:
                return None
            step, _why, seen = _loads(ckpt)
            if step is not None:
                return None
            continue
        os.replace(ckpt, aside)
        fsync_dir(ckpt.parent)
        return aside
    return None  # replaced again at every look: a training writes it


DATA_DIGEST = "data.digest"  # in a training's folder: `data_digest` of the data it trains on


def data_digest(td: TrainingData) -> str:
    """A digest of the training data alone (its metadata and every frame): a resume continues only on equal data."""
    import hashlib
    from dataclasses import asdict

    h = hashlib.sha256(json.dumps(asdict(td.meta), sort_keys=True, default=str).encode())
    _hash_frames(h, td)
    return h.hexdigest()[:32]


# what a checkpoint's network and its optimizer's state were built with (RNNForecaster's hparams): a resume under
# others is refused (`not_resumable`); max_steps and max_epochs may differ (a resume that trains longer), but not past
# the end of the learning-rate schedule the checkpoint holds (`_schedule_end`, against the resume's: `_planned_end`)
RESUME_SETTINGS = ("cell", "mode", "lookback", "horizon", "hidden_size", "num_layers", "dropout", "loss", "quantiles",
                   "optimizer", "lr", "weight_decay", "scheduler")


def settings_changed(ckpt: Path, td: TrainingData, cfg: ModelConfig, cell: str, *, nodes: int = 1) -> str:
    """The `RESUME_SETTINGS` that `cfg` (and `cell`, `td`'s horizon) set otherwise than the checkpoint `ckpt` was
    written with, 'hidden_size 16 -> 8, lr 0.003 -> 0.01'; '' when none (or the checkpoint names none). `nodes`: the
    machines the training runs on (`training_nodes`)."""
    import torch

    from flowcast.models.rnn import cell_mode

    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    saved = state.get("hyper_parameters") or {}
    now = {"cell": cell, "mode": cell_mode(cfg.mode, cell), "lookback": cfg.lookback, "horizon": td.meta.horizon,
           "hidden_size": cfg.hidden_size, "num_layers": cfg.num_layers, "dropout": cfg.dropout, "loss": cfg.loss,
           "quantiles": list(cfg.quantiles), "optimizer": cfg.optimizer, "lr": cfg.lr,
           "weight_decay": cfg.weight_decay, "scheduler": cfg.scheduler}
    changed = [f"{k} {_jsonable({k: saved[k]})[k]} -> {_jsonable({k: v})[k]}" for k, v in now.items()
               if k in saved and _jsonable({k: saved[k]}) != _jsonable({k: v})]
    if not changed and (ends := _schedule_end(state)) is not None and (end := _planned_end(td, cfg, cell, nodes)) > ends:
        # a longer training (max_steps, or max_epochs, which the checkpoint does not name) would run it past its end
        # the epochs named wherever they bound it too: 'max_steps 500 -> 400' alone read as if fewer steps ran past it
        was, steps = saved.get("max_steps"), cfg.max_steps
        epochs = f", max_epochs {cfg.max_epochs}: a schedule ending at step {end}"
        what = (f"max_steps {was} -> {steps}{epochs if cfg.max_epochs is not None else ''}" if was != steps else
                f"max_steps {steps}{epochs}")
        changed.append(f"{what} (the {cfg.scheduler} learning-rate schedule the checkpoint holds ends at step {ends}: "
                       f"resumed past it, {_PAST_THE_END.get(cfg.scheduler, 'it ran off its end')})")
    return ", ".join(changed)


def _planned_end(td: TrainingData, cfg: ModelConfig, cell: str, nodes: int = 1) -> int:
    """`_schedule_end` of the learning-rate schedule a training of `cell` on `td` under `cfg` on `nodes` machines
    builds (`RNNForecaster.configure_optimizers`): for max_steps, or max_epochs x the batches of an epoch (Lightning's
    `estimated_stepping_batches`, the fewer; an epoch is one rank's share of the windows, of devices x nodes ranks),
    as many steps."""
    import torch

    from flowcast.models.rnn import make_scheduler, schedule_steps
    from flowcast.models.windows import ShardedSampler, make_loader

    epochs = trainer_epochs(cfg)
    estimated = math.inf
    if epochs != -1:  # epochs bound it: as many batches as an epoch's (one rank's) of the training's windows
        module, stats = build_module(td, cfg, cell)
        windows = build_datamodule(td, cfg, module, stats).train_ds
        sampler = ShardedSampler(len(windows), shuffle=False, seed=cfg.seed, num_samples=cfg.samples_per_epoch,
                                 world_size=resolve_devices(cfg) * nodes)
        estimated = len(make_loader(windows, sampler, cfg.batch_size)) * max(epochs or 1000, 1)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = make_scheduler(opt, cfg.scheduler, cfg.lr, schedule_steps(cfg.max_steps, estimated))
    end = _schedule_end({"lr_schedulers": [sched.state_dict()]})
    assert end is not None
    return end


# what a resume did past the end of the schedule its checkpoint holds (`_schedule_end`), per model.scheduler
_PAST_THE_END = {
    "cosine": "the learning rate climbed back up to its peak, where the training ended",
    "step": "the learning rate went on decaying, below the schedule's end value",
    "onecycle": "the training failed 'Tried to step ... times'",
}


def _schedule_end(state: dict[str, Any]) -> int | None:
    """The last step the learning-rate schedule a checkpoint's state (`torch.load`) holds was built for
    (`RNNForecaster.configure_optimizers`: the training's steps); None without one (model.scheduler = 'none').
    Lightning restores that schedule over the one a resume's network builds for its own steps, so a resume that
    trains longer runs it past its end: OneCycleLR refuses (the resume failed at the first step past it), cosine
    climbs back up (the training ended at the peak rate), step decays on."""
    for sched in state.get("lr_schedulers") or []:
        if not isinstance(sched, dict):
            continue
        if isinstance(total := sched.get("total_steps"), int):  # OneCycleLR, built with the training's steps + 1
            return total - 1
        if isinstance(total := sched.get("T_max"), int):  # CosineAnnealingLR
            return total
        if isinstance(every := sched.get("step_size"), int):  # StepLR: its 3 decays, every steps // 3
            return 3 * every
    return None


def training_nodes(distributed: DistributedConfig | None) -> int:
    """The machines a training runs on: distributed.nnodes under launcher = 'rendezvous' (`train_model`), else 1."""
    return distributed.nnodes if distributed is not None and distributed.launcher == "rendezvous" else 1


def not_resumable(out_dir: Path, td: TrainingData, cfg: ModelConfig, cell: str, *, nodes: int = 1) -> str | None:
    """Why the training of `cell` in `out_dir` cannot be resumed on `td` (after `network_data`) under `cfg`, or None:
    its last checkpoint is there but does not load (cut short, overwritten: Lightning failed on it at every resume),
    it was written under other settings (`settings_changed`: another hidden_size crashed in Lightning's
    load_state_dict, another lookback or learning rate went on silently from the old weights and optimizer state,
    ckpt40), or the data it trained on is not `td` (the source was corrected since: the resume went on training on
    the old data, saved in `data/` for the training process, or a finished run returned its old weights). The data
    is compared first: the schedule a resume would build (`settings_changed`, `_planned_end`) is of its data, and
    grown data under an epoch limit (more batches an epoch) was said to be changed settings (rev42b). `nodes`: the
    machines it trains on (`training_nodes`), whose ranks share an epoch's windows."""
    last = Path(out_dir) / "checkpoints" / "last.ckpt"
    if not last.exists():
        return None
    if why := _loads(last)[1]:
        return f"the checkpoint {last} does not load (damaged or cut short: {why})"
    try:  # a training folder from before digests, or checkpoints copied in (the flows): not compared
        saved: str | None = (Path(out_dir) / DATA_DIGEST).read_text().strip()
    except OSError:
        saved = None
    if saved is not None and saved != data_digest(td):
        return (f"the data changed since the checkpoint {last} was written (a corrected or extended source): "
                "it is not resumed on other data")
    if changed := settings_changed(last, td, cfg, cell, nodes=nodes):
        return (f"the settings changed since the checkpoint {last} was written ({changed}): it is not resumed under "
                "other settings")
    return None


def clear_run(out_dir: Path) -> None:
    """Remove what an earlier training left in `out_dir` (a fresh start)."""
    for stale in ("checkpoints", "logs", "model.ckpt", "meta.json", "progress.jsonl", "data", "train.log",
                  DATA_DIGEST):
        p = Path(out_dir) / stale
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def resume_from(prior: Path, out_dir: Path) -> None:
    """Start `out_dir` afresh with an unfinished training's checkpoints (module doc); the prior
    training is marked as resumed, so that no later run starts from it again."""
    clear_run(out_dir)
    ckpts = Path(out_dir) / "checkpoints"
    ckpts.mkdir(parents=True)
    for name in ("last.ckpt", "best.ckpt"):
        if (prior / "checkpoints" / name).exists():
            atomic_copy(prior / "checkpoints" / name, ckpts / name)
    try:
        mark = json.loads((prior / KEY_FILE).read_text())
        atomic_write_text(prior / KEY_FILE, json.dumps({**mark, "resumed_by": str(out_dir)}))
    except (OSError, ValueError) as exc:  # it may be offered again; its checkpoint is as good
        import logging

        logging.getLogger(__name__).warning("could not mark %s as resumed: %s", prior, exc)


PID_FILE = "train.pid"  # in a training's folder: the process id of its training process (launcher = "process")


def write_training_pid(out_dir: Path, pid: int) -> Path:
    """`train.pid`, written beside and renamed (`atomic_write_text`): it was written in place, so a reader (a
    person's `kill $(cat train.pid)`, a watcher polling for it) could find it empty or cut, and a re-run over a
    killed run's folder rewrote the old file where it stood."""
    return atomic_write_text(Path(out_dir) / PID_FILE, f"{pid}\n")


def training_pid(out_dir: Path) -> int | None:
    """The training process id `train.pid` names; None when the file is missing, empty or not a process id
    (never an exception: a folder whose training has not started yet, or one a person edited)."""
    try:
        text = (Path(out_dir) / PID_FILE).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


def train_model(
    td: TrainingData, cfg: ModelConfig, out_dir: Path, *, cell: str, resume: bool = False,
    on_progress: Progress | None = None, distributed: DistributedConfig | None = None, jobs: str | None = None,
    storage_options: dict[str, Any] | None = None, mirror: str | None = None,
) -> ModelArtifact:
    """Train `cell` on `td`; write the run to `out_dir` and return its artifact. With
    `distributed.launcher == "rendezvous"` (launcher process only) the job is posted to `jobs`
    (a folder or URL every node sees) and this machine trains as node 0 of distributed.nnodes.
    With `mirror`, checkpoints are copied there and `resume` starts from its copy when this
    machine has none (module doc)."""
    out_dir = Path(out_dir)
    copies = _Mirror(out_dir, mirror, storage_options) if mirror else None
    if resume and copies is not None:
        copies.fetch_last()
    from flowcast.models.rnn import CELL_NAMES

    if cell not in CELL_NAMES:
        raise TrainingError(f"unknown model {cell!r}; expected one of {', '.join(CELL_NAMES)}")
    td = network_data(td)
    blocker = not_resumable(out_dir, td, cfg, cell, nodes=training_nodes(distributed)) if resume else None
    if blocker is not None:  # a damaged checkpoint failed every resume; other data was resumed on silently
        logging.getLogger(__name__).warning("%s: training from the start", blocker)
        resume = False
    if not resume:
        clear_run(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        atomic_write_text(out_dir / DATA_DIGEST, data_digest(td))
    rendezvous = distributed is not None and distributed.launcher == "rendezvous"
    if rendezvous and cfg.launcher == "inline":
        raise TrainingError("[distributed] launcher = 'rendezvous' trains with torchrun: it needs model.launcher = "
                            "'process', got 'inline'")
    if cfg.launcher == "inline":
        art = fit(td, cfg, out_dir, cell=cell, resume=resume, on_progress=on_progress)
        assert art is not None
        if copies is not None:
            copies.finish()
        return art

    n = resolve_devices(cfg)
    data_dir = out_dir / "data"
    if not (resume and (data_dir / "meta.json").exists()):
        td.save(data_dir)
    cfg_file = out_dir / "config.json"
    atomic_write_text(cfg_file, cfg.model_dump_json())
    progress = out_dir / "progress.jsonl"
    progress.unlink(missing_ok=True)
    args = ["--data", str(data_dir), "--config", str(cfg_file), "--out", str(out_dir), "--cell", cell,
            "--progress", str(progress)] + (["--resume"] if resume else [])
    posted = None
    if rendezvous:
        from flowcast.models.nodes import post_job, rendezvous_command

        assert distributed is not None
        if jobs is None:
            raise TrainingError("multi-node training needs a jobs folder every node sees (distributed.jobs_dir)")
        posted = post_job(jobs, distributed, data_dir=data_dir, config_file=cfg_file, cell=cell,
                          storage_options=storage_options)
        (out_dir / "ranks").mkdir(exist_ok=True)
        args += ["--report", str(out_dir / "ranks")]
        cmd = rendezvous_command(distributed, nproc=n, node_rank=0, rdzv_id=posted.rdzv_id, args=args)
    else:
        cmd = launch_command(n, args)
    log = out_dir / "train.log"
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # OpenMP threads that spin while they wait for work burn the cores other processes need: on the
    # shared 2-core machine (load ~12) a 2-thread CPU training step took 5.0 s spinning, 0.33 s passive
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["FLOWCAST_LAUNCHER_PID"] = str(os.getpid())  # the child exits when this process dies (train_entry)
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        write_training_pid(out_dir, proc.pid)
        seen = 0
        try:
            while True:
                rc = proc.poll()
                seen = _drain(progress, seen, on_progress)
                if copies is not None:
                    copies.sync_last()
                if rc is not None:
                    break
                time.sleep(0.2)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    seen = _drain(progress, seen, on_progress)
    if posted is not None:  # the other nodes' agents see the job done (or failed) and move on
        posted.report_rank(out_dir / "ranks")
        posted.finish(rc == 0, "" if rc == 0 else _tail(log))
    if rc != 0:
        if (stopped := _stopped_by(rc, _tail(log))) is not None:  # from outside: not the model's failure
            ckpt = out_dir / "checkpoints" / "last.ckpt"
            raise TrainingStoppedError(
                f"the training process of {cell} (pid {proc.pid}, under {out_dir}) was stopped by {stopped} before it "
                "finished: a signal from outside (a person, the OOM killer, a shutdown), not the model's failure, so "
                f"the run stops instead of going on without {cell}; a re-run of the same as_of resumes it from "
                + (f"its last checkpoint {ckpt}" if ckpt.exists() else "the start (no checkpoint was written yet)"))
        tail = _tail(log)
        # the disk, not the model: a StorageError, as in this process (its log may not say it: on the same disk)
        if full := _full_disk(tail) or (_NOT_WRITTEN if rc == CANNOT_WRITE_EXIT else None):
            said = (f" (the training process said:\n{tail[-1000:]})" if tail.strip()
                    else f" (its log {log} is empty: the disk it is on is full too)")
            raise StorageError(f"could not write the training of {cell} under {out_dir}: {full}; the previous "
                               f"file, if any, is intact{said}")
        raise TrainingError(f"training {cell} failed (exit code {rc}; command {' '.join(cmd[:6])} ...):\n{tail}")
    art = ModelArtifact.load(out_dir)
    shutil.rmtree(data_dir, ignore_errors=True)  # the copy for the child; the artifact doesn't need it
    if copies is not None:
        copies.finish()
    return art


class _Mirror:
    """The run's checkpoints copied to a shared place (see module doc)."""

    LAST = "checkpoints/last.ckpt"

    def __init__(self, out_dir: Path, url: str, storage_options: dict[str, Any] | None):
        from flowcast.store.fs import FileStore

        self.out_dir, self.files = out_dir, FileStore(url, storage_options=storage_options)
        self.copied: tuple[int, int] | None = None  # (mtime_ns, size) of the last.ckpt copied

    def fetch_last(self) -> bool:
        """Resume: this machine has no last checkpoint, the mirror has one: copy it here."""
        local = self.out_dir / self.LAST
        if local.exists() or not self.files.exists(self.LAST):
            return False
        self.files.get_file(self.LAST, local)
        return True

    def sync_last(self) -> None:
        local = self.out_dir / self.LAST
        try:
            st = local.stat()
        except FileNotFoundError:
            return
        if self.copied != (st.st_mtime_ns, st.st_size):
            self.files.put_file(local, self.LAST)  # whole or not at all; an open handle survives a newer rename
            self.copied = (st.st_mtime_ns, st.st_size)

    def finish(self) -> None:
        for name in ("checkpoints/last.ckpt", "checkpoints/best.ckpt", "meta.json", "model.ckpt"):
            if (self.out_dir / name).exists():
                self.files.put_file(self.out_dir / name, name)


def _drain(progress: Path, seen: int, on_progress: Progress | None) -> int:
    """Hand complete new JSON lines of the progress file to `on_progress`; returns bytes consumed."""
    if not progress.exists():
        return seen
    with open(progress, "rb") as fh:
        fh.seek(seen)
        chunk = fh.read()
    end = chunk.rfind(b"\n")
    if end < 0:
        return seen
    for line in chunk[: end + 1].splitlines():
        if line.strip() and on_progress is not None:
            on_progress(json.loads(line))
    return seen + end + 1
