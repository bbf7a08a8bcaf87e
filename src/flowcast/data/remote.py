"""A source read by URL, and the identity of the content a source holds (its fingerprint).

An HTTP(S) URL is read whole here, once, by fsspec's HTTP filesystem (a plain GET: servers that
answer no Range requests work), with `read_retries` retries and exponential backoff when the read
fails for a reason that may pass (connection refused or reset, timeout, HTTP 5xx/429/408); when
they are spent it raises `SourceUnavailableError` (exit 3), an I/O failure and not bad data. A
404 or another 4xx is a `DataValidationError` at once. Other URLs (s3://, gs://) are scanned by
polars. `Ingested.fingerprint` identifies the content read: the declaration plus a digest of
each file's bytes (an object store's ETag or last-modified + size for s3:// and the like), so a
cached preprocessing is never served after a value changed.
"""

from __future__ import annotations

import hashlib
import os

from flowcast.config import SourceConfig
from flowcast.data.source_files import (
    _ETAG_KEYS,
    _MODIFIED_KEYS,
    _fresh_info,
    _info_value,
    _is_http,
    _is_url,
    _one_line,
    resolve_files,
)
from flowcast.errors import DataValidationError, SourceUnavailableError

# ------------------------------------------------------------------------------------ reading
READ_BACKOFF_S = 0.5  # first pause between attempts at reading a source; doubles at each retry


def _transient_http(exc: BaseException) -> bool | None:
    """True for a failure that may pass (connection refused or reset, timeout, HTTP 5xx/429/408),
    False for one that will not (another HTTP 4xx: a wrong URL or missing credentials)."""
    import aiohttp

    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status >= 500 or exc.status in (408, 429)
    return True  # connection errors, payload cut short, timeouts: I/O, never bad data


def read_url(url: str, source: SourceConfig) -> bytes:
    """The whole body of an HTTP(S) URL, read by fsspec's HTTP filesystem in one GET without a
    Range header (servers that answer no Range requests work), retried `source.read_retries`
    times with exponential backoff (READ_BACKOFF_S, doubling) on transient failures.

    Raises DataValidationError (exit 2, not retried) for a 404 or another 4xx, and
    SourceUnavailableError (exit 3) when every attempt failed for a transient reason."""
    import time

    import aiohttp
    import fsspec

    fs = fsspec.filesystem(
        "http", skip_instance_cache=True,
        client_kwargs={"timeout": aiohttp.ClientTimeout(total=source.read_timeout)},
    )
    attempts = source.read_retries + 1
    last: BaseException | None = None
    for attempt in range(attempts):
        try:
            return fs.cat_file(url)
        except FileNotFoundError:
            raise DataValidationError(f"source {source.name!r}: {url} does not exist (HTTP 404)") from None
        except Exception as exc:
            if not _transient_http(exc):
                raise DataValidationError(
                    f"source {source.name!r}: {url} refused the request (HTTP {getattr(exc, 'status', '?')} "
                    f"{getattr(exc, 'message', '')}): check the URL and its access"
                ) from exc
            last = exc
            if attempt + 1 < attempts:
                time.sleep(READ_BACKOFF_S * 2**attempt)
    raise SourceUnavailableError(
        f"source {source.name!r}: {url} could not be read after {attempts} attempts "
        f"(last: {_describe(last)}); it may be down or unreachable"
    ) from last


def _describe(exc: BaseException | None) -> str:
    status = getattr(exc, "status", None)
    if status is not None:
        return f"HTTP {status} {getattr(exc, 'message', '')}".strip()
    return f"{type(exc).__name__}: {_one_line(exc)}" if exc is not None else "unknown"


# ------------------------------------------------------------------------------------ fingerprints
_HASHED: dict[tuple, str] = {}  # (path, size, mtime_ns, ctime_ns, inode) -> content digest, this process


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _file_digest(path: str) -> str:
    """Digest of a local file's bytes. Remembered per (path, size, mtime, ctime, inode): every
    write changes ctime (which no tool can set back), so an unchanged stat means unchanged bytes."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if key not in _HASHED:
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
        if len(_HASHED) > 1024:
            _HASHED.clear()
        _HASHED[key] = h.hexdigest()
    return _HASHED[key]


def _remote_identity(url: str) -> str:
    """A validator of a non-HTTP URL (s3://, gs://) from its fsspec filesystem: ETag (or MD5) and
    size, else last-modified and size, asked afresh (`_fresh_info`). When none can be had the content cannot be
    vouched for: a random token, so that a cached result is never served for it."""
    try:
        info = _fresh_info(url)
    except Exception:  # noqa: BLE001 - no filesystem for the protocol, no access: cannot vouch
        info = {}
    tag = _info_value(info, _ETAG_KEYS) or None
    when = _info_value(info, _MODIFIED_KEYS) or None
    size = info.get("size")
    if tag or (when and size is not None):
        return f"{tag or when}:{size}"
    return "unverifiable:" + os.urandom(8).hex()


def _fingerprint(source: SourceConfig, files: list[str], payloads: dict[str, bytes]) -> str:
    """Identity of a source's content: its declaration plus, per file, a digest of its bytes
    (those read for an HTTP(S) URL, the file's own for a local path) or an object store's
    validator. Changing any value changes it, whatever the file's size and times."""
    # a field at its default is left out (time_label = "start", decimal = None): adding it did not change every
    # source's identity
    defaults = {n for n, at in (("time_label", source.time_label == "start"), ("decimal", source.decimal is None)) if at}
    h = hashlib.sha256(source.model_dump_json(exclude=defaults or None).encode())
    for f in files:
        h.update(f.encode())
        if f in payloads:
            ident = _digest(payloads[f])
        elif _is_url(f):
            ident = _remote_identity(f)
        else:
            ident = _file_digest(f)
        h.update(b"|" + ident.encode())
    return h.hexdigest()[:16]


def source_fingerprint(source: SourceConfig) -> str:
    """Identity of a source's content (`_fingerprint`); reads HTTP(S) sources whole. `ingest`
    computes the same from the bytes it reads (`Ingested.fingerprint`), which is the one to use
    when the data are read anyway."""
    try:
        files = resolve_files(source)
    except DataValidationError:
        files = []
    payloads = {f: read_url(f, source) for f in files if _is_http(f)}
    return _fingerprint(source, files, payloads)
