"""What a person sees in the Prefect UI: artifacts under stable keys, and the forecast plot.

Rendering (markdown, table rows, the PNG) is plain functions that return values or write a
file, testable without Prefect. The `*_artifact` functions push those renderings to the
Prefect API under the keys in `KEYS`; they are called from flows (inside a run) and return
the artifact id. Outside a run they still work when an API is reachable, and do nothing
(returning None) when no run context exists and `only_in_run=True`.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from flowcast.atomic import atomic_file

# Stable artifact keys: every run of a flow writes a new version under the same key, so the UI's
# Artifacts page shows the history of each. Keys: lowercase letters, digits and dashes.
KEYS = {
    "quality": "data-quality",
    "leaderboard": "leaderboard",
    "decision": "promotion-decision",
    "plot": "forecast-plot",
    "receipt": "publish-receipt",
    "backfill": "backfill-summary",
}


def progress_key(cell: str) -> str:
    """Key of the training progress artifact of one model family ('training-progress-lstm')."""
    return f"training-progress-{cell}".lower().replace("_", "-")


# --------------------------------------------------------------------------- rendering helpers
def _fmt(v: Any) -> Any:
    """Table cell: floats rounded to 4 significant decimals, datetimes as ISO strings."""
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return round(v, 4)
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return v


def table_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """A polars frame as JSON-friendly rows for a table artifact."""
    return [{k: _fmt(v) for k, v in row.items()} for row in frame.to_dicts()]


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows (dicts with the same keys) as a GitHub markdown table."""
    if not rows:
        return "_(empty)_"
    cols = list(rows[0].keys())
    head = "| " + " | ".join(cols) + " |\n| " + " | ".join("---" for _ in cols) + " |\n"
    body = "".join("| " + " | ".join(str(_fmt(r.get(c, ""))) for c in cols) + " |\n" for r in rows)
    return head + body


def leaderboard_markdown(board: pl.DataFrame, metric: str, champion: str | None = None) -> str:
    rows = table_rows(board)
    title = f"## Leaderboard (ranked by {metric}, lower is better)\n\n"
    note = f"\nPublished forecasts come from **{champion}**.\n" if champion else ""
    return title + markdown_table(rows) + note


def receipt_rows(receipt: Any) -> list[dict[str, Any]]:
    """A PublishReceipt (dataclass or pydantic model or dict) as a one-column-per-field table."""
    if hasattr(receipt, "to_dict"):
        d = receipt.to_dict()
    elif hasattr(receipt, "model_dump"):
        d = receipt.model_dump()
    elif hasattr(receipt, "__dataclass_fields__"):
        from dataclasses import asdict

        d = asdict(receipt)
    elif isinstance(receipt, Mapping):
        d = dict(receipt)
    else:
        d = dict(vars(receipt))
    return [{"field": k, "value": str(_fmt(v))} for k, v in d.items()]


# --------------------------------------------------------------------------- the forecast plot
def plot_forecasts(
    history: pl.DataFrame,
    forecasts: pl.DataFrame,
    path: str | Path,
    *,
    n_series: int = 6,
    context: int = 48,
    title: str = "",
    tz: str | None = None,
) -> Path | None:
    """Draw the last `context` observations and the forecast of up to `n_series` series, one
    panel each, into a PNG at `path` (written atomically). Returns the path, or None when there
    is nothing to draw. `history`: unique_id, ds, y; `forecasts`: unique_id, ds, y_hat and
    optional y_hat_q* columns (the lowest and highest quantile are shaded). `tz`: sub-daily ds
    are UTC instants; the time axis is labelled in this zone's local time (the points stay in
    instant order, so the hour repeated when daylight saving ends is not folded onto itself)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    if n_series <= 0 or forecasts.is_empty():
        return None
    ids = sorted(forecasts["unique_id"].unique().to_list())
    if len(ids) > n_series:  # an even spread over the sorted ids: reproducible, not random
        stride = len(ids) / n_series
        ids = [ids[int(i * stride)] for i in range(n_series)]
    qcols = sorted(c for c in forecasts.columns if c.startswith("y_hat_q"))
    ncols = 2 if len(ids) > 1 else 1
    nrows = math.ceil(len(ids) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 2.4 * nrows), squeeze=False)
    for ax, uid in zip(axes.flat, ids):
        h = history.filter(pl.col("unique_id") == uid).sort("ds").tail(context)
        f = forecasts.filter(pl.col("unique_id") == uid).sort("ds")
        ax.plot(h["ds"].to_list(), h["y"].to_list(), color="0.3", lw=1, label="observed")
        ax.plot(f["ds"].to_list(), f["y_hat"].to_list(), color="C0", lw=1.5, label="forecast")
        if len(qcols) >= 2:
            ax.fill_between(f["ds"].to_list(), f[qcols[0]].to_list(), f[qcols[-1]].to_list(), color="C0", alpha=0.2)
        ax.set_title(str(uid), fontsize=8)
        ax.tick_params(labelsize=7)
        if tz is not None:
            from zoneinfo import ZoneInfo

            import matplotlib.dates as mdates

            locator = mdates.AutoDateLocator(tz=ZoneInfo(tz))
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=ZoneInfo(tz)))
    for ax in list(axes.flat)[len(ids):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_file(path) as fh:
            fig.savefig(fh, format="png", dpi=80)
    finally:
        plt.close(fig)
    return path


def plot_markdown(png: Path, caption: str, embed_limit: int = 400_000) -> str:
    """Markdown showing the PNG inline (base64 data URI, when small enough) and naming its file."""
    text = f"## {caption}\n\nFile: `{png.resolve()}`\n\n"
    data = png.read_bytes()
    if len(data) <= embed_limit:
        text += f"![{caption}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})\n"
    return text


# --------------------------------------------------------------------------- Prefect artifacts
def _in_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def quality_artifact(report: Any) -> Any:
    """The data quality report (rows in / valid / quarantined, failed checks, excluded series) as markdown."""
    from prefect.artifacts import create_markdown_artifact

    if not _in_run():
        return None
    md = report.to_markdown() if hasattr(report, "to_markdown") else str(report)
    return create_markdown_artifact(md, key=KEYS["quality"], description="Data quality: rows in, valid, quarantined and why")


def leaderboard_artifact(board: pl.DataFrame, metric: str, champion: str | None = None) -> Any:
    from prefect.artifacts import create_table_artifact

    if not _in_run():
        return None
    desc = f"Backtest leaderboard, ranked by {metric} (lower is better)"
    if champion:
        desc += f"; published forecasts come from {champion}"
    return create_table_artifact(table_rows(board), key=KEYS["leaderboard"], description=desc)


def decision_artifact(markdown: str) -> Any:
    from prefect.artifacts import create_markdown_artifact

    if not _in_run():
        return None
    return create_markdown_artifact(markdown, key=KEYS["decision"], description="Promotion decision and its reasons")


def plot_artifact(png: Path | None, caption: str) -> Any:
    from prefect.artifacts import create_markdown_artifact

    if not _in_run():
        return None
    md = plot_markdown(png, caption) if png is not None else f"## {caption}\n\nNothing to draw (no forecasts).\n"
    return create_markdown_artifact(md, key=KEYS["plot"], description=caption)


def receipt_artifact(receipt: Any, note: str = "") -> Any:
    from prefect.artifacts import create_table_artifact

    if not _in_run():
        return None
    rows = receipt_rows(receipt)
    if note:
        rows.append({"field": "note", "value": note})
    return create_table_artifact(rows, key=KEYS["receipt"], description="Published forecasts: rows, as_of, store")


def backfill_artifact(rows: Iterable[Mapping[str, Any]]) -> Any:
    from prefect.artifacts import create_table_artifact

    if not _in_run():
        return None
    return create_table_artifact(
        [dict(r) for r in rows], key=KEYS["backfill"], description="Backfill: one row per as_of and what happened"
    )


# In-process observers of training progress (the CLI's rich bars): called with (key, label, fraction).
progress_listeners: list = []


class TrainingProgress:
    """A progress artifact (0..100 %) for one model family, updated as training reports epochs.

    Use as `on_progress` callback: called with a mapping or object carrying `step`/`max_steps`
    (or `epoch`/`max_epochs`, or a `fraction` in 0..1). Updates are rate-limited to whole
    percent changes so a fast loop does not flood the API.
    """

    def __init__(self, cell: str, label: str = "") -> None:
        self.cell = cell
        self.key = progress_key(cell)
        self.label = label or f"Training {cell}"
        self._id: Any = None  # the progress artifact's id (a UUID) inside a run
        self._last = 0.0
        self._notify(0.0)
        if _in_run():
            from prefect.artifacts import create_progress_artifact

            self._id = create_progress_artifact(0.0, key=self.key, description=self.label)

    @staticmethod
    def fraction(event: Any) -> float | None:
        get = event.get if isinstance(event, Mapping) else (lambda k, d=None: getattr(event, k, d))
        if (fraction := get("fraction")) is not None:
            return float(fraction)
        for num, den in (("step", "max_steps"), ("global_step", "max_steps"), ("epoch", "max_epochs")):
            n, d = get(num), get(den)
            if n is not None and d:
                return float(n) / float(d)
        return None

    def _notify(self, frac: float) -> None:
        for listener in progress_listeners:
            try:
                listener(self.key, self.label, frac)
            except Exception:  # noqa: BLE001, S110 - a broken display must not fail training
                pass

    def __call__(self, event: Any) -> None:
        frac = self.fraction(event)
        if frac is None:
            return
        pct = round(min(max(frac, 0.0), 1.0) * 100.0, 0)
        if pct <= self._last:
            return
        self._last = pct
        self._notify(pct / 100.0)
        if self._id is None:
            return
        from prefect.artifacts import update_progress_artifact

        try:
            update_progress_artifact(self._id, pct)
        except Exception:  # noqa: BLE001, S110 - progress is a courtesy: never fail training because the UI is away
            pass

    def done(self) -> None:
        """Training finished (early stopping may end it before max_steps): show 100 %."""
        if self._last < 100:
            self._last = 100.0
            self._notify(1.0)
            if self._id is not None:
                from prefect.artifacts import update_progress_artifact

                update_progress_artifact(self._id, 100.0)


# --------------------------------------------------------------------------- hyperparameter search
KEYS["tuning"] = "tuning-trials"
KEYS["tuning_history"] = "tuning-history"


def tuning_markdown(result: Any) -> str:
    """The search's outcome: best settings and score, trial counts, the optimisation history plot."""
    s = result.summary()
    lines = [f"## Hyperparameter search ({s['trials']} trials in {s['seconds']:.0f} s, budget {s['budget_minutes']:g} min)",
             "", f"Scored by **{s['metric']}** on the validation window before the leaderboard's windows.", ""]
    if s["best_value"] is not None:
        lines += [f"Best {s['metric']}: **{s['best_value']:.4g}**", "", markdown_table(
            [{"setting": k, "value": _fmt(v)} for k, v in s["best_params"].items()]), ""]
    lines += [f"Trial states: {', '.join(f'{k} {v}' for k, v in sorted(s['states'].items()))}", ""]
    lines += [f"- {n}" for n in s["notes"]]
    png = result.out_dir / "history.png" if result.out_dir is not None else None
    if png is not None and png.exists():
        lines += ["", plot_markdown(png, "Optimisation history")]
    return "\n".join(lines)


def tuning_artifacts(result: Any) -> tuple[Any, Any]:
    """Two artifacts: the trials as a table, and the outcome with the optimisation history plot."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    if not _in_run():
        return None, None
    table = create_table_artifact(table_rows(result.trials), key=KEYS["tuning"],
                                  description=f"Hyperparameter search: every trial, scored by {result.metric}")
    md = create_markdown_artifact(tuning_markdown(result), key=KEYS["tuning_history"],
                                  description="Hyperparameter search: best settings and optimisation history")
    return table, md
