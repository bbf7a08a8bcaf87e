"""The files of a source: which files a path, glob or folder names, their state, and reading them steadily.

`resolve_files` gives the files a declared path names (a glob expands, sorted; URLs pass through);
`source_states` and `changed_since` tell whether they changed (a local file's size, times and inode, an object
store's ETag, size, LastModified and version id), and `read_steadily` reads a source again where one of its files
changed while it was read. `file_format` says how a file is read (CSV, gzipped CSV or Parquet); `file_zone`, the zone
a Parquet or Arrow file's time column carries, which a declared `tz` must agree with (`check_file_zone`).
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import polars as pl

from flowcast.config import SourceConfig
from flowcast.errors import DataValidationError, SourceUnavailableError
from flowcast.wording import listed


# ------------------------------------------------------------------------------------ files
def _is_url(path: str) -> bool:
    return "://" in path


def resolve_files(source: SourceConfig) -> list[str]:
    """The concrete files of a source (a glob expands, sorted); URLs pass through, but a local file:// folder's: its
    files, as a plain folder's are listed, each named file:// + its path (`local_files`: polars read the folder URL
    as one object, 'is directory', or, ending in '/', each file of it as CSV). A local file:// file or glob is named
    as polars reads it (`_file_url`: 'file://localhost/my%20data/a.csv' is 'file:///my data/a.csv'); one of another
    host is refused, naming it."""
    path = os.path.expanduser(source.path)
    if _is_url(path):
        host = _file_url_host(path)
        if host is not None and host.lower() not in _LOCAL_HOSTS:  # polars: 'non-empty hostname for file: URI'
            raise DataValidationError(
                f"source {source.name!r}: {source.path} names the host {host!r}: a file:// URL is read on this machine "
                f"alone (file:///path or file://localhost/path): mount that host's folder here and name its path, or read "
                "it from where it is served (https://, s3://, ...)")
        written = _file_url_written(path)
        if written is None:
            return [path]
        # a glob as written: an escaped '*', '?' or '[' ('file:///data/q%2A.csv') is a file name's, read alone (it
        # was decoded first, then read as a glob: 'q*.csv', 'qA.csv' and 'q%41.csv' all read)
        folder, pattern = unquote(written), _is_glob(written)
        if pattern or not Path(folder).is_dir():
            # (named as polars reads it: 'file://localhost/a.csv' failed in polars, 'file:///my%20data/*.csv' matched
            # no file)
            return [_file_url(folder, pattern=pattern)]
        return _folder_files(source, list(local_files([path])))
    # a relative path is read from the working directory (not from the configuration file's folder): say which
    where = "" if Path(path).is_absolute() else f" (relative to the working directory {os.getcwd()})"
    if _is_glob(path):
        files = _listed(path, pattern=True)
        if not files:
            raise DataValidationError(f"source {source.name!r}: no file matches {source.path!r}{where}")
        return files
    if not Path(path).exists():
        raise DataValidationError(f"source {source.name!r}: file not found: {source.path}{where}; nothing was "
                                  "published from it: put the file back (or fix the path) and run again")
    return _folder_files(source, _listed(path, pattern=False)) if Path(path).is_dir() else [path]


def _folder_files(source: SourceConfig, files: list[str]) -> list[str]:
    """The data files listed in the folder `source` names (`_listed`); raises where it holds none."""
    if not files:
        raise DataValidationError(f"source {source.name!r}: directory {source.path} holds no data files")
    return files


def _is_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def _listed(path: str, pattern: bool) -> list[str]:
    """The files a local glob matches (`pattern`; sorted), or every file below a local folder (Hive-style partition
    folders included), skipping hidden files and the markers that Spark/Hadoop leave beside their output (_SUCCESS,
    _committed_*, _metadata); [path] for a file, [] for none. Not a `pattern`, a '*', '?' or '[' of `path` is its
    name's (a file:// URL's escaped one: `_file_url_written`)."""
    if pattern:
        return sorted(glob.glob(path))
    root = Path(path)
    if root.is_dir():
        return sorted(str(p) for p in root.rglob("*")
                      if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts))
    return [path] if root.exists() else []


_LOCAL_HOSTS = ("", "localhost")  # the hosts of a file:// URL of this machine's files (RFC 8089)


def _file_url_host(file: str) -> str | None:
    """The host a file:// URL names ('' for 'file:///data/a.csv', 'localhost', 'otherhost'); None for another path or
    URL."""
    return file[len("file://"):].partition("/")[0] if file.lower().startswith("file://") else None


def _file_url_written(file: str) -> str | None:
    """The path a file:// URL of this machine names, as written: its escapes kept ('file://localhost/my%20data/a.csv':
    '/my%20data/a.csv'), so that a glob is told from it (`_is_glob`: 'q%2A.csv' is no glob); None for another path or
    URL, a file:// URL of another host too."""
    host = _file_url_host(file)
    if host is None or host.lower() not in _LOCAL_HOSTS:
        return None
    rest = file[len("file://") + len(host):]
    return rest if rest.startswith("/") else None


def _file_url_path(file: str) -> str | None:
    """The local path a file:// URL names, its escapes decoded ('file:///data/*.parquet': '/data/*.parquet',
    'file://localhost/data/a.csv': '/data/a.csv', 'file:///my%20data/a.csv': '/my data/a.csv'); None for another path
    or URL, a file:// URL of another host too."""
    written = _file_url_written(file)
    return None if written is None else unquote(written)


# a file name's characters that a file:// URL escapes for polars: it decodes a file URL's escapes ('%20'), and reads
# an unescaped '*', '?' or '[' as a glob's (an escaped one as the name's: 'q%2A.csv' is the file 'q*.csv' alone)
_ESCAPED = str.maketrans({c: f"%{ord(c):02X}" for c in "%*?["})


def _file_url(path: str, pattern: bool = False) -> str:
    """The file:// URL of a local absolute path, as polars reads it and `_file_url_path` gives the path back: a
    file's '%', '*', '?' and '[' escaped (`_ESCAPED`); a glob (`pattern`) written as it is (polars does not decode a
    glob's escapes, nor matches a '%' in it)."""
    return "file://" + (path if pattern else path.translate(_ESCAPED))


def local_files(files: list[str]) -> dict[str, str]:
    """The local files among a source's `files` (`resolve_files`), each as the source names it -> the path it is
    read at alone: a path itself; a file:// URL (which `resolve_files` passes through, polars expanding its glob),
    each file its glob or folder holds, as a local glob's are listed, named file:// + its path. Other URLs
    (https://, s3://, a file:// URL of another host) are left out. A file:// glob is read as `resolve_files` wrote it,
    decoded already (decoded again, 'file:///data/p%2541/*.csv' was 'data/pA/*.csv'); a file's or folder's path is
    decoded, an escaped '*', '?' or '[' of it its name's (`_file_url`)."""
    local: dict[str, str] = {}
    for file in files:
        written = _file_url_written(file)
        if written is not None:
            pattern = _is_glob(written)
            local |= {_file_url(p): p for p in _listed(written if pattern else unquote(written), pattern)}
        elif not _is_url(file):
            local[file] = file
    return local


FileState = tuple[int, int, int, int]  # (size, mtime_ns, ctime_ns, inode): any write or replacement changes it
# an object's (size, ETag, LastModified, version id), as its store answers them ('' where it has none): an object is
# only ever replaced whole, and a new one has another ETag (or, on a store without one, another time or version)
ObjectState = tuple[int, str, str, str]
# the names fsspec's object-store filesystems give these in `info()` (s3fs, gcsfs, adlfs)
_ETAG_KEYS = ("ETag", "etag", "md5Hash", "md5")
_MODIFIED_KEYS = ("LastModified", "last_modified", "updated", "mtime")
_VERSION_KEYS = ("VersionId", "version_id", "generation")


def _info_value(info: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The first of `keys` that an fsspec `info()` answer holds, as text; '' when it holds none."""
    return next((str(info[k]) for k in keys if info.get(k)), "")


def _fresh_info(url: str) -> dict[str, Any]:
    """The fsspec `info()` of the object at `url` (s3://, gs://, ...) now, from one metadata request: the
    filesystem's listing cache dropped first (fsspec keeps one instance per process, so a long-lived one answered
    from a listing made before the object was replaced). Raises FileNotFoundError when it is gone, and what the
    filesystem raises when it cannot answer (no filesystem for the protocol, no access)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    fs.invalidate_cache(path)
    info: dict[str, Any] = fs.info(path)
    return info


def _object_state(url: str) -> ObjectState | None:
    """The state of the object at `url` (s3://, gs://, ...) now, from one metadata request through its fsspec
    filesystem (`_fresh_info`: no bytes read); None: gone. Raises what the filesystem raises when it cannot answer
    (no filesystem for the protocol, no access)."""
    try:
        info = _fresh_info(url)
    except FileNotFoundError:
        return None
    return (int(info.get("size") or 0), _info_value(info, _ETAG_KEYS), _info_value(info, _MODIFIED_KEYS),
            _info_value(info, _VERSION_KEYS))


def source_states(source: SourceConfig) -> dict[str, FileState | ObjectState | None]:
    """The state of each file of `source` now (None: gone): a local file's size, times and inode (a file:// URL's
    files too, each its glob or folder holds: `local_files`; the glob was one URL whose state was None, so a file
    written while it was read went unnoticed), an object store's (s3://, gs://) ETag, size, LastModified and version
    id (`_object_state`); an HTTP(S) URL is left out (read whole once, `read_url`), as an object whose store cannot
    be asked (no access: ingest says why). Compared with `changed_since` after the rows were read: polars reads a
    file lazily, and validation reads it again, so a file another program wrote meanwhile gave one run rows of two
    contents."""
    try:
        files = resolve_files(source)
    except DataValidationError:  # no file (yet): said by ingest
        return {}
    states: dict[str, FileState | ObjectState | None] = {}
    for f in files:
        if _is_remote(f) and not _is_http(f):
            with contextlib.suppress(Exception):  # cannot be asked: not checked, ingest reports it
                states[f] = _object_state(f)
    for f, path in local_files(files).items():
        try:
            st = os.stat(path)
        except OSError:
            states[f] = None
            continue
        states[f] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return states


def _is_remote(file: str) -> bool:
    """Whether a source's file is read from elsewhere than this machine: a URL, but a local file:// one."""
    return _is_url(file) and _file_url_path(file) is None


REMOVED = " (removed)"  # how `changed_since` names a file gone since
BACK = " (written: "  # ... one back since (gone at the first look)
ADDED = " (added)"  # ... and one not there at the first look (a single file back where it was gone, or a new one)


def changed_since(source: SourceConfig, before: dict[str, FileState | ObjectState | None]) -> list[str]:
    """The files of `source` written, replaced, added or removed since `before` (`source_states`), each named with
    what changed: `/data/sales.csv (written in place: 48,200 -> 24,100 bytes)`, `s3://b/sales.csv (replaced by
    another object: 48,200 -> 48,201 bytes)`. An object its store could not be asked about once is left out."""
    now = source_states(source)
    out = []
    for f in sorted(set(before) | set(now)):
        if _is_remote(f) and (f not in before or f not in now):
            continue
        was, now_is = before.get(f), now.get(f)
        if was == now_is:
            continue
        if f not in before:
            out.append(f"{f}{ADDED}")
        elif now_is is None:
            out.append(f"{f}{REMOVED}")
        elif was is None:
            out.append(f"{f}{BACK}{now_is[0]:,} bytes)")
        else:
            how = ("replaced by another object" if _is_remote(f) else
                   "replaced by another file" if was[3] != now_is[3] else "written in place")
            out.append(f"{f} ({how}: {_size_change(was, now_is)})")
    return out


def _size_change(was: FileState | ObjectState, now: FileState | ObjectState) -> str:
    """'48,200 -> 24,100 bytes'; where the size stayed, 'still 48,200 bytes, modified again' (a local file's
    modification time changed) or 'still 48,200 bytes' (cache47: '20 -> 20 bytes' read as if nothing changed)."""
    if was[0] != now[0]:
        return f"{was[0]:,} -> {now[0]:,} bytes"
    modified = isinstance(was[1], int) and was[1] != now[1]  # (an object's is its ETag: said by 'replaced by')
    return f"still {now[0]:,} bytes{', modified again' if modified else ''}"


def unsaid(message: str) -> None:
    """A `warn` that says nothing (a reader of `read_steadily` without a place to say it)."""


SOURCE_READS = 3  # a source another program writes while it is read is read up to this many times in all
_Read = TypeVar("_Read")
_Checked = TypeVar("_Checked")


def read_steadily(source: SourceConfig, ingest_it: Callable[[], _Read], check: Callable[[_Read], _Checked],
                  warn: Callable[[str], None], sleep: Callable[[float], None] | None = None,
                  ) -> tuple[_Read, _Checked]:
    """`ingest_it()`, then `check` (validation) on what it returned, read again (up to SOURCE_READS times, 1 s then
    2 s apart, `sleep`) where one of the files of `source` changed while it was read (`changed_since`): polars reads
    a file lazily, and validation reads it again, so a file written in place meanwhile (truncated, then written)
    gave the first half of its rows, and one replaced gave rows of the new file under the old one's fingerprint.
    An error raised by a read of a changing file is such a change too (a refusal, or polars' error or panic reading
    a Parquet file cut short: pandas' `to_parquet` writes in place). Each read again is said through `warn`. One
    rule for a run (`flows.common`), a command (`preprocess.prepare_data`: `flowcast validate`, `train`) and the
    checks `flowcast run`, `forecast` and `backfill` make before Prefect starts (`validate.nothing_to_run`,
    `nothing_observed_by`: their reads stop at the fault point below first). Raises SourceUnavailableError naming the files and what to do when they keep changing (a writer in place:
    write a temp file and rename it; one that replaces, removes, puts back or adds files: which of these every read
    saw, and run again once it stops). Test-only: FLOWCAST_FAULT=
    source:ingested stops (SIGSTOP) or kills the process between the two reads of each attempt."""
    import time

    from polars.exceptions import PanicException, PolarsError

    from flowcast.interrupts import fault_point, signals_seen

    changed: list[str] = []
    seen: list[str] = []  # every change of every read: the end says what they were
    with signals_seen() as signals:
        for attempt in range(1, SOURCE_READS + 1):
            before = source_states(source)
            try:
                ingested = ingest_it()  # its fingerprint is of the content it read
                fault_point("source:ingested")  # (test-only: fingerprinted, the rows not yet read by validation)
                checked = check(ingested)
            except BaseException as exc:  # a stop is said, then raised; the others as before
                _raise_stop(source, exc, signals(), warn)
                if not isinstance(exc, (DataValidationError, PolarsError, OSError, PanicException)):
                    raise
                if not (changed := changed_since(source, before)):
                    raise
            else:
                if not (changed := changed_since(source, before)):
                    return ingested, checked
            seen += changed
            if attempt < SOURCE_READS:  # what this read saw (cache47: 'another program writes it' of any change)
                why = (f"another program {_changes_text(changed, seen)}"
                       if any(not c.endswith(REMOVED) for c in changed) else
                       "the file was removed while it was read" if len(changed) == 1 else
                       "the files were removed while they were read")
                warn(f"Source {source.name!r} changed while it was read: {'; '.join(changed)}; {why}: read again in "
                     f"{attempt} s (read {attempt + 1} of {SOURCE_READS})")
                (sleep or time.sleep)(attempt)
    todo = ("Another program writes it in place; nothing was published. Have it write a temp file and rename it into "
            "place (readers then see the old file or the new one, whole), and run the same command again"
            if any("in place" in c for c in seen) else
            f"Another program {_changes_text(seen)} again and again; nothing was published. Run the same command "
            "again once it stops changing")
    raise SourceUnavailableError(
        f"source {source.name!r} changed while it was read, {SOURCE_READS} times: {'; '.join(changed)}. {todo}")


def _changes_text(changed: list[str], seen: list[str] | None = None) -> str:
    """What `changed_since`'s `changed` says another program did to a source, for each read again of `read_steadily`
    and its end: 'writes it in place', 'replaces it', 'removes it and puts it back' (a file there again where one was
    removed: `seen`, every read's changes, or `changed`), 'puts back a file missing at the first look' (one gone when a
    read began, no removal seen), 'adds files'. It said 'replaces it' of a file removed and put back only (wordsB46),
    and 'adds files' of one missing at each first look (srcB47)."""
    gone = {c.removesuffix(REMOVED) for c in (*(seen or []), *changed) if c.endswith(REMOVED)}
    back = [c for c in changed if BACK in c or (c.endswith(ADDED) and c.removesuffix(ADDED) in gone)]
    first_missing = [c for c in back if BACK in c and c.split(BACK)[0] not in gone]  # no removal of it seen
    did = [said for said, saw in (
        ("writes it in place", any(" (written in place: " in c for c in changed)),
        ("replaces it", any("replaced by" in c for c in changed)),
        ("removes it", any(c.endswith(REMOVED) for c in changed)),
        ("puts it back", any(c not in first_missing for c in back)),
        ("puts back a file missing at the first look", bool(first_missing)),
        ("adds files", any(c.endswith(ADDED) and c not in back for c in changed))) if saw]
    return listed(did or ["changes it"])


def _raise_stop(source: SourceConfig, error: BaseException, signals: set[int], warn: Callable[[str], None]) -> None:
    """Where a stop ended the read and validation of `source` (`interrupts.stop_of`: `error` a KeyboardInterrupt or
    Prefect's TerminationSignal, or an error a SIGTERM or SIGINT that came meanwhile caused: polars' panic from the
    query it interrupted), say so through `warn` and raise the stop (from `error` where it hid it); else return.
    A stop here writes nothing: validation's results are written after it returns."""
    from flowcast.interrupts import raise_stop

    raise_stop(error, signals, warn, lambda name: (
        f"Stopped by {name} while reading and validating source {source.name!r}: nothing was written from this read; "
        "run again to read it whole"))


def file_format(source: SourceConfig, file: str) -> str:
    if source.format != "auto":
        return source.format
    name = file.lower()
    if name.endswith((".parquet", ".pq", ".parq")):
        return "parquet"
    if name.endswith((".arrow", ".feather", ".ipc")):
        return "ipc"
    return "csv"


_UTC_NAMES = (None, "UTC", "Etc/UTC", "+00:00")


def file_zone(source: SourceConfig) -> tuple[str, str] | None:
    """(file, zone) of the first local Parquet or Arrow IPC/Feather file of `source` whose time column carries a
    zone other than UTC (a pandas/polars/Spark timestamp column, e.g. Europe/Berlin), read from that file's
    metadata; None when that file's column is naive or UTC, for CSV files, URLs (not fetched for this) and a file
    that cannot be read (ingest says why). One file's schema only: this is asked each time the source is
    resolved, and ingest checks that the other files agree (zoned or not) as it reads them."""
    try:
        files = resolve_files(source)
    except Exception:  # noqa: BLE001 - no zone to take: the read itself reports the problem
        return None
    for file in files:
        kind = file_format(source, file)
        if _is_url(file) or kind == "csv":
            continue
        dtype = _schema_dtype(file, kind, source.time_col)
        zone = dtype.time_zone if isinstance(dtype, pl.Datetime) else None
        return None if zone in _UTC_NAMES else (file, str(zone))
    return None


def _schema_dtype(file: str, kind: str, column: str) -> pl.DataType | None:
    """`column`'s type in a Parquet or Arrow IPC file's schema; None when the file cannot be read (ingest says why)."""
    try:
        schema = pl.read_parquet_schema(file) if kind == "parquet" else pl.read_ipc_schema(file)
    except Exception:  # noqa: BLE001 - as above
        return None
    return schema.get(column)


def file_time_zone(source: SourceConfig) -> str | None:
    """The source's zone as its files carry it (`file_zone`); None when they carry none other than UTC."""
    found = file_zone(source)
    return found[1] if found else None


def check_file_zone(source: SourceConfig) -> None:
    """A declared `tz` that disagrees with the zone the first zoned file's time column carries is an error
    naming both (the instants are unambiguous; a different calendar zone is almost always a mistake)."""
    found = file_zone(source) if source.tz is not None else None
    if found is None:
        return
    file, zone = found
    if zone != source.tz:
        raise DataValidationError(
            f"source {source.name!r}: tz {source.tz!r} was declared (--tz or configuration) but the time column "
            f"{source.time_col!r} of {file} carries the zone {zone!r}; drop the tz (the file's zone is used) or "
            f"declare tz = {zone!r}")


_HTTP = ("http://", "https://")


def _is_http(path: str) -> bool:
    return path.lower().startswith(_HTTP)


def _one_line(exc: BaseException) -> str:
    """An error's text on one line (polars/object-store errors span several, with 'Caused by' chains)."""
    return " ".join(str(exc).split()) or type(exc).__name__


FILE_INDEX = "__file"  # with several files: the position in `Ingested.files` of the file a row came from
