"""md_text and the markdown artifacts that show the data's ids: a table row keeps its columns and the id reads as written."""

from __future__ import annotations

import pytest

from flowcast import reporting
from flowcast.mdtext import md_plain, md_text


@pytest.mark.parametrize(("raw", "escaped"), [
    ("A|B", "A\\|B"),
    ("*promo*", "\\*promo\\*"),
    ("store_1_a", "store\\_1\\_a"),
    ("<EU>", "&lt;EU&gt;"),
    ("R&D", "R&amp;D"),
    ("東京", "東京"),
    ("متجر", "متجر"),
    ("two\nlines", "two lines"),
    (7, "7"),
])
def test_md_text_escapes_markup(raw: object, escaped: str) -> None:
    assert md_text(raw) == escaped


@pytest.mark.parametrize("uid", ["A|B", "*promo*", "a_b_c", "<EU>", "東京|大阪"])
def test_markdown_table_keeps_its_columns_for_any_id(uid: str) -> None:
    table = reporting.markdown_table([{"unique_id": uid, "mase": 0.5}])
    row = table.splitlines()[2]
    # an unescaped '|' is a column break: every row has exactly the header's three
    assert row.replace("\\|", "").count("|") == 3
    assert "<" not in row and "*promo*" not in row


@pytest.mark.parametrize("raw", ["A|B", "*promo*", "store_1_a", "<EU>", "R&D", "&lt;", "a\\_b", "[validation] x_y", "#1 `c`"])
def test_md_plain_undoes_md_text(raw: str) -> None:
    """newuser25: `flowcast validate` printed the report's markdown escapes to the terminal."""
    assert md_plain(f"**{md_text(raw)}**: x") == f"**{raw}**: x"


@pytest.mark.parametrize(("raw", "shown"), [
    ("north", "north"),
    ("west side", "west side"),  # a space alone splits no list
    ("north, east", "'north, east'"),  # one series, not two
    ("a;b", "'a;b'"),  # a gap-cut list separates its series with '; '
    (" padded ", "' padded '"),
    ("", "''"),
    (42, "42"),
])
def test_id_text_quotes_an_id_a_list_would_split(raw: object, shown: str) -> None:
    """Regression: series ids are listed joined by ', ' ('(e.g. new shop, north, east, south)'): an id holding a
    comma read as two series, and 4 series named 5."""
    from flowcast.mdtext import id_text

    assert id_text(raw) == shown
