"""Spans fitted to the series' lengths (flowcast.data.lengths)."""

from __future__ import annotations

import pytest

from flowcast.data.lengths import fit_backtest, fit_network_spans, horizon_beyond_history, share_length

M3_YEARLY_LIKE = [14] * 200 + [20] * 300 + [41] * 145  # 14 to 41 periods a series


def test_share_length_is_what_the_share_of_series_has():
    assert share_length([3, 8, 14, 40], 0.8) == 3  # all four
    assert share_length([3, 8, 14, 40], 0.5) == 14  # two of four
    assert share_length(M3_YEARLY_LIKE, 0.8) == 14 and share_length([], 0.8) == 0


def test_lookback_then_validation_span_shrink_to_fit_the_share():
    s = fit_network_spans(M3_YEARLY_LIKE, horizon=6, lookback=36, val_size=6, short_series="exclude", share=0.8)
    assert (s.lookback, s.val_size) == (6, 2)  # 6 + 6 + 2 = 14: every series serves a network
    assert "lookback 36 -> 6" in s.notes[0]
    # given values are kept
    s = fit_network_spans(M3_YEARLY_LIKE, horizon=6, lookback=36, val_size=6, short_series="exclude", share=0.8,
                          lookback_given=True)
    assert (s.lookback, s.val_size) == (36, 0)
    s = fit_network_spans(M3_YEARLY_LIKE, horizon=6, lookback=36, val_size=6, short_series="exclude", share=0.8,
                          lookback_given=True, val_size_given=True)
    assert (s.lookback, s.val_size) == (36, 6)
    assert s.notes == [("model.lookback = 36 is set explicitly, and no series has the 48 periods (lookback + horizon + "
                       "validation span) a network needs with it (the longest has 41): no network can train. A lookback "
                       "of at most 29 fits the longest series; unset, the lookback is fitted to the data.")]
    # the lookback never goes below the horizon; long enough data keeps everything
    s = fit_network_spans([3, 8, 14, 40], horizon=3, lookback=36, val_size=3, short_series="exclude", share=0.8)
    assert (s.lookback, s.val_size) == (3, 2)  # 3 + 3 + 2 = 8: the 3-period series never fits, 8 does
    s = fit_network_spans([200] * 5, horizon=12, lookback=36, val_size=12, short_series="exclude", share=0.8)
    assert (s.lookback, s.val_size, s.notes) == (36, 12, [])


def test_pad_needs_only_horizon_and_validation_span():
    s = fit_network_spans([10] * 9 + [100], horizon=6, lookback=36, val_size=6, short_series="pad", share=0.8)
    assert (s.lookback, s.val_size) == (36, 3)  # 6 + 3 + 1 = 10


def test_backtest_windows_shrink_and_short_series_are_left_out():
    b = fit_backtest(M3_YEARLY_LIKE, horizon=6, n_windows=2, step=6, share=0.8)
    assert (b.n_windows, b.need, b.notes) == (2, 13, [])
    b = fit_backtest([8, 8, 8, 8, 40], horizon=3, n_windows=3, step=3, share=0.8)
    assert (b.n_windows, b.need) == (2, 7)
    assert b.notes == ["80% of the series have at least 8 periods: 2 backtest windows instead of 3."]
    b = fit_backtest([3, 8, 14, 40], horizon=3, n_windows=2, step=3, share=0.8)
    assert (b.n_windows, b.need) == (2, 7)  # one window (4 periods) would not take the 3-period series either
    assert b.notes == [("1 of 4 series has fewer than 7 periods: it takes no part in the backtest and is forecast "
                       "by the best candidate that can run on it.")]  # 'have ... they' of one series (ui21)
    b = fit_backtest([3, 8, 14, 40], horizon=3, n_windows=2, step=3, share=0.8, given=True)
    assert (b.n_windows, b.need) == (2, 7)


def test_data_shorter_than_the_horizon_is_scored_on_fewer_steps():
    """No series longer than the horizon (7): one window scores the first 4 steps (the longest has 5)."""
    b = fit_backtest([2, 3, 5], horizon=7, n_windows=2, step=7, share=0.8)
    assert (b.n_windows, b.horizon, b.need) == (1, 4, 5)
    assert b.notes[-2:] == [
        ("no series has more than 7 periods (the longest has 5): one backtest window scores the first 4 steps of "
         "the forecasts."),
        ("2 of 3 series have fewer than 5 periods: they take no part in the backtest and are forecast by the best "
         "candidate that can run on them.")]
    assert fit_backtest([3, 8, 14, 40], horizon=3, n_windows=2, step=3, share=0.8).horizon == 3


def test_windows_given_that_no_series_fits_are_reduced():
    b = fit_backtest([10, 8], horizon=3, n_windows=4, step=3, share=0.8, given=True)
    assert (b.n_windows, b.need, b.horizon) == (3, 10, 3)
    assert "no series is long enough for 4 backtest windows (the longest has 10 periods): 3 windows." in b.notes


def test_series_that_can_never_take_part_do_not_shorten_the_spans_of_the_others():
    """Regression: one series of 6 days beside series of 81 and 171 shortened the lookback from 36 to the
    horizon (7) and the validation span to 0, and 3 tiny quarterly series out of 11 cut the backtest from 4
    windows to 1, though no shorter span let them take part: the others lost lookback, validation and
    backtest windows for nothing."""
    s = fit_network_spans([171, 81, 6], horizon=7, lookback=36, val_size=7, short_series="exclude", share=0.8)
    assert (s.lookback, s.val_size, s.notes) == (36, 7, [])
    s = fit_network_spans([171, 81, 6, 30], horizon=7, lookback=36, val_size=7, short_series="exclude", share=0.8)
    assert (s.lookback, s.val_size) == (16, 7)  # the 30-period series can take part: 16 + 7 + 7 = 30
    s = fit_network_spans([48] * 8 + [1, 2, 3], horizon=8, lookback=16, val_size=8, short_series="pad", share=0.8)
    assert (s.lookback, s.val_size, s.notes) == (16, 8, [])
    b = fit_backtest([48] * 7 + [24, 3, 2, 1], horizon=8, n_windows=4, step=4, share=0.8)
    assert (b.n_windows, b.need) == (4, 21)
    assert b.notes == [("3 of 11 series have fewer than 21 periods: they take no part in the backtest and are "
                       "forecast by the best candidate that can run on them.")]


def test_notes_say_how_many_series_fit_when_the_share_is_out_of_reach():
    """Regression: 3,000 series of 1 to 8 days (horizon 3) were told '80% of the series have at least 6
    periods: lookback 36 -> 3' and '80% of the series have at least 4 periods: 1 backtest window(s) instead
    of 2' beside '1117 of 3000 series have fewer than 4 periods': where the share is out of reach the spans
    fit the shortest series that can take part, and the note now says how many series that is."""
    lengths = [1, 2, 3, 4, 5, 6, 7, 8]
    s = fit_network_spans(lengths, horizon=3, lookback=36, val_size=3, short_series="exclude", share=0.8)
    assert (s.lookback, s.val_size) == (3, 0)
    assert s.notes[0].startswith("only 3 of 8 series have at least 6 periods (the share 80% is out of reach): "
                                 "lookback 36 -> 3, validation span 3 -> 0")
    b = fit_backtest(lengths, horizon=3, n_windows=2, step=3, share=0.8)
    assert b.notes[0] == ("only 5 of 8 series have at least 4 periods (the share 80% is out of reach): 1 backtest "
                          "window instead of 2.")
    b = fit_backtest([8, 8, 8, 8, 40], horizon=3, n_windows=3, step=3, share=0.8)  # within reach: as before
    assert b.notes == ["80% of the series have at least 8 periods: 2 backtest windows instead of 3."]


@pytest.mark.parametrize(("lengths", "said"), [
    ([2, 3, 4, 5, 40], ("only 1 of 5 series has at least 40 periods (the share 80% is out of reach): lookback 36 "
                        "-> 34, so that it is long enough for a network")),
    ([2, 3, 4, 40, 40], ("only 2 of 5 series have at least 40 periods (the share 80% is out of reach): lookback 36 "
                         "-> 34, so that they are long enough for a network")),
])
def test_the_out_of_reach_note_counts_one_series_in_the_singular(lengths, said):
    """review29: one series long enough among short ones was told 'only 1 of 5 series have at least 40 periods ...,
    so that they are long enough' (plurals27 counted in words elsewhere: '1 of 6 series has fewer than ...')."""
    s = fit_network_spans(lengths, horizon=3, lookback=36, val_size=3, short_series="exclude", share=0.8)
    assert s.notes[0].startswith(said), s.notes


def test_spans_leave_the_networks_a_series_at_the_first_backtest_cutoff():
    """Regression: 60 days a series with horizon 7 kept lookback 36 (36 + 7 + 7 = 50 periods fit every whole
    series), but the backtest trains its networks on the 46 days before its first window: no network was
    trained, no network candidate scored, none could ever be published ('rnn-s0 could not be trained for the
    backtest ... the longest of the 3 has 46'). The spans are then fitted to the histories at that cutoff."""
    from flowcast.data.lengths import fit_network_spans_for_backtest, network_min_length

    kw = {"horizon": 7, "lookback": 36, "val_size": 7, "short_series": "exclude", "share": 0.8, "step": 7}
    s = fit_network_spans_for_backtest([60, 60, 60], n_windows=2, **kw)
    assert (s.lookback, s.val_size) == (32, 7)  # 32 + 7 + 7 = 46: every series trains at the first cutoff
    assert s.notes == [("no series has 50 periods before the first backtest window (the longest has 46): lookback 36 -> "
                       "32, so that the networks take part in the backtest.")]
    # where some series train at the cutoff (or none could at any span), the spans fitted to whole series stay
    for lengths in ([60, 60, 200], [10, 12]):
        want = fit_network_spans(lengths, **{k: v for k, v in kw.items() if k != "step"})
        got = fit_network_spans_for_backtest(lengths, n_windows=2, **kw)
        assert (got.lookback, got.val_size, got.notes) == (want.lookback, want.val_size, want.notes)
    # a given lookback is kept: the validation span gives way instead
    s = fit_network_spans_for_backtest([60, 60, 60], n_windows=2, lookback_given=True, **kw)
    assert (s.lookback, s.val_size) == (36, 3)
    assert network_min_length(lookback=36, horizon=7, val_size=3, short_series="exclude") == 46


@pytest.mark.parametrize(("lengths", "lookback", "said"), [
    ([60, 60, 50], 500, ("model.lookback = 500 is set explicitly, and no series has the 514 periods (lookback + horizon) "
                        "a network needs with it (the longest has 60): no network can train. A lookback of at most 46 "
                        "fits the longest series; unset, the lookback is fitted to the data.")),
    ([10, 12], 100, ("model.lookback = 100 is set explicitly, and no series has the 114 periods (lookback + horizon) a "
                    "network needs with it (the longest has 12): no network can train. No lookback fits: every series "
                    "is shorter than lookback + horizon with a lookback of 1.")),
])
def test_a_given_lookback_no_series_holds_is_named_with_one_that_fits(lengths, lookback, said):
    """Regression: [model] lookback = 500 on series of 60 days said '80% of the series have at least 60 periods:
    lookback 500 -> 500, validation span 14 -> 0, so that they are long enough for a network', which they were not:
    the note named an unchanged lookback, not that the given lookback kept every network out, nor what would fit."""
    s = fit_network_spans(lengths, horizon=14, lookback=lookback, val_size=14, short_series="exclude", share=0.8,
                          lookback_given=True)
    assert s.lookback == lookback and s.notes == [said]


def test_a_note_names_only_the_spans_it_changes():
    s = fit_network_spans([60, 60, 60], horizon=7, lookback=36, val_size=30, short_series="exclude", share=0.8,
                          lookback_given=True)
    assert (s.lookback, s.val_size) == (36, 17)
    assert s.notes == [("80% of the series have at least 60 periods: validation span 30 -> 17, so that they are long "
                       "enough for a network.")]


_SHORTER = "are forecast by the statistical models that can run on them"


@pytest.mark.parametrize(("lengths", "shorter"), [([60, 60, 60], False), ([60, 60, 60, 60, 20], True)])
def test_the_shorter_series_are_said_only_where_there_are_some(lengths, shorter):
    """cols43: '(the shorter ones are forecast by the statistical models ...)' was said of series all of one length,
    none of them shorter than the network's spans; it is said where some are."""
    s = fit_network_spans(lengths, horizon=7, lookback=36, val_size=30, short_series="exclude", share=0.8,
                          lookback_given=True)
    assert s.notes and (_SHORTER in s.notes[0]) == shorter, s.notes


@pytest.mark.parametrize(("lengths", "shorter"), [([60, 60, 60], False), ([60, 60, 55], False), ([60, 60, 60, 60, 50], True)])
def test_the_shorter_series_at_the_backtest_cutoff_are_said_only_where_there_are_some(lengths, shorter):
    """cols43: the backtest's note said '(the shorter series are forecast by the statistical models ...)' of series
    all of one length; it is said where some are shorter than the spans fitted at the first cutoff."""
    from flowcast.data.lengths import fit_network_spans_for_backtest

    s = fit_network_spans_for_backtest(lengths, horizon=7, lookback=36, val_size=7, short_series="exclude",
                                       share=0.8, step=7, n_windows=2)
    assert s.notes and s.notes[0].startswith("no series has 50 periods before the first backtest"), s.notes
    assert (_SHORTER in s.notes[0]) == shorter, s.notes


@pytest.mark.parametrize(("lengths", "notes"), [
    ([2, 3, 1], [("no series has more than 14 periods (the longest has 3): one backtest window scores the first 2 "
                 "steps of the forecasts."),
                 ("2 of 3 series have fewer than 3 periods: they take no part in the backtest and are forecast by the "
                 "best candidate that can run on them.")]),
    ([1, 1, 1], ["80% of the series have at least 1 period: 1 backtest window instead of 2.",
                 ("3 of 3 series have fewer than 15 periods: they take no part in the backtest and are forecast by the "
                 "best candidate that can run on them.")]),
])
def test_histories_no_longer_than_the_horizon_are_told_why_there_is_one_window(lengths, notes):
    """newuser25: three days of sales at horizon 14 were told '80% of the series have at least 1 periods: 1 backtest
    window(s) instead of 2' beside 'no series has more than 14 periods ...: one backtest window scores the first 2
    step(s)'. The second says why; the first is left out (and '1 period' is singular where it is said)."""
    b = fit_backtest(lengths, horizon=14, n_windows=2, step=14, share=0.8)
    assert b.notes == notes


@pytest.mark.parametrize(("lengths", "horizon", "n_windows", "said"), [
    ([5], 3, 4, "no series is long enough for 4 backtest windows (the longest has 5 periods): 1 window."),
    ([10, 8], 3, 4, "no series is long enough for 4 backtest windows (the longest has 10 periods): 3 windows."),
    ([2, 1], 14, 2, ("no series has more than 14 periods (the longest has 2): one backtest window scores the first 1 "
                     "step of the forecasts.")),
    ([8, 8, 8, 8, 40], 6, 3, "80% of the series have at least 8 periods: 1 backtest window instead of 3."),
])
def test_counted_windows_and_steps_are_singular_or_plural_as_counted(lengths, horizon, n_windows, said):
    """polish25: notes said '1 window(s)', '3 window(s)' and 'the first 1 step(s)' of counts they knew."""
    b = fit_backtest(lengths, horizon=horizon, n_windows=n_windows, step=horizon, share=0.8, given=n_windows == 4)
    assert said in b.notes


@pytest.mark.parametrize(("short", "named"), [
    (1, "(s00)"),
    (2, "(s00, s01)"),
    (5, "(s00, s01, s02, s03, s04)"),
    (8, "(s00, s01, s02, s03, s04 and 3 more)"),
])
def test_the_series_left_out_of_the_backtest_are_named(short, named):
    """data43: 'N of M series have fewer than 25 periods: they take no part in the backtest' named none of them,
    where the run's other lines about series name the first 5 and count the rest."""
    lengths = [3] * short + [48] * 40
    ids = [f"s{i:02d}" for i in range(len(lengths))]
    b = fit_backtest(lengths, horizon=24, n_windows=1, step=24, share=0.8, ids=ids)
    assert b.need == 25
    assert b.notes[-1].startswith(f"{short} of {len(lengths)} series "
                                  f"{'has' if short == 1 else 'have'} fewer than 25 periods {named}: ")


@pytest.mark.parametrize(("lengths", "horizon", "said"), [
    ([120, 90], 1000, "the horizon, 1,000 periods, exceeds the history: the longest series has 120 periods; "),
    ([5], 6, "the horizon, 6 periods, exceeds the history: the longest series has 5 periods; "),
    ([120, 90], 120, None),  # as long as the history: not beyond it
    ([], 14, None),
])
def test_a_horizon_longer_than_the_history_is_said_with_both_numbers(lengths, horizon, said):
    """Regression: `flowcast forecast --horizon 1000` on 120 days of history published without a word."""
    got = horizon_beyond_history(lengths, horizon)
    assert (got if said is None or got is None else got[:len(said)]) == said


def test_counts_of_thousands_of_series_are_written_with_thousands_separators():
    """newuser52: 100,000 series of 2 or 3 days were told '50000 of 100000 series have fewer than 3 periods (s000000,
    ... and 49,995 more)': the counts of the note without the separators its own list and the run's log write."""
    lengths = [2] * 1_500 + [3] * 1_500
    b = fit_backtest(lengths, horizon=14, n_windows=2, step=14, share=0.8, ids=[f"s{k:04d}" for k in range(3_000)])
    said = [n for n in b.notes if "fewer than" in n]
    assert said and said[0].startswith("1,500 of 3,000 series have fewer than 3 periods (s0000, s0001, s0002, s0003, "
                                       "s0004 and 1,495 more): they take no part"), b.notes
    s = fit_network_spans([1] * 1_200 + [40] * 3, horizon=3, lookback=36, val_size=3, short_series="exclude",
                          share=0.8)
    assert s.notes[0].startswith("only 3 of 1,203 series have at least 40 periods (the share 80% is out of reach)")
