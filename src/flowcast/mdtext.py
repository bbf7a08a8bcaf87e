"""Text from the data (series ids, names, reasons) as markdown shows it literally.

An id such as `A|B`, `*promo*`, `store_1_a` or `<EU>` is the user's, not markup: unescaped, a `|` split its table
row into one more column (every later cell shifted), `*`/`_` turned it italic and swallowed the marks, and `<EU>`
vanished as an HTML tag. `md_text` escapes those characters so the artifact shows the id as written.
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


_ESCAPED = re.compile(r"\\([\\`*_\[\]|#])|&(amp|lt|gt);")
_UNENTITY = {"amp": "&", "lt": "<", "gt": ">"}


def md_plain(markdown: str) -> str:
    """A markdown text made with `md_text` as a terminal shows it: each escape undone (`\\_` is `_`, `&lt;` is
    `<`), the rest as it is. `flowcast validate` prints the data-quality report, which is markdown for the Prefect
    UI, to a terminal that renders none of it: a setting read `\\[validation\\] ended\\_series`, an id `store\\_1`."""
    return _ESCAPED.sub(lambda m: m.group(1) if m.group(1) is not None else _UNENTITY[m.group(2)], markdown)
