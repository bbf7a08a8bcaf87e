"""Calendar features and seasonal periods per frequency (flowcast.data.calendar)."""

from __future__ import annotations

import pytest

from flowcast.data.calendar import season_length


@pytest.mark.parametrize(("freq", "season"), [
    ("1mo", 12), ("1q", 4), ("1y", 1), ("1w", 52), ("2w", 26), ("1d", 7), ("1h", 24), ("30m", 48),
    ("7d", 52), ("14d", 26),  # regression: weeks written as '7d' had a season of 1 (round(7 days / 7 days))
])
def test_season_length_per_frequency(freq, season):
    """Weekly data written as '7d' (the same grid as '1w') got no season: seasonal naive was naive and
    theta's seasonal adjustment was off, where '1w' has the yearly 52."""
    assert season_length(freq) == season
