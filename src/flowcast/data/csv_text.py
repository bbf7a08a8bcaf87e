"""A CSV file's text before its columns are read: its bytes checked as UTF-8 text, the lines before its header, its
separator, its record lines and blank lines.

CSV is read with every column as text, so no value is lost before validation sees it: a UTF-8
byte-order mark, Windows line endings, quoted fields with commas and unsorted rows all work.
Empty or whitespace-only lines (and lines of empty fields only, ',,') are not rows: they are
skipped and counted (report: blank_lines).
A file separated by ';', tab or '|' is recognised when the source keeps the default ','; in a ';'
file (Excel's CSV where ',' is the decimal mark) a number written '3,5' is 3.5.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from flowcast.config import SourceConfig
from flowcast.data.source_files import _is_url, file_format, resolve_files
from flowcast.errors import DataValidationError


def _head_bytes(file: str, n: int = 8192, payload: bytes | None = None) -> bytes:
    if payload is not None:
        head = payload[:n]
        if head[:2] == b"\x1f\x8b":
            try:
                with gzip.open(io.BytesIO(payload), "rb") as gz:
                    head = gz.read(n)
            except (OSError, EOFError) as exc:
                raise DataValidationError(f"cannot read {file}: {exc}") from exc
        return head
    if _is_url(file):
        return b""
    try:
        with open(file, "rb") as fh:
            head = fh.read(n)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(file, "rb") as gz:
                head = gz.read(n)
        return head
    except (OSError, EOFError) as exc:
        raise DataValidationError(f"cannot read {file}: {exc}") from exc


# compressions flowcast does not read (gzip it does), by their magic bytes: what decompresses the file
_COMPRESSED = {b"BZh": ("bzip2", "bunzip2 -k"), b"\xfd7zXZ\x00": ("xz", "xz -dk"),
               b"\x28\xb5\x2f\xfd": ("zstd", "zstd -d"), b"7z\xbc\xaf\x27\x1c": ("7-Zip", "7z x")}


def _zip_csvs(file: str, payload: bytes | None) -> list[str] | None:
    """The CSV (and Parquet) members of a ZIP archive that is no Excel workbook; None for a workbook or an archive
    that cannot be listed."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(payload) if payload is not None else file) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile):
        return None
    if any(n.startswith("xl/") for n in names):
        return None
    return [n for n in names if n.lower().endswith((".csv", ".csv.gz", ".tsv", ".txt", ".parquet"))]


# the format and compression suffixes a data file's name drops for its dataset name ('sales.csv.gz' -> 'sales') and
# for the series name of one file per series ('store.north.csv' -> 'store.north': a suffix of another kind stays)
DATA_SUFFIXES = (".gz", ".bz2", ".zst", ".xz", ".zip", ".csv", ".tsv", ".txt", ".parquet", ".pq", ".parq", ".json",
                 ".jsonl", ".ndjson", ".xlsx", ".xls")
DATA_SUFFIX_RE = r"(?i)(?<=.)(\.(" + "|".join(x[1:] for x in DATA_SUFFIXES) + r"))+$"


def data_file_stem(name: str) -> str:
    """A data file's name (its last path part) without its format and compression suffixes: 'sales.csv.gz' ->
    'sales', 'store.north.csv' -> 'store.north', '.csv' stays (a name that is all suffix). The one-file-per-series
    hint's command strips them by the same `DATA_SUFFIX_RE`."""
    return re.sub(DATA_SUFFIX_RE, "", Path(name).name)


def _raw_head(file: str, n: int = 4096) -> bytes:
    """The first bytes of a local file as stored (not decompressed); empty when it cannot be read."""
    try:
        with open(file, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def _first_line(head: bytes) -> str:
    return head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace")[:80]


def _check_text(file: str, payload: bytes | None = None) -> None:
    head = _head_bytes(file, payload=payload)
    if head.startswith(b"PAR1"):  # a Parquet file saved under .csv was told "binary content, NUL bytes"
        raise DataValidationError(
            f"{file} is a Parquet file (it starts with PAR1), not a CSV file: name it .parquet, or declare the "
            "source's format = 'parquet'")
    if head[:4] == b"PK\x03\x04" and (members := _zip_csvs(file, payload)) is not None:
        # a downloaded 'sales.csv.zip' (Kaggle, a data portal) was told "is a ZIP or Excel workbook"
        held = f" holding {', '.join(members[:3])}{', ...' if len(members) > 3 else ''}" if members else ""
        raise DataValidationError(
            f"{file} is a ZIP archive{held}, not a CSV file; flowcast reads CSV (gzipped too), Parquet and Arrow IPC/Feather: unzip it "
            f"(unzip '{file}') and pass the file it holds"
        )
    if head[:4] == b"PK\x03\x04" or head[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        # flowcast reads no spreadsheet (no openpyxl / fastexcel dependency): say what to export
        raise DataValidationError(
            f"{file} is a ZIP or Excel workbook, not a CSV file; save the sheet as CSV (UTF-8) or Parquet (Excel: "
            "File > Save As > 'CSV UTF-8 (Comma delimited)'): flowcast reads no spreadsheet"
        )
    for magic, (kind, undo) in _COMPRESSED.items():
        if head.startswith(magic):  # a 'sales.csv.bz2' or '.zst' was told "binary content, NUL bytes"
            raise DataValidationError(
                f"{file} is {kind}-compressed; flowcast reads plain or gzipped CSV, Parquet and Arrow IPC/Feather: "
                f"decompress it ({undo} '{file}') or compress it with gzip instead"
            )
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or re.match(rb"(?:[^\x00]\x00){4}|(?:\x00[^\x00]){4}", head):
        # Excel's 'Unicode Text (*.txt)' export, PowerShell's Export-Csv before 6.0: UTF-16 (the NUL bytes of
        # every ASCII character were told "binary content")
        # (without a byte order mark iconv reads UTF-16 as big-endian: a little-endian file is named so)
        encoding = "UTF-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else (
            "UTF-16LE" if re.match(rb"(?:[^\x00]\x00){4}", head) else "UTF-16BE")
        raise DataValidationError(
            f"{file} is UTF-16 text (Excel's 'Unicode Text' export writes it), not UTF-8: re-export it as "
            f"'CSV UTF-8 (Comma delimited)', or convert it: {_iconv_command(file, encoding)}")
    if b"\x00" in head:
        raise DataValidationError(f"{file} is not a text CSV file (binary content, NUL bytes in the first bytes)")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if (file.lower().endswith((".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz"))
            or text.startswith(b"{") or re.match(rb"\[\s*[\[{\"\d\]-]", text)):
        # read as a CSV it failed on its 'columns' ['[{"date":"2024-01-01"', 'y":1}']
        # one object per line (JSON Lines) was told pl.read_json first, which fails on it
        lines = file.lower().endswith((".jsonl", ".ndjson", ".jsonl.gz")) or bool(re.match(rb"\{[^\n]*\}\r?\n\{", text))
        reader, other = ("read_ndjson", "pl.read_json") if lines else ("read_json", "pl.read_ndjson")
        raise DataValidationError(
            f"{file} is JSON, not a CSV file; flowcast reads CSV (gzipped too), Parquet and Arrow IPC/Feather: convert it, e.g. "
            f"python -c \"import polars as pl; pl.{reader}('{file}').write_parquet('data.parquet')\" "
            f"({other} for {'one array of objects' if lines else 'one object per line'})")
    # (the tag's name whole: a CSV's first header '<table_id>' is no table)
    markup = re.match(rb"<(?:!doctype\s+html|html|table|\?xml)(?=[\s>/])", text, re.IGNORECASE)
    if markup:
        # a web app's 'Export to Excel' (an HTML table under .xls) was told 'no rows (the file has a header but no
        # data)', and Excel's 'XML Spreadsheet 2003' asked for columns of its header '<?xml version="1.0"?>' (newuser47)
        what = ("an XML file (Excel's 'XML Spreadsheet 2003' is one)" if markup.group(0).startswith(b"<?")
                else "an HTML page (a web app's 'Export to Excel' often is an HTML table)")
        raise DataValidationError(
            f"{file} is {what}, not a CSV file; open it in Excel and save the sheet as CSV (UTF-8) or Parquet (File > "
            "Save As > 'CSV UTF-8 (Comma delimited)'), or export CSV from where it came: flowcast reads CSV (gzipped "
            "too), Parquet and Arrow IPC/Feather")


def first_invalid_utf8(file: str) -> tuple[int, int, int] | None:
    """(byte offset, line number (1-based), byte value) of the first invalid UTF-8 byte in a
    (gzipped) text file; None when the file is valid UTF-8."""
    with open(file, "rb") as fh:  # the file's own first bytes (_head_bytes reads a gzip's content)
        gzipped = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    offset, lines, carry = 0, 1, b""
    with opener(file, "rb") as fh:
        while chunk := fh.read(1 << 22):
            data = carry + chunk
            try:
                data.decode("utf-8")
                carry = b""
                ok = data
            except UnicodeDecodeError as exc:
                if exc.end == len(data) and exc.reason == "unexpected end of data":
                    carry, ok = data[exc.start :], data[: exc.start]
                else:
                    return offset + exc.start, lines + data.count(b"\n", 0, exc.start), data[exc.start]
            offset += len(ok)
            lines += ok.count(b"\n")
    return None


def _iconv_command(file: str, encoding: str) -> str:
    """The shell command that writes the (gzipped) text file `file` of `encoding` as UTF-8 beside it
    ('sales.csv' to 'sales.utf8.csv')."""
    plain = file.removesuffix(".gz")
    stem, dot, ext = plain.rpartition(".")
    target = f"{stem}.utf8.{ext}" if dot and "/" not in ext else f"{plain}.utf8"
    read = f"zcat '{file}' | iconv" if file.endswith(".gz") else f"iconv '{file}'"
    return f"{read} -f {encoding} -t UTF-8 > '{target}'"


def not_utf8_error(file: str, bad: tuple[int, int, int] | None, found: list[str] | None = None) -> DataValidationError:
    """The file is not UTF-8: where (`first_invalid_utf8`), the field around that byte as Windows-1252 would read it
    (Excel's plain 'CSV' on Windows, the usual culprit: 'Z\xfcrich' is 'Zürich'), and how to convert it. The byte
    alone ('0xfc on line 2') left the user to find out which text and which encoding."""
    if bad is None:
        where = f" (its header reads {found})" if found is not None else ""
        convert = ""
    else:
        word = _field_as_cp1252(file, bad[0])
        seen = f": '{word}' if it is Windows-1252" if word else ""
        where = f": byte 0x{bad[2]:02x} on line {bad[1]} (offset {bad[0]}{seen})"
        convert = f", or convert it: {_iconv_command(file, 'WINDOWS-1252')}"
    return DataValidationError(
        f"{file} is not valid UTF-8{where}; re-export the file as UTF-8 (Excel: 'CSV UTF-8'; its plain 'CSV' "
        f"is Windows-1252 on Windows){convert}"
    )


def _field_as_cp1252(file: str, offset: int) -> str | None:
    """The field (between separators, quotes or line ends) holding the byte at `offset` of a (gzipped) text file,
    decoded as Windows-1252; None when that shows no letter."""
    with open(file, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    start = max(0, offset - 64)
    with (gzip.open if gzipped else open)(file, "rb") as fh:
        fh.seek(start)
        window = fh.read(offset - start + 64)
    at = offset - start
    ends = b",;\t|\r\n\""
    lo = max(window.rfind(bytes([c]), 0, at) for c in ends) + 1
    hi = min((i for i in (window.find(bytes([c]), at) for c in ends) if i >= 0), default=len(window))
    word = window[lo:hi].decode("cp1252", errors="replace").strip()
    return word if any(ch.isalpha() for ch in word) and "\ufffd" not in word else None


_SEP_LINE_RE = re.compile(r"^sep=(.)\s*$")  # Excel's first line naming the separator ('sep=;')


def preamble(file: str, payload: bytes | None = None) -> tuple[int, str | None]:
    """(lines before the header, the separator an Excel 'sep=;' line names) of a CSV file: that first line and
    '#' comment lines (an export's '# exported by ... at ...' preamble), with the blank lines among them. The
    header was read from the first of them ('sep=' and an unnamed column; '# exported by ...'), and the run
    stopped, naming the line. A file made of nothing but such lines keeps them (its error says why)."""
    try:
        lines = _head_bytes(file, payload=payload).removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    except DataValidationError:
        return 0, None
    skip, sep = 0, None
    rows = lines.splitlines()[:-1]  # the last one may be cut off
    for n, line in enumerate(rows):
        text = line.strip()
        if n == 0 and (m := _SEP_LINE_RE.match(text)):
            skip, sep = 1, m.group(1)
        elif (text.startswith("#") and not _header_like(text, rows[n + 1:], sep)) or (not text and skip):
            skip = n + 1  # a comment, or a blank line among them
        else:
            return skip, sep
    return 0, None


def first_overlong_row(file: str, separator: str = ",") -> tuple[int, int, int, str] | None:
    """(line number, its fields, the header's fields, the line) of the first row of a local (gzipped) CSV file with
    more fields than its header: a value holding the separator unquoted ('$1,200.00', 'Widget, large'). polars said
    "found more fields than defined in 'Schema'" and not where. None when there is none (or it cannot be read)."""
    import csv

    try:
        with _local_csv(file, separator) as (reader, header, skip, named, sniffed):
            if header is None:
                return None
            if sniffed is not None:
                return first_overlong_row(file, sniffed) if sniffed != separator else None
            for row in reader:
                if len(row) > len(header):
                    return skip + reader.line_num, len(row), len(header), (named or separator).join(row)
    except (OSError, csv.Error):
        return None
    return None


@contextlib.contextmanager
def _local_csv(file: str, separator: str) -> Iterator[tuple[Any, list[str] | None, int, str | None, str | None]]:
    """A local (gzipped) CSV file opened past its preamble: (a csv reader after the header, the header (None: the
    file is empty), the preamble's lines, the separator a `sep=` line names (None: none), another separator the
    header holds when `separator` does not split it (None: none; the caller reads the file again with it)).
    OSError or csv.Error when it cannot be read (`first_overlong_row`, `record_lines`)."""
    import csv

    skip, named = preamble(file)
    with open(file, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    with (gzip.open if gzipped else open)(file, "rt", encoding="utf-8-sig", errors="replace", newline="") as fh:
        for _ in range(skip):
            fh.readline()
        reader = csv.reader(fh, delimiter=named or separator)
        header = next(reader, None)
        sniffed = (next((c for c in _OTHER_SEPARATORS if c in header[0]), None)
                   if header is not None and named is None and len(header) == 1 else None)
        yield reader, header, skip, named, sniffed


def record_lines(file: str, records: set[int], separator: str = ",") -> dict[int, int]:
    """record -> the line of a local (gzipped) CSV file that its row starts on, for each of `records` (data rows
    counted from 0 after the header, blank lines included, as source_row counts them). A quoted value holding a
    line break ('line one\\nline two' in a comment column) makes one row span several lines, so that 'line
    source_row + 2' named a line above the row the quarantine meant. Empty when the file cannot be read so."""
    import csv

    if not records or _is_url(file):
        return {}
    last = max(records)
    out: dict[int, int] = {}
    try:
        with _local_csv(file, separator) as (reader, header, skip, _named, sniffed):
            if header is None:
                return {}
            if sniffed is not None:
                return record_lines(file, records, sniffed) if sniffed != separator else {}
            for n in range(last + 1):
                start = reader.line_num + 1
                if next(reader, None) is None:
                    break
                if n in records:
                    out[n] = skip + start
    except (OSError, csv.Error):
        return {}
    return out


def _header_like(line: str, after: list[str], sep: str | None) -> bool:
    """Whether a line starting with '#' is the header itself ('#,date,sales': a row-number column named '#'): it
    has as many fields (two at least) as the next line that is no comment; a comment ('# exported by logger v2',
    '# at 06:00, by cron') has not, nor has a title whose other fields are empty ('# Sales report Q1 2024,,', a
    spreadsheet's title line commented out: it was read as the header)."""
    following = next((t for t in (a.strip() for a in after) if t and not t.startswith("#")), None)
    if following is None:
        return False
    for s in [sep] if sep else [",", ";", "\t", "|"]:
        if following.count(s) and line.count(s) == following.count(s):
            return all(f.strip() for f in line.split(s)[1:])
    return False


_OTHER_SEPARATORS = (";", "\t", "|")


def _sniff_separator(source: SourceConfig, header: list[str]) -> str | None:
    """The separator of a file exported with ';', tab or '|' while the source keeps the default ',':
    the header then reads as one column that contains the real separator."""
    if source.separator != "," or len(header) != 1:
        return None
    for sep in _OTHER_SEPARATORS:
        if sep in header[0]:  # one column can never hold both a time and a target: not a ',' file
            return sep
    return None


def check_readable(path: str, name: str) -> None:
    """Refuse a local file that cannot be read at all (not found; an Excel workbook, a ZIP archive, another
    compression, UTF-16 or JSON under a CSV name) before a command asks for its columns: `flowcast run
    sales.xlsx` was told 'also needs --time-col, --target-col, --freq', and given them it started its run and only
    there said the file was a workbook (a missing file was told the same). URLs are read by the run itself."""
    if _is_url(path):
        return
    probe = SourceConfig(name=name, path=path, time_col="-", target_col="-", freq="1d")
    first = resolve_files(probe)[0]
    if file_format(probe, first) == "csv":
        _check_text(first)


def blank_line(columns: list[str]) -> pl.Expr:
    """Whether a row of a CSV file read as text (`columns`, in the file's order) is an empty or whitespace-only line,
    which is no row (ingest skips and counts it): polars reads such a line as nulls in every column but the first
    (whitespace there, or null). A row of empty quoted cells ('"",""', csv.QUOTE_ALL's missing values) or with a
    blank in a later cell is a row, which validation quarantines."""
    first = pl.col(columns[0])
    return pl.all_horizontal([first.is_null() | (first.str.strip_chars() == ""), *[pl.col(c).is_null() for c in columns[1:]]])
