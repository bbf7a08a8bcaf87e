"""The frequency of a file's rows, read off its dates, for a `--data` file given without `--freq`.

A new user's first `flowcast run sales.csv` stopped at 'also needs --freq'. pandas' `infer_freq` and darts
read the step off the dates; so does this: the times are parsed by the source's own reader (`sources.ingest`,
with a one-minute grid that truncates nothing coarser), the step between each series' consecutive times is
taken, and the most common step names the frequency when it covers at least `MIN_SHARE` of them. Irregular
dates (no step that common) name none: the command still asks for `--freq`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from flowcast.config import SourceConfig
from flowcast.data.calendar import parse_freq
from flowcast.data.panics import panics_named

if TYPE_CHECKING:
    from flowcast.data.sources import Ingested

MIN_SHARE = 0.6  # of consecutive steps that must agree on one frequency
PROBE_FREQ = "1m"  # the grid the dates are read on to infer it: one that truncates nothing coarser
SAMPLE_ROWS = 200_000  # rows read to infer it (the first ones of the file; of its rows by as_of when one is given)
_DAY_S = 86_400


@dataclass(frozen=True)
class Inferred:
    freq: str
    share: float  # of the consecutive steps it accounts for
    steps: int  # consecutive steps looked at
    # an aggregated source (`aggregate`) whose rows step finer than its `freq`: their step ('15m'), `freq` the period
    # they are combined into ('1h'); None where the rows step by `freq` itself
    step: str | None = None

    @property
    def written(self) -> str:
        """The step of the rows as written: what a run of them without `aggregate` reads as its frequency."""
        return self.step or self.freq


def _aggregated(found: Inferred | str | None, source: SourceConfig) -> Inferred | str | None:
    """`found` (the step of `source`'s rows) as the frequency of its periods: an aggregated source's rows finer than its
    `freq` ('15m' readings summed to '1h') are combined into them, so its frequency is `freq`, the rows' step said as
    `Inferred.step` (it was reported as the frequency: '1h' for hourly rows summed to days). Rows as coarse as `freq`
    or coarser, or no aggregate: `found` as it is."""
    # a period's nominal length, every unit (a table of this module's own knew none finer than a minute: '300s' failed
    # with KeyError: 's')
    from flowcast.data.preprocess import _NOMINAL

    if not isinstance(found, Inferred) or source.aggregate == "none":
        return found
    (n, unit), (m, own) = parse_freq(found.freq), parse_freq(source.freq)
    if n * _NOMINAL[unit] >= m * _NOMINAL[own]:
        return found
    return Inferred(source.freq, found.share, found.steps, step=found.freq)


def freq_of_step(seconds: int) -> str | None:
    """A step between consecutive times, in seconds -> the frequency it is one period of; None for none."""
    if seconds <= 0:
        return None
    if seconds < _DAY_S:
        if seconds % 3600 == 0:
            return f"{seconds // 3600}h"
        return f"{seconds // 60}m" if seconds % 60 == 0 else None
    days, rest = divmod(seconds, _DAY_S)
    if rest:
        return None
    if days in (1, 3):  # 3: a weekend skipped, counted with the days (business days are told apart below)
        return "1d"
    if 28 <= days <= 31:  # a month (February's 28 days too, not four weeks)
        return "1mo"
    if days % 7 == 0 and days < 28:
        return f"{days // 7}w"
    if 89 <= days <= 92:
        return "1q"
    if 181 <= days <= 184:
        return "6mo"
    if 365 <= days <= 366:
        return "1y"
    return f"{days}d" if days < 28 else None


def explain_freq(source: SourceConfig, as_of: datetime | None = None) -> Inferred | str:
    """`explain_freq_by`; with no row by `as_of` (a backfill starting before a file's first row: its run has nothing
    to read, which it says) the frequency of all the file's rows."""
    found = explain_freq_by(source, as_of)
    return explain_freq(source) if found is None else found


def explain_freq_by(source: SourceConfig, as_of: datetime | None = None) -> Inferred | str | None:
    """The frequency of `source`'s rows (its `freq` is ignored, but as the period an aggregated source combines finer
    rows into, `_aggregated`; with `as_of`, of its rows by then alone, as `ingest`
    keeps them: a backfill at an earlier as_of infers what its run did, whatever rows were written after), or why its dates settle none: the sentence a command asking for --freq adds, so that
    a file whose times do not parse is not answered 'also needs --freq' alone (given --freq, Unix seconds were only
    then told '--time-format %s'). A file that cannot be read at all (empty, a header alone, a time column of
    integers, a row with more fields than the header) raises the error its run gives: --freq would not help it.
    None when `as_of` is given and no row is dated by then."""
    from flowcast.data.schemas import DS_RAW, RAW_PREFIX
    from flowcast.data.sources import FIRST_ROWS_ENGINE, ingest
    from flowcast.data.validate import _collect, no_rows_error
    from flowcast.errors import FlowcastError

    try:
        probe = source.model_copy(update={"freq": PROBE_FREQ})
        ingested = ingest(probe, as_of)
        plan = (ingested.frame.select("unique_id", pl.col(DS_RAW).alias("t"),
                                      pl.col(RAW_PREFIX + source.time_col).alias("raw")).head(SAMPLE_ROWS))
        # a malformed row is named as the run names it (a line, its fields); by the in-memory engine: the streaming
        # one panicked over a 1,000,000-row file, the head ending its read early above the times' whole-column parse
        # (`sources.first_rows`)
        read = _collect([plan], ingested, engine=FIRST_ROWS_ENGINE)[0]
    except FlowcastError:
        raise
    except Exception:  # noqa: BLE001 - nothing inferred: the command asks for --freq, the run says what is wrong
        return "its rows could not be read"
    if read.height == 0:
        if as_of is not None:  # no row by as_of (a backfill starting before the data): its run has nothing to read,
            return None  # which it says (no decision of a run to match)
        raise no_rows_error(ingested)
    found = _freq_of(read, source)
    # (the rows that may be dated by as_of decide how the run reads day/month dates: so do they here; read again)
    with panics_named(ingested.label):
        said = _aggregated(_regular_day_month(ingested, read, source, found) or found, source)
    return said if not isinstance(said, str) else said + _case_split(read.get_column("unique_id"))


def _case_split(ids: pl.Series) -> str:
    """Why dates may step irregularly though each series' do not: its ids that differ only by letter case (one series
    written 'A' and 'a', each spelling every other day), as the data-quality report names them; '' for none
    (newuser45: the error said only that the dates step irregularly, the pair named once given --freq)."""
    from flowcast.data.validate import case_ids, case_ids_line

    groups = case_ids(ids)
    return f"; {case_ids_line(groups)}" if groups else ""


def _regular_day_month(ingested: Ingested, read: pl.DataFrame, source: SourceConfig,
                       found: Inferred | str) -> Inferred | None:
    """The frequency of day/month dates that no row settles the order of (every number 12 or below: '01.02.2010')
    read in the order whose dates step more regularly by a frequency than those of the order the probe read, which is
    the one spaced nearest its 1-minute grid (`day_month._day_month_by_spacing`), the finest: a monthly export dated on
    each month's 1st ('01.02.2010' .. '01.12.2019') was read month first, as 1-12 January of each year, at --freq 1d
    (92% of its steps), and its run lost every year but the last to the gaps between those Januaries; day first it
    steps by 1mo (100%), which the run at --freq 1mo then reads day first too. None where no other order is more
    regular (equally regular orders, '01/01/2024' .. '12/01/2024': the probe's reading stays) or where a run at that
    frequency would not read the dates in that order (it decides by their spacing, `day_month.time_column_profile`).
    A two-digit year may be first as well ('01.02.10': 2001-02-10 year first), a third reading. `ingested`: the
    probe's reading; its rows that decide the run's reading (`Ingested.by_as_of`: those that may be dated by as_of; a
    later row that settles the order, '13.01.2021', left a backfill's history read as its probe read it) and their
    profile at the probe's freq, which ingest read them by (`Ingested.by_as_of_profile`: not read again here)."""
    from flowcast.data.day_month import time_column_profile
    from flowcast.data.schemas import DAY_MONTH_RE, RAW_PREFIX, YEAR_FIRST_RE
    from flowcast.distinct import per_distinct

    col = RAW_PREFIX + source.time_col
    raw, profile = ingested.by_as_of, ingested.by_as_of_profile
    if raw is None or profile is None or source.time_format or raw.collect_schema().get(col) != pl.Utf8:
        return None
    text = pl.col("raw").cast(pl.Utf8).str.strip_chars()
    is_dm = text.str.contains(DAY_MONTH_RE)
    if not read.select(is_dm.any()).item():
        return None  # no day/month date

    def rank(said: Inferred | str) -> tuple[bool, float]:
        return (isinstance(said, Inferred), said.share if isinstance(said, Inferred) else 0.0)

    # the readings first, off the rows read: a glob whose files each settle their own order (day first beside month
    # first) has no single reading of every date, and its column was profiled twice over every file to find that out
    readings: dict[str, Inferred | str] = {}
    orders = ("day", "month", "year") if read.select(text.str.contains(YEAR_FIRST_RE).any()).item() else ("day", "month")
    for order in orders:  # (a date alone decides the step of a reading at a day or coarser)
        # each distinct text read once: its regexes over every row took 0.25-0.75 s of the 36,000 rows of 200 files
        # of 60 dates (`bench/mixed_folder.py`, on a loaded machine), the same 120 dates over and over
        day = per_distinct(text, functools.partial(_day_month_date, order=order))
        frame = read.with_columns(pl.when(is_dm).then(day.cast(read.schema["t"])).otherwise(pl.col("t")).alias("t"))
        if not frame.select((is_dm & pl.col("t").is_null()).any()).item():  # (a date this order reads nowhere)
            readings[order] = _freq_of(frame, source)
    if not readings:
        return None  # no order reads every date
    # the probe's own profile of these rows (ingest read them by it, at PROBE_FREQ): the file was read a second time
    # for it, and profiled twice over
    if profile.by_numbers is not None:
        return None  # the rows settle the order
    probed = profile.order
    best = max(readings, key=lambda o: rank(readings[o]))
    chosen = readings[best]
    if best == probed or not isinstance(chosen, Inferred) or rank(chosen) <= rank(readings.get(probed or "", found)):
        return None
    # (its distinct values read once, for both passes of a profile that decides by spacing)
    return chosen if time_column_profile(_distinct_values(raw, col), col, chosen.freq)[0] == best else None


def _distinct_values(raw: pl.LazyFrame, col: str) -> pl.LazyFrame:
    """The distinct values of the text column `col` of `raw`, in the order of their first row, as the one column of a
    frame: what `day_month.time_column_profile` reads of `raw` (the same answers), read once. `raw` itself where they
    cannot be read (bytes that are not UTF-8: each profile says so, as of `raw`)."""
    from flowcast.data.day_month import distinct_text

    try:
        return distinct_text(raw, col).collect(engine="streaming").lazy()
    except pl.exceptions.PolarsError:
        return raw


def _day_month_date(text: pl.Expr, order: str) -> pl.Expr:
    """The date of a day/month date's text read in `order` ('day', 'month' or 'year' first); null for other text."""
    from flowcast.data.time_text import _day_month_iso

    return _day_month_iso(text, order).str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)


def freq_by_dates(source: SourceConfig, dates: list[datetime]) -> list[Inferred | str | None]:
    """`explain_freq_by` at each of `dates` (aware UTC, in order), off one reading of the rows by the last of them
    (`ingest` once; explain_freq_by at each date cost a reading each: 6 s for 100,000 rows on 2 busy cores): the
    rows each date has observed (`periods.observed_at` of its instant), the first `SAMPLE_ROWS` of them. Their times
    are read as the last date reads them, which is how each date reads them where the reading of a time is not
    decided from the rows by as_of: a text column of day/month dates (the order, a two-digit year first) and local
    times whose repeated hour `ambiguous = "infer"` resolves are read at each date on its own (explain_freq_by at
    each). An unreadable file answers "its rows could not be read" at every date."""
    from flowcast.data.periods import as_of_bound, observed_at, planned_row
    from flowcast.data.schemas import DS_RAW, DS_SEEN, RAW_PREFIX
    from flowcast.data.sources import ingest
    from flowcast.data.validate import _collect
    from flowcast.errors import FlowcastError

    if not dates:
        return []
    probe = source.model_copy(update={"freq": PROBE_FREQ})
    try:
        ingested = ingest(probe, dates[-1])
        plan = ingested.frame.select("unique_id", pl.col(DS_RAW).alias("t"),
                                     pl.col(RAW_PREFIX + source.time_col).alias("raw"), DS_RAW, DS_SEEN, "ds",
                                     *dict.fromkeys(RAW_PREFIX + c for c in source.future_cols))
        read = _collect([plan], ingested)[0]
    except FlowcastError:
        raise
    except Exception:  # noqa: BLE001 - as explain_freq_by
        return ["its rows could not be read"] * len(dates)
    if _read_by_as_of(ingested, source):  # (such a file's times may read otherwise at each date)
        return [explain_freq_by(source, day) for day in dates]
    found: list[Inferred | str | None] = []
    for day in dates:
        bound = as_of_bound(probe, day)  # as ingest cuts at `day` (`explain_freq_by`)
        # (and the planned rows after it, with a future covariate's value, as `ingest` keeps them)
        rows = read.filter(observed_at(probe, bound, apart=ingested.seen_apart) | planned_row(probe)).head(SAMPLE_ROWS)
        found.append(_aggregated(_freq_of(rows, source), source) if rows.height else None)
    return found


def _read_by_as_of(ingested: Ingested, source: SourceConfig) -> bool:
    """Whether how `source`'s times read is decided from its rows by as_of (`sources.ingest`): a text time column
    without a time_format holding day/month dates (`Ingested.time_profile`, of every row: the probe's ingest read it,
    and it was read again here), or local sub-daily times whose repeated hour `ambiguous = "infer"` resolves (read as
    `freq_by_dates`' probe reads them)."""
    if source.ambiguous == "infer" and source.tz not in (None, "UTC"):
        return True
    return ingested.time_profile is not None and bool(ingested.time_profile.dated)


def _freq_of(read: pl.DataFrame, source: SourceConfig) -> Inferred | str:
    """The frequency of the rows `read` (unique_id, t: their parsed times, raw: as written), or why they settle none."""
    from flowcast.data.schemas import _time_hint

    # in time order: each series' steps are its consecutive times (`diff().over` keeps a series' rows in the frame's
    # order), and no reading of the frame needs the series apart (a sort by the ids' text as well took 0.35 s of
    # 200,000 rows, 7x the times' alone)
    frame = read.select("unique_id", "t").drop_nulls().unique().sort("t")
    if frame.height == 0:
        first = read.select(pl.col("raw").drop_nulls().first()).item()
        if first is None:
            return f"its time column {source.time_col!r} is empty"
        hint = read.head(1).select(_time_hint(pl.lit(str(first)))).item() or ""
        # a hint says what reads them ('2017K1': write '2017Q1'; no --time-format reads a quarter)
        return (f"no value of its time column {source.time_col!r} reads as a time (e.g. {str(first).strip()!r}"
                f"{hint})" + ("" if hint else "; --time-format gives the format that reads them"))
    steps = (frame.with_columns(pl.col("t").diff().over("unique_id").dt.total_seconds().alias("s"))
             .drop_nulls("s").filter(pl.col("s") > 0))
    if steps.height == 0:
        return "no series has two different times"
    # the few distinct steps are named in Python, not each of up to SAMPLE_ROWS steps
    by_step = steps.group_by("s").len()
    named: dict[str, int] = {}
    for seconds, n in by_step.iter_rows():
        name = freq_of_step(int(seconds))
        if name is not None:
            named[name] = named.get(name, 0) + n
    best = min(named.items(), key=lambda kv: (-kv[1], kv[0])) if named else None
    if best is None or best[1] / steps.height < MIN_SHARE:
        by_month = _month_steps(frame)  # months stamped on varying days (the 1st, the 15th, the last)
        if by_month is not None:
            return by_month
    if best is None:
        return f"no step between its times is a period of a frequency{_jitter_said(steps)}"
    freq, n = best
    share = n / steps.height
    if share < MIN_SHARE:
        return (f"its dates step irregularly (the most common step, {freq}, is {share:.0%} of "
                f"{steps.height:,} consecutive steps{_jitter_said(steps)})")
    if freq == "1d" and _weekdays_only(frame):
        freq = "1b"
    elif freq in ("1y", "1q"):
        freq = _fiscal(frame, str(freq))
    return Inferred(str(freq), share, steps.height)


def _jitter_said(steps: pl.DataFrame) -> str:
    """Where most sub-daily or daily steps (`steps`' column s, in seconds) are seconds from one period (1,811 s,
    1,795 s, ... of half-hourly readings stamped by a logger's clock; 86,412 s, 86,371 s, ... of a daily one), that
    period and what to do: '; 97% of them within seconds of 30m: ...'. newuser47: such a file was told only that
    its dates step irregularly, 'the most common step, 30m, is 3%'. Within twice `schemas.JITTER_MAX` (two times,
    each up to it off its grid point) and a tenth of the period; '' where no period holds `MIN_SHARE` of the steps.
    What the declared freq then does (`_jitter_read`) is said with it."""
    from flowcast.data.schemas import JITTER_MAX

    s = pl.col("s")
    grid = pl.when(s >= 600).then(300).otherwise(60)  # periods of whole 5 minutes (whole minutes below 10)
    period = ((s / grid).round() * grid).cast(pl.Int64)
    near = (steps.select(period.alias("p"), (s - period).abs().alias("off"))
            .filter((pl.col("p") > 0) & (pl.col("p") <= _DAY_S)
                    & (pl.col("off") <= pl.min_horizontal(pl.lit(2 * JITTER_MAX.total_seconds()), pl.col("p") / 10))))
    counts = near.group_by("p").len().sort("len", "p", descending=[True, False])
    if counts.height == 0:
        return ""
    p, n = counts.row(0)
    name = freq_of_step(int(p))
    if name is None or n / steps.height < MIN_SHARE:
        return ""
    return (f"; {n / steps.height:.0%} of its steps are within seconds of {name}: times a few seconds off a {name} "
            f"grid, as a logger's clock writes them? round them to the grid before export (e.g. with polars' "
            f".dt.round('{name}')), as {_jitter_read(name)}")


def _jitter_read(freq: str) -> str:
    """What declaring `freq` does with times seconds off its grid: a sub-daily grid quarantines each one off it
    (`schemas._jitter_hint` says by how much); a daily one reads each time by its date, so a time seconds before
    midnight is the day before: two rows of one day (a conflict, quarantined, where their values differ), none of
    the next."""
    if freq == "1d":
        return ("--freq 1d reads each time by its date: one seconds before midnight is the day before, two rows on "
                "one day and none on the next")
    return f"--freq {freq} quarantines each one off it"


_MONTH_STEPS = {1: "1mo", 3: "1q", 12: "1y"}


def _month_steps(frame: pl.DataFrame) -> Inferred | None:
    """The frequency of dates one (three, twelve) calendar months apart whatever their day: a monthly series
    stamped on the 1st, the 15th or the 28th (a reading taken when someone got to it, a statement's closing day,
    the last business day), whose steps of 3 to 59 days named no frequency ('its dates step irregularly (the most
    common step, 1d, ...)': a 3-day step read as a weekend skipped) although a monthly grid reads every date as its
    month. None when such steps are not `MIN_SHARE` of the consecutive steps (irregular days: most are 0 months)."""
    months = (frame.with_columns((pl.col("t").dt.year() * 12 + pl.col("t").dt.month()).alias("m"))
              .with_columns(pl.col("m").diff().over("unique_id").alias("k")).drop_nulls("k"))
    if months.height == 0:
        return None
    counts = dict(months.group_by("k").len().iter_rows())
    k, n = max(((k, counts.get(k, 0)) for k in _MONTH_STEPS), key=lambda kv: (kv[1], -kv[0]))
    share = n / months.height
    if share < MIN_SHARE:
        return None
    freq = _MONTH_STEPS[k]
    return Inferred(freq if freq == "1mo" else _fiscal(frame, freq), share, months.height)


def _fiscal(frame: pl.DataFrame, freq: str) -> str:
    """'1y' or '1q' as calendar periods, or '12mo' / '3mo' where the dates name other months (years ending in June,
    quarters ending in February, May, August and November), which a calendar grid would move to January."""
    month = frame.select(pl.col("t").dt.month().mode().min()).item()
    if freq == "1y":
        return "1y" if month in (1, 12) else "12mo"
    return "1q" if month % 3 in (0, 1) else "3mo"


def _weekdays_only(frame: pl.DataFrame) -> bool:
    """Daily times none of which falls on a Saturday or Sunday, over at least two weeks of them: business days."""
    if frame.height < 10:
        return False
    return not frame.select((pl.col("t").dt.weekday() >= 6).any()).item()
