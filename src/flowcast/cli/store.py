"""`flowcast forecasts` (read published forecasts, per dataset) and `flowcast models
list|show|history|promote|rollback|repair`."""

from __future__ import annotations

import itertools
import json
import re
import sys
import textwrap
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.cells import cell_len

from flowcast.cli.app import app, models_app
from flowcast.cli.common import (
    ConfigOpt,
    HomeOpt,
    JsonOpt,
    cli_errors,
    console,
    emit_json,
    missing_home_hint,
    out,
    parse_as_of,
    parse_read_as_of,
    resolve_settings,
    said,
)
from flowcast.cli.gc import middle_cut
from flowcast.errors import ConfigError, ProductionMovedError, RegistryError
from flowcast.mdtext import id_text
from flowcast.timekeys import utc_text
from flowcast.wording import listed, plural

FORMATS = ("table", "csv", "json")
TABLE_ROWS = 50  # the most rows `flowcast forecasts` shows as a table without --limit (pandas shows 60, DuckDB 40)
STREAM_ROWS = 50_000  # rows written at a time by --format csv and json (for pipes: every row, never all held as text)


def _jsonable(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


@app.command("forecasts")
@cli_errors
def forecasts(
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="only this dataset (default: every one)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="only this as_of (ISO date or timestamp; UTC without an offset; a date alone: that day in the --dataset's tz)")] = None,
    unique_id: Annotated[str | None, typer.Option("--unique-id", help="only this series")] = None,
    model: Annotated[str | None, typer.Option("--model", help="only forecasts of this model")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json (one array of row objects)")] = "table",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="at most this many rows")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="check every published file and realized-accuracy file whole (each page's CRC, the content hash its publish recorded) instead of printing rows; exit 1 naming each damaged file and its as_of")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Read published forecasts back from the configured store (`[store] url`; by default the
    warehouse under FLOWCAST_HOME). Takes no lock: safe while flows publish."""
    from flowcast.store import open_store
    from flowcast.store.contract import empty_forecasts

    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {list(FORMATS)}, got {fmt!r}")
    settings = resolve_settings(config=config, home=home)
    store = open_store(settings)
    if verify:
        _verify(store, dataset, parse_read_as_of(as_of, settings, dataset))
        return
    for problem in getattr(store, "views_left_out", []):  # what a query of forecasts.duckdb cannot see
        console.print(f"warning: {problem}", highlight=False)
    views_note = getattr(store, "views_note", None) or ""
    if "a copied or moved home" in views_note:  # the views could not follow it
        console.print(f"warning: {views_note}", highlight=False, soft_wrap=True)
    if unique_id is not None:  # ids are published in NFC (data/value_text.py): 'Café' typed either way finds them
        import unicodedata

        unique_id = unicodedata.normalize("NFC", unique_id)
    when = parse_read_as_of(as_of, settings, dataset)
    asked: dict[str, Any] = {"dataset": dataset, "as_of": when, "unique_id": unique_id, "model": model}
    parts: Iterator[Any] = iter(())  # the rows after `frame` (--format csv and json)
    if fmt == "table" and limit is None:  # a person reads the table: 1.4M rows printed took 111 s and 2.2 GB. The
        # rows shown are read alone; what is counted and said of every row the filters match, from only the columns it
        # needs (1.4M rows read whole to show 50: 1.04 GB peak, fixE52), on PostgreSQL by an aggregate query (store53)
        frame = store.read(**asked, rows=TABLE_ROWS)
        total = store.read_summary(_summarised, **asked)
    elif limit is not None:  # the first N rows read alone (LIMIT on PostgreSQL: it fetched every row), and counted
        frame = store.read(**asked, rows=limit)
        total = frame
    else:  # every row, a batch at a time: PostgreSQL's were all fetched into memory first (store53)
        parts = store.read_batches(**asked, size=STREAM_ROWS)
        first = next(parts, None)
        frame = total = empty_forecasts() if first is None else first
    n = int(total["rows"].sum()) if "rows" in total.columns else total.height  # the rows matched (`read_summary`)
    for problem in getattr(store, "skipped", []):  # a damaged partition hides only itself
        console.print(f"warning: {problem}", highlight=False)
    ends = None if fmt == "table" else [dataset] if dataset is not None else _matched_datasets(store, asked)
    frame = with_end_labels(frame, settings, ends)
    if frame.height == 0:  # said on stderr whatever the format: --format csv printed a bare header, exit 0
        filters = {k: v for k, v in {"dataset": dataset, "as_of": as_of, "unique_id": unique_id,
                                     "model": model}.items() if v}
        when = parse_as_of(as_of)
        hint = _series_hint(store, dataset, when, unique_id, model) if unique_id else ""
        console.print(f"no published forecasts{f' matching {filters}' if filters else ''} in {store.location}"
                      f"{missing_home_hint(settings, store.location)}"
                      f"{hint or (_published_hint(store, dataset, settings) if filters else '')}", highlight=False, soft_wrap=True)
    batches = itertools.chain([frame], (with_end_labels(part, settings, ends) for part in parts))
    if fmt == "json":
        _write_json(batches)
        return
    if fmt == "csv":
        if frame.height == 0:  # the header a script reading the published columns expects: y_hat's intervals too
            from flowcast.columns import INTERVAL_COLUMNS

            frame = empty_forecasts(INTERVAL_COLUMNS)
            sys.stdout.write(csv_text(frame))
        header = True
        for batch in batches:  # streamed: never the whole text in memory
            for part in batch.iter_slices(STREAM_ROWS):
                sys.stdout.write(csv_text(part, header=header))
                header = False
        sys.stdout.flush()
        return
    if frame.height == 0:
        return
    from flowcast.ops.quiet import dataset_tz

    sys.stdout.write(forecast_tables(frame, {d: dataset_tz(settings, d) for d in frame["dataset"].unique()},
                                     whole=total if frame.height < n else None))
    sys.stdout.flush()
    # counts as the run's log writes them (newuser52: '1400000 rows, 1 dataset, 1 as_of, 100000 series'), of every
    # row the filters match, and how to get those the table left out
    counts = (f"{plural(n, 'row')}, {plural(total['dataset'].n_unique(), 'dataset')}, "
              f"{total['as_of'].n_unique():,} as_of, {total['unique_id'].n_unique():,} series")
    if frame.height < n:
        console.print(f"the first {frame.height:,} of {counts}: --limit N shows the first N, --format csv > "
                      "forecasts.csv (or --format json) writes every row", highlight=False, soft_wrap=True)
    else:
        console.print(counts, highlight=False, soft_wrap=True)


def _summarised(column: str) -> bool:
    """The columns the table's counts and the lines under each table (`forecast_tables`' `whole`) read of every row:
    the keys and series, the model and run, whether each interval and quantile is there; not ds or the values."""
    return (column in ("dataset", "as_of", "unique_id", "model", "model_version", "run_id")
            or column.startswith(("y_hat_lo", "y_hat_q")))


def _write_json(frames: Iterable[Any]) -> None:
    """`frames` (the rows, a batch at a time) to stdout as one JSON array of row objects, as `json.dumps` of the whole
    list writes it, streamed `STREAM_ROWS` rows at a time: the list of 1.4M dicts and its text were built whole in
    memory."""
    sep = ""
    sys.stdout.write("[")
    for part in (p for frame in frames for p in frame.iter_slices(STREAM_ROWS)):
        sys.stdout.write(sep + ", ".join(json.dumps({k: _jsonable(v) for k, v in r.items()})
                                         for r in part.iter_rows(named=True)))
        sep = ", "
    sys.stdout.write("]\n")
    sys.stdout.flush()


def _verify(store: Any, dataset: str | None, as_of: Any) -> None:
    """`flowcast forecasts --verify`: every current file read whole and checked (EmbeddedStore.verify)."""
    if not hasattr(store, "verify"):
        raise ConfigError(f"--verify checks the Parquet files of the embedded store; {store.location} is a "
                          "database, which checks its own pages")
    checked, problems = store.verify(dataset, as_of)
    if not checked and (dataset is not None or as_of is not None):  # a typo checked nothing: not 'all whole'
        asked = " ".join(x for x in (f"dataset {dataset}" if dataset is not None else "",
                                     f"as_of {utc_text(as_of)}" if as_of is not None else "") if x)
        raise ConfigError(f"--verify found no published forecasts of {asked} in {store.location}, so it checked "
                          f"nothing (published datasets: {', '.join(store.datasets()) or 'none'})")
    for problem in problems:
        console.print(f"damaged: {problem}", highlight=False, soft_wrap=True)
    console.print(f"{plural(checked, 'file')} of published forecasts and realized accuracy checked in "
                  f"{store.location}: "
                  f"{f'{len(problems)} damaged' if problems else 'all whole'}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)


def csv_text(frame: Any, *, header: bool = True) -> str:
    """The forecasts as CSV, times written as --format json writes them (ISO 8601, fractional seconds only where
    there are some, the offset of a zoned column): polars' default wrote every month start as
    2024-11-01T00:00:00.000000."""
    import polars as pl

    times = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            zone = "%:z" if dtype.time_zone else ""
            times.append(pl.col(name).dt.strftime(f"%Y-%m-%dT%H:%M:%S%.f{zone}"))
    return str(frame.with_columns(times).write_csv(include_header=header))


def _matched_datasets(store: Any, asked: dict[str, Any]) -> list[str]:
    """The datasets with a row the filters `asked` match (`read_summary` of that column alone): csv and json take
    their `ds_end` column from those, whatever the other datasets of the store, and --limit N as the whole read."""
    summary = store.read_summary(lambda c: c == "dataset", **asked)
    return summary["dataset"].to_list() if "dataset" in summary.columns else []


def with_end_labels(frame: Any, settings: Any, datasets: list[str] | None = None) -> Any:
    """The forecasts with `ds_end` after `ds` where a dataset's source labels its times by their end
    (`time_label = "end"`: hour-ending data): each forecast's end label, as that data is written (ds, the
    interval start, is what every dataset's forecasts are keyed and scored by): the next period's start, or for a
    fiscal grid ('12mo', '3mo': ds is the month the period ends in, `zones.label_to_start`) the next month's
    first day. Other datasets' rows have none (null); a frame of start-labelled datasets only is returned as it is.
    `datasets`: those whose labels decide whether the column is there (a batch of the rows of several datasets has
    it where any of them has end labels, as every other batch: one CSV header), by default the frame's."""
    import polars as pl

    from flowcast.data.periods import end_label
    from flowcast.ops.quiet import dataset_time_label

    if frame.height == 0:
        return frame
    labels = {d: dataset_time_label(settings, d) for d in {*frame["dataset"].unique().to_list(), *(datasets or [])}}
    if not any(label == "end" and freq for label, freq in labels.values()):
        return frame
    end = pl.lit(None, dtype=frame.schema["ds"])
    for d, (label, freq) in labels.items():
        if label == "end" and freq:
            end = pl.when(pl.col("dataset") == d).then(end_label(pl.col("ds"), freq)).otherwise(end)
    frame = frame.with_columns(end.alias("ds_end"))
    cols = frame.columns
    cols.remove("ds_end")
    cols.insert(cols.index("ds") + 1, "ds_end")
    return frame.select(cols)


ID_WIDTH = 22  # the most columns a series id takes in a table (80 in all beside 5 bounds of 6 digits): a
# 300-character id made every row 370 wide


def id_cells(ids: list[str]) -> dict[str, str]:
    """Each of a table's distinct series `ids` -> its cell: whole where it fits `ID_WIDTH` columns, else cut in the
    middle (`middle_cut`) at the fewest columns from `ID_WIDTH` on at which no two cells read alike, or whole where
    none does. Each cut at 22 columns alone, M5's 'FOODS_3_090_CA_3_validation' and 'FOODS_3_090_CA_4_validation'
    both read 'FOODS_3_09…_validation': the rows of a store's items could not be told apart (revB47)."""
    longest = max((cell_len(u) for u in ids), default=0)
    for width in range(ID_WIDTH, longest):
        cells: dict[str, str] = {}
        seen: set[str] = set()
        for u in ids:  # (a width is given up at its first two alike: 27,000 M5 ids took 9 s, each cut at each width)
            if (cell := middle_cut(u, width)) in seen:
                break
            cells[u] = cell
            seen.add(cell)
        else:
            return cells
    return {u: u for u in ids}


def forecast_tables(frame: Any, zones: dict[str, str | None] | None = None, whole: Any = None) -> str:
    """Published forecasts as a person reads them, in 80 columns: one table per (dataset, as_of) whose
    title says what every row shares (the as_of as every instant reads and --as-of takes it: `zones`, dataset -> the
    tz its date alone is read in, keeps the clock of a midnight UTC that is not that zone's; the model version when one made
    every row, the run), then per row the series, period, step, the 95% and 80% bounds around y_hat with
    as many decimals as the values need. polars' table of every column and 17 digits was 280 columns
    wide, a terminal folded each row over four lines. --format csv or json has every column and digit
    (quantile columns included), and each series id whole: one over `ID_WIDTH` columns is cut in the middle
    (`id_cells`: its start and end kept, at as many columns as tell the table's ids apart) and said once under the
    table. `whole`: every row the command matched where `frame` is its first ones (the table without --limit): the
    titles and the lines under each table (fallbacks, series without an interval, quantile columns) say what is true of
    all the rows of its dataset and as_of, not of the rows shown alone."""
    import polars as pl

    parts = []
    keys = frame.select("dataset", "as_of").unique(maintain_order=True).iter_rows()
    for dataset, as_of in keys:
        key = (pl.col("dataset") == dataset) & (pl.col("as_of") == as_of)
        group = frame.filter(key)
        full = group if whole is None else whole.filter(key)
        versions = full["model_version"].unique(maintain_order=True).to_list()
        runs = full["run_id"].unique(maintain_order=True).to_list()
        said = utc_text(as_of, read_in=(zones or {}).get(dataset)) if as_of is not None else "-"
        title = f"{dataset} as of {said}: " + (
            f"{versions[0]}" if len(versions) == 1 else f"{len(versions)} models")
        title += f"\nrun {runs[0]}" if len(runs) == 1 else ""
        bounds = [c for c in ("y_hat_lo95", "y_hat_lo80", "y_hat", "y_hat_hi80", "y_hat_hi95")
                  if c in group.columns and (c == "y_hat" or group[c].is_not_null().any())]
        values = [v for c in bounds for v in group[c].to_list() if v is not None]
        number = _number_format(values)
        daily = all(not hasattr(d, "hour") or (d.hour, d.minute, d.second) == (0, 0, 0) for d in group["ds"])
        ends = "ds_end" in group.columns and group["ds_end"].is_not_null().any()  # an end-labelled dataset's
        heads = ["unique_id", "ds" if daily else "ds (UTC)", *([("ds_end" if daily else "ds_end (UTC)")] if ends else []),
                 "step", *(["model"] if len(versions) > 1 else []), *[c.removeprefix("y_hat_") for c in bounds]]
        # sub-daily ds are instants, stored and shown in UTC (the header says so)
        cells = id_cells([str(u) for u in group["unique_id"].unique(maintain_order=True)])
        rows = [[cells[str(r["unique_id"])], _period_text(r["ds"], clock=not daily),
                 *([_period_text(r["ds_end"], clock=not daily)] if ends else []), str(r["step"]),
                 *([r["model_version"] or ""] if len(versions) > 1 else []),
                 *[number(r[c]) for c in bounds]] for r in group.iter_rows(named=True)]
        widths = [max(cell_len(h), *(cell_len(row[i]) for row in rows)) for i, h in enumerate(heads)]
        text = [title, _aligned(heads, heads, widths), "  ".join("-" * w for w in widths),
                *(_aligned(r, heads, widths) for r in rows)]
        if any(cell != u for u, cell in cells.items()):
            text.append("(ids cut in the middle, at …: --format csv or json has them whole)")
        text += _fallback_lines(full)
        missing = [lv for lv in ("95", "80") if f"y_hat_lo{lv}" in full.columns
                   and full[f"y_hat_lo{lv}"].is_null().all()]
        if missing:
            text.append(f"(no {' or '.join(m + '%' for m in missing)} interval was published: the run's notes say "
                        "why)")
        text += _bare_lines(full, [lv for lv in ("80", "95") if f"y_hat_lo{lv}" in full.columns and lv not in missing])
        quantiles = [c for c in full.columns if c.startswith("y_hat_q") and full[c].is_not_null().any()]
        if quantiles:
            text.append(f"(quantile columns {', '.join(quantiles)}: --format csv or json)")
        parts.append("\n".join(text) + "\n")
    return "\n".join(parts)


def _bare_lines(group: Any, levels: list[str]) -> list[str]:
    """'(no 80% or 95% interval for new, 1 of 3 series: the run's notes say why)': the series without a bound of
    `levels`, published for others (probe45: a series with no typical change to scale its widths by, beside a constant
    series' zero-width interval; its '-' cells were said nothing of), naming the levels they lack ('no 95% interval':
    a level with too few calibration points, which a constant series keeps), each group of series by the levels it
    lacks ('(no 80% or 95% interval for new, 1 of 3 series; no 95% interval for newer, 1 of 3 series: ...)'; said of
    all of them together, it was untrue of one, wordsB46). [] where every series has them."""
    from flowcast.reporting import series_lacking

    n = group["unique_id"].n_unique()
    said = []
    # grouped by the levels they lack: a level its calibration had too few points for is a constant series' zero
    # width alone, beside series that have the other level (cachedir46: 'no 80% or 95% interval' of series with one)
    for lacking, bare in series_lacking(group, levels):
        shown = ", ".join(map(id_text, bare[:5])) + (f" and {len(bare) - 5} more" if len(bare) > 5 else "")
        said.append(f"no {' or '.join(lv + '%' for lv in lacking)} interval for {shown}, {len(bare):,} of {n:,} "
                    "series")
    return textwrap.wrap(f"({'; '.join(said)}: the run's notes say why)", 80) if said else []


def _fallback_lines(group: Any) -> list[str]:
    """'(east by damped, not seasonal_naive-v1's own model: its fallback for 1 series, the run's notes say why;
    --format csv gives each row's model)':
    the series whose rows a version's fallback made (their `model` is not the version's). The table titled
    `seasonal_naive-v1` showed damped's forecast of a 40-week series as seasonal naive's (newuser22)."""
    import polars as pl

    if "model" not in group.columns:
        return []
    fell = (group.with_columns(pl.col("model_version").str.replace(r"-v\d+$", "").alias("__made_for"))
            .filter(pl.col("model").is_not_null() & (pl.col("model") != pl.col("__made_for")))
            .group_by("model_version", "model", maintain_order=True).agg(pl.col("unique_id").unique(maintain_order=True)))
    lines = []
    for version, model, ids in fell.iter_rows():
        shown = ", ".join(map(id_text, ids[:5])) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        lines.append(f"({shown} by {model}, not {version}'s own model: its fallback for {len(ids)} series, the "
                     "run's notes say why; --format csv gives each row's model)")
    return [piece for line in lines for piece in textwrap.wrap(line, 80)]


def _aligned(cells: list[str], heads: list[str], widths: list[int]) -> str:
    """One line of a plain table: names left, figures right, padded to the columns a terminal gives each cell
    (`rich.cells.cell_len`): a series id of wide characters (`北京 store`, an emoji) took two columns per character
    where `str.ljust` counted one, and pushed every later column of its row out of line (newuser27)."""
    def pad(c: str, w: int, left: bool) -> str:
        fill = " " * max(w - cell_len(c), 0)
        return c + fill if left else fill + c

    return "  ".join(pad(c, w, h in ("unique_id", "ds", "ds (UTC)", "ds_end", "ds_end (UTC)", "model"))
                     for c, w, h in zip(cells, widths, heads, strict=True)).rstrip()


def _period_text(value: Any, clock: bool = False) -> str:
    """A forecast's period in a cell as every instant reads (`timekeys.utc_text`, the zone left to the 'ds (UTC)'
    header of sub-daily tables): a date or a midnight its date, any other time its clock, seconds only where it has
    them ('2024-04-20 00:30', '2024-04-20 00:30:15': it read '%Y-%m-%d %H:%M', a period of seconds cut to the
    minute, its neighbours' twin); `clock` (a sub-daily table): a midnight too ('2024-03-11 00:00', where it read
    '2024-03-11' among '2024-03-11 00:15' and the day's other hours); '-' for none."""
    return "-" if value is None else utc_text(value, zone=False, clock=clock)


def _number_format(values: list[float]) -> Any:
    """One format for a table's figures: five significant digits of its typical magnitude (100.90,
    1234568, 0.012346), scientific beyond 1e9 and where it would show fewer than two significant digits (a
    series at 1e-9 beside one at 1e12 printed every value '0', 1e-6 alone '0.000001'); '-' for a missing value."""
    import math

    finite = sorted(abs(v) for v in values if math.isfinite(v) and v != 0)
    typical = finite[len(finite) // 2] if finite else 1.0
    digits = math.floor(math.log10(typical)) + 1
    decimals = min(max(5 - digits, 0), 6)

    def fmt(v: float | None) -> str:
        if v is None:
            return "-"
        if not math.isfinite(v):
            return str(v)
        if abs(v) >= 1e9 or 0 < abs(v) < 10.0 ** (1 - decimals):
            return f"{v:.4e}"
        return f"{v:.{decimals}f}"

    return fmt


def _mirror_registry(settings: Any) -> None:
    """With store.url on PostgreSQL, mirror the registry there (flowcast.store.registry_index); the
    pointer has moved either way, so a failure here is a warning, not an error."""
    from flowcast.errors import FlowcastError
    from flowcast.store.registry_index import sync_if_postgres

    try:
        sync_if_postgres(settings)
    except FlowcastError as exc:
        console.print(f"[bold yellow]warning:[/] the registry index on PostgreSQL is not updated: {said(exc)}",
                      highlight=False, markup=True)


def _series_hint(store: Any, dataset: str | None, as_of: Any, unique_id: str, model: str | None) -> str:
    """When forecasts match every filter but --unique-id: the series is the problem, not the as_of. The
    message listed the published as_of, the one asked for among them, and left the id unsaid (a series
    '7' whose file wrote '007', a typo)."""
    import difflib

    others = store.read(dataset=dataset, as_of=as_of, model=model)
    if others.height == 0:
        return ""
    ids = sorted({str(u) for u in others["unique_id"].unique().to_list()})
    close = [u for u in ids if u.lstrip("0") == unique_id.lstrip("0")]  # '007' for '7', leading zeros aside
    close += [u for u in difflib.get_close_matches(unique_id, ids, n=3, cutoff=0.5) if u not in close]
    said = f"did you mean {', '.join(repr(u) for u in close)}?" if close else f"e.g. {', '.join(ids[:5])}"
    return f"; series {unique_id!r} is not among the {len(ids)} series published there ({said})"


def _published_hint(store: Any, dataset: str | None, settings: Any) -> str:
    """What is published, so that a filter matching nothing says what would match: each as_of as `--dataset NAME
    --as-of` takes it back (a date alone is read in the dataset's tz, `parse_read_as_of`)."""
    from flowcast.ops.quiet import dataset_tz

    names = store.datasets()
    if dataset is not None and dataset not in names:
        return f"; published datasets: {', '.join(names)}" if names else "; nothing is published yet"
    parts = []
    for name in [dataset] if dataset is not None else names:
        published = store.as_ofs(name)
        tz = dataset_tz(settings, name)
        parts.append(f"{name}: {', '.join(utc_text(t, read_in=tz) for t in published[-10:])}"
                     f"{f' (last 10 of {len(published)})' if len(published) > 10 else ''}")
    return f"; published as_of: {'; '.join(parts)}" if parts else ""


ModelDatasetOpt = Annotated[str | None, typer.Option(
    "--dataset", "-d", help="the dataset whose models and production pointer to use (default: the only one)")]


def _version_row(mv: Any, productions: dict[str, str]) -> dict[str, Any]:
    m = mv.metrics or {}
    return {
        "version": mv.version,
        "dataset": mv.dataset,
        "kind": mv.kind,
        "name": mv.name,
        "production": productions.get(mv.dataset or "") == mv.version,
        "description": mv.describe(),
        "as_of": mv.as_of,
        "created_at": mv.created_at,
        **{k: m.get(k) for k in ("smape", "mase", "rmsse", "mae", "rmse", "coverage80", "coverage95")},
        "metric": (mv.recipe or {}).get("metric"),  # what its leaderboard ranked on (none: not recorded)
    }


def _recorded_at(at: str | None) -> datetime:
    """The time a by-hand registry change records: --at, else now; naive UTC, as a flow's promotion records
    its run's start (a manual promote or rollback recorded none, and a retried rollback said 'time not
    recorded' of one done a minute before)."""
    when = parse_as_of(at, "--at") or datetime.now(UTC)
    return when.astimezone(UTC).replace(tzinfo=None)


def _production_or_none(reg: Any, dataset: str | None) -> Any:
    """The production version before a promote/rollback; None when there is none or it is gone
    (a dangling pointer must not block the command that repairs it)."""
    try:
        return reg.production(dataset)
    except RegistryError:
        return None


def _productions(reg: Any) -> tuple[dict[str, str], list[str]]:
    """dataset -> production version, and the problems found (a pointer naming a version that is gone)."""
    out, problems = {}, []
    for ds in reg.datasets():
        try:
            mv = reg.production(ds)
        except RegistryError as exc:  # still list what is there: that is how the user repairs it
            problems.append(str(exc))
            continue
        if mv is not None:
            out[ds] = mv.version
    return out, problems


@models_app.command("list")
@cli_errors
def models_list(
    dataset: ModelDatasetOpt = None,
    name: Annotated[str | None, typer.Option("--name", help="only versions of this model (gru, hybrid, theta, ...)")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="also check each listed version's files (each network's "
                                                          "meta.json and checkpoint, as `models show` does): a "
                                                          "damaged one is marked and named; exit 1 when any is")] = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Registered model versions of every kind, oldest first; production ones are marked. It reads each
    version.json only; --verify also checks their files (exit 1 naming each damaged one)."""
    from flowcast.shared import open_registry

    settings = resolve_settings(config=config, home=home)
    reg = open_registry(settings)
    prods, problems = _productions(reg)
    listed = reg.list(name, dataset=dataset)
    rows = [_version_row(v, prods) for v in listed]
    damaged: dict[str, list[str]] = {}
    unreadable: dict[str, str] = {}
    if verify:
        for v, row in zip(listed, rows):
            row["damaged_files"] = _damaged_files(reg, v)
            if row["damaged_files"]:
                damaged[v.version] = row["damaged_files"]
        # a version whose version.json cannot be read is left out of the list (a warning): --verify said 'all whole'
        # and exited 0 (review21). Its dataset cannot be read, so --dataset keeps it; --name goes by its name
        unreadable = {u: why for u, why in sorted(reg.damaged().items()) if name is None or u.startswith(f"{name}-v")}
        for u, why in unreadable.items():
            damaged[u] = [why]  # ('corrupt registry entry <its version.json>: <why>')
    for problem in problems:
        console.print(f"[bold yellow]warning:[/] {said(problem)}", highlight=False, markup=True)
    production: Any = prods.get(dataset) if dataset else (next(iter(prods.values())) if len(prods) == 1 else None)
    if json_out:
        emit_json({"production": production, "productions": prods, "versions": rows,
                   **({"problem": "; ".join(problems)} if problems else {}),
                   **({"unreadable_versions": unreadable} if verify else {})})
        if damaged:
            raise typer.Exit(1)
        return
    if not rows and not unreadable:
        others = sorted({v.dataset for v in reg.list() if v.dataset}) if dataset else []  # a typo in --dataset
        console.print(f"no registered models{f' of {dataset}' if dataset else ''} in {reg.location}"
                      + missing_home_hint(settings, reg.location)
                      + (f"; registered datasets: {', '.join(others)}" if others else ""), highlight=False, soft_wrap=True)
        return
    for table in _versions_tables(rows, out.width):
        out.print(table)
    console.print("production: " + (", ".join(f"{d}: {v}" for d, v in sorted(prods.items())) or "none"))
    if dataset is not None and (note := numbering_note(dataset, [v.seq for v in listed], _seqs_held(reg, dataset))):
        console.print(note, highlight=False, soft_wrap=True)
    if verify:
        for version, files in damaged.items():
            for problem in files:
                console.print(f"damaged: {version}: {problem}", highlight=False, soft_wrap=True)
        console.print(f"{plural(len(rows) + len(unreadable), 'version')} checked in {reg.location}: "
                      + (f"{len(damaged)} damaged ({', '.join(damaged)}; `flowcast models show VERSION` says what "
                         "to do)" if damaged else "all whole"), highlight=False, soft_wrap=True)
        if damaged:
            raise typer.Exit(1)


def numbering_note(dataset: str, seqs: list[int], held: dict[int, str]) -> str | None:
    """What `models list --dataset D` says when D's version numbers (`seqs`) are not 1, 2, 3, ...: the number after
    `-v` is one count over the whole home (every dataset and model, never reused), so that a version name alone names
    one model (`models show naive-v2`, `models promote`, a published row's model_version). A user listing a second
    dataset's models saw its first as `naive-v2` and looked for a v1 (newuser25). A number skipped is either another
    dataset's version's (`held`: number -> its dataset, `_seqs_held`) or a version removed since (`flowcast gc`): each
    said as it is (polish27: after gc removed v1 of a home of one dataset, the note blamed the other datasets)."""
    missing = sorted(set(range(1, max(seqs, default=0) + 1)) - set(seqs))
    if not missing:
        return None
    elsewhere = [n for n in missing if n in held]
    removed = [f"v{n}" for n in missing if n not in held]
    said = []
    if elsewhere:
        said.append(f"version numbers count the registrations of this whole home (every dataset and model, never "
                    f"reused), not of {dataset} alone")
    if removed:
        said.append(f"{listed(removed)} {'were' if len(removed) > 1 else 'was'} removed (`flowcast gc`, or by hand) and a number "
                    "is never reused")
    if not elsewhere:
        return (f"note: {dataset}'s versions are not numbered 1, 2, 3, ...: {said[0]}, so that a version's name alone "
                "names one model (`flowcast models show VERSION`)")
    return (f"note: {'; '.join(said)}, so {dataset}'s versions are not numbered 1, 2, 3, ...: the numbers order them, "
            "and a version's name alone names it (`flowcast models show VERSION`)")


def _seqs_held(reg: Any, dataset: str) -> dict[int, str]:
    """number -> dataset of each version of this home that is not `dataset`'s: the other datasets', and those whose
    version.json cannot be read (their dataset unknown: '?')."""
    held = {v.seq: str(v.dataset) for v in reg.list() if v.dataset != dataset}
    for name in reg.damaged():
        if (m := re.fullmatch(r".+-v(\d+)", name)) is not None:
            held.setdefault(int(m.group(1)), "?")
    return held


def _damaged_files(reg: Any, mv: Any) -> list[str]:
    """Each missing or damaged file of version `mv` (empty: whole); at a URL its files are copied here first."""
    from flowcast.models.recipes import damaged_network_files

    if reg.remote is not None:
        mv = reg.get(mv.version)  # its files, in the local cache
    return damaged_network_files(mv.path, mv.recipe) if mv.path.is_dir() else [f"{mv.path}: missing"]


def _versions_tables(rows: list[dict[str, Any]], width: int = 80) -> list[Any]:
    """The registered versions, one table per dataset (titled with it), every version, kind, as_of and
    score whole in 80 columns (one folded table printed 'statistic|al' and '2024-04-1|9 00:00:00+|00');
    what each is wraps by words in a column of its own where `width` leaves it WHAT_MIN columns, else it is listed
    under the table, a line per version (ui20: a version named 'seasonal_naive-v3' left it 12 columns of the 16 it
    was given, and the terminal cut 4 characters off each of its lines: 'seasonal_nai', 'cannot forec')."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from flowcast.evaluation.metrics import metric_name

    fmt = lambda v: "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    tables: list[Any] = []
    for dataset in dict.fromkeys(r["dataset"] or "" for r in rows):
        table = Table(title=f"dataset {dataset}" if dataset else "no dataset", title_justify="left",
                      header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        mine = [r for r in rows if (r["dataset"] or "") == dataset]
        # two scores fit: MASE and sMAPE, or MASE and RMSSE where a version was ranked on it (intermittent data)
        second = "rmsse" if any(r.get("metric") == "rmsse" for r in mine) else "smape"
        # headed as the leaderboard artifact heads them: MASE, sMAPE, RMSSE (they read 'mase', 'smape', ui32)
        heads = ("", "version", "kind", "as_of (UTC)", metric_name("mase"), metric_name(second))
        cells = [[("*" if r["production"] else "") + ("!" if r.get("damaged_files") else ""), r["version"], r["kind"],
                  utc_text(r["as_of"], zone=False) if r["as_of"] else "", fmt(r["mase"]), fmt(r.get(second))] for r in mine]
        # each column as wide as its widest cell and two spaces, the line's first space (as SIMPLE_HEAD draws them)
        used = 1 + sum(max(len(h), *(len(c[i]) for c in cells)) + 2 for i, h in enumerate(heads))
        beside = width - used - 1 >= WHAT_MIN
        for c in heads:
            table.add_column(c, no_wrap=True, justify="right" if c in heads[4:] else "left")
        if beside:
            table.add_column("what it is", min_width=WHAT_MIN, overflow="fold")  # whole words: 'seasonal_naive,'
        for r, row in zip(mine, cells):
            table.add_row(*row, *([r["description"]] if beside else []))
        if beside:
            tables.append(table)
        else:
            tables.append(Group(table, *(Text(f"  {r['version']}: {r['description']}") for r in mine), Text("")))
    return tables


WHAT_MIN = 16  # the narrowest 'what it is' column of `models list` (whole words: 'seasonal_naive,' fits)


@models_app.command("show")
@cli_errors
def models_show(
    version: Annotated[str | None, typer.Argument(
        help="a version from `flowcast models list` (default: the production model of --dataset)")] = None,
    dataset: Annotated[str | None, typer.Option(
        "--dataset", "-d", help="the dataset the version is of (checked); without VERSION: show its production "
                                "model (default: the only dataset with one)")] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="everything recorded, as one JSON object (calibration "
                                                          "quantiles, training configuration, paths)")] = False,
) -> None:
    """One version in words (default: the production model of --dataset).

    Its kind, what it is, its members and weights, fallback, intervals, backtest
    scores, and the data it was trained on (source, as_of, fingerprint). Without VERSION: the production model
    of --dataset (of the only dataset that has one). `--json`: everything recorded (the whole recipe with its
    interval calibration, the training configuration), for scripts. Exit 1 when the version's files are damaged
    or missing (each named), as `flowcast forecasts --verify`."""
    from flowcast.shared import open_registry

    settings = resolve_settings(config=config, home=home)
    reg = open_registry(settings)
    mv = _shown_version(reg, version, dataset, missing_home_hint(settings, reg.location))
    prods, _ = _productions(reg)
    record = {**mv.to_dict(), "production_of": sorted(d for d, v in prods.items() if v == mv.version)}
    from flowcast.models.recipes import damaged_network_files

    # a cut or removed model.ckpt was shown as usual (exit 0); the scheduled forecast was where it was found
    record["damaged_files"] = damaged_network_files(mv.path, mv.recipe) if mv.path.is_dir() else [f"{mv.path}: missing"]
    if json_out:
        emit_json(record)
    else:
        out.print("\n".join(model_text(record)), highlight=False, soft_wrap=True)  # lines whole, the terminal wraps
    if record["damaged_files"]:  # it said DAMAGED and exited 0: a script checking a version saw it whole
        raise typer.Exit(1)


def _shown_version(reg: Any, version: str | None, dataset: str | None, home_hint: str = "") -> Any:
    """The version `models show` shows: VERSION (when --dataset is given too, it must be of that dataset), else the
    production model of --dataset, else of the only dataset that has one. `models show --dataset D` was refused
    ('No such option: --dataset') while every other models command takes it; a version of another dataset, or a
    dataset without models, is told with the versions and datasets there are."""
    if version is not None:
        mv = reg.get(version)
        if dataset is not None and mv.dataset != dataset:
            mine = [v.version for v in reg.list(dataset=dataset)]
            theirs = (f"{dataset}'s versions: {', '.join(mine[-10:])} (`flowcast models list --dataset {dataset}`)"
                      if mine else _no_models_of(reg, dataset))
            raise RegistryError(f"{version} is a model of dataset {mv.dataset!r}, not {dataset!r} (--dataset): "
                                f"{theirs}; drop --dataset to show {version}")
        return mv
    if dataset is not None and not reg.list(dataset=dataset):
        raise RegistryError(_no_models_of(reg, dataset))
    mv = reg.production(dataset)
    if mv is None:
        which = f"dataset {dataset!r} has" if dataset else "no dataset has"
        known = [v.version for v in reg.list(dataset=dataset)]
        raise RegistryError(f"{which} a model in production: name a VERSION to show"
                            + (f" ({', '.join(known[-10:])}; `flowcast models list`)" if known else
                               f" (no model is registered in {reg.location}{home_hint}; `flowcast run` trains and "
                               "registers one)"))
    return mv


def _no_models_of(reg: Any, dataset: str) -> str:
    """A dataset with no registered model, said with the datasets that have some (a typo in --dataset)."""
    others = sorted({v.dataset for v in reg.list() if v.dataset})
    return (f"dataset {dataset!r} has no registered model in {reg.location}"
            + (f"; registered datasets: {', '.join(others)}" if others else ""))


# `models history`'s words on its order (stderr, above the events): each event's time is its run's start (the `at` a
# flow records, a by-hand command its own time), so after two runs that overlapped a later event could read earlier
# than the one listed before it (a champion at 03:33:23 above a withdraw stamped 03:33:20), as if out of order
HISTORY_NOTE = ("oldest first, in the order written (#N: the dataset's Nth event); each time is when the run that "
                "wrote it started (a by-hand command: when it ran), so runs that overlapped can list a later time "
                "before an earlier one")
# said before HISTORY_NOTE where several datasets are listed: their events come one dataset after another (A to Z),
# and the note said 'oldest first' of a listing whose second dataset's events start earlier than the first's end
HISTORY_GROUPED_NOTE = "grouped by dataset (A to Z), each dataset's events "


# said after HISTORY_NOTE when a reason was cut: a refused retrain's withdrawal recorded its whole note (~400 characters:
# what the other run published, its rows, its run, what was withdrawn), one line of it wrapped over several
HISTORY_CUT_NOTE = "; a reason of several sentences is cut to its first (' ...'), --json gives it whole"
# said after HISTORY_NOTE where a `models repair` re-derived a pointer: the events moved to history.jsonl before it
# are placed by their time among the pointer's new ones (mend21), not in the order written
HISTORY_REPAIR_NOTE = ("; before a `repair` that re-derived a pointer, the events moved to history.jsonl are placed by "
                       "their time")

# a sentence ends at '.', '!' or '?' followed by a space and a capital ('e.g. ' and 'i.e. ' do not end one)
_SENTENCE_END = re.compile(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.!?])\s+(?=[A-Z])")


def recorded_text(value: Any) -> str:
    """A recorded time (`at`, `as_of`, `created_at`) as `models history` and `models show` print it: as every other
    command writes an instant (`timekeys.utc_text`: '2023-11-30' at midnight UTC, seconds where not zero,
    '2024-01-08 03:33:23 UTC'); it printed the raw ISO text ('2023-11-30T00:00:00', look42). A naive time means UTC
    (what the registry records); a value that is not a time is left as it is."""
    try:
        return utc_text(value if isinstance(value, datetime) else str(value))
    except ValueError:
        return str(value)


def first_sentence(text: str) -> str:
    """A `models history` line's reason: its first sentence, ' ...' after it where more followed (`--json` keeps it
    whole), its whitespace made single spaces."""
    whole = " ".join(text.split())
    head = _SENTENCE_END.split(whole, maxsplit=1)[0]
    return whole if head == whole else f"{head} ..."


@models_app.command("history")
@cli_errors
def models_history(
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="only this dataset (default: every one)")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Every change and record of the production pointers, oldest first.

    Promotions, rollbacks, withdrawals, champions, and retrains that kept production (`keep`, with their as_of and
    run; the older ones read from history.jsonl, where production.json's bound moved them). Numbered #N in the
    order written; each time is when its run started; several datasets: grouped by dataset, A to Z, oldest first
    within each."""
    from flowcast.shared import open_registry

    settings = resolve_settings(config=config, home=home)
    reg = open_registry(settings)
    events = [{**e, "dataset": dataset} for e in reg.history(dataset)] if dataset else reg.history()
    pending = reg.pending_removals(dataset)
    if json_out:
        emit_json({"events": events, "pending": pending})
        return
    if not events:
        known = reg.datasets()
        console.print(f"no history{f' of {dataset}' if dataset else ''} in {reg.location}"
                      + (f"; datasets: {', '.join(known)}" if dataset and known else ""), highlight=False,
                      soft_wrap=True)
        _print_pending(pending)
        return
    cut = any(first_sentence(str(e["reason"])) != " ".join(str(e["reason"]).split()) for e in events if e.get("reason"))
    repaired = any(e.get("action") == "repair" for e in events)
    grouped = len({str(e.get("dataset")) for e in events}) > 1
    console.print((HISTORY_GROUPED_NOTE if grouped else "") + HISTORY_NOTE + (HISTORY_CUT_NOTE if cut else "") + (HISTORY_REPAIR_NOTE if repaired else ""),
                  highlight=False, soft_wrap=True)
    order: dict[str, int] = {}
    for e in events:
        n = order[str(e.get("dataset"))] = order.get(str(e.get("dataset")), 0) + 1
        detail = [f"as_of {recorded_text(e['as_of'])}" if e.get("as_of") else "", f"run {e['run']}" if e.get("run") else "",
                  f"for run {e['for_run']}" if e.get("for_run") else "",  # withdrawn on a killed run's behalf
                  f"({first_sentence(str(e['reason']))})" if e.get("reason") else ""]
        at = recorded_text(e["at"]) if e.get("at") else "-"
        out.print(" ".join(x for x in [f"#{n}", at, str(e.get("dataset")), str(e.get("action")),
                                       str(e.get("version") or "-") + previous_text(e), *detail] if x),
                  highlight=False, soft_wrap=True)
    _print_pending(pending)


# `models history`'s words for a removal noted and not finished (`ModelRegistry.pending_removals`)
_PENDING_WHAT = {"take_back": "take-back", "withdraw": "withdrawal from production",
                 "withdraw_champion": "withdrawal of the champion record", "retract": "removal by gc"}
_PENDING_STATE = {
    "recorded": "recorded; its files are left, and the next command that writes the registry removes them",
    # {who}: 'run' where the note names the run that was removing it, 'command' where it names none (by hand)
    "noted": "its {who} stopped (killed) before recording it; the next command that writes the registry records it "
             "on the {who}'s behalf and removes {version}, unless something now keeps {version}",
    "unrecorded": "its command stopped (killed) before recording it; nothing of it happened, and the next command that "
                  "writes the registry drops it",
    "unknown": "whether it was recorded cannot be told: production.json does not read (`flowcast models repair`)",
}
# the same of a withdrawal that leaves its version in place (`kept`: why, in words)
_PENDING_KEPT = {
    "recorded": "recorded; {version} stays registered ({kept}), and the next command that writes the registry drops "
                "this note",
    "noted": "its {who} stopped (killed) before recording it; the next command that writes the registry records it on "
             "the {who}'s behalf unless the production pointer of {dataset} changed since; {version} stays registered: "
             "{kept}",
}


def _print_pending(pending: list[dict[str, Any]]) -> None:
    """The removals in flight, or left by a stopped command, below `models history`'s events: a take-back killed
    before its record was not shown anywhere until the next writer recorded it. One whose note names no run (a
    removal by hand) says its command stopped: it read 'its run stopped' of a run there was none of."""
    for p in pending:
        what = _PENDING_WHAT.get(str(p.get("action")), "removal by gc")
        by = "".join([f" by run {p['run']}" if p.get("run") else "", f" for run {p['for_run']}" if p.get("for_run")
                      else "", f", noted at {recorded_text(p['at'])}" if p.get("at") else ""])
        words = (_PENDING_KEPT if p.get("kept") else {}).get(str(p["state"])) or _PENDING_STATE[str(p["state"])]
        out.print(f"pending: {what} of {p['version']} ({p.get('dataset') or '-'}){by}: "
                  + words.format(version=p["version"], who="run" if p.get("run") else "command",
                                 dataset=p.get("dataset") or "-", kept=p.get("kept") or ""),
                  highlight=False, soft_wrap=True)


def previous_text(event: dict[str, Any]) -> str:
    """A `models history` line's words for its event's `previous`, which means what the action makes it: the model a
    promotion replaced and a rollback left ('from X'), the production model a withdrawal put back, the champion a
    withdrawn champion left, what a rollback puts back once a version is taken out of the stack. Every action read
    'from X': 'withdraw damped-v2 from naive-v1' (ui20) said naive-v1 was withdrawn from, where it was put back."""
    previous, action = event.get("previous"), event.get("action")
    if action == "withdraw":
        return f", production back to {previous}" if previous else ", production empty again"
    if not previous:
        return ""
    if action == "withdraw_champion":
        return f", champion now {previous}"
    if action == "retract":
        return f", a rollback now puts back {previous}"
    return f" from {previous}"


_SCORES = ("mase", "rmsse", "smape", "mae", "rmse", "coverage80", "coverage95", "msis")


def model_text(record: dict[str, Any]) -> list[str]:
    """`flowcast models show` for a person: one registered version's record (`ModelVersion.to_dict` plus
    `production_of`) as lines of plain text. It printed the raw JSON (the calibration's quantiles per step
    of every fallback model, a screenful for one statistical model) and nothing said in words when or on
    what the model was trained."""
    from flowcast.evaluation.metrics import metric_name

    fmt = lambda v: "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    recipe = record.get("recipe") or {}
    prod = record.get("production_of") or []
    lines = [f"{record['version']}: {record.get('kind') or 'network'} model of dataset "
             f"{record.get('dataset') or '(none)'}" + (" (in production)" if prod else " (not in production)"),
             f"  what it is: {record.get('description') or '-'}"]
    comps = list(recipe.get("components") or [])
    if comps:
        weights = list(recipe.get("weights") or [1.0 / len(comps)] * len(comps))
        lines.append("  members and weights:")
        for c, w in zip(comps, weights):
            if c.get("type") == "network":
                what = f"network {c.get('cell')}" + (f" seed {c['seed']}" if c.get("seed") is not None else "")
            else:
                what = f"statistical {c.get('model')}"
            lines.append(f"    {float(w):6.3f}  {what}")
        if recipe.get("weights_note"):
            lines.append(f"  weights: {recipe['weights_note']}")
    if recipe.get("fallback"):
        lines.append(f"  fallbacks for series it cannot forecast (first that can): {', '.join(recipe['fallback'])}")
    own = (recipe.get("intervals") or {}).get(str(record.get("name"))) or {}
    if own:  # a level with too few calibration points is never published (as `describe_recipe` says)
        few = [int(lv) for lv in (own.get("too_few") or {})]
        kept = [str(lv) for lv in own.get("levels", []) if int(lv) not in few]
        lines.append(f"  intervals: {'/'.join(kept) + '% ' + str(own.get('method', '')) if kept else 'none'}, "
                     f"calibrated on {own.get('n', '?')} backtest points"
                     + (f" (too few for {'/'.join(map(str, few))}%)" if few else ""))
    elif recipe.get("intervals_note"):
        lines.append(f"  intervals: none ({recipe['intervals_note']})")
    if recipe.get("horizon") is not None:
        lines.append(f"  horizon: {recipe['horizon']} periods"
                     + (f", season {recipe['season_length']}" if recipe.get("season_length") else ""))
    metrics = record.get("metrics") or {}
    scored = [f"{metric_name(k)} {fmt(metrics[k])}" for k in _SCORES if metrics.get(k) is not None]  # MASE, not mase
    lines.append("  backtest scores: " + (", ".join(scored) if scored else "none (not scored)")
                 + (f" (rank {metrics['rank']} of its leaderboard)" if metrics.get("rank") is not None else ""))
    fp = record.get("fingerprint") or {}
    as_of = record.get("as_of") or fp.get("as_of")
    lines.append(f"  trained on: source {fp.get('source') or record.get('dataset') or '?'}, data up to as_of "
                 f"{utc_text(as_of) if as_of else '-'} (data fingerprint {fp.get('fingerprint') or '-'})")
    cfg = record.get("config") or {}
    if any(c.get("type") == "network" for c in comps) or (not comps and record.get("kind", "network") == "network"):
        lines.append(f"  network: lookback {fmt(cfg.get('lookback'))}, hidden {fmt(cfg.get('hidden_size'))} x "
                     f"{fmt(cfg.get('num_layers'))} layers, {fmt(cfg.get('mode'))} mode, loss {fmt(cfg.get('loss'))}, "
                     f"max_steps {fmt(cfg.get('max_steps'))}")
    started = record.get("created_at")  # the start of the run that registered it (`run_identity`)
    lines.append((f"  registered by the run that started {recorded_text(started)}" if started else "  registered")
                 + f"; artifact {record.get('path')}")
    lines.append(f"  production of: {', '.join(prod)}" if prod else "  production of: none")
    for problem in record.get("damaged_files") or []:
        lines.append(f"  DAMAGED: {problem}")
    if record.get("damaged_files"):
        lines.append("  it cannot forecast: " + (f"roll production back (`flowcast models rollback --dataset {prod[0]}`) "
                                                 "or retrain (`flowcast run`); " if prod else "")
                     + f"`flowcast gc --version {record['version']} --yes` removes it once it is out of production")
    lines.append("  (--json: everything recorded, with the interval calibration and training configuration)")
    return lines


@models_app.command("promote")
@cli_errors
def models_promote(
    version: Annotated[str, typer.Argument(help="the version to put in production")],
    dataset: ModelDatasetOpt = None,
    expected: Annotated[str | None, typer.Option(
        "--expected", help="only if production is still this version ('none': no production model); "
        "fails, changing nothing, when it moved")] = None,
    reason: Annotated[str, typer.Option("--reason", help="why (kept in the promotion history)")] = "manual promotion",
    at: Annotated[str | None, typer.Option("--at", help="timestamp recorded with the promotion (ISO)")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Make VERSION the production model of its dataset (atomic pointer swap)."""
    from flowcast.registry import ANY
    from flowcast.shared import open_registry

    settings = resolve_settings(config=config, home=home)
    reg = open_registry(settings)
    target = dataset or reg.get(version).dataset
    before = _production_or_none(reg, target)
    want: Any = ANY if expected is None else (None if expected.lower() == "none" else expected)
    if before is not None and before.version == version:  # a retried promote (its first try killed after the swap)
        reg.sync_backup()
        _mirror_registry(settings)  # the copy on PostgreSQL may be one swap behind: bring it up to date
        console.print(f"production of {said(target)} is already {said(version)}: nothing changed", highlight=False)
        if json_out:
            emit_json({"dataset": target, "production": version, "previous": version})
        return
    try:
        mv = reg.promote(version, dataset=dataset, expected=want, reason=reason, at=_recorded_at(at))
    except ProductionMovedError as exc:  # its text is the retrain's ('moved while this run was deciding ...')
        raise ProductionMovedError(
            f"production of {target} is {before.version if before else 'none'}, not {expected} (--expected): "
            f"{version} was not promoted, nothing changed") from exc
    _mirror_registry(settings)
    console.print(f"production of {said(target)}: {said(before.version) if before else 'none'} -> "
                  f"[bold]{said(mv.version)}[/]", highlight=False, markup=True)
    if json_out:
        emit_json({"dataset": target, "production": mv.version, "previous": before.version if before else None})


@models_app.command("rollback")
@cli_errors
def models_rollback(
    dataset: ModelDatasetOpt = None,
    expected: Annotated[str | None, typer.Option(
        "--expected", help="roll back only if production is still this version; when a rollback from it is "
        "already the latest change (a retried command), nothing changes and it says so")] = None,
    reason: Annotated[str, typer.Option("--reason", help="why (kept in the promotion history)")] = "manual rollback",
    at: Annotated[str | None, typer.Option("--at", help="timestamp recorded with the rollback (ISO)")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Put the previous production version of the dataset back (with --expected V: only while production is
    V, so that a retried rollback does not roll back twice)."""
    from flowcast.registry import ANY
    from flowcast.shared import open_registry

    settings = resolve_settings(config=config, home=home)
    reg = open_registry(settings)
    before = _production_or_none(reg, dataset)
    if expected is not None and (before is None or before.version != expected):
        now = before.version if before else None
        target = dataset or (before.dataset if before else None)
        # its latest change of the pointer: a retrain's champion or kept production since moved nothing, nor did a
        # `retract` (a version taken out from under the top: a run's unpublished promotion, or one gc removed)
        from flowcast.registry import NO_POINTER_MOVE

        last = ([e for e in reg.history(target) if e.get("action") not in NO_POINTER_MOVE] or [{}])[-1] \
            if target else {}
        if last.get("action") == "rollback" and last.get("previous") == expected and last.get("version") == now:
            reg.sync_backup()  # a retry after a kill: the pointer's backup copy and the copy on PostgreSQL
            _mirror_registry(settings)  # may be one swap behind
            console.print(f"production of {said(target)} was already rolled back from {said(expected)} to "
                          f"{said(now)} ({last.get('at') or 'time not recorded'}): nothing changed", highlight=False)
            if json_out:
                emit_json({"dataset": target, "production": now, "previous": expected, "gone_past": []})
            return
        raise ProductionMovedError(
            f"production{f' of {target}' if target else ''} is {now or 'none'}, not {expected} (--expected), and its "
            f"latest change was not a rollback from {expected}: not rolled back, nothing changed")
    mv = reg.rollback(dataset=dataset, expected=ANY if expected is None else expected, reason=reason,
                      at=_recorded_at(at))
    _mirror_registry(settings)
    gone = _gone_past(reg.history(mv.dataset))
    console.print(f"production of {said(mv.dataset)}: {said(before.version) if before else 'none'} -> "
                  f"[bold]{said(mv.version)}[/] (rolled back"
                  + (f"; gone past {', '.join(said(v) for v in gone)}: {'they are' if len(gone) > 1 else 'it is'} gone "
                     "from the registry, removed by an older `flowcast gc` or by hand, and no longer in the production "
                     "stack" if gone else "") + ")", highlight=False, markup=True)
    if json_out:
        emit_json({"dataset": mv.dataset, "production": mv.version, "previous": before.version if before else None,
                   "gone_past": gone})


def _gone_past(history: list[dict[str, Any]]) -> list[str]:
    """The versions the rollback that is `history`'s last event went past (gone from the registry: its `retract`
    events, `registry.ROLLBACK_SKIPPED`), newest promotion first."""
    from flowcast.registry import ROLLBACK_SKIPPED

    out: list[str] = []
    for e in reversed(history[:-1]):
        if e.get("action") != "retract" or not str(e.get("reason") or "").startswith(ROLLBACK_SKIPPED):
            break
        out.append(str(e.get("version")))
    return out[::-1]


def _newest_published(settings: Any) -> dict[str, str]:
    """dataset -> the model version of its newest readable publish (what `models repair` points a
    dataset at when the pointer has no readable copy)."""
    from flowcast.store import open_store

    out: dict[str, str] = {}
    try:
        store = open_store(settings)
        names = store.datasets()
    except Exception:  # noqa: BLE001 - no store, nothing to derive from
        return out
    for name in names:
        for as_of in reversed(store.as_ofs(name)):
            try:
                version = store.receipt_of(name, as_of).get("model_version")
            except Exception:  # noqa: BLE001, S112 - a damaged publish: the one before it
                continue
            if version:
                out[name] = str(version)
                break
    return out


@models_app.command("repair")
@cli_errors
def models_repair(
    at: Annotated[str | None, typer.Option("--at", help="timestamp recorded with a re-derived pointer (ISO)")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Put back a damaged production pointer (production.json).

    From its copy production.backup.json, else each dataset's production model is the model of its newest publish.
    The damaged file is kept.
    A production version whose version.json cannot be read is taken out of production (the model before it
    is put back, or none: the next `flowcast run` promotes its best)."""
    from flowcast.shared import open_registry

    settings = resolve_settings(config=config, home=home)
    reg = open_registry(settings)
    res = reg.repair(newest=_newest_published(settings), at=_recorded_at(at))
    prods = ", ".join(f"{said(d)}: {said(v)}" for d, v in sorted(res["productions"].items())) or "none"
    if res["status"] == "withdrawn":
        taken = ", ".join(said(v) for v in res["withdrawn"])
        console.print(f"the production version {taken} could not be read ({said(res['problem'])}): taken out of "
                      f"production (its folder stays: `flowcast gc --version NAME --yes` removes it). Production: "
                      f"{prods}", highlight=False, markup=True)
        _mirror_registry(settings)
    elif res["status"] == "intact":
        if res.get("backup"):  # a repair killed before its copy's write left it as it was (faults42)
            console.print(f"the production pointer of {said(reg.location)} is intact (production: {prods}); its copy "
                          f"production.backup.json was {said(res['backup'])}: rewritten from it", highlight=False,
                          markup=True)
        else:
            console.print(f"the production pointer of {said(reg.location)} is intact (production: {prods}); nothing "
                          "changed", highlight=False, markup=True)
    else:
        how = ("put back from its copy production.backup.json" if res["status"] == "restored" else
               "re-derived from each dataset's newest publish (its copy could not be read either)")
        console.print(f"the production pointer was damaged ({said(res['problem'])}): {how}; the damaged file is "
                      f"kept as {said(res['damaged'])}. Production: {prods}", highlight=False, markup=True)
        _mirror_registry(settings)
    if json_out:
        emit_json(res)
