"""`blend`: statistical forecasts mixed into a network's, by hand-checkable arithmetic, and
`predict` applying a model's `blend` config (as the backtests and published forecasts do)."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
from model_factories import make_td, tiny_cfg

from flowcast.config import ModelConfig
from flowcast.models.baselines import baseline_forecast
from flowcast.models.predict import blend, predict
from flowcast.models.train import train_model


def _frame(values, **quantiles) -> pl.DataFrame:
    n = len(values)
    return pl.DataFrame({"unique_id": ["a"] * n, "ds": list(range(n)), "step": pl.Series(range(1, n + 1), dtype=pl.Int32),
                         "y_hat": [float(v) for v in values], **{k: [float(v) for v in q] for k, q in quantiles.items()}})


def test_blend_weights_the_forecasts_and_moves_the_quantiles_with_the_point():
    pred = _frame([10, 10], y_hat_q10=[8, 7], y_hat_q90=[12, 13])
    got = blend(pred, {"theta": _frame([20, 30]), "damped": _frame([40, 50]), "naive": _frame([0, 0])},
                {"theta": 0.25, "damped": 0.25})
    assert got.columns == pred.columns
    np.testing.assert_allclose(got["y_hat"].to_numpy(), [0.5 * 10 + 5 + 10, 0.5 * 10 + 7.5 + 12.5])
    np.testing.assert_allclose(got["y_hat_q10"].to_numpy(), [18, 22])  # shifted by the point's change
    np.testing.assert_allclose(got["y_hat_q90"].to_numpy(), [22, 28])


def test_blend_with_no_weights_is_the_prediction():
    pred = _frame([1, 2, 3])
    assert blend(pred, {}, {}).equals(pred)


@pytest.mark.parametrize("weights, others, match", [
    ({"theta": 0.6, "damped": 0.4}, ("theta", "damped"), "sum below 1"),
    ({"theta": -0.1}, ("theta",), ">= 0"),
    ({"theta": 0.5}, (), "forecast each"),
])
def test_blend_refuses_bad_weights(weights, others, match):
    with pytest.raises(ValueError, match=match):
        blend(_frame([1]), {k: _frame([1]) for k in others}, weights)


def test_blend_refuses_a_forecast_missing_rows():
    with pytest.raises(ValueError, match="theta forecasts 1 rows for the 2"):
        blend(_frame([1, 2]), {"theta": _frame([1])}, {"theta": 0.5})


@pytest.mark.parametrize("blend_cfg, match", [
    ({"prophet": 0.2}, "blend names"),
    ({"theta": 0.5, "damped": 0.5}, "sum below 1"),
    ({"theta": -0.2}, ">= 0"),
])
def test_model_config_validates_the_blend(blend_cfg, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(blend=blend_cfg)


def test_a_model_trained_with_a_blend_predicts_the_blend(tmp_path):
    td = make_td(length=[40, 30, 36], horizon=6, level=50.0)
    weights = {"theta": 0.25, "damped": 0.25}
    art = train_model(td, tiny_cfg(max_steps=5, blend=weights), tmp_path / "m", cell="gru")
    assert art.meta["config"]["blend"] == weights
    got = predict(art, td)
    plain = predict(dataclasses.replace(art, meta={**art.meta, "config": {**art.meta["config"], "blend": {}}}), td)
    stats = {k: baseline_forecast(k, td) for k in weights}
    expected = 0.5 * plain["y_hat"] + 0.25 * stats["theta"]["y_hat"] + 0.25 * stats["damped"]["y_hat"]
    assert got.drop("y_hat").equals(plain.drop("y_hat"))
    np.testing.assert_allclose(got["y_hat"].to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert not np.allclose(got["y_hat"].to_numpy(), plain["y_hat"].to_numpy())


def test_a_network_forecasts_with_the_scaling_it_was_trained_with(tmp_path):
    """Regression: the per-series scaling (`preprocess.scaler`, `log1p`) was not saved with a network: a forecast run
    whose settings differ from the retrain's (a flowcast.toml edited since, a FLOWCAST_PREPROCESS__* variable, a
    frequency recipe that gained log1p) fed it inputs on another scale, and it forecast other values without a word.
    The network records its scaling; data prepared otherwise is scaled again the model's way for it."""
    td = make_td(n_series=3, length=48, level=50.0)
    art = train_model(td, tiny_cfg(max_steps=5), tmp_path / "gru", cell="gru")
    want = predict(art, td, 6)
    for scaler, log1p in (("robust", False), ("standard", True), ("minmax", True)):
        other = make_td(n_series=3, length=48, level=50.0, scaler=scaler, log1p=log1p)
        assert not other.scalers.equals(td.scalers)
        got = predict(art, other, 6)
        np.testing.assert_allclose(got["y_hat"].to_numpy(), want["y_hat"].to_numpy(), rtol=1e-6)


def test_a_blend_may_name_any_statistical_model(tmp_path):
    """Regression: model.blend was checked against the four baselines, so {dotm = 0.3} (the statistical model the
    monthly hybrid's members include, like drift and arima) was refused ('blend names ['dotm']') although
    evaluation.statistical and combination take it. Any statistical model blends, by the same arithmetic."""
    from flowcast.models.recipes import statistical_forecast

    assert ModelConfig(blend={"dotm": 0.2, "drift": 0.1}).blend == {"dotm": 0.2, "drift": 0.1}
    td = make_td(length=[40, 30, 36], horizon=6, level=50.0)
    art = train_model(td, tiny_cfg(max_steps=5, blend={"dotm": 0.3}), tmp_path / "m", cell="gru")
    got = predict(art, td)
    plain = predict(dataclasses.replace(art, meta={**art.meta, "config": {**art.meta["config"], "blend": {}}}), td)
    expected = 0.7 * plain["y_hat"] + 0.3 * statistical_forecast("dotm", td, 6)["y_hat"]
    np.testing.assert_allclose(got["y_hat"].to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_a_series_too_short_for_a_blended_model_takes_the_naive_forecast_in_its_place():
    from flowcast.models.predict import _blended
    from flowcast.models.recipes import statistical_forecast

    td = make_td(length=[40, 1], horizon=4, level=50.0)
    raw = statistical_forecast("dotm", td, 4)
    short = raw.filter(pl.col("y_hat").is_null())["unique_id"].unique().to_list()
    assert len(short) == 1  # dotm needs 2 points
    got = _blended("dotm", td, 4)
    naive = baseline_forecast("naive", td, 4)
    assert got.height == raw.height and not got["y_hat"].null_count()
    np.testing.assert_allclose(got.filter(pl.col("unique_id").is_in(short))["y_hat"].to_numpy(),
                               naive.filter(pl.col("unique_id").is_in(short))["y_hat"].to_numpy())
    np.testing.assert_allclose(got.filter(~pl.col("unique_id").is_in(short))["y_hat"].to_numpy(),
                               raw.filter(~pl.col("unique_id").is_in(short))["y_hat"].to_numpy())


def test_a_horizon_beyond_the_networks_says_what_to_do(tmp_path):
    """Regression (README, 'Forecasting between retrains': a network refuses a longer --horizon): `flowcast forecast
    --horizon 14` with a 12-step network said only "model .../rnn-s0 forecasts 12 steps; asked for horizon=14"."""
    from flowcast.errors import TrainingError

    td = make_td(n_series=2, length=40, level=50.0)
    art = train_model(td, tiny_cfg(max_steps=2), tmp_path / "gru", cell="gru")
    h = int(td.meta.horizon)
    with pytest.raises(TrainingError, match=rf"forecasts {h} steps; asked for horizon={h + 2}: a network forecasts only "
                       rf"the steps it was trained for \(ask for {h} or fewer, or retrain with horizon {h + 2}: "
                       rf"flowcast run --horizon {h + 2}\)"):
        predict(art, td, h + 2)


def _checkpoint(folder, how: str):
    """A torch checkpoint `folder/model.ckpt` (with the meta.json of a network beside it), whole or damaged: cut
    short, zeroed, one byte flipped inside its weights (past its header: the member's CRC fails), or a folder."""
    import json
    import struct
    import zipfile

    import torch

    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"cell": "gru"}))
    ckpt = folder / "model.ckpt"
    torch.save({"state_dict": {"w": torch.arange(4096.0)}}, ckpt)
    data = ckpt.read_bytes()
    if how == "cut":
        ckpt.write_bytes(data[: len(data) // 2])
    elif how == "zeros":
        ckpt.write_bytes(b"\0" * len(data))
    elif how == "flip":
        with zipfile.ZipFile(ckpt) as zf:
            info = max(zf.infolist(), key=lambda i: i.compress_size)
        name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
        at = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
        ckpt.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:])
    elif how == "folder":  # an I/O error on open: zipfile raises IsADirectoryError, an OSError
        ckpt.unlink()
        ckpt.mkdir()
    else:
        assert how == "whole"
    return ckpt


@pytest.mark.parametrize(("how", "said"), [
    ("whole", None), ("cut", "is damaged or cut short (BadZipFile"), ("zeros", "is damaged or cut short (BadZipFile"),
    ("flip", "is damaged (its member model/data/0 fails its CRC)"),
    ("folder", "cannot be read (IsADirectoryError")])
def test_the_forecast_and_models_show_make_one_checkpoint_check(tmp_path, how, said):
    """Regression (polish19): an I/O error while the forecast checked a checkpoint's CRCs went through as a bare
    OSError naming no file (IsADirectoryError here), and `check_checkpoint` (the forecast) and
    `damaged_network_files` (`models show`) each made their own check. Both make `checkpoint_fault` now: the forecast
    refuses with a ModelFileError naming the file exactly the checkpoints `models show` names, for the same reason."""
    from flowcast.errors import ModelFileError
    from flowcast.models.predict import check_checkpoint, checkpoint_fault
    from flowcast.models.recipes import damaged_network_files

    ckpt = _checkpoint(tmp_path / "net", how)
    shown = damaged_network_files(tmp_path / "net")
    if said is None:
        check_checkpoint(ckpt)
        assert checkpoint_fault(ckpt) is None and shown == []
        return
    with pytest.raises(ModelFileError) as caught:
        check_checkpoint(ckpt)
    fault = checkpoint_fault(ckpt)
    assert fault is not None and str(caught.value).startswith(f"the model file {ckpt} ")
    assert str(caught.value).endswith(fault) and said in str(caught.value)
    assert shown == [f"{ckpt}: {fault}"]


@pytest.mark.parametrize(("trained", "given", "said"), [
    (True, False, ("was trained with the past covariate px, which the data does not declare: declare it as its "
                   "retrain did (--past-col px; past_cols in [sources.NAME])")),
    (False, True, ("the data declares the past covariate px, which the model was not trained with: leave it out, or "
                   "retrain with it (flowcast run)")),
])
def test_covariates_other_than_the_models_are_named_with_the_option(tmp_path, monkeypatch, trained, given, said):
    """newuser44: `flowcast forecast` of a --data file without the --future-col price --future-col promo its retrain
    was given failed with "data future_cols ['cal_week_sin', ...] differ from the model's [..., 'price', 'promo']":
    the calendar columns the user never named, and no option. It names the covariates missing or extra and what to
    give; the calendar columns, which flowcast derives itself, are left out of it. back44: the network's folder
    absolute and resolved, of a model read from a relative path too, the very sentence the check before Prefect
    says (`declared_covariates_refusal`), which named the folder as given (`home/models/...`)."""
    from flowcast.errors import TrainingError
    from flowcast.models.recipes import declared_covariates_refusal, load_recipe
    from flowcast.models.train import ModelArtifact

    train_model(make_td(n_series=2, length=40, past=trained), tiny_cfg(max_steps=2), tmp_path / "gru", cell="gru")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrainingError) as err:
        predict(ModelArtifact.load("gru"), make_td(n_series=2, length=40, past=given))
    assert said in str(err.value) and "cal_" not in str(err.value), str(err.value)
    assert str(err.value).endswith(f"({(tmp_path / 'gru').resolve()})"), str(err.value)
    assert declared_covariates_refusal(load_recipe("gru"), [], ["px"] if given else []) == str(err.value)
