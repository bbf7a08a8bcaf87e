"""Data freshness and continuity: how far a run's as_of is past the data's latest observation,
which series ended long before the others, and which series of the last publish the data lost.

A scheduled pipeline keeps running when its source stops being updated (an export job that
died, a feed that moved): every run then forecasts from the same old observations, and the
"forecast" of as_of 2026-12 covers 2019-10 .. 2020-09. Nothing fails, so nobody notices. Like
dbt's source freshness (warn_after / error_after), a run measures the gap:

- `periods_behind`: whole periods (of the source's frequency) from the latest observation of any
  series to as_of, both on the ds axis (`Ingested.as_of_ds`: the source's local dates, or UTC
  instants for sub-daily data). A monthly source read on 2026-12-03 whose latest month is
  2026-11 is 1 behind (its usual publication lag); one whose latest is 2019-09 is 86 behind.
  When it exceeds the horizon, every forecast period lies before as_of: the run says so (a
  warning; `validation.max_staleness` turns a gap above a limit into an error).
- `ended`: series whose last observation is more than a horizon before the latest one (a
  discontinued product, a closed store). With `validation.ended_series = "forecast"` (the default)
  each is still forecast from its own last observation, so their forecasts are dated long before
  the others'; the run names them. With `"exclude"` preprocessing sets them aside with their reason
  (`TrainingData.excluded`, `ended_series`): not backtested, trained on or published, and counted
  (`series_ended_excluded`). It is in no backtest window, also one whose cut came before it ended: intended,
  and said in the retrain's notes (`ended_backtest_note`). Each run decides anew from its own data: a series whose observations
  resume is forecast again. An excluded series is in the data, so `lost_series` never names it.
- `lost_series`: series the dataset's last earlier publish forecast that this run's data do not
  have at all (not even a quarantined row): a partial export, a filter gone wrong upstream. The
  run would publish without them and they would silently drop out of the forecasts; it names
  them, and `validation.max_series_lost` (a share of the last publish's series) fails it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from flowcast.data import calendar
from flowcast.mdtext import id_text, quoted_id
from flowcast.timekeys import utc_text
from flowcast.wording import plural

# what a run's JSON says of its data's freshness, `flowcast run --json` as `flowcast forecast --json`: one list, so that
# both carry the same keys (run's had neither `stale` nor `freq`). latest_ds is the start of the latest interval, as
# every ds; latest_ds_end its label as an end-labelled source writes it (time_label = "end"), null for start labels
# (series_ended_excluded: those of series_ended set aside by validation.ended_series = "exclude")
RUN_KEYS = ("latest_ds", "latest_ds_end", "periods_behind", "freq", "stale", "series_ended", "series_ended_excluded",
            "series_lost")


@dataclass(frozen=True)
class Freshness:
    latest_ds: datetime | None  # the latest observation of any series
    periods_behind: int | None  # whole periods from latest_ds to as_of (None: no as_of or no data)
    horizon: int
    freq: str
    ended: list[str] = field(default_factory=list)  # a sample of the ended series' ids (at most 5)
    n_ended: int = 0
    n_excluded: int = 0  # of the n_ended, those preprocessing set aside (validation.ended_series = "exclude")
    ended_last: list[datetime] = field(default_factory=list)  # the last observation of each of `ended`, in its order

    @property
    def all_before_as_of(self) -> bool:
        """Every forecast period (latest_ds + 1 .. + horizon) lies before the period of as_of: more than a
        horizon behind. At exactly a horizon the last forecast period is the one as_of falls in, still
        running (daily data through yesterday, read today at horizon 1): not stale."""
        return self.periods_behind is not None and self.periods_behind > self.horizon

    def to_dict(self) -> dict[str, Any]:
        return {"latest_ds": None if self.latest_ds is None else self.latest_ds.isoformat(),
                "periods_behind": self.periods_behind, "stale": self.all_before_as_of, "series_ended": self.n_ended,
                "series_ended_excluded": self.n_excluded, "ended": list(self.ended),
                "ended_last": [d.isoformat() for d in self.ended_last]}


def latest_end(latest_ds: str | datetime | None, freq: str, time_label: str) -> str | None:
    """The label an end-labelled source writes for the interval starting at `latest_ds` (ISO text, as in the run's
    JSON): '2024-03-30T12:00:00' for the hour from 11:00 UTC; None for start labels or no data."""
    if time_label != "end" or latest_ds is None:
        return None
    from flowcast.data.periods import end_label

    start = datetime.fromisoformat(latest_ds) if isinstance(latest_ds, str) else latest_ds
    frame = pl.DataFrame({"ds": [start]}, schema={"ds": pl.Datetime("us")})
    end = frame.select(end_label(pl.col("ds"), freq)).item()
    return end.isoformat() if isinstance(end, datetime) else None


def periods_between(start: datetime, end: datetime, freq: str) -> int:
    """Whole periods of `freq` from `start` (a grid point) to `end` (any time; negative when earlier)."""
    frame = pl.DataFrame({"a": [start], "b": [end]}, schema={"a": pl.Datetime("us"), "b": pl.Datetime("us")})
    return int(frame.select(calendar.periods_between(pl.col("a"), pl.col("b"), freq)).item())


def ended_series(last: pl.DataFrame, freq: str, horizon: int) -> pl.DataFrame:
    """unique_id, last_ds, gap (periods from its last observation to the latest of any series) of the series of `last`
    (unique_id, last_ds; a null last_ds: no observation, never ended) that ended more than `horizon` periods before
    the latest observation, the longest ended first. The one rule of `freshness` and of preprocessing's exclusion."""
    last = last.select(pl.col("unique_id").cast(pl.Utf8), pl.col("last_ds").cast(pl.Datetime("us"))) \
        .filter(pl.col("last_ds").is_not_null())
    if not last.height:
        return last.with_columns(pl.lit(0, dtype=pl.Int64).alias("gap"))
    latest = last["last_ds"].max()
    gaps = last.with_columns(calendar.periods_between(pl.col("last_ds"), pl.lit(latest, dtype=pl.Datetime("us")), freq)
                             .cast(pl.Int64).alias("gap"))
    return gaps.filter(pl.col("gap") > int(horizon)).sort(["gap", "unique_id"], descending=[True, False])


def ended_set_aside(summary: Any) -> pl.DataFrame | None:
    """unique_id, last_ds of the ended series preprocessing set aside (`PreprocessSummary.ended`), for `freshness`;
    None when there are none (or a summary without the field)."""
    ended = getattr(summary, "ended", None) or []
    if not ended:
        return None
    return pl.DataFrame({"unique_id": [str(e["unique_id"]) for e in ended], "last_ds": [datetime.fromisoformat(str(e["last_ds"])) for e in ended]},
                        schema={"unique_id": pl.Utf8, "last_ds": pl.Datetime("us")})


def ended_reason(last_ds: datetime, gap: int, freq: str, horizon: int, tz: str | None = None) -> str:
    """Why preprocessing set an ended series aside (its row of `TrainingData.excluded`); a sub-daily last observation
    with its wall time in the source's `tz` too (`when_text`), as the gap cut's reason beside it in that table says."""
    return (f"ended: its last observation, {when_text(last_ds, freq, tz)}, is {gap:,} periods ({freq}) before the latest of "
            f"any series, more than the horizon ({horizon}): not forecast ([validation] ended_series = \"exclude\")")


def instant_bounds(ids: pl.DataFrame, at: datetime | None, *, freq: str, tz: str | None, aggregate: str = "none",
                   time_label: str = "start", shifts: pl.DataFrame | None = None) -> pl.DataFrame | None:
    """unique_id, bound: for each series of `ids` (unique_id), the bound on the ds axis of what a run at the instant `at`
    had observed, taken back by the series' shift where its daily times were written with an offset (`shifts`,
    `periods.seen_shifts`): `evaluation.realized.observed_through_series`, the one rule of realized accuracy and the
    training cut. None without shifts or an instant: every period is then seen at the wall time its ds names, and
    `freshness` measures from as_of's wall time as it always did."""
    if shifts is None or not shifts.height or at is None or not ids.height:
        return None
    from flowcast.evaluation.realized import observed_through_series
    from flowcast.timekeys import storage_naive

    keys = ids.select(pl.col("unique_id").cast(pl.Utf8).unique().sort()).with_columns(
        pl.lit(storage_naive(at), pl.Datetime("us")).alias("at"))
    # on the axis ingest's bound (`Ingested.as_of_ds`) is on: an aggregated source's as_of itself (its periods are cut
    # by `observed_at`), an end-labelled one's moved back
    rule = {"aggregate": "none", "time_label": "start"} if aggregate != "none" else {"time_label": time_label}
    bound = observed_through_series(keys, freq=freq, tz=tz, shifts=shifts, **rule)
    return keys.select("unique_id").with_columns(bound.cast(pl.Datetime("us")).alias("bound"))


def freshness(lengths: pl.DataFrame, as_of_ds: datetime | None, freq: str, horizon: int,
              set_aside: pl.DataFrame | None = None, bounds: pl.DataFrame | None = None) -> Freshness:
    """`lengths`: unique_id, last_ds per series (`TrainingData.lengths()`); `as_of_ds`: the run's
    as_of on the ds axis (None: a run that sees everything, no gap to measure); `set_aside`: unique_id, last_ds of
    the ended series preprocessing excluded (`validation.ended_series = "exclude"`): ended, and counted as excluded.
    `bounds` (`instant_bounds`: daily times written with an offset): each series is behind by its periods to its own
    bound there, and the data by its freshest series: judged by the instant, as ingest cut the data (a -05:00 day is
    observed from 05:00 UTC; as_of's wall date read a day off, a series called stale that was not)."""
    h = int(horizon)
    aside = None if set_aside is None or not set_aside.height else \
        set_aside.select(pl.col("unique_id").cast(pl.Utf8), pl.col("last_ds").cast(pl.Datetime("us")))
    last = lengths.select(pl.col("unique_id").cast(pl.Utf8), pl.col("last_ds").cast(pl.Datetime("us")))
    if aside is not None:
        last = pl.concat([last, aside])
    if not last.height or last["last_ds"].null_count() == last.height:
        return Freshness(None, None, h, freq)
    latest = last["last_ds"].max()
    assert isinstance(latest, datetime)
    behind = None if as_of_ds is None else max(periods_between(latest, as_of_ds.replace(tzinfo=None), freq), 0)
    if as_of_ds is not None and bounds is not None and bounds.height:
        wall = pl.lit(as_of_ds.replace(tzinfo=None), dtype=pl.Datetime("us"))
        per = (last.filter(pl.col("last_ds").is_not_null())
               .join(bounds.select(pl.col("unique_id").cast(pl.Utf8), "bound"), on="unique_id", how="left")
               .select(calendar.periods_between(pl.col("last_ds"), pl.col("bound").fill_null(wall), freq)))
        behind = max(int(per.to_series().min()), 0)  # type: ignore[arg-type]
    ended = ended_series(last, freq, h)
    n_excluded = 0 if aside is None else int(ended["unique_id"].is_in(aside["unique_id"].implode()).sum())
    return Freshness(latest, behind, h, freq, [str(u) for u in ended["unique_id"].head(5).to_list()], ended.height,
                     n_excluded, list(ended["last_ds"].head(5).to_list()))


def when_text(ds: datetime | None, freq: str = "1d", tz: str | None = None) -> str:
    """A period of daily or longer data (its ds at midnight, the date as written) as a date; a sub-daily ds (a UTC
    instant: README, time zones), or a ds with a clock time, as `timekeys.utc_text` writes an instant
    ('2024-03-10 06:00 UTC'; its midnight '2024-03-10'), followed by its wall time in the source's `tz` where it has
    one ('2024-03-06 05:00 UTC (2024-03-06 00:00 -05:00 America/New_York)': a file of New York times was told of a
    gap 'from 2024-03-06 05:00 UTC' alone, a time it does not hold, newuser52). It wrote '2024-03-10 00:00 UTC'
    beside messages writing that instant '2024-03-10', and a clock time of daily data without its 'UTC'."""
    if ds is None:
        return "-"
    if not calendar.is_subdaily(freq) and (ds.hour, ds.minute, ds.second, ds.microsecond) == (0, 0, 0, 0):
        return f"{ds:%Y-%m-%d}"
    return utc_text(ds, tz)


def freshness_lines(f: Freshness, as_of: datetime | None, tz: str | None = None) -> list[str]:
    """Warnings for a run's log: the data stopped before as_of, series that ended long ago. as_of is said as the
    instant it is (`timekeys.utc_text`: UTC, and its wall time and offset in the source's `tz`): its wall time
    alone named no zone (a UTC 04:40 read as New York's, or the repeated autumn hour either of two instants); so is
    a sub-daily latest observation (it was said in UTC alone beside an as_of said in both, newuser52)."""
    out = []
    if f.all_before_as_of and as_of is not None:
        out.append(f"The latest observation, {when_text(f.latest_ds, f.freq, tz)}, is {f.periods_behind:,} periods ({f.freq}) "
                   f"before as_of {utc_text(as_of, tz)}: every forecast period (the next {f.horizon}) lies before as_of. "
                   "Is the source still being updated? ([validation] max_staleness fails a run past a limit)")
    if f.n_ended:
        # 'e.g.' before a sample only: all of them named read as a sample too ('1 series ended ..., e.g. Dresden')
        ended = ", ".join(map(quoted_id, f.ended))
        named = f", e.g. {ended}: " if f.n_ended > len(f.ended) else f": {ended}; "
        said = (f"{plural(f.n_ended, 'series', 'series')} ended more than a horizon ({f.horizon} periods) before the "
                f"latest observation ({when_text(f.latest_ds, f.freq, tz)}){named}")
        forecast = f.n_ended - f.n_excluded
        if not f.n_excluded:  # of one series: 'it is ... sets it aside', not 'each is ... sets them aside'
            said += (f"{'it' if f.n_ended == 1 else 'each'} is forecast from its own last observation, its forecasts "
                     f"dated before the others' ([validation] ended_series = \"exclude\" sets "
                     f"{'it' if f.n_ended == 1 else 'them'} aside)")
        else:
            said += (f"{'all' if not forecast else f.n_excluded} set aside ([validation] ended_series = \"exclude\"): not "
                     "backtested, trained on or published, listed among the excluded series"
                     + (f"; {forecast} forecast from {'its' if forecast == 1 else 'their'} own last observation"
                        if forecast else ""))
        out.append(said)
    return out


def ended_forecast_sentence(fresh: dict[str, Any], freq: str | None) -> str | None:
    """The data-quality artifact's sentence when ended series were forecast anyway (`validation.ended_series =
    "forecast"`, the default): how many, the first few with when each last had data; None when none was (no ended
    series, or all set aside: the excluded list names those). `fresh`: `Freshness.to_dict()`. The table's count
    alone did not say that such a series was forecast and published, dated before the others."""
    n, aside = int(fresh.get("series_ended") or 0), int(fresh.get("series_ended_excluded") or 0)
    if n <= aside:
        return None
    f = freq or "1d"
    latest = fresh.get("latest_ds")
    when = f" ({when_text(datetime.fromisoformat(str(latest)), f)})" if latest else ""
    if aside:  # a sample of all the ended ones would name set-aside series too: counted only
        return (f"{n - aside:,} of the {n:,} ended series were forecast anyway, from their own last observation, "
                f"their forecasts dated before the others'.")
    ids, lasts = list(fresh.get("ended") or []), list(fresh.get("ended_last") or [])
    named = ", ".join(f"{quoted_id(u)} (last data {when_text(datetime.fromisoformat(str(d)), f)})" if d else quoted_id(u)
                      for u, d in zip(ids, lasts + [None] * (len(ids) - len(lasts))))
    more = f" and {n - len(ids):,} more" if n > len(ids) else ""
    first = "e.g. " if n > len(ids) else ""
    return (f"Ended series forecast anyway: {n:,} series stopped more than a horizon before the latest observation"
            f"{when}, and a run forecasts {'it' if n == 1 else 'them'} all the same, from "
            f"{'its' if n == 1 else 'their'} own last observation, {'its' if n == 1 else 'their'} forecasts dated "
            f"before the others' and published beside them ([validation] ended_series = \"forecast\", the default; "
            f"\"exclude\" sets {'it' if n == 1 else 'them'} aside): "
            f"{first}{named}{more}.")


def ended_backtest_note(ended: list[dict[str, Any]] | None, oldest_cut: datetime | None, freq: str) -> str | None:
    """A retrain's note when preprocessing set ended series aside (`PreprocessSummary.ended`: unique_id, last_ds ISO):
    they are in no backtest window, also a window whose cut (`oldest_cut`: the oldest window's, of the series that end
    latest) came before they ended, where a run at that cut would have forecast them. None when none was set aside.

    Intended: the leaderboard chooses and calibrates the model for the series this run publishes, and every window
    scores the same series (learned weights and cross-calibrated widths compare windows); only which series are scored
    is known after the cut, no value after it reaches any window's forecasts. The note counts those a point-in-time
    backtest would have scored in some window, so the survivorship is said, not hidden."""
    if not ended:
        return None
    lasts = {str(e["unique_id"]): datetime.fromisoformat(str(e["last_ds"])) for e in ended}
    alive = sorted(u for u, d in lasts.items() if oldest_cut is not None and d > oldest_cut)
    n = len(lasts)
    named = ", ".join(map(quoted_id, sorted(lasts)[:5])) + (f" and {n - 5:,} more" if n > 5 else "")
    said = (f"{n:,} ended series set aside ([validation] ended_series = \"exclude\"), {named}, "
            f"{'is' if n == 1 else 'are'} in no backtest window either: the leaderboard scores the series this run "
            "publishes")
    if alive:
        cut = when_text(oldest_cut, freq)
        said += (f"; {len(alive):,} of them ({', '.join(map(quoted_id, alive[:5]))}{', ...' if len(alive) > 5 else ''}) still had "
                 f"observations after the oldest backtest cut ({cut}), where a run would have forecast "
                 f"{'it' if len(alive) == 1 else 'them'}: the scores leave out series that ended since (ended_series "
                 "= \"forecast\" keeps them in)")
    return said + "."


def check_staleness(f: Freshness, max_staleness: int | None) -> None:
    """DataValidationError when as_of is more than `max_staleness` periods past the latest observation."""
    if max_staleness is None or f.periods_behind is None or f.periods_behind <= max_staleness:
        return
    from flowcast.errors import DataValidationError

    raise DataValidationError(
        f"the data are stale: the latest observation, {when_text(f.latest_ds, f.freq)}, is {f.periods_behind:,} periods ({f.freq}) "
        f"before as_of, more than [validation] max_staleness = {max_staleness}. Check that the source is still "
        f"updated, or allow it: FLOWCAST_VALIDATION__MAX_STALENESS={f.periods_behind}")


@dataclass(frozen=True)
class Continuity:
    previous_as_of: datetime | None  # the dataset's last publish before this run's as_of (None: none)
    previous_series: int  # series it forecast
    lost: list[str]  # those this run's data do not have at all (sorted)

    @property
    def share(self) -> float:
        return len(self.lost) / self.previous_series if self.previous_series else 0.0

    def line(self) -> str | None:
        """A warning for the run's log, None when nothing was lost."""
        if not self.lost or self.previous_as_of is None:
            return None
        # 'e.g.' before a sample only, ids quoted as every list of series quotes them (`id_text`: 'north, east' is one
        # series), and one series said as one: it read '1 of the 9 series ... are not in this run's data at all, e.g.
        # store 5: they get no forecast' (newuser50a)
        n = len(self.lost)
        shown = ", ".join(map(id_text, self.lost[:5])) + (", ..." if n > 5 else "")
        return (f"{n:,} of the {self.previous_series:,} series of the last publish (as_of "
                f"{utc_text(self.previous_as_of)}) {'is' if n == 1 else 'are'} not in this run's data at all"
                f"{', e.g. ' if n > 5 else ': '}{shown}; {'it gets' if n == 1 else 'they get'} no forecast this time. "
                f"Did the source lose {'it' if n == 1 else 'them'}? ([validation] max_series_lost fails a run past a "
                "share)")


def lost_series(previous_ids: list[str], present_ids: set[str], previous_as_of: datetime | None) -> Continuity:
    """`previous_ids`: the series of the last publish; `present_ids`: every series this run's data
    have (forecast, excluded by preprocessing or with every row quarantined)."""
    prev = {str(u) for u in previous_ids}
    return Continuity(previous_as_of, len(prev), sorted(prev - {str(u) for u in present_ids}))


def check_series_lost(c: Continuity, max_series_lost: float | None) -> None:
    """DataValidationError when more than `max_series_lost` of the last publish's series are lost."""
    if max_series_lost is None or not c.lost or c.share <= max_series_lost:
        return
    from flowcast.errors import DataValidationError

    raise DataValidationError(
        f"{len(c.lost)} of the {c.previous_series} series of the last publish ({c.share:.1%}) are not in the data, "
        f"more than [validation] max_series_lost = {max_series_lost:g}: {', '.join(map(id_text, c.lost[:5]))}"
        f"{', ...' if len(c.lost) > 5 else ''}. Check the source, or allow it: "
        f"FLOWCAST_VALIDATION__MAX_SERIES_LOST={c.share:.2f}")
