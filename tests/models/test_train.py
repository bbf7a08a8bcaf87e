"""Training and prediction end to end on tiny data: seeds, learning, scaling, resume, atomic saves."""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal
import threading

import numpy as np
import polars as pl
import pytest
import torch
from model_factories import make_td, tiny_cfg

from flowcast.columns import quantile_col
from flowcast.errors import TrainingError, TrainingStoppedError
from flowcast.models.baselines import baseline_forecast
from flowcast.models.predict import ensemble, predict
from flowcast.models.train import (
    PID_FILE,
    CheckpointWrite,
    ModelArtifact,
    _atomic_checkpoint_io,
    fit,
    train_model,
    training_pid,
    write_training_pid,
)


def _weights(art: ModelArtifact) -> dict[str, torch.Tensor]:
    return torch.load(art.checkpoint, map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.parametrize("mode", ["windowed", "forking"])
def test_same_seed_gives_identical_weights(tmp_path, mode):
    td = make_td(n_series=3, length=40)
    a = train_model(td, tiny_cfg(mode=mode, seed=7), tmp_path / "a", cell="lstm")
    b = train_model(td, tiny_cfg(mode=mode, seed=7), tmp_path / "b", cell="lstm")
    c = train_model(td, tiny_cfg(mode=mode, seed=8), tmp_path / "c", cell="lstm")
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    meta = json.loads((a.path / "meta.json").read_text())
    assert meta["cell"] == "lstm" and meta["fingerprint"] == "test" and meta["metrics"]["steps"] == 20
    assert ModelArtifact.load(a.path).hparams["hidden_size"] == 16


@pytest.mark.parametrize("mode", ["windowed", "forking"])
def test_noisy_sine_wave_is_learned(tmp_path, mode):
    """Sine waves of one period, different phases and levels: the model must beat seasonal naive's
    noise floor by far and land close to the truth."""
    td = make_td(n_series=8, length=96, horizon=12, lookback=24, noise=0.1, level=5.0, seed=1)
    train, actual = td.holdout(12)
    cfg = tiny_cfg(mode=mode, lookback=24, hidden_size=32, batch_size=64, max_steps=300, lr=5e-3)
    art = train_model(train, cfg, tmp_path / "m", cell="gru")
    pred = predict(art, train).join(actual, on=["unique_id", "step"])
    mae = float((pred["y_hat"] - pred["y"]).abs().mean())
    amp = 2.0  # mean amplitude of the waves is 1..3
    assert mae < 0.2 * amp, f"{mode}: MAE {mae:.3f} on sines of amplitude ~{amp}"


@pytest.mark.parametrize("mode", ["windowed", "forking"])
def test_mlp_cell_learns_sine_waves_and_trains_windowed_under_either_mode(tmp_path, mode):
    """The global MLP (N-BEATS-like) trains through train_model and predicts through predict; under
    model.mode = forking (the recipes' mode for the recurrent cells) it still trains windowed."""
    td = make_td(n_series=8, length=96, horizon=12, lookback=24, noise=0.1, level=5.0, seed=1)
    train, actual = td.holdout(12)
    cfg = tiny_cfg(mode=mode, lookback=24, hidden_size=32, batch_size=64, max_steps=300, lr=5e-3)
    art = train_model(train, cfg, tmp_path / "m", cell="mlp")
    assert art.cell == "mlp" and art.hparams["mode"] == "windowed" and art.hparams["fork_length"] is None
    pred = predict(art, train).join(actual, on=["unique_id", "step"])
    assert pred.height == 8 * 12
    mae = float((pred["y_hat"] - pred["y"]).abs().mean())
    assert mae < 0.2 * 2.0, f"{mode}: MAE {mae:.3f} on sines of amplitude ~2"


def test_prediction_covers_every_series_once_on_the_original_scale(tmp_path):
    td = make_td(length=[60, 48, 7, 36], horizon=6, lookback=12, level=1000.0, past=True, static=True,
                 log1p=True)
    cfg = tiny_cfg(loss="quantile", quantiles=[0.1, 0.5, 0.9], max_steps=30)
    art = train_model(td, cfg, tmp_path / "m", cell="rnn")
    p = predict(art, td)
    assert p.height == td.n_series * 6
    assert p.select("unique_id", "step").is_duplicated().sum() == 0
    assert p["step"].dtype == pl.Int32 and p["y_hat"].dtype == pl.Float64
    assert p.columns == ["unique_id", "ds", "step", "y_hat", *[quantile_col(q) for q in (0.1, 0.5, 0.9)]]
    assert p["ds"].to_list() == td.future_frame(6)["ds"].to_list()
    assert bool((p["y_hat_q10"] <= p["y_hat_q50"]).all() and (p["y_hat_q50"] <= p["y_hat_q90"]).all())
    # original scale: levels 1000, 2000, ... within a wide margin after 30 steps
    last = td.frame.group_by("unique_id").agg(pl.col("y").last()).sort("unique_id")
    first_step = p.filter(pl.col("step") == 1).sort("unique_id")
    ratio = (first_step["y_hat"] / last["y"]).to_numpy()[[0, 1, 3]]  # s02 (7 rows) has no training window
    assert np.all((ratio > 0.8) & (ratio < 1.25)), ratio
    assert predict(art, td, horizon=3).height == td.n_series * 3
    with pytest.raises(TrainingError, match="forecasts 6 steps"):
        predict(art, td, horizon=7)


def test_baselines_repeat_last_value_and_last_season():
    td = make_td(length=[30, 5], horizon=14, period=12)
    y0 = td.frame.filter(pl.col("unique_id") == "s00")["y"].to_numpy()
    y1 = td.frame.filter(pl.col("unique_id") == "s01")["y"].to_numpy()
    naive = baseline_forecast("naive", td)
    snaive = baseline_forecast("seasonal_naive", td)
    for f in (naive, snaive):
        assert f.columns == ["unique_id", "ds", "step", "y_hat"] and f.height == 28 and f["y_hat"].null_count() == 0
    np.testing.assert_allclose(naive.filter(pl.col("unique_id") == "s00")["y_hat"].to_numpy(), [y0[-1]] * 14)
    expect = [y0[30 - 12 + (k - 1) % 12] for k in range(1, 15)]
    np.testing.assert_allclose(snaive.filter(pl.col("unique_id") == "s00")["y_hat"].to_numpy(), expect)
    # shorter than a season: naive
    np.testing.assert_allclose(snaive.filter(pl.col("unique_id") == "s01")["y_hat"].to_numpy(), [y1[-1]] * 14)


def test_ensemble_is_the_row_mean():
    td = make_td(length=[20, 20], horizon=3)
    a = baseline_forecast("naive", td)
    b = baseline_forecast("seasonal_naive", td)
    e = ensemble([a, b])
    np.testing.assert_allclose(e["y_hat"].to_numpy(), (a["y_hat"].to_numpy() + b["y_hat"].to_numpy()) / 2)
    assert e.select("unique_id", "step").rows() == a.select("unique_id", "step").rows()


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path):
    io = _atomic_checkpoint_io(CheckpointWrite())
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        io.save_checkpoint({"step": 2, "bad": lambda: None}, path)  # cannot be pickled: dies mid-write
    assert torch.load(path, weights_only=False)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_training_failure_raises_with_the_process_output(tmp_path):
    td = make_td(n_series=2, length=10, horizon=6, lookback=12)  # no room for any window
    with pytest.raises(TrainingError, match="no training samples"):
        train_model(td, tiny_cfg(launcher="process", window_short="exclude"), tmp_path / "m", cell="gru")


def test_a_diverged_training_names_the_series_with_the_most_extreme_scaled_values(tmp_path):
    """Regression: a gross outlier (1e300, beyond float32, in data that did not pass validation's y_too_large)
    made training fail with 'diverged: train_loss=nan', naming neither the value nor the series."""
    from flowcast.data.training_data import TrainingData, fit_scalers

    td = make_td(n_series=3, length=40)
    spike = (pl.col("unique_id") == "s01") & (pl.int_range(pl.len()).over("unique_id") == 10)
    frame = td.frame.with_columns(pl.when(spike).then(1e300).otherwise(pl.col("y")).alias("y"))
    td = TrainingData(frame=frame, scalers=fit_scalers(frame, "standard", False, holdout=6), meta=td.meta)
    with pytest.raises(TrainingError, match=r"training gru diverged: train_loss=nan; the series with the most "
                       r"extreme scaled values: s01 \(\|scaled y\| up to 9.71e\+299, \|y\| up to 1e\+300\), s0"):
        train_model(td, tiny_cfg(max_steps=3), tmp_path / "m", cell="gru")


def test_a_diverged_message_quotes_an_id_a_comma_would_split():
    """The series a diverged training names are listed as every other list of ids is: 'east, west' quoted, so
    the list does not read as two series."""
    from flowcast.data.training_data import TrainingData, fit_scalers
    from flowcast.models.train import diverged_message

    td = make_td(n_series=2, length=40)
    frame = td.frame.with_columns(pl.col("unique_id").replace({"s00": "east, west"}))
    td = TrainingData(frame=frame, scalers=fit_scalers(frame, "standard", False, holdout=6), meta=td.meta)
    said = diverged_message("gru", float("nan"), td)
    assert "'east, west' (|scaled y| up to" in said and "s01 (|scaled y| up to" in said, said


@pytest.mark.slow
def test_killed_training_resumes_from_last_checkpoint(tmp_path):
    td = make_td(n_series=16, length=80, horizon=6, lookback=12)
    cfg = tiny_cfg(launcher="process", hidden_size=64, batch_size=256, max_steps=400, checkpoint_every=10,
                   val_check_interval=10)
    out = tmp_path / "run"
    events: list[dict] = []
    killed = threading.Event()

    def watch(e: dict) -> None:
        events.append(e)
        if e["step"] >= 40 and not killed.is_set() and (out / "checkpoints" / "last.ckpt").exists():
            os.kill(int((out / "train.pid").read_text()), signal.SIGKILL)
            killed.set()

    with pytest.raises(TrainingStoppedError, match="stopped by SIGKILL"):
        train_model(td, cfg, out, cell="gru", on_progress=watch)
    assert killed.is_set()
    assert not (out / "meta.json").exists()
    ckpt_step = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert 40 <= ckpt_step < 400
    resumed: list[dict] = []
    art = train_model(td, cfg, out, cell="gru", resume=True, on_progress=resumed.append)
    assert art.metrics["steps"] == 400
    assert resumed and resumed[0]["step"] > ckpt_step  # continued, did not start over
    assert predict(art, td).height == 16 * 6


def test_training_process_does_not_import_prefect():
    import subprocess
    import sys

    code = ("import sys; from flowcast.models import train_entry, rnn, windows; from flowcast.models.train import fit; "
            "import lightning; print(any(m.split('.')[0] == 'prefect' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_training_process_dies_with_a_killed_launcher(tmp_path):
    """SIGKILL of the process that launched training (flowcast run / train killed by the user or
    the OS) must not leave the training running as an orphan in its own session."""
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]))
    launcher = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "launcher_child.py"),
                                 str(out)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (training_pid(out) is not None and (out / "progress.jsonl").exists()
                   and (out / "progress.jsonl").stat().st_size):
            assert launcher.poll() is None, "the launcher ended before training started"
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.1)
        child = training_pid(out)
        assert child is not None
    finally:
        launcher.kill()
        launcher.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        try:
            with open(f"/proc/{child}/stat") as fh:  # not yet reaped by init: a zombie counts as gone
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.2)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the training process outlived its killed launcher")


def test_cosine_schedule_ends_where_max_epochs_ends_training(tmp_path):
    """Bounded by epochs before steps, training still anneals the learning rate to its floor
    (the schedule's length is the trainer's estimate, min of both bounds), not to a midpoint."""
    import lightning as L

    td = make_td(n_series=4, length=40)
    seen: dict[str, float] = {}

    class LastLR(L.Callback):
        def on_train_end(self, trainer, pl_module):
            seen["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
            seen["steps"] = trainer.global_step

    from flowcast.models.train import fit

    cfg = tiny_cfg(mode="forking", batch_size=2, max_steps=500, max_epochs=3, lr=1e-2)
    fit(td, cfg, tmp_path / "m", cell="rnn", extra_callbacks=[LastLR()])
    assert seen["steps"] == 6  # 3 epochs of 2 batches, long before 500 steps
    assert seen["lr"] == pytest.approx(1e-2 * 0.01, rel=1e-6)  # eta_min = lr / 100


def test_training_in_this_process_says_nothing_lightning_says_at_info(tmp_path, caplog):
    """Regression: `flowcast tune` (its trials train in the flow's process) printed Lightning's INFO lines,
    each twice: 'GPU available: False, used: False', 'TPU available', the litlogger tip, '`Trainer.fit`
    stopped: `max_steps=5` reached', '`weights_only` was not set, defaulting to `False`', and a warning that
    the 1 training batch of an epoch was fewer than log_every_n_steps=10. Lightning's warnings still show."""
    import logging
    import warnings

    import lightning.pytorch  # noqa: F401

    before = logging.getLogger("lightning.pytorch").level
    td = make_td(n_series=2, length=30)
    with caplog.at_level(logging.INFO), warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        art = train_model(td, tiny_cfg(max_steps=3, batch_size=512, launcher="inline"), tmp_path / "m", cell="gru")
        predict(art, td)
    chatter = [r.getMessage() for r in caplog.records if r.name.startswith("lightning")]
    assert chatter == [], chatter
    assert not [str(w.message) for w in said if "log_every_n_steps" in str(w.message)]
    # nor torch's deprecations of what Lightning's own code calls ('isinstance(treespec, LeafSpec)' ...)
    assert not [str(w.message) for w in said if "lightning" in w.filename and issubclass(
        w.category, (FutureWarning, DeprecationWarning))]
    assert logging.getLogger("lightning.pytorch").level == before  # given back as it was


def test_only_an_unfinished_training_of_the_same_key_is_resumable(tmp_path, td):
    """The key covers what the weights depend on (data, settings, cell); a finished training is
    never reused, a damaged checkpoint is passed over (flows: tests/flows/test_resume_after_kill.py)."""
    from flowcast.models.train import KEY_FILE, resumable, training_key

    cfg = tiny_cfg()
    key = training_key(td, cfg, "gru")
    assert key == training_key(make_td(), tiny_cfg(), "gru")
    assert key != training_key(td, tiny_cfg(hidden_size=9), "gru")
    assert key != training_key(td, cfg, "rnn")
    assert key != training_key(make_td(seed=1), cfg, "gru")  # other values
    assert key != training_key(make_td(length=61), cfg, "gru")  # one more row
    runs = tmp_path / "runs"
    out = runs / "run-a" / "gru-backtest"
    out.mkdir(parents=True)
    (out / KEY_FILE).write_text(json.dumps({"key": key, "cell": "gru"}))
    train_model(td, cfg, out, cell="gru")
    assert resumable(runs, key) is None  # finished: its model.ckpt is there
    (out / "model.ckpt").unlink()
    assert resumable(runs, key) == (out, cfg.max_steps)
    assert resumable(runs, key, exclude=out) is None
    assert resumable(runs, "another-key") is None
    (out / "checkpoints" / "last.ckpt").write_bytes(b"cut short")
    assert resumable(runs, key) is None


def test_a_cut_last_checkpoint_is_passed_over_naming_it_and_why(tmp_path, td, caplog):
    """Regression (cache32): a `last.ckpt` cut short (a fifth of a real one) was passed over without a word: the
    training restarted from scratch, as it should, but nothing said that a checkpoint was there nor why it was not
    used. `resumable` hands it back with the loader's error; a resume of that folder warns naming both."""
    import logging

    from flowcast.models.train import KEY_FILE, not_resumable, resumable, training_key

    cfg = tiny_cfg(max_steps=5)
    key = training_key(td, cfg, "gru")
    out = tmp_path / "runs" / "run-a" / "gru-backtest"
    out.mkdir(parents=True)
    (out / KEY_FILE).write_text(json.dumps({"key": key, "cell": "gru"}))
    train_model(td, cfg, out, cell="gru")
    (out / "model.ckpt").unlink()  # unfinished: killed while it trained
    last = out / "checkpoints" / "last.ckpt"
    with last.open("r+b") as fh:
        fh.truncate(last.stat().st_size // 5)
    unreadable: list = []
    assert resumable(tmp_path / "runs", key, unreadable=unreadable) is None
    [(path, why, seen)] = unreadable
    assert seen == (last.stat().st_ino, last.stat().st_size, last.stat().st_mtime_ns)  # the file read
    with pytest.raises(Exception) as loader:  # whatever the loader raises on it, named in `why`
        torch.load(last, map_location="cpu", weights_only=False)
    assert path == last and why == f"{type(loader.value).__name__}: {str(loader.value).split('. ')[0]}", why
    assert resumable(tmp_path / "runs", "another-key", unreadable=unreadable) is None and len(unreadable) == 1
    blocker = not_resumable(out, td, cfg, "gru")
    assert blocker == f"the checkpoint {last} does not load (damaged or cut short: {why})"
    with caplog.at_level(logging.WARNING, logger="flowcast.models.train"):
        art = train_model(td, cfg, out, cell="gru", resume=True)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and str(last) in r.getMessage()]
    assert said == [f"{blocker}: training from the start"], said
    assert art.metrics["steps"] == cfg.max_steps


def _a_cut_killed_training(tmp_path):
    """(its folder, its last.ckpt): a killed training of key 'k' under tmp_path/runs whose last checkpoint is cut."""
    from flowcast.models.train import KEY_FILE

    out = tmp_path / "runs" / "run-a" / "gru-backtest"
    (out / "checkpoints").mkdir(parents=True)
    (out / KEY_FILE).write_text(json.dumps({"key": "k", "cell": "gru"}))
    last = out / "checkpoints" / "last.ckpt"
    last.write_bytes(b"cut short")
    return out, last


def test_a_cut_last_checkpoint_set_aside_is_passed_over_without_loading_it_again(tmp_path):
    """ckpt33: once set aside (`last.ckpt.unreadable`, kept whole) the cut checkpoint is no longer handed back by
    `resumable`: every later run of the key loaded it again and warned again."""
    from flowcast.models.train import resumable, set_aside

    out, last = _a_cut_killed_training(tmp_path)
    unreadable: list = []
    assert resumable(tmp_path / "runs", "k", unreadable=unreadable) is None and [p for p, *_ in unreadable] == [last]
    assert set_aside(last, unreadable[0][2]) == out / "checkpoints" / "last.ckpt.unreadable"
    assert not last.exists() and (out / "checkpoints" / "last.ckpt.unreadable").read_bytes() == b"cut short"
    again: list = []
    assert resumable(tmp_path / "runs", "k", unreadable=again) is None and again == []


@pytest.mark.parametrize("replaced_by", ["a checkpoint that loads", "another cut one", "nothing"])
def test_a_cut_last_checkpoint_replaced_after_it_failed_to_load_is_not_set_aside_blindly(tmp_path, replaced_by):
    """ckpt40: between `resumable` failing to load a `last.ckpt` and `set_aside` renaming it, a training still
    writing that folder could rename its next (good) checkpoint over it, and `set_aside` renamed that one away. Only
    the file that failed to load is renamed: a replacement is loaded again, left in place when it loads (or when the
    file is gone), set aside in its turn when it does not."""
    from flowcast.atomic import atomic_copy
    from flowcast.models.train import resumable, set_aside

    out, last = _a_cut_killed_training(tmp_path)
    unreadable: list = []
    assert resumable(tmp_path / "runs", "k", unreadable=unreadable) is None
    [(path, _why, seen)] = unreadable
    good = tmp_path / "good.ckpt"
    torch.save({"global_step": 7, "state_dict": {}}, good)
    if replaced_by == "nothing":
        last.unlink()
    else:  # renamed over it, as every checkpoint is written (atomic_file): another file, whatever its size
        if replaced_by == "another cut one":
            good.write_bytes(b"cut too")
        atomic_copy(good, last)
    aside = set_aside(path, seen)
    kept = last.with_name("last.ckpt.unreadable")
    if replaced_by == "another cut one":
        assert aside == kept and kept.read_bytes() == b"cut too" and not last.exists()
    else:
        assert aside is None and not kept.exists()
        assert last.exists() == (replaced_by == "a checkpoint that loads")
    if replaced_by == "a checkpoint that loads":
        assert resumable(tmp_path / "runs", "k") == (out, 7)  # the live training's, whole


TRAIN_WITH_A_SIZE_LIMIT = """
import resource, sys
from model_factories import make_td, tiny_cfg
from flowcast.errors import StorageError
from flowcast.models.train import train_model
resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))  # the data (4 KB) fits, a checkpoint (39 KB) fails
try:
    train_model(make_td(), tiny_cfg(launcher="process"), sys.argv[1], cell="gru")
except StorageError as exc:
    print("StorageError:", exc)
"""


def test_a_training_process_that_cannot_write_is_a_storage_error(tmp_path):
    """Regression: a training process that failed for a full disk was a TrainingError, which the
    retrain treats as the candidate's fault: on a nearly full disk a run went on to the next
    candidate and registered and promoted naive (then failed to publish). It is a StorageError,
    which fails the run (evaluation.decision.first_publishable)."""
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parents[1] / "src")])}
    r = subprocess.run([sys.executable, "-c", TRAIN_WITH_A_SIZE_LIMIT, str(tmp_path / "run")], env=env, check=False,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith(f"StorageError: could not write the training of gru under {tmp_path / 'run'}: "
                               "file too large (a file-size limit)"), r.stdout


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_training_process_stopped_by_a_signal_is_not_the_models_failure(tmp_path, sig):
    """Regression: a training process killed from outside (the OOM killer, `kill`, a node's shutdown)
    was a TrainingError, which the retrain takes for the candidate's fault: a `flowcast run` whose gru
    training process was killed went on without every candidate using it, promoted and published the
    next, worse one (damped, where a clean run publishes the hybrid), and exited 0. SIGTERM was worse
    still: Lightning turns it into a SystemExit without a code, so the process exited 0 without a model
    ('no trained model ... (meta.json missing)'). Stopped by any signal, the training is a
    TrainingStoppedError naming the signal and the checkpoint a re-run resumes from."""
    from flowcast.errors import TrainingStoppedError

    out = tmp_path / "run"
    outcome: dict[str, BaseException] = {}

    def train() -> None:
        try:
            train_model(make_td(), tiny_cfg(launcher="process", max_steps=1_000_000, checkpoint_every=1), out,
                        cell="gru")
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome["exc"] = exc

    t = threading.Thread(target=train, daemon=True)
    t.start()
    ckpt = out / "checkpoints" / "last.ckpt"
    while t.is_alive() and not ckpt.exists():  # training, a checkpoint written: stopped mid-training
        t.join(0.05)
    assert t.is_alive(), f"the training ended before it was stopped: {outcome}"
    os.kill(int((out / "train.pid").read_text()), sig)
    t.join()
    exc = outcome.get("exc")
    assert isinstance(exc, TrainingStoppedError), repr(exc)
    assert not isinstance(exc, TrainingError)
    assert f"stopped by {sig.name}" in str(exc) and str(ckpt) in str(exc), str(exc)


class _SignalsWhilePickled:
    """Sends this process `sig` as torch.save pickles it (mid-write of a checkpoint); unpickles as an empty dict."""

    def __init__(self, sig: int) -> None:
        self.sig = sig

    def __reduce__(self):
        os.kill(os.getpid(), self.sig)
        return (dict, ())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_during_a_checkpoint_write_stops_once_it_is_whole(tmp_path, sig):
    """Regression (session 38's CI: test_a_training_process_stopped_by_a_signal_is_not_the_models_failure[SIGTERM]
    failed): the training process's stop handler raised SystemExit inside torch.save, whose zip writer then raised
    'RuntimeError: ... unexpected pos 25984 vs 25876' in place of it: the process exited 1, a TrainingError (the
    candidate's fault), not a stop. The stop waits for the checkpoint to be whole, then exits 128 + N."""
    path = tmp_path / "last.ckpt"
    with CheckpointWrite() as stop:
        with pytest.raises(SystemExit) as stopped:
            _atomic_checkpoint_io(stop).save_checkpoint({"w": torch.ones(3), "mid": _SignalsWhilePickled(sig)}, path)
        assert stopped.value.code == 128 + sig
        whole = torch.load(path, weights_only=False)
        assert torch.equal(whole["w"], torch.ones(3)) and whole["mid"] == {}
        _atomic_checkpoint_io(stop).save_checkpoint({"w": torch.zeros(2)}, path)  # said once: the next one is written
        assert torch.equal(torch.load(path)["w"], torch.zeros(2))


class _SignalsThenFillsTheDisk(_SignalsWhilePickled):
    """Sends this process `sig` as torch.save pickles it, then fails the write as a full disk does (ENOSPC)."""

    def __reduce__(self):
        os.kill(os.getpid(), self.sig)
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_during_a_failing_checkpoint_write_keeps_the_writes_error(tmp_path, sig):
    """Regression (ckpt40): a SIGTERM that came while a checkpoint write was failing (a full disk) replaced the write's
    error with the stop (SystemExit 128 + N, raised as the write ended): the training was said stopped from outside, a
    re-run was told to resume, and nobody learnt that the disk was full. The write's error stays the reason (a
    StorageError naming the disk, exit 74 in train_entry), and it names the stop that came meanwhile."""
    from flowcast.errors import StorageError

    path = tmp_path / "last.ckpt"
    with CheckpointWrite() as stop:
        _atomic_checkpoint_io(stop).save_checkpoint({"w": torch.ones(3)}, path)
        with pytest.raises(StorageError) as failed:
            _atomic_checkpoint_io(stop).save_checkpoint({"w": torch.zeros(3), "mid": _SignalsThenFillsTheDisk(sig)},
                                                        path)
        assert "no space left on device" in str(failed.value).lower(), str(failed.value)
        assert any(f"{sig.name} came while this checkpoint was written" in n
                   for n in getattr(failed.value, "__notes__", [])), getattr(failed.value, "__notes__", None)
        assert stop.pending is None and not stop.writing  # the stop is not raised later, at the next checkpoint
        assert torch.equal(torch.load(path, weights_only=False)["w"], torch.ones(3))  # the previous one, whole
        assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def _handlers() -> dict[int, object]:
    return {s: signal.getsignal(s) for s in CheckpointWrite.SIGNALS}


class _Until:
    """A training's end (a real Lightning callback): `stopped` sends the process SIGTERM as the first checkpoint is
    pickled (mid-write), `raises` fails the training at its 3rd step, `returns` lets it finish."""

    @staticmethod
    def callback(how: str):
        import lightning as L

        class Until(L.Callback):
            sent = False

            def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
                if how == "stopped" and not self.sent:
                    self.sent = True
                    checkpoint["mid"] = _SignalsWhilePickled(signal.SIGTERM)

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                if how == "raises" and trainer.global_step == 3:
                    raise RuntimeError("the training failed at step 3")

        return Until()


@pytest.mark.parametrize("how", ["returns", "raises", "stopped"])
def test_a_training_puts_back_the_signal_handlers_and_holds_no_stop(tmp_path, how):
    """proc32: the stop on a signal was process-wide (CheckpointWrite's class state, handlers installed for good by
    train_entry), so a second training in one process (a pytest worker's next test, an in-process candidate) inherited
    a stop the first one held and its handlers. One training's stop is its own: as it ends (finished, failed, stopped
    by a SIGTERM that came as a checkpoint was written) the handlers found before are back and no stop is held, and a
    training after it in the same process writes its checkpoints and finishes."""
    before = _handlers()
    expected = {"returns": None, "raises": RuntimeError, "stopped": SystemExit}[how]
    with CheckpointWrite() as stop:
        assert all(h == stop._stop for h in _handlers().values())  # installed while it trains
        try:
            fit(make_td(), tiny_cfg(), tmp_path / "a", cell="gru", stop=stop, extra_callbacks=[_Until.callback(how)])
            ended: type[BaseException] | None = None
        except (RuntimeError, SystemExit) as exc:
            ended = type(exc)
            if isinstance(exc, SystemExit):
                assert exc.code == 128 + signal.SIGTERM
    assert ended is expected
    assert _handlers() == before
    assert stop.pending is None and not stop.writing
    art = train_model(make_td(), tiny_cfg(), tmp_path / "b", cell="gru")  # the next training in this process
    assert art.metrics["steps"] == 20 and (tmp_path / "b" / "checkpoints" / "last.ckpt").exists()


@pytest.mark.parametrize("how", ["returns", "raises"])
def test_train_entry_puts_back_the_signal_handlers_it_found(tmp_path, how):
    """proc32: train_entry installed its stop handlers for good (`stop_on_signals`); its main, called in a process that
    lives on, now puts back the handlers it found, whether the training finished or failed (here: no such data)."""
    from flowcast.models import train_entry

    data = tmp_path / "data"
    if how == "returns":
        make_td().save(data)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(tiny_cfg().model_dump_json())
    before = _handlers()
    args = ["--data", str(data), "--config", str(cfg), "--out", str(tmp_path / "run"), "--cell", "gru"]
    if how == "returns":
        assert train_entry.main(args) == 0
        assert (tmp_path / "run" / "model.ckpt").exists()
    else:
        with pytest.raises(Exception, match="data"):
            train_entry.main(args)
    assert _handlers() == before


@pytest.mark.parametrize("target,sig", [("torchrun", signal.SIGTERM), ("rank", signal.SIGKILL)])
def test_a_torchrun_training_stopped_by_a_signal_is_not_the_models_failure(tmp_path, target, sig):
    """Regression: with several devices training runs under torchrun, which exits 1 whatever stopped
    it: its agent terminated ('SignalException: Process N got signal: 15') or one of its ranks killed
    ('Signal 9 (SIGKILL) received by PID N') read as 'training gru failed (exit code 1)', the
    candidate's failure. Two CPU ranks (gloo); the signal goes to torchrun or to a rank."""
    import subprocess

    from flowcast.errors import TrainingStoppedError

    out = tmp_path / "run"
    outcome: dict[str, BaseException] = {}

    def train() -> None:
        try:
            train_model(make_td(), tiny_cfg(launcher="process", devices=2, max_steps=1_000_000, checkpoint_every=1),
                        out, cell="gru")
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome["exc"] = exc

    t = threading.Thread(target=train, daemon=True)
    t.start()
    ckpt = out / "checkpoints" / "last.ckpt"
    while t.is_alive() and not ckpt.exists():  # both ranks training, a checkpoint written
        t.join(0.05)
    assert t.is_alive(), f"the training ended before it was stopped: {outcome}"
    agent = int((out / "train.pid").read_text())
    ranks = subprocess.run(["pgrep", "-P", str(agent)], capture_output=True, text=True, check=True).stdout.split()
    os.kill(agent if target == "torchrun" else int(ranks[0]), sig)
    t.join()
    exc = outcome.get("exc")
    assert isinstance(exc, TrainingStoppedError), repr(exc)[:3000]
    assert f"stopped by {sig.name}" in str(exc), str(exc)


def test_torchruns_root_cause_names_the_signal_before_the_other_ranks_failures():
    """Regression (CI 54, test_a_torchrun_training_stopped_by_a_signal_is_not_the_models_failure[rank-9] at a load
    of 10+): a rank SIGKILLed, the agent SIGTERMed the other, and its summary listed that SIGTERM under 'Failures'
    before the SIGKILL under 'Root Cause': the training was said 'stopped by SIGTERM'."""
    from flowcast.models.train import _stopped_by

    log = ("torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n====\nFailures:\n[1]:\n"
           "  rank      : 1 (local_rank: 1)\n  exitcode  : -15 (pid: 11)\n"
           "  traceback : Signal 15 (SIGTERM) received by PID 11\n----\nRoot Cause (first observed failure):\n[0]:\n"
           "  rank      : 0 (local_rank: 0)\n  exitcode  : -9 (pid: 10)\n"
           "  traceback : Signal 9 (SIGKILL) received by PID 10\n====\n")
    assert _stopped_by(1, log) == "SIGKILL"
    assert _stopped_by(1, log.replace("Signal 9 (SIGKILL)", "Signal 15 (SIGTERM)").replace("-9 (", "-15 (")) == "SIGTERM"
    assert _stopped_by(1, log.split("Root Cause")[0]) == "SIGTERM"  # (no root cause in the tail: the whole tail)


def test_a_training_process_interrupted_while_python_starts_is_stopped_not_failed():
    """Regression (fault injection, `flowcast run` with the gru training process sent SIGINT 0.4 s after
    it started): Python had not reached train_entry's handlers, exited 1 with 'Could not import runpy
    module' and a traceback ending in KeyboardInterrupt, and the run went on without the gru
    candidates, promoting damped. An uncaught KeyboardInterrupt in the log is a SIGINT."""
    from flowcast.models.train import _stopped_by

    log = ("Could not import runpy module\nTraceback (most recent call last):\n"
           '  File "<frozen importlib._bootstrap>", line 1173, in _find_and_load\n'
           '  File "<frozen importlib._bootstrap>", line 71, in __init__\nKeyboardInterrupt\n')
    assert _stopped_by(1, log) == "SIGINT"
    assert _stopped_by(1, "Traceback (most recent call last):\n  ...\nValueError: bad input\n") is None


def test_a_stopped_training_fails_the_run_instead_of_publishing_the_next_candidate():
    from flowcast.errors import TrainingStoppedError
    from flowcast.evaluation.decision import ForecastCheck, first_publishable

    def attempt(name):
        if name == "hybrid":
            raise TrainingStoppedError("the training process of gru was stopped by SIGKILL")
        return name, "forecast"

    ok = lambda fc: ForecastCheck(ok=True, problems=[])
    with pytest.raises(TrainingStoppedError, match="SIGKILL"):
        first_publishable(["hybrid", "damped"], attempt, ok)


def test_a_training_process_that_cannot_write_even_its_log_says_so_by_its_exit_code(tmp_path):
    """Regression: on a full disk the training process cannot write its log either (its stdout and
    stderr are `train.log`), so the launcher found no 'No space left on device' in it: 'training gru
    failed (exit code 1 ...)' with an empty log, a TrainingError, and a `flowcast run` with runs/ on
    a full tmpfs dropped the gru candidates and went on (it failed only because the production
    model's refit then said StorageError). A training process stopped by a write it could not make
    exits 74 (EX_IOERR), which the launcher reads as a StorageError whatever its log holds."""
    import resource
    import subprocess
    import sys
    from pathlib import Path

    from flowcast.models.train import CANNOT_WRITE_EXIT

    td = make_td()
    td.save(tmp_path / "data")
    (tmp_path / "config.json").write_text(tiny_cfg(launcher="process").model_dump_json())
    here = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parents[1] / "src")])}

    def a_size_limit() -> None:  # a checkpoint (39 KB) cannot be written
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))

    with open("/dev/full", "wb") as full:  # every write of its log fails: no space left on device
        r = subprocess.run([sys.executable, "-m", "flowcast.models.train_entry", "--data", str(tmp_path / "data"),
                            "--config", str(tmp_path / "config.json"), "--out", str(tmp_path / "run"), "--cell", "gru"],
                           stdout=full, stderr=full, env=env, preexec_fn=a_size_limit, timeout=600, check=False)
    assert r.returncode == CANNOT_WRITE_EXIT == 74
    assert not (tmp_path / "run" / "meta.json").exists()


def test_a_full_disk_fails_the_run_instead_of_publishing_the_next_candidate():
    from flowcast.errors import StorageError
    from flowcast.evaluation.decision import ForecastCheck, first_publishable

    def attempt(name):
        if name == "hybrid":
            raise StorageError("could not write /x: no space left on device (the disk is full)")
        if name == "gru":
            raise TrainingError("training gru diverged")
        return name, "forecast"

    ok = lambda fc: ForecastCheck(ok=True, problems=[])
    name, _, _, notes = first_publishable(["gru", "theta"], attempt, ok)
    assert name == "theta" and "gru was not published: it could not forecast (training gru diverged)" in notes[0]
    with pytest.raises(StorageError, match="no space left"):
        first_publishable(["hybrid", "theta"], attempt, ok)


def test_a_resume_on_corrected_data_trains_from_the_start(tmp_path):
    """Regression: `flowcast train` killed at step 65 of 400, one series of the source corrected (x10), then
    `--resume`: it went on from step 80 on the old data (the training process reads the copy saved in the run's
    data/ folder, which a resume kept), and resuming a finished run after a correction returned its old weights.
    A resume continues only on the data the checkpoint was trained on (`data.digest`); otherwise it starts over."""
    from flowcast.data.training_data import TrainingData
    from flowcast.models.train import not_resumable

    td = make_td(n_series=4, length=60, horizon=6, lookback=12)
    cfg = tiny_cfg(max_steps=6, checkpoint_every=2)
    out = tmp_path / "run"
    train_model(td, cfg, out, cell="gru")
    again: list[dict] = []
    train_model(td, cfg, out, cell="gru", resume=True, on_progress=again.append)
    assert not again  # the same data: the finished run resumes to its last step, nothing trained
    corrected = td.frame.with_columns(
        pl.when(pl.col("unique_id") == td.frame["unique_id"][0]).then(pl.col("y") * 10).otherwise(pl.col("y")))
    td2 = TrainingData(frame=corrected, scalers=td.scalers, meta=td.meta, static=td.static,
                       future_exog=td.future_exog, imputed=td.imputed, excluded=td.excluded)
    assert "the data changed since the checkpoint" in (not_resumable(out, td2, cfg, "gru") or "")
    trained: list[dict] = []
    art = train_model(td2, cfg, out, cell="gru", resume=True, on_progress=trained.append)
    assert trained and trained[0]["step"] <= 2 and art.metrics["steps"] == 6  # from the start
    assert not_resumable(out, td2, cfg, "gru") is None


@pytest.mark.parametrize(("changed", "said"), [
    ({"hidden_size": 8}, "hidden_size 16 -> 8"),  # crashed: 'Error(s) in loading state_dict for RNNForecaster'
    ({"lookback": 6, "lr": 0.01}, "lookback 12 -> 6, lr 0.003 -> 0.01"),  # resumed silently on the old weights
])
def test_a_resume_with_other_network_settings_trains_from_the_start_saying_what_changed(tmp_path, changed, said):
    """Regression (ckpt40): `flowcast train --resume` (train_model(resume=True)) with other model settings than the
    checkpoint's: another hidden_size crashed in Lightning's load_state_dict (a RuntimeError naming tensor shapes),
    another lookback or learning rate resumed silently, the old weights and optimizer state going on under the new
    settings (the optimizer's restored learning rate won). A resume continues only under the settings the checkpoint
    was written with (more steps alone is a resume); otherwise it trains from the start, saying what changed."""
    from flowcast.models.train import not_resumable

    td = make_td()
    cfg = tiny_cfg(max_steps=6, checkpoint_every=2, scheduler="none")  # (longer under a schedule: from the start)
    out = tmp_path / "run"
    train_model(td, cfg, out, cell="gru")
    (out / "model.ckpt").unlink()  # killed while it trained
    assert not_resumable(out, td, tiny_cfg(max_steps=12, checkpoint_every=2, scheduler="none"), "gru") is None
    other = tiny_cfg(max_steps=6, checkpoint_every=2, scheduler="none", **changed)
    last = out / "checkpoints" / "last.ckpt"
    assert not_resumable(out, td, other, "gru") == (f"the settings changed since the checkpoint {last} was written "
                                                    f"({said}): it is not resumed under other settings")
    trained: list[dict] = []
    art = train_model(td, other, out, cell="gru", resume=True, on_progress=trained.append)
    assert trained and trained[0]["step"] <= 2 and art.metrics["steps"] == 6  # from the start
    assert all(art.hparams[k] == v for k, v in changed.items()), art.hparams
    assert not_resumable(out, td, other, "gru") is None


@pytest.mark.parametrize(("steps", "resumed"), [(12, False), (-1, False), (4, True)])
def test_a_longer_resume_of_a_onecycle_training_trains_from_the_start(tmp_path, steps, resumed):
    """Regression (review42): a resume that trains longer (more max_steps, which `settings_changed` lets resume) under
    scheduler = 'onecycle' failed at the first step past the old end, at every resume: 'training gru failed: Tried to
    step 8 times. The specified number of total steps is 7' (Lightning restores the checkpoint's OneCycleLR, built
    for the old max_steps). It trains from the start, saying why; fewer steps (the schedule not run past) resumes."""
    from flowcast.models.train import not_resumable

    td = make_td()
    out = tmp_path / "run"
    train_model(td, tiny_cfg(max_steps=6, checkpoint_every=2, scheduler="onecycle"), out, cell="gru")
    (out / "model.ckpt").unlink()  # killed while it trained
    longer = tiny_cfg(max_steps=steps, max_epochs=3 if steps < 0 else None, checkpoint_every=2, scheduler="onecycle")
    why = not_resumable(out, td, longer, "gru")
    assert (why is None) is resumed, why
    if not resumed:
        epochs = ", max_epochs 3: a schedule ending at step " if steps < 0 else " ("
        assert f"(max_steps 6 -> {steps}{epochs}" in why, why
        assert "the onecycle learning-rate schedule the checkpoint holds ends at step 6" in why, why
    trained: list[dict] = []
    art = train_model(td, longer, out, cell="gru", resume=True, on_progress=trained.append)  # failed, not resumed
    assert art.checkpoint.exists()
    if not resumed:
        assert trained and trained[0]["step"] <= 6 and trained[0]["epoch"] == 0  # from the start (a resume: past 6)


def _final_lr(out) -> float:
    """The learning rate the training in `out` ended at (its last checkpoint's schedule; the network's own group)."""
    return torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["lr_schedulers"][0][
        "_last_lr"][0]


@pytest.mark.parametrize("scheduler", ["cosine", "step", "onecycle"])
def test_a_longer_resume_ends_at_the_end_of_its_learning_rate_schedule(tmp_path, scheduler):
    """Regression (sched42): a resume with more max_steps kept the checkpoint's schedule, built for the old max_steps
    (Lightning restores it): under the default cosine one the learning rate climbed back up past the old end
    (3e-05 rising to 0.003 over 6 extra steps), so the training ended at its peak rate; under step it went on decaying
    (a fourth and fifth 0.3x). It trains from the start, saying why, and ends where a fresh training of as many steps
    does: at the schedule's end value."""
    from flowcast.models.train import not_resumable

    td = make_td()
    out, fresh = tmp_path / "run", tmp_path / "fresh"
    train_model(td, tiny_cfg(max_steps=6, checkpoint_every=2, scheduler=scheduler), out, cell="gru")
    (out / "model.ckpt").unlink()  # killed while it trained
    longer = tiny_cfg(max_steps=12, checkpoint_every=2, scheduler=scheduler)
    why = not_resumable(out, td, longer, "gru")
    assert why is not None and f"(max_steps 6 -> 12 (the {scheduler} learning-rate schedule the checkpoint holds" in why
    train_model(td, longer, out, cell="gru", resume=True)
    train_model(td, longer, fresh, cell="gru")
    lr, end = _final_lr(out), _final_lr(fresh)
    assert end < longer.lr * 0.05  # the schedule's end value, far below its peak (lr)
    assert lr == pytest.approx(end)


@pytest.mark.parametrize("scheduler", ["cosine", "step", "onecycle"])
@pytest.mark.parametrize("max_steps", [-1, 500], ids=["no-step-limit", "steps-beyond-the-epochs"])
def test_a_resume_with_more_epochs_ends_at_the_end_of_its_learning_rate_schedule(tmp_path, scheduler, max_steps):
    """Regression (edge42): a training bounded by max_epochs (its schedule built for epochs x batches steps) resumed
    with more max_epochs kept the checkpoint's schedule (Lightning restores it) and ran it past its end: max_epochs
    is not among the checkpoint's settings and max_steps had not changed, so `settings_changed` saw nothing. The
    schedule the checkpoint holds is compared with the one the resume would build: it trains from the start, saying
    why, and ends where a fresh training of as many epochs does; the same max_epochs still resumes."""
    from flowcast.models.train import not_resumable

    td = make_td()
    out, fresh = tmp_path / "run", tmp_path / "fresh"
    first = tiny_cfg(max_steps=max_steps, max_epochs=1, checkpoint_every=2, scheduler=scheduler)
    train_model(td, first, out, cell="gru")
    (out / "model.ckpt").unlink()  # killed while it trained
    assert not_resumable(out, td, first, "gru") is None  # the same schedule: resumed
    longer = tiny_cfg(max_steps=max_steps, max_epochs=2, checkpoint_every=2, scheduler=scheduler)
    why = not_resumable(out, td, longer, "gru")
    assert why is not None and f"the {scheduler} learning-rate schedule the checkpoint holds ends at step" in why, why
    assert "max_epochs 2" in why
    train_model(td, longer, out, cell="gru", resume=True)
    art = train_model(td, longer, fresh, cell="gru")
    lr, end = _final_lr(out), _final_lr(fresh)
    assert end < longer.lr * 0.05 and art.metrics["steps"] > 2  # the schedule's end value, far below its peak (lr)
    assert lr == pytest.approx(end)


def test_a_resume_with_fewer_steps_but_more_epochs_names_the_epochs_it_runs_past_the_schedule_by(tmp_path):
    """A training bounded by its epochs (max_steps 500 beyond one epoch's batches) resumed with max_steps 400 and
    max_epochs 2 runs its schedule past the end by the extra epoch; the reason said only 'max_steps 500 -> 400 (the
    cosine learning-rate schedule the checkpoint holds ends at step N: resumed past it ...)', as if fewer steps did."""
    from flowcast.models.train import not_resumable

    td = make_td()
    out = tmp_path / "run"
    train_model(td, tiny_cfg(max_steps=500, max_epochs=1, checkpoint_every=2), out, cell="gru")
    (out / "model.ckpt").unlink()  # killed while it trained
    why = not_resumable(out, td, tiny_cfg(max_steps=400, max_epochs=2, checkpoint_every=2), "gru") or ""
    assert "max_steps 500 -> 400, max_epochs 2: a schedule ending at step " in why, why
    assert "(the cosine learning-rate schedule the checkpoint holds ends at step " in why, why


def test_an_epoch_bounded_resume_plans_its_schedule_over_every_node_of_a_multi_node_training(tmp_path):
    """A max_epochs-bounded training on distributed.nnodes machines (launcher = 'rendezvous'): an epoch is each
    rank's share of its windows, world = devices x nodes, so the schedule a resume builds (`_planned_end`) is of that
    world. It was planned over this machine's devices alone (twice the batches an epoch on 2 nodes), so every resume
    of a killed multi-node training was refused as 'the settings changed' and trained from the start. Here the
    checkpoint's schedule is 10 steps (one device, 10 samples an epoch): 2 epochs on 2 nodes (5 batches a rank) are
    as many, resumed; on one machine they are 20, refused."""
    from flowcast.config import DistributedConfig
    from flowcast.models.train import not_resumable, training_nodes

    td = make_td(n_series=2, length=40)
    out = tmp_path / "run"
    once = {"max_steps": -1, "batch_size": 1, "samples_per_epoch": 10, "checkpoint_every": 2}
    train_model(td, tiny_cfg(max_epochs=1, **once), out, cell="gru")
    (out / "model.ckpt").unlink()  # killed while it trained
    two = tiny_cfg(max_epochs=2, **once)
    nodes = training_nodes(DistributedConfig(launcher="rendezvous", nnodes=2, rdzv_endpoint="node0:29400"))
    assert nodes == 2 and training_nodes(None) == training_nodes(DistributedConfig()) == 1
    assert not_resumable(out, td, two, "gru", nodes=nodes) is None
    assert "a schedule ending at step 20" in (not_resumable(out, td, two, "gru") or "")


def test_an_epoch_bounded_resume_on_more_data_is_said_to_be_on_other_data(tmp_path):
    """Regression (rev42b): a max_epochs-bounded training whose source grew since its checkpoint (more windows, so
    more batches an epoch: a longer schedule, `_planned_end`) was refused as 'the settings changed ... (max_steps
    -1, max_epochs 1: a schedule ending at step 11 ...)', the settings unchanged; it is the data that changed."""
    from flowcast.models.train import not_resumable

    td = make_td(n_series=2, length=40)
    cfg = tiny_cfg(max_steps=-1, max_epochs=1, checkpoint_every=1, batch_size=256)  # fewer windows than a batch
    out = tmp_path / "run"
    train_model(td, cfg, out, cell="gru")
    (out / "model.ckpt").unlink()  # killed while it trained
    assert not_resumable(out, td, cfg, "gru") is None
    why = not_resumable(out, make_td(n_series=40, length=80), cfg, "gru") or ""
    assert "the data changed since the checkpoint" in why and "settings changed" not in why, why


def test_init_from_starts_training_from_the_checkpoint_weights(tmp_path):
    """model.init_from (the retrain's warm-started production refit, model.warm_start_steps): the
    network starts from that checkpoint's weights, not new ones from its seed; a checkpoint of
    another shape is refused, naming it."""
    td = make_td(n_series=3, length=40)
    first = train_model(td, tiny_cfg(seed=1), tmp_path / "first", cell="gru")
    # one step at a negligible learning rate: the weights stay where training started
    still = {"max_steps": 1, "lr": 1e-12, "optimizer": "sgd", "scheduler": "none", "seed": 2}
    warm = train_model(td, tiny_cfg(**still, init_from=str(first.checkpoint)), tmp_path / "warm", cell="gru")
    cold = train_model(td, tiny_cfg(**still), tmp_path / "cold", cell="gru")
    w0, ww, wc = _weights(first), _weights(warm), _weights(cold)
    assert all(torch.allclose(w0[k], ww[k], atol=1e-6) for k in w0)
    assert not all(torch.allclose(w0[k], wc[k], atol=1e-6) for k in w0)
    with pytest.raises(TrainingError, match=r"cannot start gru from .*first.*do not fit this network"):
        train_model(td, tiny_cfg(**still, hidden_size=8, init_from=str(first.checkpoint)), tmp_path / "bad",
                    cell="gru")


def test_train_pid_is_replaced_whole_not_rewritten_in_place(tmp_path):
    """Regression: train.pid was written in place (`write_text`): a reader polling for it (a watcher, a person's
    `kill $(cat train.pid)`) could open it empty or cut between the truncation and the write, and a re-run in a
    killed run's folder rewrote the old file where it stood. It is written beside and renamed over the old one."""
    out = tmp_path / "run"
    out.mkdir()
    (out / PID_FILE).write_text("4242")  # a killed run's
    before = (out / PID_FILE).stat().st_ino
    with open(out / PID_FILE) as keep:  # a reader that opened the old file keeps reading the old, whole content
        write_training_pid(out, 31337)
        assert keep.read() == "4242"
    assert (out / PID_FILE).stat().st_ino != before  # a new file renamed over it
    assert training_pid(out) == 31337
    assert sorted(p.name for p in out.iterdir()) == [PID_FILE]  # no temp file left beside it


@pytest.mark.parametrize("content", [None, "", "\n", "12ab", "-5", "0", "１２", b"\xff\xfe"])
def test_a_missing_empty_or_garbled_train_pid_names_no_process(tmp_path, content):
    """A folder whose training has not started (no train.pid), an empty or garbled one (a person's edit, a file
    cut by a full disk before the write was atomic) names no process: None, never a ValueError, never pid 0
    (os.kill(0, ...) signals the whole process group) nor a negative one."""
    if content is not None:
        (tmp_path / PID_FILE).write_bytes(content if isinstance(content, bytes) else content.encode())
    assert training_pid(tmp_path) is None
    (tmp_path / PID_FILE).write_text(" 123\n")
    assert training_pid(tmp_path) == 123


def test_init_from_a_network_saved_before_the_direct_covariate_path(tmp_path):
    """A checkpoint of a network with future covariates saved before the direct per-step path (no fut_skip weights)
    still starts a new one: it is that network, the path at 0 (it failed with 'Missing key(s) fut_skip.weight')."""
    from flowcast.models.rnn import RNNForecaster
    from flowcast.models.train import start_from

    kw = {"cell": "gru", "n_future": 2, "lookback": 6, "horizon": 3, "hidden_size": 8, "num_layers": 1}
    torch.manual_seed(0)
    old = RNNForecaster(**kw)
    torch.save({"state_dict": old.state_dict()}, tmp_path / "old.ckpt")
    new = RNNForecaster(**kw, future_skip=1)
    start_from(new, tmp_path / "old.ckpt", "gru")
    x, fut = torch.randn(4, 6, 4), torch.randn(4, 3, 2)
    with torch.no_grad():
        torch.testing.assert_close(new(x, fut, torch.zeros(4, 0)), old(x, fut, torch.zeros(4, 0)))


def test_the_direct_covariate_path_reads_the_declared_covariates_only():
    """The direct per-step path is for covariates a user declared (a promotion flag): data with calendar features
    alone (M3, the bundled samples) trains the network it always did, without the path or its 20x learning rate."""
    from dataclasses import replace

    import polars as pl
    from model_factories import make_td, tiny_cfg

    from flowcast.models.train import build_module

    td = make_td()
    module, _ = build_module(td, tiny_cfg(), "gru")
    assert td.meta.calendar_cols and module.fut_skip is None
    assert len(module.configure_optimizers()["optimizer"].param_groups) == 1
    promo = replace(td, frame=td.frame.with_columns((pl.col("ds").dt.month() == 12).cast(pl.Float64).alias("promo")),
                    meta=replace(td.meta, future_cols=[*td.meta.calendar_cols, "promo"], declared_future_cols=["promo"]))
    module, _ = build_module(promo, tiny_cfg(), "gru")
    assert module.fut_skip is not None and module.fut_skip.in_features == 1
