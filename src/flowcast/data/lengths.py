"""Spans that fit the data: the lookback, the validation span and the backtest windows chosen from
the series' lengths, so that short histories work with the defaults.

A run's settings name a lookback, a validation span (`preprocess.val_size`, default: the horizon)
and a number of backtest windows. On short data (M3 yearly: 14 to 41 periods a series, horizon 6)
the defaults would leave no series long enough for a network or for the backtest. Where a setting
was not given explicitly, it is shortened so that at least `preprocess.length_share` of the series
fit (the shortest useful share): a network needs `lookback + horizon + val_size` periods
(`short_series="exclude"`; `horizon + val_size + 1` with `"pad"`), a backtest of `n` windows
`horizon + (n - 1) * step + 1` (when no series is longer than the horizon, one window scores
as many steps as the longest series allows, so that the candidates are still ranked). The lookback is shortened first, never below the horizon (a
shorter one sees too little to be worth a network), then the validation span (down to 0). A value
given explicitly is kept. The series still too short are forecast by the statistical models that
can run on them.
Every change is said in a note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from flowcast.wording import plural


def network_min_length(*, lookback: int, horizon: int, val_size: int, short_series: str) -> int:
    """The fewest periods a series needs for a network to train on and forecast it: lookback +
    horizon + val_size with `short_series="exclude"`, horizon + val_size + 1 with `"pad"` (shorter
    inputs padded and masked)."""
    if short_series == "exclude":
        return lookback + horizon + val_size
    return horizon + val_size + 1


def share_length(lengths: Sequence[int], share: float) -> int:
    """The largest length that at least `share` of the series have (0 for no series)."""
    ordered = sorted((int(n) for n in lengths), reverse=True)
    if not ordered:
        return 0
    k = max(1, math.ceil(share * len(ordered)))
    return ordered[min(k, len(ordered)) - 1]


def _who_has(lengths: Sequence[int], n: int, share: float) -> tuple[str, bool]:
    """'80% of the series have at least n periods', or, when the share is out of reach and the spans fit
    the shortest series that can take part, how many do ('2 of 5 series have ...', '1 of 5 series has ...', not
    '80% ...'); and whether that is one series (it said '1 of 5 series have ..., so that they are long enough')."""
    count = sum(1 for x in lengths if int(x) >= n)
    if count >= max(1, math.ceil(share * len(lengths))):
        return f"{share:.0%} of the series have at least {plural(n, 'period')}", False
    return (f"only {count:,} of {len(lengths):,} series {'has' if count == 1 else 'have'} at least {plural(n, 'period')} "
            f"(the share {share:.0%} is out of reach)"), count == 1


def _shorter_said(lengths: Sequence[int], need: int, noun: str) -> str:
    """' (the shorter {noun} are forecast by the statistical models that can run on them)' where some of `lengths`
    are shorter than the `need` periods of a network; '' where none is (it was said of series all of one length)."""
    if not any(int(x) < need for x in lengths):
        return ""
    return f" (the shorter {noun} are forecast by the statistical models that can run on them)"


@dataclass
class NetworkSpans:
    lookback: int
    val_size: int
    notes: list[str] = field(default_factory=list)

    def changed(self, lookback: int, val_size: int) -> bool:
        return (self.lookback, self.val_size) != (lookback, val_size)


def fit_network_spans(lengths: Sequence[int], *, horizon: int, lookback: int, val_size: int, short_series: str,
                      share: float, lookback_given: bool = False, val_size_given: bool = False) -> NetworkSpans:
    """The lookback and validation span for series of `lengths` (see the module)."""
    n = share_length(lengths, share)
    lb, vs = _shortened(n, horizon=horizon, lookback=lookback, val_size=val_size, short_series=short_series,
                        lookback_given=lookback_given, val_size_given=val_size_given)
    need = network_min_length(lookback=lb, horizon=horizon, val_size=vs, short_series=short_series)
    if need > n:  # the share is out of reach (too short even for the shortest spans): shorten them no further
        # than the shortest series that can take part needs; shorter spans would add no series
        n = min((int(x) for x in lengths if x >= need), default=n)
        lb, vs = _shortened(n, horizon=horizon, lookback=lookback, val_size=val_size, short_series=short_series,
                            lookback_given=lookback_given, val_size_given=val_size_given)
    out = NetworkSpans(lb, vs)
    longest = max((int(x) for x in lengths), default=0)
    if (lookback_given and short_series == "exclude" and lengths
            and network_min_length(lookback=lb, horizon=horizon, val_size=vs, short_series=short_series) > longest):
        # a given lookback no series can hold: 'lookback 500 -> 500, validation span 14 -> 0, so that they are long
        # enough for a network' said neither that the lookback was the cause nor what would fit
        fits = longest - horizon - vs
        spans = "lookback + horizon" + (" + validation span" if vs else "")
        out.notes.append(
            f"model.lookback = {lookback} is set explicitly, and no series has the {lookback + horizon + vs} periods "
            f"({spans}) a network needs with it (the longest has {longest}): no network can train. "
            + (f"A lookback of at most {fits} fits the longest series; unset, the lookback is fitted to the data."
               if fits >= 1 else f"No lookback fits: every series is shorter than {spans} with a lookback of 1."))
    elif out.changed(lookback, val_size):
        changed = [f"{what} {before} -> {after}" for what, before, after in (
            ("lookback", lookback, lb), ("validation span", val_size, vs)) if before != after]
        who, one = _who_has(lengths, n, share)
        shorter = _shorter_said(lengths, network_min_length(lookback=lb, horizon=horizon, val_size=vs,
                                                            short_series=short_series), "ones")
        out.notes.append(
            f"{who}: {', '.join(changed)}, so that {'it is' if one else 'they are'} long enough for a network{shorter}.")
    return out


def fit_network_spans_for_backtest(lengths: Sequence[int], *, horizon: int, lookback: int, val_size: int,
                                   short_series: str, share: float, n_windows: int, step: int,
                                   windows_given: bool = False, lookback_given: bool = False,
                                   val_size_given: bool = False) -> NetworkSpans:
    """`fit_network_spans`, unless no series would then be long enough for a network at the first
    backtest cutoff (where the backtest's networks are trained): then the spans are fitted to the
    histories before that cutoff. Fitted to whole series only, 60 days with horizon 7 kept lookback
    36 (50 periods needed) while the backtest's networks had 46: none was trained, no network
    candidate was scored, and none could ever be published."""
    def fit(of: Sequence[int]) -> NetworkSpans:
        return fit_network_spans(of, horizon=horizon, lookback=lookback, val_size=val_size, short_series=short_series,
                                 share=share, lookback_given=lookback_given, val_size_given=val_size_given)

    spans = fit(lengths)
    bt = fit_backtest(lengths, horizon=horizon, n_windows=n_windows, step=step, share=share, given=windows_given)
    cut = [int(x) - bt.horizon - (bt.n_windows - 1) * bt.step for x in lengths]
    need = network_min_length(lookback=spans.lookback, horizon=horizon, val_size=spans.val_size,
                              short_series=short_series)
    if not lengths or max(cut) >= need or max(lengths) < need:  # the backtest trains them, or nothing would
        return spans
    at_cut = fit(cut)
    if network_min_length(lookback=at_cut.lookback, horizon=horizon, val_size=at_cut.val_size,
                          short_series=short_series) > max(cut):
        return spans  # even the shortest spans leave the backtest without a network: nothing gained
    changed = [f"{what} {before} -> {after}" for what, before, after in (
        ("lookback", lookback, at_cut.lookback), ("validation span", val_size, at_cut.val_size)) if before != after]
    shorter = _shorter_said(cut, network_min_length(lookback=at_cut.lookback, horizon=horizon, val_size=at_cut.val_size,
                                                    short_series=short_series), "series")
    at_cut.notes = [
        (f"no series has {need} periods before the first backtest window (the longest has {max(cut)}): "
         f"{', '.join(changed)}, so that the networks take part in the backtest{shorter}.")]
    return at_cut


def _shortened(n: int, *, horizon: int, lookback: int, val_size: int, short_series: str, lookback_given: bool,
               val_size_given: bool) -> tuple[int, int]:
    """(lookback, validation span) shortened, where not given, so that a series of `n` periods serves a
    network: the lookback first (never below the horizon), then the validation span (down to 0)."""
    lb, vs = lookback, val_size
    if short_series == "exclude":
        room = n - horizon  # for lookback + val_size
        if lb + vs > room and not lookback_given:
            lb = max(min(lookback, horizon), room - vs, 1)
        if lb + vs > room and not val_size_given:
            vs = max(room - lb, 0)
    elif vs > n - horizon - 1 and not val_size_given:
        vs = max(n - horizon - 1, 0)
    return lb, vs


@dataclass
class BacktestSpans:
    n_windows: int
    step: int
    need: int  # periods a series needs to take part in the backtest
    notes: list[str] = field(default_factory=list)
    horizon: int = 0  # steps each window scores: the run's horizon, fewer when no series is longer than it


def fit_backtest(lengths: Sequence[int], *, horizon: int, n_windows: int, step: int, share: float,
                 given: bool = False, ids: Sequence[str] | None = None) -> BacktestSpans:
    """Backtest windows for series of `lengths`: fewer windows (not below 1) unless `given`, so that
    at least `share` of the series take part (given windows are reduced only when no series could
    take part; when no series is longer than the horizon, one window scores fewer steps); a series
    with fewer than `need` periods is left out of the backtest (the leaderboard) and forecast by the
    best candidate that can run on it. `ids`: the series of `lengths`, in their order, where the note of the series
    left out is to name them (the first 5, then how many more: `validate.some_named`)."""
    n = share_length(lengths, share)
    k = n_windows
    if not given:
        k = _windows_that_fit(n, horizon=horizon, n_windows=n_windows, step=step)
        if horizon + (k - 1) * step + 1 > n:  # the share is out of reach even with one window: drop no more
            # windows than the shortest series that can take part needs; fewer windows would add no series
            n = min((int(x) for x in lengths if x >= horizon + (k - 1) * step + 1), default=n)
            k = _windows_that_fit(n, horizon=horizon, n_windows=n_windows, step=step)
    need = horizon + (k - 1) * step + 1
    out = BacktestSpans(k, step, need, horizon=horizon)
    longest = max((int(x) for x in lengths), default=0)
    # no series is longer than the horizon: the note below says why there is one window (newuser25: 3 days of sales
    # at horizon 14 were also told '80% of the series have at least 1 periods: 1 backtest window(s) instead of 2')
    if k != n_windows and not 2 <= longest <= horizon:
        out.notes.append(f"{_who_has(lengths, n, share)[0]}: {plural(k, 'backtest window')} instead of {n_windows}.")
    if horizon < longest < need:  # even the windows given leave no series: as many as the longest allows
        k = (longest - 1 - horizon) // step + 1
        out = BacktestSpans(k, step, horizon + (k - 1) * step + 1, notes=out.notes, horizon=horizon)
        out.notes.append(f"no series is long enough for {n_windows} backtest windows (the longest has {longest} "
                         f"periods): {plural(k, 'window')}.")
    if 2 <= longest <= horizon:  # no series is longer than the horizon: whatever the windows asked for
        out = BacktestSpans(1, longest - 1, longest, notes=out.notes, horizon=longest - 1)
        out.notes.append(f"no series has more than {horizon} periods (the longest has {longest}): one backtest window "
                         f"scores the first {plural(longest - 1, 'step')} of the forecasts.")
    left_out = sum(1 for x in lengths if x < out.need)
    if left_out:
        from flowcast.data.validate import some_named

        shown = [] if ids is None else [u for u, x in zip(ids, lengths, strict=True) if x < out.need][:5]
        named = f" ({some_named(left_out, shown)})" if shown else ""
        out.notes.append(f"{left_out:,} of {len(lengths):,} series have fewer than {out.need} periods{named}: they take "
                         "no part in the backtest and are forecast by the best candidate that can run on them." if left_out > 1
                         else f"1 of {len(lengths):,} series has fewer than {out.need} periods{named}: it takes no part in "
                         "the backtest and is forecast by the best candidate that can run on it.")
    return out


def horizon_beyond_history(lengths: Sequence[int], horizon: int) -> str | None:
    """The warning of a forecast whose horizon is longer than the longest series' history (`flowcast forecast
    --horizon 1000` on 120 days was published without a word), both numbers said; None where it is not."""
    longest = max((int(x) for x in lengths), default=0)
    if not longest or horizon <= longest:
        return None
    return (f"the horizon, {plural(horizon, 'period')}, exceeds the history: the longest series has "
            f"{plural(longest, 'period')}; forecasts that far ahead extend a pattern past anything the data "
            "showed (a shorter --horizon, or more history).")


def _windows_that_fit(n: int, *, horizon: int, n_windows: int, step: int) -> int:
    """The most backtest windows (1 to n_windows) that a series of `n` periods takes part in."""
    fits = (n - 1 - horizon) // step + 1 if n > horizon else 1
    return max(1, min(n_windows, fits))
