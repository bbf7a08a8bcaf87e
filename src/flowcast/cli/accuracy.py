"""`flowcast accuracy`: how published forecasts turned out (the `realized` table) and whether a
dataset's accuracy is degraded."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flowcast.cli.app import app
from flowcast.cli.common import (
    ConfigOpt,
    HomeOpt,
    JsonOpt,
    cli_errors,
    console,
    emit_json,
    out,
    parse_read_as_of,
    resolve_settings,
    said,
)
from flowcast.timekeys import utc_text


def _fmt(v: Any) -> str:
    """A figure as the realized-accuracy artifact writes it (`reporting.score_text`, 4 significant digits: coverage80
    read '0.62' here where the artifact said '0.625', look42); '-' for none."""
    from flowcast.reporting import score_text

    return "-" if v is None else score_text(v)


# an as_of's `lookahead` (summary_by_as_of): True, its forecasts were made by a model trained on data after it;
# None, no record says whether they were. Both were shown as an honest as_of, without a mark
_LOOKAHEAD_MARKS: dict[bool | None, str] = {True: " *", None: " ?"}
_LOOKAHEAD_NOTES = {
    " *": "forecast by a model trained on data after the as_of: it saw the actuals it is scored on; not judged",
    " ?": "no record of whether its model was trained on data after the as_of: judged as honest",
}


# the per-step rows' RMSSE (and seasonal naive's) is each series' over all the steps of the as_of (`realized`: as the
# backtest's), not the step's own: starred in the table (polish27), said in the JSON (removal28: a bare `rmsse` per
# step read as the step's own)
_RMSSE_ALL_STEPS = ("RMSSE over all the steps of the as_of, not of the step alone: each series' over the steps scored "
                    "(as the backtest's), averaged over the series scored at the step")


def _json_row(r: dict[str, Any]) -> dict[str, Any]:
    """A per-step row as `--json` gives it: its RMSSE also under `rmsse_all_steps`, the name saying what it is
    (`rmsse` kept for the consumers that read it)."""
    row = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
    return {**row, "rmsse_all_steps": row.get("rmsse")}


# the per-step table's columns (a `model` column first where a row's model is not its version's own)
_STEP_COLUMNS = ("version", "step", "points", "MAE", "MASE", "RMSSE*", "sMAPE", "cov80", "cov95")


def _partial(store: Any, dataset: str, rows: Any, receipts: Any = None) -> list[tuple[Any, Any, int, int]]:
    """(as_of, scored_at, last step scored, horizon) of the as_ofs whose rows stop before the last step they were
    published with (`ops.accuracy.published_horizons`): the run that scored them last had not seen the later
    periods' actuals, its own as_of being before them. The points column alone read as points lost (a run at
    2024-04-09 scored 9 days of a 28-day forecast of 2024-03-31 whose file held all 28)."""
    import polars as pl

    from flowcast.ops.accuracy import published_horizons

    if not rows.height:
        return []
    scored = rows.filter(pl.col("n") > 0).group_by("as_of").agg(pl.col("scored_at").max(),
                                                                 pl.col("step").max().alias("k")).sort("as_of")
    horizons = published_horizons(store, dataset, scored["as_of"].to_list(), receipts)
    return [(a, s, int(k), horizons[a]) for a, s, k in scored.iter_rows() if a in horizons and k < horizons[a]]


def _steps_note(status: dict[str, Any] | None, judged_on: str, rows: list[dict[str, Any]]) -> str:
    """What the per-step table's title says of the verdict: the metric it is on only where there is one (it said
    'the verdict is on MASE' over an as_of without a point scored, and where nothing was judged or no verdict
    stored)."""
    notes = [] if any(r.get("n") for r in rows) else ["no points scored at this as_of"]
    notes.append("no verdict stored" if status is None else "not judged yet" if not status["judged"]
                 else f"the verdict is on {judged_on}")
    return "; ".join(notes)


def _mase_blank_note(settings: Any, dataset: str, as_ofs: list[dict[str, Any]], judged_on: str) -> str | None:
    """Why MASE (and RMSSE, snaive MASE) read '-' at an as_of with points scored: no series scored there had, by
    that as_of, a usable scale: its history was shorter than a realized scale needs (`realized.min_scale_history`: a
    season plus max(season, 4) seasonal differences, 104 weeks of weekly data), or its scale was 0 (a constant
    history, or one repeating itself exactly every season; `metrics`: float noise counts as 0). The stored realized
    rows keep neither the histories nor their scales, so the note names both (polish25: it blamed a short history
    alone, also of long constant series). A weekly file of two years read '-' in every MASE cell, and the verdict
    'not judged', without a word (newuser22). None where every such as_of has a MASE."""
    from flowcast.data.calendar import season_length
    from flowcast.data.datasets import resolve_source
    from flowcast.errors import FlowcastError
    from flowcast.evaluation.realized import min_scale_history
    from flowcast.ops.quiet import dataset_time_label

    blank = [r["as_of"] for r in as_ofs if r.get("n") and r.get("mase") is None]
    if not blank:
        return None
    m: int | None = None
    try:
        declared = resolve_source(settings.model_copy(update={"dataset": dataset, "source": None}))
        m = declared.season_length or season_length(declared.freq)
    except FlowcastError:  # a --data file's dataset: the freq its publishes recorded
        freq = dataset_time_label(settings, dataset)[1]
        m = season_length(freq) if freq else None
    need = (f" ({min_scale_history(m)} periods: a season of {m} and {max(m, 4)} seasonal differences)"
            if m else "")
    shown = ", ".join(utc_text(a) for a in blank[:3]) + (f" and {len(blank) - 3} more" if len(blank) > 3 else "")
    return (f"MASE '-' at {shown}: no series scored there had, by its as_of, a scale to divide by: either its history "
            f"was shorter than a realized MASE's scale needs{need}, or its scale was 0 (a constant history, or one "
            "that repeats itself exactly every season; a change within float noise of its level counts as none), so "
            f"MASE, RMSSE and seasonal naive's MASE are blank and {judged_on} judges nothing there; MAE and sMAPE "
            "score every point, coverage every one with its interval")


@app.command("accuracy")
@cli_errors
def accuracy(
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="only this dataset")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="one published as_of: its rows per model and step")] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Realized accuracy of published forecasts: per dataset and as_of the points scored, MAE, MASE, sMAPE and
    interval coverage, beside what was promised; each dataset's verdict.

    Per dataset and as_of: the points scored, MAE, MASE, sMAPE, 80%/95% interval coverage and seasonal naive on
    the same points, beside the backtest MASE the publishing model promised; and each dataset's verdict (degraded
    or not), naming the metric it was judged on. Data whose models were ranked on RMSSE (classed intermittent) is judged on RMSSE: the table shows
    RMSSE, seasonal naive's RMSSE and the promised RMSSE; a window of versions ranked on each judges each on its own
    (both promises shown). `--as-of` adds the as_of's rows per model and step, MASE and RMSSE."""
    import polars as pl

    from flowcast.evaluation.realized import promised_by_as_of, summary_by_as_of
    from flowcast.ops.accuracy import (
        Receipts,
        coverage_points_note,
        flag_unflagged,
        promised_mase,
        promised_rmsse,
        read_status,
        status_path,
    )
    from flowcast.shared import open_registry, pull_file
    from flowcast.store import open_store

    settings = resolve_settings(config=config, home=home)
    from flowcast.timekeys import storage_naive

    when = storage_naive(parse_read_as_of(as_of, settings, dataset))
    store = open_store(settings)
    rows = store.read_realized(dataset, when)
    for problem in getattr(store, "skipped", []):  # a damaged partition hides only itself
        console.print(f"warning: {problem}", highlight=False)
    # the (dataset, as_of) of realized files that cannot be read: a dataset whose every file is damaged still shows
    # its stored verdict (it said 'no realized accuracy yet'), and one judged on them says so
    unreadable: list[tuple[str, Any]] = getattr(store, "unreadable", [])
    registry = open_registry(settings)
    datasets = (sorted(set(rows["dataset"].to_list()) | {d for d, _ in unreadable}) if rows.height or unreadable
                else [dataset] if dataset else [])
    report: dict[str, Any] = {}
    for name in datasets:
        mine = rows.filter(pl.col("dataset") == name)
        versions = sorted({v for v in mine["model_version"].to_list() if v})
        receipts: Receipts = {}  # each as_of's receipt read once, here and by `_partial`
        mine = flag_unflagged(mine, registry, store, name, versions, receipts)  # rows stored before it was recorded
        promised = promised_mase(registry, versions)
        summary = summary_by_as_of(mine).join(promised_by_as_of(mine, promised), on="as_of", how="left")
        pull_file(settings, status_path(settings.home, name))
        status = read_status(settings.home, name, warn=lambda m: console.print(f"warning: {m}", highlight=False))
        if status is not None and "rmsse" in status.metric:  # judged on RMSSE: what its models promised on it
            summary = summary.join(promised_by_as_of(mine, promised_rmsse(registry, versions))
                                   .rename({"promised": "promised_rmsse"}), on="as_of", how="left")
        if not mine.height and status is None:  # --dataset with nothing scored nor judged (a typo, or too soon)
            continue
        partial = _partial(store, name, mine, receipts)
        judged_on_files = {storage_naive(a) for a in status.as_ofs} if status is not None else set()
        report[name] = {
            "status": status.to_dict() if status else None,
            # the as_ofs the stored verdict was judged on whose realized files cannot be read now
            "status_unreadable_as_ofs": sorted({a.isoformat() for d, a in unreadable
                                                if d == name and storage_naive(a) in judged_on_files}),
            # as_ofs scored on fewer steps than they forecast: by whom, through when (`_partial`)
            "partial": [{"as_of": a.isoformat(), "scored_at": s.isoformat(), "last_step": k, "horizon": h}
                        for a, s, k, h in partial],
            "as_ofs": [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items() if k != "dataset"}
                       for r in summary.to_dicts()],
            **({"rows": [_json_row(r) for r in mine.to_dicts()],
                "rows_note": {"rmsse": _RMSSE_ALL_STEPS, "rmsse_snaive": f"seasonal naive's {_RMSSE_ALL_STEPS}"}}
               if when is not None else {}),
        }
    if json_out:
        emit_json({"store": getattr(store, "location", str(settings.warehouse_dir)), "datasets": report})
        return
    if not report:
        published = store.datasets()
        if dataset and published and dataset not in published:  # a typo: 'yet' promised what never comes
            console.print(f"nothing of dataset {dataset} is published in {getattr(store, 'location', '')}: "
                          f"published datasets: {', '.join(published)}", highlight=False)
            return
        what = " ".join(x for x in (f"dataset {dataset}" if dataset else "", f"as_of {utc_text(when)}" if as_of else "") if x)
        console.print(f"no realized accuracy{f' for {what}' if what else ''} yet: a retrain or forecast run scores "
                      "earlier published forecasts once their periods have actuals", highlight=False)
        return
    from rich import box
    from rich.table import Table

    from flowcast.ops.quiet import dataset_tz
    from flowcast.wording import noun

    for name, rep in report.items():
        zone = dataset_tz(settings, name)  # an as_of in the table as --as-of takes it back (a date alone: in this tz)
        st = rep["status"]
        verdict = ("DEGRADED" if st["degraded"] else "healthy" if st["judged"] else "not judged yet") if st else "unknown"
        metric = (st.get("metric") or "mase") if st else "mase"  # a verdict stored before it was recorded: MASE
        on_rmsse, mixed = metric == "rmsse", metric == "mase+rmsse"
        judged_on = {"rmsse": "RMSSE", "mase+rmsse": "MASE and RMSSE"}.get(metric, "MASE")
        verdict += f" on {judged_on}" if st and st["judged"] else ""
        out.print(f"[bold]{said(name)}[/]: {verdict}" + (f" - {said('; '.join(st['reasons']))}" if st else ""),
                  highlight=False, markup=True)
        if lost := rep["status_unreadable_as_ofs"]:  # faults32: shown as it was, without a word
            out.print(f"the verdict above was judged on realized accuracy of {noun(len(lost), 'as_of')} "
                      f"{', '.join(utc_text(a) for a in lost)}, which cannot be read now (the warning above names "
                      f"the file): it stands as stored until the next run that scores {name} writes "
                      f"{'them' if len(lost) > 1 else 'it'} again and judges anew", highlight=False, markup=False,
                      soft_wrap=True)
        if not rep["as_ofs"] and "rows" not in rep:  # judged before any point was scored: an empty table and legend
            continue
        # every figure whole in 80 columns: no column shrinks to an ellipsis, the headers take two lines; no blank
        # edge columns (newuser27: an hourly dataset's marked as_ofs, `2024-03-29 23:00 *`, headed the last `promis…`)
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
        # judged on RMSSE: its figures and promise where seasonal naive's MASE and sMAPE were (80 columns)
        heads = (("as_of (UTC)", "points", "MAE", "MASE", "RMSSE", "cov80", "cov95", "snaive\nRMSSE", "promised\nRMSSE")
                 if on_rmsse else
                 ("as_of (UTC)", "points", "MAE", "MASE", "RMSSE", "cov80", "cov95", "promised\nMASE", "promised\nRMSSE")
                 if mixed else
                 ("as_of (UTC)", "points", "MAE", "MASE", "sMAPE", "cov80", "cov95", "snaive\nMASE", "promised\nMASE"))
        for c in heads:
            table.add_column(c, justify="left" if c.startswith("as_of") else "right", no_wrap=True)
        marks = [_LOOKAHEAD_MARKS.get(r["lookahead"], "") if "lookahead" in r else "" for r in rep["as_ofs"]]
        for r, mark in zip(rep["as_ofs"], marks, strict=True):
            cells = ([_fmt(r.get("rmsse")), _fmt(r["coverage80"]), _fmt(r["coverage95"]),
                      _fmt(r.get("rmsse_snaive")), _fmt(r.get("promised_rmsse"))] if on_rmsse else
                     [_fmt(r.get("rmsse")), _fmt(r["coverage80"]), _fmt(r["coverage95"]),
                      _fmt(r.get("promised")), _fmt(r.get("promised_rmsse"))] if mixed else
                     [_fmt(r["smape"]), _fmt(r["coverage80"]), _fmt(r["coverage95"]),
                      _fmt(r.get("mase_snaive")), _fmt(r.get("promised"))])
            table.add_row(utc_text(r["as_of"], zone=False, read_in=zone) + mark, str(r["n"]), _fmt(r["mae"]), _fmt(r["mase"]), *cells)
        if out.measure(table, options=out.options.update(max_width=1_000)).maximum > out.width:  # one space between columns, not two, where figures of 4
            table.padding = (0, 0)  # significant digits need it (newuser46: `0.93…`, `2.5…` of a marked hourly as_of)
        out.print(table)
        for mark, meaning in _LOOKAHEAD_NOTES.items():
            if mark in marks:
                out.print(f"{mark.strip()} {meaning}", highlight=False, markup=False)
        if (fewer := coverage_points_note(rep["as_ofs"], [utc_text(r["as_of"], zone=False, read_in=zone)
                                                      for r in rep["as_ofs"]])):
            out.print(fewer, highlight=False, markup=False)
        if on_rmsse:
            out.print("judged on RMSSE, the metric its models were ranked on (data classed intermittent); snaive RMSSE: "
                      "seasonal naive's forecasts from the same as_of, on the same points; promised RMSSE: the "
                      "publishing model's backtest RMSSE", highlight=False, markup=False)
        elif mixed:
            out.print("judged on MASE for the versions ranked on MASE and on RMSSE for those ranked on RMSSE (data "
                      "classed intermittent); promised MASE / RMSSE: the publishing model's backtest MASE, and its "
                      "RMSSE where it was ranked on it", highlight=False, markup=False)
        else:
            out.print("snaive MASE: seasonal naive's forecasts from the same as_of, on the same points (MASE 1 is as "
                      "good as it); promised MASE: the publishing model's backtest MASE", highlight=False, markup=False)
        if (blank := _mase_blank_note(settings, name, rep["as_ofs"], judged_on)) is not None:
            out.print(blank, highlight=False, markup=False)
        for p in rep["partial"]:  # a run scores the periods up to its own as_of, never later actuals of the file
            out.print(f"{utc_text(p['as_of'])}: scored up to step {p['last_step']} of {p['horizon']}, by the run at "
                      f"{utc_text(p['scored_at'])}: a run scores the actuals up to its own as_of, never later "
                      "ones (in the file or not); the next runs score the later steps", highlight=False,
                      markup=False)
        if "rows" in rep:
            # MASE and RMSSE (it showed MASE alone, also where the verdict was judged on RMSSE), and which the verdict
            # was judged on; every figure whole in 80 columns, as the table above
            steps = Table(title=f"{name} as of {utc_text(when)}: per model and step ({_steps_note(st, judged_on, rep['rows'])})",
                          box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                          collapse_padding=True)
            # the model column only where a row's model is not its version's own (a fallback's rows): the version
            # names it, and both (`seasonal_naive`, `seasonal_naive-v1`) left 58 columns for eight figures, cut to
            # `1.3…` (newuser27); names fold rather than a figure shrink to an ellipsis
            own = all(r["model_version"] and r["model_version"].rsplit("-v", 1)[0] == r["model"] for r in rep["rows"])
            # RMSSE is each series' over all the steps of the as_of (`realized`: as the backtest's), not the step's
            # own: starred and said under the table (polish27: the same figure on every step read as per step)
            for c in _STEP_COLUMNS if own else ("model", *_STEP_COLUMNS):
                text = c in ("model", "version")
                steps.add_column(c, justify="left" if text else "right", no_wrap=not text,
                                 overflow="fold" if text else "ellipsis")
            for r in rep["rows"]:
                steps.add_row(*([] if own else [r["model"]]), r["model_version"] or "-", str(r["step"]), str(r["n"]),
                              _fmt(r["mae"]),
                              _fmt(r["mase"]), _fmt(r.get("rmsse")), _fmt(r["smape"]), _fmt(r["coverage80"]),
                              _fmt(r["coverage95"]))
            out.print(steps)
            out.print(f"* {_RMSSE_ALL_STEPS}", highlight=False, markup=False)
            if (fewer := coverage_points_note(rep["rows"], [f"{r['model_version'] or '-'} step {r['step']}"
                                                        for r in rep["rows"]])):
                out.print(fewer, highlight=False, markup=False)
    if not dataset and not as_of:  # a home of several datasets listed the scored ones alone, the others without a word
        unscored = [d for d in store.datasets() if d not in report]
        if unscored:
            shown = ", ".join(unscored[:10]) + (f" and {len(unscored) - 10} more" if len(unscored) > 10 else "")
            console.print(f"not scored yet: {shown} (published, but no later run has read actuals for the periods "
                          "they forecast: a retrain or forecast run scores them)", highlight=False, soft_wrap=True)
