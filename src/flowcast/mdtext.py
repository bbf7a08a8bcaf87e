"""Text from the data (series ids, names, reasons) as markdown shows it literally.

An id such as `A|B`, `*promo*`, `store_1_a` or `<EU>` is the user's, not markup: unescaped, a `|` split its table
row into one more column (every later cell shifted), `*`/`_` turned it italic and swallowed the marks, and `<EU>`
vanished as an HTML tag. `md_text` escapes those characters so the artifact shows the id as written. `id_text` writes an id that a list of
ids would split (a comma in it) quoted, in messages and reports alike.
"""

from __future__ import annotations

import re
from typing import Any

_BACKSLASHED = "\\`*_[]|#"
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def md_text(value: Any) -> str:
    """`value` as text markdown shows as written, also inside a table cell: `\\`, `` ` ``, `*`, `_`, `[`, `]`,
    `|`, `#` backslash-escaped, `&`, `<`, `>` as HTML entities, a line break as a space (it ended the row)."""
    out = []
    for ch in " ".join(str(value).splitlines()):
        if ch in _BACKSLASHED:
            out.append("\\" + ch)
        else:
            out.append(_ENTITIES.get(ch, ch))
    return "".join(out)


_LIST_SEPARATORS = (",", ";")


def id_text(value: Any) -> str:
    """A series id as a list of ids joined by ', ' (or a gap-cut list by '; ') names it: as written, but quoted
    (`repr`) where it holds a comma or a semicolon, starts or ends with a space, or is empty. The series
    'north, east' was listed '(e.g. new shop, north, east, south)', 5 names for 4 series."""
    text = str(value)
    if not text or text != text.strip() or any(sep in text for sep in _LIST_SEPARATORS):
        return repr(text)
    return text



def quoted_id(value: Any) -> str:
    """A series id named in a sentence, quoted as Python writes a string ('gone'): an id that is a word read as part
    of the sentence ('1 series ended ... before the latest observation (2024-03-30): gone; it is forecast ...',
    session 50), as a list's bare id may."""
    return repr(str(value))


def md_id(value: Any) -> str:
    """A series id in a markdown list of ids: `id_text`, then `md_text` (quoted where a comma would split the
    list, its markup escaped)."""
    return md_text(id_text(value))

_ESCAPED = re.compile(r"\\([\\`*_\[\]|#])|&(amp|lt|gt);")
_UNENTITY = {"amp": "&", "lt": "<", "gt": ">"}


def md_plain(markdown: str) -> str:
    """A markdown text made with `md_text` as a terminal shows it: each escape undone (`\\_` is `_`, `&lt;` is
    `<`), the rest as it is. `flowcast validate` prints the data-quality report, which is markdown for the Prefect
    UI, to a terminal that renders none of it: a setting read `\\[validation\\] ended\\_series`, an id `store\\_1`."""
    return _ESCAPED.sub(lambda m: m.group(1) if m.group(1) is not None else _UNENTITY[m.group(2)], markdown)
