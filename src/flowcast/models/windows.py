"""Lazy training windows: every series packed in one float32 tensor, a sample is an index.

`PackedSeries` holds the scaled target, the past and future-known covariates and the statics of
all series as contiguous tensors with per-series offsets. A windowed training sample is a cut
point (series, t): the lookback is rows [t - L, t), the targets rows [t, t + H). Nothing is
materialised: `gather_windows` builds a batch of windows with one index tensor, so memory grows
with the number of observations (see `packed_nbytes`), never with observations x lookback.

`forking` samples are whole (cropped) series: the encoder reads them once and every step is a
forecast origin (MQ-RNN's forking sequences), see `gather_forking`.

Validation is the last `val_size` periods of each series' training span: training targets end
before it, the validation window cuts there. Series shorter than the lookback are padded and
masked (`short="pad"`) or get no training windows (`short="exclude"`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np
import polars as pl
import torch
from torch.utils.data import Dataset, Sampler

from flowcast.data.calendar import calendar_exprs
from flowcast.data.statics import numeric_statics
from flowcast.data.training_data import TrainingData

Short = Literal["pad", "exclude"]


@dataclass
class CovStats:
    """Global standardisation of covariates and statics (fitted on the training frame)."""

    past_mean: list[float]
    past_std: list[float]
    static_mean: list[float]
    static_std: list[float]
    # per meta.future_cols (calendar features 0/1: already in [-1, 1]); empty in a model saved before declared
    # future covariates were standardised (a price in units entered the network raw): they stay raw for it
    future_mean: list[float] = field(default_factory=list)
    future_std: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: list(v) for k, v in self.__dict__.items()}


def _std(col: pl.Series) -> tuple[float, float]:
    m = float(cast(float, col.mean())) if col.len() else 0.0
    s = float(cast(float, col.std(ddof=0))) if col.len() > 1 else 1.0
    if not math.isfinite(m):
        m = 0.0
    if not math.isfinite(s) or s < 1e-8:
        s = 1.0
    return m, s


def fit_cov_stats(td: TrainingData) -> CovStats:
    past = [_std(td.frame[c].drop_nulls()) for c in td.meta.past_cols]
    static = [_std(td.static[c].drop_nulls()) for c in td.meta.static_cols] if td.static is not None else []
    future = [(0.0, 1.0) if c in td.meta.calendar_cols else _std(td.frame[c].drop_nulls()) for c in td.meta.future_cols]
    return CovStats(
        past_mean=[p[0] for p in past], past_std=[p[1] for p in past],
        static_mean=[s[0] for s in static], static_std=[s[1] for s in static],
        future_mean=[f[0] for f in future], future_std=[f[1] for f in future],
    )


@dataclass
class PackedSeries:
    """All series in contiguous tensors. Row r of series s is `offsets[s] + r`.

    y:       [N] float32, scaled target (0 where unobserved, e.g. future rows)
    past:    [N, P] float32, standardised past covariates (0 beyond the observed span)
    future:  [N, F] float32, future-known covariates (calendar + declared)
    static:  [S, K] float32, standardised statics
    offsets: [S + 1] int64; obs_len: [S] int64 observed rows (rows beyond are future-only)
    """

    ids: list[str]
    y: torch.Tensor
    past: torch.Tensor
    future: torch.Tensor
    static: torch.Tensor
    offsets: torch.Tensor
    obs_len: torch.Tensor

    @property
    def n_series(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        return sum(t.element_size() * t.numel() for t in (self.y, self.past, self.future, self.static, self.offsets, self.obs_len))


def packed_nbytes(n_obs: int, n_series: int, n_past: int, n_future: int, n_static: int) -> int:
    """Memory of a PackedSeries: linear in observations, independent of the lookback."""
    return 4 * n_obs * (1 + n_past + n_future) + 4 * n_series * n_static + 8 * (n_series + 1) + 8 * n_series


_CHUNK = 1 << 22  # rows converted at a time: bounds the temporary memory of packing


def _fill_column(dest: np.ndarray, rows: np.ndarray | None, values: pl.Series, mean: float = 0.0, std: float = 1.0,
                 chunk: int = _CHUNK, missing: float = 0.0) -> None:
    """dest[rows] = (values - mean) / std as float32, nulls/NaN -> `missing` (raw scale), chunk by chunk."""
    for a in range(0, values.len(), chunk):
        v = values.slice(a, chunk).cast(pl.Float64).fill_nan(None).fill_null(missing).to_numpy()
        v = ((v - mean) / std).astype(np.float32) if (mean != 0.0 or std != 1.0) else v.astype(np.float32)
        if rows is None:
            dest[a : a + len(v)] = v
        else:
            dest[rows[a : a + len(v)]] = v


def pack(td: TrainingData, stats: CovStats, horizon: int = 0, *, chunk: int = _CHUNK) -> PackedSeries:
    """Pack `td` (target scaled with its per-series scalers, covariates with `stats`). With
    `horizon` > 0 each series is followed by its `horizon` future rows (y = 0, future covariates
    from `td.future_frame`), for prediction. Works column by column in chunks, so that the peak
    memory stays a small multiple of the packed size (`chunk` rows converted at a time)."""
    meta = td.meta
    frame = td.frame
    ids = td.ids  # scalers are sorted by unique_id, and so is the frame
    obs = frame.group_by("unique_id").agg(pl.len().alias("obs"))
    order = pl.DataFrame({"unique_id": ids}).join(obs, on="unique_id", how="left")
    if order["obs"].null_count():
        missing = order.filter(pl.col("obs").is_null())["unique_id"].to_list()
        raise ValueError(f"series with scalers but no rows: {missing[:5]}")
    obs_len = order["obs"].to_numpy().astype(np.int64)
    if int(obs_len.sum()) != frame.height or not frame["unique_id"].is_sorted():
        raise ValueError("TrainingData.frame must be sorted by (unique_id, ds) and every series must have a scaler")
    S, h = len(ids), max(0, horizon)
    n = obs_len + h
    offsets = np.zeros(S + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(n)
    N = int(offsets[-1])
    # packed row of every observed row (identity when there are no horizon rows)
    rows = None if h == 0 else np.arange(frame.height, dtype=np.int64) + np.repeat(np.arange(S, dtype=np.int64) * h, obs_len)

    # target: f(y) = log1p(y) or y, then (f(y) - center) / scale per series
    sc = pl.DataFrame({"unique_id": ids}).join(td.scalers, on="unique_id", how="left")
    center, scale = sc["center"].to_numpy().astype(np.float64), sc["scale"].to_numpy().astype(np.float64)
    log1p = sc["log1p"].fill_null(False).to_numpy().astype(bool)
    obs_start = np.zeros(S + 1, dtype=np.int64)
    obs_start[1:] = np.cumsum(obs_len)
    y = np.zeros(N, dtype=np.float32)
    yv = frame["y"]
    for a in range(0, frame.height, chunk):
        v = yv.slice(a, chunk).cast(pl.Float64).fill_null(0.0).to_numpy().copy()
        sid = np.searchsorted(obs_start, np.arange(a, a + len(v)), side="right") - 1
        lg = log1p[sid]
        if lg.any():
            v[lg] = np.log1p(v[lg])
        v = np.nan_to_num((v - center[sid]) / scale[sid]).astype(np.float32)
        if rows is None:
            y[a : a + len(v)] = v
        else:
            y[rows[a : a + len(v)]] = v

    past = np.zeros((N, len(meta.past_cols)), dtype=np.float32)
    for j, c in enumerate(meta.past_cols):
        col = np.zeros(N, dtype=np.float32)
        _fill_column(col, rows, frame[c], stats.past_mean[j], stats.past_std[j], chunk)
        past[:, j] = col
    future = np.zeros((N, len(meta.future_cols)), dtype=np.float32)
    fut = td.future_frame(h) if h and meta.future_cols else None
    if fut is not None:  # sorted by (unique_id, step), every series has h rows
        sid_f = np.repeat(np.arange(S, dtype=np.int64), h)
        rows_f = offsets[:-1][sid_f] + obs_len[sid_f] + (fut["step"].to_numpy().astype(np.int64) - 1)
    # calendar features are not stored in the frame (one saved by an older version may hold them): they
    # are computed from ds chunk by chunk (the same Float64 values as before, then float32 like every input)
    from_ds = {j: c for j, c in enumerate(meta.future_cols) if c in meta.calendar_cols and c not in frame.columns}
    for j, c in enumerate(meta.future_cols):
        if j in from_ds:
            continue
        col = np.zeros(N, dtype=np.float32)
        m, sd = (stats.future_mean[j], stats.future_std[j]) if len(stats.future_mean) == len(meta.future_cols) else (0.0, 1.0)
        _fill_column(col, rows, frame[c], m, sd, chunk=chunk)
        if fut is not None:  # the planned values, on the history's scale
            _fill_column(col, rows_f, fut[c], m, sd, chunk=chunk)
        future[:, j] = col
    if from_ds:
        exprs, ds = calendar_exprs(meta.freq, tz=meta.tz), frame["ds"]
        for a in range(0, frame.height, chunk):
            cal = pl.DataFrame({"ds": ds.slice(a, chunk)}).select(exprs)
            dest = slice(a, a + cal.height) if rows is None else rows[a : a + cal.height]
            for j, c in from_ds.items():
                future[dest, j] = cal.get_column(c).to_numpy().astype(np.float32)
        if fut is not None:
            for j, c in from_ds.items():
                _fill_column(future[:, j], rows_f, fut[c], chunk=chunk)

    if td.static is not None and meta.static_cols:
        st = pl.DataFrame({"unique_id": ids}).join(td.static, on="unique_id", how="left")
        static = np.zeros((S, len(meta.static_cols)), dtype=np.float32)
        numeric = numeric_statics(list(meta.static_cols))
        for j, c in enumerate(meta.static_cols):
            col = np.zeros(S, dtype=np.float32)
            # a missing numeric static is the training mean (0 once standardised): 0 on the raw scale is a real value
            _fill_column(col, None, st[c], stats.static_mean[j], stats.static_std[j], chunk,
                         missing=stats.static_mean[j] if c in numeric else 0.0)
            static[:, j] = col
    else:
        static = np.zeros((S, 0), dtype=np.float32)
    t = torch.from_numpy
    return PackedSeries(ids=ids, y=t(y), past=t(past), future=t(future), static=t(static), offsets=t(offsets),
                        obs_len=t(obs_len))


# ---------------------------------------------------------------------------- windows


def n_channels(n_past: int, n_future: int) -> int:
    """Encoder input channels: y, observed mask, past covariates, future covariates."""
    return 2 + n_past + n_future


def gather_windows(
    p: PackedSeries, sid: torch.Tensor, cut: torch.Tensor, lookback: int, horizon: int, limit: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Batch of windows for series `sid` [B] cut at `cut` [B] (lookback rows [cut-L, cut),
    targets [cut, cut+H) counted where row < `limit` [B]). Rows before the series start are
    padded with 0 and masked."""
    start = p.offsets[sid]  # [B]
    pos = cut[:, None] + torch.arange(-lookback, horizon)[None, :]  # [B, L+H] row within series
    inside = (pos >= 0) & (pos < (p.offsets[sid + 1] - start)[:, None])  # [B, L+H]
    idx = (start[:, None] + pos.clamp(min=0)).clamp(max=p.y.numel() - 1)  # [B, L+H] packed row
    idx = torch.where(inside, idx, start[:, None])
    y = p.y[idx] * inside  # [B, L+H]
    observed = inside & (pos < p.obs_len[sid][:, None])  # [B, L+H]
    hist = idx[:, :lookback]  # [B, L]
    hmask = observed[:, :lookback].float()  # [B, L]
    parts = [y[:, :lookback, None], hmask[..., None]]  # each [B, L, 1]
    if p.past.shape[1]:
        parts.append(p.past[hist] * hmask[..., None])  # [B, L, P]
    if p.future.shape[1]:
        parts.append(p.future[hist] * inside[:, :lookback, None])  # [B, L, F]
    x = torch.cat(parts, dim=-1)  # [B, L, C]
    fut = p.future[idx[:, lookback:]] * inside[:, lookback:, None]  # [B, H, F]
    tmask = (inside[:, lookback:] & (pos[:, lookback:] < limit[:, None])).float()  # [B, H]
    return {
        "x": x, "future": fut, "static": p.static[sid], "target": y[:, lookback:] * tmask, "tmask": tmask,
        "sid": sid,
    }


def gather_forking(
    p: PackedSeries, sid: torch.Tensor, end: torch.Tensor, length: int, horizon: int, limit: torch.Tensor,
    min_context: int = 1,
) -> dict[str, torch.Tensor]:
    """Forking sequences: for series `sid` [B] read rows [end-T, end) once (T = `length`); origin t
    (position t in the crop) forecasts rows t+1 .. t+H. Targets count where they are observed,
    below `limit` [B], and the origin has at least `min_context` observed rows."""
    T, H = length, horizon
    start = p.offsets[sid]  # [B]
    seq_len = p.offsets[sid + 1] - start  # [B]
    pos = end[:, None] + torch.arange(-T, H)[None, :]  # [B, T+H] row within series (origin rows, then H more)
    inside = (pos >= 0) & (pos < seq_len[:, None])  # [B, T+H]
    idx = torch.where(inside, start[:, None] + pos.clamp(min=0), start[:, None]).clamp(max=p.y.numel() - 1)
    y = p.y[idx] * inside  # [B, T+H]
    observed = inside & (pos < p.obs_len[sid][:, None])  # [B, T+H]
    hmask = observed[:, :T].float()  # [B, T]
    parts = [y[:, :T, None], hmask[..., None]]  # each [B, T, 1]
    if p.past.shape[1]:
        parts.append(p.past[idx[:, :T]] * hmask[..., None])  # [B, T, P]
    if p.future.shape[1]:
        parts.append(p.future[idx[:, :T]] * inside[:, :T, None])  # [B, T, F]
    x = torch.cat(parts, dim=-1)  # [B, T, C]
    fut = p.future[idx[:, 1:]] * inside[:, 1:, None]  # [B, T+H-1, F] rows t+1 .. for every origin
    # targets of origin t are rows t+1..t+H: unfold the target sequence
    y_next = y[:, 1:]  # [B, T+H-1]
    ok_next = (observed & (pos < limit[:, None]))[:, 1:].float()  # [B, T+H-1]
    target = y_next.unfold(1, H, 1)  # [B, T+H-1] -> [B, T, H]
    tmask = ok_next.unfold(1, H, 1)  # [B, T, H]
    context = torch.cumsum(hmask, dim=1)  # [B, T] observed rows up to each origin
    tmask = tmask * (context >= min_context).float()[..., None] * hmask[..., None]  # [B, T, H]
    return {"x": x, "future": fut, "static": p.static[sid], "target": target * tmask, "tmask": tmask, "sid": sid}


# ---------------------------------------------------------------------------- sample index


@dataclass
class WindowIndex:
    """Training cut points as a virtual list: sample i -> (series, cut). Only per-series counts
    are stored ([S] int64), never one entry per window."""

    first_cut: torch.Tensor  # [S]
    counts: torch.Tensor  # [S] windows per series
    cum: torch.Tensor  # [S + 1]
    limit: torch.Tensor  # [S] end of the training span (rows)

    def __len__(self) -> int:
        return int(self.cum[-1])

    def locate(self, i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sid = torch.searchsorted(self.cum, i, right=True) - 1  # [B]
        return sid, self.first_cut[sid] + (i - self.cum[sid])


def train_span(p: PackedSeries, val_size: int) -> torch.Tensor:
    """Rows per series available to training targets: observed rows minus the validation span."""
    return (p.obs_len - val_size).clamp(min=0)


def window_index(p: PackedSeries, lookback: int, horizon: int, val_size: int, short: Short = "pad") -> WindowIndex:
    """Every valid cut point: targets [t, t+H) inside the training span, and the lookback fully
    observed (`exclude`) or at least one observed row (`pad`)."""
    limit = train_span(p, val_size)  # [S]
    first = torch.full_like(limit, lookback if short == "exclude" else 1)
    counts = (limit - horizon - first + 1).clamp(min=0)  # [S]
    cum = torch.zeros(len(counts) + 1, dtype=torch.int64)
    cum[1:] = torch.cumsum(counts, 0)
    return WindowIndex(first_cut=first, counts=counts, cum=cum, limit=limit)


def n_windows(lengths: list[int], lookback: int, horizon: int, val_size: int, short: Short = "pad") -> int:
    """Closed form of the number of training windows (for tests and planning)."""
    first = lookback if short == "exclude" else 1
    return sum(max(0, n - val_size - horizon - first + 1) for n in lengths)


# ---------------------------------------------------------------------------- datasets


class WindowDataset(Dataset):
    """Map-style dataset of training windows; `__getitems__` builds a whole batch at once."""

    def __init__(self, p: PackedSeries, lookback: int, horizon: int, val_size: int, short: Short = "pad"):
        self.p, self.L, self.H = p, lookback, horizon
        self.index = window_index(p, lookback, horizon, val_size, short)

    def __len__(self) -> int:
        return len(self.index)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        i = torch.as_tensor(indices, dtype=torch.int64)
        sid, cut = self.index.locate(i)
        return gather_windows(self.p, sid, cut, self.L, self.H, self.index.limit[sid])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


class ForkingDataset(Dataset):
    """Forking samples: sample i is series i's last `length` training rows, origins at every step.
    The crop ends at the last row that has a target inside the training span, so the most recent
    origins, whose horizons reach past the span's end, train on the targets they do have (masked
    beyond it) instead of being left out: on M3 monthly that is worth 0.1 sMAPE."""

    def __init__(self, p: PackedSeries, length: int, horizon: int, val_size: int, short: Short = "pad",
                 lookback: int = 1):
        self.p, self.T, self.H = p, length, horizon
        self.limit = train_span(p, val_size)  # [S]
        self.min_context = lookback if short == "exclude" else 1
        ok = self.limit >= self.min_context + 1
        self.series = torch.nonzero(ok).flatten()  # series with at least one origin and one target

    def __len__(self) -> int:
        return len(self.series)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        sid = self.series[torch.as_tensor(indices, dtype=torch.int64)]
        # the last origin is row limit-2 (its first target is row limit-1, the rest are masked)
        end = self.limit[sid] - 1
        return gather_forking(self.p, sid, end, self.T, self.H, self.limit[sid], self.min_context)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


class ValDataset(Dataset):
    """One window per series: cut at the start of its validation span (the last `val_size` rows)."""

    def __init__(self, p: PackedSeries, lookback: int, horizon: int, val_size: int):
        self.p, self.L, self.H = p, lookback, horizon
        cut = p.obs_len - max(val_size, 1)
        self.series = torch.nonzero(cut >= 1).flatten()
        self.cut = cut

    def __len__(self) -> int:
        return len(self.series)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        sid = self.series[torch.as_tensor(indices, dtype=torch.int64)]
        return gather_windows(self.p, sid, self.cut[sid], self.L, self.H, self.p.obs_len[sid])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


def _identity(batch):  # collate: __getitems__ already returns a batch
    return batch


class ShardedSampler(Sampler[int]):
    """Shuffled (or ordered) indices, optionally a random subset of `num_samples` per epoch, split
    across DDP ranks like DistributedSampler: every rank gets the same count (wrapping around), a
    fresh permutation per epoch from (seed, epoch), identical on every rank."""

    def __init__(self, n: int, *, shuffle: bool, seed: int, num_samples: int | None = None,
                 rank: int = 0, world_size: int = 1):
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.num_samples = min(num_samples, n) if num_samples else n
        self.rank, self.world = rank, world_size
        self.epoch = 0
        self.per_rank = math.ceil(self.num_samples / world_size) if self.num_samples else 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self) -> Iterator[int]:
        if self.n == 0:
            return iter([])
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            if self.n > 10_000_000 and self.num_samples * 10 < self.n:
                # a small subset of a huge index: draw it without a full permutation of n
                idx = torch.randint(self.n, (self.num_samples,), generator=g)
            else:
                idx = torch.randperm(self.n, generator=g)[: self.num_samples]
        else:
            idx = torch.arange(self.num_samples)
        total = self.per_rank * self.world
        if total > len(idx):  # pad by wrapping so that every rank has the same number of samples
            idx = torch.cat([idx, idx[: total - len(idx)]])
        shard = idx[self.rank : total : self.world]
        return (i for chunk in shard.split(1 << 16) for i in chunk.tolist())  # no list of every index


def make_loader(ds: Dataset, sampler: Sampler, batch_size: int, num_workers: int = 0, pin_memory: bool = False,
                drop_last: bool = False):
    from torch.utils.data import DataLoader

    return DataLoader(
        ds, batch_size=batch_size, sampler=sampler, collate_fn=_identity, num_workers=num_workers,
        pin_memory=pin_memory, drop_last=drop_last, persistent_workers=num_workers > 0,
    )


try:
    import lightning as L
except ImportError:  # pragma: no cover
    L = None  # type: ignore[assignment]  # (lightning is a dependency; this keeps `import windows` light in tools)


class WindowDataModule(L.LightningDataModule):
    """Training (windowed or forking) and validation loaders over one PackedSeries. Sharding over
    DDP ranks is done here (the Trainer runs with `use_distributed_sampler=False`)."""

    def __init__(self, packed: PackedSeries, *, lookback: int, horizon: int, val_size: int, mode: str = "windowed",
                 batch_size: int = 256, samples_per_epoch: int | None = None, short: Short = "pad",
                 fork_length: int | None = None, seed: int = 0, num_workers: int = 0, pin_memory: bool = False):
        super().__init__()
        self.p = packed
        self.kw = {"lookback": lookback, "horizon": horizon, "val_size": val_size}
        self.mode, self.batch_size, self.samples, self.short = mode, batch_size, samples_per_epoch, short
        self.seed, self.num_workers, self.pin_memory = seed, num_workers, pin_memory
        if mode == "forking":
            self.train_ds: WindowDataset | ForkingDataset = ForkingDataset(
                packed, fork_length or int(packed.obs_len.max()), horizon, val_size, short, lookback
            )
        else:
            self.train_ds = WindowDataset(packed, lookback, horizon, val_size, short)
        self.val_ds = ValDataset(packed, lookback, horizon, val_size) if val_size > 0 else None

    def _rank(self) -> tuple[int, int]:
        t = getattr(self, "trainer", None)
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    def train_dataloader(self):
        if len(self.train_ds) == 0:
            raise ValueError(
                f"no training samples: every series is shorter than lookback+horizon+val_size="
                f"{self.kw['lookback']}+{self.kw['horizon']}+{self.kw['val_size']} (mode={self.mode}, short={self.short})"
            )
        rank, world = self._rank()
        sampler = ShardedSampler(len(self.train_ds), shuffle=True, seed=self.seed, num_samples=self.samples,
                                 rank=rank, world_size=world)
        return make_loader(self.train_ds, sampler, self.batch_size, self.num_workers, self.pin_memory)

    def val_dataloader(self):
        if self.val_ds is None or len(self.val_ds) == 0:
            return []
        rank, world = self._rank()
        sampler = ShardedSampler(len(self.val_ds), shuffle=False, seed=self.seed, rank=rank, world_size=world)
        return make_loader(self.val_ds, sampler, max(self.batch_size, 1024), 0, self.pin_memory)
