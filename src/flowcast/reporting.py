"""What a person sees in the Prefect UI: artifacts under stable keys, and the forecast plot.

Rendering (markdown, table rows, the PNG) is plain functions that return values or write a
file, testable without Prefect. The `*_artifact` functions push those renderings to the
Prefect API under the keys in `KEYS`; they are called from flows (inside a run) and return
the artifact id. Outside a run they still work when an API is reachable, and do nothing
(returning None) when no run context exists and `only_in_run=True`.
"""

from __future__ import annotations

import base64
import functools
import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from flowcast.atomic import atomic_file
from flowcast.errors import FlowcastError
from flowcast.figures import _fmt, _plain, _sig, duration_text, score_text
from flowcast.mdtext import md_id, md_text, quoted_id
from flowcast.redaction import redact
from flowcast.timekeys import utc_text
from flowcast.wording import plural

_log = logging.getLogger(__name__)
T = TypeVar("T")

# Stable artifact keys: every run of a flow writes a new version under the same key, so the UI's
# Artifacts page shows the history of each. A key is `<kind>-<dataset>` (`forecast-plot-us-employment`);
# a backfill's runs write under `backfill-<kind>-<dataset>`, so the latest version of a production key
# is never a recomputed past date. Keys: lowercase letters, digits and dashes.
KEYS = {
    "quality": "data-quality",
    "leaderboard": "leaderboard",
    "leaderboard_details": "leaderboard-details",
    "decision": "promotion-decision",
    "plot": "forecast-plot",
    "receipt": "publish-receipt",
    "backfill": "backfill-summary",
    "progress": "training-progress",
}
BACKFILL_PREFIX = "backfill-"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def artifact_key(kind: str, dataset: str, *, backfill: bool = False, suffix: str = "") -> str:
    """`forecast-plot-us-employment`; `backfill-forecast-plot-us-employment` for a backfill's run;
    `suffix` names one thing of a kind (`training-progress-us-employment-gru-backtest`)."""
    base = KEYS.get(kind, kind)
    key = f"{base}-{_slug(dataset)}" + (f"-{_slug(suffix)}" if suffix else "")
    return (BACKFILL_PREFIX + key) if backfill and not base.startswith(BACKFILL_PREFIX) else key


@dataclass(frozen=True)
class Scope:
    """Whose artifacts these are: the dataset, the run's as_of and whether a backfill recomputes it.
    Keys carry the dataset; every description starts with the as_of (the key's history in the UI
    lists descriptions, so it reads as a list of as_ofs), a backfill's says so."""

    dataset: str
    as_of: datetime | None = None
    backfill: bool = False

    def key(self, kind: str, suffix: str = "") -> str:
        return artifact_key(kind, self.dataset, backfill=self.backfill, suffix=suffix)

    def describe(self, text: str) -> str:
        when = "" if self.as_of is None else f"as of {utc_text(self.as_of)}"
        head = ("Backfill " + when if self.backfill else when[:1].upper() + when[1:]).strip()
        return f"{head}: {text}" if head else text


def progress_key(cell: str, dataset: str | None = None, backfill: bool = False) -> str:
    """Key of the training progress artifact of one model ('training-progress-us-employment-lstm';
    'training-progress-lstm' without a dataset)."""
    if dataset is None:
        return f"training-progress-{_slug(cell)}"
    return artifact_key("progress", dataset, backfill=backfill, suffix=cell)


# --------------------------------------------------------------------------- rendering helpers
def table_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """A polars frame as JSON-friendly rows for a table artifact."""
    return [{k: _fmt(v) for k, v in row.items()} for row in frame.to_dicts()]


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows (dicts with the same keys) as a GitHub markdown table, every header and cell shown as written (`md_text`)."""
    if not rows:
        return "_(empty)_"
    cols = list(rows[0].keys())
    head = "| " + " | ".join(md_text(c) for c in cols) + " |\n| " + " | ".join("---" for _ in cols) + " |\n"
    # cells are the data's text (ids, names): escaped, so an id 'A|B' or '*promo*' keeps the table intact
    body = "".join("| " + " | ".join(md_text(_fmt(r.get(c, ""))) for c in cols) + " |\n" for r in rows)
    return head + body


def leaderboard_markdown(board: pl.DataFrame, metric: str, champion: str | None = None) -> str:
    rows = table_rows(board)
    title = f"## Leaderboard (ranked by {metric_header(metric)}, lower is better)\n\n{_meaning(metric)}.\n\n"
    note = f"\nPublished forecasts come from **{champion}**.\n" if champion else ""
    return title + markdown_table(rows) + note


# The leaderboard table shows what a person compares at a glance, in one screen's width: its 18 columns (MAE, RMSE,
# windows, series, fallback share, eligible, weights and notes too) ran past the page's edge, MSIS and everything after
# it behind a horizontal scroll. The rest is the `leaderboard-details-` artifact (`leaderboard_details_markdown`).
BOARD_SCORES = ("smape", "mase", "rmsse")
BOARD_INTERVALS = ("coverage80", "coverage95", "msis")


def leaderboard_rows(board: pl.DataFrame, published: str | None = None,
                     metric: str | None = None, mark: str = "✔ published") -> list[dict[str, Any]]:
    """The leaderboard for a person, one screen wide: rank first, then a `published` mark on the model whose
    forecasts were published, its kind, the score it is ranked by (`metric`: RMSSE on data classed
    intermittent, where it came after sMAPE and MASE, whose order then read as the ranking's), the other
    relative scores (sMAPE, MASE, RMSSE) and the intervals' coverage and MSIS, each to 4 significant digits
    as the log and the CLI print them, each headed by its name as written (ui25: 'mase', 'smape', 'msis' beside
    the details' 'MAE' and realized accuracy's 'MASE'); no Python values (an unranked candidate reads 'not ranked', a missing
    score is empty). MAE, RMSE, the windows, weights and notes are the details' (`leaderboard_details_markdown`).
    `mark`: what the `published` column says of that model (a refused run's winner: `WITHDRAWN_MARK`). An interval
    column no candidate has a value in is left out (`empty_interval_scores`; the description says so)."""
    from flowcast.evaluation.metrics import metric_name

    out = []
    empty = empty_interval_scores(board)
    for row in board.to_dicts():
        rank, model = row.get("rank"), row.get("model")
        cells: dict[str, Any] = {"rank": rank if rank is not None else "not ranked", "model": model,
                                 "published": mark if published is not None and model == published else ""}
        if "kind" in row:
            cells["kind"] = _plain(row["kind"])
        first = [metric] if metric is not None and metric in row else []
        for k in (*first, *(m for m in (*BOARD_SCORES, *BOARD_INTERVALS)
                            if m in row and m not in first and m not in empty)):
            cells[metric_name(k)] = _score_cell(row[k])  # headed as the details and realized accuracy write them
        out.append(cells)
    return out


def empty_interval_scores(board: pl.DataFrame | Sequence[Mapping[str, Any]]) -> list[str]:
    """The interval columns of `board` (`BOARD_INTERVALS`) in which no candidate has a value: a backtest whose windows
    left no candidate 95% intervals to score (one window of a short history) showed coverage95 and MSIS as two empty
    columns on every row, with nothing saying why (ui20). `board`: the leaderboard frame, or its rows (the CLI's
    table: one rule for the artifact and the console, cache47)."""
    rows = board.to_dicts() if isinstance(board, pl.DataFrame) else board
    return [c for c in BOARD_INTERVALS if rows and any(c in r for r in rows) and all(r.get(c) is None for r in rows)]


def empty_intervals_sentence(board: pl.DataFrame, intervals_note: str = "") -> str:
    """What the leaderboard's description says of the columns `empty_interval_scores` leaves out ('' when none);
    where the run's `intervals_note` (`blank_intervals_text`) already says why they are blank, only that they are
    left out (the description said why twice, the second time 'none had 95% intervals ...')."""
    empty = empty_interval_scores(board)
    if not empty:
        return ""
    if intervals_note:
        return f"{'Those columns are' if len(empty) > 1 else 'That column is'} left out of the table."
    from flowcast.evaluation.metrics import metric_name

    said = " or ".join(metric_name(c) for c in empty)
    return (f"No candidate has a {said} score: none had {'80% or 95%' if 'coverage80' in empty else '95%'} intervals "
            "on the backtest windows it was scored on, so "
            f"{'those columns are' if len(empty) > 1 else 'that column is'} left out.")


# the details' columns: (board column, header); windows, series and fallback only where candidates differ in them
_DETAIL_COLUMNS = (("mae", "MAE"), ("rmse", "RMSE"), ("n_windows", "backtest windows"), ("n_series", "series"),
                   ("fallback", "fallback share"))
_SAME_FOR_ALL = ("n_windows", "n_series", "fallback")


def leaderboard_details_markdown(board: pl.DataFrame, metric: str, published: str | None = None,
                                 unit: str | None = None, table_link: str | None = None,
                                 mark: str = "✔ published", intervals_note: str = "") -> str:
    """What the leaderboard table leaves out, on the same rows: MAE and RMSE (in the target's `unit`), the backtest
    windows, series and fallback share where candidates differ in them (else one sentence says them for all), then
    what each candidate is (its weights, its note; why an unranked one is not ranked) as a list, since a table cell
    does not wrap in the UI; and how to read each score. `table_link` links back to the leaderboard table."""
    rows = board.to_dicts()
    lines = [f"## Leaderboard details, ranked by {metric_header(metric)}", ""]
    if table_link:
        lines += [f"The leaderboard table, every run's, latest first: {table_link}.", ""]
    same = {c: rows[0].get(c) for c in _SAME_FOR_ALL
            if rows and c in rows[0] and all(r.get(c) == rows[0].get(c) for r in rows)}
    said = []
    if same.get("n_windows") is not None:
        said.append(f"on {same['n_windows']} backtest window{'s' if same['n_windows'] != 1 else ''}")
    if same.get("n_series") is not None:
        said.append(f"over {same['n_series']:,} series")
    if said:
        lines += [f"Every candidate was scored {' '.join(said)}"
                  + ("; none needed its fallback." if same.get("fallback") == 0 else "."), ""]
    cols = [(c, h) for c, h in _DETAIL_COLUMNS if rows and c in rows[0] and c not in same]
    table = []
    for r in rows:
        cells: dict[str, Any] = {"rank": r.get("rank") if r.get("rank") is not None else "not ranked",
                                 "model": r.get("model"),
                                 "published": mark if published is not None and r.get("model") == published
                                 else ""}
        for c, h in cols:
            cells[h] = score_text(r.get(c))  # a string: `markdown_table` rounds a float cell to 4 decimals
        table.append(cells)
    lines += [markdown_table(table).rstrip("\n"), "",
              f"MAE and RMSE are in the target's units{f' ({md_text(unit)})' if unit else ''}.", ""]
    if intervals_note:  # the table's blank coverage / MSIS cells
        lines += [f"{md_text(intervals_note)}.", ""]
    what = []
    for r in rows:
        parts = [str(p) for p in (r.get("weights"), r.get("note")) if p]
        if r.get("rank") is None:
            parts.insert(0, "not ranked")
        if parts:
            what.append(f"- **{md_text(r.get('model'))}**: " + "; ".join(md_text(p) for p in parts))
    if what:
        lines += ["### What each candidate is", "", *what, ""]
    reading = [*_READING, *([_WEIGHTS_READING] if any(r.get("weights") for r in rows) else [])]
    lines += ["### How to read the scores", "", *(f"- {md_text(t)}" for t in reading), ""]
    return "\n".join(lines)


# ui20: 'comb: 1 x damped' above a comb whose scores were not damped's (MAE 2.01 against 1.762) read as a mistake: the
# weights shown are the ones it would publish, fitted on every window; its backtest used weights fitted before each
_WEIGHTS_READING = ("weights: a combination's learned weights are the ones it would publish, fitted on every backtest "
                    "window; each window's score comes from weights fitted on the windows before it (equal weights on "
                    "the first), so a combination shown as '1 x damped' can score other than damped. Weights set by "
                    "hand (model.blend) are used as set.")


_READING = (
    ("MASE: the mean absolute error divided by the seasonal naive forecast's in-sample one; 1.0 is as accurate as "
    "seasonal naive, below 1.0 better."),
    "RMSSE: the root mean squared error scaled by the naive forecast's in-sample one; 1.0 is as accurate as naive.",
    "sMAPE: the symmetric mean absolute percentage error, in percent, from 0 (exact) to 200.",
    "MAE, RMSE: the mean absolute and root mean squared errors, in the target's units.",
    ("cov80, cov95: the share of actual values inside the 80% and 95% intervals, on backtest windows "
    "their calibration did not see; 0.80 and 0.95 are on target."),
    ("MSIS: the 95% interval's width plus 40 times how far the actual values fell outside it, scaled like MASE; "
    "lower is better."),
    "fallback share: the share of series x windows a candidate could not forecast, forecast by its fallback model.",
)


def _score_cell(v: Any) -> Any:
    """A score's table cell: `_sig`'s 4 significant digits kept whole (through `_plain` alone, which rounds floats to 4
    decimals, a coverage of 1/12 read 0.0833 beside the CLI's and the log's 0.08333), '' for None."""
    x = _sig(v)
    return x if isinstance(x, float) and math.isfinite(x) else _plain(x)


def all_fallback_text(model: str, version: str | None, models: Sequence[Any] | None) -> str | None:
    """Who made the rows where every one is a fallback's (`models`, the rows' models, lacks `model`): 'naive, the
    fallback for every series (theta-v1 forecast none)'; None where `model` made some (or `models` is not known).
    'from theta (theta-v1)' named a model that made none of them (iv44)."""
    made = [str(m) for m in models or []]
    if not made or model in made:
        return None
    fell = " and ".join([", ".join(made[:-1]), made[-1]] if len(made) > 1 else made)
    return (f"{fell}, the fallback{'s' if len(made) > 1 else ''} for every series "
            f"({version if version and version != model else model} forecast none)")


def receipt_parts(receipt: Any) -> tuple[str, str, str]:
    """The receipt's sentence in its three parts: what ('1,776 forecast rows of 148 series of us_employment as of
    2019-09-01'), from whom ('theta (theta-v3)'; where no row is the model's, the fallback: 'naive, the fallback for
    every series (theta-v1 forecast none)') and what it replaced ('the 24 rows this as_of had published (identical
    content)'; empty where nothing)."""
    d = _as_dict(receipt)
    as_of = d.get("as_of")
    when = utc_text(as_of) if isinstance(as_of, str | datetime) else str(as_of)
    model = d.get("model") or "?"
    version = d.get("model_version")
    named = all_fallback_text(model, version, d.get("models")) or model_text(model, version)
    what = (f"{int(d.get('rows') or 0):,} forecast rows of {int(d.get('n_series') or 0):,} series of "
            f"{d.get('dataset')} as of {when}")
    replaced = int(d.get("replaced_rows") or 0)
    same = d.get("previous_content_hash") and d.get("previous_content_hash") == d.get("content_hash")
    replacing = f"the {replaced:,} rows this as_of had published" + (" (identical content)" if same else "")
    return what, named, replacing if replaced else ""


def receipt_sentence(receipt: Any) -> str:
    """The one sentence a person needs: what was published, for which as_of, from which model; where no row is
    the model's (`models`: every series its fallback's), the fallback it was: '... from naive, the fallback for every
    series (theta-v1 forecast none).'"""
    what, named, replacing = receipt_parts(receipt)
    return f"Published {what} from {named}" + (f", replacing {replacing}" if replacing else "") + "."


def run_notes(note: str | Sequence[str]) -> list[str]:
    """A run's note(s) as a list: one string, or several that are each their own row and paragraph (a retrain's
    notes: 'The data was classed intermittent ...' and 'Intermittent counts without a declared y_min ...' ran on
    as one paragraph and one table row)."""
    return [n for n in ([note] if isinstance(note, str) else note) if n]


def under_home(path: Any, home: str | Path | None) -> str | None:
    """`path` relative to `home` ('warehouse/forecasts/...'), or None where it is not a file under it (a URL,
    a PostgreSQL table, another folder)."""
    if home is None or not isinstance(path, str | Path) or "://" in str(path) or not str(path).strip():
        return None
    try:
        return Path(path).absolute().relative_to(Path(home).absolute()).as_posix()
    except ValueError:
        return None


def receipt_table(receipt: Any, note: str | Sequence[str] = "", home: str | Path | None = None) -> list[dict[str, Any]]:
    """The publish receipt as a table: its sentence's parts first, a row each (what, from whom, what it replaced),
    then the details that have a value, then how many notes the description holds (each a paragraph there, not a row
    here).

    No 'flow run' row: it was the bare id of the run whose page shows the table (its artifact page links that run).
    A path under `home` (the flowcast home) is shown relative to it, the home a row of its own: a table cell does
    not wrap in the UI, and '/srv/flowcast/home/warehouse/forecasts/dataset=.../as_of=.../part-....parquet' was
    cut at the page's edge, its file name out of sight."""
    d = _as_dict(receipt)
    labels = {"location": "stored in", "duckdb_path": "DuckDB views", "models": "models (fallbacks included)",
              "quantile_cols": "interval columns", "content_hash": "content hash", "ignored_columns": "ignored columns"}
    # the sentence in rows of its parts: it is the description's first line, and as one cell (which does not wrap in
    # the UI) a fallback's '... from naive, the fallback for every series (theta-v2 forecast none).' was cut at the
    # page's edge (ui46)
    what, named, replacing = receipt_parts(receipt)
    rows = [{"field": "published", "value": what}, {"field": "from", "value": named}]
    if replacing:
        rows.append({"field": "replacing", "value": replacing})
    relative = {k: under_home(d.get(k), home) for k in ("location", "duckdb_path")}
    if any(relative.values()):
        rows.append({"field": "home", "value": str(Path(home).absolute()) if home is not None else ""})
    # a value column null in every row is left out of the publish, and was listed 'ignored columns: y_hat_lo95,
    # y_hat_hi95' with any other column the forecast had: what no interval of this model fills is said plainly (uiB46)
    if empty := _empty_text(d.get("ignored_columns") or []):
        rows.append({"field": "not published", "value": empty})
    for k in ("location", "duckdb_path", "models", "quantile_cols", "ignored_columns", "content_hash"):
        v = d.get(k)
        if k == "ignored_columns":
            from flowcast.store.contract import value_columns

            v = [c for c in v or [] if c not in value_columns(list(v or []))]
        if v in (None, "", [], False):
            continue
        shown = relative.get(k)
        rows.append({"field": labels[k] + (" (under home)" if shown else ""), "value": shown or str(_fmt(v))})
    # the notes are paragraphs of the description above the table (`receipt_description`): a row each repeated
    # them below, cut at the page's edge (a table cell does not wrap in the UI); one row counts them
    if n := len(receipt_notes(receipt, note)):
        rows.append({"field": "notes", "value": f"{n}, above the table" if n > 1 else "1, above the table"})
    return rows


def _empty_text(ignored: Sequence[str]) -> str:
    """What of a receipt's `ignored` columns are value columns left empty (null in every row, not published: a
    level the model has no calibration for): 'no 95% interval (y_hat_lo95, y_hat_hi95 empty)'; '' where none."""
    from flowcast.columns import INTERVAL_LEVELS, interval_cols
    from flowcast.store.contract import value_columns

    empty = value_columns(list(ignored))
    levels = [f"{lv}%" for lv in INTERVAL_LEVELS if set(interval_cols(lv)) <= set(empty)]
    if not empty:
        return ""
    what = f"no {'/'.join(levels)} interval{'s' if len(levels) > 1 else ''}" if levels else "no values"
    return f"{what} ({', '.join(empty)} empty)"


def _as_dict(receipt: Any) -> dict[str, Any]:
    if hasattr(receipt, "to_dict"):
        return dict(receipt.to_dict())
    if hasattr(receipt, "model_dump"):
        return dict(receipt.model_dump())
    if hasattr(receipt, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(receipt)
    if isinstance(receipt, Mapping):
        return dict(receipt)
    return dict(vars(receipt))


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
PLOT_DPI = 100
PLOT_FONT_PT = 11  # at PLOT_DPI: 15 px; tick labels 10 pt (14 px), never under 10 px once shown at 70 %


def plot_forecasts(
    history: pl.DataFrame,
    forecasts: pl.DataFrame,
    path: str | Path,
    *,
    n_series: int = 6,
    context: int = 48,
    title: str = "",
    tz: str | None = None,
    labels: Mapping[str, str] | None = None,
    unit: str | None = None,
    actuals: pl.DataFrame | None = None,
    as_of: datetime | None = None,
    time_label: str = "start",
    ended: Mapping[str, datetime] | None = None,
) -> Path | None:
    """Draw `forecast_figure` into a PNG at `path` (written atomically). Returns the path, or None
    when there is nothing to draw."""
    with missing_glyphs_quiet():
        fig = forecast_figure(history, forecasts, n_series=n_series, context=context, title=title, tz=tz,
                              labels=labels, unit=unit, actuals=actuals, as_of=as_of, time_label=time_label,
                              ended=ended)
    if fig is None:
        return None
    return save_figure(fig, path, dpi=PLOT_DPI)


@contextmanager
def missing_glyphs_quiet() -> Iterator[None]:
    """No 'UserWarning: Glyph 26481 (\\N{CJK UNIFIED IDEOGRAPH-6771}) missing from font(s) DejaVu Sans.' with
    the source line under it, twice per plot and date, among a command's output: a series id or name in a
    script the plot's font does not have (東京) is drawn as boxes in its panel title, which says as much."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
        yield


def save_figure(fig: Any, path: str | Path, dpi: int = 80) -> Path:
    """Write a matplotlib figure as a PNG at `path`, atomically, and close it (also on failure).

    The PNG has an adaptive palette of 256 colours: a chart has a few hundred distinct colours (its
    lines, bands and their anti-aliased edges), so it looks the same (no channel moves by more than
    about 16 of 255) at a quarter of the bytes. Every run embeds its plot in a Prefect artifact that
    the Prefect database keeps: a 6-panel forecast plot went from 222 KB to 58 KB."""
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    path = Path(path)
    try:
        buf = io.BytesIO()
        with missing_glyphs_quiet():
            fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    buf.seek(0)
    with Image.open(buf) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    with atomic_file(path) as fh:
        small.save(fh, format="PNG", optimize=True)
    return path


# fonts that draw scripts DejaVu Sans (matplotlib's own) does not: CJK, Arabic, Hebrew, Indic, Thai; each used
# where installed, glyph by glyph (matplotlib's font fallback)
FALLBACK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR", "Source Han Sans",
                  "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "Arial Unicode MS", "Noto Sans",
                  "Noto Sans Arabic", "Noto Sans Hebrew", "Noto Sans Devanagari", "Noto Sans Thai")


@functools.lru_cache(maxsize=1)
def plot_fonts() -> tuple[list[str], frozenset[int]]:
    """(the font families a plot draws with, DejaVu Sans first then the installed FALLBACK_FONTS; every code
    point one of them has a glyph for)."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    installed = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    families = ["DejaVu Sans", *[n for n in FALLBACK_FONTS if n in installed]]
    covered: set[int] = set()
    for name in families:
        path = installed.get(name) or font_manager.findfont(name, fallback_to_default=True)
        try:
            covered |= set(FT2Font(path).get_charmap())
        except Exception:  # noqa: BLE001, S112 - an unreadable font draws nothing: the next one may
            continue
    return families, frozenset(covered)


def drawable(text: str) -> str:
    """`text` as a plot can show it: where no installed font has a glyph for some character (東京 on a machine
    without CJK fonts: boxes), its escaped form follows it (`東京 (\\u6771\\u4eac)`), so the series can still be
    told apart and looked up."""
    covered = plot_fonts()[1]
    if all(c.isspace() or ord(c) in covered for c in text):
        return text
    return f"{text} ({text.encode('ascii', 'backslashreplace').decode()})"


def panel_title(uid: str, name: str | None, width: int = 52) -> str:
    """`Total Private (CEU0500000001)`: the series' human name, shortened to fit its panel, then its id."""
    if not name or name == uid:
        return drawable(uid)
    room = max(12, width - len(uid) - 3)
    short = name if len(name) <= room else name[: room - 1].rstrip() + "…"
    return drawable(f"{short} ({uid})")


# the time axis of an end-labelled dataset's forecast plot (time_label = "end"): it draws ds, each interval's start
END_LABEL_AXIS = "interval start (the data label each interval by its end)"


def forecast_figure(
    history: pl.DataFrame,
    forecasts: pl.DataFrame,
    *,
    n_series: int = 6,
    context: int = 48,
    title: str = "",
    tz: str | None = None,
    labels: Mapping[str, str] | None = None,
    unit: str | None = None,
    actuals: pl.DataFrame | None = None,
    as_of: datetime | None = None,
    time_label: str = "start",
    ended: Mapping[str, datetime] | None = None,
) -> Any:
    """The matplotlib figure of the last `context` observations and the forecast of up to
    `n_series` series, one panel each (None when there is nothing to draw).

    `history`: unique_id, ds, y (what the run saw); `forecasts`: unique_id, ds, y_hat and the
    interval columns y_hat_lo95/hi95 and lo80/hi80 (drawn as two bands; without them the lowest
    and highest y_hat_q* quantile are shaded). `labels`: unique_id -> the series' human name (the
    panel's title; the id follows it). `unit`: the y axis label. `actuals`: unique_id, ds, y
    observed after as_of (a past as_of: what really happened over the forecast's horizon), drawn
    over the forecast. `as_of`: a dashed line where the run's knowledge ends. `tz`: sub-daily ds
    are UTC instants; the time axis is labelled in this zone's local time (the points stay in
    instant order, so the hour repeated when daylight saving ends is not folded onto itself).
    `time_label`: the source's; "end" (hour-ending data) labels each time axis `END_LABEL_AXIS`: the points stand at
    ds, the intervals' starts, one step before the labels the data write.
    `ended`: unique_id -> last observation of the series that ended more than a horizon before the latest one and
    are forecast anyway (`validation.ended_series = "forecast"`), the longest ended first: such a panel's title says
    it ended and when (in `ENDED_COLOR`), a dotted line of that colour marks its last observation (`ENDED_LABEL` in
    the legend), and when the even spread of panels (two or more) holds none of them, the last panel shows the first
    of them."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from flowcast.columns import interval_cols

    if n_series <= 0 or forecasts.is_empty():
        return None
    ids = sorted(forecasts["unique_id"].unique().to_list())
    every = set(ids)
    gone = {str(u): d for u, d in (ended or {}).items() if u in every}
    if len(ids) > n_series:  # an even spread over the sorted ids: reproducible, not random
        stride = len(ids) / n_series
        ids = [ids[int(i * stride)] for i in range(n_series)]
        if gone and n_series >= 2 and not gone.keys() & set(ids):  # an ended series forecast anyway is shown, marked
            # (the longest ended, in the last panel; a one-panel plot keeps its live series)
            ids = sorted([*ids[:-1], next(iter(gone))])
    qcols = sorted(c for c in forecasts.columns if c.startswith("y_hat_q"))
    # interval columns that hold any value (a model without interval calibration leaves them null)
    bands = [(lv, *interval_cols(lv)) for lv in (95, 80) if set(interval_cols(lv)) <= set(forecasts.columns)
             and forecasts[interval_cols(lv)[0]].null_count() < forecasts.height]
    ncols = 2 if len(ids) > 1 else 1
    nrows = math.ceil(len(ids) / ncols)
    # about 1120 px wide: the UI shows it near its own size, so 10 pt labels stay >= 12 px on screen
    plt.rcParams["font.family"] = plot_fonts()[0]  # DejaVu Sans, then the installed fonts of other scripts
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.6 * ncols, 3.3 * nrows + (0.6 if title else 0)), squeeze=False)
    for ax, uid in zip(axes.flat, ids):
        h = history.filter(pl.col("unique_id") == uid).sort("ds").tail(context)
        f = forecasts.filter(pl.col("unique_id") == uid).sort("ds")
        ax.plot(h["ds"].to_list(), h["y"].to_list(), color="0.25", lw=1.4, label="observed")
        for lv, lo, hi in bands:
            ax.fill_between(f["ds"].to_list(), *(f[c].cast(pl.Float64).fill_null(math.nan).to_list() for c in (lo, hi)),
                            color="C0", alpha=0.15 if lv == 95 else 0.3, lw=0, label=f"{lv}% interval")
        if not bands and len(qcols) >= 2:
            ax.fill_between(f["ds"].to_list(), f[qcols[0]].to_list(), f[qcols[-1]].to_list(), color="C0", alpha=0.2,
                            lw=0, label=f"{qcols[0][5:]}..{qcols[-1][5:]} quantiles")
        ax.plot(f["ds"].to_list(), f["y_hat"].to_list(), color="C0", lw=2, label="forecast")
        if actuals is not None and actuals.height:
            a = actuals.filter(pl.col("unique_id") == uid).sort("ds")
            if f.height:
                a = a.filter(pl.col("ds") <= f["ds"].max())
            if a.height:
                ax.plot(a["ds"].to_list(), a["y"].to_list(), color="C3", lw=1.4, marker="o", ms=3,
                        label="actual (after as_of)")
        if as_of is not None:
            as_of_mark(ax, as_of)
        stopped = gone.get(str(uid))
        if stopped is not None:  # forecast from a last observation long before the others'
            ax.axvline(stopped, color=ENDED_COLOR, lw=1.6, ls=":", label=ENDED_LABEL)
        head = panel_title(str(uid), (labels or {}).get(str(uid)))
        # an ended series' when on a line of its own: on the name's line it ran past the panel and the figure's
        # right edge, cut to 'Retail Trade:... (CEU4245210001) · ended (last data 2017-12-0' (ui29)
        ax.set_title(head if stopped is None else f"{head}\nended {ended_when(stopped, tz)}", fontsize=PLOT_FONT_PT,
                     loc="left", color="black" if stopped is None else ENDED_COLOR)
        ax.tick_params(labelsize=PLOT_FONT_PT - 1)
        if unit:
            ax.set_ylabel(unit, fontsize=PLOT_FONT_PT - 1)
        ax.grid(True, color="0.9", lw=0.8)
        time_axis(ax, tz)
        if time_label == "end":
            # on the left: the concise formatter writes its offset ('2024-Mar-30') under the axis's right end
            ax.set_xlabel(END_LABEL_AXIS, fontsize=PLOT_FONT_PT - 1, loc="left")
    for ax in list(axes.flat)[len(ids):]:
        ax.axis("off")
    # every mark drawn in any panel, once (an ended series' mark is in its panel only)
    named: dict[str, Any] = {}
    for ax in list(axes.flat)[:len(ids)]:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            named.setdefault(name, handle)
    handles, names = list(named.values()), list(named)
    below = figure_title(fig, title) if title else 0.0
    top = figure_legend(fig, handles, names, 3.3 * nrows + 0.6 + below, below)
    fig.tight_layout(rect=(0, 0, 1, 1 - top))
    return fig


# how far past a panel's drawn points (a share of their span) its as_of line may stand before it is written instead
AS_OF_ROOM = 0.25


def as_of_mark(ax: Any, as_of: datetime) -> None:
    """A panel's mark of where the run's knowledge ends: a dashed line, `as_of` in the legend (named: an unexplained
    line, ui19). An as_of far past what the panel draws (a scheduled run on data that stopped years before: the
    forecasts of 2019 squeezed into a third of an axis stretched to 2026, newuser50b) is written at the panel's right
    edge instead, `as_of 2026-12-07 10:30 UTC →`, the axis kept to the data."""
    from matplotlib.dates import date2num

    lo, hi = ax.dataLim.intervalx
    if date2num(as_of) <= hi + AS_OF_ROOM * max(hi - lo, 1.0):
        ax.axvline(as_of, color="0.5", lw=1, ls="--", label="as_of")
        return
    ax.annotate(f"as_of {utc_text(as_of)} →", xy=(0.99, 0.02), xycoords="axes fraction", ha="right",
                va="bottom", fontsize=PLOT_FONT_PT - 1, color="0.35")


def figure_title(fig: Any, title: str) -> float:
    """The figure's title at its top left, on as many lines as it needs to stay inside the figure, broken at spaces:
    on one line a one-series plot's (5.6 inches wide) ran past its right edge and was cut in the UI ('tiny: forecasts
    of gru (gru-v1) as of 2019-06-01 06:00 UTC (times in Ameri', opstrial52). The figure grows by its extra lines;
    returns their height in inches (0 for a title on one line)."""
    text = fig.suptitle(drawable(title), fontsize=PLOT_FONT_PT + 2, x=0.01, y=0.995, ha="left", va="top")
    renderer = fig.canvas.get_renderer()
    room = 0.98 * fig.bbox.width  # from x=0.01 to 0.01 inside the right edge

    def fits(line: str) -> bool:
        text.set_text(line)
        return bool(text.get_window_extent(renderer).width <= room)

    lines: list[str] = []
    for word in drawable(title).split(" "):
        if lines and fits(f"{lines[-1]} {word}"):
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    one = text.get_window_extent(renderer).height
    text.set_text("\n".join(lines))
    extra = (text.get_window_extent(renderer).height - one) / fig.dpi  # pixels at the figure's dpi, in inches
    fig.set_figheight(fig.get_figheight() + extra)
    return float(extra)


def figure_legend(fig: Any, handles: Sequence[Any], names: Sequence[str], height: float, below: float = 0.0) -> float:
    """The figure's legend on one row under the title, or on two where one is wider than the figure (an ended
    series' mark made 7 entries, and 'ended series: last observation' ran past the figure's right edge, cut in the
    UI; ui46), the figure then 0.3 inch taller. `height`: the layout's height in inches (panels, title, one legend
    row and `below`); `below`: the inches the title takes beyond its one line (`figure_title`). Returns the share of
    the figure's height above the panels."""
    def place(cols: int, extra: float) -> Any:
        return fig.legend(handles, names, loc="upper left", bbox_to_anchor=(0.0, 1 - (0.3 + below) / (height + extra)),
                          ncols=cols, fontsize=PLOT_FONT_PT - 1, frameon=False)

    legend = place(max(len(names), 1), 0.0)
    if len(names) < 2 or legend.get_window_extent(fig.canvas.get_renderer()).width <= fig.bbox.width:
        return (0.6 + below) / height
    legend.remove()
    extra = 0.3  # inches: the legend's second row
    fig.set_figheight(fig.get_figheight() + extra)
    place(math.ceil(len(names) / 2), extra)
    return (0.6 + below + extra) / (height + extra)


# an ended series forecast anyway (`forecast_figure`'s `ended`): its panel title and the line at its last observation
ENDED_COLOR = "C1"
ENDED_LABEL = "ended series: last observation"


def ended_when(last: datetime, tz: str | None = None) -> str:
    """When an ended series last had data, as its panel title says it: 'last data 2020-01-01'; a time of day with its
    wall time in the source's `tz` too (`freshness.when_text`), the zone the panel's time axis is labelled in."""
    from flowcast.data.freshness import when_text

    freq = "1h" if (last.hour, last.minute) != (0, 0) else "1d"
    return f"(last data {when_text(last, freq, tz)})"


def time_axis(ax: Any, tz: str | None = None) -> None:
    """Few, short time labels on a panel about 5 inches wide: matplotlib's default named every tick in
    full, and a monthly panel's nine 'YYYY-MM' ran together ('2015-072016-012016-07...'); the concise
    formatter writes a year once ('2016', 'Jul', '2017'). Sub-daily ds are UTC instants labelled in
    the source's `tz` local time (UTC when undeclared)."""
    from zoneinfo import ZoneInfo

    import matplotlib.dates as mdates

    zone = ZoneInfo(tz or "UTC")
    locator = mdates.AutoDateLocator(tz=zone, minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))


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


QUALITY_REFUSED = "too many rows quarantined"


def quality_markdown(report: Any, refused: str = "") -> str:
    """The data quality report as markdown; `refused`: the error a run stopped with at its quarantine threshold
    (`enforce_thresholds`), said right under the heading, whole (its cause and its fix): the report of a refused run
    read as any other run's, the refusal said nowhere on it (ui31)."""
    md = report.to_markdown() if hasattr(report, "to_markdown") else str(report)
    if not refused:
        return md
    head, _, rest = md.partition("\n")
    lead = f"**Refused: {QUALITY_REFUSED}; this run stopped here, nothing was trained or published.**"
    return "\n".join([head, "", lead, "", md_text(refused), rest])


def quality_description(refused: str = "") -> str:
    return (f"data quality: refused, {QUALITY_REFUSED} (nothing trained or published)" if refused
            else "data quality: rows in, valid, quarantined and why")


def quality_artifact(report: Any, scope: Scope, refused: str = "") -> Any:
    """The data quality report (rows in / valid / quarantined, failed checks, excluded series) as markdown;
    `refused`: see `quality_markdown`."""
    from prefect.artifacts import create_markdown_artifact

    if not _in_run():
        return None
    return create_markdown_artifact(quality_markdown(report, refused), key=scope.key("quality"),
                                    description=scope.describe(quality_description(refused)))


def blank_intervals_text(candidates: Sequence[Any]) -> str:
    """Why the leaderboard's coverage/MSIS cells of `candidates` (`CandidateResult`s) are blank, '' when none is:
    their `intervals_note` once when every candidate with one says the same, else each with the models it is of
    (a blank cell said nothing: one backtest window, or too few calibration points)."""
    by_note: dict[str, list[str]] = {}
    for c in candidates:
        if getattr(c, "intervals_note", ""):
            by_note.setdefault(c.intervals_note, []).append(str(c.name))
    # the candidates with a blank cell (the production model, scored on its own registered intervals, may have none)
    blank = [c for c in candidates if any(v is None for v in (getattr(c, "intervals", None) or {None: None}).values())]
    if len(by_note) == 1:
        (note, models), = by_note.items()
        return note if len(models) == len(blank) else f"{', '.join(models)}: {note}"
    return "; ".join(f"{', '.join(models)}: {note}" for note, models in by_note.items())


def refusal_markdown(dataset: str, error: str, files: Sequence[str] = ()) -> str:
    """The data quality report of a source refused before it had rows to report on (no rows, an unreadable file,
    every row after as_of): what was read and the error the run failed with."""
    return "\n".join([
        f"## Data quality: {md_text(dataset)}", "",
        "**Refused: the source left this run nothing to run on; nothing was trained or published.**", "",
        md_text(error), "",  # (a FlowcastError's message: redacted as it was made)
        # the only guard for the files: an artifact goes to Prefect as written
        f"files: {', '.join(md_text(redact(f)) for f in files) or '-'}",
    ])


def refusal_artifact(dataset: str, error: str, scope: Scope, files: Sequence[str] = ()) -> Any:
    """`refusal_markdown` under the data quality key of `scope` (`data-quality-<dataset>`), where a run that read
    rows puts its report: a scheduled run that failed on its file leaves the same record in the UI."""
    from prefect.artifacts import create_markdown_artifact

    if not _in_run():
        return None
    return create_markdown_artifact(refusal_markdown(dataset, error, files), key=scope.key("quality"),
                                    description=scope.describe("data quality: the source was refused"))


def leaderboard_artifact(board: pl.DataFrame, metric: str, scope: Scope, champion: str | None = None,
                         version: str | None = None, unit: str | None = None, intervals_note: str = "",
                         landed: bool = True, published_by: str | None = None) -> Any:
    """The leaderboard table (`leaderboard-<dataset>`, one screen wide) and its details (`leaderboard-details-`:
    MAE, RMSE, windows, weights, notes, how to read the scores), each linking to the other. `intervals_note`: why
    coverage or MSIS cells are blank (`blank_intervals_text`), in both. `landed` False: written before the publish,
    the winner marked `TO_PUBLISH_MARK` (the run's publish then writes a version marking it `✔ published`, or the
    follow-up saying it was not: a run killed before its publish left `✔ published` as the key's newest).
    `published_by` (the run that published, '' where unknown): the as_of holds these very forecasts, published by
    another run, and this run published nothing: the winner is marked `ALREADY_PUBLISHED_MARK` and both artifacts
    say so, as the decision does (ops53: its decision said 'This run published nothing', its board '✔ published')."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from flowcast.evaluation.decision import published_nothing_text

    if not _in_run():
        return None
    table_key = scope.key("leaderboard")
    mark = ALREADY_PUBLISHED_MARK if published_by is not None else PUBLISHED_MARK if landed else TO_PUBLISH_MARK
    head = f"## {published_nothing_text(published_by)}\n\n" if published_by is not None else ""
    details = create_markdown_artifact(
        head + leaderboard_details_markdown(board, metric, champion, unit, table_link=key_link(table_key),
                                            intervals_note=intervals_note, mark=mark),
        key=scope.key("leaderboard_details"),
        description=scope.describe("leaderboard details: MAE, RMSE, weights, notes, how to read the scores"))
    text = leaderboard_description(metric, champion, version, intervals_note, landed=landed,
                                   published_by=published_by)
    if empty := empty_intervals_sentence(board, intervals_note):
        text += f"\n\n{empty}"
    if details is not None:
        text += f"\n\nMAE, RMSE, weights, notes and how to read the scores: {artifact_link(details)}"
    return create_table_artifact(leaderboard_rows(board, champion, metric, mark=mark), key=table_key,
                                 description=scope.describe(text))


def leaderboard_description(metric: str, champion: str | None = None, version: str | None = None,
                            intervals_note: str = "", *, landed: bool = True, published_by: str | None = None) -> str:
    """The leaderboard table's description: the metric it is ranked by, named with its baseline ('snaive MASE'),
    and the published model with its version, as the receipt names it ('from croston (croston-v1)': the production
    model's row is named `production`, and 'come from production' said nothing of which model that was); then, a
    paragraph of its own, what 1.0 of the metric means (it came between the two, the published model at the end
    of five lines); and why coverage or MSIS cells are blank (`intervals_note`), where they are. `published_by`:
    another run published these very forecasts (`leaderboard_artifact`): said first, the winner's as what it holds."""
    from flowcast.evaluation.decision import published_nothing_text

    desc = f"backtest leaderboard, ranked by {metric_header(metric)} (lower is better)"
    if champion and published_by is not None:
        desc = (f"{published_nothing_text(published_by)}, with the forecasts of {model_text(champion, version)}, this "
                f"run's winner. This run's {desc}")
    elif champion and landed:
        desc += f"; the published forecasts come from {model_text(champion, version)}"
    elif champion:  # written before the publish (`landed` False): the key's next version says what came of it
        desc += (f"; this run is to publish the forecasts of {model_text(champion, version)} (not published yet: the "
                 "next version of this key says what came of it)")
    blank = f"\n\n{md_text(intervals_note)}." if intervals_note else ""
    return f"{desc}.\n\n{_meaning(metric)}.{blank}"


def model_text(model: str, version: str | None = None) -> str:
    """A model as the receipt names it: 'damped (damped-v1)', 'naive' where it has no other version name."""
    return f"{model} ({version})" if version and version != model else model


def forecast_plot_title(dataset: str, model: str, version: str | None, as_of: datetime,
                        local_tz: str | None = None, models: Sequence[Any] | None = None) -> str:
    """The forecast plot's title: 'us_employment: forecasts of damped (damped-v1) as of 2019-09-01', at a clock time
    'as of 2019-09-01 06:00 UTC', and with its wall time where the plot's times are in `local_tz`
    (`timekeys.utc_text`; it read
    'forecasts of damped damped-v1', and 'of naive  as of' with two spaces where there was no version); where every
    row is a fallback's (`models`, the rows' models), the fallback, as the receipt names it (`all_fallback_text`: it
    named the production model, which made no row)."""
    named = all_fallback_text(model, version, models) or model_text(model, version)
    return (f"{dataset}: forecasts of {named} as of {utc_text(as_of, local_tz)}"
            + (f" (times in {local_tz})" if local_tz else ""))


def _ui_url(path: str) -> str:
    """The Prefect UI's address of `path`: absolute where the UI's address is known, else the UI's own path."""
    try:
        from prefect.settings import get_current_settings

        base = get_current_settings().ui_url
    except Exception:  # noqa: BLE001 - a link is a courtesy
        base = None
    return f"{str(base).rstrip('/')}/{path}" if base else f"/{path}"


def key_link(key: str) -> str:
    """A markdown link to an artifact key's page (its latest version and its history)."""
    return f"[{key}]({_ui_url(f'artifacts/key/{key}')})"


def artifact_link(artifact_id: Any, text: str = "leaderboard details") -> str:
    """A markdown link to one artifact's page."""
    return f"[{text}]({_ui_url(f'artifacts/artifact/{artifact_id}')})"


def metric_header(metric: str) -> str:
    """What a leaderboard is ranked by, as its artifacts and the run log say it: 'snaive MASE', 'naive RMSSE', 'sMAPE'."""
    from flowcast.evaluation.metrics import metric_name

    return {"mase": "snaive MASE", "rmsse": "naive RMSSE"}.get(metric, metric_name(metric))


def _meaning(metric: str) -> str:
    from flowcast.evaluation.metrics import metric_meaning

    return metric_meaning(metric)


def decision_artifact(markdown: str, scope: Scope, *, landed: bool = True, published_by: str | None = None) -> Any:
    """The run's decision under the dataset's `promotion-decision-` key. `landed` False: written before the publish
    (`decision_markdown(landed=False)`, 'To publish'); the publish that lands writes it again, 'Published'.
    `published_by`: another run published these very forecasts; this one published nothing (its description said
    'what was published and why' of it, ops53)."""
    from prefect.artifacts import create_markdown_artifact

    from flowcast.evaluation.decision import published_nothing_text

    if not _in_run():
        return None
    said = (f"{published_nothing_text(published_by)}; what it decided and why" if published_by is not None else
            "what was published and why" if landed else "what this run is to publish and why (not published yet)")
    return create_markdown_artifact(markdown, key=scope.key("decision"), description=scope.describe(said))


def plot_bands_text(forecasts: pl.DataFrame) -> str:
    """The forecast plot caption's words for its interval bands: 'with 80% and 95% intervals', 'without intervals'.
    A level its calibration had too few points for is not drawn (the caption said 80% and 95% anyway); the series
    without a level drawn for others are counted and named (probe45: a series with no typical change to scale its
    widths by has none beside a constant series' zero-width interval, and the caption said 'with 80% intervals'); a
    level only a constant series has (too few calibration points for the others: its zero width) is named as the one
    they lack ('no 95% interval for 2 of 3 series', cachedir46).
    The caption is markdown (the plot artifact's heading): the ids are escaped (`md_id`), an id `a_b*` read as
    italics and broke the artifact (wordsB45)."""
    levels = [lv for lv in (80, 95) if f"y_hat_lo{lv}" in forecasts.columns
              and forecasts[f"y_hat_lo{lv}"].null_count() < forecasts.height]
    if not levels:
        return "without intervals"
    n = forecasts["unique_id"].n_unique()
    said = []
    for lacking, bare in series_lacking(forecasts.sort("unique_id"), [str(lv) for lv in levels]):
        # a level with too few calibration points is a constant series' zero width alone: the others lack it only
        none = "none" if len(lacking) == len(levels) else f"no {' or '.join(f'{lv}%' for lv in lacking)} interval"
        named = f"{'e.g. ' if len(bare) > 3 else ''}{', '.join(md_id(u) for u in bare[:3])}"
        said.append(f"{none} for {len(bare):,} of {n:,} series: {named}")
    some = f" ({'; '.join(said)}; the run's notes say why)" if said else ""
    return f"with {' and '.join(f'{lv}%' for lv in levels)} intervals{some}"


def series_lacking(forecasts: pl.DataFrame, levels: Sequence[str]) -> list[tuple[list[str], list[Any]]]:
    """The series without a bound of `levels` ('80', '95'), grouped by the levels they lack: `[(['80', '95'],
    ['new']), (['95'], ['newer'])]`, those lacking more first, the ids in the order of `forecasts`, [] where every
    series has them. A series with no typical change to scale its widths by lacks every level; one beside a level
    its calibration had too few points for lacks that one only (a constant series keeps it): said of all the series
    together, 'none for 2 of 3 series' was untrue of the one that had its 80% interval (wordsB46)."""
    if not levels:
        return []
    lacks = (forecasts.group_by("unique_id", maintain_order=True)
             .agg(pl.col(f"y_hat_lo{lv}").is_null().any().alias(lv) for lv in levels))
    groups: dict[tuple[str, ...], list[Any]] = {}
    for row in lacks.iter_rows(named=True):
        lacked = tuple(lv for lv in levels if row[lv])
        if lacked:
            groups.setdefault(lacked, []).append(row["unique_id"])
    return [(list(lacked), ids) for lacked, ids in sorted(groups.items(), key=lambda kv: -len(kv[0]))]


def forecast_plot_caption(model: str, n_plot: int, n_series: int, forecasts: pl.DataFrame, ended: Sequence[Any],
                          notes: str = "") -> str:
    """The forecast plot's caption: 'Forecasts of 8 of 40 series from theta with 80% and 95% intervals', `notes`
    (what else it shows, said by the caller), and the `ended` series (forecast from their own last observation, long
    before the others'), counted and the first three named. `model`: who made the rows as the receipt says it (where
    every row is a fallback's, `all_fallback_text`: 'naive, the fallback for every series (theta-v1 forecast none)').
    It is markdown (the plot artifact's heading): the model escaped (`md_text`) and the ids too (`md_id`), as
    `plot_bands_text` escapes its ids; an id `a_b*` read as italics."""
    stopped = (f"; {len(ended):,} ended series forecast from {'its' if len(ended) == 1 else 'their'} own last "
               f"observation, long before the others' (marked){', e.g. ' if len(ended) > 3 else ': '}"
               f"{', '.join(md_text(quoted_id(u)) for u in list(ended)[:3])}" if ended else "")
    return (f"Forecasts of {n_plot} of {n_series} series from {md_text(model)} {plot_bands_text(forecasts)}{notes}"
            f"{stopped}")


def plot_artifact(png: Path | None, caption: str, scope: Scope, publish: tuple[str, str] | None = None) -> Any:
    """The forecast plot under `scope`'s plot key; `publish`: (the run that published, the content hash) of the
    forecasts it draws, said under it (`publish_line`), by which a run completing that publish finds it (`plot_left`)."""
    from prefect.artifacts import create_markdown_artifact

    if not _in_run():
        return None
    md = plot_markdown(png, caption) if png is not None else f"## {caption}\n\nNothing to draw (no forecasts).\n"
    if publish is not None:
        md += f"\n{publish_line(*publish)}\n"
    return create_markdown_artifact(md, key=scope.key("plot"), description=scope.describe(caption))


def publish_line(run_id: str, content_hash: str) -> str:
    """The plot artifact's last line: 'Published by flow run [R](link); content hash `H`, as in its receipt.'"""
    return f"Published by flow run {run_link(run_id)}; content hash `{content_hash}`, as in its receipt."


def receipt_artifact(receipt: Any, scope: Scope, note: str | Sequence[str] = "", home: str | Path | None = None) -> Any:
    from prefect.artifacts import create_table_artifact

    if not _in_run():
        return None
    return create_table_artifact(receipt_table(receipt, note, home=home), key=scope.key("receipt"),
                                 description=receipt_description(receipt, scope, note))


def sentences(*parts: str) -> str:
    """`parts` joined into one text, each ended as a sentence ('.' added where it has no end mark): a run's note
    joins sentences made apart (another run published the date; what this run withdrew), the first of which may not
    end with a period, and the UI showed 'so this run publishes nothing Its promotion of the winner was withdrawn'
    in the run's state message and its artifacts. Empty parts are left out."""
    return " ".join(p if p.endswith((".", "!", "?")) else f"{p}." for p in (q.strip() for q in parts) if p)


_RUN_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def said_text(sentence: str) -> str:
    """A run's note as markdown, each run id in it a link to that run's page, each of its sentences ended."""
    return sentences(_RUN_ID.sub(lambda m: run_link(m.group(0)), md_text(sentence)))


def run_link(run_id: str) -> str:
    """A markdown link to a flow run's page: absolute where the Prefect UI's address is known, else the UI's path."""
    try:
        from prefect.utilities.urls import url_for

        url = url_for("flow-run", obj_id=run_id)
    except Exception:  # noqa: BLE001 - a link is a courtesy: the id is in the text either way
        url = None
    return f"[{run_id}]({url or f'/runs/flow-run/{run_id}'})"


def skipped_markdown(sentence: str, *, again: bool = False) -> str:
    """What a run that published nothing shows (a schedule slot another run retrained or published): its
    sentence, each run it names a link to that run's page. It had no artifact: its page showed a Completed run
    with a green `publish` task and an empty Artifacts tab, the run that did publish named in a log line only,
    as an id to copy. `again`: the run that did it is this flow run, an earlier attempt (a Crashed run retried),
    whose receipt is on the same page."""
    text = said_text(sentence)
    head = "Nothing published again: an earlier attempt of this run did it" if again else "Nothing published by this run"
    return f"## {head}\n\n{text}\n"


def withdrawn_decision_markdown(sentence: str, model: str, version: str | None = None, *,
                                withdrawn: bool = True) -> str:
    """The follow-up decision of a retrain refused under the key's lock (another run published its as_of while it
    computed): its decision artifact, written before its publish, named a winner whose promotion (or champion) was
    then withdrawn, and the newest `promotion-decision-` said so to anyone reading it. This one says what came of it:
    nothing of this run published, the winner withdrawn, the run that published a link to its page. `withdrawn`
    False: nothing of this run was withdrawn (it kept the production model, promoted nothing, or the other run
    published with this run's very model): it is not headed 'Withdrawn' nor says a promotion was."""
    text = said_text(sentence)
    chose = f"This run's decision (the previous version of this key) chose {md_text(model_text(model, version))}"
    if not withdrawn:
        return (f"## Not published by this run: another run published this as_of first\n\n{text}\n\n"
                f"{chose}: this run's forecasts of it were not published; nothing of this run was withdrawn.\n")
    return (f"## Withdrawn: nothing published by this run\n\n{text}\n\n"
            f"{chose}: its forecasts were not published, and any promotion of it by this run is withdrawn as said "
            "above.\n")


def withdrawn_decision_artifact(sentence: str, model: str, version: str | None, scope: Scope, *,
                                withdrawn: bool = True) -> Any:
    """`withdrawn_decision_markdown` under the dataset's decision key, so that its newest version tells the truth."""
    from prefect.artifacts import create_markdown_artifact

    if not _in_run():
        return None
    what = "decision withdrawn" if withdrawn else "not published"
    return create_markdown_artifact(withdrawn_decision_markdown(sentence, model, version, withdrawn=withdrawn),
                                    key=scope.key("decision"),
                                    description=scope.describe(f"{what}: another run published this as_of"))


def newest_artifact(key: str) -> Any:
    """The newest artifact under `key` as the Prefect API holds it (its `data`, `flow_run_id`), None when there is none
    or no API answers (outside a run: None). Posts the filter itself: `read_artifacts` sends null for the filters it is
    not given, which the server rejects."""
    if not _in_run():
        return None
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            found = _artifacts_page(client, key, limit=1)
    except Exception:  # noqa: BLE001 - a follow-up is a courtesy: the run goes on without it
        return None
    return found[0] if found else None


def _artifacts_page(client: Any, key: str, *, limit: int, offset: int = 0) -> list[Any]:
    """A page of the artifacts under `key`, newest first, as the Prefect API holds them (`newest_artifact`: the
    filter posted as a body of its own)."""
    from prefect.client.schemas.objects import Artifact

    body = {"artifacts": {"key": {"any_": [key]}}, "limit": limit, "offset": offset, "sort": "CREATED_DESC"}
    return Artifact.model_validate_list(client.request("POST", "/artifacts/filter", json=body).json())


API_PAGE = 200  # the Prefect API's default page (PREFECT_API_DEFAULT_LIMIT): a read without a limit gets that many


def api_pages(read: Callable[[int, int], Sequence[T]], page: int = API_PAGE) -> Iterator[T]:
    """Every item of a read of the Prefect API made page by page, in its order: `read(limit, offset)` is called with
    `page` and 0, `page`, 2 * `page`, ... until a page comes back shorter than `page` (a read without a limit gets the
    API's first page only: a cancelled backfill of 230 dates left 30 to run later, rev50b). Pages are read as they are
    iterated: a search that stops at its find reads no more."""
    offset = 0
    while True:
        got = read(page, offset)
        yield from got
        if len(got) < page:
            return
        offset += page


class ArtifactsUnread(FlowcastError):
    """The Prefect API could not be read for the artifacts under a key (`artifact_left`): whether one was left is
    not known."""


def artifact_left(key: str, run_id: str, content_hash: str) -> str | None:
    """The flow run that left an artifact under `key` of the publish of `content_hash` by run `run_id`: one whose text
    (a receipt's table, a plot's markdown: `plot_artifact`'s `publish`) holds that content hash, left by `run_id` itself
    or by a run that completed that publish (its text or description names `run_id`). None where there is none or
    outside a run; `ArtifactsUnread` where the API cannot be read. Read with a client of its own (from the settings), not
    the run's: Prefect's client retries a refused connection once it has connected (for about a minute,
    `TrainingProgress._update`), and this is a check."""
    if not _in_run() or not content_hash:
        return None
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    try:
        # httpx settings of its own ({}): get_client otherwise hands out the run's client
        with get_client(sync_client=True, httpx_settings={}) as client:
            for a in api_pages(lambda limit, offset: _artifacts_page(client, key, limit=limit, offset=offset)):
                by = str(a.flow_run_id) if a.flow_run_id else ""
                text = str(a.data or "")
                if content_hash in text and (by == run_id or run_id in text or run_id in (a.description or "")):
                    return by or run_id
    except Exception as exc:  # any failure to read (refused, timed out, an error status): said, never taken for none
        raise ArtifactsUnread(f"the artifacts under {key!r} could not be read from the Prefect API at "
                              f"{redact(str(PREFECT_API_URL.value()))} ({type(exc).__name__}: "
                              f"{str(exc)[:200] or 'no message'})") from exc
    return None


def receipt_left(scope: Scope, run_id: str, content_hash: str) -> str | None:
    """The flow run that left the receipt artifact of the publish of `content_hash` by run `run_id`, under `scope`'s
    receipt key (`artifact_left`): `run_id` itself or a run that completed that publish (its note names `run_id`). A
    run killed after that receipt, before its record said so, had a second receipt left by the run that completed its
    publish (faults50). `ArtifactsUnread` where the API cannot be read: the caller says so, and leaves one."""
    return artifact_left(scope.key("receipt"), run_id, content_hash)


def plot_left(scope: Scope, run_id: str, content_hash: str) -> str | None:
    """The flow run that left the forecast plot artifact of the publish of `content_hash` by run `run_id`, under
    `scope`'s plot key (`artifact_left`; its markdown names the publish, `plot_artifact`'s `publish`). A run killed
    between its plot artifact and its receipt had a second plot artifact of the same as_of left by the run that
    completed its publish (faults51)."""
    return artifact_left(scope.key("plot"), run_id, content_hash)


# `withdrawn_decision_markdown`'s headings, and `failed_decision_markdown`'s
FOLLOW_UP_HEADS = ("## Withdrawn: ", "## Not published by this run", "## Not published: this run failed")


def failed_decision_markdown(error: str, model: str, version: str | None, production: str | None,
                             dataset: str) -> str:
    """The follow-up decision of a retrain that failed after its decision was written ('To publish', which says the
    key's next version tells what came of it) and before its forecasts landed (a full disk, a store error, production
    moved under it): nothing of it was published. Without it the key's newest said the run 'publishes them next'
    for good. `production`: the dataset's production model now (its promotion withdrawn, or left as it was)."""
    return (f"## Not published: this run failed\n\n{md_text(error)}\n\nThis run's decision (the previous version of "
            f"this key) chose {md_text(model_text(model, version))}: its forecasts were not published. Production of "
            f"{md_text(dataset)} is {md_text(production or 'empty')}.\n")


def failed_decision_artifact(error: str, model: str, version: str | None, production: str | None,
                             scope: Scope) -> Any:
    """`failed_decision_markdown` under the dataset's decision key, so that its newest version tells the truth."""
    from prefect.artifacts import create_markdown_artifact

    if not _in_run():
        return None
    return create_markdown_artifact(failed_decision_markdown(error, model, version, production, scope.dataset),
                                    key=scope.key("decision"),
                                    description=scope.describe("not published: this run failed"))


WITHDRAWN_MARK = "✘ not published (withdrawn)"
PUBLISHED_MARK = "✔ published"  # the leaderboard's winner once its forecasts are published
TO_PUBLISH_MARK = "➜ to publish"  # the leaderboard's winner as written before its publish (`leaderboard_artifact`)
NOT_PUBLISHED_MARK = "✘ not published"  # a refused run that withdrew nothing (`withdrawn_decision_markdown`)
# the winner of a run that published nothing because the as_of holds its very forecasts, published by another run
ALREADY_PUBLISHED_MARK = "✔ published already, not by this run"


def withdrawn_leaderboard_description(sentence: str, metric: str, model: str, version: str | None = None, *,
                                      withdrawn: bool = True, details: Any = None, empty: str = "",
                                      intervals_note: str = "") -> str:
    """The description of a refused retrain's follow-up leaderboard (`withdrawn_leaderboard_artifact`): nothing of
    this run was published, the run that published (or retrained the slot) a link to its page, and the winner its
    board marked published (the key's previous version) marked withdrawn (`withdrawn` False: nothing of this run
    was withdrawn, as `withdrawn_decision_markdown` says); then, as the leaderboard's own description
    (`leaderboard_artifact`), what the metric means and a link to the details (`details`: that artifact's id), which
    the key's newest version, the one its page shows first, had lost (ui20); and why coverage or MSIS cells are blank
    (`intervals_note`, `blank_intervals_text`), as the version it follows said it (review22: the follow-up dropped it)."""
    text = said_text(sentence)
    head = "Withdrawn: nothing published by this run" if withdrawn else "Not published by this run"
    link = f"\n\nMAE, RMSE, weights, notes and how to read the scores: {artifact_link(details)}" if details else ""
    return (f"{head}. {text}\n\nThis run's backtest leaderboard, ranked by "
            f"{metric_header(metric)} (lower is better); its winner, {md_text(model_text(model, version))}, "
            f"marked to publish in the previous version of this key, was not published.\n\n{_meaning(metric)}."
            + (f"\n\n{md_text(intervals_note)}." if intervals_note else "") + (f"\n\n{empty}" if empty else "") + link)


def withdrawn_leaderboard_artifact(board: pl.DataFrame, metric: str, scope: Scope, sentence: str, *, champion: str,
                                   version: str | None = None, unit: str | None = None, withdrawn: bool = True,
                                   intervals_note: str = "") -> Any:
    """The follow-up leaderboard of a retrain refused under the key's lock (another run published its as_of, or
    retrained its schedule slot, while it computed): its leaderboard, written before its publish, marked its winner
    `TO_PUBLISH_MARK` (it said `✔ published` until followup21), and the key's newest version said so to anyone reading
    it. This version, under the same key,
    marks that winner `WITHDRAWN_MARK` (`NOT_PUBLISHED_MARK` where `withdrawn` is False: nothing of this run was
    withdrawn) and says which run published; so does a version of its details'. `intervals_note`: as
    `leaderboard_artifact`'s, in both (the version it follows said why coverage or MSIS cells are blank)."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    if not _in_run():
        return None
    # its details (`leaderboard-details-`) marked the winner published too: their key's newest says the same
    head, mark = (("Withdrawn: nothing published by this run", WITHDRAWN_MARK) if withdrawn else
                  ("Not published by this run: another run published this as_of first", NOT_PUBLISHED_MARK))
    said = said_text(sentence)
    details = create_markdown_artifact(f"## {head}\n\n{said}\n\n"
                             + leaderboard_details_markdown(board, metric, champion, unit, mark=mark,
                                                            table_link=key_link(scope.key("leaderboard")),
                                                            intervals_note=intervals_note),
                             key=scope.key("leaderboard_details"),
                             description=scope.describe(f"leaderboard details: {head[0].lower()}{head[1:]}"))
    return create_table_artifact(leaderboard_rows(board, champion, metric, mark=mark),
                                 key=scope.key("leaderboard"),
                                 description=scope.describe(withdrawn_leaderboard_description(
                                     sentence, metric, champion, version, withdrawn=withdrawn, details=details,
                                     empty=empty_intervals_sentence(board, intervals_note), intervals_note=intervals_note)))


def skipped_artifact(sentence: str, scope: Scope, *, again: bool = False) -> Any:
    """The skipped run's artifact, without a key: the dataset's `publish-receipt-` and `promotion-decision-`
    keys keep the run that published as their latest (`again`: `skipped_markdown`)."""
    from prefect.artifacts import create_markdown_artifact

    if not _in_run():
        return None
    why = "an earlier attempt of this run did this as_of" if again else "another run did this as_of"
    return create_markdown_artifact(skipped_markdown(sentence, again=again),
                                    description=scope.describe(f"nothing published: {why}"))


def receipt_notes(receipt: Any, note: str | Sequence[str] = "") -> list[str]:
    """The receipt's notes (and the run's), in the order its table lists them."""
    return [str(n) for n in (_as_dict(receipt).get("notes") or [])] + run_notes(note)


def receipt_description(receipt: Any, scope: Scope, note: str | Sequence[str] = "") -> str:
    """The sentence, led by the as_of, then each note as a paragraph of its own: a table cell does not
    wrap in the UI, so a note in the table alone was cut at the page's edge ('hybrid-v2 was trained on
    data up to 2019-08-01 00:00 UTC, after this as_of, and no model of emp was promoted for data up'),
    its point (these are not the forecasts a run on that date could have made) out of sight."""
    text = scope.describe(receipt_sentence(receipt))
    return "\n\n".join([text, *(f"Note: {after_colon(n)}" for n in receipt_notes(receipt, note))])


# names a note may start with whose spelling is a capitalized word, as an ordinary word's at a sentence's start: kept
# ('Note: prefect could not be reached'; names in capitals or with a capital inside, 'DuckDB', 'S3', keep theirs anyway)
PROPER_NOUNS = frozenset({
    "Prefect", "Parquet", "Postgres", "Lightning", "Optuna", "Python", "Docker", "Kubernetes", "Slurm", "Excel",
    "Nixtla", "Linux", "Windows", "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
    "Saturday", "Sunday",
})


def after_colon(sentence: str) -> str:
    """A sentence as it reads after 'Note: ': its first word lowercased where it is an ordinary capitalized word
    ('The declared covariates ...' -> 'the declared ...'; it read 'Note: The declared covariates'); a name or a
    figure that leads it ('theta-v3 was trained ...', '4 series ...', 'DuckDB ...', 'Prefect ...': `PROPER_NOUNS`)
    stays as it is."""
    first = re.match(r"([A-Z][a-z]+)\b(?![-/.\w])", sentence)
    return sentence[:1].lower() + sentence[1:] if first and first[1] not in PROPER_NOUNS else sentence


NONE = "—"  # an empty table cell a person reads as "nothing here"
FAILED_DETAIL = "failed: the error is above the table"
REWRITTEN = "rewritten: "  # the start of a date's note that says which publish its --overwrite replaced (`backfill`)
REWRITTEN_DETAIL = "rewritten: what it replaced is above the table"
BACKFILL_COLUMNS = ("as_of (UTC)", "status", "rows", "model", "flow run", "worker", "detail")


IN_PROCESS = "in-process"  # the `worker` of backfill dates run by the backfill's own process (no deployment)


def on_workers(outcomes: Iterable[Mapping[str, Any]]) -> bool:
    """Whether any of a backfill's dates ran on a deployment's worker: only then do its tables (`flowcast backfill`'s
    and the backfill-summary artifact's) have a `worker` column (the artifact's said `in-process` on every row run
    here and `—` on every skipped one, beside the CLI's table without it, and cut the detail at the page's edge)."""
    return any((o.get("worker") or IN_PROCESS) != IN_PROCESS for o in outcomes)


# a worker's name as Prefect makes it when `prefect worker start` is given no --name: its type and a uuid4
GENERATED_WORKER = re.compile(r"(?P<kind>\w*Worker) (?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def worker_cells(outcomes: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Each worker that ran a backfill's date -> its table cell: a name Prefect generated (`ProcessWorker
    ae940fa3-1ab6-4e72-aa68-0791f4fd740a`) with its id short (`ProcessWorker ae940fa3`, `short_ids`: as many
    characters as tell these workers apart), a name given with --name as it is. Whole, the 50-character default
    name pushed `flowcast backfill`'s table past 80 columns and rich cut every date, status, row count and model
    to `2018-1…  publ…  …  hybri…` (newuser50b); the log lines and --json name the worker whole."""
    names = {str(o["worker"]) for o in outcomes if o.get("worker")}
    generated = {n: m for n in names if (m := GENERATED_WORKER.fullmatch(n))}
    short = short_ids(m["id"] for m in generated.values())
    return {n: f"{generated[n]['kind']} {short[generated[n]['id']]}" if n in generated else n for n in names}


def rows_text(rows: Any) -> str:
    """A count of forecast rows as every table, log line and message writes it: with thousands separators
    (`1,776`; `flowcast backfill`'s table wrote `1776` beside its artifact's `1,776`), `NONE` when unknown; a record's
    text that is no whole number ('', a store's odd value) as it is: a sentence about it never fails on it (rev50b)."""
    if rows is None:
        return NONE
    try:
        return f"{int(rows):,}"
    except (TypeError, ValueError):
        return str(rows) or NONE


def backfill_rows(outcomes: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per as_of, every column filled: published rows, the model that published, the
    flow run and the worker that ran it (the column only where a date ran on a worker: `on_workers`), what happened (an error, a skip reason, the publish it rewrote); `—` where a
    date has none (a skipped date ran no flow run: its detail starts with the run that published it
    earlier, its id short (`short_ids`; whole in the description), which was shown as a bare id under 'flow run' beside the names of the runs this
    backfill started; a plain `-` would render as a bullet). The as_of is the UTC instant (`backfill_dates`' are
    naive UTC) written as the leaderboard and realized accuracy write it, rows with thousands separators (ui30:
    '1776' under a bare 'as_of')."""

    outcomes = list(outcomes)
    short = short_ids(str(o["run_id"]) for o in outcomes if _published_before(o))
    workers = on_workers(outcomes)
    worker_cell = worker_cells(outcomes)
    rows = []
    for o in outcomes:
        skipped = o.get("status") == "skipped"
        detail = o.get("error") or o.get("note") or NONE  # (a published date's note: it rewrote a publish)
        if o.get("status") == "failed" and o.get("error"):  # said whole in the description (`backfill_description`)
            detail = FAILED_DETAIL
        if rewrote(o):  # said whole in the description: the cell showed 'rewritten: it replaced the 48 rows run
            # 369eb2a9-8fa' and no more, its model and whether the content changed out of sight (ui40)
            detail = REWRITTEN_DETAIL
        if _published_before(o):  # its publisher first, short (a cell does not wrap in the UI: its id, at the end,
            # was cut at the page's edge, ui32), whole in the description
            detail = f"published by flow run {short[str(o['run_id'])]}: {o.get('error') or 'already published'}"
        rows.append({
            "as_of (UTC)": utc_text(o["as_of"], zone=False) if o.get("as_of") else NONE, "status": o.get("status") or "",
            "rows": rows_text(o.get("rows")),
            "model": o.get("model") or NONE,
            "flow run": o.get("flow_run") or (None if skipped else o.get("run_id")) or NONE,
            **({"worker": worker_cell.get(str(o.get("worker")), NONE)} if workers else {}), "detail": detail,
        })
    return rows


def rewrote(o: Mapping[str, Any]) -> bool:
    """A date whose run published over an earlier publish (`--overwrite`): its note says which (`backfill.rewritten`)."""
    return o.get("status") == "published" and str(o.get("note") or "").startswith(REWRITTEN)


def rewrites(outcomes: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Each date an --overwrite rewrote, as (its as_of as `utc_text` writes it, what it replaced: its note without
    the `REWRITTEN` start), which the table's cells point to (the artifact's description, `flowcast backfill`)."""
    return [(utc_text(o["as_of"]), str(o["note"])[len(REWRITTEN):]) for o in outcomes if rewrote(o)]


def _published_before(o: Mapping[str, Any]) -> bool:
    """A skipped date this backfill ran no flow run for, whose publisher is known (`run_id`: the run that published
    it). A date that ran a flow run of its own has that run under 'flow run', and its `run_id` is no publisher's."""
    return o.get("status") == "skipped" and bool(o.get("run_id")) and not o.get("flow_run")


def short_ids(ids: Iterable[str], least: int = 8) -> dict[str, str]:
    """Each id -> its first `least` characters, or as many more as tell these ids apart (a run id in a table cell,
    which does not wrap in the UI: whole, it was cut at the page's edge)."""
    ids = sorted(set(ids))
    n = least
    while len({i[:n] for i in ids}) < len(ids):
        n += 1
    return {i: i[:n] for i in ids}


SAID_WHOLE = 10  # the skipped dates whose publisher a backfill's description names whole


def backfill_counts(outcomes: Iterable[Mapping[str, Any]], *, failed: bool = True) -> str:
    """`2 published, 1 replaced, 0 skipped, 0 failed`: a backfill's dates by status, `replaced` only where a date's
    publish was replaced by another run's since (`flows.backfill.replaced_since`), `failed` only with `failed`, `not
    run` only where the backfill stopped at a date that found no room to write (`flows.backfill.stopped_by_no_room`)."""
    status = [o.get("status") for o in outcomes]
    said = ("published", *(["replaced"] if "replaced" in status else []), "skipped", *(["failed"] if failed else []),
            *(["not run"] if "not run" in status else []))
    return ", ".join(f"{status.count(s)} {s}" for s in said)


def backfill_description(title: str, outcomes: Iterable[Mapping[str, Any]]) -> str:
    """`backfill emp 2019-01-01..2019-04-01: 0 published, 4 skipped, 0 failed`: the key's history in the
    UI lists descriptions, so each backfill reads as its range and outcome (every version said 'emp
    backfill: one row per as_of and what happened'). Then each failed date's error, a paragraph of its own
    (`2024-03-01 failed: source 'shops': 12 of 183 rows quarantined ...`): a table cell does not wrap in the UI,
    and the detail cell showed the error cut at the page's edge, its cause's end and its fix out of sight (ui31).
    Then the flow runs that published the skipped dates, whole, up to `SAID_WHOLE` (the cells say them short), and
    what each date an --overwrite rewrote replaced, up to `SAID_WHOLE` (its cell points there)."""
    outcomes = list(outcomes)
    counts = backfill_counts(outcomes)
    failed = [f"{utc_text(o['as_of']) if o.get('as_of') else NONE} failed: {md_text(o['error'])}"
              for o in outcomes if o.get("status") == "failed" and o.get("error")]
    before = [f"{utc_text(o['as_of'])} {md_text(str(o['run_id']))}" for o in outcomes if _published_before(o)]
    if before:  # the table's cells name them short
        more = len(before) - SAID_WHOLE
        failed.append("Skipped, published before by the flow runs: " + ", ".join(before[:SAID_WHOLE])
                      + (f" and {more} more" if more > 0 else ""))
    replaced = [f"{when} {md_text(note)}" for when, note in rewrites(outcomes)]
    if replaced:  # the cells point here
        more = len(replaced) - SAID_WHOLE
        failed.append("Rewritten: " + "; ".join(replaced[:SAID_WHOLE]) + (f"; and {more} more" if more > 0 else ""))
    return "\n\n".join([f"{title[:1].upper()}{title[1:]}: {counts}", *failed])


def backfill_artifact(rows: Iterable[Mapping[str, Any]], scope: Scope | None = None, title: str = "") -> Any:
    from prefect.artifacts import create_table_artifact

    if not _in_run():
        return None
    rows = list(rows)
    key = scope.key("backfill") if scope is not None else KEYS["backfill"]
    text = "backfill: one row per as_of and what happened"
    described = backfill_description(title, rows) if title else (
        text if scope is None else f"{scope.dataset} {text}")
    return create_table_artifact(backfill_rows(rows), key=key, description=described)


# In-process observers of training progress (the CLI's rich bars): called with (key, label, fraction).
progress_listeners: list = []


def progress_text(label: str, event: Mapping[str, Any], *, final: bool = False) -> str:
    """`gru backtest: step 120 of 500, 42.4 s elapsed, training loss 0.123, validation loss 0.145` (what the
    progress artifact's description says while training, and once it ended), the losses named as the run's log
    names them (`Trained gru backtest: ... validation loss ..., training loss ...`; it said `train loss`, `val loss`), the time as
    that line writes it (`figures.duration_text`: it said `0:01 in all` where the line said `0.9 s`)."""
    get = event.get
    step, total = get("step"), get("max_steps")
    parts = [f"{step} steps" if final else (f"step {step} of {total}" if total else f"step {step}")]
    if get("elapsed") is not None:
        parts.append(f"{duration_text(get('elapsed'))} {'in all' if final else 'elapsed'}")
    if get("train_loss") is not None:
        parts.append(f"training loss {get('train_loss'):.4g}")
    if get("val_loss") is not None:
        parts.append(f"{'best ' if final and get('best') else ''}validation loss {get('val_loss'):.4g}")
    return f"{label} {'finished' if final else 'training'}: " + ", ".join(parts)


class TrainingProgress:
    """A progress artifact (0..100 %) for one model, moved by the training's progress events.

    Use as `on_progress` callback: called with a mapping or object carrying `step`/`max_steps`
    (or `epoch`/`max_epochs`, or a `fraction` in 0..1) and, when known, `elapsed` seconds and the
    latest `train_loss` / `val_loss`. The training side sends them every few steps or seconds
    (`models.train`'s ProgressReporter), so the bar moves during training, not only at validation;
    each event updates the percentage and the description (step of total, elapsed, losses).
    `done(metrics)` ends it with the final figures.
    """

    def __init__(self, cell: str, label: str = "", scope: Scope | None = None) -> None:
        self.cell = cell
        self.key = progress_key(cell, scope.dataset if scope else None, scope.backfill if scope else False)
        self.label = label or f"Training {cell}"
        self.scope = scope
        self._id: Any = None  # the progress artifact's id (a UUID) inside a run
        self._last = 0.0
        self.last_event: dict[str, Any] = {}
        self.updates = 0  # artifact updates sent (tests read it)
        self._notify(0.0)
        if _in_run():
            from prefect.artifacts import create_progress_artifact

            self._id = create_progress_artifact(0.0, key=self.key, description=self._describe(f"{self.label}: starting"))

    def _describe(self, text: str) -> str:
        return self.scope.describe(text) if self.scope is not None else text

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

    def _update(self, pct: float, description: str) -> None:
        if self._id is None:
            return
        from prefect.artifacts import update_progress_artifact

        try:
            update_progress_artifact(self._id, pct, description=self._describe(description))
            self.updates += 1
        except Exception as exc:  # noqa: BLE001 - progress is a courtesy: never fail training because the UI is away
            # and never wait on it again: Prefect's client retries a call for about a minute before it gives up, and
            # the training loop waited that long on every event (every few seconds), hours for a server restarted
            # mid-training, while the training process itself had finished
            self._id = None
            _log.warning("%s: its progress is no longer shown (the Prefect API did not take an update: %s)",
                         self.label, str(exc)[:200])

    def __call__(self, event: Any) -> None:
        frac = self.fraction(event)
        if frac is None:
            return
        ev = dict(event) if isinstance(event, Mapping) else dict(vars(event))
        self.last_event = {**self.last_event, **{k: v for k, v in ev.items() if v is not None}}
        pct = round(min(max(frac, 0.0), 1.0) * 100.0, 1)
        if pct > self._last:
            self._last = pct
            self._notify(pct / 100.0)
        self._update(self._last, progress_text(self.label, self.last_event))

    def done(self, metrics: Mapping[str, Any] | None = None) -> None:
        """Training finished (early stopping may end it before max_steps): 100 % and the final
        figures (steps, time, last training loss, best validation loss) from the artifact's metrics."""
        m = dict(metrics or {})
        final = {**self.last_event, "step": m.get("steps", self.last_event.get("step")),
                 "elapsed": m.get("train_seconds", self.last_event.get("elapsed")),
                 "train_loss": m.get("train_loss", self.last_event.get("train_loss")),
                 "val_loss": m.get("val_loss", self.last_event.get("val_loss")), "best": m.get("val_loss") is not None}
        if self._last < 100.0:
            self._last = 100.0
            self._notify(1.0)
        self._update(100.0, progress_text(self.label, final, final=True))


# --------------------------------------------------------------------------- hyperparameter search
KEYS["tuning"] = "tuning-trials"
KEYS["tuning_history"] = "tuning-history"


def tuning_markdown(result: Any) -> str:
    """The search's outcome: best settings and score, trial counts, the optimisation history plot."""
    s = result.summary()
    lines = [f"## Hyperparameter search ({plural(s['trials'], 'trial')} in {s['seconds']:.0f} s, budget {s['budget_minutes']:g} min)",
             "", f"Scored by **{metric_header(s['metric'])}** on the validation window before the leaderboard's windows.", ""]
    if s["best_value"] is not None:
        from flowcast.evaluation.metrics import metric_name

        lines += [f"Best {metric_name(s['metric'])}: **{s['best_value']:.4g}**", "", markdown_table(
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
                                  description=f"Hyperparameter search: every trial, scored by {metric_header(result.metric)}")
    md = create_markdown_artifact(tuning_markdown(result), key=KEYS["tuning_history"],
                                  description="Hyperparameter search: best settings and optimisation history")
    return table, md
