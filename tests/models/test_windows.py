"""Packed series and lazy windows: counts, contents, padding, validation cut, memory, sharding."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from model_factories import make_td

from flowcast.models.windows import (
    ForkingDataset,
    ShardedSampler,
    ValDataset,
    WindowDataModule,
    WindowDataset,
    fit_cov_stats,
    gather_windows,
    n_windows,
    pack,
    packed_nbytes,
)


def _series(p, s):
    return p.y[p.offsets[s] : p.offsets[s + 1]].numpy()


@pytest.mark.parametrize("short", ["pad", "exclude"])
@pytest.mark.parametrize("lengths", [[30, 20, 8, 3], [12, 12], [50]])
def test_window_count_matches_formula_and_enumeration(lengths, short):
    L, H = 6, 3
    td = make_td(length=lengths, horizon=H, lookback=L)
    p = pack(td, fit_cov_stats(td))
    ds = WindowDataset(p, L, H, val_size=H, short=short)
    assert len(ds) == n_windows(lengths, L, H, H, short)
    # brute force: every (series, cut) whose targets lie in the training span
    first = L if short == "exclude" else 1
    expect = [(s, t) for s, n in enumerate(lengths) for t in range(first, n - H + 1) if t + H <= n - H]
    got = list(zip(*[x.tolist() for x in ds.index.locate(torch.arange(len(ds)))]))
    assert got == expect


def test_window_contents_and_padding():
    L, H = 5, 2
    td = make_td(length=[12, 4], horizon=H, lookback=L, calendar=False)
    p = pack(td, fit_cov_stats(td))
    ds = WindowDataset(p, L, H, val_size=H, short="pad")
    b = ds.__getitems__(list(range(len(ds))))
    sid, cut = ds.index.locate(torch.arange(len(ds)))
    for k in range(len(ds)):
        y = _series(p, int(sid[k]))
        t = int(cut[k])
        hist = np.concatenate([np.zeros(max(0, L - t)), y[max(0, t - L) : t]])
        np.testing.assert_allclose(b["x"][k, :, 0].numpy(), hist, rtol=1e-6)
        np.testing.assert_array_equal(b["x"][k, :, 1].numpy(), (np.arange(t - L, t) >= 0).astype(np.float32))
        np.testing.assert_allclose(b["target"][k].numpy(), y[t : t + H], rtol=1e-6)
        assert b["tmask"][k].sum() == H
    # the short series (4 rows, 2 of them validation) leaves no room for a 2-step target
    assert int((sid == 1).sum()) == 0
    # the scaled target round-trips through the scalers
    back = td.inverse(td.scale(td.frame).rename({"y": "y_hat"}))
    np.testing.assert_allclose(back["y_hat"].to_numpy(), td.frame["y"].to_numpy(), rtol=1e-9)


def test_validation_window_is_last_horizon_of_training_span():
    L, H = 4, 3
    td = make_td(length=[20, 9], horizon=H, lookback=L)
    p = pack(td, fit_cov_stats(td))
    val = ValDataset(p, L, H, val_size=H)
    b = val.__getitems__([0, 1])
    for k, n in enumerate([20, 9]):
        y = _series(p, k)
        np.testing.assert_allclose(b["target"][k].numpy(), y[n - H :], rtol=1e-6)
        np.testing.assert_allclose(b["x"][k, :, 0].numpy(), y[n - H - L : n - H], rtol=1e-6)
    # no training target reaches into the validation span
    ds = WindowDataset(p, L, H, val_size=H)
    sid, cut = ds.index.locate(torch.arange(len(ds)))
    assert bool(((cut + H) <= p.obs_len[sid] - H).all())


def _tensor_bytes(*tensors) -> int:
    return sum(t.element_size() * t.numel() for t in tensors)


def test_memory_grows_with_observations_not_lookback():
    td = make_td(n_series=5, length=40, past=True, static=True)
    p = pack(td, fit_cov_stats(td))
    n_obs, S = td.n_obs, td.n_series
    # the bytes of the tensors actually allocated, against the formula the docs quote
    assert _tensor_bytes(p.y, p.past, p.future, p.static, p.offsets, p.obs_len) == p.nbytes
    assert p.nbytes == packed_nbytes(n_obs, S, 1, len(td.meta.future_cols), 1)
    # twice the observations: twice the per-row bytes, measured (the per-series part stays)
    td2 = make_td(n_series=5, length=80, past=True, static=True)
    p2 = pack(td2, fit_cov_stats(td2))
    per_row = 4 * (1 + 1 + len(td.meta.future_cols))
    assert td2.n_obs == 2 * n_obs and p2.nbytes - p.nbytes == per_row * n_obs
    # windows are indices into the packed rows, whatever the lookback: datasets of lookback 4 and
    # 30 over the same pack add no row data, and their sample index is O(series)
    a = WindowDataset(p, 4, 3, 3)
    b = WindowDataset(p, 30, 3, 3)
    for ds in (a, b):
        index = (ds.index.first_cut, ds.index.counts, ds.index.cum, ds.index.limit)
        assert sum(t.numel() for t in index) <= 4 * S + 1
        assert ds.p.y.data_ptr() == p.y.data_ptr()  # the same rows, not a copy per window


def test_forking_targets_match_windows():
    H = 3
    td = make_td(length=[15, 11], horizon=H, lookback=4)
    p = pack(td, fit_cov_stats(td))
    fk = ForkingDataset(p, length=12, horizon=H, val_size=H)
    b = fk.__getitems__([0, 1])
    T = 12
    for k, n in enumerate([15, 11]):
        y = _series(p, k)
        limit = n - H  # training span: the last H rows are validation
        end = limit - 1  # the crop ends after the last origin with a target in the span
        rows = np.arange(end - T, end)
        for t, r in enumerate(rows):
            if r < 0:
                assert b["tmask"][k, t].sum() == 0
                continue
            have = min(H, limit - 1 - r)  # targets r+1 .. inside the span; the rest masked
            assert b["tmask"][k, t].tolist() == [1.0] * have + [0.0] * (H - have)
            np.testing.assert_allclose(b["target"][k, t, :have].numpy(), y[r + 1 : r + 1 + have], rtol=1e-6)
            assert not b["target"][k, t, have:].any()
    # full-target origins: every row up to n - val - H - 1; then H - 1 recent origins with part of theirs
    full = b["tmask"].sum(-1) == H
    partial = (b["tmask"].sum(-1) > 0) & ~full
    assert int(full.sum()) == (15 - 2 * H) + (11 - 2 * H)
    assert int(partial.sum()) == 2 * (H - 1)


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("num_samples", [None, 7])
def test_sharded_sampler_partitions_across_ranks(world, num_samples):
    n = 20
    shards = [list(ShardedSampler(n, shuffle=True, seed=1, num_samples=num_samples, rank=r, world_size=world))
              for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # same number of batches on every rank
    total = num_samples or n
    flat = [i for s in shards for i in s]
    assert len(set(flat)) == total  # every chosen sample on some rank (wrap-around pads only)
    s0 = ShardedSampler(n, shuffle=True, seed=1, num_samples=num_samples)
    first = list(s0)
    s0.set_epoch(1)
    assert list(s0) != first  # a fresh permutation (or subset) per epoch


def test_datamodule_loader_gives_full_batches():
    td = make_td(n_series=3, length=40)
    p = pack(td, fit_cov_stats(td))
    dm = WindowDataModule(p, lookback=12, horizon=6, val_size=6, batch_size=16, samples_per_epoch=40)
    batches = list(dm.train_dataloader())
    assert sum(b["x"].shape[0] for b in batches) == 40
    assert batches[0]["x"].shape == (16, 12, 2 + 2)  # y, mask, 2 calendar
    assert batches[0]["future"].shape == (16, 6, 2)
    v = next(iter(dm.val_dataloader()))
    assert v["x"].shape[0] == 3


def test_gather_window_at_series_end_for_prediction():
    td = make_td(length=[10], horizon=2, lookback=4)
    p = pack(td, fit_cov_stats(td), horizon=2)
    assert int(p.offsets[-1]) == 12 and int(p.obs_len[0]) == 10
    b = gather_windows(p, torch.tensor([0]), torch.tensor([10]), 4, 2, torch.tensor([10]))
    assert b["tmask"].sum() == 0  # nothing observed beyond the end
    assert torch.count_nonzero(b["future"]) > 0  # calendar features of the horizon rows are there


def test_datasets_work_under_torch_distributed_sampler():
    """Lightning's default DDP path (DistributedSampler) also gives each window to exactly one rank."""
    from torch.utils.data import DataLoader, DistributedSampler

    td = make_td(n_series=3, length=30)
    p = pack(td, fit_cov_stats(td))
    ds = WindowDataset(p, 12, 6, 6)
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=0, drop_last=False)
        for b in DataLoader(ds, batch_size=8, sampler=sampler, collate_fn=lambda x: x):
            seen.append(b["x"])
    x = torch.cat(seen)
    assert x.shape[0] >= len(ds)  # padded to equal shares, like DistributedSampler always does
    assert torch.unique(x.reshape(x.shape[0], -1), dim=0).shape[0] == len(ds)


@pytest.mark.parametrize("log1p", [False, True])
@pytest.mark.parametrize("horizon", [0, 3])
def test_pack_matches_training_data_scaling(log1p, horizon):
    td = make_td(length=[15, 9, 12], horizon=3, past=True, static=True, log1p=log1p)
    stats = fit_cov_stats(td)
    p = pack(td, stats, horizon=horizon)
    want = td.scale(td.frame)
    fut = td.future_frame(3)
    for s, uid in enumerate(td.ids):
        rows = want.filter(pl.col("unique_id") == uid)
        n = rows.height
        got = p.y[p.offsets[s] : p.offsets[s] + n].numpy()
        np.testing.assert_allclose(got, rows["y"].to_numpy(), rtol=1e-5, atol=1e-6)
        px = (rows["px"].to_numpy() - stats.past_mean[0]) / stats.past_std[0]
        np.testing.assert_allclose(p.past[p.offsets[s] : p.offsets[s] + n, 0].numpy(), px, rtol=1e-5, atol=1e-6)
        assert int(p.offsets[s + 1] - p.offsets[s]) == n + horizon
        if horizon:
            f = fut.filter(pl.col("unique_id") == uid).select(td.meta.future_cols).to_numpy()
            np.testing.assert_allclose(p.future[p.offsets[s] + n : p.offsets[s + 1]].numpy(), f, rtol=1e-6)
            assert not p.y[p.offsets[s] + n : p.offsets[s + 1]].any()


@pytest.mark.parametrize("horizon", [0, 6])
def test_pack_computes_calendar_features_the_frame_does_not_hold(horizon):
    from dataclasses import replace

    td = make_td(calendar=True, past=True, static=True)  # frame holds the calendar columns (older layout)
    lean = replace(td, frame=td.frame.drop(td.meta.calendar_cols))  # what preprocessing produces now
    a, b = pack(td, fit_cov_stats(td), horizon=horizon), pack(lean, fit_cov_stats(lean), horizon=horizon)
    assert td.meta.calendar_cols and a.future.shape[1] == len(td.meta.future_cols)
    for k in ("y", "past", "future", "static", "offsets", "obs_len"):
        assert torch.equal(getattr(a, k), getattr(b, k)), k


@pytest.mark.parametrize("chunk", [1, 7, 50])
@pytest.mark.parametrize("horizon", [0, 4])
def test_pack_gives_the_same_tensors_at_any_chunk_size(chunk, horizon):
    """Packing converts `chunk` rows at a time: series boundaries, covariates, calendar columns
    computed from ds and the horizon rows land in the same places whatever the chunk."""
    from dataclasses import replace

    td = make_td(length=[15, 9, 12, 20], horizon=4, past=True, static=True, log1p=True)
    td = replace(td, frame=td.frame.drop(td.meta.calendar_cols))  # calendar from ds, chunk by chunk
    stats = fit_cov_stats(td)
    want, got = pack(td, stats, horizon=horizon), pack(td, stats, horizon=horizon, chunk=chunk)
    for k in ("y", "past", "future", "static", "offsets", "obs_len"):
        assert torch.equal(getattr(want, k), getattr(got, k)), k


def test_pack_standardises_declared_future_covariates_with_the_historys_stats():
    """Regression: declared future covariates entered the network raw while past covariates and statics were
    standardised: a price of ~1000 fed a GRU gate values of 1000 (the backtest of a network with such a price
    in units: MASE 0.615, in thousands 0.484, standardised 0.190; one seed, 300 steps). They are standardised with the
    history's mean and std, and the planned values of the horizon with the same."""
    from dataclasses import replace

    td = make_td(length=[15, 9, 12], horizon=3)
    frame = td.frame.with_columns((1000.0 + 50.0 * (pl.int_range(pl.len()) % 3)).alias("price"))
    last = frame.group_by("unique_id").agg(pl.col("ds").max())
    planned = pl.DataFrame({"unique_id": last["unique_id"], "ds": last["ds"], "price": [1100.0] * last.height})
    planned = planned.with_columns(pl.col("ds").dt.offset_by(td.meta.freq))
    meta = replace(td.meta, future_cols=[*td.meta.future_cols, "price"], declared_future_cols=["price"])
    td = replace(td, frame=frame, meta=meta, future_exog=planned)
    stats = fit_cov_stats(td)
    p = pack(td, stats, horizon=3)
    j = meta.future_cols.index("price")
    mean, std = float(frame["price"].mean()), float(frame["price"].std(ddof=0))
    hist = torch.cat([p.future[p.offsets[s] : p.offsets[s] + n, j] for s, n in enumerate([15, 9, 12])]).numpy()
    np.testing.assert_allclose(hist, (frame.sort("unique_id", "ds")["price"].to_numpy() - mean) / std, rtol=1e-5)
    first_step = p.future[p.offsets[0] + 15, j].item()
    assert first_step == pytest.approx((1100.0 - mean) / std, rel=1e-5)
    # a model saved before (no future stats) still gets the raw values it was trained on
    old = type(stats)(stats.past_mean, stats.past_std, stats.static_mean, stats.static_std)
    assert old.future_mean == [] and pack(td, old, horizon=3).future[p.offsets[0] + 15, j].item() == 1100.0
