"""Sources at plain HTTP URLs (issue 9.9, 9.10), against Python's own http.server: read whole
(no Range requests), fingerprinted by content, I/O failures told apart from bad data and retried
where the bytes are read."""

from __future__ import annotations

import gzip
import io
import os
from datetime import datetime

import polars as pl
import pytest
from data_helpers import make_source, run_validate

from flowcast.data import remote
from flowcast.data.remote import source_fingerprint
from flowcast.data.sources import ingest
from flowcast.errors import DataValidationError, SourceUnavailableError

CSV = "date,id,val\n2020-01-01,a,1.5\n2020-01-02,a,2.5\n2020-01-03,b,3.5\n"


@pytest.fixture(autouse=True)
def _short_backoff(monkeypatch):
    monkeypatch.setattr(remote, "READ_BACKOFF_S", 0.05)  # the pauses, not the retries, are shortened


def test_csv_at_a_plain_http_url_without_range_support(http_server):
    """Regression: polars' object store needs Range requests ('Range request not supported',
    exit 2), which http.server and many simple servers do not answer."""
    (http_server.root / "sales.csv").write_text(CSV)
    r = run_validate(http_server.url("sales.csv"))
    assert r.report.rows_valid == 3 and r.report.rows_quarantined == 0
    assert r.valid.select("unique_id", "y").rows() == [("a", 1.5), ("a", 2.5), ("b", 3.5)]
    assert [m for m, _, _ in http_server.requests] == ["GET"]  # read once, whole
    assert all(rng is None for _, _, rng in http_server.requests)


def test_gzipped_csv_and_parquet_over_http(http_server):
    (http_server.root / "sales.csv.gz").write_bytes(gzip.compress(CSV.encode()))
    buf = io.BytesIO()
    pl.read_csv(io.StringIO(CSV)).write_parquet(buf)
    (http_server.root / "sales.parquet").write_bytes(buf.getvalue())
    for name in ("sales.csv.gz", "sales.parquet"):
        r = run_validate(http_server.url(name))
        assert r.valid["y"].to_list() == [1.5, 2.5, 3.5], name


def test_bad_rows_of_an_http_source_are_quarantined_with_their_text(http_server):
    (http_server.root / "s.csv").write_text(CSV + "2020-01-04,b,n/a\n")
    r = run_validate(http_server.url("s.csv"))
    assert r.quarantined.select("val", "check").rows() == [("n/a", "y_not_number")]


def _same_size_new_values(path) -> None:
    """Every value changes, the rows, the size and the modification time stay."""
    st = os.stat(path)
    path.write_text(CSV.replace("1.5", "9.5").replace("2.5", "8.5").replace("3.5", "7.5"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size


def test_fingerprint_follows_the_content_of_urls_and_files(http_server, write_csv):
    """Regression: a URL's fingerprint ignored its content (and a file's was its size and mtime),
    so the preprocessing cache served the old values for up to 7 days."""
    served = http_server.root / "sales.csv"
    served.write_text(CSV)
    url_src = make_source(http_server.url("sales.csv"))
    local = write_csv(CSV)
    file_src = make_source(local)
    before = (source_fingerprint(url_src), source_fingerprint(file_src))
    assert before == (source_fingerprint(url_src), source_fingerprint(file_src))  # stable while unchanged
    assert ingest(url_src, None).fingerprint == before[0]  # ingest digests the bytes it read
    _same_size_new_values(served)
    _same_size_new_values(local)
    after = (source_fingerprint(url_src), source_fingerprint(file_src))
    assert after[0] != before[0] and after[1] != before[1]
    assert ingest(file_src, None).fingerprint == after[1]


def test_a_server_that_fails_twice_then_serves_is_retried_inside_the_read(http_server):
    (http_server.root / "s.csv").write_text(CSV)
    http_server.failures += [503, "reset"]
    r = run_validate(http_server.url("s.csv"))
    assert r.report.rows_valid == 3
    assert [m for m, _, _ in http_server.requests] == ["GET", "GET", "GET"]


def test_a_read_timeout_is_transient(http_server):
    (http_server.root / "s.csv").write_text(CSV)
    http_server.failures += [1.5]  # the first answer comes after the read timeout
    r = run_validate(http_server.url("s.csv"), read_timeout=0.3)
    assert r.report.rows_valid == 3 and len(http_server.requests) == 2


def test_a_server_that_stays_down_is_unavailable_not_bad_data(http_server):
    (http_server.root / "s.csv").write_text(CSV)
    http_server.failures += [503] * 5
    with pytest.raises(SourceUnavailableError, match=r"s.csv could not be read after 3 attempts \(last: HTTP 503") as e:
        run_validate(http_server.url("s.csv"), read_retries=2)
    assert e.value.exit_code == 3 and len(http_server.requests) == 3


@pytest.mark.parametrize("status", [404, 403])
def test_a_missing_or_forbidden_url_is_not_retried(http_server, status):
    (http_server.root / "s.csv").write_text(CSV)
    http_server.failures += [status]
    with pytest.raises(DataValidationError, match=rf"HTTP {status}") as e:
        run_validate(http_server.url("s.csv"))
    assert e.value.exit_code == 2 and len(http_server.requests) == 1


def test_as_of_applies_to_http_sources(http_server):
    (http_server.root / "s.csv").write_text(CSV)
    r = run_validate(http_server.url("s.csv"), as_of=datetime(2020, 1, 2))
    assert r.report.rows_in == 2 and r.report.rows_after_as_of == 1
