"""Validation: split mapped observations into valid rows and quarantined rows with reasons.

`validate(ingested, source, cfg)` collects the ingested plan once, evaluates the row-level checks
of `schemas.row_checks` (each row reports its first failure), then finds duplicate
(unique_id, ds) keys among the rows that passed: exact repeats keep their first row and the others are dropped,
counted apart (`rows_duplicate`: they lose nothing, so they are no bad rows and count toward no threshold),
conflicting values quarantine every row of the key (`duplicate_conflict`).
A source that declares `aggregate` (sum, mean, last) has several observations per period instead:
the rows that passed are combined into one row per (unique_id, period) (`aggregate_periods`), and
the report says how many rows went into how many periods (valid rows = rows in periods).
Quarantined rows carry their original raw values (read back from the source by row number),
`source_row`, `check` and `reason`. The counts always reconcile:
rows_in == rows_valid + rows_quarantined + rows_duplicate, where rows_in are the rows with ds <= as_of or an
unparsable time, plus the planned rows after as_of that carry declared future covariates
(`rows_planned`; their target is null, ingestion ignores it). The valid frame is canonical (unique_id, ds, y, covariates), sorted by
(unique_id, ds), and passes the pandera `Observations` model.

Dataset-level failures raise `DataValidationError` (exit code 2): empty input, nothing left
inside as_of; `enforce_thresholds` adds the quarantine-rate limit and "no valid rows".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandera.polars as pa
import polars as pl

from flowcast.atomic import atomic_write_parquet, clean_stale_temps
from flowcast.config import SourceConfig, ValidationConfig
from flowcast.data.calendar import is_business, is_subdaily, month_multiple, multiday_period, parse_freq
from flowcast.data.csv_text import first_invalid_utf8, first_overlong_row, not_utf8_error, record_lines
from flowcast.data.order import CHUNK, DsSteps, ds_steps, in_key_order, repeated_keys
from flowcast.data.panics import alone_said
from flowcast.data.periods import observed_at, period_over_at, planned_row, seen_shifts
from flowcast.data.schemas import (
    DAY_MONTH_RE,
    DS_OFFSET,
    DS_RAW,
    DS_SEEN,
    HEADER_REPEATED,
    MONTH_PHASE,
    NOTE_HINT,
    OFFSET_PEER,
    RAW_PREFIX,
    ROW,
    SUMMARY_RE,
    TIME_AWARE,
    TIME_PEER,
    TOTALS_ID_RE,
    UNSETTLED,
    WEEK_ANCHOR,
    WEEK_SINCE,
    WEEK_UNTIL,
    MappedObservations,
    Observations,
    day_end_hint,
    row_checks,
    usual_month_phase,
    weekly_anchor,
    weekly_switch,
    weekly_switch_from,
)
from flowcast.data.series_keys import columns_telling_apart
from flowcast.data.source_files import FILE_INDEX, file_format, read_steadily, unsaid
from flowcast.data.sources import (
    Ingested,
    ingest,
    seen_shifts_expr,
)
from flowcast.data.zones import local_times, time_label_note, zone_offset
from flowcast.distinct import per_distinct
from flowcast.errors import DataValidationError, SourceUnavailableError
from flowcast.mdtext import id_text, md_id, md_text
from flowcast.redaction import redact
from flowcast.timekeys import (
    offset_text_expr,
    utc_text,
    utc_text_expr,
    zone_text,
    zones_keeping,
)
from flowcast.wording import noun, plural

if TYPE_CHECKING:
    from polars._typing import EngineTypeName

_MAX_SLICES_PER_ROW = 1 / 500  # drop by slicing while at most this share of the rows go (each slice is a chunk)
_SUBDAILY = {"ns", "us", "ms", "s", "m", "h"}


@dataclass
class DataQualityReport:
    """What a run saw of its data; JSON-able (`to_dict`) and readable (`to_markdown`)."""

    source: str
    as_of: str | None
    rows_read: int = 0
    blank_lines: int = 0  # empty/whitespace-only CSV lines: not rows, skipped (not in rows_read)
    rows_after_as_of: int = 0
    rows_planned: int = 0  # of those, rows kept for their declared future covariates (planned values; y ignored)
    # of rows_after_as_of, those dated up to as_of in a period not over then (aggregate: the rest of it is to come)
    rows_partial_period: int = 0
    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    # exact repeats of an earlier row (same series, time, target and covariates; across the files of an aggregated
    # source, the same raw time too): dropped, one copy kept; not quarantined, not toward the threshold
    rows_duplicate: int = 0
    duplicate_example: str | None = None  # the first one, as `check_examples` says a row: 'source_row N (line ...): ...'
    checks: dict[str, int] = field(default_factory=dict)
    # per failed check, its first quarantined row: 'source_row 7: local time ... occurs twice ... declare ...'
    check_examples: dict[str, str] = field(default_factory=dict)
    # per failed check, the questions its rows' reasons ask ('a totals row?', 'a note line?'), the most frequent first,
    # at most 2: the run's summary asks them beside the check (`_check_hints`)
    check_hints: dict[str, list[str]] = field(default_factory=dict)
    n_series: int = 0
    n_series_excluded: int = 0
    excluded: list[dict] = field(default_factory=list)  # {unique_id, reason}
    # series whose every row was quarantined: not in `n_series`, never forecast ({unique_id, reason})
    series_quarantined: list[dict] = field(default_factory=list)
    ds_min: str | None = None
    ds_max: str | None = None
    undeclared_columns: list[str] = field(default_factory=list)
    wide_columns: list[str] = field(default_factory=list)  # a wide source: the columns read as series
    totals_series: list[str] = field(default_factory=list)  # valid series named as a totals row ('Total', 'Summe')
    zero_padded_ids: list[list[str]] = field(default_factory=list)  # valid ids equal but for leading zeros ('007', '7')
    case_ids: list[list[str]] = field(default_factory=list)  # ids equal but for letter case ('Store A', 'STORE A')
    # how a number column was read where its values did not prove it ('1.234' alone: 1234 or 1.234?), a note per file
    # (`decimals.DecimalPoints.settled`: 3 of a column, then how many more)
    number_notes: list[str] = field(default_factory=list)
    quarter_note: str | None = None  # times '2017-1' .. '2023-4' read as months: maybe quarters (`sources`)
    empty_covariates: list[str] = field(default_factory=list)  # declared covariates with no value on any valid row
    # declared covariates with one and the same value on every valid row (column -> that value)
    constant_covariates: dict[str, Any] = field(default_factory=dict)
    # undeclared columns that hold time zone names ('tz': 'Europe/Berlin'), with their zones: a zone is the source's
    # tz, never read from a column (`_zone_columns`)
    zone_columns: dict[str, list[str]] = field(default_factory=dict)
    # undeclared text columns that are no covariate, with what they look like: an id of series or rows, text that
    # changes within a series (`_not_covariates`); the ignored-columns note names them apart
    not_covariates: dict[str, str] = field(default_factory=dict)
    # sub-daily times written with the UTC offsets of a zone's daylight saving and no tz declared (`_offsets_zone`)
    offsets_zone: str | None = None
    quarantine_path: str | None = None
    files: list[str] = field(default_factory=list)
    rows_null_y: int = 0  # valid rows where the source had no value
    preprocess: dict[str, Any] = field(default_factory=dict)  # filled by add_preprocess
    freshness: dict[str, Any] = field(default_factory=dict)  # flowcast.data.freshness: latest_ds, periods_behind, ...
    # source.aggregate: valid rows finer than freq combined into one row per (unique_id, period)
    aggregate: str = "none"
    periods: int = 0  # rows of the valid frame: one per (unique_id, ds); == rows_valid without aggregation
    rows_aggregated: int = 0  # valid rows that shared their period with others
    periods_aggregated: int = 0  # periods made of several rows
    periods_with_quarantined_rows: int = 0  # periods that also had a quarantined row (an aggregate without it)
    freq: str | None = None  # the source's: sub-daily ds are UTC instants, coarser ones calendar dates
    tz: str | None = None  # the source's declared zone (as_of is cut on its wall time / calendar)
    time_label: str = "start"  # the source's: "end" when its times label interval ends (ingest shifted them back)
    time_label_note: str | None = None  # ... and what ingest did, in one sentence (`zones.time_label_note`)

    @property
    def rows_unseen(self) -> int:
        """The rows dated after as_of that a run does not read (not in rows_in): those after it less the planned rows
        kept for their future covariates (with an aggregated source's rows of a period not over at as_of)."""
        return self.rows_after_as_of - self.rows_planned

    @property
    def quarantine_rate(self) -> float:
        return self.rows_quarantined / self.rows_in if self.rows_in else 0.0

    @property
    def reconciled(self) -> bool:
        """rows in = valid + quarantined + exact duplicates dropped, and every valid row went into exactly one period."""
        into_periods = self.periods - self.periods_aggregated + self.rows_aggregated
        return (self.rows_in == self.rows_valid + self.rows_quarantined + self.rows_duplicate
                and into_periods == self.rows_valid)



    def add_preprocess(self, summary: Any) -> None:
        """Fold a preprocess.PreprocessSummary in: excluded series and what preprocessing did."""
        self.excluded = list(summary.excluded)
        self.n_series_excluded = len(self.excluded)
        self.preprocess = summary.to_dict()

    def _preprocess_lines(self) -> list[str]:
        """Imputed points (not observations: never scored) and the horizon's planned covariates."""
        p = self.preprocess
        if not p:
            return []
        imputed = (f"points imputed (gaps filled by preprocessing; not scored in backtests or realized accuracy): "
                   f"{int(p.get('rows_imputed', 0)):,} of {int(p.get('rows_out', 0)):,}")
        lines = ["", imputed]
        if p.get("freq_hint"):
            lines.append(f"frequency: {p['freq_hint']}")
        if p.get("tz_hint"):
            lines.append(f"time zone: {p['tz_hint']}")
        if cut := p.get("gap_cut"):
            lines.append(gap_cut_line(cut, int(p.get("rows_before_gap") or 0)))
        if off := p.get("log1p_disabled"):
            lines.append(log1p_off_line(list(off), p.get("n_series_out")))
        lines += static_varying_lines(p.get("static_varying"))
        for col, v in (p.get("static_as_text") or {}).items():
            lines.append(md_text(
                f"static column {col!r} is read as categories (one 0/1 column per value, its magnitudes lost): "
                f"{int(v['values']):,} of {int(v['of']):,} series' values are not numbers (e.g. {v['example']!r}); "
                "write the numbers alone, and a missing one as an empty cell or NA"))
        filled = {k: int(v) for k, v in (p.get("covariates_filled") or {}).items()}
        if filled:
            lines.append(covariates_filled_line(filled, p.get("future_fill")))
        missing = {k: int(v) for k, v in (p.get("future_missing") or {}).items()}
        if missing:
            total, expected = sum(missing.values()), int(p.get("future_expected", 0))
            lines.append(
                f"future-known covariates on the horizon: {int(p.get('future_exog_rows', 0)):,} planned rows; "
                + (f"not planned: {', '.join(f'{k}: {v:,} of {expected:,}' for k, v in missing.items())} values (series x "
                   f"steps; {int(p.get('future_missing_series', 0)):,} series{future_examples(p.get('future_missing_examples'))}), "
                   f"filled by future_fill = {p.get('future_fill')!r}{FUTURE_ADVICE}{never_planned(missing, expected)}"
                   if total else "every horizon value planned")
            )
        return lines

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["files"] = [redact(f) for f in self.files]  # a URL's password or token: the report is shown and kept
        d["quarantine_rate"] = round(self.quarantine_rate, 6)
        d["reconciled"] = self.reconciled
        return json.loads(json.dumps(d, default=str))

    def summary_sentence(self) -> str:
        """What a person reads first: rows in, valid (and how many of them have no target value),
        quarantined, series."""
        return (f"**{self.rows_in:,} rows in: {self.rows_valid:,} valid, of which {self.rows_null_y:,} without a "
                f"target value; {self.rows_quarantined:,} quarantined ({self.quarantine_rate:.2%})"
                f"{'; ' if self.rows_duplicate else ''}{duplicates_said(self.rows_duplicate, self.rows_valid)}; "
                f"{self.n_series:,} series.**")

    def _hints_said(self, check: str) -> str:
        """' (a totals row? a note line?)': the questions the rows of `check` ask (`check_hints`, built by
        `_check_hints`), as `checks_counted` says them, less one its example already asks; '' where none is left."""
        asked = check_questions(self.check_hints.get(check, []), self.check_examples.get(check, ""))
        return f" ({asked})" if asked else ""

    def _range_text(self) -> str:
        """'2022-01-01 .. 2024-12-01' for dates; '2024-03-25 00:00 .. 2024-04-07 23:00 (UTC)' for instants
        (sub-daily ds are UTC instants, whatever the source's tz: it read '00:00:00 .. 23:00:00' unlabelled)."""
        if self.ds_min is None or self.ds_max is None:
            return "- (no valid row)"
        ends = (self.ds_min, self.ds_max)
        # by the frequency when known: hourly data starting and ending on 00:00 UTC is not dates
        dates = not is_subdaily(self.freq) if self.freq else all(e.endswith(" 00:00:00") for e in ends)
        if dates:
            return " .. ".join(e.removesuffix(" 00:00:00") for e in ends)
        return " .. ".join(e.removesuffix(":00") if len(e) == 19 else e for e in ends) + " (UTC)"

    def _as_of_local(self) -> str:
        """' (2020-01-02 19:00 -05:00 America/New_York: the source's tz)': the wall time the rows were cut on, written
        as `timekeys.utc_text` writes one (it read '2020-01-02 19:00 in America/New_York', a form of its own)."""
        if not self.as_of or not self.tz or self.tz == "UTC":
            return ""
        return f" ({zone_text(self.as_of, self.tz)}: the source's tz)"

    def _as_of_said(self) -> str:
        """'as_of (UTC): 2020-01-03' as the leaderboard and realized accuracy write it (`timekeys.utc_text`; it
        read '2020-01-03T00:00:00+00:00'), 'as_of: everything' for a run that sees every row."""
        return f"as_of (UTC): {utc_text(self.as_of, zone=False)}" if self.as_of else "as_of: everything"

    def _freshness_to(self) -> str:
        """What the staleness is measured to: as_of, or the time `flowcast validate` ran without one."""
        measured = self.freshness.get("measured_at")
        return f"now ({utc_text(str(measured))})" if measured else "as_of"

    def to_markdown(self) -> str:
        # (its files redacted here, the only guard: an artifact goes to Prefect as written, and `flowcast validate`
        # prints it)
        lines = [
            f"## Data quality: {self.source}",
            "",
            self.summary_sentence(),
            "",
            f"{self._as_of_said()}{self._as_of_local()}; files: {', '.join(map(redact, self.files)) or '-'}",
            *(["", self.time_label_note] if self.time_label_note else []),
            "",
            "| metric | value |",
            "| --- | ---: |",
            f"| rows read | {self.rows_read:,} |",
            *([f"| blank lines (not rows, skipped) | {self.blank_lines:,} |"] if self.blank_lines else []),
            f"| rows after as_of (outside this run) | {self.rows_unseen:,} |",
            *([(f"| rows after as_of kept for planned future covariates (target ignored; in rows in) | "
                f"{self.rows_planned:,} |")] if self.rows_planned else []),
            # of both lines above: a partial period's rows with a planned covariate are kept for it ("of which"
            # under the first line read "0 ... of which 6" on the README's [sources.my_sales] example)
            *([(f"| of the rows after as_of above, in a period not over at as_of (its rows wait until it ends) | "
                f"{self.rows_partial_period:,} |")] if self.rows_partial_period else []),
            f"| rows in | {self.rows_in:,} |",
            f"| rows valid | {self.rows_valid:,} ({self.rows_null_y:,} without a target value) |",
            *([f"| exact duplicate rows dropped (one copy kept) | {self.rows_duplicate:,} |"] if self.rows_duplicate
              else []),
            *([(f"| valid rows aggregated ({self.aggregate}) into shared periods | {self.rows_aggregated:,} "
                f"into {self.periods_aggregated:,} periods |"),
               f"| periods (one row per series and period) | {self.periods:,} |",
               f"| periods that also had quarantined rows | {self.periods_with_quarantined_rows:,} |"]
              if self.aggregate != "none" else []),
            f"| rows quarantined | {self.rows_quarantined:,} ({self.quarantine_rate:.2%}) |",
            f"| series | {self.n_series:,} |",
            *([f"| series with every row quarantined (not forecast) | {len(self.series_quarantined):,} |"]
              if self.series_quarantined else []),
            f"| series excluded by preprocessing | {self.n_series_excluded:,} |",
            *([f"| series too short for a network (statistical models forecast them) | {short:,}"
               + (f" ({some_named(short, ids, md_id)})" if (ids := self.preprocess.get("network_short_ids")) else "")
               + " |"]
              if (short := int(self.preprocess.get("network_short") or 0)) else []),
            f"| date range | {self._range_text()} |",
            *([f"| periods from the latest observation to {self._freshness_to()} | {self.freshness['periods_behind']:,} |"]
              if self.freshness.get("periods_behind") is not None else []),
            *([(f"| series ended more than a horizon before the latest observation | "
                f"{self.freshness['series_ended']:,} ({_named(self.freshness['series_ended'], self.freshness.get('ended', []))})"
                + (f"; {aside:,} set aside, not forecast (ended_series = exclude)"
                   if (aside := int(self.freshness.get("series_ended_excluded") or 0)) else "") + " |")]
              if self.freshness.get("series_ended") else []),
            *([(f"| series of the last publish not in the data (no forecast this time) | "
                f"{self.freshness['series_lost']:,} ({_named(self.freshness['series_lost'], self.freshness.get('lost', []))}) |")]
              if self.freshness.get("series_lost") else []),
            "",
            (f"rows in = valid + quarantined{' + exact duplicates dropped' if self.rows_duplicate else ''}"
             f"{' (valid = rows that went into periods)' if self.aggregate != 'none' else ''}: "
             f"{'yes' if self.reconciled else 'NO'}"),
            *(["", md_text(f"exact duplicates dropped, e.g. {self.duplicate_example}")]
              if self.duplicate_example else []),
        ]
        lines += self._preprocess_lines()
        if self.checks:
            # with an example of each: the reason (and what to do) was only in the quarantine file, so a report of
            # 'time_ambiguous | 2' never said that the source's ambiguous setting would keep those rows. A list, not a
            # table: the UI does not wrap a table's cells, and cut the example and its advice at the page's edge (ui31)
            lines += ["", "Failed checks (the rows quarantined), each with its first row:", ""]
            # with the questions its rows ask ('a totals row?', `_check_hints`), as the run's summary and log ask them:
            # the first row of '2020-13-01' named, the totals row below it was not (wordsB46)
            lines += [f"- **{md_text(k)}**: {plural(v, 'row')}{md_text(self._hints_said(k))}"
                      + (f", e.g. {md_text(e)}" if (e := self.check_examples.get(k)) else "")
                      for k, v in sorted(self.checks.items(), key=lambda kv: -kv[1])]
        if self.quarantine_path:
            lines += ["", f"quarantined rows: `{self.quarantine_path}`"]
        if self.undeclared_columns:
            lines += ["", ignored_columns_line(self.undeclared_columns, self.not_covariates)]
        if self.offsets_zone:
            lines += ["", f"time zone: {self.offsets_zone}"]
        if self.zone_columns and (zones := zone_columns_line(self.zone_columns, self.tz)):
            lines += ["", zones]
        if self.wide_columns:
            lines += ["", wide_columns_line(self.wide_columns)]
        if self.totals_series:
            lines += ["", totals_series_line(self.totals_series)]
        if self.zero_padded_ids:
            lines += ["", md_text(zero_padded_ids_line(self.zero_padded_ids))]
        if self.case_ids:
            lines += ["", md_text(case_ids_line(self.case_ids))]
        for note in self.number_notes:
            lines += ["", md_text(f"numbers: {note}")]
        if self.quarter_note:
            lines += ["", md_text(f"times: {self.quarter_note}")]
        if self.empty_covariates:
            lines += ["", md_text(empty_covariates_line(self.empty_covariates))]
        if self.constant_covariates:
            lines += ["", md_text(constant_covariates_line(self.constant_covariates))]
        from flowcast.data.freshness import ended_forecast_sentence

        if (ended := ended_forecast_sentence(self.freshness, self.freq)) is not None:
            lines += ["", md_text(ended)]
        excluded = [*self.series_quarantined, *self.excluded]
        if excluded:  # a list, not a table: the UI does not wrap a table's cells, and cut the reasons off
            lines += ["", "Excluded series (not forecast) and why:", ""]
            lines += [f"- **{md_text(e['unique_id'])}**: {md_text(e['reason'])}" for e in excluded[:50]]
            if len(excluded) > 50:
                lines.append(f"- ... and {len(excluded) - 50:,} more")
        return "\n".join(lines)


def planned_said(rows_planned: int) -> str:
    """' (45 of them planned: after as_of, kept for their future covariates)' after a count of rows in, where some
    are (`DataQualityReport.rows_planned`): the CLI's summary (`counts_said`) and the run log's 'Validation:' line
    say it alike; '' where none are."""
    return f" ({rows_planned:,} of them planned: after as_of, kept for their future covariates)" if rows_planned else ""


def after_as_of_said(rows_after: int, as_of_text: str, partial: bool) -> str:
    """'; 156 rows dated after as_of 2024-03-01 not seen by this run' where a file holds rows a run at as_of does not
    read (`rows_after`: those after it less the planned rows kept; `partial`: an aggregated source counts the rows of
    its period not over at as_of with them), '' where none: the run log's 'Validation:' line and the CLI's summary
    (`cli.pipeline.unseen_said`) say them alike (newuser50a: `flowcast run --as-of` of a 400-row file printed 'rows in 244' and no
    word of the other 156)."""
    if rows_after <= 0:
        return ""
    return (f"; {plural(rows_after, 'row')} {'' if partial else 'dated '}after as_of {as_of_text} not seen "
            f"by this run{' (dated after it, or in a period not over then)' if partial else ''}")


def duplicates_said(rows_duplicate: int, rows_valid: int) -> str:
    """'3 exact duplicates dropped (one copy kept)' ('...; every row repeated: the file looks appended twice)' where
    (nearly) every valid row had one), '' where none was: the data-quality summary, the run log's 'Validation:' line
    and the CLI's summary (`counts_said`) say them alike, after the quarantined rows."""
    if not rows_duplicate:
        return ""
    twice = "; every row repeated: the file looks appended twice" if rows_duplicate >= 0.95 * rows_valid > 0 else ""
    return f"{rows_duplicate:,} exact {noun(rows_duplicate, 'duplicate')} dropped (one copy kept{twice})"


def some_named(n: int, shown: Sequence[Any], fmt: Callable[[Any], str] = id_text) -> str:
    """'a, b' where `shown` names all `n`, 'a, b, c, d, e and 3 more' where it names the first of them (`fmt`
    writes each: `id_text`, quoted where a comma in it would split the list; `md_id` in a markdown artifact)."""
    return ", ".join(fmt(u) for u in shown) + (f" and {n - len(shown):,} more" if n > len(shown) else "")


def _named(n: int, shown: list[str]) -> str:
    """'S5' when `shown` names all `n` series, 'e.g. a, b' when it is a sample of them."""
    names = ", ".join(md_id(u) for u in shown)
    return names if len(shown) >= n else f"e.g. {names}"


@dataclass
class ValidationResult:
    valid: pl.DataFrame  # canonical: unique_id, ds, y, declared covariates; sorted by (unique_id, ds)
    quarantined: pl.DataFrame  # source_row, raw columns (original names and values), check, reason
    report: DataQualityReport
    # what to check when duplicates dominate (`_duplicate_hint`); enforce_thresholds adds it to its error
    hint: str = ""
    # unique_id, ds, offset, cut: where daily times were written with an offset, the offset each period observed was
    # written in and the instant it was observed from (`periods.seen_shifts`); None where none was (realized accuracy and the production model's
    # training cut, `evaluation.realized.observed_through_series`)
    shifts: pl.DataFrame | None = None


# ------------------------------------------------------------------------------------ helpers
# what an I/O failure looks like in a reader's error (object store or local file): it may pass,
# unlike bad data (os errors: 5 EIO, 104 ECONNRESET, 110 ETIMEDOUT, 111 ECONNREFUSED)
_IO_FAILURE = re.compile(
    r"connection (reset|refused|closed|aborted)|timed? ?out|broken pipe|temporarily unavailable|"
    r"service unavailable|too many requests|\b(500|502|503|504|429)\b|os error (5|104|110|111)\)",
    re.IGNORECASE,
)


def no_rows_error(ingested: Ingested, blank_lines: int = 0) -> DataValidationError:
    """A source that holds no row, said as is true of its files: a CSV file has a header but no data (and maybe
    `blank_lines`), a Parquet or Arrow IPC file its columns but no rows (it was told it had a header too)."""
    return no_rows_said(ingested.label, {file_format(ingested.source, f) for f in ingested.files},
                        len(ingested.files), blank_lines)


def no_rows_said(label: str, kinds: set[str], files: int, blank_lines: int = 0) -> DataValidationError:
    """`no_rows_error` of the source `label`, its `files` files of the formats `kinds` ('csv', 'parquet', 'ipc')."""
    several = files > 1
    if kinds == {"csv"}:
        blanks = f", only {plural(blank_lines, 'blank line')}" if blank_lines else ""
        what = f"{'each file has' if several else 'the file has'} a header but no data{blanks}"
    else:
        kind = " or ".join(sorted({"parquet": "Parquet", "ipc": "Arrow IPC"}.get(k, "CSV") for k in kinds))
        what = (f"its {files} {kind} files have their columns but no rows" if several
                else f"the {kind} file has its columns but no rows")
    return DataValidationError(f"{label}: no rows ({what})")


def _collect(plans: list[pl.LazyFrame], ingested: Ingested, engine: EngineTypeName = "auto") -> list[pl.DataFrame]:
    """collect_all (by `engine`), turning read errors (bad UTF-8, malformed CSV) into DataValidationError and
    I/O failures of the reader (a connection reset, a timeout, HTTP 5xx from an object store)
    into SourceUnavailableError (retried by the validate task). A panic of polars itself (a PanicException, which is
    no Exception: it reached the user as a Rust backtrace and a traceback) is a DataValidationError naming the file
    and what to try (`panics.panic_error`). An error of a glob or folder names its file that fails read alone, as a
    panic does (`Ingested.failing_file`, after the error only): polars reads a file:// glob's cut Parquet file with a
    ComputeError naming none ('expected parquet magic bytes ...'), and a local glob's file cut under its scan too."""
    try:
        with ingested.panics_named():
            return pl.collect_all(plans, engine=engine)
    except (pl.exceptions.PolarsError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        gone = isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError))
        if not gone and (isinstance(exc, OSError) or _IO_FAILURE.search(" ".join(str(exc).split()))):
            raise SourceUnavailableError(f"reading {ingested.label} failed: {' '.join(str(exc).split())}") from exc
        if "utf-8" in msg.lower() or "utf8" in msg.lower():
            for f in ingested.files:
                if "://" in f or f.lower().endswith((".parquet", ".pq", ".parq")):
                    continue
                bad = first_invalid_utf8(f)
                if bad:
                    raise not_utf8_error(f, bad) from exc
        if "more fields than defined" in msg and (overlong := overlong_row_error(ingested.files, ingested.source)):
            raise overlong from exc
        raise DataValidationError(f"cannot read {ingested.label}: {msg}{alone_said(ingested.failing_file())}") from exc


def overlong_row_error(files: Sequence[str], source: SourceConfig) -> DataValidationError | None:
    """The error for polars' "found more fields than defined in 'Schema'", which said neither where nor why: the
    first row of a local CSV file among `files` longer than its header, its line and text, and what makes one: a
    value holding the separator unquoted ('$1,200.00'), or, where the fields beyond the header are empty, a
    separator ending each line that the header lacks (newuser47: a TSV's rows ending with a tab, its header not, was
    told of unquoted values, and before a run, the command guessing its columns, polars' error as it was). None
    where no such row is found."""
    for f in files:
        if "://" in f or file_format(source, f) != "csv":
            continue
        if found := first_overlong_row(f, source.separator):
            line, n, header, text = found
            extra = n - header
            trailing = len(text) >= extra and len(set(text[-extra:])) == 1 and text[-1] in "\t,;|"
            mark = "a tab" if text.endswith("\t") else repr(text[-1:])
            why = (f"each line ending with {mark}, a separator its header does not end with? (remove it from the "
                   "lines, or end the header with it too)" if trailing
                   else "a value holding the separator without quotes? ('$1,200.00', 'Widget, large': quote such "
                   "values, or export without thousands separators)")
            return DataValidationError(f"{f}: line {line} has {n} fields where the header has {header} "
                                       f"({text[:120]!r}): {why}")
    return None


def _canonical_cols(ingested: Ingested) -> list[str]:
    src = ingested.source
    extra = [*src.past_cols, *src.future_cols, *[c for c in src.static_cols if c not in ingested.numeric_exog]]
    return ["unique_id", "ds", "y", *dict.fromkeys(extra)]


def _time_shown(column: pl.Expr, freq: str | None, tz: str | None, offset: pl.Expr | None = None) -> pl.Expr:
    """A time of a reason as every time reads (`timekeys.utc_text`): a sub-daily instant its UTC clock ('2020-01-01
    06:00 UTC', a midnight its date), and where the source has a `tz` its wall time there with the offset ('2023-10-29
    01:00 UTC (2023-10-29 02:00 +01:00 Europe/Berlin)': it said UTC alone); a daily or coarser one a calendar's date,
    its time of day where it has one without seconds that are zero ('2020-01-02 09:00': it read '09:00:00'), a time
    of day of a source with a `tz` (its wall time there) followed by its offset there ('2024-01-02 09:00 +01:00', or
    the zone where the wall time names no instant or two, at a change of daylight saving: it read '09:00 / 15:00'
    without a zone, where a time written with an offset shows it, `_written_time_shown`; `offset`: the offset each
    was at, where known, `_written_offset`)."""
    if freq is not None and is_subdaily(freq):
        return utc_text_expr(column, tz)
    shown = utc_text_expr(column, zone=False)  # a calendar's date (its time of day, where it has one, has no zone)
    if tz is None:
        return shown
    there = column.dt.replace_time_zone(tz, ambiguous="null", non_existent="null").dt.to_string("%:z")
    zone = pl.when(column.dt.time() != time(0)).then(pl.coalesce(
        *([] if offset is None else [offset_text_expr(offset)]), there, pl.lit(tz)))
    return pl.concat_str([shown, zone], separator=" ", ignore_nulls=True)


def _period_shown(freq: str | None, tz: str | None = None) -> pl.Expr:
    """A key's ds in a reason as the source's periods read: a date as a date ('2024-01-05', not
    '2024-01-05 00:00:00'), a month, quarter or year as the period it starts ('the 1mo period from
    2024-01-01': month-end rows are aligned to it), a sub-daily instant as every instant reads (`_time_shown`:
    '2020-01-01 06:00 UTC', a midnight its date, with its wall time in the source's `tz`; it read '2020-01-01 00:00:00
    UTC', seconds always)."""
    shown = _time_shown(pl.col("ds"), freq, tz)
    if freq is not None and parse_freq(freq)[1] in ("mo", "q", "y"):
        return pl.format("the {} period from {}", pl.lit(freq), shown)
    return shown


WRITTEN_TIME = "__written_time"  # an end-labelled source's time as written, for the reasons of its duplicates


def _time_peers(ingested: Ingested, plain: bool, offset: bool) -> tuple[str | None, str | None]:
    """Times of the source's column that read, as written, not day/month dates, in one pass (None where there is
    none or it is not asked for): with `plain`, one ('2023-01-04'), what an unreadable '05/01/2023' among such times
    is to be written like (`schemas.TIME_PEER`); with `offset`, one written with a UTC offset
    ('2024-07-01T09:00:00+01:00'), beside which a time without one is not read (`schemas.OFFSET_PEER`)."""
    raw = RAW_PREFIX + ingested.source.time_col
    if not (plain or offset) or raw not in ingested.frame.collect_schema().names():
        return None, None
    text = pl.col(raw).cast(pl.Utf8).str.strip_chars()
    times = (ingested.frame.filter(pl.col(DS_RAW).is_not_null())
             .select(text.alias("t"), (pl.col(TIME_AWARE) if offset else pl.lit(False)).alias("aware"))
             .filter(pl.col("t").is_not_null() & ~pl.col("t").str.contains(DAY_MONTH_RE)))
    if not offset:  # the first such time alone: the scan stops there
        got = times.head(1).collect()
        return (str(got["t"][0]) if got.height else None), None
    first, aware = times.select(pl.col("t").first() if plain else pl.lit(None, pl.Utf8),
                                pl.col("t").filter(pl.col("aware")).first().alias("aware")).collect().row(0)
    return (None if first is None else str(first)), (None if aware is None else str(aware))


def _written_time(ingested: Ingested) -> list[pl.Expr]:
    """The time of each row as written (stripped text; a parsed time as a date, or a date and time), for an
    end-labelled source that is not aggregated (its duplicates' reasons name it: `_duplicates_in_order`); none
    for others."""
    source = ingested.source
    if source.time_label == "start" or source.aggregate != "none" or ingested.raw is None:
        return []
    col = pl.col(RAW_PREFIX + source.time_col)
    dtype = ingested.raw.collect_schema().get(RAW_PREFIX + source.time_col)
    if dtype == pl.Utf8:
        text = col.str.strip_chars()
    elif isinstance(dtype, pl.Datetime):  # its clock as stored, no zone: a date alone at midnight
        text = utc_text_expr(col, zone=False)
    else:
        text = col.cast(pl.Utf8)
    return [text.alias(WRITTEN_TIME)]


def _written_offset(frame: pl.DataFrame, freq: str | None, tz: str | None = None) -> pl.Expr | None:
    """The UTC offset beside each daily or coarser time of `frame`, where any has one (`DS_OFFSET`), for
    `_duplicates_in_order` to tell times apart and show them: without a tz, the offset it was written in (its `DS_RAW`
    the wall time as written, the offset dropped); with one (`DS_OFFSET`: the zone's offset at the instant of a time
    written with one, not the offset written, `Ingested.zone_offsets`; its `DS_RAW` the wall time there), where `tz` is
    passed, a time written without one takes the zone's offset at its wall time, null where that is two instants or
    none (the repeated autumn hour's 02:30: shown with the zone's name; not passed, null for every such time, which
    told 09:00 and 09:00 +01:00 apart). Null for a time at midnight, a date written as a timestamp, which is that date
    whatever its offset. None where no row has one, or for sub-daily times (instants). Overlapping files of a tz
    compare instants, not this (`_overlap_repeats`). Two rows of one day at 09:00 +01:00 and 09:00 -05:00 are two
    times: compared by their wall time alone they were one row written twice, one dropped, and 09:00 +01:00 beside
    08:00 +00:00 read '09:00 / 08:00', the offsets that tell why left out; so were Berlin's 02:30 +02:00 and 02:30
    +01:00 of an autumn night, an hour apart."""
    if (freq is not None and is_subdaily(freq)) or DS_OFFSET not in frame.columns or DS_RAW not in frame.columns:
        return None
    if frame.select(pl.col(DS_OFFSET).is_null().all()).item():
        return None
    written = pl.col(DS_OFFSET)
    if tz is not None:
        # the zone's offset at each wall time: its instant read once a time (`per_distinct`), the rows share them
        instant = per_distinct(pl.col(DS_RAW), lambda wall: wall.dt.replace_time_zone(
            tz, ambiguous="null", non_existent="null").dt.convert_time_zone("UTC").dt.replace_time_zone(None))
        written = pl.coalesce(written, pl.col(DS_RAW) - instant)
    return pl.when(pl.col(DS_RAW).dt.time() != time(0)).then(written).alias("__offset")


def _written_time_shown(column: pl.Expr, offset: pl.Expr | None, freq: str | None, tz: str | None) -> pl.Expr:
    """`_time_shown` of a time as read, followed by the UTC offset it was written in where `_written_offset` has one
    ('2024-01-02 09:00 +01:00'; with a `tz`, in place of the zone's: '2023-10-29 02:30 +01:00', not 'Europe/Berlin',
    the wall time of two instants)."""
    if offset is None:
        return _time_shown(column, freq, tz)
    if tz is not None:
        return _time_shown(column, freq, tz, offset)
    return pl.concat_str([_time_shown(column, freq, tz), offset_text_expr(offset)], separator=" ", ignore_nulls=True)


def _duplicates_in_order(frame: pl.DataFrame, eligible: pl.Expr, repeat: pl.Series | None = None,
                         freq: str | None = None, covariates: Sequence[str] = (), dst: bool = False,
                         aside: pl.LazyFrame | None = None, tz: str | None = None) -> pl.DataFrame:
    """Duplicate keys among the `eligible` rows of a frame sorted by (unique_id, ds); returns the rows
    to quarantine (source_row, check, reason). Exact repeats keep their first row; keys with
    different y values, or different values of a past/future covariate (`covariates`), lose every
    row, the reason naming the columns that differ (rows equal in y whose temperature or planned
    price differed were called a 'repeat with the same y' and the first row's value kept, silently
    preferred to a correction written after it). Ineligible rows in between do not hide a
    duplicate: in sorted order everything between two rows of one key has that key. `repeat`: the
    frame's `order.repeated_keys` when already known; `freq` and `tz`: the source's, for the reason's period and times
    (`_time_shown`). A frame with
    `WRITTEN_TIME` (an end-labelled source's times as written: `_written_time`) names each key by them, not by the
    period start ingest moved them to (a time nowhere in the file). `aside`: the source's undeclared columns as read
    (ROW and `RAW_PREFIX` columns, the ingest's plan), read for the rows of repeated keys alone: the frame does not
    hold them (two wide text columns of 1M rows held 40 to 110 MB more at validation's peak for a reason that names
    them only where a key is written twice)."""
    keys = ["unique_id", "ds"]
    empty = pl.DataFrame(schema={ROW: pl.UInt32, "check": pl.Utf8, "reason": pl.Utf8})
    repeat = repeated_keys(frame) if repeat is None else repeat  # rows whose key equals the row before
    if repeat.len() == 0:
        return empty
    rows = pl.concat([repeat - 1, repeat]).unique().sort()  # both rows of every such pair, in frame order
    dups = frame[rows].filter(eligible)
    if dups.height == 0:
        return empty
    if aside is not None:
        read = aside.filter(pl.col(ROW).is_in(dups[ROW].implode())).collect(engine="streaming")
        dups = dups.join(read, on=ROW, how="left", maintain_order="left")
    # the time as read, before it was aligned to the period (`DS_RAW`), and the undeclared columns as read
    # (`RAW_PREFIX`), where the frame has them: two observations of one period (09:00 and 15:00 of a daily series), or
    # rows of two skus of one store, are no row written twice, equal as their y may be (revC43)
    main = ["y", *[c for c in dict.fromkeys(covariates) if c in dups.columns and c != "y"]]
    values = [*main, *[c for c in dups.columns if c == DS_RAW or c.startswith(RAW_PREFIX)]]
    named = [("time" if c == DS_RAW else c.removeprefix(RAW_PREFIX)) for c in values]
    offset = _written_offset(dups, freq, tz)
    if offset is not None:  # a column first: read in the windows over keys below, it was computed once a key
        dups = dups.with_columns(offset)
        offset = pl.col("__offset")
    dups = dups.with_columns(
        *[((pl.struct(c, offset) if c == DS_RAW and offset is not None else pl.col(c)).n_unique().over(keys) > 1)
          .alias(f"__differs{i}") for i, c in enumerate(values)],
        pl.int_range(pl.len()).over(keys).alias("__pos"),
        pl.len().over(keys).alias("__n"),
    )
    conflict = pl.any_horizontal([pl.col(f"__differs{i}") for i in range(len(values))])
    if len(values) > len(main):  # the times and undeclared columns are named where no value differs (the values
        # say the conflict otherwise)
        told = ~pl.any_horizontal([pl.col(f"__differs{i}") for i in range(len(main))])
        dups = dups.with_columns([(pl.col(f"__differs{i}") & told).alias(f"__differs{i}")
                                  for i in range(len(main), len(values))])
    differ = pl.concat_str([pl.when(pl.col(f"__differs{i}")).then(pl.lit(c)) for i, c in enumerate(named)],
                           separator=", ", ignore_nulls=True)
    shown_n = pl.sum_horizontal([pl.col(f"__differs{i}").cast(pl.UInt32) for i in range(len(values))])
    # the values that differ, as read (the first 3 of each column): a reader compared the rows in the file by hand
    text = [(_written_time_shown(pl.col(c), offset, freq, tz) if c == DS_RAW else pl.col(c).cast(pl.Utf8))
            .fill_null("empty").unique(maintain_order=True) for c in values]
    seen = pl.concat_str([pl.when(pl.col(f"__differs{i}")).then(pl.concat_str([
        pl.when(pl.lit(len(main) > 1) | (shown_n > 1)).then(pl.lit(f"{c} ")).otherwise(pl.lit("")), t.head(3).str.join(" / ").over(keys),
        pl.when(t.len().over(keys) > 3).then(pl.lit(" / ...")).otherwise(pl.lit(""))]))
        for i, (c, t) in enumerate(zip(named, text, strict=True))], separator="; ", ignore_nulls=True)
    shown = _period_shown(freq, tz)
    if WRITTEN_TIME in dups.columns:  # an end-labelled source's key as the user wrote it, then the period it is read as
        period = shown if freq is not None and parse_freq(freq)[1] in ("mo", "q", "y") else pl.format(
            "the {} period from {}", pl.lit(freq), shown)
        written = pl.col(WRITTEN_TIME).unique(maintain_order=True).head(3).str.join(" / ").over(keys)
        shown = pl.format("{}: {}", written, period)
    # (not for an end-labelled source's: `WRITTEN_TIME` names both times, and the one period both end)
    why = (_dst_repeat_hint() if dst else day_end_hint(freq, keys)
           if tz is None and DS_RAW in dups.columns and WRITTEN_TIME not in dups.columns else pl.lit(""))
    same = "the same y" + (f" and {', '.join(main[1:])}" if len(main) > 1 else "")
    return dups.filter((pl.col("__n") > 1) & (conflict | (pl.col("__pos") > 0))).select(
        ROW,
        pl.when(conflict).then(pl.lit("duplicate_conflict")).otherwise(pl.lit("duplicate_row")).alias("check"),
        pl.when(conflict)
        .then(pl.format("{} rows for ({}, {}) with different {} values ({}){}", pl.col("__n"), pl.col("unique_id"),
                        shown, differ, seen, why))
        .otherwise(pl.format("repeat of an earlier row for ({}, {}) with {}{}", pl.col("unique_id"), shown,
                             pl.lit(same), why))
        .alias("reason"),
    )


def _joined_id_collisions(frame: pl.LazyFrame, id_cols: list[str]) -> pl.LazyFrame:
    """The series keys that several id columns join into from different values (store 'a|b' and item 'c', store
    'a' and item 'b|c': both 'a|b|c'); only rows whose id values hold the separator can collide."""
    parts = [pl.col(RAW_PREFIX + c).cast(pl.Utf8).str.strip_chars() for c in id_cols]
    return (
        frame.filter(pl.any_horizontal([p.str.contains("|", literal=True) for p in parts]).fill_null(False))
        .select("unique_id", pl.struct([p.alias(c) for p, c in zip(parts, id_cols, strict=True)]).alias("__ids"))
        .unique()
        .group_by("unique_id")
        .agg(pl.col("__ids").head(2), pl.len().alias("__n"))
        .filter(pl.col("__n") > 1)
        .sort("unique_id")
        .head(3)
    )


def _refuse_joined_id_collisions(found: pl.DataFrame, id_cols: list[str], label: str) -> None:
    """Two different series whose ids join into one key were one series: every row of a period they share was
    quarantined as 'duplicate_conflict' (or, with equal values, one was dropped as a repeat; with aggregate,
    summed), the reason naming a key that is in neither's data."""
    if found.height == 0:
        return
    row = found.row(0, named=True)
    a, b = sorted(tuple(v[c] for c in id_cols) for v in row["__ids"])  # (`unique` keeps no order)
    more = f" (and {plural(found.height - 1, 'other key')})" if found.height > 1 else ""
    raise DataValidationError(
        f"{label}: the id columns {', '.join(id_cols)} join different series into one key {row['unique_id']!r}: "
        f"{a} and {b}{more}; the key joins the columns with '|', which these id values contain: replace '|' in "
        "them (or join the columns into one id column of your own)"
    )


def _take(frame: pl.DataFrame, keep: pl.Series) -> pl.DataFrame:
    """`frame.filter(keep)` one column at a time, dropping each source column from `frame` once
    taken: the frame is consumed, and the peak is the input plus one column, not two full frames."""
    out = {}
    for c in list(frame.columns):
        col = frame.drop_in_place(c)
        out[c] = col.filter(keep)
        del col
    return pl.DataFrame(out)


def _keep(frame: pl.DataFrame, keep: pl.Series) -> pl.DataFrame:
    """`frame.filter(keep)`. When few rows go (quarantined rows are usually a small fraction), the
    kept runs are sliced out of `frame` and concatenated without copying any data; else the rows are
    copied column by column (`_take`). Consumes `frame` either way."""
    drop = (~keep).arg_true()
    if drop.len() == 0:
        return frame
    if drop.len() > max(1_000, frame.height * _MAX_SLICES_PER_ROW):
        return _take(frame, keep)
    starts = [0, *(drop + 1).to_list()]
    ends = [*drop.to_list(), frame.height]
    runs = [frame.slice(a, b - a) for a, b in zip(starts, ends) if b > a]
    return pl.concat(runs, rechunk=False) if runs else frame.clear()


# zones whose clocks go back (a wall hour that occurs twice) on other dates or at other hours: one names the date
_DST_ZONES = ("Europe/London", "Europe/Berlin", "Europe/Helsinki", "America/New_York", "America/Chicago",
              "America/Denver", "America/Los_Angeles", "Australia/Sydney", "Pacific/Auckland")


def _dst_repeat_hint(zones_tried: Sequence[str] = _DST_ZONES) -> pl.Expr:
    """Why a sub-daily key of a source without a tz is written twice: the wall hour that repeats when daylight
    saving ends, in the zones of `zones_tried` where it does then (local times exported without their offset, read
    as UTC: the two rows of 02:00 on 2023-10-29 in Berlin were told "2 rows for (m1, 2023-10-29 02:00:00 UTC) with
    different y values" and nothing more)."""
    ds = pl.col("ds")
    zones = [pl.when(ds.dt.replace_time_zone(z, ambiguous="earliest", non_existent="null")
                     != ds.dt.replace_time_zone(z, ambiguous="latest", non_existent="null")).then(pl.lit(z))
             for z in zones_tried]
    named = pl.concat_str(zones, separator=", ", ignore_nulls=True)
    first = named.str.extract(r"^([^,]+)", 1)
    return (
        pl.when(named.is_not_null() & (named != ""))
        .then(pl.format(" (the hour that occurs twice when daylight saving ends in {}: local times written without "
                        "their UTC offset? declare the source's tz and ambiguous = 'infer' (--tz {} --ambiguous infer), or export the "
                        "times with their offset)", named, first))
        .otherwise(pl.lit(""))
    )


def _sorted_with_duplicates(ok: pl.DataFrame, chunk: int = CHUNK, freq: str | None = None,
                            covariates: Sequence[str] = (), dst: bool = False,
                            aside: pl.LazyFrame | None = None, tz: str | None = None
                            ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Sort by (unique_id, ds) (stable: file order within a key; skipped when already sorted)
    and find duplicate keys. Returns (sorted frame, duplicates to quarantine: source_row, check, reason).
    `aside`: the undeclared columns as read, kept out of `ok` (`_duplicates_in_order`)."""
    if ok.height <= 1:
        return ok, _duplicates_in_order(ok.clear(), pl.lit(True), freq=freq, covariates=covariates, dst=dst,
                                        aside=aside, tz=tz)
    steps: DsSteps | None = ds_steps(ok, chunk)
    if in_key_order(ok, strict=False, steps=steps):
        ok = ok.with_columns(pl.col("unique_id").set_sorted())
    else:  # (an arg_sort + gather per column is many times slower on the chunks the reader leaves)
        ok, steps = ok.sort(["unique_id", "ds"], maintain_order=True), None
    return ok, _duplicates_in_order(ok, pl.lit(True), repeated_keys(ok, steps, chunk), freq, covariates, dst, aside,
                                    tz)


def totals_series_line(series: list[str]) -> str:
    """Series whose key is a totals label: a spreadsheet's total per period, read as one more series."""
    shown = ", ".join(repr(s) for s in series[:5]) + (", ..." if len(series) > 5 else "")
    return (f"series named as a total ({shown}): if they are the sum of the other series (a spreadsheet's totals "
            "rows), leave them out of the export: they are forecast as series of their own, and adding the forecasts of "
            "every series counts them twice")


def zero_padded_ids_line(groups: list[list[str]]) -> str:
    """Ids that differ only by leading zeros ('007' and '7') or a trailing '.0' ('7.0', as pandas writes an integer
    column with a missing value): kept as written, two series, but most likely one whose zeros a spreadsheet dropped
    in some rows (Excel reads 007 as the number 7), or exported by two tools."""
    if any(len({_trailing_zero_decimals(u) for u in g}) > 1 for g in groups):  # '7' / '7.0', not '007.5' / '7.5'
        return _id_groups_line(groups, "leading zeros or a trailing '.0'", "as separate series; if they are one series "
                               "(pandas writes a column of integer ids with a missing value as floats, '7.0'; a "
                               "spreadsheet drops the zeros of '007'), export the ids as text the same way in every row")
    return _id_groups_line(groups, "leading zeros", "as separate series; if they are one series (a spreadsheet "
                           "drops the zeros of '007'), export the ids as text with their zeros, or without them, the "
                           "same way in every row")


def _trailing_zero_decimals(uid: str) -> str:
    """The '.0' (or '.00', ...) that ends an integer id written as a float ('7.0'), else ''."""
    import re

    found = re.fullmatch(r"\d+(\.0+)", uid)
    return found.group(1) if found else ""


def _empty_covariates(valid: pl.DataFrame, source: SourceConfig) -> list[str]:
    """The declared covariates with no value on any valid row: a column of empty cells (an export that left it
    unfilled). A past or future one was filled with 0 everywhere and a static one was missing for every series, and
    the run said only how many values it filled: the network read nothing from them."""
    cols = [c for c in dict.fromkeys([*source.static_cols, *source.past_cols, *source.future_cols])
            if c in valid.columns]
    if not valid.height or not cols:
        return []
    nulls = valid.select(pl.col(cols).null_count()).row(0, named=True)
    return [c for c in cols if nulls[c] == valid.height]


def _constant_covariates(valid: pl.DataFrame, source: SourceConfig) -> dict[str, Any]:
    """The declared covariates with one and the same value on every valid row (no row without one), with that value:
    a column that carries no information (a promo flag 0 everywhere, a static 'region' of one region for every
    series). Only an empty column was said (`_empty_covariates`); a constant one was used without a word, and the
    network read nothing from it either."""
    # a static is one value per series: with one series it is constant by definition, which says nothing
    several = "unique_id" not in valid.columns or valid["unique_id"].n_unique() > 1
    cols = [c for c in dict.fromkeys([*(source.static_cols if several else []), *source.past_cols,
                                      *source.future_cols]) if c in valid.columns]
    if not valid.height or not cols:
        return {}
    stats = valid.select(*(pl.col(c).null_count().alias(f"nulls{i}") for i, c in enumerate(cols)),
                         *(pl.col(c).n_unique().alias(f"unique{i}") for i, c in enumerate(cols)),
                         *(pl.col(c).first().alias(f"first{i}") for i, c in enumerate(cols))).row(0, named=True)
    out: dict[str, Any] = {}
    for i, c in enumerate(cols):
        if stats[f"nulls{i}"] == 0 and stats[f"unique{i}"] == 1:
            value = stats[f"first{i}"]
            out[c] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return out


def constant_covariates_line(constant: dict[str, Any]) -> str:
    """The note for declared covariates of one value on every row (`_constant_covariates`), each with its value."""
    def shown(value: Any) -> str:
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return repr(value) if isinstance(value, str) else str(value)

    one = len(constant) == 1
    each = ", ".join(f"{c!r} ({shown(v)} on every row)" for c, v in constant.items())
    return (f"declared covariate{'' if one else 's'} {each} {'is' if one else 'are'} constant: "
            f"{'it carries' if one else 'they carry'} no information, a network learns nothing from "
            f"{'it' if one else 'them'}; check the file's column (an export that filled it with one value?), or "
            "leave it undeclared")


def empty_covariates_line(cols: list[str]) -> str:
    """The warning for declared covariates without a single value (`_empty_covariates`)."""
    names = ", ".join(repr(c) for c in cols)
    one = len(cols) == 1
    return (f"declared covariate{'' if one else 's'} {names} {'has' if one else 'have'} no value on any row (the "
            f"column{'' if one else 's'} {'is' if one else 'are'} empty): a network reads nothing from "
            f"{'it' if one else 'them'} (a past or future covariate is filled with 0 everywhere, a static one is missing "
            "for every series); check the file's column, or leave it undeclared")


def case_ids_line(groups: list[list[str]]) -> str:
    """Ids that differ only by letter case ('Store A' and 'STORE A'): kept as written, two series, but most likely
    one written two ways (two systems, an export that changed)."""
    return _id_groups_line(groups, "letter case", "as separate series (each with the dates of its own rows); if "
                           "they are one series, export the id the same way in every row")


def _id_groups_line(groups: list[list[str]], by: str, advice: str) -> str:
    shown = "; ".join(" / ".join(repr(u) for u in g) for g in groups[:5]) + ("; ..." if len(groups) > 5 else "")
    # 'differ': the ids of each group differ from one another, one group or several
    return (f"{plural(len(groups), 'group')} of series ids differ only by {by} ({shown}): they are kept as written, "
            f"{advice}")


def log1p_off_line(series: list[str], n_series: int | None = None, count: int | None = None) -> str:
    """The series that `preprocess.log1p` leaves untransformed: they hold a value below 0 (log1p is undefined below
    -1 and flattens negative values), so they are scaled without it. `n_series`, the series scaled, says whether any
    other took it: a file whose every series holds a negative value was told '(the others with it)' of none
    (newuser50a); None (an older summary) says the others as before. `count`: how many there are where `series` is
    a sample of them (a run's JSON keeps the first 100: a run with 250 was said to have 100)."""
    n = max(count or 0, len(series))
    shown = ", ".join(map(id_text, series[:10])) + (", ..." if n > 10 else "")
    others = ("every series: [preprocess] log1p changes nothing on these data" if n_series is not None
              and n_series <= n else "the others with it")
    return f"log1p off for {n:,} series holding negative values ({shown}): they are scaled without it ({others})"


def gap_cut_line(cut: list[dict], rows: int, count: int | None = None) -> str:
    """The series that start after an interior gap longer than max_gap, and the rows before it, not used. `count`:
    how many there are where `cut` is a sample of them (a run's JSON keeps the first 100)."""
    n = max(count or 0, len(cut))
    shown = "; ".join(f"{id_text(c['unique_id'])}: {c['reason']}" for c in cut[:5])
    # 'e.g.' before a sample only: the one series of a run read '1, e.g. vic_elecdemand_2014: ...' (newuser43)
    named = f", e.g. {shown}; ..." if n > 5 else f": {shown}"
    return (f"series starting after an interior gap longer than max_gap ({'its' if n == 1 else 'their'} "
            f"{rows:,} rows before it not used): {n:,}{named}")


def standard_time_line(checks: dict[str, int], tz: str | None) -> str | None:
    """For a run's one-line summary of its quarantined rows: rows whose local time `tz` skips (time_nonexistent)
    are what a file written in standard time all year holds (vic_elec's 48 half hours every day); the zone that reads
    it, `schemas.standard_time_zone`. Each such row's reason named it, the run's warning ('time_nonexistent=2') did
    not. None when no row is of that check or `tz` has no whole-hour standard time."""
    from flowcast.data.schemas import standard_time_zone

    n = int(checks.get("time_nonexistent", 0) or 0)
    standard = standard_time_zone(tz) if n and tz else None
    if standard is None:
        return None
    zone, utc = standard
    return (f"{plural(n, 'local time')} that {tz} skips (daylight saving starts): if the file is in "
            f"standard time all year "
            f"(it holds the skipped hour), read it with --tz {zone} (tz = '{zone}': {utc}, no daylight saving)")


def ignored_columns_line(columns: list[str], not_covariates: dict[str, str] | None = None) -> str:
    """The source's columns that no declaration names: not used, and how to use them. A file of sales with
    price and promo columns given with --data was trained on its target alone, and only the data-quality
    artifact said 'undeclared columns (ignored)'; the run's log and output say it too now. `not_covariates`
    (`_not_covariates`: column -> what it looks like) are named for that, not offered as covariates."""
    apart = {c: why for c, why in (not_covariates or {}).items() if c in columns}
    shown = [_column_shown(c) for c in columns]
    line = f"undeclared columns (ignored): {', '.join(shown[:10])}{', ...' if len(shown) > 10 else ''}"
    offered = [c for c in columns if c not in apart]
    if offered:
        one = "one" if not apart else (
            f"{', '.join(offered[:-1])} or {offered[-1]}" if len(offered) > 1 else offered[0])
        line += (f"; to use {one} as a covariate, declare the source in a configuration file ([sources.NAME], --config) "
                 "with it in future_cols (known ahead: prices, promotions, calendars), past_cols (known up to each "
                 "period) or static_cols (one value per series), or give a --data file with --future-col, --past-col "
                 "or --static-col")
    kinds = {why: [c for c in apart if apart[c] == why] for why in dict.fromkeys(apart.values()) if why in _NOT_COVARIATE}
    return "; ".join([line, *(_NOT_COVARIATE[why][len(cols) > 1].format(", ".join(cols))
                              for why, cols in kinds.items())])


# what an undeclared text column looks like that is no covariate (`_not_covariates`), said in `ignored_columns_line`:
# of one column, of several
_NOT_COVARIATE = {
    # no id column declared, so every row is one series, and the column splits the rows of a time: most likely the
    # series' key, which the note told to write as a 0/1 column per value (newuser43)
    "series_key": (
        ("{} may be what tells the series apart: no id column is declared, so every row is read as one series, and its "
         "times repeat; name it with --id-col (or the source's id_cols)"),
        ("{} may be what tells the series apart (one of them, or together): no id column is declared, so every row is "
         "read as one series, and its times repeat; name them with --id-col (or the source's id_cols)")),
    # ... or a category of which each series has its own (3 series in 3 regions): the values cannot tell them apart,
    # and the note said 'looks like an id column' of a region (msg40)
    "series_name": (
        ("{} looks like an id or a per-series category (one value per series, each series its own: another name of "
         "the series, or a category of which each series has its own, such as a region; to key the series by it, "
         "give it with --id-col; to use it as a static covariate, with --static-col)"),
        ("{} look like ids or per-series categories (one value per series, each series its own: other names of the "
         "series, or categories of which each series has its own, such as a region; to key the series by one, give "
         "it with --id-col; to use one as a static covariate, with --static-col)")),
    # no value at all: a separator ending every line (a trailing tab or comma) makes such a column, which polars
    # names column_<position>; the note offered it as a covariate to declare (newuser47)
    "empty": (
        ("{} has no value in any row (a separator at the end of every line, a trailing tab or comma, makes such a "
         "column): nothing to declare"),
        ("{} have no value in any row (a separator at the end of every line, a trailing tab or comma, makes such "
         "columns): nothing to declare")),
    # ... a column with a header and no value (a 'promo' left blank) is no separator's: said so without that cause
    "blank": ("{} has no value in any row: nothing to declare", "{} have no value in any row: nothing to declare"),
    "row_id": ("{} looks like an id of rows (a different value on nearly every row)",
               "{} look like ids of rows (a different value on nearly every row)"),
    "text": (
        ("{} is text that changes within a series (a past or future covariate is a number: write it as one, e.g. a "
         "0/1 column per value)"),
        ("{} are text that changes within a series (a past or future covariate is a number: write each as one, e.g. "
         "a 0/1 column per value)")),
}
NOT_COVARIATE_SAMPLE = 100_000  # rows (the first by as_of) an undeclared text column is looked at on
_ROW_ID_SHARE = 0.5  # of a column's values that are distinct for it to be an id of rows


def _not_covariates(ingested: Ingested, skip: Sequence[str] = (), *, keyless: bool = False) -> dict[str, str]:
    """The undeclared columns (but `skip`) that hold text and could be no covariate, each with what it looks like
    (a key of `_NOT_COVARIATE`), read off the first `NOT_COVARIATE_SAMPLE` rows by as_of: 'series_name', one value
    per series and no two series share one (a store's name beside its id); 'row_id', a different value on nearly
    every row (an order number); 'text', other text that changes within a series (a covariate that changes is a
    number; yes/no words are read as 1/0); with `keyless` (no id column declared: every row is one series),
    'series_key', text whose values split the rows of one time (the file's times repeat); 'empty', no value in any
    row, all of them looked at, of a column without a header (polars' column_4: a trailing separator's); 'blank', of
    one with a header. A column of numbers, or text of one value per series shared by several
    (a region: a text static), is a covariate it could be. The note offered every such column as a covariate."""
    from flowcast.data.headers import _NUMBER_TEXT_RE
    from flowcast.data.value_text import _BOOLEAN_TEXT, _YES_NO_TEXT, MISSING_MARKERS

    raw = ingested.raw
    if raw is None or not ingested.undeclared:
        return {}
    schema = raw.collect_schema()
    cols = [c for c in ingested.undeclared if schema.get(RAW_PREFIX + c) == pl.Utf8 and c not in skip]
    if not cols:
        return {}
    flags = [*_BOOLEAN_TEXT, *_YES_NO_TEXT]
    exprs = []
    for i, c in enumerate(cols):
        text = pl.col(RAW_PREFIX + c).str.strip_chars()
        value = text.filter(text.is_not_null() & (text != "") & ~text.is_in(MISSING_MARKERS))
        exprs += [value.len().alias(f"n{i}"), value.str.contains(_NUMBER_TEXT_RE).sum().alias(f"num{i}"),
                  value.str.to_lowercase().is_in(flags).sum().alias(f"flag{i}"), value.n_unique().alias(f"distinct{i}"),
                  text.drop_nulls().n_unique().over("unique_id").max().alias(f"per_series{i}")]
        if keyless:
            exprs.append((pl.struct("ds", text).n_unique() > pl.col("ds").n_unique()).alias(f"splits{i}"))
    try:
        row = (ingested.frame.select("unique_id", "ds", *(pl.col(RAW_PREFIX + c) for c in cols)).head(NOT_COVARIATE_SAMPLE)
               .select(pl.col("unique_id").n_unique().alias("series"), pl.len().alias("rows"), *exprs)
               .collect(engine="streaming")
               .row(0, named=True))
    except pl.exceptions.PolarsError:  # a courtesy of the note: the run says what cannot be read
        return {}
    out = {}
    for i, c in enumerate(cols):
        n = row[f"n{i}"]
        if not n and 0 < row["rows"] < NOT_COVARIATE_SAMPLE:  # every row looked at, none with a value
            out[c] = "empty" if re.fullmatch(r"column_\d+", c) else "blank"  # (polars' name of a headerless column)
        if not n or row[f"num{i}"] >= 0.9 * n or row[f"flag{i}"] == n:  # numbers (a typo aside), or yes/no flags
            continue
        if row.get(f"splits{i}"):
            out[c] = "series_key"
        elif (row[f"per_series{i}"] or 0) <= 1:  # one value per series
            if row["series"] > 1 and row[f"distinct{i}"] == row["series"]:
                out[c] = "series_name"
        else:
            out[c] = "row_id" if n >= 10 and row[f"distinct{i}"] >= _ROW_ID_SHARE * n else "text"
    return out


ZONE_SAMPLE = 1000  # rows of an undeclared text column looked at for time zone names (a cheap look: a head)


def _zone_columns(ingested: Ingested) -> dict[str, list[str]]:
    """The undeclared columns whose values (on the file's first rows) are all time zone names ('Europe/Berlin',
    'UTC'), with those zones (sorted, the first 5). A new user's file with a `tz` column beside local times was read
    as UTC, its zone listed among the 'undeclared columns (ignored)' with advice to declare it a covariate; nothing
    said that the zone is the source's `tz`, never read from a column."""
    import zoneinfo

    raw = ingested.raw
    if raw is None or not ingested.undeclared:
        return {}
    schema = raw.collect_schema()
    cols = [c for c in ingested.undeclared if schema.get(RAW_PREFIX + c) == pl.Utf8]
    if not cols:
        return {}
    head = raw.select(*(pl.col(RAW_PREFIX + c) for c in cols)).head(ZONE_SAMPLE).collect()
    zones = zoneinfo.available_timezones()
    out: dict[str, list[str]] = {}
    for c in cols:
        values = {v.strip() for v in head.get_column(RAW_PREFIX + c).drop_nulls().to_list() if v.strip()}
        # a zone's name, not a word that happens to be one ('GB', 'Japan', 'Zulu' as a text column's only value)
        if values and values <= zones and any("/" in v or v.upper() == "UTC" for v in values):
            out[c] = sorted(values)[:5]
    return out


_OFFSET_RE = r"\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*([+-]\d\d):?(\d\d)?$"  # '...T02:00:00+02:00', '... 02:00+0100'


def _offsets_zone(ingested: Ingested, source: SourceConfig) -> str | None:
    """For sub-daily times written with two or more UTC offsets and no tz declared (an export of local times with
    their offset: `+01:00` in winter, `+02:00` in summer): the zone whose daylight saving they follow, and that its tz
    is not declared. The instants are right, but the calendar features (hour of day, weekday) were UTC's, an hour
    off the local day for half the year, without a word. None otherwise."""
    time_raw = RAW_PREFIX + source.time_col
    if (source.tz is not None or not is_subdaily(source.freq) or ingested.raw is None
            or ingested.raw.collect_schema().get(time_raw) != pl.Utf8):
        return None
    found = (ingested.raw.select(pl.col(time_raw).str.strip_chars().alias("t"))
             .with_columns(pl.col("t").str.extract(_OFFSET_RE, 1).alias("h"),
                           pl.col("t").str.extract(_OFFSET_RE, 2).fill_null("00").alias("m"))
             .drop_nulls("h").group_by("h", "m").agg(pl.col("t").first(), pl.len()).collect())
    if found.height < 2:
        return None
    examples = [_offset_example(t, h, m) for h, m, t, _ in found.iter_rows()]
    if None in examples:
        return None
    matching = zones_keeping([e for e in examples if e is not None], prefer=_DST_ZONES)
    offsets = ", ".join(f"{h}:{m}" for h, m, _, _ in sorted(found.iter_rows(), key=lambda r: (int(r[0]), r[1])))
    if not matching:
        return _several_zones(ingested, time_raw, offsets)
    zone = matching[0]
    return (f"the times carry the UTC offsets {offsets}, which follow the daylight saving of {zone} (or another zone "
            "of the same clocks); they are read as instants and lose nothing, but without a tz the calendar features "
            "(hour of day, weekday) are UTC's, not the local clock's, and the two move an hour apart twice a year: "
            f"declare it (--tz {zone}; tz = '{zone}' in [sources.NAME])")


def _offset_example(t: str, h: str, m: str) -> tuple[datetime, timedelta] | None:
    """A time written with its offset ('2024-10-27T02:00:00+01:00'; its hours '+01' and minutes '00') as (its
    instant, the offset), for `zones_keeping`; None where it does not read as an ISO time."""
    sign = -1 if h.startswith("-") else 1
    try:
        instant = datetime.fromisoformat(t.replace(" ", "T", 1) if "T" not in t else t)
    except ValueError:
        return None
    return instant, timedelta(minutes=sign * (abs(int(h)) * 60 + int(m)))


_MAX_OFFSET_SETS = 16  # sets of offsets of a file's series tried for their zones (a file of a few zones)


def _several_zones(ingested: Ingested, time_raw: str, offsets: str) -> str | None:
    """`_offsets_zone` of a file whose offsets no one zone keeps: where its series, each written in the offsets of one
    zone's daylight saving (Berlin's +01:00 and +02:00 beside New York's -05:00 and -04:00), follow several zones,
    that, those zones (a series each, for example) and that one tz serves a source: the instants are right, the
    calendar features are UTC's hours for every series (it said nothing). None where fewer than two zones are found
    (each series in one offset: nothing tells daylight saving from a fixed offset)."""
    rows = (ingested.frame.select(pl.col("unique_id").cast(pl.Utf8), pl.col(time_raw).cast(pl.Utf8).str.strip_chars()
                                  .alias("t"))
            .with_columns(pl.col("t").str.extract(_OFFSET_RE, 1).alias("h"),
                          pl.col("t").str.extract(_OFFSET_RE, 2).fill_null("00").alias("m"))
            .drop_nulls("h").group_by("unique_id", "h", "m").agg(pl.col("t").first()).collect())
    sets = (rows.with_columns(pl.format("{}:{}", "h", "m").alias("o"))
            .group_by("unique_id").agg(pl.col("o").sort().alias("key"), pl.col("o"), pl.col("t"))
            .filter(pl.col("key").list.len() > 1)
            .group_by("key").agg(pl.col("unique_id").min().alias("first"), pl.col("o").first(), pl.col("t").first())
            .sort("first"))
    if not 1 < sets.height <= _MAX_OFFSET_SETS:
        return None
    zones: dict[str, str] = {}
    for _, first, written, times in sets.iter_rows():
        examples = [_offset_example(t, *o.split(":")) for o, t in zip(written, times, strict=True)]
        if None in examples:
            return None
        matching = zones_keeping([e for e in examples if e is not None], prefer=_DST_ZONES)
        if matching:
            zones.setdefault(matching[0], first)
    if len(zones) < 2:
        return None
    named = ", ".join(f"{zone} (series {first!r})" for zone, first in zones.items())
    tzs = "; ".join(f"--tz {zone}" for zone in zones)
    return (f"the times carry the UTC offsets {offsets}, which follow the daylight saving of several zones: {named} "
            "(or other zones of the same clocks); they are read as instants and lose nothing, but without a tz the "
            "calendar features (hour of day, weekday) are UTC's, not each local clock's, and one tz serves a "
            f"source: make a source of each zone's series, each with its tz ({tzs})")


def zone_columns_line(zone_columns: dict[str, list[str]], tz: str | None) -> str:
    """The note for undeclared columns of time zone names (`_zone_columns`): the zone of a source is its tz."""
    source_tz = f"the source's tz ({tz})" if tz else "the source's tz (none declared: UTC)"
    parts = []
    for c, zones in zone_columns.items():
        if len(zones) == 1:
            if zones[0] == (tz or "UTC") or (tz is None and zones[0] in ("Etc/UTC", "UTC")):  # read so already
                continue
            parts.append(f"column {c!r} holds the time zone {zones[0]}: if its times are {zones[0]}'s, declare it "
                         f"(--tz {zones[0]}; tz = '{zones[0]}' in [sources.NAME])")
        else:
            parts.append(f"column {c!r} holds several time zones ({', '.join(zones)}): a source has one tz, so write "
                         "the times with their UTC offset, or split the file by zone, a source (and --tz) each")
    if not parts:
        return ""
    return (f"time zones: {'; '.join(parts)}. A zone is never read from a column: {source_tz} is the zone of the "
            "times written without a UTC offset and of the calendar features (hour of day, weekday)")


def _column_shown(name: str) -> str:
    """A column named for the ignored-columns line: '' (a trailing comma) quoted; a first column without a header
    (polars names it column_1; pandas, reading it back, 'Unnamed: 0') said to be what it nearly always is, pandas'
    row index written by `to_csv`, which a user looked for in vain as 'column_1' among their headers."""
    if not name.strip():
        return repr(name)
    if name in ("column_1", "Unnamed: 0"):
        return (f"{name} (the first column, without a header: the row index pandas' to_csv writes; "
                "to_csv(index=False) leaves it out)")
    if re.fullmatch(r"__index_level_\d+__", name):  # a Parquet file's: it was advice to declare it a covariate
        return f"{name} (the row index pandas' to_parquet writes; to_parquet(index=False) leaves it out)"
    return name


def wide_columns_line(columns: list[str]) -> str:
    """A wide file's series: which columns became series (one row per time and column), each named after its
    column. Of one: 'its 1 columns beside the time column were read as one series each' was said; counted among
    the file's columns, since a declared covariate beside the time column is no series."""
    if len(columns) == 1:
        return f"wide file: its column {columns[0]} was read as one series, named after it"
    shown = ", ".join(columns[:10]) + (", ..." if len(columns) > 10 else "")
    return (f"wide file: {len(columns):,} of its {noun(len(columns), 'column')} were read as one series each "
            f"({shown}), named after their headers")


def static_varying_lines(varying: dict[str, dict[str, Any]] | None) -> list[str]:
    """A line per static column whose value changes within a series, naming the example's values and the date."""
    lines = []
    for col, v in (varying or {}).items():
        seen = (f"{v['example']}: {v['first']!r}, then {v['then']!r} from {v['from']}" if v.get("then") is not None
                else str(v["example"]))
        lines.append(f"static column {col!r} changes within {int(v['series']):,} series (e.g. {seen}): a static is one "
                     f"value per series, the first one is used; if it changes over time, declare it a past covariate "
                     f"(--past-col; text as one 0/1 column per value), or a future one when its changes are planned")
    return lines


FUTURE_ADVICE = ("; add their planned rows (dated after as_of, target empty) or set [preprocess] future_fill "
                 "('zero', or 'error' to fail instead)")


def never_planned(missing: dict[str, int], expected: int) -> str:
    """A warning for the declared future covariates with no planned value at all: a value observed only up to
    as_of (sales of a sister product, a measured temperature) declared as future is a leak: a backtest window
    reads its actual values after the cutoff, the published forecast only filled ones."""
    cols = [k for k, v in missing.items() if expected and int(v) >= expected]
    if not cols:
        return ""
    names = ", ".join(repr(c) for c in cols)
    return (f". {names} {'has' if len(cols) == 1 else 'have'} no planned value for any series: if "
            f"{'it is' if len(cols) == 1 else 'they are'} not known ahead, declare {'it' if len(cols) == 1 else 'them'} "
            "a past covariate (--past-col, past_cols): as future, the backtest reads the actual values after each "
            "cutoff, which a forecast never has, and scores better than the published forecast will do")


def future_examples(examples: list[str] | None) -> str:
    """'; e.g. s3: promo from 2024-07-19; s0: price from 2024-07-29': the first unplanned values, named."""
    return f"; e.g. {'; '.join(examples[:3])}" if examples else ""


def covariates_filled_line(filled: dict[str, int], future_fill: str | None) -> str:
    """The covariate values the source left empty on its own rows and what filled them (per column)."""
    zero = " (0 for future-known ones: future_fill = 'zero')" if future_fill == "zero" else ""
    return (f"covariate values missing on the source's rows, filled with the series' last value (0 before its first)"
            f"{zero}: {', '.join(f'{k}: {v:,}' for k, v in filled.items())}")


def _fmt_ts(value: Any) -> str | None:
    return None if value is None else str(value)


# ------------------------------------------------------------------------------------ validate
def _first_observable(ingested: Ingested) -> pl.Expr:
    """The first instant (on the ds axis) at which a row of `ingested` is observed, as 'ready': its time, or of an
    aggregated source the end of its period (`periods.period_over_at`), whichever is later."""
    over = period_over_at(ingested.source, ingested.seen_apart)
    seen = pl.col(DS_SEEN) if over is None else pl.max_horizontal(pl.col(DS_SEEN), over)
    return seen.min().alias("ready")


def _all_after_as_of(ingested: Ingested, rows_read: int, rows_partial: int, rows_planned: int, first: Any,
                     ready: Any = None) -> DataValidationError:
    """The error of a run whose as_of is before the source's data: no row observed by then, and when the first is
    (`first`; `ready`: the first instant a row is observed, `_first_observable`, said where later: an aggregated
    source's first period is over at its end, and an as_of at its first row still waits for it), the later of the
    two its `begins` (None without `first`)."""
    # (aggregate) the period of as_of is not over: its rows are not after as_of, they wait until it ends
    waiting = (f"{rows_partial} of them in the {ingested.source.freq} period not over at as_of, which waits until it "
               "ends; " if rows_partial else "")
    # (their target values are after as_of too: not read; the rows are kept for their future covariates' values)
    planned = (f"{rows_planned} of them kept for the planned values of their future covariates, not their targets; "
               if rows_planned else "")
    # both instants as every message writes one (as_of read '2020-01-01 00:00:00+00:00', a sub-daily first one
    # '2024-01-01 06:00:00' without its zone)
    later = first is not None and ready is not None and ready > first
    over = f", its {ingested.source.freq} period over at {utc_text(ready)}" if later else ""
    since = f"the first is {utc_text(first)}{over}: pick an as_of from then on" if first else ""
    said = f" ({waiting}{planned}{since})".replace("; )", ")") if waiting or planned or since else ""
    error = DataValidationError(f"{ingested.label}: all {rows_read} rows are after as_of={utc_text(ingested.as_of)}"
                                f"{said}; nothing {'observed ' if rows_planned else ''}to validate")
    error.begins = utc_text(ready if later else first) if first else None
    return error


def nothing_observed_by(source: SourceConfig, as_of: datetime | str,
                        warn: Callable[[str], None] | None = None) -> str | None:
    """`validate`'s own error when `source` has no row observed by `as_of` (an as_of before its data began), else
    None; one streaming pass over the columns that decide it (the time column, the future covariates), read by the
    reader's own rules (`sources.ingest`: time parsing, zone, time_label, aggregate periods). For a command to say
    so before it starts a Prefect server and the flow (~30 s), where the flow's validate said it anyway. Read by the
    run's rule (`source_files.read_steadily`): a file another program writes or replaces meanwhile is read again, each
    read again said through `warn` (None: not said); one that keeps changing raises SourceUnavailableError. Errors
    of the reading itself (a file not found, a bad declaration) are raised as `ingest` raises them."""
    _, said = read_steadily(source, lambda: ingest(source, as_of), lambda read: _all_after_as_of_said(read, source),
                           warn or unsaid)
    return said


def _all_after_as_of_said(ingested: Ingested, source: SourceConfig) -> str | None:
    """`nothing_observed_by`'s error of what `ingested` (of `source`) reads: every row after its as_of, else None."""
    bound = ingested.as_of_ds
    if bound is None:
        return None
    partial = ingested.not_over()
    # after as_of as validate tells it (a daily time with an offset by the instant it names, `DS_SEEN`): by its date
    # (DS_RAW), '2024-03-01T00:00:00-05:00' was not after a run at midnight UTC, and its planned row went uncounted
    after = (pl.col(DS_SEEN) > bound) | partial | ingested.later
    counts = ingested.unfiltered.select(
        pl.len().alias("rows_read"),
        observed_at(source, bound, ingested.later, ingested.seen_apart, partial).sum().alias("observed"),
        partial.sum().alias("partial"), (after & planned_row(source)).sum().alias("planned"),
        pl.col(DS_SEEN).min().alias("first"), _first_observable(ingested),
    ).collect(engine="streaming").row(0, named=True)
    if not counts["rows_read"] or counts["observed"]:
        return None
    return str(_all_after_as_of(ingested, int(counts["rows_read"]), int(counts["partial"]), int(counts["planned"]),
                                counts["first"], counts["ready"]))


def nothing_to_run(source: SourceConfig, as_of: datetime | str | None, cfg: ValidationConfig,
                   keep: Callable[[ValidationResult, str], object] | None = None,
                   warn: Callable[[str], None] | None = None) -> str | None:
    """The error a run's validation ends with when `source` leaves it nothing to run on, else None: `validate`'s
    own (no rows: a header alone; every row after `as_of`; a declared column missing) or `enforce_thresholds`'
    'no valid rows left' when every row is quarantined. The same reading and checks as the run's, for a command
    to say so before it starts a Prefect server and the flow (~20-30 s), where the flow said it anyway. `keep`:
    called with the result and its run key (`as_of_label`) when every row is quarantined, before the error is
    made: it writes the quarantine file as the run would (`write_quarantine`, which records its path in the
    report), and the error names it. A quarantine above the threshold but with valid rows left is the run's to
    say (it writes the quarantine file the error points to). Read by the run's rule (`source_files.read_steadily`): a
    file another program writes or replaces meanwhile is read again (a header alone found mid-write was 'no rows'),
    each read again said through `warn` (None: not said); one that keeps changing raises SourceUnavailableError.
    Errors of the reading itself (a file not found, an I/O failure) are raised as `ingest` and `validate` raise
    them."""
    try:
        ingested, result = read_steadily(source, lambda: ingest(source, as_of),
                                         lambda read: validate(read, source, cfg), warn or unsaid)
    except DataValidationError as exc:
        return str(exc)
    if result.report.rows_valid:
        return None
    if keep is not None:
        keep(result, as_of_label(ingested.as_of))
    try:
        enforce_thresholds(result, cfg, artifact=None)  # before any flow: no data-quality artifact to read
    except DataValidationError as exc:
        return str(exc)
    return None


def validate(ingested: Ingested, source: SourceConfig, cfg: ValidationConfig, *, chunk: int = CHUNK) -> ValidationResult:
    """Row-level checks and duplicates -> (valid, quarantined, report); see the module docstring.
    `chunk`: rows per step of the key-order passes (`order.ds_steps`)."""
    try:
        MappedObservations.validate(ingested.frame)  # LazyFrame: names and types only
    except (pa.errors.SchemaError, pa.errors.SchemaErrors) as exc:
        raise DataValidationError(f"{ingested.label}: mapped columns do not match the contract: {exc}") from exc
    _, unit = parse_freq(source.freq)
    weekly = source.freq == "1w" and source.aggregate == "none"
    # rows finer than freq are combined into their period (aggregate), not off the grid
    subdaily = unit in _SUBDAILY and source.aggregate == "none"
    checks = row_checks(
        time_col=source.time_col,
        target_col=source.target_col,
        id_cols=source.id_cols,
        numeric_exog=ingested.numeric_exog,
        time_format=source.time_format,
        freq=source.freq,
        subdaily=subdaily,
        weekly=weekly,
        # '2w', '7d', '3d' keep the dates they are labelled with (zones._grid_start): rows between them go
        period_days=multiday_period(source.freq) if source.aggregate == "none" and source.freq != "1w" else None,
        # '3mo', '12mo', '2q' keep the month they are labelled with: rows between them go
        period_months=month_multiple(source.freq) if source.aggregate == "none" else None,
        business=is_business(source.freq),  # aggregated or not, a weekend date is not a period of '1b'
        tz_ambiguous=ingested.tz_mixed_possible and source.tz is None,
        y_min=source.y_min,
        y_max=source.y_max,
        local_tz=source.tz if local_times(source) else None,
        ambiguous=source.ambiguous,
        tz_declared=source.tz is not None,
        wide=bool(ingested.wide_columns),
        tz=source.tz,
    )
    code = pl.lit(None, dtype=pl.UInt8)
    if checks:  # a small integer per row (first failing check); reasons are built later for failing rows only
        code = pl.when(checks[0].fails).then(pl.lit(1, pl.UInt8))
        for i, c in enumerate(checks[1:], start=2):
            code = code.when(c.fails).then(pl.lit(i, pl.UInt8))
        code = code.otherwise(pl.lit(None, dtype=pl.UInt8))
    cols = _canonical_cols(ingested)
    # several files of an aggregated source: a row two overlapping exports both hold is summed once (`_overlap_repeats`)
    overlap = source.aggregate != "none" and len(ingested.files) > 1
    # 'last' is the latest instant (the raw time, less its offset where one is kept: `_instant_order`); an overlap's
    # repeat is the same raw time
    # (not aggregated: the duplicates of a period compare it, `_duplicates_in_order`; but a sub-daily row whose raw
    # time is not its ds is quarantined (off_grid), so a valid row's raw time is its ds, and the column, 80 MB of
    # 10M rows held beside ds at validation's peak, would tell no duplicate apart)
    raw_time = source.aggregate == "last" or overlap or (source.aggregate == "none" and not subdaily)
    order_col = [pl.col(DS_RAW)] if raw_time else []
    # a daily time written with an offset and no tz that reads it: its wall time as written (`DS_RAW`) and the offset,
    # which tells two such times of a day apart (`_written_offset`); with a tz: its wall time there and the zone's
    # offset, which tell the two 02:30 of an autumn night apart (`Ingested.zone_offsets`: aggregated, by instant;
    # not, two times of the day, where their wall time alone read a row written twice)
    order_col += [pl.col(DS_OFFSET)] if raw_time and ((source.tz is None and ingested.seen_apart)
                                                     or ingested.zone_offsets) else []
    # (not aggregated: so do the undeclared columns, as read: read again for the rows of repeated keys alone)
    undeclared = [pl.col(RAW_PREFIX + c) for c in ingested.undeclared] if source.aggregate == "none" else []
    aside = ingested.frame.select(ROW, *undeclared) if undeclared else None
    file_col = [pl.col(FILE_INDEX)] if overlap else []
    flagged_plan = ingested.frame.select(ROW, *cols, *order_col, *file_col, *_written_time(ingested),
                                         code.alias("__code"))
    plans = [flagged_plan]
    # daily times written with an offset: the instant each period was seen from (realized accuracy, `seen_shifts`)
    shifted = [] if (expr := seen_shifts_expr(ingested)) is None else [expr]
    if ingested.as_of is not None and ingested.as_of_ds is not None:  # (set together by ingest)
        # rows dated after as_of, and (aggregate) the rows of a period not over at as_of: not observed yet
        # (the column ingest computed the window over (series, period) in, where the cut takes one: the counts and
        # the rows kept read it off one plan, `Ingested.not_over`)
        partial = ingested.not_over()
        after = (pl.col(DS_SEEN) > ingested.as_of_ds) | partial | ingested.later  # (one no order reads, too)
        plans.append(
            ingested.unfiltered.select(
                pl.len().alias("rows_read"), after.sum().alias("after"), partial.sum().alias("partial"),
                (after & planned_row(source)).sum().alias("planned"), pl.col(DS_SEEN).min().alias("first"),
                _first_observable(ingested), *shifted,
            )
        )
    else:
        plans.append(ingested.unfiltered.select(pl.len().alias("rows_read"), pl.lit(0).alias("after"),
                                                pl.lit(0).alias("partial"), pl.lit(0).alias("planned"), *shifted))
    if ingested.blank is not None and ingested.raw is not None:
        plans.append(ingested.raw.select(ingested.blank.sum().alias("blank")))
    if len(source.id_cols) > 1:
        plans.append(_joined_id_collisions(ingested.frame, source.id_cols))
    flagged, counts, *rest = _collect(plans, ingested)
    shifts = seen_shifts(counts["__seen_shifts"][0], source) if "__seen_shifts" in counts.columns else None
    if len(source.id_cols) > 1:
        _refuse_joined_id_collisions(rest.pop(), source.id_cols, ingested.label)
    blank = rest
    rows_read, rows_after = int(counts["rows_read"][0]), int(counts["after"][0])
    rows_planned, rows_partial = int(counts["planned"][0]), int(counts["partial"][0])
    blank_lines = int(blank[0]["blank"][0]) if blank else 0
    rows_in = flagged.height
    if rows_read == 0:
        raise no_rows_error(ingested, blank_lines)
    if rows_in == rows_planned:  # a backfill date before the data began: say when it begins
        first = counts["first"][0] if "first" in counts.columns else None
        ready = counts["ready"][0] if "ready" in counts.columns else None
        raise _all_after_as_of(ingested, rows_read, rows_partial, rows_planned, first, ready)

    n_failed = flagged.height - flagged["__code"].null_count()
    failed = flagged.select(ROW, "__code").filter(pl.col("__code").is_not_null()) if n_failed else None
    if failed is not None and weekly:  # the off-grid reason names the series' weekday
        anchors = (flagged.select(ROW, "unique_id", "ds", weekly_anchor().cast(pl.Int8).alias(WEEK_ANCHOR))
                   .with_columns(weekly_switch().alias(WEEK_SINCE), weekly_switch_from().alias(WEEK_UNTIL))
                   .select(ROW, WEEK_ANCHOR, WEEK_SINCE, WEEK_UNTIL))
        failed = failed.join(anchors, on=ROW, how="left", maintain_order="left")
    period_months = month_multiple(source.freq) if source.aggregate == "none" else None
    # an unreadable day/month date names a time that read; a time without an offset, a time written with one (looked
    # for only where such a row failed: one more pass over the rows, for both)
    unreadable = [i for i, c in enumerate(checks, start=1) if c.name == "time_unparsable"]
    mixed = [i for i, c in enumerate(checks, start=1) if c.name == "time_zone_ambiguous"]
    plain_peer, offset_peer = _time_peers(
        ingested, failed is not None and source.time_format is None and failed["__code"].is_in(unreadable).any(),
        failed is not None and bool(mixed) and failed["__code"].is_in(mixed).any())
    if failed is not None and source.time_format is None:
        failed = failed.with_columns(pl.lit(plain_peer, dtype=pl.Utf8).alias(TIME_PEER))
    if failed is not None and mixed:
        failed = failed.with_columns(pl.lit(offset_peer, dtype=pl.Utf8).alias(OFFSET_PEER))
    if failed is not None and period_months:  # the off-grid reason names the series' months
        phases = flagged.select(ROW, usual_month_phase(period_months).alias(MONTH_PHASE))
        failed = failed.join(phases, on=ROW, how="left", maintain_order="left")
    agg: dict[str, int] = {}
    if source.aggregate != "none":  # several rows per period are observations: combined, not duplicates
        dups = pl.DataFrame(schema={ROW: pl.UInt32, "check": pl.Utf8, "reason": pl.Utf8})
        if overlap:
            dups = _overlap_repeats(flagged, cols, ingested.files, source.aggregate, source.freq, source.tz)
            if dups.height:
                flagged = flagged.filter(~pl.col(ROW).is_in(dups[ROW].implode()))
        valid, agg = aggregate_periods(flagged, source, cols)
        del flagged
    else:
        dst = is_subdaily(source.freq) and source.tz is None  # naive wall times, if local, repeat an hour a year
        keys_present = flagged.select(~(pl.col("unique_id").is_null() | pl.col("ds").is_null()).any()).item()
        steps = ds_steps(flagged, chunk) if n_failed and keys_present else None
        # no second full copy of the rows: the valid rows are sliced out of `flagged` (`_keep`), or copied
        # column by column (`_take`) where they must be sorted
        if steps is not None and in_key_order(flagged, strict=False, steps=steps):
            # rows already in (unique_id, ds) order and every key present (failing rows included): find the
            # duplicates in place and copy the valid rows once
            dups = _duplicates_in_order(flagged, pl.col("__code").is_null(), repeated_keys(flagged, steps), source.freq,
                                        ingested.numeric_exog, dst, aside, source.tz)
            keep = pl.col("__code").is_null()
            if dups.height:
                keep = keep & ~pl.col(ROW).is_in(dups[ROW].implode())
            mask = flagged.select(keep.alias("keep")).to_series()
            flagged = flagged.select(cols)  # the same buffers, less source_row and __code
            valid = _keep(flagged, mask).with_columns(pl.col("unique_id").set_sorted())
            del flagged, mask
        else:
            passed = flagged.get_column("__code").is_null() if n_failed else None
            ok = flagged.drop("__code")
            del flagged
            if passed is not None:  # a copy, not slices: these rows may have to be sorted (gathered) next
                ok = _take(ok, passed)
                del passed
            ok, dups = _sorted_with_duplicates(ok, chunk, source.freq, ingested.numeric_exog, dst=dst, aside=aside,
                                                tz=source.tz)
            if dups.height:
                mask = ok.select((~pl.col(ROW).is_in(dups[ROW].implode())).alias("keep")).to_series()
                ok = ok.select(cols)
                valid = _keep(ok, mask)
                del mask
            else:
                valid = ok.select(cols)
            del ok

    # exact repeats lose nothing: dropped from the valid rows above, counted apart, not quarantined
    repeats, dups = dups.filter(pl.col("check") == "duplicate_row"), dups.filter(pl.col("check") != "duplicate_row")
    quarantined, quarantined_ids = _quarantine_rows(ingested, failed, dups, checks)
    counts_per_check = dict(quarantined.group_by("check").len().sort("check").iter_rows()) if quarantined.height else {}
    # observations only: planned rows (after as_of, future covariates only) are counted apart. A row is planned
    # by the rule ingest cut it by (`observed_at`: a daily time with an offset from the instant it names,
    # `DS_SEEN`; an aggregated source's period once over), not by its ds against as_of's wall time: with
    # '2024-03-01T00:00:00-05:00' planned at a run at midnight UTC, its null target was counted a missing value and
    # its date the data's last; '2024-03-01T00:00:00+05:00', seen at 20:00 UTC the day before, was left out
    # (the window over (series, period) that cut the periods is ingest's, `Ingested.not_over`: not a second one over
    # the rows it kept)
    planned_keys = None
    if rows_planned and ingested.as_of_ds is not None:
        planned_keys = (ingested.frame.filter(~observed_at(source, ingested.as_of_ds, ingested.later,
                                                           ingested.seen_apart, ingested.not_over()))
                        .select("unique_id", "ds").unique().collect())
    observed = valid.lazy().select("unique_id", "ds", "y")
    if planned_keys is not None and planned_keys.height:
        observed = observed.join(planned_keys.lazy(), on=["unique_id", "ds"], how="anti", nulls_equal=True)
    stats = observed.select(
        pl.col("ds").min().alias("lo"), pl.col("ds").max().alias("hi"), pl.col("y").is_null().sum().alias("nulls"),
    ).collect().row(0, named=True) | {"n": valid.select(pl.col("unique_id").n_unique()).item()}
    report = DataQualityReport(
        source=source.name,
        as_of=ingested.as_of.isoformat() if ingested.as_of else None,
        freq=source.freq,
        tz=source.tz,
        time_label=source.time_label,
        time_label_note=time_label_note(source),
        rows_read=rows_read,
        blank_lines=blank_lines,
        rows_after_as_of=rows_after,
        rows_planned=rows_planned,
        rows_partial_period=rows_partial,
        rows_in=rows_in,
        rows_valid=agg.get("rows_valid", valid.height),
        rows_quarantined=quarantined.height,
        rows_duplicate=repeats.height,
        duplicate_example=_check_examples(repeats.sort(ROW), _csv_file(ingested), max(1, len(ingested.wide_columns)),
                                          ingested.preamble_lines, source.separator).get("duplicate_row"),
        checks={str(k): int(v) for k, v in counts_per_check.items()},
        check_examples=_check_examples(quarantined, _csv_file(ingested), max(1, len(ingested.wide_columns)),
                                        ingested.preamble_lines, source.separator),
        check_hints=_check_hints(quarantined),
        n_series=int(stats["n"] or 0),
        ds_min=_fmt_ts(stats["lo"]),
        ds_max=_fmt_ts(stats["hi"]),
        undeclared_columns=list(ingested.undeclared),
        wide_columns=list(ingested.wide_columns),
        files=list(ingested.files),
        rows_null_y=int(stats["nulls"] or 0),
        aggregate=source.aggregate,
        periods=valid.height,
        rows_aggregated=agg.get("rows_aggregated", 0),
        periods_aggregated=agg.get("periods_aggregated", 0),
        periods_with_quarantined_rows=agg.get("periods_with_quarantined_rows", 0),
        series_quarantined=_series_quarantined(quarantined_ids, valid),
        totals_series=_totals_series(valid),
        zero_padded_ids=zero_padded_ids(valid.get_column("unique_id")),
        case_ids=case_ids(pl.concat([valid.get_column("unique_id").cast(pl.Utf8),
                                     quarantined_ids.get_column("unique_id").cast(pl.Utf8)])),
        number_notes=list(ingested.number_notes),
        quarter_note=ingested.quarter_note,
        empty_covariates=_empty_covariates(valid, source),
        constant_covariates=_constant_covariates(valid, source),
        zone_columns=(zones := _zone_columns(ingested)),
        not_covariates=_not_covariates(ingested, skip=list(zones), keyless=not source.id_cols),
        offsets_zone=_offsets_zone(ingested, source),
    )
    if not report.reconciled:  # a bug, never bad data: say so loudly
        raise AssertionError(
            f"rows_in {rows_in} != valid {report.rows_valid} + quarantined {quarantined.height} + exact duplicates "
            f"{repeats.height}, or valid rows != "
            f"rows in {report.periods} periods ({report.rows_aggregated} rows in {report.periods_aggregated} shared)"
        )
    if valid.height:
        try:
            Observations.validate(valid.select("unique_id", "ds", "y"), lazy=True)
        except pa.errors.SchemaErrors as exc:
            raise DataValidationError(f"{ingested.label}: valid rows break the Observations contract: {exc}") from exc
    return ValidationResult(valid=valid, quarantined=quarantined, report=report, hint=_duplicate_hint(source, report),
                            shifts=shifts)


def one_series_per_file_command(path: str) -> str:
    """The shell command that writes the files of `path` (a glob, or a folder: its files) into all.csv, each file's
    rows with its name as `unique_id`: its name without its format and compression suffixes, as the dataset name of
    a file drops them ('x.csv.gz' -> 'x', where `Path.stem` left 'x.csv'). The glob is a Python literal and the
    program one shell word (shlex): a quote, a space or a '$' in the path is read as written."""
    import json
    import shlex

    from flowcast.data.csv_text import DATA_SUFFIX_RE

    pattern = path if any(c in path for c in "*?[") else path.rstrip("/") + "/*"
    # json writes a string as a Python literal in double quotes (ensure_ascii off: its characters as written): the
    # program holds no single quote unless the path does, and shlex wraps it in single quotes as written
    program = ("import glob, pathlib, re, polars as pl; pl.concat([pl.read_csv(f).with_columns(unique_id=pl.lit("
               f"re.sub(r\"{DATA_SUFFIX_RE}\", \"\", pathlib.Path(f).name))) for f in sorted(glob.glob("
               f"{json.dumps(pattern, ensure_ascii=False)}))]).write_csv(\"all.csv\")")
    return f"python -c {shlex.quote(program)}"


# a column holding the time of day apart from the date ('date,hour,id,y': hourly data exported in two columns)
_CLOCK_COLUMN_RE = r"(?i)(hour|hr|hh|hour_of_day|time|time_of_day|clock|uhrzeit|stunde|heure|hora|ora)"


def _duplicate_hint(source: SourceConfig, report: DataQualityReport) -> str:
    """The likely cause of conflicting duplicate (unique_id, ds) rows: no id column declared (every row is one
    series), or data finer than `freq` without `aggregate` (exact repeats are dropped, not quarantined: a file
    appended to itself is said by `DataQualityReport.duplicates_said`)."""
    if not report.checks.get("duplicate_conflict"):
        return ""
    if not source.id_cols:
        e_g = f", e.g. {', '.join(report.undeclared_columns[:3])}" if report.undeclared_columns else ""
        if len(report.files) > 1:  # one file per series, the id in its name (darts reads each as a series)
            return (f" (no id column is declared, so every row of its {len(report.files)} files belongs to one series "
                    f"named {source.name!r}: if each file is one series, named by its file name, write that name "
                    f"as an id column: {one_series_per_file_command(source.path)} and run all.csv with --id-col "
                    f"unique_id; else name the column that tells the series apart (or the columns that do "
                    f"together) with --id-col or the source's id_cols{e_g})")
        return (f" (no id column is declared, so every row belongs to one series named {source.name!r}: "
                f"name the column that tells the series apart (or the columns that do together) with --id-col or "
                f"the source's id_cols{e_g})")
    clock = [c for c in report.undeclared_columns if re.fullmatch(_CLOCK_COLUMN_RE, c.strip())]
    if clock and is_subdaily(source.freq):
        return (f" (the time of day in column {clock[0]!r}, beside the date in {source.time_col!r}? flowcast reads "
                f"one time column: write them as one, '2024-01-01 13:00')")
    if clock and source.aggregate == "none":  # a freq read off the date alone ('1d'): aggregate was all it said
        return (f" (the time of day in column {clock[0]!r}, beside the date in {source.time_col!r}? flowcast reads "
                f"one time column: write them as one, '2024-01-01 13:00', with the freq of those times (--freq 1h); "
                f"or, to combine the rows of each period of freq {source.freq!r}, give --aggregate sum, mean or last "
                "(the source's aggregate))")
    if source.aggregate == "none":
        # '--id-col region' (one column of several that key the series) was told to aggregate, which would have
        # summed different series' values; the id columns come first when the rows are different series'
        # the columns whose values tell a key's rows apart, where the one file says which (a 0/1 flag or a price
        # equal on both rows was offered as an id column because it came first in the file)
        apart = (columns_telling_apart(report.files[0], [*source.id_cols, source.time_col], report.undeclared_columns)
                 if len(report.files) == 1 and source.layout == "long" else None)
        named = report.undeclared_columns if apart is None else apart
        e_g = f", e.g. {', '.join(repr(c) for c in named[:3])}" if named else ""
        ids = ", ".join(repr(c) for c in source.id_cols)
        return (f" (several rows per series and period: if they are rows of different series, the series' id is in "
                f"more columns than {ids}: name each with --id-col (the source's id_cols){e_g}; if the times are "
                f"finer than freq {source.freq!r}, combine them with --aggregate sum, mean or last (the source's "
                "aggregate); else check freq)")
    return ""


def _overlap_repeats(flagged: pl.DataFrame, cols: list[str], files: list[str], how: str,
                     freq: str | None = None, tz: str | None = None) -> pl.DataFrame:
    """Rows of an aggregated source that another of its files also holds (the same series, raw time,
    target and covariates): overlapping exports (a glob of daily exports of the last 7 days, a month's
    file beside its weeks). Within one file two equal rows are two observations (two sales of the same
    amount in one minute) and both are combined; across files they are one row read twice, which a sum
    counted twice without a word. Per such row, the file that holds the most copies of it (the first of
    them) keeps its copies; the others' are exact duplicates (`duplicate_row`: dropped and counted, not quarantined),
    the reason naming that file. A daily time written with an offset and no tz is told by its offset too
    (`_written_offset`, `freq` the source's): 09:00 +01:00 in one file and 09:00 -05:00 in another are two rows, one
    was dropped. With a `tz`, a daily time is its instant (`_instant_order`: one without an offset read in the zone,
    the repeated autumn hour's earlier): 09:00 in one file and 09:00 +01:00 (Berlin) in another are one row, counted
    twice where the zone's offset, null for the first, was compared; 02:30 +02:00 and 02:30 +01:00 stay two. Returns
    source_row, check, reason (`validate`'s dups)."""
    if tz is not None and not (freq is not None and is_subdaily(freq)):  # (sub-daily: `DS_RAW` is the instant)
        when: list[pl.Expr] = [_instant_order(flagged.columns, tz)[0].alias("__instant")]
    else:
        offset = _written_offset(flagged, freq)
        when = [pl.col(DS_RAW), *([] if offset is None else [offset])]
    values = [c for c in cols if c not in ("unique_id", "ds")]
    rows = flagged.filter(pl.col("__code").is_null()).select(ROW, "unique_id", *when, *values, FILE_INDEX)
    key = [c for c in rows.columns if c not in (ROW, FILE_INDEX)]
    per_file = rows.group_by([*key, FILE_INDEX]).agg(pl.len().alias("__n"))
    keeper = (per_file.sort(["__n", FILE_INDEX], descending=[True, False])
              .group_by(key, maintain_order=True)
              .agg(pl.col(FILE_INDEX).first().alias("__keeper"), pl.len().alias("__files"))
              .filter(pl.col("__files") > 1))
    if keeper.height == 0:
        return pl.DataFrame(schema={ROW: pl.UInt32, "check": pl.Utf8, "reason": pl.Utf8})
    repeats = rows.join(keeper, on=key, how="inner", nulls_equal=True).filter(pl.col(FILE_INDEX) != pl.col("__keeper"))
    name = pl.col("__keeper").replace_strict(dict(enumerate(files)), return_dtype=pl.Utf8)
    return repeats.select(
        pl.col(ROW).cast(pl.UInt32),
        pl.lit("duplicate_row").alias("check"),
        pl.format("repeat of a row of {} (the same series, time and values): the files overlap, and aggregate = "
                  "'{}' takes a row once", name, pl.lit(how)).alias("reason"),
    ).sort(ROW)


def aggregate_periods(flagged: pl.DataFrame, source: SourceConfig, cols: list[str]) -> tuple[pl.DataFrame, dict[str, int]]:
    """The rows that passed every row check (`__code` null) combined into one row per
    (unique_id, period) by `source.aggregate`: y by sum / mean / last (the latest instant,
    `_instant_order`; the raw time as written, then file order, break ties), numeric covariates by
    mean (last with 'last'), text statics by their first value. A period whose rows all lack a value
    keeps y null. Returns the canonical valid frame sorted by (unique_id, ds) and the counts:
    rows_valid (rows combined), periods, rows_aggregated / periods_aggregated (rows in periods of several rows, and those periods),
    periods_with_quarantined_rows (periods that also had a row quarantined, so their aggregate
    lacks it)."""
    keys = ["unique_id", "ds"]
    passed = pl.col("__code").is_null()
    bad = flagged.filter(~passed & pl.col("unique_id").is_not_null() & pl.col("ds").is_not_null()).select(keys)
    rows = flagged.filter(passed).sort([*keys, *_instant_order(flagged.columns, source.tz), ROW])
    how, y = source.aggregate, pl.col("y")
    if how == "sum":  # (polars sums an all-null group to 0: a period without any value stays null)
        y_agg = pl.when(y.is_not_null().any()).then(y.sum()).otherwise(None)
    elif how == "mean":
        y_agg = y.mean()
    elif how == "last":
        y_agg = y.drop_nulls().last()
    else:
        raise ValueError(f"aggregate must be sum, mean or last, got {how!r}")
    numeric = {*source.past_cols, *source.future_cols}
    exprs = [y_agg.cast(pl.Float64).alias("y")]
    for c in cols:
        if c in ("unique_id", "ds", "y"):
            continue
        if c in numeric:
            exprs.append((pl.col(c).drop_nulls().last() if how == "last" else pl.col(c).mean()).alias(c))
        else:
            exprs.append(pl.col(c).drop_nulls().first().alias(c))
    out = rows.group_by(keys, maintain_order=True).agg(*exprs, pl.len().alias("__n"))
    several = out.filter(pl.col("__n") > 1)
    stats = {
        "rows_valid": rows.height,
        "periods": out.height,
        "rows_aggregated": int(several["__n"].sum() or 0),
        "periods_aggregated": several.height,
        "periods_with_quarantined_rows": out.join(bad.unique(), on=keys, how="semi").height if bad.height else 0,
    }
    return out.select(cols).with_columns(pl.col("unique_id").set_sorted()), stats


def _instant_order(columns: list[str], tz: str | None = None) -> list[pl.Expr]:
    """The order of a period's rows for `aggregate_periods` ('last'): by the instant each names, then the raw time as
    written. A daily time written with an offset and no tz (`DS_OFFSET` beside `DS_RAW`, `validate`'s order
    columns) names its wall time as written less its offset (one without an offset among them is quarantined,
    time_zone_ambiguous; were it not, it would read as UTC); with a `tz` (`Ingested.zone_offsets`), its wall time
    there less the zone's offset at its instant, and a time without an offset its wall time there read in the zone
    (`zones.zone_offset`: the first of the repeated autumn hour's two; of a skipped spring one, the instant the
    clocks jump past it); elsewhere `DS_RAW` is the instant (sub-daily, naive UTC) or the
    wall time in the source's tz. (By the wall time alone, 09:00 +01:00, 08:00 UTC, was the last reading of a day
    that held 08:30 +00:00; with a tz, 02:30 +01:00 and 02:30 +02:00 of an autumn night were one time, the later
    line taken.)"""
    if DS_RAW not in columns:
        return []
    raw = pl.col(DS_RAW)
    if DS_OFFSET not in columns:
        return [raw]
    if tz is None:
        return [(raw - pl.col(DS_OFFSET).fill_null(timedelta(0))).alias("__instant"), raw]
    return [pl.coalesce(raw - pl.col(DS_OFFSET), raw - zone_offset(raw, tz)).alias("__instant"), raw]


def _quarantine_rows(
    ingested: Ingested, failed: pl.DataFrame | None, dups: pl.DataFrame, checks: list
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Original raw values of the quarantined rows (read back by row number) + check + reason, and
    their series keys (unique_id, check: `_series_quarantined`)."""
    schema = {ROW: pl.UInt32, **{c: pl.Utf8 for c in ingested.raw_columns}, "check": pl.Utf8, "reason": pl.Utf8}
    n_failed = 0 if failed is None else failed.height
    if n_failed + dups.height == 0:
        return pl.DataFrame(schema=schema), pl.DataFrame(schema={"unique_id": pl.Utf8, "check": pl.Utf8})
    rows = pl.concat([s for s in (None if failed is None else failed[ROW], dups[ROW]) if s is not None and s.len()])
    try:
        raw = ingested.rows(rows)
    except pl.exceptions.PolarsError as exc:
        raise DataValidationError(f"cannot read back quarantined rows of {ingested.label}: {exc}"
                                  f"{alone_said(ingested.failing_file())}") from exc
    parts = []
    if n_failed:
        assert failed is not None  # the failing rows' codes, when some rows failed
        coded = raw.join(failed, on=ROW, how="inner")
        name = pl.lit(None, dtype=pl.Utf8)
        reason = pl.lit(None, dtype=pl.Utf8)
        for i, c in reversed(list(enumerate(checks, start=1))):
            name = pl.when(pl.col("__code") == i).then(pl.lit(c.name)).otherwise(name)
            reason = pl.when(pl.col("__code") == i).then(c.reason).otherwise(reason)
        parts.append(coded.with_columns(name.alias("check"), reason.alias("reason")))
    if dups.height:
        parts.append(raw.join(dups, on=ROW, how="inner"))
    out = pl.concat([p.select(ROW, *[RAW_PREFIX + c for c in ingested.raw_columns], "check", "reason") for p in parts],
                    how="vertical_relaxed")
    ids = pl.concat([p.select(pl.col("unique_id").cast(pl.Utf8), "check", "reason") for p in parts])
    ids = ids.filter(pl.col("check") != HEADER_REPEATED)  # the header's id names are no series, nor is the label
    # of a totals row without a time ('Summe' under the store column): it is not "a series with every row quarantined",
    # nor is a note line's text in an id column ('Source: Bureau of Labor Statistics,,': its reason says it, msg40)
    ids = ids.filter(~(pl.col("check").is_in(["time_missing", "time_unparsable"])
                       & (pl.col("unique_id").str.contains(TOTALS_ID_RE)
                          | pl.col("unique_id").str.strip_chars().str.contains(SUMMARY_RE)
                          | pl.col("reason").str.ends_with(NOTE_HINT)).fill_null(False))).drop("reason")
    # the values as written: a number its column left unsettled ('2.000': 2000 or 2.0?) carries a mark (sources)
    out = out.with_columns(pl.col(RAW_PREFIX + c).str.replace_all(UNSETTLED, "", literal=True)
                           for c in ingested.raw_columns if out.schema[RAW_PREFIX + c] == pl.Utf8)
    return out.rename({RAW_PREFIX + c: c for c in ingested.raw_columns}).sort(ROW), ids


def _series_quarantined(ids: pl.DataFrame, valid: pl.DataFrame) -> list[dict]:
    """The series of quarantined rows (`ids`: unique_id, check) that kept no valid row, each with
    its checks ('every row quarantined: y_not_number=5'): they are not forecast, and say so."""
    keyed = ids.filter(pl.col("unique_id").is_not_null() & (pl.col("unique_id") != ""))  # not id_missing rows
    if keyed.height == 0:
        return []
    candidates = keyed["unique_id"].unique()
    kept = valid.filter(pl.col("unique_id").is_in(candidates.implode()))["unique_id"].unique()
    lost = keyed.filter(~pl.col("unique_id").is_in(kept.implode()))
    counts = lost.group_by("unique_id", "check").len().sort("unique_id", "len", "check", descending=[False, True, False])
    out = []
    for (uid,), part in counts.group_by("unique_id", maintain_order=True):
        said = ", ".join(f"{c}={n}" for c, n in part.select("check", "len").iter_rows())
        out.append({"unique_id": uid, "reason": f"every row quarantined ({said})"})
    return out


def take_valid(result: ValidationResult) -> pl.DataFrame:
    """Hand the valid frame over (e.g. to preprocess) and leave an empty frame of the same schema in
    `result`, so that the caller holds no second reference and its memory is freed once used."""
    valid, result.valid = result.valid, result.valid.clear()
    return valid


def quarantine_unwritten(refusal: str, why: str) -> str:
    """A refusal (`enforce_thresholds`' error) whose quarantine file could not be written (`why`: the write's error, a
    full disk), as a command's check before Prefect and the flow's validation both say it: the refusal first, then
    why there is no file of the rows and their reasons, and the fix that matches the error (`unwritten_fix`)."""
    return (f"{refusal}; its quarantine file (the rows and their reasons) could not be written: {' '.join(why.split())}. "
            f"{unwritten_fix(why)} and run again to keep them (`flowcast validate` writes them too)")


def unwritten_fix(why: str) -> str:
    """What to do about a write that failed with `why` (its error's text): free space for no room (ENOSPC, EDQUOT,
    EFBIG), the right to write for a refusal (EACCES, EPERM, EROFS), else mend the error it names (it said 'Free
    space there' of any error: a permission denied, an I/O error)."""
    from flowcast.atomic import no_rights, no_room

    if no_room(why):
        return "Free space there"
    if no_rights(why):
        return "Give the user that runs flowcast the right to write there (or a disk that is not read-only)"
    return "Mend that error"


def left_out_unwritten(report: DataQualityReport, why: str) -> str:
    """Where rows below the threshold were quarantined and their file could not be written (`why`: the write's error,
    a full disk): the run stops before it publishes (it would publish without the file of the rows it leaves out), said
    with those rows, why there is no file and what to do (`quarantine_unwritten`). The run said the write's error
    alone, `... the previous file, if any, is intact`, neither the rows nor that nothing was published (faults44)."""
    lead = (f"{report.rows_quarantined:,} of {report.rows_in:,} rows failed validation ({_checks_refused(report)}) and "
            "this run would leave them out, so it stopped before it published anything")
    return quarantine_unwritten(lead, why)


def unwritten_refusal(result: ValidationResult, cfg: ValidationConfig, why: str, *,
                      artifact: str | None) -> DataValidationError | None:
    """Where the quarantine file of `result` could not be written (`why`: the write's error, a full disk): the refusal
    `enforce_thresholds` makes of these rows, said with why there is no file (`quarantine_unwritten`), carrying the
    report (`report`, whose quarantine_path is then None); None where the rows are not refused (the caller fails
    on the file it needs). One rule for the flow (`flows.common.load_data`) and `prepare_data` (`flowcast validate`,
    `flowcast train`): validate failed naming the disk alone, no report and no refusal. `artifact`: as for
    `enforce_thresholds`."""
    result.report.quarantine_path = None  # no file of the rows: the refusal names none
    try:
        enforce_thresholds(result, cfg, artifact=artifact)
    except DataValidationError as refusal:
        error = DataValidationError(quarantine_unwritten(str(refusal), why))
        error.report = result.report
        return error
    return None


def _checks_refused(r: DataQualityReport) -> str:
    """The checks of a refusal, each with its count and the questions its rows' reasons ask ('time_missing=3 (a
    totals row?)', `checks_counted`, as the run's summary and log say them; msg42: 'time_missing=3' alone), the 5 of
    the most rows, then how many more: both refusals of `enforce_thresholds` count them so (rows42: 'no valid rows
    left' printed them as a dict, `{'y_not_number': 2}`)."""
    ranked = sorted(r.checks.items(), key=lambda kv: -kv[1])
    return checks_counted(dict(ranked[:5]), r.check_hints) + (f", +{plural(len(ranked) - 5, 'more check')}"
                                                              if len(ranked) > 5 else "")


def _where_to_mend(r: DataQualityReport, artifact: str | None) -> str:
    """Where a refusal's rows are (its quarantine file, when written) and where each check's rows and reasons are to
    be read to mend them (the refusal gives one row): said alike by both refusals of `enforce_thresholds`.
    `artifact`: the key of the data-quality artifact the running flow writes (`backfill-data-quality-<source>` for
    a backfill's run; rows42: it was always named `data-quality-<source>`), None where no flow runs (a command)."""
    run = f"the run's {artifact} artifact, or " if artifact else ""
    where = f"; see {r.quarantine_path}" if r.quarantine_path else ""
    return where + ("; to mend them, read each check's rows and reasons in the data-quality report "
                    f"({run}`flowcast validate` with the run's options)")


def enforce_thresholds(result: ValidationResult, cfg: ValidationConfig, *, artifact: str | None) -> None:
    """Fail the run (DataValidationError, exit 2) above the quarantine threshold or with no valid rows. `artifact`:
    the key of the data-quality artifact the caller's flow writes (`reporting.Scope.key('quality')`), which the
    refusal names as where to read each check's rows; None for a command, which writes none."""
    r = result.report
    top_check = max(r.checks.items(), key=lambda kv: kv[1])[0] if r.checks else None
    hint = result.hint if top_check == "duplicate_conflict" else ""
    if r.rows_valid == 0:  # where the rows are, with their reasons (a scheduled run's error said it nowhere)
        raise DataValidationError(
            f"source {r.source!r}: no valid rows left: all {plural(r.rows_in, 'row')} quarantined "
            f"({_checks_refused(r)}){_example(result)}{hint}{_where_to_mend(r, artifact)}"
        )
    if r.quarantine_rate > cfg.quarantine_threshold:
        # the setting that lets the run go on, and the value it needs (rounded up to a whole percent)
        needed = min(1.0, math.ceil(r.quarantine_rate * 100) / 100)
        setting = (f"; to run with these rows left out, raise [validation] quarantine_threshold "
                   f"(FLOWCAST_VALIDATION__QUARANTINE_THRESHOLD={needed:g})")
        if hint and r.quarantine_rate > 0.5:  # most rows share a cause the hint names (an id column not declared)
            # (newuser29: '--id-col item' of a file keyed by store and item was told to raise it to 0.96)
            setting = (f"; raising [validation] quarantine_threshold (to {needed:g}) is no fix here: the run would "
                       f"forecast from the {r.rows_valid} of {r.rows_in} rows left")
        raise DataValidationError(
            f"source {r.source!r}: {r.rows_quarantined} of {r.rows_in} rows quarantined "
            f"({r.quarantine_rate:.1%} > threshold {cfg.quarantine_threshold:.1%}): {_checks_refused(r)}"
            f"{_example(result)}{hint}{_where_to_mend(r, artifact)}{setting}"
        )


def _totals_series(valid: pl.DataFrame) -> list[str]:
    """The valid series whose key is a totals label (`schemas.TOTALS_ID_RE`), at most 100."""
    ids = valid.get_column("unique_id").unique(maintain_order=True)
    return ids.filter(ids.str.contains(TOTALS_ID_RE)).head(100).to_list()


def zero_padded_ids(ids: pl.Series, limit: int = 100) -> list[list[str]]:
    """The groups (at most `limit`, each sorted) of distinct ids equal but for leading zeros or a trailing '.0':
    ['007', '7'], ['7', '7.0'] (the float a pandas column of integer ids with a missing value writes)."""
    return _id_groups(ids.cast(pl.Utf8), pl.col("unique_id").str.replace(r"^(\d+)\.0+$", "${1}")
                      .str.strip_chars_start("0"), limit)


def case_ids(ids: pl.Series, limit: int = 100) -> list[list[str]]:
    """The groups (at most `limit`, each sorted) of distinct ids equal but for letter case: ['STORE A', 'Store A'].
    Given the quarantined rows' ids too: a series split by case may have lost one half to the grid it set."""
    ids = ids.cast(pl.Utf8).drop_nulls()
    return _id_groups(ids.filter(ids != ""), pl.col("unique_id").str.to_lowercase(), limit)


def _id_groups(ids: pl.Series, key: pl.Expr, limit: int) -> list[list[str]]:
    """The groups (at most `limit`, each sorted, in the order of their key) of distinct `ids` sharing a `key`."""
    frame = pl.DataFrame({"unique_id": ids.unique()}).with_columns(key=key)
    groups = (frame.group_by("key").agg(pl.col("unique_id").sort(), n=pl.len())
              .filter(pl.col("n") > 1).sort("key").head(limit))
    return [list(g) for g in groups.get_column("unique_id").to_list()]


def _check_examples(quarantined: pl.DataFrame, csv_file: str | None = None, per_line: int = 1,
                    skipped: int = 0, separator: str = ",") -> dict[str, str]:
    """check -> 'source_row N: reason' of its first quarantined row; with the source's one CSV file,
    'source_row N (line N + 2 of FILE): reason'. source_row counts data rows from 0, so 'source_row 90'
    sent a reader of the file to line 90, two lines before the row (the header is line 1). A wide file
    has `per_line` rows (its series columns) a line: row N is on line N // per_line + 2. `skipped`: the lines
    before the header (an Excel 'sep=;' line, '#' comments: `csv_text.preamble`). A local file's lines are
    counted (`csv_text.record_lines`): a quoted value with a line break makes a row span several lines."""
    if not quarantined.height or not {"check", "reason"} <= set(quarantined.columns):
        return {}
    first = quarantined.group_by("check", maintain_order=True).first()
    wanted = {int(n) // per_line for n in first.get_column(ROW).drop_nulls()} if ROW in first.columns else set()
    lines = record_lines(csv_file, wanted, separator) if csv_file else {}

    def row(n: int | None) -> str:
        if n is None:
            return ""
        line = lines.get(n // per_line, n // per_line + 2 + skipped)
        return f"source_row {n} (line {line} of {csv_file}): " if csv_file else f"source_row {n}: "

    return {str(r["check"]): row(r.get(ROW)) + str(r["reason"]) for r in first.iter_rows(named=True)}


# the question a reason ends with, before its advice: ' (a totals row? it is not an observation: ...)', '(a month name?
# declare its time_format: ...)'; a short one (up to 60 characters), without parentheses of its own
_HINT_RE = r"\(([^()?]{1,60}\?)(?: [^()]*)?\)$"


def _check_hints(quarantined: pl.DataFrame, most: int = 2) -> dict[str, list[str]]:
    """check -> the questions its quarantined rows' reasons end with ('a totals row?', 'a note line?'), the most
    frequent first (then the first in the file), at most `most`; a check none of whose reasons asks one is left out.
    The run's summary said 'quarantined 2 (2 time_unparsable)', nothing a person could act on (msg40)."""
    if not quarantined.height or not {"check", "reason"} <= set(quarantined.columns):
        return {}
    order = pl.col(ROW) if ROW in quarantined.columns else pl.int_range(pl.len())
    found = (quarantined.select("check", pl.col("reason").str.extract(_HINT_RE, 1).alias("hint"), order.alias("row"))
             .drop_nulls("hint").group_by("check", "hint").agg(pl.len().alias("n"), pl.col("row").min())
             .sort("check", "n", "row", descending=[False, True, False]))
    out: dict[str, list[str]] = {}
    for check, hint in found.select("check", "hint").iter_rows():
        if len(said := out.setdefault(str(check), [])) < most:
            said.append(str(hint))
    return out


def checks_counted(checks: dict[str, int], hints: dict[str, list[str]] | None = None) -> str:
    """'time_missing=2 (a totals row? a note line?), y_not_number=1': each failed check with its count and the
    questions its rows' reasons ask (`_check_hints`), as the run's log says them (it said the counts alone)."""
    hints = hints or {}
    return ", ".join(f"{k}={v}" + (f" ({asked})" if (asked := check_questions(hints.get(k, []))) else "")
                     for k, v in checks.items())


def check_questions(hints: list[str], example: str = "") -> str:
    """'a totals row? a note line?': the questions a failed check's rows ask (`hints`, `_check_hints`), less one its
    `example` (the check's first row and reason) already asks; '' where none is left. One wording for the run's
    summary (`cli.pipeline._quarantine_said`), its log (`checks_counted`) and the data-quality report (cache47)."""
    return " ".join(h for h in hints if f"({h}" not in example)


def _csv_file(ingested: Ingested) -> str | None:
    """The source's file when it is one CSV file (its lines are its header and rows), else None."""
    files = ingested.files
    return files[0] if len(files) == 1 and file_format(ingested.source, files[0]) == "csv" else None


def _example(result: ValidationResult) -> str:
    """'; e.g. source_row 3 (line 5 of sales.csv): sales '1,100.5' is not a number (...)' for the most
    frequent failed check (its first row, as in the report's table)."""
    r = result.report
    if not r.checks:
        return ""
    top = max(r.checks.items(), key=lambda kv: kv[1])[0]
    return f"; e.g. {r.check_examples[top]}" if top in r.check_examples else ""


def write_quarantine(result: ValidationResult, directory: Path) -> Path | None:
    """Write quarantined rows to `directory/quarantine.parquet` atomically; None when there are none.

    The folder belongs to one run key: a clean re-run removes the file an earlier run left there
    (it would otherwise describe data that was since fixed), and the temp file of a run killed while it
    wrote it (`atomic.clean_stale_temps`, which a write does first; a clean re-run left it until gc, faults44).
    Raw columns are written as text, so rows from files whose column types differed fit one file. The path is
    recorded in the report."""
    q = result.quarantined
    directory = Path(directory)
    if q.height == 0:
        stale = directory / "quarantine.parquet"
        if stale.exists():
            stale.unlink()
        clean_stale_temps(directory)
        return None
    out = q.with_columns([pl.col(c).cast(pl.Utf8) for c in q.columns if c not in (ROW, "check", "reason")])
    path = atomic_write_parquet(out, directory / "quarantine.parquet")
    result.report.quarantine_path = str(path)
    return path


def as_of_label(as_of: datetime | None) -> str:
    """Folder name for a run's as_of ('all' when the run sees everything)."""
    return "all" if as_of is None else as_of.strftime("%Y-%m-%dT%H-%M-%S")


def quarantine_folder(root: Path, source_name: str, run_key: str) -> Path:
    """Where one run of one source writes its quarantine: root/<source>/<run_key>, so that two
    sources validated in one home never overwrite each other's quarantined rows."""
    return Path(root) / (re.sub(r"[^\w.-]+", "_", source_name).strip("._") or "source") / run_key
