"""flowcast.figures: figures as a person reads them."""

import pytest

from flowcast.figures import duration_text


@pytest.mark.parametrize(("seconds", "said"), [
    (None, "?"), (0.0, "0.0 s"), (0.94, "0.9 s"), (42.4, "42.4 s"), (59.94, "59.9 s"),
    (59.96, "1:00"), (65.2, "1:05"), (3599.4, "59:59"), (3725, "1:02:05"),
])
def test_a_duration_reads_in_seconds_under_a_minute_then_as_a_clock(seconds, said):
    assert duration_text(seconds) == said
