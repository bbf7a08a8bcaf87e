"""flowcast.figures: figures as a person reads them."""

import pytest

from flowcast.figures import duration_text, score_or_na, score_pair


@pytest.mark.parametrize(("seconds", "said"), [
    (None, "?"), (0.0, "0.0 s"), (0.94, "0.9 s"), (42.4, "42.4 s"), (59.94, "59.9 s"),
    (59.96, "1:00"), (65.2, "1:05"), (3599.4, "59:59"), (3725, "1:02:05"),
])
def test_a_duration_reads_in_seconds_under_a_minute_then_as_a_clock(seconds, said):
    assert duration_text(seconds) == said


@pytest.mark.parametrize(("a", "b", "against", "said"), [
    (0.86834, 0.86831, None, ("0.86834", "0.86831")),  # 4 digits read 0.8683 and 0.8683
    (0.8683, 0.8683, None, ("0.8683", "0.8683")),  # equal: as `score_text` writes them
    (0.9, 0.8, None, ("0.9", "0.8")),  # told apart at 4 digits: as `score_text` writes them
    (12345.6, 12345.8, None, ("12345.6", "12345.8")), (12345.6, 12345.4, None, ("12346", "12345")),
    (1.10004, 1.00002, 1.00002 * 1.1, ("1.10004", "1.00002")),  # 1.1 exceeds 1 by more than 10%
    (None, 0.8683, None, ("", "0.8683")),
])
def test_two_compared_scores_print_with_the_digits_that_tell_them_apart(a, b, against, said):
    """fix45: a verdict read 'realized MASE 0.8683 is worse than seasonal naive's 0.8683': two figures a claim
    compares print to the fewest significant digits, from 4, at which they differ; `against`, the figure `a` is
    really compared with (the promise times 1 + the tolerance), picks the digits where it is given."""
    assert score_pair(a, b, against=against) == said


@pytest.mark.parametrize(("v", "said"), [(None, "n/a"), (float("nan"), "n/a"), (float("inf"), "n/a"),
                                         (12345.6, "12346"), (0.51874, "0.5187"), (5, "5")])
def test_a_score_of_a_candidates_row_reads_as_every_figure_or_n_a(v, said):
    """srcmsg46: the log's leaderboard wrote '1.235e+04' ({:.4g}) where every figure reads '12346'."""
    assert score_or_na(v) == said
