"""Figures as a person reads them wherever they are shown: a score to 4 significant digits (`score_text`; two compared
ones with the digits that tell them apart, `score_pair`), a table cell without Python spellings (`_plain`), a duration (`duration_text`). Below `reporting` (artifacts) and `evaluation` (verdicts), which both write
them and import them from here at the top (`evaluation.realized` imported `reporting.score_text` inside a function)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from flowcast.timekeys import utc_text


def _fmt(v: Any) -> Any:
    """Table cell: floats rounded to 4 significant decimals, datetimes as every message writes an instant
    (`timekeys.utc_text`: a midnight its date, '2019-09-01 06:00 UTC'; they read '2019-09-01 00:00:00')."""
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return round(v, 4)
    if isinstance(v, datetime):
        return utc_text(v)
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return v


def _sig(v: Any, digits: int = 4) -> Any:
    """A score to `digits` significant digits (a whole number from 10**digits up): 47.2576 -> 47.26, 104.1454 ->
    104.1, 0.51874 -> 0.5187, 12345.6 -> 12346; anything else as it is."""
    if not isinstance(v, float) or not math.isfinite(v) or v == 0:
        return v
    decimals = digits - 1 - math.floor(math.log10(abs(v)))
    return round(v, decimals) if decimals > 0 else round(v)


def score_text(v: Any, digits: int = 4) -> str:
    """A score as a person reads it wherever it is shown, to 4 significant digits (`_sig`): 0.625 -> '0.625', 150.0 ->
    '150', 12345.6 -> '12346'; '' for None. The one spelling of `flowcast accuracy`'s figures and the realized-accuracy
    artifact's: the CLI printed coverage80 to 2 digits ('0.62') where the artifact said '0.625' (look42). `digits`:
    more where two compared figures need them (`score_pair`)."""
    if v is None:
        return ""
    x = _sig(v, digits)
    return f"{x:.{digits}g}" if isinstance(x, float) else str(_plain(x))


def score_or_na(v: Any) -> str:
    """A score as every figure is written (`score_text`, 4 significant digits); 'n/a' for none or not finite (a
    candidate's score the log and the leaderboard table print on its row)."""
    return "n/a" if v is None or not math.isfinite(v) else score_text(float(v))


def score_pair(a: Any, b: Any, *, against: float | None = None) -> tuple[str, str]:
    """Two figures a claim compares ('realized MASE a exceeds the backtest's b', 'is worse than seasonal naive's b'),
    each as `score_text` writes it, to the fewest significant digits from 4 on (17 at most) at which `a` and the figure
    it is compared with print apart: 0.86834 and 0.86831 -> '0.86834', '0.86831' (they read '0.8683 is worse than
    0.8683'). `against`: that figure where it is not `b` itself (the promise times 1 + a tolerance: 1.10004 against
    1.00002 x 1.1 reads '1.10004' and '1.00002', not '1.1 exceeds 1 by more than 10%'). Equal figures, or anything but
    two finite floats, as `score_text` writes them."""
    other = b if against is None else against
    digits = 4
    if all(isinstance(x, float) and math.isfinite(x) for x in (a, other)) and a != other:
        while digits < 17 and _sig(a, digits) == _sig(other, digits):
            digits += 1
    return score_text(a, digits), score_text(b, digits)


def duration_text(seconds: float | None) -> str:
    """A duration as every message writes one: under a minute in seconds to one decimal ('0.9 s', '42.4 s'), from a
    minute on as a clock ('1:05', '1:02:05'); '?' for None. The training log line said '0.9 s' where the
    training-progress artifact said '0:01 in all' of the same training."""
    if seconds is None:
        return "?"
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    m, s_ = divmod(round(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s_:02d}" if m >= 60 else f"{m}:{s_:02d}"


def _plain(v: Any) -> Any:
    """A table cell without Python spellings: None -> '', True/False -> yes/no."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    return _fmt(v)
