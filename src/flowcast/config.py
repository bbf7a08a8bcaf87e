"""One typed configuration tree for flowcast.

Precedence, lowest to highest: defaults in this file < a configuration file, only when one is
NAMED (`--config FILE`, the flows' `config_file` parameter, or `FLOWCAST_CONFIG=FILE`) <
`FLOWCAST_*` environment variables (nested with `__`, e.g. `FLOWCAST_MODEL__MAX_STEPS=50`) <
explicit overrides (CLI options and flow parameters).

The defaults live here and nowhere else. No file is read because it happens to sit in the working
directory: the same command trains the same model from any directory unless a file is named
(`IMPLICIT_CONFIG_NAME` is only pointed out by the CLI when it is there and not named).
Nothing here reads the clock: `as_of` is a run argument, never configuration.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from flowcast.columns import DATASET_NAME_PATTERN
from flowcast.errors import SettingsValueError

Cell = Literal["rnn", "lstm", "gru", "mlp"]  # mlp: a global MLP over the window (windowed mode only)
FREQ_ALIASES = {"30m", "1h", "1d", "1w", "1mo", "1q", "1y"}


# pandas' offset aliases and plain words, which users bring from pandas, Nixtla or a spreadsheet ('D', 'MS',
# '15min', 'monthly'): the error listed the valid strings but left the translation to them
_PANDAS_FREQ = {"d": "d", "b": "b", "h": "h", "w": "w", "m": "mo", "ms": "mo", "me": "mo", "q": "q", "qs": "q",
                "qe": "q", "y": "y", "ys": "y", "ye": "y", "a": "y", "as": "y", "t": "m", "min": "m"}
_WORDS = {"daily": "1d", "day": "1d", "days": "1d", "hourly": "1h", "hour": "1h", "weekly": "1w", "week": "1w",
          "monthly": "1mo", "month": "1mo", "quarterly": "1q", "quarter": "1q", "yearly": "1y", "year": "1y",
          "annual": "1y", "annually": "1y", "businessday": "1b", "business": "1b"}


def _freq_meant(value: str) -> str | None:
    """The frequency a pandas alias or a word means ('D' -> '1d', '15min' -> '15m', 'MS' -> '1mo'); None."""
    import re

    text = value.strip().lower().replace(" ", "").replace("-", "").replace("_", "")
    if text in _WORDS:
        return _WORDS[text]
    m = re.fullmatch(r"(\d*)([a-z]+)(?:-[a-z]+)?", value.strip().lower())
    if m is None or m.group(2) not in _PANDAS_FREQ:
        return None
    return f"{m.group(1) or 1}{_PANDAS_FREQ[m.group(2)]}"


def _cells(*names: Cell) -> list[Cell]:
    return list(names)


def _modes(*names: Literal["windowed", "forking"]) -> list[Literal["windowed", "forking"]]:
    return list(names)


def _losses(*names: Literal["mae", "mse", "huber"]) -> list[Literal["mae", "mse", "huber"]]:
    return list(names)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _dataset_name(name: str) -> str:
    """`name` when it can key the store and name its folders (columns.DATASET_NAME_PATTERN)."""
    import re

    if not re.match(DATASET_NAME_PATTERN, name):
        raise ValueError(f"dataset name {name!r} cannot key the forecast store: use 1-128 letters, digits, '_', '.' "
                         "or '-', starting with a letter or digit")
    return name


class SourceConfig(_Section):
    """How one raw source maps onto the canonical (unique_id, ds, y) contract."""

    name: str = "custom"
    path: str = Field(description="file path, glob or URL (CSV, gzipped CSV, Parquet, Arrow IPC/Feather)")
    format: Literal["auto", "csv", "parquet", "ipc"] = "auto"
    id_cols: list[str] = Field(
        default_factory=list, description="raw id columns, joined with '|' into unique_id; empty: one series named after the source"
    )
    time_col: str
    time_format: str | None = Field(None, description="strptime format of time_col; None infers ISO-8601")
    target_col: str
    freq: str = Field(description="polars duration string (30m, 1h, 1d, 1w, 1mo, 1q, 1y) or 1b: business days, "
                      "Monday to Friday")
    tz: str | None = Field(
        None,
        description="IANA time zone of the source's naive times (e.g. Australia/Melbourne). Sub-daily ds become "
        "instants (naive UTC) and calendar features use this zone's local time; daily and coarser ds are "
        "calendar dates in it",
    )
    ambiguous: Literal["quarantine", "infer", "earliest", "latest"] = Field(
        "quarantine",
        description="sub-daily naive times in a tz with daylight saving: a wall time that occurs twice (the "
        "repeated hour) is quarantined, or resolved by file order (infer: of two rows of a series, the first "
        "in its file order is the earlier instant, the later when the series is written newest first), or taken as the earliest / latest instant",
    )
    time_label: Literal["start", "end"] = Field(
        "start",
        description="what a time labels: start (default) the start of its interval, end its end (hour-ending data "
        "as electricity markets and weather stations publish it: the value at 01:00 covers 00:00-01:00; a daily "
        "total dated by the next midnight). end: ingest moves each time back one step of freq (sub-daily: a fixed "
        "step in UTC; daily and coarser: on the calendar), so ds is the interval start everywhere inside flowcast, "
        "and `flowcast forecasts` adds each forecast's end label as ds_end",
    )
    aggregate: Literal["none", "sum", "mean", "last"] = Field(
        "none",
        description="several observations in one period (data finer than freq: transactions to 1d, 5-minute "
        "readings to 1h): combine them by sum (counts, amounts), mean (levels) or last (the latest in time, e.g. "
        "a stock level); past/future covariates take the mean (last with last). none: two rows in one period "
        "are duplicates (an exact repeat keeps one row, conflicting values are quarantined)",
    )
    static_cols: list[str] = Field(default_factory=list)
    label_col: str | None = Field(
        None, description="a static column holding each series' human name (e.g. Title): the forecast plot titles "
        "its panels with it instead of the id")
    unit: str | None = Field(None, description="unit of the target, e.g. 'thousands of persons' (plot axes)")
    past_cols: list[str] = Field(default_factory=list)
    future_cols: list[str] = Field(default_factory=list)
    strict: bool = Field(False, description="undeclared columns fail the run instead of being reported")
    y_min: float | None = Field(None, description="smallest valid y (e.g. 0 for counts); None: unbounded")
    y_max: float | None = None
    horizon: int | None = Field(None, ge=1, description="this source's default forecast horizon")
    season_length: int | None = Field(None, ge=1, description="default derived from freq")
    separator: str = ","
    decimal: Literal[",", "."] | None = Field(
        None, description="the decimal mark of the file's numbers: ',' ('.' and spaces then group thousands: "
        "'1.234,5' is 1234.5, '2.000' is 2000) or '.' (',' groups thousands: '1,234.5'); None: decided per column "
        "from its values (a ';' file's ',' is a decimal mark), and a column they do not settle is said or its "
        "unsettled values quarantined")
    layout: Literal["long", "wide"] = Field(
        "long", description="long: one row per series and time (id_cols, time_col, target_col); wide: a time column "
        "and one column per series (a spreadsheet's export), each column read as a series named after its header "
        "(target_col and id_cols then name the melted value and id: default y and unique_id)")
    read_retries: int = Field(3, ge=0, description="retries of a read that failed for a transient reason "
                              "(connection reset, timeout, HTTP 5xx), with exponential backoff")
    read_timeout: float = Field(60.0, gt=0, description="seconds an HTTP(S) read may take")

    @field_validator("freq")
    @classmethod
    def _freq_is_duration(cls, v: str) -> str:
        from flowcast.data.calendar import parse_freq

        try:
            parse_freq(v)
        except ValueError as exc:
            guess = _freq_meant(v)
            raise ValueError(f"freq must be a polars duration string such as {sorted(FREQ_ALIASES)} or 1b (business "
                             f"days), got {v!r}" + ("" if str(exc).startswith("not a") else f": {exc}")
                             + (f" (did you mean {guess!r}?)" if guess else "")) from None
        return v

    @field_validator("name")
    @classmethod
    def _name_is_a_key(cls, v: str) -> str:
        return _dataset_name(v)

    @model_validator(mode="before")
    @classmethod
    def _wide_names(cls, data: Any) -> Any:
        """A wide source's melted columns: its value is `y` and its series key `unique_id` unless named."""
        if isinstance(data, dict) and data.get("layout") == "wide":
            data = {**data, "target_col": data.get("target_col") or "y", "id_cols": data.get("id_cols") or ["unique_id"]}
            if len(data["id_cols"]) != 1:
                raise ValueError(f"a wide source has one id, the name of each series' column: id_cols "
                                 f"{data['id_cols']} names {len(data['id_cols'])}")
        return data

    @model_validator(mode="after")
    def _label_is_static(self) -> SourceConfig:
        if self.label_col is not None and self.label_col not in self.static_cols:
            raise ValueError(f"label_col {self.label_col!r} must be one of static_cols {self.static_cols}")
        return self

    @property
    def exog_cols(self) -> list[str]:
        return [*self.static_cols, *self.past_cols, *self.future_cols]


class ValidationConfig(_Section):
    quarantine_threshold: float = Field(0.05, ge=0, le=1, description="fail the run above this share")
    max_staleness: int | None = Field(
        None, ge=0, description="fail the run when as_of is more than this many periods after the latest observation "
        "of any series (a source that stopped being updated); unset: the run only warns, once every forecast period "
        "lies before as_of")
    max_series_lost: float | None = Field(
        None, ge=0, le=1, description="fail the run when more than this share of the series of the dataset's last "
        "publish are not in the data at all (a partial export); unset: the run only warns, naming them")
    ended_series: Literal["forecast", "exclude"] = Field(
        "forecast", description="series whose last observation is more than a horizon before the latest of any series "
        "(a closed store, a discontinued product): forecast from their own last observation (their forecasts dated "
        "before the others'), or exclude: set aside with their reason, not backtested, trained on or published")


class PreprocessConfig(_Section):
    impute: Literal["linear", "ffill", "zero", "none"] = Field(
        "linear", description="how interior gaps of at most max_gap periods are filled: linear (interpolated), ffill "
        "(the last value carried forward), zero, or none (a series starts after its last gap); imputed points are "
        "not scored")
    max_gap: int = Field(3, ge=0, description="longest interior gap (periods) that is imputed")
    scaler: Literal["standard", "robust", "minmax", "none"] = Field(
        "standard", description="how each series is scaled: standard (mean and standard deviation), robust (median "
        "and interquartile range), minmax (minimum and range) or none")
    log1p: bool = Field(False, description="log1p-transform non-negative series before scaling")
    calendar: bool = Field(True, description="calendar features of each period (as many as its frequency has) as "
                           "future-known covariates of the networks")
    short_series: Literal["exclude", "pad"] = Field(
        "exclude", description="which series a network trains on and forecasts: exclude (at least lookback + horizon "
        "+ val_size periods) or pad (horizon + val_size + 1, shorter inputs padded and masked); every shorter series "
        "is kept and forecast by the statistical models that can run on it")
    val_size: int | None = Field(None, ge=0, description="validation span per series; default: horizon")
    length_share: float = Field(
        0.8, gt=0, le=1, description="a retrain shortens model.lookback, val_size and evaluation.n_windows, where not "
        "given, so that at least this share of the series is long enough for a network and the backtest")
    max_length: int | None = Field(None, ge=1, description="keep only the last N periods of each series")
    future_fill: Literal["last", "zero", "error"] = Field(
        "last",
        description="a declared future covariate without a planned value (no row dated after as_of for that "
        "horizon step): last carries the last known value forward, zero puts 0, error fails the run. The run "
        "reports how many values were filled (log and data quality report)",
    )


class ModelConfig(_Section):
    cells: list[Cell] = Field(default_factory=lambda: _cells("rnn", "lstm", "gru"),
                              description="the networks trained, each a candidate: rnn, lstm, gru, mlp")
    lookback: int = Field(36, ge=1, description="periods of history a network reads for each forecast")
    hidden_size: int = Field(32, ge=1, description="64 trains ~8x slower per step on a 2-core CPU (measured); raise it on a GPU")
    num_layers: int = Field(2, ge=1, description="stacked layers of each network")
    dropout: float = Field(0.0, ge=0, lt=1, description="share of units dropped between layers while training "
                           "(0 to below 1)")
    mode: Literal["windowed", "forking"] = Field(
        "windowed", description="windowed: each training sample is one lookback window; forking: each series is "
        "read once and every step is a forecast origin (as in MQ-RNN), far more origins per second")
    loss: Literal["mae", "mse", "huber", "quantile"] = Field(
        "mae", description="training loss: mae, mse, huber, or quantile (with quantiles)")
    quantiles: list[float] = Field(
        default_factory=list,
        description="e.g. [0.1, 0.9]; needs loss=quantile. The median (0.5) is always trained too: it is the "
        "published point forecast y_hat",
    )
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = Field("adam", description="training optimizer")
    lr: float = Field(1e-3, gt=0, description="learning rate the schedule starts from (onecycle: its peak)")
    weight_decay: float = Field(0.0, ge=0, description="the optimizer's weight decay; 0: none")
    scheduler: Literal["none", "cosine", "step", "onecycle"] = Field(
        "cosine", description="learning rate over the training's steps: cosine (down to lr / 100), step (x 0.3 "
        "after each third of the steps), onecycle, or none (lr throughout)")
    grad_clip: float | None = Field(1.0, description="gradient norm clip; None disables")
    batch_size: int = Field(256, ge=1, description="training samples per step")
    max_steps: int = Field(300, ge=-1, description="training steps of each network; -1: no limit (max_epochs then "
                           "ends training)")
    max_epochs: int | None = Field(None, description="passes over the training data at most; None: max_steps alone "
                                   "ends training")
    samples_per_epoch: int | None = Field(None, description="random cut points per epoch; None: every one")
    val_check_interval: int | None = Field(None, description="steps between validations; None: each epoch")
    early_stopping_patience: int | None = Field(
        10, description="validations without a lower validation loss before training stops; None or 0: no early "
        "stopping")
    seed: int = Field(0, description="random seed of a network's weights and samples (evaluation.seeds trains "
                      "seed, seed + 1, ...)")
    accelerator: Literal["auto", "cpu", "gpu"] = Field(
        "auto", description="where networks train: auto (a GPU where there is one), cpu or gpu")
    devices: int | Literal["auto"] = Field(1, description="devices per training: a number, or auto for every GPU "
                                          "(DDP)")
    strategy: str = Field("auto", description="Lightning's strategy over several devices (auto: ddp when there are "
                          "several)")
    precision: str | None = Field(None, description="None: bf16-mixed on GPU, 32 on CPU")
    num_workers: int = Field(0, description="data loader worker processes per training; 0: batches are made in "
                             "the training process")
    pin_memory: bool = Field(False, description="data loader batches in pinned memory (faster copies to a GPU)")
    window_short: Literal["pad", "exclude"] = Field(
        "pad", description="windows with less history than the lookback: padded and masked, or not trained on"
    )
    fork_length: int | None = Field(None, ge=2, description="forking mode: rows read per series; None: the longest")
    warm_start_steps: int | None = Field(
        None, ge=1,
        description="the retrain's refit of each network on all data starts from the weights its backtest training "
        "ended with (at the oldest cut; the newest window's with evaluation.refit) and trains this many steps (at most "
        "max_steps, within max_epochs), its learning-rate schedule restarted; None: max_steps / max_epochs from new "
        "weights",
    )
    init_from: str | None = Field(
        None, description="a network's model.ckpt (same cell and shapes) whose weights training starts from; the "
        "retrain sets it for warm_start_steps",
    )
    checkpoint_every: int = Field(50, ge=1, description="training steps between `last` checkpoints (for --resume)")
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads per training process; None: cores / devices")
    launcher: Literal["process", "inline"] = Field(
        "process", description="process: training runs in its own (torchrun) process; inline: in this one"
    )
    blend: dict[str, float] = Field(
        default_factory=dict,
        description="statistical forecasts mixed into the network's, by weight, e.g. {theta = 0.25, "
        "damped = 0.25}: the network keeps 1 - their sum; applied at every prediction (backtests included)",
    )

    @field_validator("max_steps", "max_epochs")
    @classmethod
    def _trains_something(cls, v: int | None, info: Any) -> int | None:
        # 0 trained nothing: the network's random initial weights entered the backtest and could be promoted
        if v == 0:
            raise ValueError(f"{info.field_name} = 0 trains nothing (the network would keep its random initial "
                             "weights); give a positive number, or -1 for no limit"
                             + (" (max_epochs then ends training)" if info.field_name == "max_steps" else ""))
        return v

    @model_validator(mode="after")
    def _quantiles_need_quantile_loss(self) -> ModelConfig:
        if self.quantiles and self.loss != "quantile":
            raise ValueError(f"quantiles {self.quantiles} need loss='quantile', got loss={self.loss!r}")
        if any(not 0 < q < 1 for q in self.quantiles):
            raise ValueError(f"quantiles must lie in (0, 1): {self.quantiles}")
        if len(set(self.quantiles)) != len(self.quantiles):
            twice = sorted({q for q in self.quantiles if self.quantiles.count(q) > 1})
            raise ValueError(f"quantiles {self.quantiles} name {twice} more than once")
        if self.loss == "quantile" and 0.5 not in self.quantiles:
            # the point forecast (y_hat, what is published, scored and promoted) is the median: it is
            # trained with the other quantiles, never taken from the nearest one (0.9 of [0.9])
            self.quantiles = sorted([*self.quantiles, 0.5])
        elif self.quantiles:
            self.quantiles = sorted(self.quantiles)
        if self.launcher == "inline" and (self.devices == "auto" or self.devices > 1):
            raise ValueError(
                f"launcher='inline' cannot train on devices={self.devices!r}: several devices need one process "
                "each (DDP), which Lightning would start by re-running this command (under Prefect: the whole "
                "flow) from inside it; use launcher='process' (torchrun starts them) or devices=1"
            )
        if self.blend:
            from flowcast.models.recipes import statistical_models

            # every statistical model, as evaluation.statistical / combination take (dotm, drift, arima were refused)
            if unknown := sorted(set(self.blend) - set(statistical_models())):
                raise ValueError(f"blend names {unknown}; the statistical forecasts are {list(statistical_models())}")
        if any(w < 0 for w in self.blend.values()) or sum(self.blend.values()) >= 1:
            raise ValueError(f"blend weights {self.blend} must be >= 0 and sum below 1 (the network keeps the rest)")
        return self


class EvaluationConfig(_Section):
    """The backtest and the candidates every retrain scores on it (see flowcast.evaluation.candidates)."""

    n_windows: int = Field(2, ge=1, description="backtest windows every candidate is scored on, the newest ending "
                           "at each series' last observation, step periods apart")
    step: int | None = Field(None, ge=1, description="periods between backtest cutoffs; default: horizon")
    calibration_windows: int | None = Field(
        None, ge=1, description="windows a horizon apart, the newest ending at each series' last observation, whose "
        "errors calibrate the published intervals of a statistical candidate, refit at each (fewer where series are "
        "too short); default: the backtest's windows. The sub-daily recipe sets 28 (4 weeks of daily origins)")
    metric: Literal["smape", "mase", "mae", "rmse", "rmsse"] = Field(
        "mase", description="what the leaderboard ranks on; data classed intermittent ranks on rmsse unless it is given")
    margin: float = Field(0.0, ge=0, description="relative improvement a challenger needs over production, 0.02 = 2%")
    refit: bool = Field(False, description="each network is trained again for every backtest window, on the data "
                        "before it, instead of once on the data before the oldest")
    seeds: int = Field(1, ge=1, description="networks trained per cell (seeds model.seed, +1, ...); a cell's candidate "
                       "averages them and the ensemble and hybrid combine cells x seeds")
    statistical: list[str] = Field(
        default_factory=lambda: ["naive", "seasonal_naive", "theta", "damped"],
        description="statistical models on the leaderboard, each a candidate of its own",
    )
    combination: list[str] = Field(
        default_factory=lambda: ["theta", "damped"],
        description="statistical models combined into the `comb` candidate and blended into the `hybrid` one",
    )
    ensemble: bool = Field(True, description="an `ensemble` candidate: the network cells combined, weights learned")
    hybrid: bool = Field(True, description="a `hybrid` candidate: the cells and `combination` combined, weights learned "
                         "(model.blend sets them by hand instead)")
    weight_resolution: int = Field(10, ge=1, le=100, description="combination weights are searched in steps of 1/N")
    shrink: float = Field(0.0, ge=0, le=1, description="learned combination weights are moved this share of the way "
                          "towards equal ones (0: as fitted on the backtest, 1: equal weights)")
    incumbent: Literal["auto", "frozen", "refit"] = Field(
        "auto", description="how the production model is scored: frozen weights on the windows after its training "
        "data ended, its recipe refit on this run's windows, or auto (frozen when such a window exists, else refit)",
    )
    max_fallback_share: float = Field(
        0.2, ge=0, le=1, description="a model whose forecasts fail (not finite, out of bounds) on more than this share "
        "of series is not eligible and never published; below it, its fallback forecasts those series",
    )

    @model_validator(mode="after")
    def _known_statistical_models(self) -> EvaluationConfig:
        from flowcast.models.recipes import statistical_models

        known = statistical_models()
        if unknown := sorted((set(self.statistical) | set(self.combination)) - set(known)):
            raise ValueError(f"unknown statistical models {unknown}; known: {list(known)}")
        return self


class TuningConfig(_Section):
    """Hyperparameter search (flowcast.models.tuning): Optuna TPE over the backtest's validation
    window (before the leaderboard's windows), within a time budget. `flowcast tune` runs it alone;
    with `enabled` (or `flowcast run --budget N`) a retrain runs it first and trains with its choice."""

    enabled: bool = Field(False, description="retrain runs the search before training (flowcast run --budget)")
    budget_minutes: float = Field(5.0, gt=0, description="wall-clock budget of the whole search")
    n_trials: int | None = Field(None, ge=1, description="stop after this many trials; None: the budget only")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="how a trial that does badly is stopped early: median (worse than the median of "
        "earlier trials at the same step), hyperband, or none")
    n_startup_trials: int = Field(5, ge=1, description="random trials before TPE models the space")
    seed: int = Field(0, description="seed of the search's sampler and of its trials' trainings")
    cells: list[Cell] | None = Field(None, description="cells searched over; None: model.cells")
    lookback: list[int] | None = Field(None, description="lookback choices; None: 1..5 horizons that fit the data")
    hidden_size: list[int] = Field(default_factory=lambda: [16, 32, 64, 128], description="hidden sizes searched")
    num_layers: list[int] = Field(default_factory=lambda: [1, 2], description="layer counts searched")
    dropout: tuple[float, float] = Field((0.0, 0.3), description="dropout range searched: [low, high]")
    lr: tuple[float, float] = Field((3e-4, 1e-2), description="learning-rate range searched (log scale): [low, high]")
    max_steps: tuple[int, int] = Field((50, 400), description="training-step range searched, in steps of "
                                       "steps_step: [low, high]")
    steps_step: int = Field(50, ge=1, description="granularity of the searched step counts")
    mode: list[Literal["windowed", "forking"]] = Field(default_factory=lambda: _modes("windowed", "forking"),
                                                       description="training modes searched")
    loss: list[Literal["mae", "mse", "huber"]] = Field(default_factory=lambda: _losses("mae", "huber"),
                                                       description="losses searched")

    @model_validator(mode="after")
    def _ranges(self) -> TuningConfig:
        for name in ("dropout", "lr", "max_steps"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"tuning.{name} = [{lo}, {hi}]: low above high")
        if self.dropout[1] >= 1:
            raise ValueError(f"tuning.dropout = {list(self.dropout)} must stay below 1")
        lo, hi = self.max_steps
        if (hi - lo) % self.steps_step:  # Optuna searched [lo, lo] instead, with a UserWarning
            fits = math.gcd(hi - lo, self.steps_step)
            top = lo + (hi - lo) // self.steps_step * self.steps_step
            raise ValueError(
                f"tuning.max_steps = [{lo}, {hi}] spans {hi - lo} steps, not a multiple of tuning.steps_step = "
                f"{self.steps_step}: the search would try up to {top} steps only, never {hi}; set steps_step to {fits} "
                f"(FLOWCAST_TUNING__STEPS_STEP={fits}) or make the span a multiple of {self.steps_step}")
        for name in ("hidden_size", "num_layers", "mode", "loss"):
            if not getattr(self, name):
                raise ValueError(f"tuning.{name} needs at least one choice")
        return self


class PublishConfig(_Section):
    plot_series: int = Field(6, ge=0, description="series drawn in the forecast plot")
    skip_unchanged: bool = Field(
        True, description="the forecast flow publishes nothing new when no observation arrived since the "
        "dataset's last publish with the same production model (a daily schedule on monthly data)",
    )


def parse_duration(value: str) -> timedelta:
    """'90s', '30m', '26h', '2d', '1w' -> timedelta (a fixed duration, for deadlines and ages)."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*", str(value))
    if not m:
        raise ValueError(f"expected a duration such as 90s, 30m, 26h, 2d or 1w, got {value!r}")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
    return timedelta(**{unit: float(m.group(1))})


class AccuracyConfig(_Section):
    """Realized accuracy of published forecasts and when a dataset counts as degraded."""

    window: int = Field(3, ge=1, description="decay is judged over the last N as_of with realized actuals")
    tolerance: float = Field(
        0.25, ge=0, description="degraded when the realized MASE exceeds the backtest's by more than this share"
    )
    min_points: int = Field(10, ge=1, description="points scored over the window before decay is judged")


class AlertsConfig(_Section):
    """Notifications through Prefect automations (`flowcast automations apply`, `flowcast serve`)."""

    webhook_url: str | None = Field(None, description="where notifications are POSTed; None: no automations")
    publish_deadline: str = Field(
        "26h", description="notify when a dataset has published nothing (and found nothing new) for this long"
    )
    stale_every: str = Field(
        "24h", description="a dataset whose data are stale is notified at most once per this (every run of it "
        "emits flowcast.data.stale)"
    )
    block_name: str = Field("flowcast-alerts", description="name of the Prefect notification block")

    @field_validator("stale_every")
    @classmethod
    def _stale_every(cls, v: str) -> str:
        parse_duration(v)  # a ValueError naming the value
        return v

    @field_validator("publish_deadline")
    @classmethod
    def _deadline(cls, v: str) -> str:
        if parse_duration(v) < timedelta(seconds=10):
            raise ValueError(f"publish_deadline must be at least 10s (Prefect's shortest proactive window), got {v!r}")
        return v

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"webhook_url must be an http(s) URL, got {v!r}")
        return v


class RetentionConfig(_Section):
    """What `flowcast gc` removes (it never removes a production or previous model, nor a
    published forecast)."""

    keep_versions: int = Field(
        3, ge=0, description="model versions kept per dataset besides production and its predecessor"
    )
    runs_days: float = Field(30, ge=0, description="training run folders and checkpoints older than this go")
    cache_days: float = Field(7, ge=0, description="preprocessing cache entries older than this go")
    quarantine_days: float = Field(90, ge=0, description="quarantine files older than this go")
    reports_days: float = Field(30, ge=0, description="report images older than this go")
    prefect_runs_days: float = Field(
        90, ge=0, description="`flowcast gc` and `flowcast serve` (daily): this home's flow runs on Prefect's temporary server (no PREFECT_API_URL; "
        "its database in PREFECT_HOME) that ended longer ago than this go, with their task runs, logs and artifacts "
        "(a server you run vacuums its own: PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED)"
    )
    in_runs: bool = Field(
        True, description="every retrain and forecast run removes the run folders, cache entries, quarantine files "
        "and report images older than their days as it starts (model versions: `flowcast gc`)"
    )


class StoreConfig(_Section):
    """Where published forecasts and realized accuracy live (flowcast.store.open_store)."""

    url: str | None = Field(
        None,
        description="None: the embedded store (Parquet + DuckDB) under home/warehouse; a folder, file://, s3://, "
        "gs:// or az:// URL: the Parquet dataset there; postgresql://user@host:port/db: PostgreSQL",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options of an object-store url, e.g. {endpoint_url = '...'}"
    )
    pg_schema: str = Field("flowcast", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="PostgreSQL schema of the tables")
    pg_wait_s: float = Field(
        60.0, ge=0, description="PostgreSQL store: seconds a server that refuses connections (not up yet, restarting) "
        "is waited for, trying again with backoff, before the run fails naming it; 0: fail at once"
    )
    legacy_dataset: str | None = Field(
        None, description="dataset of forecasts published before they were keyed by dataset (see store/migrate.py)"
    )
    lock_timeout: float = Field(600.0, gt=0, description="seconds a writer waits for another writer of one key; on an "
                                "object store also how long a key's lock object a killed writer left blocks it")
    superseded_grace_s: float = Field(
        60.0, ge=0, description="embedded store: seconds a superseded Parquet file is kept (a DuckDB query planned on "
        "it can still read it); a later publish of the same key deletes it"
    )


class DistributedConfig(_Section):
    """How training processes are started (launcher = process): on this machine alone
    (`torchrun --standalone`), or as one node of several that meet at a rendezvous
    (`torchrun --nnodes N --node-rank R --rdzv-backend c10d --rdzv-endpoint HOST:PORT`). The
    other nodes join with `flowcast train-node --node-rank R` (or `srun torchrun ...` under
    SLURM: deployments/slurm/train.sbatch). README, "Multi-node training"."""

    launcher: Literal["standalone", "rendezvous"] = Field(
        "standalone", description="standalone: every process on this machine; rendezvous: nnodes machines meet "
        "at rdzv_endpoint"
    )
    nnodes: int = Field(1, ge=1, description="machines (torchrun agents) that train one model together")
    node_rank: int = Field(0, ge=0, description="this machine's rank; the flow's machine is 0")
    rdzv_endpoint: str | None = Field(None, description="HOST:PORT of the rendezvous (node 0's address)")
    rdzv_id: str = Field("flowcast", pattern=r"^[A-Za-z0-9_.-]+$", description="rendezvous (job) id shared by the nodes")
    rdzv_backend: str = Field("c10d", description="torchrun --rdzv-backend")
    jobs_dir: str | None = Field(
        None, description="folder shared by the nodes where node 0 posts each training job (data, config) for the "
        "others; None: home/runs/jobs (home on a shared file system) or shared/runs/jobs"
    )
    join_timeout: float = Field(900.0, gt=0, description="seconds a joining node waits for a job to be posted")
    rdzv_timeout: int = Field(600, ge=1, description="seconds torchrun waits for every node at a job's rendezvous "
                              "(--rdzv-conf join_timeout)")

    @model_validator(mode="after")
    def _endpoint(self) -> DistributedConfig:
        if self.launcher == "rendezvous":
            if not self.rdzv_endpoint or ":" not in self.rdzv_endpoint:
                raise ValueError(f"distributed.launcher='rendezvous' needs rdzv_endpoint = 'HOST:PORT', got "
                                 f"{self.rdzv_endpoint!r}")
            if self.node_rank >= self.nnodes:
                raise ValueError(f"distributed.node_rank {self.node_rank} must be below nnodes {self.nnodes}")
        return self


class WorkersConfig(_Section):
    """Runs on a Prefect work pool: how `flowcast backfill --deployment` fans dates out, and when
    the server marks a run whose worker died as crashed (the shipped zombie automation)."""

    max_attempts: int = Field(
        3, ge=1, description="flow runs a backfill date may take: a run that crashed (its worker died) is started again"
    )
    wait_timeout: str = Field("6h", description="longest a backfill waits for one date's flow run to finish")
    crash_after: str = Field(
        "10m", description="a running flow run without a heartbeat for this long is marked Crashed (the "
        "'flowcast: crash silent runs' automation); keep it above PREFECT_FLOWS_HEARTBEAT_FREQUENCY (180 s by default)"
    )

    @field_validator("crash_after")
    @classmethod
    def _crash_after(cls, v: str) -> str:
        if parse_duration(v) < timedelta(seconds=40):
            raise ValueError(f"crash_after must be at least 40s (flow run heartbeats come every 30 s at the most), "
                             f"got {v!r}")
        return v

    @field_validator("wait_timeout")
    @classmethod
    def _wait_timeout(cls, v: str) -> str:
        if parse_duration(v) <= timedelta(0):
            raise ValueError(f"wait_timeout must be a positive duration such as 30m or 6h, got {v!r}")
        return v


class ServeConfig(_Section):
    """How `flowcast serve` stops (SIGTERM: a container's or a systemd unit's stop)."""

    grace_seconds: float = Field(
        10, ge=0, description="on SIGTERM the serve takes no new run and waits this long for its runs in flight to "
        "end, then cancels those still running (a second SIGTERM or Ctrl-C: at once); the cancel takes ~10 s more, so "
        "keep the sum below the SIGKILL window (Kubernetes 30 s; Docker 10 s: `docker stop -t 30`). 0: cancel at once"
    )


class Settings(BaseSettings):
    """The whole configuration. Build it with `load_settings`, not directly."""

    # an empty FLOWCAST_* variable (`export FLOWCAST_HOME=`, or one set from an unset shell variable) is not
    # set: FLOWCAST_HOME= made the home '.', so that a run wrote lake/, models/, warehouse/ ... into the
    # working directory
    model_config = SettingsConfigDict(
        env_prefix="FLOWCAST_", env_nested_delimiter="__", extra="forbid", validate_default=True,
        env_ignore_empty=True,
    )

    home: Path = Field(Path(".flowcast"), description="this machine's folder: root of everything a run writes, "
                       "except what lives in `shared` when it is set (then home keeps caches, run folders and "
                       "local copies)")
    shared: str | None = Field(
        None,
        description="the home that workers on several machines share: a folder, file://, s3://, gs:// or az:// URL. "
        "The model registry (shared/models), the forecast store (shared/warehouse, unless store.url), reports, "
        "quarantine and accuracy status live there; None: everything under home",
    )
    shared_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options of an object-store `shared` URL, e.g. {endpoint_url = "
        "'...', key = '...', secret = '...'}; store.storage_options default to these"
    )
    dataset: str = Field("us_employment", description="bundled or [sources.NAME] dataset")
    source: SourceConfig | None = Field(None, description="explicit source; overrides dataset")
    sources: dict[str, SourceConfig] = Field(default_factory=dict, description="user-declared sources")
    horizon: int | None = Field(None, ge=1, description="default: the source's horizon")
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    accuracy: AccuracyConfig = Field(default_factory=AccuracyConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    workers: WorkersConfig = Field(default_factory=WorkersConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)

    @field_validator("home", mode="before")
    @classmethod
    def _home_is_a_folder(cls, v: Any) -> Any:
        if isinstance(v, str) and "://" in v:
            raise ValueError(f"home must be a folder of this machine, got the URL {v!r}: put a shared URL in "
                             f"`shared` (FLOWCAST_SHARED), e.g. shared = {v!r}")
        # home = "~/flowcast" (a TOML file or a quoted variable: no shell expands it) made a folder named '~'
        # in the working directory, a different home from every directory
        if not isinstance(v, (str, Path)):
            return v
        home = Path(v).expanduser()
        # `--home sales.csv` (for --data) failed inside the flow, after validation and preprocessing, with
        # "NotADirectoryError: [Errno 20] Not a directory: 'sales.csv/cache/prefect/...'"
        if home.exists() and not home.is_dir():
            raise ValueError(f"home {str(v)!r} is a file, not a folder: home is the folder a run writes everything "
                             "to (--home, FLOWCAST_HOME; default .flowcast); a data file goes in --data")
        return home

    @field_validator("sources")
    @classmethod
    def _source_names_are_keys(cls, v: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        for key, src in v.items():  # [sources.NAME] names its dataset unless it sets `name`
            if src.name == "custom":
                _dataset_name(key)
        return v

    @field_validator("shared")
    @classmethod
    def _shared_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        from flowcast.store.fs import OBJECT_PROTOCOLS, split_url

        protocol, rest = split_url(v)
        if protocol not in OBJECT_PROTOCOLS | {"file"} or not rest.strip("/"):
            raise ValueError(f"shared must be a folder, file:// or an object-store URL "
                             f"({', '.join(sorted(OBJECT_PROTOCOLS))}://bucket/prefix), got {v!r}")
        return v.rstrip("/") if "://" in v else os.path.expanduser(v)  # '~/shared' is the user's, as home is

    @model_validator(mode="after")
    def _the_one_declared_source(self) -> Settings:
        """A configuration that declares one source ([sources.NAME]) and names no `dataset` runs that source: it ran
        the bundled us_employment (148 series, minutes of training) when `flowcast run --config shop.toml` was given
        no --dataset, the source declared beside it unread (newuser25). Several declared: `dataset` (--dataset)
        chooses, as before."""
        if "dataset" not in self.model_fields_set and self.source is None and len(self.sources) == 1:
            self.dataset = next(iter(self.sources))
        return self

    # -- the shared home: what another machine must read
    @property
    def shared_remote(self) -> bool:
        """Whether `shared` is an object-store URL (not a folder)."""
        from flowcast.store.fs import OBJECT_PROTOCOLS, split_url

        return self.shared is not None and split_url(self.shared)[0] in OBJECT_PROTOCOLS

    def shared_path(self, sub: str) -> str:
        """`sub` of the shared home: a URL when `shared` is one, else a local path."""
        if self.shared is None:
            return str(self.home / sub)
        if self.shared_remote:
            return f"{self.shared}/{sub}"
        from flowcast.store.fs import split_url

        return str(Path(split_url(self.shared)[1]) / sub)

    @property
    def models_location(self) -> str:
        """The model registry's root: shared/models, or home/models."""
        return self.shared_path("models")

    # -- paths: everything a run writes lives under `home`
    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    # section -> fields given explicitly (flowcast.toml, FLOWCAST_* env, options, flow parameters):
    # the per-frequency defaults never replace them
    _given: dict[str, frozenset[str]] = PrivateAttr(default_factory=dict)


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    """Overrides given as None mean 'not given' (typer and flow parameters pass None)."""
    return {k: (_drop_none(v) if isinstance(v, dict) else v) for k, v in d.items() if v is not None}


IMPLICIT_CONFIG_NAME = "flowcast.toml"  # the usual name of a configuration file; read only when named


def config_path(config_file: str | Path | None = None) -> Path | None:
    """The configuration file a run reads: `config_file`, else FLOWCAST_CONFIG, else none.
    A named file that does not exist is an error (FileNotFoundError naming it)."""
    named = config_file or os.environ.get("FLOWCAST_CONFIG")
    if not named:
        return None
    path = Path(named).expanduser()
    if not path.is_file():
        how = "FLOWCAST_CONFIG" if config_file is None else "the configuration file"
        if path.is_dir():  # it exists: 'not found' sent people looking for a typo
            raise FileNotFoundError(f"configuration file {path} is a folder, not a TOML file (named by {how})")
        raise FileNotFoundError(f"configuration file not found: {path} (named by {how})")
    return path


def read_config_file(path: Path) -> dict[str, Any]:
    """The TOML configuration file at `path`, as every reader of it reads it (`load_settings`, `_located_errors`,
    the CLI's note on an unnamed one): UTF-8, a byte-order mark at its start read past (Windows' Notepad and
    PowerShell's `Out-File -Encoding utf8` write one; tomllib refused such a file, named or not: 'Invalid statement
    (at line 1, column 1)'). Raises OSError, UnicodeDecodeError or tomllib.TOMLDecodeError."""
    import tomllib

    return tomllib.loads(path.read_bytes().decode("utf-8-sig"))  # (bytes: its newlines as written, as tomllib.load)


class _TomlFile(TomlConfigSettingsSource):
    """pydantic-settings' TOML source, its file read by `read_config_file` (the source's own reading, tomllib on the
    bytes, refused a file that starts with a byte-order mark)."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        return read_config_file(Path(str(file_path)))


def _setting_kind(path: list[str]) -> str | None:
    """'list', 'dict' or 'section' for a setting that an environment variable must give as JSON
    (model.cells, model.blend, a whole section), None for a plain value or an unknown name."""
    import types
    import typing

    model: Any = Settings
    annotation: Any = None
    for part in path:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return None
        annotation = fields[part].annotation
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # X | None
            annotation = next((a for a in typing.get_args(annotation) if a is not type(None)), annotation)
        model = annotation
    origin = typing.get_origin(annotation) or annotation
    if origin in (list, tuple, set):
        return "list"
    if origin is dict:
        return "dict"
    return "section" if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _env_json_error(exc: Exception, environ: Mapping[str, str]) -> str | None:
    """The FLOWCAST_* variable behind pydantic-settings' 'error parsing value for field "model" from
    source "EnvSettingsSource"', named with its value and the JSON it needs (FLOWCAST_MODEL__CELLS=gru
    -> '["gru"]'); None when no such variable is found."""
    import json
    import re

    m = re.search(r'field "(\w+)" from source "EnvSettingsSource"', str(exc))
    if not m:
        return None
    prefix = f"FLOWCAST_{m.group(1)}".upper()
    said = []
    for name, value in sorted(environ.items()):
        if name.upper() != prefix and not name.upper().startswith(prefix + "__"):
            continue
        kind = _setting_kind(name[len("FLOWCAST_"):].lower().split("__"))
        try:
            json.loads(value)
            continue
        except ValueError:
            pass
        if kind == "list":
            items = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
            example = json.dumps([json.loads(v) if re.fullmatch(r"-?\d+(\.\d+)?", v) else v.strip("'\"")
                                  for v in items])
            said.append(f"{name}={value!r} is not a JSON list, which this setting needs: e.g. {name}='{example}'")
        elif kind == "dict":
            said.append(f"{name}={value!r} is not a JSON object, which this setting needs: e.g. "
                        f"{name}='{{\"theta\": 0.25}}'")
        elif kind == "section":
            said.append(f"{name}={value!r} is not a JSON object; set the section's settings one by one instead, "
                        f"as {name}__<SETTING>=<value>")
    return "; ".join(said) or None


# FLOWCAST_* variables that are read elsewhere than the configuration tree
OTHER_ENV = ("CONFIG", "DEBUG", "PREFECT_LOGS", "RETRAIN_CRON", "FORECAST_CRON", "TIMEZONE", "FAULT", "FAULT_SIGNAL",
             "PG_BIN", "OWNER", "LAUNCHER_PID")


def _env_names() -> list[str]:
    """Every FLOWCAST_* name a setting reads: FLOWCAST_HORIZON, FLOWCAST_MODEL__MAX_STEPS, ..."""
    import types
    import typing

    names = []
    for name, info in Settings.model_fields.items():
        names.append(name.upper())
        ann = info.annotation
        if typing.get_origin(ann) in (typing.Union, types.UnionType):  # source: SourceConfig | None
            ann = next((a for a in typing.get_args(ann) if a is not type(None)), ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names += [f"{name}__{sub}".upper() for sub in ann.model_fields]
    return names


def unknown_env(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """(variable, the FLOWCAST_* name it may mean) for each FLOWCAST_* variable that no setting reads:
    pydantic-settings ignores them, so FLOWCAST_MAX_STEPS=50 (for FLOWCAST_MODEL__MAX_STEPS) or
    FLOWCAST_HORIZN=7 changed nothing without a word."""
    import difflib

    known = _env_names()
    sections = {n.split("__")[0] for n in known if "__" in n}
    out = []
    for var in sorted(environ):
        if not var.upper().startswith("FLOWCAST_"):
            continue
        rest = var[len("FLOWCAST_"):].upper()
        head = rest.split("__")[0]
        if rest in known or head in OTHER_ENV or (head in sections and "__" in rest) or head == "SOURCES":
            continue  # a section's unknown field fails validation, naming it; [sources.NAME] keys are names
        close = difflib.get_close_matches(rest, known, n=1, cutoff=0.75) or [
            n for n in known if n.endswith(f"__{rest}")][:1]
        out.append((var, f"FLOWCAST_{close[0]}" if close else None))
    return out


def _located_errors(exc: ValidationError, overrides: Mapping[str, Any], environ: Mapping[str, str],
                    path: Path | None) -> list[dict[str, Any]] | None:
    """pydantic's errors of a configuration, each with the `origin` of its value where it came from the
    environment (`FLOWCAST_MODEL__MAX_STEPS='abc' (model.max_steps)`) or the configuration file
    (`model.max_steps = "abc" in flowcast.toml`); None when none of them did (an option or a flow
    parameter, which pydantic's key already names). Sources are looked up in the order they win:
    options, then the environment, then the file."""
    import json

    def lookup(tree: Any, loc: tuple[Any, ...]) -> tuple[bool, Any]:
        for part in loc:
            if not isinstance(tree, Mapping) or str(part) not in tree:
                if isinstance(tree, list) and isinstance(part, int) and part < len(tree):
                    tree = tree[part]
                    continue
                return False, None
            tree = tree[str(part)]
        return True, tree

    env = {k.upper(): (k, v) for k, v in environ.items() if k.upper().startswith("FLOWCAST_") and v != ""}
    try:
        toml = read_config_file(path) if path is not None else {}
    except (OSError, ValueError):
        toml = {}
    out: list[dict[str, Any]] = []
    found = False
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        e: dict[str, Any] = dict(error)
        if loc and not lookup(overrides, loc)[0]:
            key = ".".join(str(p) for p in loc)
            var = next((n for n in ("FLOWCAST_" + "__".join(str(p) for p in loc[:i]).upper()
                                    for i in range(len(loc), 0, -1)) if n in env), None)
            if var is not None:  # named as it was set (pydantic-settings reads them in any case)
                e["origin"] = f"{env[var][0]}={env[var][1]!r} ({key}, from the environment)"
                found = True
            elif path is not None and (hit := lookup(toml, loc))[0]:
                try:
                    shown = json.dumps(hit[1])
                except (TypeError, ValueError):
                    shown = repr(hit[1])
                e["origin"] = f"{key} = {shown} in {path}"
                found = True
        out.append(e)
    return out if found else None


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Read defaults < the NAMED TOML file (`config_path`) < FLOWCAST_* env < overrides (nested
    dicts merge, None is ignored)."""
    path = config_path(config_file)

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            toml = _TomlFile(settings_cls, toml_file=path)
            return (init_settings, env_settings, toml)

    try:
        merged = _FromFile(**_drop_none(overrides))
    except SettingsError as exc:  # pydantic-settings names the section, not the variable or its value
        raise ValueError(_env_json_error(exc, os.environ) or str(exc)) from exc
    except ValidationError as exc:  # it names the key (model.max_steps), not the variable or file that set it
        located = _located_errors(exc, _drop_none(overrides), os.environ, path)
        if located is None:
            raise
        raise SettingsValueError(located) from exc
    settings = Settings.model_validate(merged.model_dump())
    settings._given = {name: frozenset(getattr(merged, name).model_fields_set) for name in FREQUENCY_SECTIONS}
    return settings


def with_overrides(settings: Settings, **overrides: Any) -> Settings:
    """A copy of `settings` with nested overrides applied (None values ignored)."""
    extra = _drop_none(overrides)
    out = Settings.model_validate(_deep_merge(settings.model_dump(), extra))
    out._given = {name: settings._given.get(name, frozenset()) | frozenset((extra.get(name) or {}).keys())
                  for name in FREQUENCY_SECTIONS}
    return out


# ------------------------------------------------------------------------------ per-frequency recipes
FREQUENCY_SECTIONS = ("preprocess", "model", "evaluation")
# What a run uses for data of each frequency where a setting is not given explicitly (the plain
# defaults above serve every other frequency). Chosen on M3 validation splits (the last horizon of
# each training span, never the test): README, "Benchmarks". Monthly training is bounded by
# epochs (passes over the series) as well as steps, and reads at most the last 144 months of a
# series: M3 monthly (1,428 series of <= 126 months) still trains 600 steps, while the 148 long
# series of us_employment train 100 (50 epochs of 2 batches), so `make run` stays within minutes.
# Quarterly data are backtested on 4 windows half a horizon apart (step 4) instead of 2 a horizon
# apart: the same 16 quarters give twice the forecast origins to learn combination weights and to
# choose on (M3 quarterly validation split: the published sMAPE went from 9.04, damped, to 8.87,
# comb; 80% / 95% coverage 0.825 / 0.966). Like every backtest span, the windows shrink to fit
# short data (`flowcast.data.lengths.fit_backtest`). ARIMA (`arima`) is a quarterly member only: it
# helped at both quarterly validation origins (published 8.877 -> 8.774 and 10.921 -> 10.757) but
# not at both yearly ones nor on monthly data. Quarterly networks: one global MLP (`mlp`, lookback 8,
# 256 x 2, 1,000 steps) retrained for every backtest window (`refit`) instead of forking rnn and gru
# trained once at the oldest cut: the published forecast was the same comb at 8 quarters back
# (8.774; the hybrid behind it by 0.0015 MASE) and went from 10.757 to 10.236 at 16 back (the
# hybrid with the mlp). Not yearly (19.030 against 18.957 at 6 years back). The global linear
# model (`flowcast.models.stats`, glin) is in no recipe: README, "Benchmarks".
# Sub-daily data (every frequency under a day: '30m', '1h', '15m') add the seasonal naive of a week,
# `snaive_week` (the same time 7 days earlier; seasonal_naive is a day earlier), the other benchmark of half-hourly
# and hourly demand: over 350 daily origins of vic_elecdemand (2014) its mean absolute error one day ahead is 0.331
# against the daily one's 0.362, and it led the product's own backtest (2 windows of a day) at 6 of the 11 month ends
# of 2014 it was run at (not at the year's end, whose week before is Christmas's). README, "Benchmarks".
SUBDAILY = "sub-daily"
FREQUENCY_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "1y": {
        "preprocess": {"log1p": True, "short_series": "pad", "val_size": 0},
        "model": {"cells": ["rnn", "gru"], "mode": "forking", "hidden_size": 64, "num_layers": 2, "lr": 3e-3,
                  "batch_size": 128, "max_steps": 150, "lookback": 12, "early_stopping_patience": None},
        "evaluation": {"statistical": ["naive", "theta", "damped", "dotm", "drift"],
                       "combination": ["theta", "damped", "dotm", "drift"]},
    },
    "1q": {
        "preprocess": {"log1p": True, "short_series": "pad", "val_size": 0},
        "model": {"cells": ["mlp"], "mode": "windowed", "hidden_size": 256, "num_layers": 2, "lr": 3e-3,
                  "batch_size": 128, "max_steps": 1000, "lookback": 8, "early_stopping_patience": None},
        "evaluation": {"statistical": ["naive", "seasonal_naive", "theta", "damped", "dotm", "drift", "arima"],
                       "combination": ["theta", "damped", "dotm", "drift", "arima"], "n_windows": 4, "step": 4,
                       "refit": True},
    },
    "1mo": {
        "preprocess": {"log1p": True, "short_series": "pad", "val_size": 0},
        "model": {"cells": ["rnn", "gru"], "mode": "forking", "hidden_size": 128, "num_layers": 2,
                  "lr": 3e-3, "batch_size": 128, "max_steps": 600, "max_epochs": 50, "fork_length": 144,
                  "early_stopping_patience": None},
        "evaluation": {"statistical": ["naive", "seasonal_naive", "theta", "damped", "dotm"],
                       "combination": ["theta", "damped", "dotm"]},
    },
    SUBDAILY: {
        "evaluation": {"statistical": ["naive", "seasonal_naive", "snaive_week", "theta", "damped"],
                       "calibration_windows": 28},
    },
}


# settings that mean one thing together: given one of them explicitly, the recipe sets none of them
_LINKED = ({"max_steps", "max_epochs"},)


def recipe_freq(freq: str) -> str:
    """The FREQUENCY_DEFAULTS key of a frequency written another way on the same grid: quarters as
    '3mo', years as '12mo' or '4q' ('3mo' data got the plain defaults, not the quarterly recipe)."""
    import re

    m = re.fullmatch(r"(\d+)(mo|q|y)", freq)
    if not m:
        return freq
    months = int(m.group(1)) * {"mo": 1, "q": 3, "y": 12}[m.group(2)]
    return {1: "1mo", 3: "1q", 12: "1y"}.get(months, freq)


def for_frequency(settings: Settings, freq: str) -> Settings:
    """`settings` with FREQUENCY_DEFAULTS[freq] (FREQUENCY_DEFAULTS[SUBDAILY] for a sub-daily `freq`) applied to
    every field that was not given explicitly (a value in flowcast.toml, the environment or an option always wins).
    Fields the configuration does not have (yet) are left out. A statistical model that cannot forecast data of
    `freq` (`recipes.unusable_at`: snaive_week of weekly data) is refused, naming both, where a list names it (the
    evaluation's candidates and combination, model.blend); the recipe's own lists leave it out (the sub-daily one's
    snaive_week at '5h', whose week is no whole number of periods)."""
    from flowcast.models.recipes import no_week, unusable_at

    out = _recipe_of(settings, freq)
    listed = {"evaluation.statistical": out.evaluation.statistical,
              "evaluation.combination": out.evaluation.combination, "model.blend": list(out.model.blend)}
    for where, models in listed.items():
        if bad := unusable_at(models, freq):
            raise ValueError(f"{where} lists {no_week(bad[0], freq)}; take it out of {where}")
    return out


def _recipe_of(settings: Settings, freq: str) -> Settings:
    """`for_frequency` before its check: the recipe applied, without the models it lists that cannot forecast
    data of `freq`."""
    from flowcast.data.calendar import is_subdaily
    from flowcast.models.recipes import unusable_at

    table = FREQUENCY_DEFAULTS.get(recipe_freq(freq)) or (
        FREQUENCY_DEFAULTS[SUBDAILY] if is_subdaily(freq) else None)
    if not table:
        return settings
    update: dict[str, dict[str, Any]] = {}
    for section, values in table.items():
        known = type(getattr(settings, section)).model_fields
        given = set(settings._given.get(section, frozenset()))
        for linked in _LINKED:  # a length of training given in steps (or epochs) is the whole length
            if given & linked:
                given |= linked
        chosen = {k: [m for m in v if m not in unusable_at([m], freq)] if isinstance(v, list) else v
                  for k, v in values.items() if k in known and k not in given}
        if chosen:
            update[section] = chosen
    if not update:
        return settings
    out = Settings.model_validate(_deep_merge(settings.model_dump(), update))
    out._given = dict(settings._given)
    return out
