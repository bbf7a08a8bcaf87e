"""Prediction: every series of a TrainingData exactly once, on the original scale, in one process.

`predict` cuts each series at its last observation (short series are padded and masked), feeds
the future-known covariates of the horizon rows and the statics (a category level the model never
saw is its unknown level), and inverts the per-series scaling. `ensemble` combines several prediction frames; `blend` mixes statistical forecasts into
one (a model trained with `model.blend` has it applied by `predict`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from flowcast.columns import quantile_col
from flowcast.data.calendar import calendar_columns
from flowcast.errors import ModelFileError, TrainingError
from flowcast.wording import noun

if TYPE_CHECKING:
    from flowcast.data.training_data import TrainingData
    from flowcast.models.train import ModelArtifact

_MODULES: dict[str, object] = {}


def checkpoint_fault(ckpt: Path) -> str | None:
    """Why the checkpoint `ckpt` is not whole, as '<damaged ...>' or '<cannot be read ...>' (None: a zip whose members
    all pass their CRCs). torch saves a zip whose members carry CRCs, and torch reads a byte flipped in the weights
    without a word; a file that is not a zip (cut short, overwritten) or cannot be read (an I/O error) is no checkpoint
    this pipeline wrote. The one check of `check_checkpoint` (the forecast) and `damaged_network_files` (`models show`)."""
    import zipfile

    try:
        with zipfile.ZipFile(ckpt) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:  # cut short, overwritten
        return f"damaged or cut short ({type(exc).__name__}: {exc})"
    except OSError as exc:  # an I/O error, a folder in its place
        return f"cannot be read ({type(exc).__name__}: {exc})"
    if bad is not None:
        return f"damaged (its member {bad} fails its CRC): its weights are not the ones trained"
    return None


def check_checkpoint(ckpt: Path) -> None:
    """ModelFileError naming `ckpt` unless it is whole (`checkpoint_fault`): a damaged production model would forecast
    other values silently, and an I/O error said nothing of the file."""
    fault = checkpoint_fault(ckpt)
    if fault is not None:
        raise ModelFileError(f"the model file {ckpt} is {fault}" if fault.startswith("damaged")
                             else f"the model file {ckpt} {fault}")


def load_module(artifact: ModelArtifact):
    """The RNNForecaster of an artifact (cached per checkpoint file and mtime), on CPU, in eval mode."""
    from flowcast.models.rnn import RNNForecaster

    ckpt = artifact.checkpoint
    key = f"{ckpt}:{ckpt.stat().st_mtime_ns}"
    if key not in _MODULES:
        check_checkpoint(ckpt)
        try:
            module = RNNForecaster.load_from_checkpoint(str(ckpt), map_location="cpu", weights_only=False)
        except Exception as exc:  # a torn file: torch said only `OSError: [Errno 22] Invalid argument`, no file
            raise ModelFileError(f"the model file {ckpt} cannot be read ({type(exc).__name__}: {exc}): it is damaged "
                                 "or cut short") from exc
        module.eval()
        _MODULES.clear()
        _MODULES[key] = module
    return _MODULES[key]


def _model_statics(td: TrainingData, want: list[str], artifact: ModelArtifact) -> TrainingData:
    """`td` with its statics as the model's columns: a category level the model never saw is its
    unknown level (`flowcast.data.statics`), so a new series never fails every series' forecast."""
    from dataclasses import replace

    from flowcast.data.statics import align_statics

    have = list(td.meta.static_cols)
    if have == want:
        return td
    try:
        static = align_statics(td.static, have, want, td.ids)
    except TrainingError as exc:
        raise TrainingError(f"{exc} ({artifact.path})") from None
    return replace(td, static=static, meta=replace(td.meta, static_cols=want))


def _model_scaling(td: TrainingData, data: dict) -> TrainingData:
    """`td` with its per-series scalers fitted the way the network's training data had them (`scaler`, `log1p`
    recorded in the model): data prepared with other settings (a configuration edited since the retrain) would
    feed it inputs on another scale. The log1p decision stays per series (off where a value is negative), and the
    span is `td`'s (all but the last val_size rows), as preprocessing fits it. A network saved before its scaling
    was recorded keeps `td`'s."""
    from dataclasses import replace

    from flowcast.data.training_data import fit_scalers_per_series

    scaler = data.get("scaler")
    log1p = bool(data.get("log1p", False))
    if scaler is None or (td.meta.scaler == scaler and bool(td.meta.log1p) == log1p):
        return td
    ids: pl.Series | list[str] = (td.frame.group_by("unique_id").agg((pl.col("y").min() >= 0).alias("ok"))
                                  .filter(pl.col("ok"))["unique_id"]) if log1p else []
    scalers = fit_scalers_per_series(td.frame, scaler, ids, holdout=td.meta.val_size)
    return replace(td, scalers=scalers, meta=replace(td.meta, scaler=scaler, log1p=log1p))


def covariates_differ(kind: str, have: list[str], want: list[str], calendar: set[str]) -> str:
    """Why the data's covariates of `kind` ('future_cols', 'past_cols'), `have`, cannot feed a network trained on
    `want`, in the options that mend it: the covariates the model was trained with that the data does not declare,
    those it declares that the model was not, or their order. The `calendar` columns, which flowcast derives itself,
    are left out of it: `flowcast forecast` without the `--future-col price --future-col promo` its retrain was given
    was told `data future_cols ['cal_week_sin', ...] differ from the model's [..., 'price', 'promo']`, and no option."""
    label, option = ("future-known", "--future-col") if kind == "future_cols" else ("past", "--past-col")
    missing = [c for c in want if c not in have and c not in calendar]
    extra = [c for c in have if c not in want and c not in calendar]
    said = []
    if missing:
        it = "it" if len(missing) == 1 else "them"
        said.append(f"the model was trained with the {label} {noun(len(missing), 'covariate')} "
                    f"{', '.join(missing)}, which the data does not declare: declare {it} as its retrain did "
                    f"({' '.join(f'{option} {c}' for c in missing)}; {kind} in [sources.NAME])")
    if extra:
        it = "it" if len(extra) == 1 else "them"
        said.append(f"the data declares the {label} {noun(len(extra), 'covariate')} {', '.join(extra)}, "
                    f"which the model was not trained with: leave {it} out, or retrain with {it} (flowcast run)")
    if not said:  # the same columns: another order, or another frequency's calendar columns
        said.append(f"the data's {label} covariates {have} differ from the model's {want}")
    return "; ".join(said)


def declared_covariates_differ(future_cols: list[str], past_cols: list[str], meta: dict[str, Any]) -> str | None:
    """`covariates_differ`'s sentence of a source declaring `future_cols` and `past_cols` and a trained network whose
    meta.json is `meta` (its hparams.data records the covariates it was trained with), said before the source's
    data is read: the comparison `predict` makes, in the order preprocessing gives them (`preprocess`: the declared
    future covariates, then the past ones that are not among them), with the calendar columns, which preprocessing
    derives, left out of both. None where they are the network's."""
    data = (meta.get("hparams") or {}).get("data") or {}
    declared = list(dict.fromkeys(future_cols))
    have = {"future_cols": declared, "past_cols": [c for c in dict.fromkeys(past_cols) if c not in declared]}
    calendar = set(calendar_columns(str(data.get("freq") or meta.get("freq"))))
    for kind, got in have.items():
        want = [c for c in data.get(kind, []) if c not in calendar]
        if got != want:
            return covariates_differ(kind, got, want, calendar)
    return None


def predict(artifact: ModelArtifact, td: TrainingData, horizon: int | None = None,
            batch_size: int = 4096) -> pl.DataFrame:
    """unique_id, ds, step (Int32 1..h), y_hat (Float64) [+ quantile columns], original scale."""
    import torch

    from flowcast.models.windows import CovStats, gather_windows, pack

    module = load_module(artifact)
    hp = module.hparams
    data = hp.data or {}
    h_model = int(hp.horizon)
    h = int(horizon or td.meta.horizon)
    if h > h_model:
        raise TrainingError(f"model {artifact.path} forecasts {h_model} steps; asked for horizon={h}: a network forecasts "
                            f"only the steps it was trained for (ask for {h_model} or fewer, or retrain with horizon "
                            f"{h}: flowcast run --horizon {h})")
    for kind in ("future_cols", "past_cols"):
        have, want = list(getattr(td.meta, kind)), list(data.get(kind, []))
        if have != want:
            calendar = {*calendar_columns(str(data.get("freq") or td.meta.freq)), *td.meta.calendar_cols}
            # the folder absolute and resolved, as the check before Prefect names it (`declared_covariates_refusal`)
            raise TrainingError(f"{covariates_differ(kind, have, want, calendar)} ({Path(artifact.path).resolve()})")
    td = _model_statics(td, list(data.get("static_cols", [])), artifact)
    td = _model_scaling(td, data)
    stats = CovStats(**data["cov_stats"])
    packed = pack(td, stats, horizon=h_model)
    L = module.eval_lookback
    chunks = []
    with torch.inference_mode():
        for start in range(0, packed.n_series, batch_size):
            sid = torch.arange(start, min(start + batch_size, packed.n_series))
            cut = packed.obs_len[sid]  # forecast origin: after the last observation
            batch = gather_windows(packed, sid, cut, L, h_model, cut)
            chunks.append(module.predict_scaled(batch).float())  # [b, H, Q]
    out = torch.cat(chunks)[:, :h]  # [S, H, Q] -> [S, h, Q]
    S = out.shape[0]
    cols = {"unique_id": pl.Series(packed.ids).repeat_by(h).explode() if S else pl.Series([], dtype=pl.Utf8),
            "step": pl.Series(list(range(1, h + 1)) * S, dtype=pl.Int32),
            "y_hat": pl.Series(out[..., module.point_index].reshape(-1).double().numpy())}  # [S, h] -> [S*h]
    qcols = [quantile_col(q) for q in module.quantiles] if len(module.quantiles) > 1 or hp.loss == "quantile" else []
    for i, c in enumerate(qcols):
        cols[c] = pl.Series(out[..., i].reshape(-1).double().numpy())  # [S, h] -> [S*h]
    frame = pl.DataFrame(cols).with_columns(pl.col("unique_id").cast(pl.Utf8))
    frame = td.inverse(frame, cols=("y_hat", *qcols))
    ds = td.future_frame(h).select("unique_id", "step", "ds")
    frame = frame.join(ds, on=["unique_id", "step"], how="left")
    frame = frame.select("unique_id", "ds", "step", "y_hat", *qcols).sort("unique_id", "step")
    weights = (artifact.meta.get("config") or {}).get("blend") or {}
    if weights:
        frame = blend(frame, {name: _blended(name, td, h) for name in weights}, weights)
    return frame


def _blended(name: str, td: TrainingData, horizon: int) -> pl.DataFrame:
    """Statistical model `name`'s forecast to blend: a baseline's as it is; another model's (dotm, drift, arima,
    ...) with the naive forecast (the last resort) for the series too short for it (it forecasts them null)."""
    from flowcast.models.baselines import BASELINES, baseline_forecast
    from flowcast.models.recipes import statistical_forecast

    if name in BASELINES:
        return baseline_forecast(name, td, horizon)  # type: ignore[arg-type]
    out = statistical_forecast(name, td, horizon)
    if not out["y_hat"].null_count():
        return out
    last = baseline_forecast("naive", td, horizon).select("unique_id", "step", pl.col("y_hat").alias("_last"))
    return (out.join(last, on=["unique_id", "step"], how="left")
            .with_columns(pl.col("y_hat").fill_null(pl.col("_last"))).drop("_last"))


def blend(pred: pl.DataFrame, others: dict[str, pl.DataFrame], weights: dict[str, float]) -> pl.DataFrame:
    """y_hat = (1 - sum of weights) * pred + sum of weight * other, row by row (unique_id, step).

    Quantile columns move with y_hat (shifted by the same amount), so intervals keep their width
    and order. Every frame must forecast the same rows."""
    total = sum(weights.values())
    if set(weights) - set(others) or not 0 <= total < 1 or min(weights.values(), default=0) < 0:
        raise ValueError(f"blend weights {weights} need a forecast each ({sorted(others)}), be >= 0 and sum below 1")
    mixed = pred.select("unique_id", "step", (pl.col("y_hat") * (1 - total)).alias("mix"))
    for name, w in weights.items():
        other = others[name].select("unique_id", "step", pl.col("y_hat").alias("o"))
        mixed = mixed.join(other, on=["unique_id", "step"], how="left")
        if mixed.height != pred.height or other.height != pred.height or mixed["o"].null_count():
            raise ValueError(f"{name} forecasts {other.height} rows for the {pred.height} to blend")
        mixed = mixed.select("unique_id", "step", pl.col("mix") + w * pl.col("o").cast(pl.Float64))
    out = pred.join(mixed, on=["unique_id", "step"], how="left")
    qcols = [c for c in pred.columns if c.startswith("y_hat_q")]
    return out.with_columns(
        *[(pl.col(c) + pl.col("mix") - pl.col("y_hat")).alias(c) for c in qcols], pl.col("mix").alias("y_hat")
    ).select(pred.columns)


def ensemble(frames: list[pl.DataFrame], how: str = "mean") -> pl.DataFrame:
    """Combine predictions of several models row by row (unique_id, ds, step): mean or median."""
    if not frames:
        raise ValueError("ensemble needs at least one prediction frame")
    value_cols = [c for c in frames[0].columns if c == "y_hat" or c.startswith("y_hat_q")]
    for f in frames[1:]:
        missing = set(value_cols) - set(f.columns)
        if missing or f.height != frames[0].height:
            raise ValueError(f"prediction frames differ: missing {sorted(missing)}, heights {[x.height for x in frames]}")
    agg = {"mean": lambda c: pl.col(c).mean(), "median": lambda c: pl.col(c).median()}[how]
    stacked = pl.concat([f.select("unique_id", "ds", "step", *value_cols) for f in frames])
    return (
        stacked.group_by("unique_id", "ds", "step").agg([agg(c).cast(pl.Float64).alias(c) for c in value_cols])
        .sort("unique_id", "step")
    )
