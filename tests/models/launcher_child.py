"""Child process for the orphan-training test: train in a subprocess (launcher="process") for a
long time, so that the test can SIGKILL this launcher mid-training.

usage: launcher_child.py OUT_DIR
"""

import sys
from pathlib import Path

from model_factories import make_td, tiny_cfg

from flowcast.models.train import train_model

td = make_td(n_series=4, length=60, horizon=6, lookback=12)
train_model(td, tiny_cfg(launcher="process", max_steps=100_000, checkpoint_every=10_000, val_check_interval=5),
            Path(sys.argv[1]), cell="rnn")
