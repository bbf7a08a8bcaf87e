"""Training checkpoints in the shared home (train_model's `mirror`): a training killed on machine
A resumes on machine B, which has nothing of A's run but what was copied to an S3-compatible
server (moto on loopback)."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import torch
from model_factories import make_td, tiny_cfg

from flowcast.errors import TrainingStoppedError
from flowcast.models.predict import predict
from flowcast.models.train import train_model
from flowcast.store.fs import FileStore


@pytest.mark.slow
def test_a_training_killed_on_one_machine_resumes_on_another_from_the_shared_checkpoint(s3_url, tmp_path):
    url, opts = s3_url
    mirror = f"{url}/runs/sales_gru_all"
    shared = FileStore(mirror, storage_options=opts)
    td = make_td(n_series=8, length=60, horizon=6, lookback=12)
    # enough steps that A is still training when a copied checkpoint lets the test kill it
    cfg = tiny_cfg(launcher="process", max_steps=600, checkpoint_every=10, val_check_interval=10)
    run_a, run_b = tmp_path / "machine-a" / "run", tmp_path / "machine-b" / "run"
    killed = threading.Event()

    def watch(e: dict) -> None:  # kill A's training once a checkpoint of step >= 30 reached the bucket
        if e["step"] >= 30 and not killed.is_set() and shared.exists("checkpoints/last.ckpt"):
            os.kill(int((run_a / "train.pid").read_text()), signal.SIGKILL)
            killed.set()

    with pytest.raises(TrainingStoppedError, match="stopped by SIGKILL"):
        train_model(td, cfg, run_a, cell="gru", on_progress=watch, mirror=mirror, storage_options=opts)
    assert killed.is_set() and not shared.exists("model.ckpt")  # A never finished
    shared.get_file("checkpoints/last.ckpt", tmp_path / "copied.ckpt")
    copied_step = torch.load(tmp_path / "copied.ckpt", weights_only=False)["global_step"]
    assert 10 <= copied_step < 600

    resumed: list[dict] = []
    art = train_model(td, cfg, run_b, cell="gru", resume=True, on_progress=resumed.append, mirror=mirror,
                      storage_options=opts)
    assert art.metrics["steps"] == 600
    assert resumed and resumed[0]["step"] > copied_step  # continued from A's checkpoint, did not start over
    assert predict(art, td).height == 8 * 6
    assert shared.exists("model.ckpt") and shared.exists("meta.json")  # the finished run, for any machine
