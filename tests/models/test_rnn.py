"""RNNForecaster: shapes for every cell and mode, losses, non-crossing quantiles, optimisers, the mlp cell."""

from __future__ import annotations

import pytest
import torch

from flowcast.models.rnn import RNNForecaster, cell_mode


def _batch(B=5, L=8, H=3, P=1, F=2, K=1, T=None):
    x = torch.randn(B, L, 2 + P + F)
    x[..., 1] = 1.0
    fut = torch.randn(B, (T + H - 1) if T else H, F)
    tgt = torch.randn(B, T, H) if T else torch.randn(B, H)
    return {"x": x, "future": fut, "static": torch.randn(B, K), "target": tgt, "tmask": torch.ones_like(tgt)}


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("mode", ["windowed", "forking"])
@pytest.mark.parametrize("quantiles", [[], [0.1, 0.5, 0.9]])
def test_shapes(cell, mode, quantiles):
    m = RNNForecaster(cell=cell, n_past=1, n_future=2, n_static=1, lookback=8, horizon=3, hidden_size=8,
                      num_layers=2, mode=mode, loss="quantile" if quantiles else "mae", quantiles=quantiles)
    Q = max(1, len(quantiles))
    b = _batch()
    assert m(b["x"], b["future"], b["static"]).shape == (5, 3, Q)
    assert m.predict_scaled(b).shape == (5, 3, Q)
    seq = _batch(L=8, T=8)
    assert m(seq["x"], seq["future"], seq["static"], every_step=True).shape == (5, 8, 3, Q)
    loss = m.shared_step(seq, every_step=True)
    loss.backward()
    assert torch.isfinite(loss)


def test_quantiles_never_cross():
    torch.manual_seed(0)
    m = RNNForecaster(cell="gru", n_future=0, lookback=6, horizon=4, hidden_size=8, num_layers=1,
                      loss="quantile", quantiles=[0.9, 0.1, 0.5])  # given unsorted on purpose
    assert m.quantiles == [0.1, 0.5, 0.9] and m.point_index == 1
    out = m(torch.randn(64, 6, 2) * 10, torch.zeros(64, 4, 0), torch.zeros(64, 0))
    assert bool((out[..., 1:] >= out[..., :-1]).all())


@pytest.mark.parametrize("mode", ["windowed", "forking"])
def test_forecast_is_level_invariant(mode):
    """A level shift of the whole window shifts the forecast by exactly that level (windowed:
    the window is shifted by its last value; forking: the encoder reads first differences)."""
    torch.manual_seed(0)
    m = RNNForecaster(cell="lstm", lookback=6, horizon=2, hidden_size=8, num_layers=1, mode=mode)
    b = _batch(P=0, F=0, K=0, L=6, H=2)
    shifted = {**b, "x": b["x"].clone()}
    shifted["x"][..., 0] += 5.0
    torch.testing.assert_close(m.predict_scaled(shifted), m.predict_scaled(b) + 5.0)


@pytest.mark.parametrize("loss", ["mae", "mse", "huber", "quantile"])
def test_losses_ignore_masked_targets(loss):
    m = RNNForecaster(cell="rnn", lookback=4, horizon=3, hidden_size=4, num_layers=1, loss=loss)
    pred = torch.zeros(2, 3, 1)
    tgt = torch.tensor([[1.0, 1.0, 100.0], [1.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    expect = {"mae": 1.0, "mse": 1.0, "huber": 0.5, "quantile": 0.5}[loss]
    assert float(m.loss_fn(pred, tgt, mask)) == pytest.approx(expect)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
@pytest.mark.parametrize("scheduler", ["none", "cosine", "step", "onecycle"])
def test_optimisers_and_schedules(optimizer, scheduler):
    m = RNNForecaster(cell="gru", lookback=4, horizon=2, hidden_size=4, num_layers=1, optimizer=optimizer,
                      scheduler=scheduler, max_steps=10)
    conf = m.configure_optimizers()
    opt = conf if scheduler == "none" else conf["optimizer"]
    assert type(opt).__name__.lower() == optimizer
    if scheduler != "none":
        assert conf["lr_scheduler"]["interval"] == "step"


def test_unknown_cell_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown cell 'transformer'"):
        RNNForecaster(cell="transformer")


@pytest.mark.parametrize("quantiles", [[], [0.1, 0.5, 0.9]])
def test_mlp_cell_shapes_and_gradients(quantiles):
    """The mlp cell reads the flattened window: one forecast per window, every layer gets a gradient."""
    m = RNNForecaster(cell="mlp", n_past=1, n_future=2, n_static=1, lookback=8, horizon=3, hidden_size=8,
                      num_layers=3, dropout=0.1, loss="quantile" if quantiles else "mae", quantiles=quantiles)
    Q = max(1, len(quantiles))
    b = _batch()
    assert m(b["x"], b["future"], b["static"]).shape == (5, 3, Q)
    assert m.predict_scaled(b).shape == (5, 3, Q)
    assert sum(isinstance(layer, torch.nn.Linear) for layer in m.encoder) == 3
    assert m.encoder[0].in_features == 8 * (2 + 1 + 2)  # lookback x (y, mask, past, future)
    loss = m.shared_step(b, every_step=False)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in m.encoder.parameters())


def test_mlp_forecast_is_level_invariant():
    torch.manual_seed(0)
    m = RNNForecaster(cell="mlp", lookback=6, horizon=2, hidden_size=8, num_layers=2)
    b = _batch(P=0, F=0, K=0, L=6, H=2)
    shifted = {**b, "x": b["x"].clone()}
    shifted["x"][..., 0] += 5.0
    torch.testing.assert_close(m.predict_scaled(shifted), m.predict_scaled(b) + 5.0)


def test_mlp_cell_in_forking_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="cell 'mlp' has no recurrence and trains in windowed mode only"):
        RNNForecaster(cell="mlp", mode="forking")
    assert cell_mode("forking", "mlp") == "windowed"
    assert cell_mode("forking", "gru") == "forking" and cell_mode("windowed", "rnn") == "windowed"


def test_mlp_cell_rejects_a_window_of_another_length():
    m = RNNForecaster(cell="mlp", lookback=6, horizon=2, hidden_size=8, num_layers=1)
    b = _batch(P=0, F=0, K=0, L=5, H=2)
    with pytest.raises(ValueError, match="lookback 6 rows, got 5"):
        m.predict_scaled(b)


def _promo_batch(B=64, L=8, H=4, mode="windowed"):
    """y is a level plus 2 x a 0/1 promotion flag (a future-known covariate) plus small noise."""
    T = L if mode == "forking" else None
    promo = (torch.rand(B, L + H) < 0.3).float()  # [B, L+H]
    y = 2.0 * promo + 0.05 * torch.randn(B, L + H)
    x = torch.stack([y[:, :L], torch.ones(B, L), promo[:, :L]], dim=-1)  # [B, L, 3] y, mask, promo
    if T:  # every origin t: targets y[t+1..t+H], covariates rows 1..L+H-1
        idx = torch.arange(T)[:, None] + torch.arange(1, H + 1)[None, :]  # [T, H]
        tgt = y[:, idx]  # [B, T, H] each origin's next H values
        return {"x": x, "future": promo[:, 1:L + H, None], "static": torch.zeros(B, 0), "target": tgt,
                "tmask": torch.ones_like(tgt)}
    tgt = y[:, L:]  # [B, H]
    return {"x": x, "future": promo[:, L:, None], "static": torch.zeros(B, 0), "target": tgt, "tmask": torch.ones_like(tgt)}


@pytest.mark.parametrize("mode", ["windowed", "forking"])
def test_future_covariate_of_a_step_drives_that_step(mode):
    """A promotion on horizon step h lifts step h: with the direct per-step path a small network learns it in a
    few steps (through the head alone it had to be learned per step: backtests with a promotion flag that drives
    sales barely beat the same network without it)."""
    def fit(skip: bool) -> float:
        torch.manual_seed(0)
        m = RNNForecaster(cell="gru", n_future=1, lookback=8, horizon=4, hidden_size=8, num_layers=1, mode=mode,
                          future_skip=int(skip), scheduler="none")  # model.lr's default, 1e-3
        opt = m.configure_optimizers()
        for _ in range(150):
            opt.zero_grad()
            loss = m.shared_step(_promo_batch(mode=mode), every_step=mode == "forking")
            loss.backward()
            opt.step()
        torch.manual_seed(1)
        b = _promo_batch(B=256, mode="windowed")
        with torch.no_grad():
            pred = m.predict_scaled(b)[..., 0]  # [B, H]
        return float((pred - b["target"]).abs().mean())

    with_skip = fit(True)
    assert with_skip < 0.25, with_skip  # the noise alone is ~0.06; a model blind to the promotion is off by ~0.8
    assert with_skip < 0.5 * fit(False)


def test_every_origin_reads_its_own_horizon_covariates():
    """In one forking pass, origin t's forecast uses covariate rows t+1..t+H, as a pass cut at t does."""
    torch.manual_seed(0)
    m = RNNForecaster(cell="gru", n_future=2, lookback=6, horizon=3, hidden_size=8, num_layers=1, mode="forking",
                      future_skip=1)
    b = _batch(P=0, F=2, K=0, L=6, H=3, T=6)
    with torch.no_grad():
        every = m(b["x"], b["future"], b["static"], every_step=True)  # [B, T, H, 1]
        for t in range(6):
            one = m(b["x"][:, :t + 1], b["future"][:, t:t + 3], b["static"])  # [B, H, 1]
            torch.testing.assert_close(every[:, t], one)
