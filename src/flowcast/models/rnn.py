"""`RNNForecaster`: one LightningModule for the rnn, lstm, gru and mlp cells.

Encoder: a recurrent network over the lookback window, whose inputs are the scaled target, its
observed mask, past covariates and future-known covariates of each row. The `mlp` cell (a global
fully connected network over the whole lookback window, as in N-BEATS: Oreshkin et al. 2019)
flattens the window instead and reads it with `num_layers` Linear + ReLU layers of `hidden_size`;
it has no recurrence, so it trains in `windowed` mode only (`cell_mode`). Head: a direct
multi-horizon MLP that emits all `horizon` steps (times the quantiles) at once from the last
hidden state, the statics and the future-known covariates of the horizon rows (a Conv1d with
kernel `horizon`, so that the same layer serves one origin or every origin of a sequence).

Normalisation: the data arrive scaled per series (TrainingData's scalers). The model predicts
the change from the last observed value (the reference), and in `windowed` mode also shifts the
lookback by it (per-window normalisation). In `forking` mode the encoder reads each series once
and the head forecasts at every step (MQ-RNN forking sequences); its input is the first
difference of the target instead, which is level-invariant at every origin in one pass.

Losses: mae | mse | huber | quantile (several quantiles, non-crossing by construction: the first
quantile plus cumulative softplus increments).
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
WINDOWED_ONLY = ("mlp",)  # cells without recurrence: they cannot read a series once in forking mode
CELL_NAMES = (*CELLS, *WINDOWED_ONLY)  # every cell a configuration can list


def cell_mode(mode: str, cell: str) -> str:
    """The training mode `cell` gets under `model.mode`: the recurrent cells take it, the mlp cell
    always trains windowed (so one configuration can list forking rnn / gru next to an mlp)."""
    return "windowed" if cell in WINDOWED_ONLY else mode


def mlp_encoder(n_in: int, hidden_size: int, num_layers: int, dropout: float) -> nn.Sequential:
    """num_layers x (Linear + ReLU) from the flattened window [B, n_in] to [B, hidden_size]."""
    layers: list[nn.Module] = []
    for i in range(num_layers):
        if i and dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(n_in if i == 0 else hidden_size, hidden_size), nn.ReLU()]
    return nn.Sequential(*layers)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


SKIP_LR_SCALE = 20.0  # learning rate of the direct future-covariate path, relative to model.lr


class RNNForecaster(L.LightningModule):
    q: torch.Tensor  # the quantile levels, a registered (non-persistent) buffer

    def __init__(
        self,
        *,
        cell: str = "lstm",
        n_past: int = 0,
        n_future: int = 0,
        n_static: int = 0,
        lookback: int = 36,
        horizon: int = 12,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        mode: str = "windowed",
        fork_length: int | None = None,
        loss: str = "mae",
        quantiles: list[float] | None = None,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: str = "cosine",
        max_steps: int = 300,
        data: dict[str, Any] | None = None,  # covariate stats and column names, for prediction
        future_skip: int = 0,  # the last N future covariates (the declared ones) get a direct per-step path
    ):
        super().__init__()
        if cell not in CELL_NAMES:
            raise ValueError(f"unknown cell {cell!r}; expected one of {sorted(CELL_NAMES)}")
        if mode not in ("windowed", "forking"):
            raise ValueError(f"unknown mode {mode!r}; expected windowed or forking")
        if cell in WINDOWED_ONLY and mode != "windowed":
            raise ValueError(f"cell {cell!r} has no recurrence and trains in windowed mode only, got mode={mode!r} "
                             "(flowcast.models.train gives it windowed mode whatever model.mode says)")
        self.save_hyperparameters()
        qs = sorted(quantiles or ([0.5] if loss == "quantile" else []))
        self.quantiles = qs
        self.n_out = max(1, len(qs))
        self.horizon = horizon
        c_in = 2 + n_past + n_future  # y, mask, past, future (see windows.n_channels)
        self.encoder: nn.Module
        if cell in WINDOWED_ONLY:  # the whole window at once: lookback rows x c_in channels
            self.encoder = mlp_encoder(lookback * c_in, hidden_size, num_layers, dropout)
        else:
            self.encoder = CELLS[cell](
                input_size=c_in, hidden_size=hidden_size, num_layers=num_layers, batch_first=True,
                dropout=dropout if num_layers > 1 else 0.0,
            )
        d = hidden_size
        self.fut_proj = nn.Conv1d(n_future, d, kernel_size=horizon, bias=False) if n_future else None
        # the direct path: step h's forecast moves by w . (future[h] - future[origin]), one linear map shared by all
        # steps, so a promotion on step 5 lifts step 5 (through the head alone it must be learned per step)
        # on the declared covariates only (the last `future_skip` of the future ones: the calendar features come first
        # and keep the path they had, so data without declared covariates trains the network it always did)
        if not 0 <= int(future_skip) <= n_future:
            raise ValueError(f"future_skip={future_skip} must be between 0 and n_future={n_future}")
        self.fut_skip = nn.Linear(int(future_skip), 1, bias=False) if future_skip else None
        self.static_proj = nn.Linear(n_static, d, bias=False) if n_static else None
        self.h_proj = nn.Linear(hidden_size, d)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, horizon * self.n_out))
        q = torch.tensor(qs or [0.5])
        self.register_buffer("q", q, persistent=False)
        self.point_index = int(torch.argmin((q - 0.5).abs())) if qs else 0

    # ------------------------------------------------------------------ network
    @property
    def hp(self) -> Any:
        """The saved hyperparameters (Lightning's AttributeDict: attribute access, untyped)."""
        return self.hparams

    @property
    def eval_lookback(self) -> int:
        """Input length at validation/prediction: the lookback, or the forking crop length."""
        hp = self.hp
        return int(hp.fork_length or hp.lookback) if hp.mode == "forking" else int(hp.lookback)

    def forward(self, x: torch.Tensor, future: torch.Tensor, static: torch.Tensor, every_step: bool = False) -> torch.Tensor:
        """x [B, T, C], future [B, T+H-1, F] (every_step) or [B, H, F], static [B, K].
        Returns the change from each origin's value, scaled: [B, T, H, Q] (every_step) or [B, H, Q]."""
        B = x.shape[0]
        k = self.fut_skip.in_features if self.fut_skip is not None else 0  # the declared covariates, last in x and future
        origin_fut = x[..., x.shape[-1] - k:] if k else None  # [B, T, C] -> [B, T, k] raw covariates
        if self.hp.mode == "windowed":
            ref = x[:, -1, 0]  # [B] last lookback value
            x = torch.cat([(x[..., :1] - ref[:, None, None]) * x[..., 1:2], x[..., 1:]], dim=-1)  # [B, T, C]
        else:  # forking: first differences, so that one pass is level-invariant at every origin
            y, m = x[..., :1], x[..., 1:2]  # [B, T, 1] each
            both = m * F.pad(m[:, :-1], (0, 0, 1, 0))  # [B, T, 1] this and the previous row observed
            dy = (y - F.pad(y[:, :-1], (0, 0, 1, 0))) * both  # [B, T, 1]
            x = torch.cat([dy, x[..., 1:]], dim=-1)  # [B, T, C]
        if self.hp.cell in WINDOWED_ONLY:  # windowed only: T is the lookback
            if x.shape[1] != self.hp.lookback:
                raise ValueError(f"cell {self.hp.cell!r} reads windows of lookback {self.hp.lookback} rows, got {x.shape[1]}")
            out = self.encoder(x.reshape(B, -1))[:, None, :]  # [B, T, C] -> [B, T*C] -> [B, Hd] -> [B, 1, Hd]
        else:
            out, _ = self.encoder(x)  # [B, T, C] -> [B, T, Hd]
        if not every_step:
            out = out[:, -1:]  # [B, T, Hd] -> [B, 1, Hd]
        z = self.h_proj(out)  # [B, T', Hd] -> [B, T', D]
        if self.fut_proj is not None:
            z = z + self.fut_proj(future.transpose(1, 2)).transpose(1, 2)  # [B, T'+H-1, F] -> [B, F, .] -> [B, D, T'] -> [B, T', D]
        if self.static_proj is not None:
            z = z + self.static_proj(static)[:, None, :]  # [B, K] -> [B, D] -> [B, 1, D]
        raw = self.head(z).view(B, z.shape[1], self.horizon, self.n_out)  # [B, T', H*Q] -> [B, T', H, Q]
        if self.n_out > 1:  # non-crossing: first quantile, then positive increments
            raw = torch.cat([raw[..., :1], F.softplus(raw[..., 1:])], dim=-1).cumsum(dim=-1)  # [B, T', H, Q]
        if self.fut_skip is not None and origin_fut is not None:
            steps = future[..., future.shape[-1] - k:].unfold(1, self.horizon, 1).transpose(-1, -2)  # [B, T'+H-1, k] -> [B, T', H, k]
            org = origin_fut if every_step else origin_fut[:, -1:]  # [B, T', k] the origins' own rows
            raw = raw + self.fut_skip(steps - org[:, :, None, :])  # [B, T', H, k] -> [B, T', H, 1], all quantiles
        return raw if every_step else raw[:, 0]  # [B, 1, H, Q] -> [B, H, Q]

    def predict_scaled(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Forecasts on the per-series scale for a window batch: [B, H, Q]."""
        delta = self(batch["x"], batch["future"], batch["static"])  # [B, H, Q]
        return delta + batch["x"][:, -1, 0][:, None, None]  # + last value [B] -> [B, 1, 1]

    # ------------------------------------------------------------------ loss
    def loss_fn(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """pred [..., H, Q], target and mask [..., H]."""
        kind = self.hp.loss
        if kind == "quantile":
            err = target[..., None] - pred  # [..., H] -> [..., H, 1] - [..., H, Q]
            pin = torch.maximum(self.q * err, (self.q - 1) * err).mean(dim=-1)  # [..., H, Q] -> [..., H]
            return masked_mean(pin, mask)
        p = pred[..., self.point_index]  # [..., H, Q] -> [..., H]
        if kind == "mae":
            return masked_mean((p - target).abs(), mask)
        if kind == "mse":
            return masked_mean((p - target) ** 2, mask)
        if kind == "huber":
            return masked_mean(F.huber_loss(p, target, reduction="none", delta=1.0), mask)
        raise ValueError(f"unknown loss {kind!r}")

    def shared_step(self, batch: dict[str, torch.Tensor], every_step: bool) -> torch.Tensor:
        if every_step:  # forking: origin t's reference is its own value
            delta = self(batch["x"], batch["future"], batch["static"], every_step=True)  # [B, T, H, Q]
            ref = batch["x"][..., 0]  # [B, T, C] -> [B, T]
            return self.loss_fn(delta, batch["target"] - ref[..., None], batch["tmask"])  # [B, T, H]
        delta = self(batch["x"], batch["future"], batch["static"])  # [B, H, Q]
        ref = batch["x"][:, -1, 0]  # [B]
        return self.loss_fn(delta, batch["target"] - ref[:, None], batch["tmask"])  # [B, H]

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.shared_step(batch, every_step=batch["target"].dim() == 3)
        self.log("train_loss", loss, prog_bar=True, batch_size=batch["x"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.shared_step(batch, every_step=False)
        self.log("val_loss", loss, prog_bar=True, sync_dist=True, batch_size=batch["x"].shape[0])
        return loss

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        hp = self.hp
        # the direct covariate path learns at SKIP_LR_SCALE x lr: one weight per covariate that must reach the size of
        # the covariate's effect (a promotion's +2 standard deviations), which 300 steps at lr 1e-3 cannot
        skip = list(self.fut_skip.parameters()) if self.fut_skip is not None else []
        rest = [p for p in self.parameters() if all(p is not q for q in skip)]
        params: Any = [{"params": rest}, *([{"params": skip, "lr": hp.lr * SKIP_LR_SCALE}] if skip else [])]
        opt: torch.optim.Optimizer
        if hp.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
        elif hp.optimizer == "adamw":
            opt = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
        elif hp.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=hp.lr, momentum=0.9, weight_decay=hp.weight_decay)
        elif hp.optimizer == "rmsprop":
            opt = torch.optim.RMSprop(params, lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            raise ValueError(f"unknown optimizer {hp.optimizer!r}")
        if hp.scheduler == "none":
            return opt
        # the schedule ends where training does: max_steps or max_epochs
        est = self.trainer.estimated_stepping_batches if self._trainer is not None else math.inf
        sched = make_scheduler(opt, hp.scheduler, hp.lr, schedule_steps(hp.max_steps, est))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def schedule_steps(max_steps: int | None, estimated: float) -> int:
    """The steps a learning-rate schedule is built for: the training's, max_steps (when positive) or Lightning's
    `estimated_stepping_batches` (epochs x batches; inf when unbounded), the fewer; 1000 when neither bounds it."""
    total = max_steps if max_steps and max_steps > 0 else None
    if math.isfinite(estimated) and estimated > 0:
        total = min(int(estimated), total) if total is not None else int(estimated)
    return max(int(total or 1000), 1)


def make_scheduler(opt: torch.optim.Optimizer, scheduler: str, lr: float,
                   total: int) -> torch.optim.lr_scheduler.LRScheduler:
    """model.scheduler's learning-rate schedule over `opt` for a training of `total` steps (`schedule_steps`)."""
    if scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=lr * 0.01)
    if scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, total // 3), gamma=0.3)
    if scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total + 1)
    raise ValueError(f"unknown scheduler {scheduler!r}")
