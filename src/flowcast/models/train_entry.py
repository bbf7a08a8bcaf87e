"""Training entry module: `python -m flowcast.models.train_entry` (or under torchrun).

Reads TrainingData and the ModelConfig from disk, trains one cell with `train.fit` (one rank of
a DDP job when started by torchrun), and lets rank 0 write the artifact and append progress as
JSON lines. It imports neither prefect nor the flows, so a rank never re-runs a flow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowcast.models.train import CheckpointWrite

LAUNCHER_ENV = "FLOWCAST_LAUNCHER_PID"


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie, killed but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_with_launcher(pid: int, interval: float = 1.0) -> threading.Thread:
    """Exit when the flowcast process that launched this training dies.

    The launcher starts training in its own session (so Ctrl-C reaches only the launcher, which
    then stops it); a launcher killed with SIGKILL cannot stop it, and the training would go on
    as an orphan: burning the CPU or GPU and writing into a run directory that the re-run or
    `--resume` is using. The last checkpoint on disk is what `--resume` continues from."""

    def watch() -> None:
        while True:
            time.sleep(interval)
            if not _alive(pid):
                os._exit(143)

    t = threading.Thread(target=watch, name="flowcast-launcher-watch", daemon=True)
    t.start()
    return t


def rank_report(folder: Path):
    """A callback: at the end of training each rank writes what it trained (rank-<global>.json)."""
    import hashlib
    import socket

    import lightning as L

    class RankReport(L.Callback):
        def on_train_end(self, trainer, pl_module) -> None:
            digest = hashlib.sha256()
            for key, value in sorted(pl_module.state_dict().items()):
                digest.update(key.encode())
                digest.update(value.detach().cpu().contiguous().numpy().tobytes())
            report = {"global_rank": trainer.global_rank, "local_rank": trainer.local_rank,
                      "node_rank": trainer.node_rank, "world_size": trainer.world_size, "num_nodes": trainer.num_nodes,
                      "steps": int(trainer.global_step), "weights_sha256": digest.hexdigest(),
                      "host": socket.gethostname(), "pid": os.getpid()}
            from flowcast.atomic import atomic_write_text

            atomic_write_text(folder / f"rank-{trainer.global_rank:03d}.json", json.dumps(report))  # never torn

    return RankReport()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="flowcast.models.train_entry")
    ap.add_argument("--data", required=True, help="TrainingData directory")
    ap.add_argument("--config", required=True, help="ModelConfig as JSON")
    ap.add_argument("--out", required=True, help="run directory")
    ap.add_argument("--cell", required=True, choices=["rnn", "lstm", "gru", "mlp"])
    ap.add_argument("--progress", default=None, help="JSON-lines progress file (rank 0 appends)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--report", default=None, help="folder where each rank writes rank-<N>.json at the end of "
                    "training (rank, node, world size, steps, a digest of its weights)")
    a = ap.parse_args(argv)
    from flowcast.models.train import CheckpointWrite

    # SIGTERM, SIGINT: exit 128 + N (a signal as a checkpoint is written: once it is whole); the handlers found are
    # put back as this training ends, however it ends (one called in a process that lives on: a test's)
    with CheckpointWrite() as stop:
        return _train(a, stop)


def _train(a: argparse.Namespace, stop: CheckpointWrite) -> int:
    if os.environ.get(LAUNCHER_ENV, "").isdigit():
        exit_with_launcher(int(os.environ[LAUNCHER_ENV]))

    from flowcast.config import ModelConfig
    from flowcast.data.training_data import TrainingData
    from flowcast.models.train import fit

    cfg = ModelConfig.model_validate_json(Path(a.config).read_text())
    td = TrainingData.load(a.data)
    # under torchrun: this node's processes, and the number of nodes
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    world = int(os.environ.get("WORLD_SIZE", "1"))

    on_progress = None
    if a.progress:
        progress = Path(a.progress)

        def on_progress(event: dict) -> None:
            with open(progress, "a") as fh:
                fh.write(json.dumps(event) + "\n")
                fh.flush()

    extra = [rank_report(Path(a.report))] if a.report else []
    fit(td, cfg, a.out, cell=a.cell, resume=a.resume, on_progress=on_progress, devices=local,
        num_nodes=max(1, world // local), extra_callbacks=extra, stop=stop)
    return 0


def run(argv: list[str] | None = None) -> None:
    """main(), and an exit code that tells a write it could not make (a full disk, a file-size
    limit) from any other failure: on a full disk the traceback cannot be written to the log the
    launcher reads (`train.log` is on that disk), so the exit code says it (train.CANNOT_WRITE_EXIT)."""
    try:
        code = main(argv)
    except Exception as exc:  # noqa: BLE001 - any failure: its traceback, and which exit code says it
        import traceback

        from flowcast.models.train import CANNOT_WRITE_EXIT, _full_disk

        said = "".join(traceback.format_exception(exc))
        try:
            sys.stderr.write(said)
            sys.stderr.flush()
        except OSError:  # the log is on the full disk too
            pass
        os._exit(CANNOT_WRITE_EXIT if _full_disk(said) else 1)  # not sys.exit: flushing a full log at exit fails
    sys.exit(code)


if __name__ == "__main__":
    run()
