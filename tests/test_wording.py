"""Counts in words (`flowcast.wording`): what messages say where they used to write 'version(s)'."""

from __future__ import annotations

import pytest

from flowcast.wording import listed, noun, plural


@pytest.mark.parametrize(("n", "word", "many", "said"), [
    (1, "version", None, "1 version"),
    (3, "version", None, "3 versions"),
    (0, "version", None, "0 versions"),
    (1, "flow run", None, "1 flow run"),
    (2, "flow run", None, "2 flow runs"),
    (1, "series", "series", "1 series"),
    (4, "series", "series", "4 series"),
    (2, "entry", "entries", "2 entries"),
    (1500, "row", None, "1,500 rows"),  # review52: with thousands separators, as every count beside it ('2048 series')
    (2048, "series", "series", "2,048 series"),
])
def test_plural_says_the_count_and_its_word(n, word, many, said):
    assert plural(n, word, many) == said
    assert noun(n, word, many) == said.split(" ", 1)[1]


@pytest.mark.parametrize(("words", "said"), [
    (["v1"], "v1"),
    (["v1", "v2"], "v1 and v2"),
    (["coverage80", "coverage95", "MSIS"], "coverage80, coverage95 and MSIS"),
    ([], ""),
])
def test_listed_says_a_list_as_a_sentence_does(words, said):
    assert listed(words) == said
