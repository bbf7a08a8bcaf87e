"""Counts and lists in words: '1 version', '3 versions' where a message knows the count (it said 'version(s)');
'v1, v2 and v3'."""

from __future__ import annotations


def noun(n: float, word: str, many: str | None = None) -> str:
    """`word` as `n` of it is said: 'version' of 1, 'versions' of 0 or 3 (`many` where adding 's' is wrong:
    'series', 'as_of', 'entries'); 'minutes' of 0.5 too, 'minute' of 1.0."""
    return word if n == 1 else (word + "s" if many is None else many)


def plural(n: float, word: str, many: str | None = None) -> str:
    """'1 version', '3 versions', '0 versions', '1,500 rows': the count, with thousands separators, and `noun` of it
    ('2048 series ended' stood beside '1,500 rows' in one message)."""
    return f"{n:,} {noun(n, word, many)}"


def listed(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c': `words` as a sentence lists them."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)
