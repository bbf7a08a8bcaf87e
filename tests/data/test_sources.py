"""Ingestion: lazy mapping of raw columns, as_of push-down, files as people export them, fingerprints."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import zipfile
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from data_helpers import make_source, run_validate
from polars.testing import assert_frame_equal, assert_series_equal

from flowcast import distinct
from flowcast.data.day_month import (
    _day_month_files,
    _day_month_per_file,
    _day_month_spaced_per_file,
    _orders_by_rows,
    time_column_profile,
)
from flowcast.data.decimals import DecimalPoints, _read_comma_decimals, _read_comma_thousands
from flowcast.data.probes import _NO_ROWS_PROBE, refuse_no_rows
from flowcast.data.remote import source_fingerprint
from flowcast.data.schemas import DS_RAW, RAW_PREFIX
from flowcast.data.source_files import FILE_INDEX, read_steadily, resolve_files
from flowcast.data.sources import (
    _mapped,
    _mapping,
    ingest,
    parses_as_times,
)
from flowcast.data.time_read import TIME_STAGE
from flowcast.data.value_text import (
    _nfc_batch,
    _number,
    _number_text_batch,
    _number_text_rows,
    nfc,
    number_text,
)
from flowcast.distinct import _columns_distinct
from flowcast.errors import DataValidationError, SourceUnavailableError


def test_ingest_is_lazy_and_maps_columns(write_csv):
    p = write_csv("when,store,sku,units,temp,extra\n2020-01-02,s,1,5,20,x\n2020-01-01,s,1,4,21,y\n")
    src = make_source(p, id_cols=["store", "sku"], time_col="when", target_col="units", future_cols=["temp"])
    ing = ingest(src, None)
    assert isinstance(ing.frame, pl.LazyFrame)
    assert ing.undeclared == ["extra"] and ing.raw_columns == ["when", "store", "sku", "units", "temp", "extra"]
    got = ing.frame.select("unique_id", "ds", "y", "temp", RAW_PREFIX + "units").collect()
    assert got.rows() == [("s|1", datetime(2020, 1, 2), 5.0, 20.0, "5"), ("s|1", datetime(2020, 1, 1), 4.0, 21.0, "4")]


def test_as_of_filters_before_collect(write_csv):
    p = write_csv("date,id,val\n2020-01-01,a,1\n2020-01-02,a,2\n2020-01-03,a,3\nbad,a,4\n")
    ing = ingest(make_source(p), datetime(2020, 1, 2))
    assert ing.frame.select("y").collect()["y"].to_list() == [1.0, 2.0, 4.0]  # unparsable time stays in view
    assert "FILTER" in ing.frame.explain().upper()


def test_aware_as_of_is_converted_to_source_zone(write_csv):
    p = write_csv("date,id,val\n2020-01-01T10:00,a,1\n2020-01-01T11:00,a,2\n")
    ing = ingest(make_source(p, freq="1h", tz="Australia/Melbourne"), datetime(2019, 12, 31, 23, 30, tzinfo=UTC))
    assert ing.as_of == datetime(2019, 12, 31, 23, 30, tzinfo=UTC)  # one instant, aware UTC
    assert ing.frame.collect().height == 1


@pytest.mark.parametrize("as_of", [
    "2019-12-31T23:30", "2019-12-31T23:30Z", "2020-01-01T10:30+11:00", datetime(2019, 12, 31, 23, 30),
    datetime(2020, 1, 1, 10, 30, tzinfo=ZoneInfo("Australia/Melbourne")),
])
def test_as_of_is_one_instant_and_naive_means_utc(write_csv, as_of):
    """Regression (issue 9.1): a naive as_of was read as wall time in the source's zone, so the flows
    (which pass naive UTC) cut a Melbourne source 11 hours early. Every spelling of one instant keeps
    the same rows: 2020-01-01T10:00+11:00 (23:00 UTC) is in, 11:00+11:00 (00:00 UTC) is not."""
    p = write_csv("date,id,val\n2020-01-01T10:00+11:00,a,1\n2020-01-01T11:00+11:00,a,2\n")
    ing = ingest(make_source(p, freq="1h", tz="Australia/Melbourne"), as_of)
    assert ing.as_of == datetime(2019, 12, 31, 23, 30, tzinfo=UTC)
    assert ing.frame.select("y").collect()["y"].to_list() == [1.0]


def test_gzipped_csv_and_glob_of_files(tmp_path):
    for i, day in enumerate(["2020-01-01", "2020-01-02"]):
        with gzip.open(tmp_path / f"part{i}.csv.gz", "wt") as fh:
            fh.write(f"date,id,val\n{day},a,{i}\n")
    src = make_source(tmp_path / "part*.csv.gz")
    assert [os.path.basename(f) for f in resolve_files(src)] == ["part0.csv.gz", "part1.csv.gz"]
    assert ingest(src, None).frame.select("y").collect()["y"].to_list() == [0.0, 1.0]


def test_glob_file_missing_a_column_names_that_file(tmp_path):
    (tmp_path / "a.csv").write_text("date,id,val\n2020-01-01,a,1\n")
    (tmp_path / "b.csv").write_text("date,id\n2020-01-02,a\n")
    with pytest.raises(DataValidationError, match=r"b.csv: declared column 'val' missing"):
        ingest(make_source(tmp_path / "*.csv"), None)


def test_no_matching_file(tmp_path):
    with pytest.raises(DataValidationError, match=r"no file matches"):
        ingest(make_source(tmp_path / "*.csv"), None)


def test_a_relative_path_not_found_names_the_folder_it_was_read_from(tmp_path, monkeypatch):
    """Regression: path = "data/sales.csv" in a configuration file is read from the working directory, not the
    file's folder; run from elsewhere it failed with 'file not found: data/sales.csv', naming no folder."""
    monkeypatch.chdir(tmp_path)
    where = f"(relative to the working directory {tmp_path})"
    with pytest.raises(DataValidationError) as err:
        ingest(make_source("data/sales.csv"), None)
    assert str(err.value).endswith(f"file not found: data/sales.csv {where}{NOT_FOUND_TODO}")
    with pytest.raises(DataValidationError) as err:
        ingest(make_source("data/*.csv"), None)
    assert str(err.value).endswith(f"no file matches 'data/*.csv' {where}")
    with pytest.raises(DataValidationError) as err:  # an absolute path names itself
        ingest(make_source(tmp_path / "nope.csv"), None)
    assert str(err.value).endswith(f"file not found: {tmp_path / 'nope.csv'}{NOT_FOUND_TODO}")


NOT_FOUND_TODO = "; nothing was published from it: put the file back (or fix the path) and run again"


def test_a_source_removed_while_it_is_read_says_so_then_what_to_do(write_csv):
    """Regression (faults46): a source deleted while a run read it was said `(removed); another program writes it`,
    then the run ended `file not found: <path>`, saying neither that nothing was published nor what to do. The
    removal is said as one now, and the end says to put the file back (or fix the path) and run again."""
    path = write_csv("id,date,val\na,2020-01-01,1\n")
    source, warned = make_source(path), []

    def removed_as_it_is_checked(ingested: object) -> object:
        os.remove(path)  # a real removal between ingest's read and validation's
        return ingested

    with pytest.raises(DataValidationError) as err:
        read_steadily(source, lambda: ingest(source, None), removed_as_it_is_checked, warned.append,
                      sleep=lambda _: None)
    assert warned == [(f"Source 't' changed while it was read: {path} (removed); the file was removed while it "
                      "was read: read again in 1 s (read 2 of 3)")]
    assert str(err.value) == f"source 't': file not found: {path}{NOT_FOUND_TODO}"


def test_a_source_removed_and_put_back_at_every_read_is_said_so_at_the_end(write_csv):
    """wordsB46: a file another program removed and put back at each read ended 'Another program replaces it again
    and again', a change none of the reads saw. The end says what they saw."""
    path = write_csv("id,date,val\na,2020-01-01,1\n")
    source, text = make_source(path), path.read_text()

    def removed_or_put_back() -> object:
        if path.exists():
            os.remove(path)  # a real removal: this read fails, file not found
        else:
            path.write_text(text)  # put back: this read succeeds, the file new since the first look
        return ingest(source, None)

    with pytest.raises(SourceUnavailableError) as err:
        read_steadily(source, removed_or_put_back, lambda ingested: ingested, lambda _: None, sleep=lambda _: None)
    assert f"{path} (removed). Another program removes it and puts it back again and again; nothing was published. " \
        "Run the same command again once it stops changing" in str(err.value), err.value


def test_each_read_again_says_what_that_read_saw(write_csv):
    """cache47: each read again said `another program writes it` of any change but a removal, though only the end
    said what the reads saw: a file put back after a removal (the same content), or written in place to the same
    size (`(written in place: 20 -> 20 bytes)`, as if nothing had changed). Each read says what it saw now: removed,
    put back, written in place with its size or, where the size stayed, its modification time."""
    path = write_csv("id,date,val\na,2020-01-01,1\n")
    source, text, warned = make_source(path), path.read_text(), []

    def removed_or_put_back() -> object:
        if path.exists():
            os.remove(path)
        else:
            path.write_text(text)  # the same content, back where it was
        return ingest(source, None)

    with pytest.raises(SourceUnavailableError):
        read_steadily(source, removed_or_put_back, lambda ingested: ingested, warned.append, sleep=lambda _: None)
    assert warned == [
        (f"Source 't' changed while it was read: {path} (removed); the file was removed while it was read: read again "
         "in 1 s (read 2 of 3)"),
        (f"Source 't' changed while it was read: {path} (added); another program puts it back: read again in 2 s "
         "(read 3 of 3)")], warned

    path.write_text(text)  # (the third read removed it)
    size, warned = path.stat().st_size, []

    def rewritten_as_it_was(ingested: object) -> object:
        before = path.stat().st_mtime_ns
        path.write_text(text)  # written in place to the same bytes, modified later
        os.utime(path, ns=(before + 10**9, before + 10**9))
        return ingested

    with pytest.raises(SourceUnavailableError) as err:
        read_steadily(source, lambda: ingest(source, None), rewritten_as_it_was, warned.append, sleep=lambda _: None)
    seen = f"{path} (written in place: still {size:,} bytes, modified again)"
    assert warned[0] == (f"Source 't' changed while it was read: {seen}; another program writes it in place: read "
                         "again in 1 s (read 2 of 3)"), warned
    assert f"{seen}. Another program writes it in place; nothing was published" in str(err.value), err.value


def test_a_file_missing_at_each_first_look_and_written_later_is_said_so_at_the_end(tmp_path):
    """srcB47: a glob's file missing at the first look (a link to a file not written yet) and there after each read,
    no removal ever seen, ended 'Another program adds files again and again'. The end says what the reads saw."""
    (tmp_path / "a.csv").write_text("id,date,val\na,2020-01-01,1\n")
    later = tmp_path / "later.txt"  # (not of the glob)
    (tmp_path / "b.csv").symlink_to(later)  # listed by the glob, missing at the first look
    source = make_source(str(tmp_path / "*.csv"))

    def written_then_read() -> object:
        later.write_text("id,date,val\nb,2020-01-01,1\n")
        return ingest(source, None)

    with pytest.raises(SourceUnavailableError) as err:
        read_steadily(source, written_then_read, lambda ingested: ingested, lambda _: None,
                      sleep=lambda _: later.unlink())  # missing again at the next read's first look
    assert f"{tmp_path / 'b.csv'} (written: 27 bytes). Another program puts back a file missing at the first look " \
        "again and again; nothing was published." in str(err.value), err.value


def test_parquet_native_types_and_integer_time(tmp_path):
    p = tmp_path / "y.parquet"
    pl.DataFrame({"date": [2019, 2020], "id": ["a", "a"], "val": [1, 2]}).write_parquet(p)
    with pytest.raises(DataValidationError, match=r"time column 'date' holds integers .* declare its time_format"):
        ingest(make_source(p, freq="1y"), None)
    got = ingest(make_source(p, freq="1y", time_format="%Y"), None).frame.select("ds", "y").collect()
    assert got.rows() == [(datetime(2019, 1, 1), 1.0), (datetime(2020, 1, 1), 2.0)]


def test_aware_parquet_time_converted_to_tz(tmp_path):
    p = tmp_path / "tz.parquet"
    ts = pl.Series([datetime(2020, 1, 1, 0, 0)]).dt.replace_time_zone("UTC")
    pl.DataFrame({"date": ts, "id": ["a"], "val": [1.0]}).write_parquet(p)
    got = ingest(make_source(p, freq="1h", tz="Asia/Tokyo"), None).frame.select("ds").collect()
    assert got["ds"].to_list() == [datetime(2020, 1, 1, 0, 0)]  # sub-daily ds: the instant, in UTC
    got = ingest(make_source(p, freq="1d", tz="Asia/Tokyo"), None).frame.select("ds").collect()
    assert got["ds"].to_list() == [datetime(2020, 1, 1)]  # daily ds: its calendar date in Tokyo


def test_fingerprint_changes_with_content(write_csv):
    p = write_csv("date,id,val\n2020-01-01,a,1\n")
    src = make_source(p)
    fp = source_fingerprint(src)
    assert fp == source_fingerprint(src) and len(fp) == 16
    p.write_text("date,id,val\n2020-01-01,a,1\n2020-01-02,a,2\n")
    assert source_fingerprint(src) != fp


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_semicolon_tab_and_pipe_files_are_recognised(write_csv, sep):
    """Regression: a ';' export (European Excel) read as one column 'id;date;val' and failed with
    'declared columns missing' although the CLI has no way to declare the separator."""
    text = "\ufeff" + sep.join(["id", "date", "val"]) + "\r\n" + "\r\n".join(
        sep.join(r) for r in [("a", "2020-01-01", "1.5"), ("a", "2020-01-02", "2")]
    ) + "\r\n"
    got = ingest(make_source(write_csv(text)), None).frame.select("unique_id", "ds", "y").collect()
    assert got.rows() == [("a", datetime(2020, 1, 1), 1.5), ("a", datetime(2020, 1, 2), 2.0)]


def test_sniffed_separator_still_names_missing_columns(write_csv):
    p = write_csv("id;Date;val\na;2020-01-01;1\n")
    with pytest.raises(DataValidationError, match=r"'date' \(renamed to 'Date'\?\) missing; the file has columns \['id', 'Date', 'val'\]"):
        ingest(make_source(p), None)


DST_DAYS = "date,id,val\n2020-04-04T00:00:00+11:00,a,1\n2020-04-05T00:00:00+10:00,a,2\n2020-04-06T00:00:00+10:00,a,3\n"


@pytest.mark.parametrize("freq,tz,as_of,expected", [
    # regression: daily dates exported with their offset (pandas tz-aware index) shifted to the previous
    # day when no tz was declared (converted to UTC, then truncated to the day)
    ("1d", None, None, [datetime(2020, 4, 4), datetime(2020, 4, 5), datetime(2020, 4, 6)]),
    ("1d", None, datetime(2020, 4, 5, tzinfo=UTC), [datetime(2020, 4, 4), datetime(2020, 4, 5)]),
    ("1d", "Australia/Melbourne", None, [datetime(2020, 4, 4), datetime(2020, 4, 5), datetime(2020, 4, 6)]),
    # sub-daily without tz: instants in UTC, as before
    ("1h", None, None, [datetime(2020, 4, 3, 13), datetime(2020, 4, 4, 14), datetime(2020, 4, 5, 14)]),
])
def test_daily_dates_with_offsets_keep_their_calendar_date(write_csv, freq, tz, as_of, expected):
    got = ingest(make_source(write_csv(DST_DAYS), freq=freq, tz=tz), as_of).frame.select("ds").collect()
    assert got["ds"].to_list() == expected


# the day of 1 March written at midnight of four offsets: it begins at 2024-02-29T10:00Z (+14), 19:00Z (+05),
# 2024-03-01T05:00Z (-05) and 11:00Z (-11)
OFFSET_DAYS = ("date,id,val\n2024-03-01T00:00:00+14:00,p14,1\n2024-03-01T00:00:00+05:00,p5,2\n"
               "2024-03-01T00:00:00-05:00,m5,3\n2024-03-01T00:00:00-11:00,m11,4\n")


@pytest.mark.parametrize("freq", ["1d", "1mo"])
@pytest.mark.parametrize(("tz", "as_of", "seen"), [
    (None, datetime(2024, 2, 29, 9, 59, tzinfo=UTC), []),
    (None, datetime(2024, 2, 29, 10, tzinfo=UTC), ["p14"]),
    (None, datetime(2024, 2, 29, 20, tzinfo=UTC), ["p14", "p5"]),  # 1 March in +05:00: it was kept by date
    (None, "2024-03-01", ["p14", "p5"]),  # midnight UTC: 1 March has not begun at -05:00 (it was seen by date)
    (None, datetime(2024, 3, 1, 5, tzinfo=UTC), ["m5", "p14", "p5"]),
    (None, "2024-03-02", ["m11", "m5", "p14", "p5"]),
    # a date alone is the midnight it begins at in the source's tz (05:00 UTC in New York)
    ("America/New_York", "2024-03-01", ["m5", "p14", "p5"]),
    ("America/New_York", datetime(2024, 3, 1, 4, 59, tzinfo=UTC), ["p14", "p5"]),
    ("Asia/Tokyo", "2024-03-01", ["p14"]),  # 2024-02-29T15:00Z
])
def test_daily_times_with_an_offset_are_seen_by_as_of_from_their_instant(write_csv, freq, tz, as_of, seen):
    """pit21: a daily (or monthly) time with an offset was compared with as_of by the date as written, against
    as_of's wall time in the source's zone (UTC without one): '2024-03-01T00:00:00-05:00', a day beginning at 05:00
    UTC, was seen by a run at midnight UTC, and '2024-03-01T00:00:00+05:00', begun at 19:00 UTC the day before, was
    not seen at 20:00 UTC. It is the instant it names: seen from then on, whatever the offset; its ds stays the date
    as written. The rows not seen are counted after as_of (the counts reconcile)."""
    src = make_source(write_csv(OFFSET_DAYS), freq=freq, tz=tz)
    got = ingest(src, as_of).frame.select("unique_id", "ds").collect().sort("unique_id")
    assert got["unique_id"].to_list() == seen
    assert set(got["ds"].to_list()) <= {datetime(2024, 3, 1)}  # (the date as written, midnight trait)
    if not seen:  # the first instant is named
        with pytest.raises(DataValidationError, match="all 4 rows are after as_of.*the first is 2024-02-29 10:00"):
            run_validate(src.path, as_of, freq=freq, tz=tz)
        return
    report = run_validate(src.path, as_of, freq=freq, tz=tz).report
    assert (report.rows_valid, report.rows_after_as_of) == (len(seen), 4 - len(seen))


def test_aware_parquet_daily_without_tz_keeps_its_wall_date(tmp_path):
    p = tmp_path / "tz.parquet"
    ts = pl.Series([datetime(2020, 4, 4), datetime(2020, 4, 5)]).dt.replace_time_zone("Australia/Melbourne")
    pl.DataFrame({"date": ts, "id": ["a", "a"], "val": [1.0, 2.0]}).write_parquet(p)
    got = ingest(make_source(p), None).frame.select("ds").collect()
    assert got["ds"].to_list() == [datetime(2020, 4, 4), datetime(2020, 4, 5)]


@pytest.mark.parametrize("suffix,hours", [("+01", -1), ("-05", 5), ("+00", 0), (" UTC", 0), (" GMT", 0),
                                          (" +0000", 0), ("+0100", -1), ("Z", 0),
                                          # Java's ZonedDateTime (RFC 9557): the offset, then the zone in brackets
                                          ("+01:00[Europe/Berlin]", -1), ("Z[UTC]", 0)])
def test_hour_offsets_and_utc_suffixes_are_read(write_csv, suffix, hours):
    """Regression: PostgreSQL writes a timestamptz with its offset in hours alone ('2024-01-01 00:00:00+01', ISO-8601
    allows it) and BigQuery's CSV export a TIMESTAMP with ' UTC': neither was stripped of its zone, and polars,
    inferring the column's format from such a value, failed the whole read ("cannot read FILE: `strptime` /
    `to_datetime` was called with no format and no time zone, but a time zone is part of the data"); ' +0000'
    (a blank before the offset) was quarantined. Each is its instant; a zone's abbreviation ('CET', no single
    offset) is quarantined, saying so."""
    p = write_csv("".join(["date,id,val\n", *(f"2024-01-01 {h:02d}:00:00{suffix},a,{h}\n" for h in range(3))]))
    got = ingest(make_source(p, freq="1h"), None).frame.select("ds").collect()["ds"].to_list()
    assert got == [datetime(2024, 1, 1) + timedelta(hours=h + hours) for h in range(3)]
    got = ingest(make_source(p), None).frame.select("ds").collect()["ds"].to_list()  # daily: the date as written
    assert got == [datetime(2024, 1, 1)] * 3


@pytest.mark.parametrize("compact,extended", [
    ("2024-03-07T0930+0100", "2024-03-07T09:30+01:00"), ("2024-03-07 0930+01", "2024-03-07 09:30+01:00"),
    ("2024-03-07T093000Z", "2024-03-07T09:30:00Z"), ("2024-03-07T0930-0530", "2024-03-07T09:30-05:30"),
    ("2024-03-07T093000.5+0100", "2024-03-07T09:30:00.5+01:00"), ("2024-03-07 09:30+0100", "2024-03-07 09:30+01:00"),
    ("2024-03-07T0930+0100[Europe/Berlin]", "2024-03-07T09:30+01:00"),
    # ISO-8601's basic date too, alone or before its time of day (ingest53c: every such row was quarantined)
    ("20240307", "2024-03-07"), ("20240307T0930", "2024-03-07T09:30"), ("20240307T093000Z", "2024-03-07T09:30:00Z"),
    ("20240307T0930+0100", "2024-03-07T09:30+01:00"), ("20240307T093000.5-0530", "2024-03-07T09:30:00.5-05:30"),
    ("20240307 0930", "2024-03-07 09:30"),
    # a basic date before an extended time of day (ingest54: every such row was quarantined), the mirror of
    # '2024-03-07T0930'
    ("20240307T09:30", "2024-03-07T09:30"), ("20240307 09:30:00Z", "2024-03-07T09:30:00Z"),
    ("20240307T09:30+01:00", "2024-03-07T09:30+01:00"), ("20240307T09:30:00.5-0530", "2024-03-07T09:30:00.5-05:30")])
def test_a_basic_time_of_day_with_a_compact_offset_is_read(write_csv, compact, extended):
    """Regression: ISO-8601's basic time of day with a compact offset ('2024-03-07T0930+0100', as a logger's
    strftime('%Y-%m-%dT%H%M%z') writes it) was not stripped of its offset, and polars, inferring the column's format
    from it, refused the whole file ("cannot read FILE: ... a time zone is part of the data"). Each is the instant of
    its extended form, written first or after it (polars infers one format for the column from its first value).
    Regression (ingest53c): a basic date ('20240307T093000Z', strftime('%Y%m%dT%H%M%S%z')) was quarantined.
    Regression (ingest54): so was a basic date before an extended time of day ('20240307T09:30')."""
    at = datetime.fromisoformat(extended.replace(" ", "T"))
    at = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at
    for name, body in (("first.csv", f"{compact},a,1\n{extended},b,2\n"), ("after.csv", f"{extended},b,2\n{compact},a,1\n"),
                       ("alone.csv", f"{compact},a,1\n{compact},b,2\n")):
        got = ingest(make_source(write_csv("date,id,val\n" + body, name=name), freq="1h"), None).frame.select(
            "unique_id", DS_RAW).collect().sort("unique_id")  # (the time as read, before the grid)
        assert got[DS_RAW].to_list() == [at] * 2, name


@pytest.mark.parametrize("first,second,hours", [
    ("20240307T09:00", "2024-03-07T1000", (9, 10)), ("2024-03-07T1000", "20240307T09:00", (10, 9)),
    ("20240307T09:00", "20240307T1000", (9, 10)), ("20240307T09:00", "2024-03-07T10:00", (9, 10)),
    ("20240307 10:00+01:00", "2024-03-07T1100+0100", (9, 10))])
def test_a_column_mixing_basic_and_extended_parts_reads_every_row(write_csv, first, second, hours):
    """Regression (ingest54): a column mixing '20240307T09:00' (basic date, extended time) with its mirror
    '2024-03-07T1000' or either form whole reads each row as its instant, whichever comes first (polars infers one
    format for a column from its first value): the basic date's rows were quarantined as not ISO-8601."""
    r = run_validate(write_csv(f"date,id,val\n{first},a,1\n{second},a,2\n"), freq="1h")
    assert r.quarantined.height == 0, r.quarantined.rows()
    assert sorted(r.valid.select("ds", "y").rows()) == sorted(
        (datetime(2024, 3, 7, h), float(v)) for v, h in enumerate(hours, start=1))


@pytest.mark.parametrize("bad", ["20240307T2500", "20241307T1000+0100", "20240230", "20240307T09", "20240307T25:00",
                                 "20241307T10:00+01:00", "20240230T10:00"])
def test_an_unreadable_basic_time_is_quarantined_alone(write_csv, bad):
    """Regression (ingest53c): a basic date or time out of range (hour 25, month 13, 30 February, an hour alone) is a
    row quarantined as not ISO-8601 (no format hinted: '%Y%m%d' reads none of them), the file's other rows read."""
    r = run_validate(write_csv(f"date,id,val\n{bad},a,1\n20240307T1000+0100,a,2\n"), freq="1h")
    assert r.quarantined.select("date", "reason").rows() == [(bad, f"time '{bad}' does not parse as ISO-8601")]
    assert r.valid.select("ds", "y").rows() == [(datetime(2024, 3, 7, 9), 2.0)]


def test_the_rows_written_by_as_of_read_a_basic_time_of_day():
    """Regression (ingest53c): `_written_by` read a time of day at the extended form's places alone, so a basic one
    ('20240307T1100', '2024-03-07T1100+0100') later on as_of's own day was kept as if by as_of (it decided the
    column's day/month order and decimal marks of a backfill with rows written after it), and a basic date after
    as_of's ('20240308') too. Each is compared as its instant (its offset's, else a wall time of the source's zone).
    Regression (ingest54): a basic date before an extended time of day ('20240307T10:01') was compared by its date."""
    from flowcast.data.dated_by import _written_by

    kept = {"20240307T0900": True, "20240307T1100": False, "20240307T093000Z": True, "20240307T103000Z": False,
            "20240307T1030+0100": True, "20240307T1130+0100": False, "20240307T0330-0530": True,
            "20240307T0930-0530": False, "20240307T0429-0530": True, "20240307T0431-0530": False, "2024-03-07T0900": True, "2024-03-07T1100+0100": True,
            "2024-03-07T1200+0100": False, "2024-03-07T10:30": False, "20240307 0959": True, "20240307 1001": False, "20240307": True, "20240308": False,
            # (ingest54) a basic date before an extended time of day, and its mirror
            "20240307T09:59": True, "20240307T10:01": False, "20240307 10:00:01": False, "20240307T10:30:00+01:00": True,
            "20240307T11:30Z": False, "2024-03-07T0959": True, "2024-03-07T1001": False}
    src = make_source("x.csv", freq="1h")
    got = _written_by(pl.LazyFrame({"date": list(kept)}), "date", src, datetime(2024, 3, 7, 10, tzinfo=UTC)).collect()
    assert got["date"].to_list() == [t for t, by in kept.items() if by]


def test_an_unreadable_time_with_a_compact_offset_is_quarantined_alone(write_csv):
    """Regression: a time polars infers a zoned format from but cannot read ('2024-03-07T2530+0100': hour 25) refused
    the whole file; it is a row quarantined as other unreadable times are, the file's other rows read."""
    r = run_validate(write_csv("date,id,val\n2024-03-07T2530+0100,a,1\n2024-03-07T1000+0100,a,2\n"), freq="1h")
    assert r.quarantined.select("date", "reason").rows() == [
        ("2024-03-07T2530+0100", "time '2024-03-07T2530+0100' does not parse as ISO-8601")]
    assert r.valid.select("ds", "y").rows() == [(datetime(2024, 3, 7, 9), 2.0)]


def test_a_12_hour_clock_is_read(write_csv):
    """Regression: Excel's m/d/yyyy h:mm AM/PM (an English-locale export of a date-time column: '1/13/2024 2:30 PM')
    had every row quarantined, with a hint ('--time-format %m/%d/%Y %H:%M') that does not parse it either. A
    12-hour clock is read (12 AM is midnight, 12 PM noon), after a day/month date or an ISO one; where the
    day/month order is not settled, the hint's format reads it."""
    p = write_csv("date,id,val\n1/13/2024 12:00 AM,a,1\n1/13/2024 1:00 AM,a,2\n1/13/2024 12:00 PM,a,3\n"
                  "1/13/2024 1:00:00 pm,a,4\n2024-01-14 11:00 P.M.,a,5\n1/13/2024 13:00 PM,a,6\n")
    got = ingest(make_source(p, freq="1h"), None).frame.select(pl.col("ds").cast(pl.Datetime("us"))).collect()
    assert got["ds"].to_list() == [datetime(2024, 1, 13, 0), datetime(2024, 1, 13, 1), datetime(2024, 1, 13, 12),
                                   datetime(2024, 1, 13, 13), datetime(2024, 1, 14, 23), None]
    r = run_validate(write_csv("date,id,val\n1/2/2024 2:30 PM,a,1\n", name="open.csv"), freq="1h")
    assert r.quarantined["reason"].to_list() == [
        ("time '1/2/2024 2:30 PM' does not parse as ISO-8601 (day/month order is ambiguous: declare its time_format, "
         "e.g. --time-format '%d/%m/%Y %I:%M %p' or '%m/%d/%Y %I:%M %p')")]


def test_a_zone_abbreviation_is_quarantined_saying_so(write_csv):
    r = run_validate(write_csv("date,id,val\n2024-01-01 00:00:00 CET,a,1\n2024-01-01 01:00:00 CET,a,2\n"), freq="1h")
    assert r.quarantined["reason"].to_list()[0] == (
        "time '2024-01-01 00:00:00 CET' does not parse as ISO-8601 (a time zone abbreviation? 'CET' is not a UTC "
        "offset: export the times with their offset (+01:00), or without a zone and declare the source's tz (--tz))")


def test_daily_offsets_with_a_strptime_format(write_csv):
    p = write_csv("date,id,val\n04/04/2020 00:00 +1100,a,1\n05/04/2020 00:00 +1000,a,2\n")
    got = ingest(make_source(p, time_format="%d/%m/%Y %H:%M %z"), None).frame.select("ds").collect()
    assert got["ds"].to_list() == [datetime(2020, 4, 4), datetime(2020, 4, 5)]


@pytest.mark.parametrize("kw,needle", [
    ({"id_cols": ["date"]}, "'date' is declared as id and time"),
    ({"target_col": "date"}, "'date' is declared as time and target"),
    ({"future_cols": ["val"]}, "'val' is declared as target and future"),
    # two covariate roles failed inside validation: "the name 'price' passed to `LazyFrame.with_columns` is duplicate"
    ({"past_cols": ["price"], "future_cols": ["price"]}, ("'price' is declared as past and future \\(a future "
                                                         "covariate is read up to each period as well")),
    ({"static_cols": ["price"], "past_cols": ["price"]}, ("'price' is declared as static and past \\(a static is one "
                                                         "value per series")),
])
def test_a_column_plays_one_role(write_csv, kw, needle):
    """Regression: --id-col date --time-col date quarantined every row as duplicate_conflict."""
    p = write_csv("date,id,val,price\n2020-01-01,a,1,2.5\n")
    with pytest.raises(DataValidationError, match=f"a column can play one role only: {needle}"):
        ingest(make_source(p, **kw), None)


@pytest.mark.parametrize("kw,said", [
    ({"id_cols": ["id", "id"]}, "id column 'id' is listed 2 times"),
    ({"future_cols": ["price", "price"]}, "future column 'price' is listed 2 times"),
])
def test_a_column_listed_twice_in_one_role_is_named(write_csv, kw, said):
    """Regression: id_cols = ['id', 'id'] failed reading the file ("cannot read src.csv: multiple fields with name
    'id' found"), blaming the file for the declaration."""
    p = write_csv("date,id,val,price\n2020-01-01,a,1,2.5\n")
    with pytest.raises(DataValidationError, match=f"source 't': {said}: name each column once"):
        ingest(make_source(p, **kw), None)


@pytest.mark.parametrize("kw,col", [({"future_cols": ["step"]}, "step"), ({"past_cols": ["y"]}, "y"),
                                    ({"static_cols": ["ds"]}, "ds"), ({"future_cols": ["unique_id"]}, "unique_id")])
def test_a_covariate_with_a_name_flowcast_gives_its_own_columns_is_a_clear_error(write_csv, kw, col):
    """Regression: a covariate named 'step' failed the run inside backtesting with polars' "projections contained
    duplicate output name 'step'" ('y', 'unique_id': "the name 'y' passed to LazyFrame.with_columns is duplicate")."""
    p = write_csv(f"date,id,val,{col}\n2020-01-01,a,1,0\n")
    with pytest.raises(DataValidationError, match=f"covariate column '{col}' .* has a name .* rename the column in the file "
                       f"\\(e.g. '{col}_'\\)"):
        ingest(make_source(p, **kw), None)


@pytest.mark.parametrize("name", ["a.csv", "my data/a.csv", "100% a%41.csv"])
@pytest.mark.parametrize("url", ["file://localhost{}", "file://LOCALHOST{}", "file://{}", "file://localhost{glob}",
                                 "file://{folder}"])
def test_a_file_url_of_this_machine_is_read_percent_decoded(tmp_path, name, url):
    """Regression (ingest54): a file://localhost/ file failed inside polars ('non-empty hostname for file: URI'), and
    a percent-encoded file:// glob ('file:///my%20data/*.csv') matched no file. RFC 8089's localhost is this machine,
    and the path's escapes are decoded (a '%' of a file's name, '%25', too: polars decodes a file URL's escapes
    again, 'a%41.csv' was read as 'aA.csv'); the file is named, and its state kept (`source_states`), as a file:///
    one's."""
    from urllib.parse import quote

    from flowcast.data.source_files import source_states

    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("date,id,val\n2020-01-01,a,1\n2020-01-02,a,2\n")
    whole = url.format(quote(str(path)), glob=quote(str(path.parent)) + "/*.csv", folder=quote(str(path.parent)) + "/")
    src = make_source(whole)
    named = f"file://{str(path).replace('%', '%25')}"
    assert resolve_files(src) == [f"file://{path.parent}/*.csv" if "*" in whole else named]
    assert ingest(src, None).frame.select("y").collect()["y"].to_list() == [1.0, 2.0]
    assert set(source_states(src)) == {named} and source_states(src)[named] is not None


@pytest.mark.parametrize("mark", ["*", "?", "["])
def test_a_file_url_escaped_glob_character_names_one_file(tmp_path, mark):
    """Regression (fixC54): an escaped '*', '?' or '[' of a file:// path was decoded first, then read as a glob's:
    'file:///D/q%2A.csv' read 'q*.csv', 'qA.csv' and 'q%41.csv'. Glob-ness is told from the path as written: the
    file 'q*.csv' alone is read, named (escaped again) as polars reads it, and its state kept under that name."""
    from urllib.parse import quote

    from flowcast.data.source_files import source_states

    for i, name in enumerate((f"q{mark}.csv", "qA.csv", "q%41.csv", "q].csv")):
        (tmp_path / name).write_text(f"date,id,val\n2020-01-01,a,{i + 1}\n")
    url = f"file://{quote(str(tmp_path))}/q{quote(mark, safe='')}.csv"
    named = f"file://{tmp_path}/q%{ord(mark):02X}.csv"
    src = make_source(url)
    assert resolve_files(src) == [named]
    assert ingest(src, None).frame.select("y").collect()["y"].to_list() == [1.0]
    states = source_states(src)
    assert list(states) == [named] and states[named] == _file_state(tmp_path / f"q{mark}.csv")


def test_a_file_url_folders_file_named_with_a_glob_character_is_read_alone(tmp_path):
    """Regression (fixC54): the files of a file:// folder were named file:// + their path, a '*' of a name unescaped,
    so polars read 'q*.csv' as a glob: its rows and 'qA.csv''s, then 'qA.csv''s again. Each is named escaped."""
    for i, name in enumerate(("q*.csv", "qA.csv")):
        (tmp_path / name).write_text(f"date,id,val\n2020-01-01,{name},{i + 1}\n")
    src = make_source(f"file://{tmp_path}/")
    assert resolve_files(src) == [f"file://{tmp_path}/q%2A.csv", f"file://{tmp_path}/qA.csv"]
    assert sorted(ingest(src, None).frame.select("y").collect()["y"].to_list()) == [1.0, 2.0]


def test_a_file_url_glob_in_a_folder_with_a_percent_is_checked_decoded_once(tmp_path):
    """Regression (fixC54): a file:// glob's path was decoded twice, by `resolve_files` and again by `local_files`:
    the files of 'file:///D/p%2541/*.csv' (the folder 'p%41') were checked as those of 'D/pA', so a file of it written
    while it was read went unnoticed. Its files are the folder 'p%41''s, each named as polars reads it ('%' as '%25')."""
    from urllib.parse import quote

    from flowcast.data.source_files import source_states

    for folder in ("p%41", "pA"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.csv").write_text(f"date,id,val\n2020-01-01,{folder},1\n")
    src = make_source(f"file://{quote(str(tmp_path / 'p%41'))}/*.csv")
    assert resolve_files(src) == [f"file://{tmp_path}/p%41/*.csv"]
    states = source_states(src)
    named = f"file://{tmp_path}/p%2541/x.csv"
    assert list(states) == [named] and states[named] == _file_state(tmp_path / "p%41" / "x.csv")


def _file_state(path: os.PathLike[str]) -> tuple[int, int, int, int]:
    """A local file's state now, as `source_states` gives it (size, mtime_ns, ctime_ns, inode)."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


@pytest.mark.parametrize("url", ["file://otherhost/data/a.csv", "file://nas.local/data/*.csv", "file://otherhost/data/"])
def test_a_file_url_of_another_host_is_refused_naming_it(url):
    """Regression (ingest54): a file:// URL of another host failed inside polars ('failed to create CloudLocation:
    unsupported: non-empty hostname for 'file:' URI'): it is refused naming the URL, its host and what reads it."""
    host = url.removeprefix("file://").split("/")[0]
    with pytest.raises(DataValidationError, match=rf"source 't': {re.escape(url)} names the host '{re.escape(host)}': a "
                       r"file:// URL is read on this machine alone \(file:///path or file://localhost/path\)"):
        ingest(make_source(url), None)


@pytest.mark.parametrize("url", ["", "file://", "file:///"])
def test_directory_source_skips_spark_markers_and_reads_partition_folders(tmp_path, url):
    """Regression: a Spark/Hive output folder failed on its empty _SUCCESS marker, and files in
    partition sub-folders (year=2020/) were not found ('holds no files'). Regression (ingest53c): a file:// folder
    was one URL that polars read as one object ('is directory'; ending in '/', its Parquet files as CSV): it is read
    as the plain folder, each file named file:// + its path."""
    out = tmp_path / "out"
    (out / "year=2020").mkdir(parents=True)
    (out / "_SUCCESS").write_bytes(b"")
    (out / ".part-0.parquet.crc").write_bytes(b"\x00crc")
    (out / "_temporary").mkdir()
    (out / "_temporary" / "junk.csv").write_text("not,a,source\n")
    pl.DataFrame({"date": ["2020-01-01"], "id": ["a"], "val": [1.0]}).write_parquet(out / "year=2020" / "part-0.parquet")
    pl.DataFrame({"date": ["2020-01-02"], "id": ["a"], "val": [2.0]}).write_parquet(out / "part-1.parquet")
    named = f"file://{out}" if url else str(out)
    src = make_source(named + url.removeprefix("file://"))
    assert resolve_files(src) == [f"{'file://' if url else ''}{out / f}" for f in ("part-1.parquet", "year=2020/part-0.parquet")]
    assert sorted(ingest(src, None).frame.select("y").collect()["y"].to_list()) == [1.0, 2.0]
    (out / "part-1.parquet").unlink()
    (out / "year=2020" / "part-0.parquet").unlink()
    with pytest.raises(DataValidationError, match=f"directory {re.escape(src.path)} holds no data files"):
        resolve_files(src)


@pytest.mark.parametrize("magic", [b"PK\x03\x04\x14\x00\x06\x00", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00"])
def test_excel_workbook_is_named_as_such(tmp_path, magic):
    p = tmp_path / "sales.xlsx"
    p.write_bytes(magic + b"\x00" * 64)
    with pytest.raises(DataValidationError, match=r"sales\.xlsx is a ZIP or Excel workbook, not a CSV file; save the sheet as CSV"):
        ingest(make_source(p), None)


@pytest.mark.parametrize(("name", "text"), [
    ("rows.json", '[{"date": "2020-01-01", "id": "a", "val": 1}]'), ("rows.txt", '\ufeff[\n  {"date": "2020-01-01"}]'),
    ("rows.csv", '{"date": "2020-01-01", "id": "a", "val": 1}\n'), ("rows.jsonl", "date,id,val\n")])
def test_a_json_file_is_named_as_such(write_csv, name, text):
    """Regression: a JSON export was read as a CSV and failed on its 'columns' ['[{"date": "2020-01-01"', ...]. The
    message named CSV and Parquet only: Arrow IPC/Feather files are read too, as --help and the README say."""
    told = rf"{name} is JSON, not a CSV file; flowcast reads CSV \(gzipped too\), Parquet and Arrow IPC/Feather"
    with pytest.raises(DataValidationError, match=told):
        ingest(make_source(write_csv(text, name=name)), None)


@pytest.mark.parametrize(("name", "text", "what"), [
    ("report.xls", "<html><body><table><tr><td>date</td><td>val</td></tr><tr><td>2020-01-01</td><td>1</td></tr>",
     "an HTML page (a web app's 'Export to Excel' often is an HTML table)"),
    ("page.csv", "\ufeff<!DOCTYPE html>\n<html><table></table></html>\n",
     "an HTML page (a web app's 'Export to Excel' often is an HTML table)"),
    ("book.xls", '<?xml version="1.0"?>\n<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">\n',
     "an XML file (Excel's 'XML Spreadsheet 2003' is one)"),
], ids=["html_table", "html_doctype", "xml_2003"])
def test_an_html_or_xml_export_is_named_as_such(write_csv, name, text, what):
    """newuser47: a web app's 'Export to Excel' (an HTML table saved as .xls) was told 'no rows (the file has a
    header but no data)', and Excel's XML Spreadsheet 2003 was asked for columns of its header '<?xml
    version="1.0"?>'. Each is named for what it is, with what to export."""
    with pytest.raises(DataValidationError, match=re.escape(
            f"{name} is {what}, not a CSV file; open it in Excel and save the sheet as CSV (UTF-8) or Parquet")):
        ingest(make_source(write_csv(text, name=name)), None)


def test_a_csv_whose_first_header_starts_like_a_tag_is_read(write_csv):
    """revG47: the HTML/XML check took any file starting '<table' or '<html' for markup: a CSV whose first header is
    '<table_id>' (a template's placeholder name) was refused as an HTML page."""
    got = ingest(make_source(write_csv("<table_id>,date,val\nt1,2020-01-01,1\n"), id_cols=["<table_id>"]),
                 None).frame.collect()
    assert got.height == 1


def test_json_lines_are_told_the_reader_of_json_lines(write_csv):
    """Regression (new-user trial): a JSON Lines file (one object per line) was told to convert itself with
    pl.read_json, which fails on it; pl.read_ndjson comes first for it."""
    p = write_csv('{"date": "2020-01-01", "val": 1}\n{"date": "2020-01-02", "val": 2}\n', name="rows.ndjson")
    with pytest.raises(DataValidationError, match=r"pl.read_ndjson\('.*rows.ndjson'\)\.write_parquet"):
        ingest(make_source(p), None)


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("sales.csv.bz2", bz2.compress(b"date,id,val\n2020-01-01,a,1\n"), ("is bzip2-compressed; flowcast reads plain or "
     "gzipped CSV, Parquet and Arrow IPC/Feather: decompress it (bunzip2 -k '{p}') or compress it with gzip instead")),
    ("sales.csv.xz", lzma.compress(b"date,id,val\n2020-01-01,a,1\n"), ("is xz-compressed; flowcast reads plain or "
     "gzipped CSV, Parquet and Arrow IPC/Feather: decompress it (xz -dk '{p}') or compress it with gzip instead")),
    ("sales.zip", None, ("is a ZIP archive holding sales.csv, not a CSV file; flowcast reads CSV (gzipped too), "
     "Parquet and Arrow IPC/Feather: unzip it (unzip '{p}') and pass the file it holds")),
])
def test_an_archive_or_another_compression_is_named(tmp_path, name, data, expected):
    """Regression (new-user trial): a 'sales.csv.bz2' or '.zst' was told "is not a text CSV file (binary content,
    NUL bytes in the first bytes)", and a downloaded 'sales.zip' "is a ZIP or Excel workbook": each is named, with
    the command that makes it readable."""
    p = tmp_path / name
    if data is None:
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("sales.csv", "date,id,val\n2020-01-01,a,1\n")
    else:
        p.write_bytes(data)
    with pytest.raises(DataValidationError) as err:
        ingest(make_source(p), None)
    assert str(err.value) == f"{p} " + expected.format(p=p)


def test_a_header_in_brackets_is_still_a_csv(write_csv):
    """SQL Server exports bracket their column names: '[date],[val]' is a CSV header, not JSON."""
    p = write_csv("[date],[id],[val]\n2020-01-01,a,1\n")
    got = ingest(make_source(p, time_col="[date]", id_cols=["[id]"], target_col="[val]"), None).frame.collect()
    assert got["y"].to_list() == [1.0]


@pytest.mark.parametrize("fmt,text,expected", [
    ("%d/%m/%Y", "01/02/2020", datetime(2020, 2, 1)),
    ("%m/%d/%Y", "01/02/2020", datetime(2020, 1, 2)),
    (None, "2020/01/02", datetime(2020, 1, 2)),  # year first: not ambiguous
    (None, "2020-01-02 10:00", datetime(2020, 1, 2, 10)),
])
def test_day_month_order_comes_from_the_declared_format(write_csv, fmt, text, expected):
    p = write_csv(f"date,id,val\n{text},a,1\n")
    got = ingest(make_source(p, freq="1h", time_format=fmt), None).frame.select("ds").collect()
    assert got["ds"].to_list() == [expected]


@pytest.mark.parametrize("freq,texts,expected", [
    ("1y", ["2019", "2020"], [datetime(2019, 1, 1), datetime(2020, 1, 1)]),
    # pandas writes a column of years with a missing value as floats: '2019.0' was quarantined, told '%Y.%m'
    ("1y", ["2019.0", "2020.0"], [datetime(2019, 1, 1), datetime(2020, 1, 1)]),
    ("1y", ["2019.0", "", "2021.00"], [datetime(2019, 1, 1), None, datetime(2021, 1, 1)]),
    ("1mo", ["2020-02", "2020-03"], [datetime(2020, 2, 1), datetime(2020, 3, 1)]),
    ("1q", ["2019Q4", "2020-Q1", "2020 Q2", "2020q3"],
     [datetime(2019, 10, 1), datetime(2020, 1, 1), datetime(2020, 4, 1), datetime(2020, 7, 1)]),
])
def test_years_months_and_quarters_parse_without_a_time_format(write_csv, freq, texts, expected):
    # regression: '2020' and '2020-03' (ISO-8601 at reduced precision) and '2020Q1' were quarantined
    # as "does not parse as ISO-8601", and no strptime format reads a quarter
    p = write_csv("date,id,val\n" + "".join(f"{t},a,{i}\n" for i, t in enumerate(texts)))
    got = ingest(make_source(p, freq=freq), None).frame.select("ds").collect()
    assert got["ds"].to_list() == expected


def test_an_invalid_month_or_quarter_stays_unparsable(write_csv):
    p = write_csv("date,id,val\n2020-13,a,1\n2020Q5,a,2\n")
    got = ingest(make_source(p, freq="1mo"), None).frame.select("ds").collect()
    assert got["ds"].to_list() == [None, None]


def test_decimal_commas_of_a_semicolon_file_are_numbers(write_csv):
    """Regression: Excel's CSV in locales whose decimal mark is ',' (';'-separated, '3,5') had every row
    quarantined as "val '3,5' is not a number (decimal comma? ...)". In a ','-separated file a quoted '3,5' is
    read where its column settles it (no decimal point beside it: see
    test_a_comma_files_decimal_comma_column_reads_its_points_as_thousands). Thousands separators of such a
    column: see the next test."""
    p = write_csv("date;id;val;promo\n2020-01-01;a;3,5;0,25\n2020-01-02;a;-0,5;1\n2020-01-03;a;4;\n"
                  "2020-01-04;a;1.234,5;0\n")
    got = ingest(make_source(p, past_cols=["promo"]), None).frame.select("y", "promo").collect()
    assert got.rows() == [(3.5, 0.25), (-0.5, 1.0), (4.0, None), (1234.5, 0.0)]
    p = write_csv('date,id,val\n2020-01-01,a,"3,5"\n2020-01-02,a,7.5\n', name="comma.csv")
    assert ingest(make_source(p), None).frame.select("y").collect()["y"].to_list() == [None, 7.5]


def test_scientific_numbers_with_a_decimal_comma_are_numbers(write_csv):
    """Regression: Excel writes a large or small number in scientific format ('1,5E+03' in a ','-decimal
    locale's ';' CSV): such rows were quarantined as "is not a number" while '3,5' beside them was read."""
    p = write_csv("date;id;val\n2020-01-01;a;1,5E+03\n2020-01-02;a;-2,25e-2\n2020-01-03;a;3,5\n2020-01-04;a;1E+12\n")
    got = ingest(make_source(p), None).frame.select("y").collect()
    assert got["y"].to_list() == [1500.0, -0.0225, 3.5, 1e12]


def test_a_static_number_of_a_semicolon_file_is_a_number(write_csv):
    """Regression: a static column's '1.234,5' or '3,5' (a store's area in a ';' file of a ','-decimal locale) stayed
    text, and preprocessing one-hot encoded the numbers as categories (area=1.234,5, area=3,5); a ',' file's
    '1,234.5' likewise. A text static is left as written."""
    p = write_csv("date;id;val;area;region\n2020-01-01;a;1;1.234,5;Nord, West\n2020-01-01;b;2;3,5;Süd\n")
    got = ingest(make_source(p, static_cols=["area", "region"]), None).frame.select("area", "region").collect()
    assert got.rows() == [("1234.5", "Nord, West"), ("3.5", "Süd")]
    p = write_csv('date,id,val,area\n2020-01-01,a,1,"1,234.5"\n2020-01-01,b,2,7\n', name="comma.csv")
    got = ingest(make_source(p, static_cols=["area"]), None).frame.select("area").collect()
    assert got["area"].to_list() == ["1234.5", "7"]


def test_thousands_of_a_decimal_comma_column_are_thousands(write_csv):
    """Regression: Excel's '#.##0,00' export ('1.234,56', German locale, ';'-separated) had such rows
    quarantined ('thousands separators? export numbers without them') and '1.234' beside them read as 1.234,
    a thousandth of its value. In a column that has decimal commas, digits grouped by '.' or (no-break) spaces
    are thousands; a column without a decimal comma keeps '.' as its decimal point ('1.234' is 1.234)."""
    p = write_csv("date;id;val;promo\n2020-01-01;a;1.234,56;1.5\n2020-01-02;a;1.234;2.25\n"
                  "2020-01-03;a;12\u00a0345,5;1.234\n2020-01-04;a;-1.234.567,0;0\n2020-01-05;a;7,5;1\n"
                  "2020-01-06;a;12.34,5;1\n")
    got = ingest(make_source(p, past_cols=["promo"]), None).frame.select("y", "promo").collect()
    assert got["y"].to_list() == [1234.56, 1234.0, 12345.5, -1234567.0, 7.5, None]  # '12.34,5' is no number
    assert got["promo"].to_list() == [1.5, 2.25, 1.234, 0.0, 1.0, 1.0]


def test_thousands_separators_of_a_comma_file_are_thousands(write_csv):
    """Regression: an English-locale Excel export of a '#,##0.00' column writes "1,234.56" (quoted, in a ','
    file): every such row was quarantined ('thousands separators? export numbers without them'), half of a
    revenue file. '1,234.56' and '1,234,567' are thousands in any column; '1,234' where the file's numbers show
    a '.' decimal point (here the 'val' column's, for 'promo' too); in a column with a decimal comma ('3,5') it
    stays unread."""
    p = write_csv('date,id,val,promo\n2020-01-01,a,"1,234.56",1\n2020-01-02,a,"1,234","1,234"\n'
                  '2020-01-03,a,"-1,234,567",2\n2020-01-04,a,7.5,3\n2020-01-05,a,"12,34.5",4\n')
    got = ingest(make_source(p, past_cols=["promo"]), None).frame.select("y", "promo").collect()
    assert got["y"].to_list() == [1234.56, 1234.0, -1234567.0, 7.5, None]  # '12,34.5' is no number
    assert got["promo"].to_list() == [1.0, 1234.0, 2.0, 3.0, 4.0]  # the file writes '.' decimals: 1234
    p = write_csv('date\tid\tval\n2020-01-01\ta\t"3,5"\n2020-01-02\ta\t1,234\n2020-01-03\ta\t1,234.5\n',
                  name="tab.csv")
    got = ingest(make_source(p), None).frame.select("y").collect()
    assert got["y"].to_list() == [None, None, 1234.5]  # a decimal comma in the column: '1,234' is not settled


@pytest.mark.parametrize(("rows", "y"), [
    # whole numbers only, but the file's price column writes '.' decimals: its '1,234' are thousands
    (['"1,234",3.50', '"12,345",3.75', "987,4.00"], [1234.0, 12345.0, 987.0]),
    # whole numbers below 1000 written plainly and a grouped one ending in 0: Excel's '#,##0'
    (['"1,234",3', '"12,340",4', "987,5"], [1234.0, 12340.0, 987.0]),
    # nothing settles it: 1.234 or 1234? quarantined, as before
    (['"1,234",3', '"12,345",4', "987,5"], [None, None, 987.0]),
    # a decimal comma in the file's other number column ('0,5'): '1,234' stays unsettled
    (['"1,234","0,5"', '"12,340",4', "987,5"], [None, None, 987.0]),
    # '0,250' is a decimal comma (no thousands group follows a lone 0): read, and '1,234' stays unsettled
    (['"1,234",3', '"0,250",4', '"12,340",5', "987,6"], [None, 0.25, None, 987.0]),
])
def test_whole_numbers_with_comma_thousands_are_read_where_the_file_settles_them(write_csv, rows, y):
    """Regression: an English-locale export of whole numbers with thousands separators ('#,##0': units
    "1,234", "12,345") had every such row quarantined ('thousands separators? export numbers without them')
    even where the file's other numbers wrote '.' decimals (a price column '3.50'), or where its whole numbers
    below 1000 were written plainly beside a grouped '12,340' (a three-decimal comma would not end in 0)."""
    p = write_csv("date,id,units,price\n" + "".join(f"2020-01-{i + 1:02d},a,{r}\n" for i, r in enumerate(rows)))
    got = ingest(make_source(p, target_col="units", past_cols=["price"]), None).frame.select("y").collect()
    assert got["y"].to_list() == y


def test_a_semicolon_file_is_not_scanned_again_for_its_decimal_commas_on_every_read(write_csv):
    """Regression: a ';' file's decimal-comma reading held a whole-column .any() per number column in the plan,
    so each read of the rows (validation reads them more than once) scanned the whole file again for it. Which
    columns have decimal commas is decided once, when the file is opened; the plan reads each row by itself."""
    p = write_csv("date;id;val;promo\n2020-01-01;a;3,5;1\n2020-01-02;a;1.234,5;2\n")
    got = ingest(make_source(p, past_cols=["promo"]), None)
    plan = got.frame.explain()
    assert "any_ignore_nulls" not in plan and ".any(" not in plan
    assert got.frame.select("y", "promo").collect().rows() == [(3.5, 1.0), (1234.5, 2.0)]


def test_blanks_around_header_names_are_formatting(write_csv):
    """Regression: a header written 'date, store, sales' (a space after each comma, as hand-made files and
    ', '.join exports have it) failed with "declared column(s) 'store' (renamed to ' store'?) missing", though
    the values' blanks (' a', ' 3') were already read as formatting; its names are read without them."""
    p = write_csv("date, id , val\n2020-01-01, a, 3\n2020-01-02, a, 4\ndate, id , val\n")
    r = run_validate(p)
    assert r.valid.select("unique_id", "y").rows() == [("a", 3.0), ("a", 4.0)]
    assert r.quarantined["check"].to_list() == ["header_repeated"]  # the header again, blanks and all
    # a wide file's series: ' north' is north (they were left out as unnamed cells, and the melt failed on its name)
    p = write_csv('date, north, south\n2020-01-01,"1,000.5",2\n2020-01-02,3,4\n', name="wide.csv")
    got = ingest(make_source(p, layout="wide", id_cols=["series"], target_col="value"), None)
    assert got.frame.select("unique_id", "y").collect().rows() == [("north", 1000.5), ("north", 3.0), ("south", 2.0),
                                                                   ("south", 4.0)]
    p = write_csv("date,id,val, val\n2020-01-01,a,1,2\n", name="both.csv")  # 'val' is taken: ' val' stays itself
    got = ingest(make_source(p), None)
    assert got.frame.select("y").collect()["y"].to_list() == [1.0] and got.undeclared == [" val"]


@pytest.mark.parametrize("preamble,data,skipped", [
    ("sep=,\n", "2020-01-01,a,1\n2020-01-02,a,x\n", 1),
    ("\ufeffsep=;\n", "2020-01-01;a;1,5\n2020-01-02;a;x\n", 1),  # Excel's: a BOM, then 'sep=;', decimal commas
    ("# exported by logger v2\n# at 2024-03-01 06:00\n\n", "2020-01-01,a,1\n2020-01-02,a,x\n", 3),
    # newuser48: a spreadsheet's title line commented out keeps its empty cells: it was read as the header
    ("# Sales report Q1 2024,,\n", "2020-01-01,a,1\n2020-01-02,a,x\n", 1)])
def test_a_separator_line_and_comments_before_the_header_are_skipped(write_csv, preamble, data, skipped):
    """Regression: a file whose first line is Excel's 'sep=;' (read as columns 'sep=' and column_2) or that starts
    with '# ...' comment lines failed on missing columns, the error naming the line to delete by hand. Those
    lines are skipped (the 'sep=' line's separator is the file's), and a quarantined row names its own line."""
    sep = ";" if "sep=;" in preamble else ","
    p = write_csv(f"{preamble}date{sep}id{sep}val\n{data}")
    r = run_validate(p)
    assert r.valid.select("unique_id", "y").rows() == [("a", 1.5 if sep == ";" else 1.0)]
    assert r.report.rows_in == 2 and r.report.rows_quarantined == 1
    assert r.report.check_examples["y_not_number"].startswith(f"source_row 1 (line {3 + skipped} of {p}): ")
    assert ingest(make_source(p), None).preamble_lines == skipped


def test_header_cells_without_a_name_are_called_by_their_position(write_csv):
    """Regression: a header with empty cells (the index column pandas writes, an Excel export's empty
    trailing columns) read as columns '' and '_duplicated_0': the missing-column error and the report's
    undeclared columns named '_duplicated_0', which is nowhere in the file, and the date column of
    `df.to_csv()` could not be declared at all. They are column_<position> now, which a source can declare
    (a ';' file's decimal commas included); a declared name written twice in the header is an error, where
    the first one was read silently."""
    p = write_csv(",id,val,\n2020-01-01,a,1,\n2020-01-02,a,2,\n")
    with pytest.raises(DataValidationError, match=r"the file has columns \['column_1', 'id', 'val', 'column_4'\] "
                                                  r"\(column_1, column_4: header cells with no name"):
        ingest(make_source(p), None)
    got = ingest(make_source(p, time_col="column_1"), None)
    assert got.frame.select("y").collect()["y"].to_list() == [1.0, 2.0] and got.undeclared == ["column_4"]
    p = write_csv("date;id;;x\n2020-01-01;a;3,5;1\n", name="semi2.csv")
    assert ingest(make_source(p, target_col="column_3"), None).frame.select("y").collect()["y"].to_list() == [3.5]
    p = write_csv("date,id,val,val\n2020-01-01,a,1,2\n", name="twice.csv")
    with pytest.raises(DataValidationError, match=r"names a declared column more than once \('val' is column 3 and 4\)"):
        ingest(make_source(p), None)


def test_iso_weeks_parse_as_their_monday(write_csv):
    """Regression: weekly data written as ISO-8601 weeks ('2021-W01', as SQL's IYYY-"W"IW and Excel exports
    write them) was quarantined row by row as "time '2021-W01' does not parse as ISO-8601", while '2020Q1'
    parsed. A week is its Monday (a weekday suffix its day); a week the year does not have stays unparsable."""
    p = write_csv("date,id,val\n2021-W01,a,1\n2021W02,a,2\n2020-W53,a,3\n2021-W01-3,a,4\n2021-W53,a,5\n2021-W00,a,6\n")
    got = ingest(make_source(p, freq="1w"), None).frame.select("ds").collect()
    assert got["ds"].to_list() == [datetime(2021, 1, 4), datetime(2021, 1, 11), datetime(2020, 12, 28),
                                   datetime(2021, 1, 6), None, None]


WIDE = "date,north,south,east\n2024-01-01,1,10,100\n2024-01-02,2,20,200\n2024-01-03,3,,300\n"


def test_a_wide_file_reads_each_column_as_a_series(write_csv, tmp_path):
    """A wide file (a date column, one column per series: how spreadsheets export) with layout "wide": each column
    is a series named after its header (unique_id), its values the target; an empty cell is a missing value."""
    from data_helpers import run_validate

    r = run_validate(write_csv(WIDE), layout="wide", id_cols=[], target_col="")
    assert r.report.rows_in == 9 and r.report.rows_valid == 9 and r.report.n_series == 3
    assert r.report.wide_columns == ["north", "south", "east"] and r.report.undeclared_columns == []
    got = {(u, d.day): y for u, d, y in r.valid.select("unique_id", "ds", "y").iter_rows()}
    assert got[("north", 2)] == 2.0 and got[("east", 3)] == 300.0 and got[("south", 3)] is None
    # Excel's ';' CSV: decimal commas in every series column; a Parquet file keeps its numbers
    semi = write_csv("date;a;b\n2024-01-01;1,5;2\n2024-01-02;1.234,5;2,25\n", name="semi.csv")
    r = run_validate(semi, layout="wide", id_cols=[], target_col="")
    assert sorted(r.valid["y"].to_list()) == [1.5, 2.0, 2.25, 1234.5]
    pq = tmp_path / "w.parquet"
    pl.DataFrame({"d": ["2024-01-01", "2024-01-02"], "a": [1.25, 2.5], "b": [3, 4]}).write_parquet(pq)
    r = run_validate(pq, layout="wide", id_cols=[], target_col="", time_col="d")
    assert sorted(r.valid["y"].to_list()) == [1.25, 2.5, 3.0, 4.0] and r.report.n_series == 2
    # a declared covariate shared by every series stays a column; named melted columns
    cov = write_csv("date,promo,a,b\n2024-01-01,1,5,6\n2024-01-02,0,7,8\n", name="cov.csv")
    r = run_validate(cov, layout="wide", id_cols=["store"], target_col="units", future_cols=["promo"])
    assert r.report.wide_columns == ["a", "b"] and sorted(r.valid["promo"].to_list()) == [0.0, 0.0, 1.0, 1.0]


def test_a_wide_file_whose_column_is_named_like_the_melted_ones_is_told_to_rename(write_csv):
    from data_helpers import run_validate

    with pytest.raises(DataValidationError, match=r"has a column named 'y': name them otherwise"):
        run_validate(write_csv("date,x,y\n2024-01-01,1,2\n"), layout="wide", id_cols=[], target_col="")


def test_an_unnamed_column_of_a_wide_file_is_not_a_series(write_csv):
    """Regression: a wide Excel export with an empty trailing column ('date,a,b,') made a third series
    'column_4' without any value (excluded, named in the report as if it were data); the index column pandas
    writes ('' header, 0, 1, 2, ...) would have been forecast. A header cell without a name is not a series: it is
    an undeclared column, ignored."""
    from data_helpers import run_validate

    rows = "".join(f"2024-01-{d:02d},{d},{2 * d},\n" for d in range(1, 6))
    r = run_validate(write_csv("date,a,b,\n" + rows), layout="wide", id_cols=[], target_col="")
    assert r.report.wide_columns == ["a", "b"] and r.report.n_series == 2 and r.report.rows_in == 10
    assert r.report.undeclared_columns == ["column_4"]


def test_a_bad_value_of_a_wide_file_is_named_by_its_column_and_date(write_csv):
    """Regression: a wide file's text value was quarantined as "y 'abc' is not a number" (y: the melted value, a
    name the file does not have; the row number counts melted rows, so no line either): it names the series'
    column and the date now."""
    from data_helpers import run_validate

    r = run_validate(write_csv("date,north,south\n2024-01-01,1,2\n2024-01-02,abc,3\n"), layout="wide", id_cols=[],
                     target_col="")
    assert r.quarantined["reason"].to_list() == ["north (on 2024-01-02) 'abc' is not a number"]


def test_a_blank_line_of_a_wide_file_is_skipped_once(write_csv):
    """Regression: a wide file's empty line (or ',,', as Excel writes an empty row) was melted into one row per
    series column, each with no time, quarantined as time_missing (2 blank lines of a 2-series file: 4 quarantined
    rows, over the 5% threshold of a 28-day file, and the run failed); a long file's blank line is skipped and
    counted once. It is now so in a wide file too: blank_lines 2, nothing quarantined."""
    from data_helpers import run_validate

    rows = [f"2024-01-{d:02d},{d},{2 * d}\n" for d in range(1, 29)]
    text = "date,north,south\n" + "".join([*rows[:11], "\n", *rows[11:22], ",,\n", *rows[22:], "\n"])
    r = run_validate(write_csv(text), layout="wide", id_cols=[], target_col="")
    assert r.report.blank_lines == 3 and r.report.rows_quarantined == 0
    assert r.report.rows_in == 56 and r.report.rows_valid == 56 and r.report.n_series == 2
    # a line with a time and no value is no blank line: its series have no value that day
    r = run_validate(write_csv("date,north,south\n2024-01-01,1,2\n2024-01-02,,\n", name="t.csv"), layout="wide",
                     id_cols=[], target_col="")
    assert r.report.blank_lines == 0 and r.report.rows_in == 4 and r.report.rows_quarantined == 0


def test_a_quarantined_row_of_a_wide_file_names_its_line(write_csv):
    """Regression: a long file's quarantined row is shown as 'source_row N (line N + 2 of FILE)', but a wide file's
    rows were numbered column after column (the 2nd series' row of 20 February in a 28-line file was source_row 47)
    and shown without a line, so a row without a date ('time column is empty') could not be found in the file. A
    single wide file's rows are numbered line by line (source_row = data row x series columns + the column's
    position), and the example names the line."""
    from data_helpers import run_validate

    rows = [f"2024-02-{d:02d},{d},{2 * d}\n" for d in range(1, 29)]
    rows[19] = "2024-02-20,20,x\n"  # line 21
    rows[8] = ",9,18\n"  # line 10: no date
    r = run_validate(write_csv("date,north,south\n" + "".join(rows), name="wide.csv"), layout="wide", id_cols=[],
                     target_col="")
    assert r.report.rows_in == 56 and r.report.rows_quarantined == 3
    q = {(row["check"], row["unique_id"]): row["source_row"] for row in r.quarantined.iter_rows(named=True)}
    assert q == {("time_missing", "north"): 16, ("time_missing", "south"): 17, ("y_not_number", "south"): 39}
    ex = r.report.check_examples
    assert ex["time_missing"].startswith("source_row 16 (line 10 of ") and "wide.csv): " in ex["time_missing"]
    assert ex["y_not_number"].startswith("source_row 39 (line 21 of ")


def test_a_wide_file_naming_a_series_twice_is_told_which_columns(write_csv):
    """Regression: a wide file whose header names a series twice ('date,north,south,north') made a third series
    'north_duplicated_0' (polars' name for the second column), forecast and published under a name the file does not
    have; a long file's declared column written twice is an error naming its columns. So is a wide file's series."""
    from data_helpers import run_validate

    with pytest.raises(DataValidationError, match=r"names a series more than once \('north' is column 2 and 4\)"):
        run_validate(write_csv("date,north,south,north\n2024-01-01,1,2,3\n2024-01-02,2,3,4\n"), layout="wide",
                     id_cols=[], target_col="")


def test_dates_written_as_midnight_timestamps_keep_their_date_in_a_declared_zone(write_csv, tmp_path):
    """Regression: daily data whose dates were serialized as timestamps at midnight UTC ('2024-01-01T00:00:00.000Z',
    as JavaScript's toISOString or a DATE exported as a TIMESTAMP writes them; a pandas tz-aware date index in
    Parquet) read with --tz America/New_York became 31 December, 1 January, ...: every day one early, silently
    (midnight UTC is 19:00 the evening before in New York). A column whose every time with an offset is at midnight
    of that offset holds dates: they are read as written. A column with other times still gives each instant's
    date in the zone."""
    rows = "".join(f"2024-01-{d:02d}T00:00:00.000Z,a,{d}\n" for d in range(1, 4))
    got = ingest(make_source(write_csv("ts,id,val\n" + rows), time_col="ts", tz="America/New_York"), None)
    assert got.frame.select("ds").collect()["ds"].to_list() == [datetime(2024, 1, d) for d in range(1, 4)]
    p = tmp_path / "utc.parquet"
    pl.DataFrame({"ts": pl.datetime_range(datetime(2024, 1, 1), datetime(2024, 1, 3), "1d", eager=True,
                                          time_zone="UTC"), "id": ["a"] * 3, "val": [1.0, 2.0, 3.0]}).write_parquet(p)
    got = ingest(make_source(p, time_col="ts", tz="America/New_York"), None)
    assert got.frame.select("ds").collect()["ds"].to_list() == [datetime(2024, 1, d) for d in range(1, 4)]
    rows = "2024-01-01T00:00:00Z,a,1\n2024-01-02T03:00:00Z,a,2\n"  # an instant at 03:00 UTC: 22:00 the day before
    got = ingest(make_source(write_csv("ts,id,val\n" + rows, name="b.csv"), time_col="ts", tz="America/New_York"), None)
    assert got.frame.select("ds").collect()["ds"].to_list() == [datetime(2023, 12, 31), datetime(2024, 1, 1)]


@pytest.mark.parametrize("later", ["2024-01-20T13:00:00Z", "2024-01-07T13:00:00+01:00", "2024-01-20 13:00:00+01"])
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_dates_written_as_midnight_timestamps_are_decided_from_the_rows_by_as_of(write_csv, tmp_path, later, kind):
    """Regression (a leak after as_of): whether a column's times with an offset are dates written as timestamps
    (each at midnight of its offset) was decided from all its rows, so a time at 13:00 written after as_of turned
    a daily backfill's '2024-01-01T00:00:00Z'.. into instants, each a day early in America/New_York, where its run
    had read the dates as written. The rows that may be dated by as_of decide (a Parquet timestamp column too);
    without as_of, all rows do, as before."""
    days = [datetime(2024, 1, d, tzinfo=UTC) for d in range(1, 6)]
    stamp = datetime.fromisoformat(later)
    if kind == "parquet":
        paths = []
        for name, times in (("history", days), ("later", [*days, stamp])):
            p = tmp_path / f"{name}.parquet"
            pl.DataFrame({"ts": pl.Series(times, dtype=pl.Datetime("us", "UTC")), "id": ["a"] * len(times),
                          "val": [float(i) for i in range(len(times))]}).write_parquet(p)
            paths.append(p)
    else:
        rows = "".join(f"{d:%Y-%m-%dT%H:%M:%S.000Z},a,{i}\n" for i, d in enumerate(days))
        paths = [write_csv("ts,id,val\n" + rows, name="history.csv"),
                 write_csv("ts,id,val\n" + rows + f"{later},a,5\n", name="later.csv")]

    def read(path, as_of):
        got = ingest(make_source(path, time_col="ts", tz="America/New_York", freq="1d"), as_of)
        return got.frame.select("ds").collect()["ds"].to_list()

    as_of = datetime(2024, 1, 5, 12, tzinfo=UTC)
    assert read(paths[0], as_of) == [datetime(2024, 1, d) for d in range(1, 6)]  # the run at as_of
    assert read(paths[1], as_of) == [datetime(2024, 1, d) for d in range(1, 6)]  # its backfill, a later row beside
    assert read(paths[1], None)[:2] == [datetime(2023, 12, 31), datetime(2024, 1, 1)]  # all rows: instants


def test_months_written_by_name_are_read_without_a_time_format(write_csv):
    """Regression: a monthly table whose period is written by name ('Jan 2024', as spreadsheets and statistics
    tables label months) had every row quarantined until --time-format '%b %Y' was given, and a column mixing
    'Sept 2024', 'October 2024' and '2024-Nov' no format read. English month names and abbreviations with a
    four-digit year are the month's first day; a name that is no month stays unparsable."""
    rows = ["Jan 2024", "February 2024", "Mar-2024", "Sept 2024", "Dec. 2024", "2025-Jan", "2025 february", "Foo 2024"]
    p = write_csv("m,id,val\n" + "".join(f"{t},a,{i}\n" for i, t in enumerate(rows)))
    got = ingest(make_source(p, time_col="m", freq="1mo"), None).frame.select("ds").collect()["ds"].to_list()
    assert got == [datetime(2024, 1, 1), datetime(2024, 2, 1), datetime(2024, 3, 1), datetime(2024, 9, 1),
                   datetime(2024, 12, 1), datetime(2025, 1, 1), datetime(2025, 2, 1), None]


def test_a_header_whose_first_cell_is_a_hash_is_the_header_not_a_comment(write_csv):
    """A header naming its row-number column '#' ('#,date,id,val', as some exports write it) is the header: only a
    '#' line with fewer fields than the line after it is a comment before the header."""
    p = write_csv("#,date,id,val\n1,2020-01-01,a,1\n2,2020-01-02,a,2\n")
    got = ingest(make_source(p), None)
    assert got.preamble_lines == 0 and got.frame.select("y").collect()["y"].to_list() == [1.0, 2.0]
    p = write_csv("# exported at 06:00, by cron\ndate,id,val\n2020-01-01,a,1\n", name="c.csv")
    assert ingest(make_source(p), None).preamble_lines == 1


def test_dictionary_encoded_text_columns_of_a_parquet_file_are_text(tmp_path):
    """Regression: a Parquet file whose date column is stored as a category (pandas' 'category' dtype, Arrow's
    dictionary<string>) failed with "time column 'day' has type Categorical, which cannot be parsed as a time".
    Such columns are read as the text they hold, also when quarantined rows are read back."""
    p = tmp_path / "cat.parquet"
    days = ["2024-01-01", "2024-01-02", "oops"]
    pl.DataFrame({"day": pl.Series(days, dtype=pl.Categorical), "id": pl.Series(["a"] * 3, dtype=pl.Categorical),
                  "val": pl.Series(["1", "2", "3"], dtype=pl.Categorical)}).write_parquet(p)
    r = run_validate(p, time_col="day")
    assert r.valid.select("unique_id", "ds", "y").rows() == [("a", datetime(2024, 1, 1), 1.0),
                                                              ("a", datetime(2024, 1, 2), 2.0)]
    assert r.quarantined["check"].to_list() == ["time_unparsable"]


@pytest.mark.parametrize(("encoding", "iconv"), [("utf-16", "UTF-16"), ("utf-16-le", "UTF-16LE"),
                                                 ("utf-16-be", "UTF-16BE")])
def test_a_utf16_file_is_named_as_such(write_csv, encoding, iconv):
    """Regression: Excel's 'Unicode Text (*.txt)' export (UTF-16, tab-separated) was told "is not a text CSV file
    (binary content, NUL bytes in the first bytes)"; it is named UTF-16, with how to make it UTF-8: the whole
    command, file and output named (it said `iconv -f UTF-16 -t UTF-8`, which waits on its input when run as
    written), in the byte order of a file without a byte order mark (iconv reads such UTF-16 as big-endian)."""
    p = write_csv("date\tid\tval\n2024-01-01\ta\t1\n".encode(encoding), name="unicode.txt")
    with pytest.raises(DataValidationError, match=r"unicode.txt is UTF-16 text .*re-export it as 'CSV UTF-8") as err:
        ingest(make_source(p), None)
    target = str(p).removesuffix(".txt") + ".utf8.txt"
    assert str(err.value).endswith(f"or convert it: iconv '{p}' -f {iconv} -t UTF-8 > '{target}'")


def test_quarters_written_quarter_first_are_read(write_csv):
    """Regression: 'Q1 2024' and 'Q1-2024' (a spreadsheet's quarter labels; '2024-Q1' was read) were quarantined
    as not ISO-8601, with no hint. They are the quarter's first day."""
    p = write_csv("q,id,val\nQ1 2024,a,1\nq2-2024,a,2\nQ3/2024,a,3\n2024 Q4,a,4\nQ5 2024,a,5\n")
    got = ingest(make_source(p, time_col="q", freq="1q"), None).frame.select("ds").collect()["ds"].to_list()
    assert got == [datetime(2024, 1, 1), datetime(2024, 4, 1), datetime(2024, 7, 1), datetime(2024, 10, 1), None]


def test_quarters_as_finance_writes_them_are_read(write_csv):
    """Regression (new-user trial): '2024/Q2' (beside '2024-Q2' and '2024 Q2', read), '1Q2025' and the two-digit years
    of analysts' labels ('2Q25', 'Q3-25', 'Q4 99') were quarantined as not ISO-8601, with no hint. A two-digit year
    is 1970..2069, as strptime's %y; 'Q5-25' and '5Q25' are no quarter."""
    p = write_csv("q,id,val\n2024/Q2,a,1\n1Q2025,a,2\n2Q25,a,3\nQ3-25,a,4\nQ4 99,a,5\nQ5-25,a,6\n5Q25,a,7\n")
    got = ingest(make_source(p, time_col="q", freq="1q"), None).frame.select("ds").collect()["ds"].to_list()
    assert got == [datetime(2024, 4, 1), datetime(2025, 1, 1), datetime(2025, 4, 1), datetime(2025, 7, 1),
                   datetime(1999, 10, 1), None, None]


def test_hour_24_is_the_end_of_its_day(write_csv):
    """Regression (new-user trial): hour-ending exports (electricity markets, meters) write the last hour of a day as
    '2024-01-01 24:00', ISO 8601's end of that day; every such row was quarantined as not ISO-8601, an hour a day
    lost without failing the run (3 of 72 rows, under the 5% threshold). It is the next day's 00:00, with an offset
    too; '25:00' stays unparsable."""
    p = write_csv("date,id,val\n2024-01-01 23:00,a,1\n2024-01-01 24:00,a,2\n2024-01-02 01:00,a,3\n2024-01-01 25:00,a,6\n")
    r = run_validate(p, freq="1h")
    assert dict(zip(r.valid["y"].to_list(), r.valid["ds"].to_list(), strict=True)) == {
        1.0: datetime(2024, 1, 1, 23), 2.0: datetime(2024, 1, 2, 0), 3.0: datetime(2024, 1, 2, 1)}
    assert r.quarantined["reason"].to_list() == ["time '2024-01-01 25:00' does not parse as ISO-8601"]
    p = write_csv("date,id,val\n2024-01-01T24:00+01:00,b,4\n2024-01-31 24:00:00Z,b,5\n", name="aware.csv")
    r = run_validate(p, freq="1h")
    assert dict(zip(r.valid["y"].to_list(), r.valid["ds"].to_list(), strict=True)) == {
        4.0: datetime(2024, 1, 1, 23), 5.0: datetime(2024, 2, 1, 0)}


def test_a_file_whose_name_says_the_other_format_is_told_which_it_is(tmp_path):
    """Regression (new-user trial): a CSV saved as 'data.parquet' failed with "parquet: File out of specification:
    The file must end with PAR1 or PARE", and a Parquet file saved as 'data.csv' with "is not a text CSV file (binary
    content, NUL bytes in the first bytes)": each is named for what it is, and the declared format reads it."""
    text = tmp_path / "data.parquet"
    text.write_text("date,id,val\n2020-01-01,a,1\n")
    with pytest.raises(DataValidationError, match=re.escape(
            f"{text} is text, not a Parquet file (its first line: 'date,id,val'): name it .csv, or declare the "
            "source's format = 'csv'")):
        ingest(make_source(text), None)
    assert ingest(make_source(text, format="csv"), None).frame.collect()["y"].to_list() == [1.0]
    parquet = tmp_path / "data.csv"
    pl.DataFrame({"date": ["2020-01-01"], "id": ["a"], "val": [1.0]}).write_parquet(parquet)
    with pytest.raises(DataValidationError, match=re.escape(
            f"{parquet} is a Parquet file (it starts with PAR1), not a CSV file: name it .parquet, or declare the "
            "source's format = 'parquet'")):
        ingest(make_source(parquet), None)
    assert ingest(make_source(parquet, format="parquet"), None).frame.collect()["y"].to_list() == [1.0]


@pytest.mark.parametrize(("vals", "y"), [
    # Excel's '#.##0' in a ','-decimal locale: '1.000' ends in 0, so the column's '.' groups thousands
    (["1.000", "1.037", "1.074"], [1000.0, 1037.0, 1074.0]),
    # whole numbers below 1000 written plainly beside grouped ones
    (["987", "1.234", "2.001"], [987.0, 1234.0, 2001.0]),
    # two groups: only thousands
    (["1.234.567", "2.345"], [1234567.0, 2345.0]),
    # a decimal point in the column ('7.5'): '.' is the decimal mark
    (["7.5", "1.234", "1.000"], [7.5, 1.234, 1.0]),
    # nothing settles it (three decimals each, none ending in 0): left as written
    (["1.234", "2.345", "3.456"], [1.234, 2.345, 3.456]),
])
def test_thousands_points_of_a_semicolon_file_without_decimal_commas(write_csv, vals, y):
    """Regression: a ';' file (','-decimal locale) whose numbers are whole, exported as '#.##0' ('1.037'), was
    read a thousandth of its value (1.037), silently: no decimal comma in the column, so '.' was taken as the
    decimal point."""
    rows = "".join(f"2020-01-0{i + 1};a;{v}\n" for i, v in enumerate(vals))
    p = write_csv("date;id;val\n" + rows)
    assert ingest(make_source(p), None).frame.select("y").collect()["y"].to_list() == y


def test_an_id_typed_with_a_combining_accent_is_the_same_series(write_csv):
    """Regression: 'Café' written with a composed é (NFC) and with 'e' + a combining accent (NFD: macOS, some
    exports) looked the same and were two series, each with half its dates (the other half imputed)."""
    import unicodedata

    nfc, nfd = unicodedata.normalize("NFC", "Café"), unicodedata.normalize("NFD", "Café")
    assert nfc != nfd
    p = write_csv(f"date,id,val\n2020-01-01,{nfc},1\n2020-01-02,{nfd},2\n2020-01-03, {nfd} ,3\n")
    got = ingest(make_source(p), None).frame.select("unique_id").collect()["unique_id"].to_list()
    assert got == [nfc, nfc, nfc]


_NFD_CAFE = "Cafe\u0301"  # 'Café' as an 'e' plus a combining accent (NFD)


@pytest.mark.parametrize("ids", [
    ["s1", "s2", "s1", None, ""],  # ASCII alone (and a null, an empty id)
    ["Caf\u00e9", _NFD_CAFE, "s1", _NFD_CAFE, None],  # one id typed both ways, beside an ASCII one
    ["Caf\u00e9", "M\u00fcnchen", "Caf\u00e9"],  # already NFC
    ["\u1100\u1161", "\u212b", "\u0301a", "e\u0301\u0323", "\ufb01"],  # jamo, the angstrom sign, a lone accent, two
    [None, None],  # accents out of order, a ligature (NFKC's, not NFC's: kept)
    [],
])
@pytest.mark.parametrize("engine", ["in-memory", "streaming"])
def test_ids_normalised_per_distinct_value_read_as_str_normalize_does(ids, engine):
    """`value_text.nfc` (NFC of each distinct id of a batch, none where all are ASCII) gives `str.normalize("NFC")`'s
    values, row for row, also over a frame of several chunks."""
    frame = pl.concat([pl.DataFrame({"id": ids}, schema={"id": pl.Utf8})] * 3, rechunk=False).lazy()
    got = frame.select(nfc(pl.col("id"))).collect(engine=engine)["id"]
    assert got.to_list() == frame.select(pl.col("id").str.normalize("NFC")).collect()["id"].to_list()


@pytest.mark.parametrize("ids", [["s1", "s2", "s1"], ["Caf\u00e9", "s1"], [None, "s1"]])
def test_ids_that_nfc_leaves_as_they_are_are_not_rewritten(ids):
    """A batch of ASCII ids, or of ids already in NFC, is returned as it came (`_nfc_batch`: no per-row normalising of
    4.3M ids that repeat over thousands of rows)."""
    batch = pl.Series("id", ids, dtype=pl.Utf8)
    assert _nfc_batch(batch) is batch
    assert _nfc_batch(pl.Series("id", [_NFD_CAFE, "s1"])).to_list() == ["Caf\u00e9", "s1"]


# every number shape a target, covariate or static is read in, blanks, words and what is no number
_NUMBER_TEXTS = ["12.5", "-3", "1e3", ".5", "+7", "nan", "inf", " 12.5 ", "\t4", "\u22125", "\u2212 2.5", "- 5", "+ .5",
                 "1'234.5", "1\u2019234", "12 345.25", "1\u00a0234\u202f567", "1,234.5", "3,5", "1.234,5", "5-", "abc",
                 " TRUE ", "yes", "", "  ", "NA", None]


# (val, promo) columns of a ',' or ';' file, as read (quotes gone): the formats the tests above and below read
_SEPARATOR_CASES = [
    [("1,234.56", "1"), ("1,234", "1,234"), ("-1,234,567", "2"), ("7.5", "3"), ("12,34.5", "4")],
    [("3,5", "1"), ("1,234", "2"), ("1,234.5", "3")],
    [("1,234", "3.50"), ("12,345", "3.75"), ("987", "4.00")],
    [("1,234", "3"), ("12,340", "4"), ("987", "5")],
    [("1,234", "3"), ("12,345", "4"), ("987", "5")],
    [("1,234", "0,5"), ("12,340", "4"), ("987", "5")],
    [("1,234", "3"), ("0,250", "4"), ("12,340", "5"), ("987", "6")],
    [("2,5", "1"), ("3,75", "2"), ("2.000", "3"), ("1.234", None), ("12", ""), ("1.234,5", "NA")],
    [("2,5", "1"), ("7.5", "2"), ("2.000", "3"), ("1.234", "4"), ("0.25", "5")],
    [("2,5", "1"), ("1'234.5", "2"), ("2.000", "3")],
    [("2.5", "1"), ("2.000", "2"), ("1.234", "3")],
    [("1.234", "1.234"), ("2.345", "12.500"), ("3.456", "3.456")],
    [(v, "1,5E+03") for v in _NUMBER_TEXTS],
    [("1.000", "1.037"), ("1.037", "987"), ("1.074", "2.001")],
    [("1.234.567", "1,5"), ("2.345", "-0,25"), ("7.5", "1.234,5")],
    [("2,5", "1.234"), ("7.5", "12.500"), ("-2.000", "3.456")],
]


@pytest.mark.parametrize("case", _SEPARATOR_CASES)
@pytest.mark.parametrize("by_as_of", [False, True])
@pytest.mark.parametrize("reader", [_read_comma_thousands, _read_comma_decimals])
def test_separator_checks_on_distinct_values_decide_as_over_every_row(case, by_as_of, reader, monkeypatch):
    """A ',' or ';' file's separator checks (`_read_comma_thousands`, `_read_comma_decimals`) run once per
    distinct value of a number column where its values repeat (`_columns_distinct`): the columns read, the notes
    said and the decimal points shown are those of the checks over every row (as before), for each format the
    reading tests cover, with the rows by as_of deciding too (here the first half)."""
    rows = case * 4  # (values that repeat: the checks run on the distinct values)
    lf = pl.LazyFrame({"val": [r[0] for r in rows], "promo": [r[1] for r in rows]}, schema={"val": pl.Utf8,
                                                                                          "promo": pl.Utf8})
    decide = lf.head(len(rows) // 2) if by_as_of else None
    assert _columns_distinct(lf, ["val", "promo"]) is not None

    def read() -> tuple[pl.DataFrame, dict, DecimalPoints]:
        notes: dict = {}
        points = DecimalPoints()
        got = reader(lf, ["val", "promo"], "f.csv", notes, ["promo"], decide, points).collect()
        return got, notes, points

    distinct, distinct_notes, distinct_points = read()
    monkeypatch.setattr("flowcast.data.decimals._columns_distinct", lambda lf, cols: None)  # every row, as before
    per_row, per_row_notes, per_row_points = read()
    assert_frame_equal(distinct, per_row)
    assert (distinct_notes, distinct_points) == (per_row_notes, per_row_points)


@pytest.mark.parametrize("engine", ["in-memory", "streaming"])
def test_number_text_per_batch_reads_as_the_regexes_over_every_row(engine):
    """`number_text` (a float cast's values kept as written, the others rewritten once per distinct value) gives
    `_number_text_rows`' values, row for row, over a frame of several chunks, each value between plain numbers."""
    values = [v for t in _NUMBER_TEXTS for v in ("1.5", t, "2")] + _NUMBER_TEXTS
    frame = pl.concat([pl.DataFrame({"v": values}, schema={"v": pl.Utf8})] * 3, rechunk=False).lazy()
    got = frame.select(number_text(pl.col("v"))).collect(engine=engine)["v"]
    assert got.to_list() == frame.select(_number_text_rows(pl.col("v"))).collect()["v"].to_list()
    assert got.to_list()[1:12:3] == ["12.5", "-3", "1e3", ".5"]  # (some text rewritten: " 12.5 " is '12.5')
    assert got.to_list()[22:32:3] == ["12.5", "4", "-5", "-2.5"]
    # a target's floats, read per batch (`_number_batch`), are those of the rewritten text
    floats = frame.select(_number(pl.col("v"), pl.Utf8, "v", "f.csv")).collect(engine=engine)["v"]
    assert_series_equal(floats, frame.select(_number_text_rows(pl.col("v")).cast(pl.Float64, strict=False))
                        .collect()["v"])
    assert floats.to_list()[22:32:3] == [12.5, 4.0, -5.0, -2.5] and floats.null_count() == 6 * 11  # (each text twice a chunk)


def test_a_batch_of_plain_numbers_is_not_rewritten():
    """A batch whose every value a float cast reads as written is returned as it came (`_number_text_batch`: no
    regex over its 1,000,000 rows); one odd value is rewritten on its own row alone."""
    batch = pl.Series("v", ["1.5", "-2", None, "3e2", "nan"], dtype=pl.Utf8)
    assert _number_text_batch(batch) is batch
    odd = pl.Series("v", ["1.5", " 1'234 ", "2", " 1'234 "])
    assert _number_text_batch(odd).to_list() == ["1.5", "1234", "2", "1234"]
    assert odd.to_list() == ["1.5", " 1'234 ", "2", " 1'234 "]  # (the batch itself left as it was)


def test_a_sign_set_apart_is_read_and_a_trailing_minus_is_named(write_csv):
    """Regression: '- 5' and '− 5' (a sign set apart from its digits, as typeset reports write it) were quarantined as
    'not a number', and a static '−5' was a category; '5-' (SAP writes negatives with the minus last) was
    quarantined without saying why. The first are -5; the last is quarantined naming the fix."""
    p = write_csv("date,id,val,size\n2020-01-01,a,- 5,\u2212 5\n2020-01-02,a,\u2212 2.5,\n2020-01-03,a,+ 3,\n"
                  "2020-01-04,a,5-,\n")
    r = run_validate(p, static_cols=["size"])
    assert r.valid["y"].to_list() == [-5.0, -2.5, 3.0]
    said = ("val '5-' is not a number (a minus sign after the number, as SAP exports write negatives? export them "
            "with a leading minus: '-5')")
    assert r.quarantined["reason"].to_list() == [said]


@pytest.mark.parametrize("suffix", [".feather", ".arrow", ".ipc"])
def test_arrow_ipc_and_feather_files_are_read(tmp_path, suffix):
    """Regression: an Arrow IPC / Feather export (pandas' to_feather, polars' write_ipc) was read as CSV and
    failed as text that is not UTF-8; it is read as Arrow, its zoned time column's zone the source's."""
    p = tmp_path / f"x{suffix}"
    ts = pl.Series([datetime(2024, 3, 1, h) for h in range(3)]).dt.replace_time_zone("Europe/Berlin")
    pl.DataFrame({"date": ts, "id": ["a"] * 3, "val": [1.0, 2.0, 3.0]}).write_ipc(p)
    src = make_source(p, freq="1h", tz="Europe/Berlin")
    got = ingest(src, None).frame.select("ds", "y").collect()
    assert got["ds"].to_list() == [datetime(2024, 2, 29, 23) + timedelta(hours=h) for h in range(3)]
    assert got["y"].to_list() == [1.0, 2.0, 3.0]


def test_a_glob_of_files_in_different_zones_converts_each_file(tmp_path):
    """Regression: a glob of Parquet/Feather exports written in different zones (one per site) failed to
    concatenate ('type Datetime(Europe/Berlin) incompatible with Datetime(America/New_York)'); each file's instants
    are converted from its own zone."""
    for name, zone, write in [("a.parquet", "Europe/Berlin", pl.DataFrame.write_parquet),
                              ("b.parquet", "America/New_York", pl.DataFrame.write_parquet)]:
        ts = pl.Series([datetime(2024, 3, 1, h) for h in range(2)]).dt.replace_time_zone(zone)
        write(pl.DataFrame({"date": ts, "id": [name[0]] * 2, "val": [1.0, 2.0]}), tmp_path / name)
    src = make_source(tmp_path / "*.parquet", freq="1h", tz="Europe/Berlin")
    got = ingest(src, None).frame.select("unique_id", "ds").sort("unique_id", "ds").collect()
    assert got.filter(pl.col("unique_id") == "a")["ds"].to_list() == [datetime(2024, 2, 29, 23), datetime(2024, 3, 1)]
    assert got.filter(pl.col("unique_id") == "b")["ds"].to_list() == [datetime(2024, 3, 1, 5), datetime(2024, 3, 1, 6)]


@pytest.mark.parametrize("suffix", [".parquet", ".feather"])
def test_a_declared_tz_that_disagrees_with_the_files_zone_names_both(tmp_path, suffix):
    """Regression: --tz America/New_York on a file whose time column carries Europe/Berlin silently won: the
    daily calendar and hour-of-day were New York's for Berlin's data. It is an error naming both zones."""
    p = tmp_path / f"x{suffix}"
    ts = pl.Series([datetime(2024, 3, 1, h) for h in range(3)]).dt.replace_time_zone("Europe/Berlin")
    frame = pl.DataFrame({"date": ts, "id": ["a"] * 3, "val": [1.0, 2.0, 3.0]})
    frame.write_parquet(p) if suffix == ".parquet" else frame.write_ipc(p)
    with pytest.raises(DataValidationError, match=r"'America/New_York'.*'Europe/Berlin'"):
        ingest(make_source(p, freq="1h", tz="America/New_York"), None)
    assert ingest(make_source(p, freq="1h", tz="Europe/Berlin"), None).frame.collect().height == 3


@pytest.mark.parametrize("zone", ["Europe/Berlin", "UTC"])
def test_a_glob_mixing_zoned_and_zone_less_timestamps_names_the_files(tmp_path, zone):
    """Regression: a glob where one export's timestamps carry a zone and another's do not failed with polars'
    'failed to determine supertype of datetime[μs, Europe/Berlin] and datetime[μs]', naming no file."""
    ts = pl.Series([datetime(2024, 3, 1, h) for h in range(2)])
    pl.DataFrame({"date": ts.dt.replace_time_zone(zone), "id": "a", "val": 1.0}).write_parquet(tmp_path / "a.parquet")
    pl.DataFrame({"date": ts, "id": "b", "val": 1.0}).write_ipc(tmp_path / "b.feather")
    src = make_source(tmp_path / "*.*", freq="1h")
    with pytest.raises(DataValidationError, match=r"no time zone in 1 file \(.*b\.feather\) while .*a\.parquet"):
        ingest(src, None)


@pytest.mark.parametrize(("vals", "y"), [
    # decimal commas settle the column: '.' groups its thousands ('2.000' was read as 2.0, '1.234' as 1.234)
    (['"2,5"', '"3,75"', '"2.000"', '"1.234"', "12", '"1.234,5"'], [2.5, 3.75, 2000.0, 1234.0, 12.0, 1234.5]),
    # unquoted '2.000' beside them likewise; '-0,5' and '0,250' are decimal commas
    (['"2,5"', "2.000", '"-0,5"', '"0,250"'], [2.5, 2000.0, -0.5, 0.25]),
    # decimal commas and a decimal point ('7.5') in one column: '2.000' is 2000 or 2.0, so it is not read
    (['"2,5"', "7.5", '"2.000"', '"1.234"', "0.25"], [None, 7.5, None, None, 0.25]),
    # a Swiss '1'234.5' shows a decimal point as well: unsettled
    (['"2,5"', "1'234.5", '"2.000"'], [None, 1234.5, None]),
    # no decimal comma: '.' is the decimal point, as before
    (["2.5", "2.000", "1.234"], [2.5, 2.0, 1.234]),
])
def test_a_comma_files_decimal_comma_column_reads_its_points_as_thousands(write_csv, vals, y):
    """Regression: in a ',' file whose target is written with quoted decimal commas ("2,5", "3,75": a ','-decimal
    locale's export with ',' as the separator), a "2.000" (2000, '.' grouping thousands) was read as 2.0 and
    "1.234" as 1.234, silently, while the decimal commas beside them were quarantined. The column's decimal
    commas settle it: ',' is its decimal mark, '.' its thousands separator."""
    rows = "".join(f"2020-01-{i + 1:02d},a,{v}\n" for i, v in enumerate(vals))
    assert ingest(make_source(write_csv("date,id,val\n" + rows)), None).frame.select("y").collect()["y"].to_list() == y


def test_an_unsettled_point_is_quarantined_naming_it_and_counted(write_csv):
    """A '2.000' in a column of decimal commas and decimal points alike (a ',' or a ';' file) is quarantined, the
    reason naming the value as written and both readings; the quarantine file keeps it as written, and the
    counts reconcile."""
    for sep in (",", ";"):
        body = [("2,5" if sep == ";" else '"2,5"'), "7.5", "2.000", "-1.234"]
        p = write_csv(f"date{sep}id{sep}val\n" + "".join(f"2020-01-0{i + 1}{sep}a{sep}{v}\n" for i, v in enumerate(body)),
                      name=f"f{sep == ';'}.csv")
        r = run_validate(p)
        got = r.quarantined.filter(pl.col("check") == "y_not_number").select("val", "reason").rows()
        assert ("2.000", ("val '2.000' is not a number (2000 with '.' grouping thousands, or 2.0 with '.' as the decimal "
                "point? its column has decimal commas and decimal points: declare the source's decimal = \",\" or "
                "\".\" (--decimal), or export every number alike)")) in got
        assert any(v == "-1.234" and "(-1234 with '.' grouping thousands, or -1.234 with" in why for v, why in got)
        assert r.report.rows_in == r.report.rows_valid + r.report.rows_quarantined == 4
        assert 7.5 in r.valid["y"].to_list()


@pytest.mark.parametrize(("vals", "y", "read_as"), [
    (["1.234", "2.345", "3.456"], [1.234, 2.345, 3.456], "read as 1.234 ('.' as the decimal point)"),
    (["1.234", "12.500", "3.456"], [1234.0, 12500.0, 3456.0], "read as 1234 ('.' grouping thousands"),
])
def test_a_semicolon_column_of_one_point_groups_alone_is_said(write_csv, vals, y, read_as):
    """Regression: a ';' file's column whose every value is like '1.234' / '12.500' (one '.', three digits after
    it: 1234 with '.' grouping thousands, or 1.234?) was read one way without a word. The run's report says so
    once, naming the column, an example and how it was read, and the setting that declares it otherwise; a
    declared decimal mark reads it that way and silences the note."""
    p = write_csv("date;id;val\n" + "".join(f"2020-01-0{i + 1};a;{v}\n" for i, v in enumerate(vals)))
    r = run_validate(p)
    assert r.valid["y"].to_list() == y
    (note,) = r.report.number_notes
    assert note.startswith(f"column 'val' of {p}: every number is written like '1.234' (one '.' and three digits "
                           "after it), which is 1234 with '.' grouping thousands or 1.234 with '.' as the decimal point")
    assert read_as in note and "decimal = " in note and "--decimal" in note
    assert "numbers: column 'val'" in r.report.to_markdown()
    assert run_validate(p, decimal=",").valid["y"].to_list() == [float(v.replace(".", "")) for v in vals]
    declared = run_validate(p, decimal=".")
    assert declared.valid["y"].to_list() == [float(v) for v in vals] and declared.report.number_notes == []
    # a column that shows its decimal mark ('7.5') or a two-group '1.234.567' is not said
    for other in ("7.5", "1.234.567"):
        q = write_csv("date;id;val\n" + "".join(f"2020-01-0{i + 1};a;{v}\n" for i, v in enumerate([*vals, other])),
                      name="other.csv")
        assert run_validate(q).report.number_notes == []


@pytest.mark.parametrize(("text", "decimal", "y"), [
    ('"1.234,5";"2,5";2.000', ",", [1234.5, 2.5, 2000.0]),  # a ';' file, declared
    ('"1,234.5";"2,5";2.000', ".", [1234.5, None, 2.0]),  # '.' declared: ',' groups thousands, '2,5' is no number
])
def test_a_declared_decimal_mark_reads_every_number_column_so(write_csv, text, decimal, y):
    """`decimal` (--decimal) declares the decimal mark of the file's numbers, whatever the separator: ',' reads
    '1.234,5' as 1234.5 and '2.000' as 2000; '.' reads '1,234.5' as 1234.5 and '2.000' as 2.0."""
    for sep in (";", ","):
        vals = text.split(";")
        p = write_csv(f"date{sep}id{sep}val\n" + "".join(f"2020-01-0{i + 1}{sep}a{sep}{v}\n" for i, v in enumerate(vals)),
                      name=f"d{sep == ';'}.csv")
        got = ingest(make_source(p, decimal=decimal), None).frame.select("y").collect()["y"].to_list()
        assert got == y, sep


@pytest.mark.parametrize(("sep", "area", "read"), [(",", '"2,5"', "2.0"), (";", "2,5", "2000")])
def test_a_static_column_of_decimal_commas_and_points_is_said_not_marked(write_csv, sep, area, read):
    """A static is one value per series, with no row to quarantine: its '2.000' beside decimal commas and
    decimal points is read as before and the report says so, naming the column and the value (no mark of the
    target's unsettled values leaks into a static, which made it a category)."""
    rows = [f"2020-01-01{sep}a{sep}1{sep}{area}", f"2020-01-01{sep}b{sep}2{sep}7.5", f"2020-01-01{sep}c{sep}3{sep}2.000"]
    p = write_csv(f"date{sep}id{sep}val{sep}area\n" + "\n".join(rows) + "\n")
    r = run_validate(p, static_cols=["area"])
    assert r.report.rows_valid == 3 and "\u2063" not in "".join(r.valid["area"].to_list())
    (note,) = r.report.number_notes
    assert note.startswith(f"static column 'area' of {p} has decimal commas and decimal points") and read in note


def test_a_comma_files_column_of_one_point_groups_alone_is_said(write_csv):
    """A ',' file's column of '1.234'-like values alone (a ','-decimal locale's whole numbers exported with ','
    as the separator, or three-decimal prices) is read with '.' as the decimal point, as before, and said once:
    the column, an example, the reading and `decimal = ","` to read it as thousands."""
    p = write_csv("date,id,val,price\n2020-01-01,a,1.234,2.5\n2020-01-02,a,2.345,NA\n2020-01-03,a,,3\n")
    r = run_validate(p, past_cols=["price"])
    assert r.valid["y"].to_list() == [1.234, 2.345, None]
    (note,) = r.report.number_notes
    assert note.startswith(f"column 'val' of {p}: every number is written like '1.234'")
    assert "read as 1.234 ('.' as the decimal point)" in note and 'decimal = ","' in note
    assert run_validate(p, past_cols=["price"], decimal=",").valid["y"].to_list() == [1234.0, 2345.0, None]


@pytest.mark.parametrize("sep", [",", ";"])
@pytest.mark.parametrize(("other", "said"), [("7.5", False), ("12.340", True)])
@pytest.mark.parametrize("settling_first", [False, True])
def test_a_folder_whose_other_file_shows_the_decimal_point_says_nothing_of_one_files_points(tmp_path, sep, other,
                                                                                             said, settling_first):
    """Regression (nuB46): in a folder of CSV files each file was judged alone, so `column 'val' of
    many/part001.csv: every number is written like '56.244' ... which is 56244` was said although another file of
    the source shows '.' as its decimal point ('7.5'), which the '56.244' was read by. It is said where no file
    settles that ('12.340' beside it: no decimal point shown), whichever file comes first."""
    folder = tmp_path / "many"
    folder.mkdir()
    names = ["part002.csv", "part001.csv"] if settling_first else ["part001.csv", "part002.csv"]
    (folder / names[0]).write_text(f"date{sep}id{sep}val\n2020-01-01{sep}a{sep}56.244\n2020-01-02{sep}a{sep}1.234\n")
    (folder / names[1]).write_text(f"date{sep}id{sep}val\n2020-01-01{sep}b{sep}{other}\n2020-01-02{sep}b{sep}3.456\n")
    r = run_validate(folder / "*.csv")
    if said:
        assert any(n.startswith(f"column 'val' of {folder}") and "every number is written like" in n
                   for n in r.report.number_notes), r.report.number_notes
    else:
        assert r.report.number_notes == [], r.report.number_notes
        a = r.valid.filter(pl.col("unique_id") == "a")["y"].to_list()
        assert a == [56.244, 1.234]


@pytest.mark.parametrize("files", [2, 5])
def test_every_file_s_note_of_a_column_is_said_a_few_then_how_many_more(tmp_path, files):
    """cache47: the notes of a column were kept one per column (`DecimalPoints.say`: the first file's), so a folder's
    second file of '1.234'-like values read another way ('12.340' beside them: thousands) went unsaid. Every distinct
    note of a column is said now, the first 3 (file order), then `column 'val': and N more notes like these`."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1, files + 1):
        other = "12.340" if i == 2 else "3.456"  # the second file's '.' groups thousands (a trailing 0 settles it)
        (folder / f"part{i}.csv").write_text(f"date;id;val\n2020-01-01;s{i};1.234\n2020-01-02;s{i};{other}\n")
    notes = run_validate(folder / "*.csv").report.number_notes
    said = [f"column 'val' of {folder / f'part{i}.csv'}: every number is written like '1.234'"
            for i in range(1, min(files, 3) + 1)]
    assert [n[:len(s)] for n, s in zip(notes, said, strict=False)] == said, notes
    assert "read as 1234 ('.' grouping thousands" in notes[1] and "read as 1.234 ('.' as" in notes[0], notes
    more = [f"column 'val': and {files - 3} more notes like these (other files of the source)"] if files > 3 else []
    assert notes[len(said):] == more, notes


def test_a_declared_decimal_mark_changes_the_fingerprint_and_the_default_does_not(write_csv):
    """`decimal` reads the same bytes otherwise, so it is part of the source's identity; at its default (None) it is
    left out, so that adding the setting did not change every existing source's fingerprint."""
    p = write_csv("date;id;val\n2020-01-01;a;1.234\n")
    base = source_fingerprint(make_source(p))
    assert source_fingerprint(make_source(p, decimal=",")) != base != source_fingerprint(make_source(p, decimal="."))
    src = make_source(p)
    import hashlib

    from flowcast.data.remote import _file_digest

    # the default's fingerprint is the declaration without the field, as before it existed
    h = hashlib.sha256(src.model_dump_json(exclude={"time_label", "decimal"}).encode())
    h.update(str(p).encode())
    h.update(b"|" + _file_digest(str(p)).encode())
    assert base == h.hexdigest()[:16]


def test_a_parquet_time_column_of_unix_seconds_is_told_about_percent_s(tmp_path):
    """Regression: a Parquet time column of Unix seconds (Int64, as a database or a JavaScript exporter writes it)
    was told to declare a format 'e.g. %Y for years, %Y%m%d for dates', neither of which reads it; %s does."""
    p = tmp_path / "y.parquet"
    pl.DataFrame({"date": [1704067200, 1704153600], "id": ["a", "a"], "val": [1, 2]}).write_parquet(p)
    with pytest.raises(DataValidationError, match=r"holds integers \(Int64\).* %s for Unix epoch seconds") as err:
        ingest(make_source(p), None)
    # the option that declares it, for a --data file and a configured source (it said 'declare its time_format' alone)
    assert "declare its time_format (--time-format, or time_format in [sources.NAME]; e.g. %Y for years" in str(err.value)
    got = ingest(make_source(p, time_format="%s"), None).frame.select("ds", "y").collect()
    assert got.rows() == [(datetime(2024, 1, 1), 1.0), (datetime(2024, 1, 2), 2.0)]


@pytest.mark.parametrize(("title", "line", "header", "lines"), [
    ("Sales report Q1 2024\nGenerated 2024-05-01\n\n", 4, "id,date,val", "3 lines"),  # a report's title lines
    ("Export\n", 2, "id,date,val", "1 line"),  # (it said '1 line(s)')
    ("Weekly figures\n", 2, "id;date;val", "1 line"),  # a ';' file
])
def test_a_header_below_title_lines_is_named_with_the_lines_to_remove(write_csv, title, line, header, lines):
    """Regression: a report export with title lines above its header said only "declared column(s) 'id', 'date',
    'val' missing; the file has columns ['Sales report Q1 2024']", leaving the reader to find the header."""
    sep = header[2]
    p = write_csv(title + header + "\n" + sep.join(["a", "2020-01-01", "1"]) + "\n")
    with pytest.raises(DataValidationError) as err:
        ingest(make_source(p), None)
    assert (f"(the declared columns are the header of line {line}, {header!r}: remove the {lines} above "
            "it") in str(err.value)
    commented = write_csv("".join(f"# {t}\n" if t else "\n" for t in title.splitlines()) + header + "\n"
                          + sep.join(["a", "2020-01-01", "1"]) + "\n", name="commented.csv")
    assert ingest(make_source(commented), None).frame.select("y").collect().item() == 1.0  # as the error says


def test_missing_columns_name_no_header_below_when_there_is_none(write_csv):
    with pytest.raises(DataValidationError) as err:
        ingest(make_source(write_csv("Sales report\nstore,day,units\na,2020-01-01,1\n")), None)
    assert "missing; the file has columns ['Sales report']" in str(err.value) and "header of line" not in str(err.value)


@pytest.mark.parametrize("declared", [["type", "size"], []])  # [], as the --freq probe reads the files
def test_a_table_of_statics_in_a_file_of_its_own_is_named_with_the_join_that_reads_it(tmp_path, declared):
    """Regression (newuser22): a store table beside the history (`history.csv`: id, date, val; `stores.csv`: id,
    type, size), read as one glob with --static-col type --static-col size, was told only "stores.csv: declared
    column(s) 'date', 'val' missing" (or, with --freq, that 'type' and 'size' were missing from history.csv). The
    error says it is a table of one row per series, that statics are read from the data rows, and gives the polars
    line that joins it; run as written, the joined file reads with its statics."""
    import shlex
    import subprocess
    import sys

    (tmp_path / "history.csv").write_text("id,date,val\n" + "".join(
        f"{u},2024-01-0{d},{d}\n" for u in ("007", "s2") for d in range(1, 4)))
    (tmp_path / "stores.csv").write_text("id,type,size\n007,mall,120\ns2,street,40\n")
    with pytest.raises(DataValidationError) as err:
        ingest(make_source(tmp_path / "*.csv", static_cols=declared), None)
    said = " ".join(str(err.value).split())
    if declared:
        assert said.startswith(f"{tmp_path / 'history.csv'}: declared columns 'type', 'size' missing"), said
        assert "(its rows hold no static 'type', 'size': are they in a table of one row per series?" in said
    else:
        assert said.startswith(f"{tmp_path / 'stores.csv'}: declared columns 'date', 'val' missing"), said
        assert "(it holds the id column and 'type', 'size', without a time or a target: a table of one" in said
    assert "statics (--static-col) are read from the data rows, each series' first value: join the table" in said
    command = str(err.value).split("python -c ", 1)[1].rsplit(", and read with_statics.csv alone)", 1)[0]
    program = shlex.split(command.replace("\n", " "))[0]
    subprocess.run([sys.executable, "-c", program], cwd=tmp_path, check=True)
    if declared:  # a static misspelled in the history ('Type') is told its likely name, not of a table
        with pytest.raises(DataValidationError) as err:
            ingest(make_source(tmp_path / "history.csv", static_cols=["dat"]), None)
        assert "'dat' (renamed to 'date'?)" in str(err.value) and "one row per series" not in str(err.value)
    src = make_source(tmp_path / "with_statics.csv", static_cols=["type", "size"])
    frame = ingest(src, None).frame.collect()
    assert sorted(set(frame.select("unique_id", "type", "size").rows())) == [("007", "mall", "120"),
                                                                             ("s2", "street", "40")]


# ------------------------------------------------------------------ point in time: what a backfill's decisions read
def _run_and_backfill(tmp_path, history: str, later: str, as_of: datetime, name: str = "src.csv", **kw):
    """validate() on the file as a run at `as_of` had it (`history`) and on the same file with `later` rows written
    after it (its backfill): (run, backfill)."""
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "backfill").mkdir(exist_ok=True)
    run_path, back_path = tmp_path / "run" / name, tmp_path / "backfill" / name
    run_path.write_text(history)
    back_path.write_text(history + later)
    return run_validate(run_path, as_of=as_of, **kw), run_validate(back_path, as_of=as_of, **kw)


@pytest.mark.parametrize(("history", "later", "kw"), [
    # a time with an offset on as_of's own date, at an instant after it (13:00 UTC after a 12:00 UTC as_of)
    ("".join(f"2020-01-0{d}T00:00:00+00:00;a;{v}\n" for d, v in ((1, "1.234"), (2, "2.345"), (3, "3.456"))),
     "2020-01-03T13:00:00+00:00;a;1.230\n", {}),
    # ... written in a zone behind UTC: the 3rd at 20:00 in New York is the 4th, 01:00 UTC
    ("".join(f"2020-01-0{d}T00:00:00+00:00;a;{v}\n" for d, v in ((1, "1.234"), (2, "2.345"), (3, "3.456"))),
     "2020-01-03T20:00:00-05:00;a;1.230\n", {}),
    # ... with a bracketed zone (Java's ZonedDateTime)
    ("".join(f"2020-01-0{d}T00:00:00+00:00[Europe/London];a;{v}\n" for d, v in ((1, "1.234"), (2, "2.345"),
                                                                              (3, "3.456"))),
     "2020-01-03T13:00:00+00:00[Europe/London];a;1.230\n", {}),
    # ... with a declared time_format that has an offset
    ("".join(f"2020-01-0{d} 00:00:00+0000;a;{v}\n" for d, v in ((1, "1.234"), (2, "2.345"), (3, "3.456"))),
     "2020-01-03 13:00:00+0000;a;1.230\n", {"time_format": "%Y-%m-%d %H:%M:%S%z"}),
    # hourly wall times, in UTC and in the source's zone (as_of 12:00 UTC is 13:00 in Berlin)
    ("".join(f"2020-01-03 {h}:00;a;{v}\n" for h, v in ((10, "1.234"), (11, "2.345"), (12, "3.456"))),
     "2020-01-03 13:00;a;1.230\n", {"freq": "1h"}),
    ("".join(f"2020-01-03 {h}:00;a;{v}\n" for h, v in ((11, "1.234"), (12, "2.345"), (13, "3.456"))),
     "2020-01-03 14:00;a;1.230\n", {"freq": "1h", "tz": "Europe/Berlin"}),
])
def test_decimal_marks_are_decided_from_the_rows_by_as_of_by_their_instant(tmp_path, history, later, kw):
    """Regression (a leak after as_of): the rows that decide a file's decimal marks were told from the later ones by
    their date (one with an offset by the latest date anywhere on earth at as_of, UTC+14), so a '1.230' written at
    13:00 on as_of's own day, after a 12:00 as_of, made a backfill read the '1.234' its run had read as 1.234 as
    1234. A time of day (with its offset, or a wall time in the source's zone) is compared as the instant it is."""
    as_of = datetime(2020, 1, 3, 12, tzinfo=UTC)
    run, backfill = _run_and_backfill(tmp_path, "date;id;val\n" + history, later, as_of, **kw)
    assert run.valid.sort("ds")["y"].to_list() == [1.234, 2.345, 3.456]
    assert backfill.valid.sort("ds").rows() == run.valid.sort("ds").rows()
    assert (backfill.report.rows_after_as_of, backfill.report.rows_quarantined) == (1, 0)



@pytest.mark.parametrize(("history", "later", "kw"), [
    ("".join(f"13/01/2020 {h}:00;a;{v}\n" for h, v in ((10, "1.234"), (11, "2.345"), (12, "3.456"))),
     "13/01/2020 13:00;a;1.230\n", {"freq": "1h"}),
    # in the source's zone (as_of 12:00 UTC is 13:00 in Berlin)
    ("".join(f"13.01.2020 {h}:00;a;{v}\n" for h, v in ((11, "1.234"), (12, "2.345"), (13, "3.456"))),
     "13.01.2020 14:00;a;1.230\n", {"freq": "1h", "tz": "Europe/Berlin"}),
    # a 12-hour clock, month first
    ("".join(f"1/13/2020 {h}:00 AM;a;{v}\n" for h, v in ((9, "1.234"), (10, "2.345"), (11, "3.456"))),
     "1/13/2020 1:00 PM;a;1.230\n", {"freq": "1h"}),
])
def test_decimal_marks_are_decided_from_day_month_times_by_as_of_by_their_instant(tmp_path, history, later, kw):
    """pit20 (a leak after as_of): day/month dates with a time of day were told from the later rows by their date, so
    a '1.230' written at 13:00 on as_of's own day, after a 12:00 as_of, made a backfill read the '1.234' its run had
    read as 1.234 as 1234. Compared as an instant (a wall time in the source's zone), as ISO times are."""
    as_of = datetime(2020, 1, 13, 12, tzinfo=UTC)
    run, backfill = _run_and_backfill(tmp_path, "date;id;val\n" + history, later, as_of, **kw)
    assert run.valid.sort("ds")["y"].to_list() == [1.234, 2.345, 3.456]
    assert backfill.valid.sort("ds").rows() == run.valid.sort("ds").rows()
    assert (backfill.report.rows_after_as_of, backfill.report.rows_quarantined) == (1, 0)

@pytest.mark.parametrize("later", ["2024-01-05T13:00:00Z", "2024-01-05T20:00:00-05:00"])
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_dates_written_as_midnight_timestamps_are_decided_by_the_instant_of_as_of(tmp_path, later, kind):
    """Regression (a leak after as_of): whether times with an offset are dates written as timestamps was decided from
    the rows whose date was by the latest date anywhere at as_of, so a '2024-01-05T13:00:00Z' written after a
    12:00 UTC as_of made a daily backfill in America/New_York read its '2024-01-01T00:00:00Z'.. as instants (each a
    day early), where its run had read the dates as written. Only rows at an instant by as_of decide."""
    days = [datetime(2024, 1, d, tzinfo=UTC) for d in range(1, 6)]
    stamp = datetime.fromisoformat(later)
    as_of = datetime(2024, 1, 5, 12, tzinfo=UTC)
    paths = []
    for name, times in (("run", days), ("backfill", [*days, stamp])):
        if kind == "parquet":
            p = tmp_path / f"{name}.parquet"
            pl.DataFrame({"ts": pl.Series(times, dtype=pl.Datetime("us", "UTC")), "id": ["a"] * len(times),
                          "val": [float(i) for i in range(len(times))]}).write_parquet(p)
        else:
            p = tmp_path / f"{name}.csv"
            text = "".join(f"{d:%Y-%m-%dT%H:%M:%SZ},a,{i}\n" for i, d in enumerate(days))
            p.write_text("ts,id,val\n" + text + (f"{later},a,5\n" if name == "backfill" else ""))
        paths.append(p)
    run, backfill = (run_validate(p, as_of=as_of, time_col="ts", tz="America/New_York") for p in paths)
    assert run.valid.sort("ds")["ds"].to_list() == [datetime(2024, 1, d) for d in range(1, 6)]
    assert backfill.valid.sort("ds").rows() == run.valid.sort("ds").rows()
    assert (backfill.report.rows_after_as_of, backfill.report.rows_quarantined) == (1, 0)


@pytest.mark.parametrize("as_of", [None, datetime(2024, 3, 5, tzinfo=UTC)])
def test_dates_written_as_midnight_timestamps_with_a_bracketed_zone_keep_their_date(write_csv, as_of):
    """Regression: Java's ZonedDateTime writes a date at midnight with its offset and zone
    ('2024-03-01T00:00:00+01:00[Europe/Paris]'); the check that a column's times with an offset are dates written as
    timestamps did not see such a time, so with --tz America/New_York each was read as the evening before (29
    February for 1 March). A later time of day (after as_of) changes nothing in a backfill."""
    rows = "".join(f"2024-03-0{d}T00:00:00+01:00[Europe/Paris],a,{d}\n" for d in range(1, 4))
    later = "2024-03-20T13:00:00+01:00[Europe/Paris],a,9\n" if as_of else ""
    r = run_validate(write_csv("ts,id,val\n" + rows + later), as_of=as_of, time_col="ts", tz="America/New_York")
    assert r.valid.sort("ds")["ds"].to_list() == [datetime(2024, 3, d) for d in range(1, 4)]
    assert r.report.rows_quarantined == 0


@pytest.mark.parametrize(("rows", "bad", "freq", "read"), [
    # day first; '01/32/2020' is no date in either order, but its 32 said 'month first': every row contradicted
    (["13/01/2020", "14/01/2020", "15/01/2020"], "01/32/2020", "1d", [datetime(2020, 1, d) for d in (13, 14, 15)]),
    # month first; '31/02/2020' (no 31 February, no 31st month) said 'day first'
    (["01/13/2020", "01/14/2020", "01/15/2020"], "31/02/2020", "1d", [datetime(2020, 1, d) for d in (13, 14, 15)]),
    # monthly, told month first by their spacing; '00/01/2020' no reading reads ruled out both
    (["01/01/2020", "02/01/2020", "03/01/2020"], "00/01/2020", "1mo", [datetime(2020, m, 1) for m in (1, 2, 3)]),
])
@pytest.mark.parametrize("as_of", [None, datetime(2020, 3, 31, tzinfo=UTC)])
def test_a_time_no_day_month_order_reads_decides_nothing(write_csv, rows, bad, freq, read, as_of):
    """Regression: a day/month date that no order reads (a typo: '01/32/2020', '31/02/2020') took part in deciding
    the column's order, so one such row (written after as_of too: no reading dates it) made every row of the column
    contradict another, all quarantined. It decides nothing; it is quarantined itself, its reason naming it."""
    p = write_csv("date,id,val\n" + "".join(f"{t},a,{i}\n" for i, t in enumerate([*rows, bad])))
    r = run_validate(p, as_of=as_of, freq=freq)
    assert r.valid.sort("ds")["ds"].to_list() == read
    assert [(row, check) for row, check, _ in
            zip(*(r.quarantined[c].to_list() for c in ("source_row", "check", "reason")))] == [(3, "time_unparsable")]
    assert r.quarantined["reason"][0] == f"time '{bad}' does not parse as ISO-8601 (no date day first or month first)"


def _glob_rows(files: dict[int, list[str]]) -> pl.LazyFrame:
    """The time column of a glob's rows as an ingest reads them, each tagged with its file's index; the files' rows
    interleaved (round robin), so that a decision per file cannot lean on the rows' order."""
    rows = [(i, vs[k]) for k in range(max(map(len, files.values()))) for i, vs in files.items() if k < len(vs)]
    return pl.LazyFrame({FILE_INDEX: [i for i, _ in rows], "t": [v for _, v in rows]},
                        schema={FILE_INDEX: pl.Int32, "t": pl.Utf8})


@pytest.mark.parametrize(("files", "expected"), [
    # a UK export beside a US one, each settling its own order: together they contradict each other
    ({0: ["13/01/2024", "02/01/2024"], 1: ["01/13/2024", "01/02/2024"]}, {0: "day", 1: "month"}),
    # a file of ISO times, one of nothing, one settling nothing alone (either order, spaced as neither): left out
    ({0: ["2024-01-01", "2024-01-02"], 1: ["01/13/2024"], 2: [], 3: ["03/04/2024"], 4: ["25.12.2023", " 1.1.2024"]},
     {1: "month", 4: "day"}),
    # no file holds a day/month date
    ({0: ["2024-01-01"], 1: ["2024-01-02"]}, {}),
])
def test_a_glob_mixing_day_and_month_first_files_is_decided_per_file(files, expected):
    """Each file of a glob settles its day/month order by its own rows alone (`_day_month_per_file`), whatever the
    other files hold: read in one pass over the glob, not a query per file scanning every file (75 s of validating
    200 small files)."""
    assert _day_month_per_file(_glob_rows(files), "t", "1d", len(files)) == expected


@pytest.mark.parametrize("files", [
    # day first, month first, both numbers above 12 in one file (contradicting), every number 12 or below
    {0: ["13/01/2024", "02/01/2024"], 1: ["01/13/2024 10:00"], 2: ["13/01/2024", "01/13/2024"], 3: [" 03/04/2024"]},
    # a two-digit year first ('45/03/01': 45 is no day), one that may be first or last, one put last by '1/5/24'
    {0: ["45/03/01", "24/03/02"], 1: ["24/03/01", "24/03/02"], 2: ["24/03/01", "1/5/24"], 3: ["24/13/01"]},
    # a date no order reads decides nothing ('01/32/2020'); a file of ISO times and an empty one are left out
    {0: ["01/32/2020", "01/02/2020"], 1: ["31/02/2020", "01/13/2020"], 2: ["2024-01-01"], 3: []},
])
def test_a_globs_orders_by_rows_are_each_files_own_profile(files):
    """`_orders_by_rows` reads every file's order in one query grouped by file (a query per file: ~1 s for 200
    small files): each the order its file's own `time_column_profile` settles without a freq."""
    rows = _glob_rows(files)
    own = {i: time_column_profile(rows.filter(pl.col(FILE_INDEX) == i), "t")[0] for i, vs in files.items()
           if any(re.match(r"^\s*\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}\b", v) for v in vs)}
    assert _orders_by_rows(rows, "t", len(files)) == own
    assert len(set(own.values())) > 1  # (cases that tell orders apart)


def test_a_globs_day_month_files_are_read_as_their_distinct_dates():
    """`_day_month_files` holds each day/month file's distinct dates, all its profile reads, not every row of the
    glob (10,000,000 rows were held at once) nor every distinct time (an hourly file: 24 a date); a file without a
    day/month date is left out; `only` reads those files alone."""
    rows = _glob_rows({0: ["13/01/2024 00:00", "13/01/2024 01:00", " 02/01/2024"], 1: ["2024-01-01"] * 2,
                       2: ["01/13/2024 10:00 PM"] * 3})
    files = _day_month_files(rows, "t", 3)
    assert {i: sorted(f.collect().get_column("t").to_list()) for i, f in files.items()} == {
        0: ["02/01/2024", "13/01/2024"], 2: ["01/13/2024"]}
    assert list(_day_month_files(rows, "t", 3, only=[2])) == [2]


def test_a_globs_per_file_orders_by_their_rows_are_read_once_for_every_freq(tmp_path, monkeypatch):
    """A command reads a folder at its probe's freq ('1m', the frequency's guess) and at the run's: each file's order
    settled by its own numbers does not depend on the freq, and is read once (`_orders_by_rows`); every ingest read
    every file's time column again (200 small files: ~8 s each)."""
    from flowcast.data import day_month, sources

    (tmp_path / "uk.csv").write_text("date,v\n13/01/2024,1\n14/01/2024,2\n")
    (tmp_path / "us.csv").write_text("date,v\n01/13/2024,1\n01/14/2024,2\n")
    read = []
    real = day_month._orders_by_rows
    for module in (sources, day_month):  # ingest's reading and `_day_month_per_file`'s
        monkeypatch.setattr(module, "_orders_by_rows", lambda *a: read.append(a) or real(*a))
    for freq in ("1m", "1d", "1h"):
        source = make_source(str(tmp_path), id_cols=[], time_col="date", target_col="v", freq=freq)
        assert ingest(source, None).frame.select(DS_RAW).collect().get_column(DS_RAW).dt.day().sort().to_list() == [
            13, 13, 14, 14]
    assert len(read) == 1


@pytest.mark.parametrize("files", [2, 200])
def test_a_globs_per_file_orders_read_its_time_column_once(files):
    """The mapping of a glob whose files each have their order reads the time column as one order does: each date
    rewritten day first by its file's order in a stage of its own (a reading per order, each nesting the one
    before, made the plan 9x one order's: 200 files took 30 s to validate where one order's took 2 s)."""
    schema = pl.Schema({RAW_PREFIX + "t": pl.Utf8, RAW_PREFIX + "v": pl.Utf8, FILE_INDEX: pl.UInt32})
    source = make_source("x.csv", id_cols=[], time_col="t", target_col="v", freq="1d")

    def size(day_month) -> int:
        return sum(len(str(e)) for stage in _mapping(source, schema, "x.csv", True, day_month)[0] for e in stage)

    assert size({i: "day" if i % 2 else "month" for i in range(files)}) < 1.2 * size("day")


def test_a_file_settling_no_order_in_a_glob_takes_the_order_its_spacing_fits():
    """`_day_month_spaced_per_file`: beside a day-first glob, a file of 1-12 January written month first (no number
    above 12) is read month first, as its daily spacing says; a file of ISO times keeps the glob's order."""
    uk = [f"{d:02d}/01/2024" for d in range(1, 21)]
    us = [f"01/{d:02d}/2024" for d in range(1, 13)]
    assert _day_month_spaced_per_file(_glob_rows({0: uk, 1: us, 2: ["2024-02-01"]}), "t", "1d", 3, "day") == {
        0: "day", 1: "month", 2: "day"}
    assert _day_month_spaced_per_file(_glob_rows({0: uk, 1: ["2024-02-01"]}), "t", "1d", 2, "day") == "day"


def test_a_globs_per_file_orders_are_read_again_once_a_file_is_rewritten(tmp_path):
    """The per-file day/month orders of a glob are kept per state of its files in a process (a command ingests a
    folder up to 3 times): a file rewritten in the other order is read in its new order, not the one kept."""
    (tmp_path / "uk.csv").write_text("date,v\n13/01/2024,1\n02/01/2024,2\n")
    (tmp_path / "us.csv").write_text("date,v\n01/13/2024,1\n01/02/2024,2\n")
    source = make_source(str(tmp_path), id_cols=[], time_col="date", target_col="v", freq="1d")

    def dates() -> list[datetime]:
        return sorted(ingest(source, None).frame.select(DS_RAW).collect().get_column(DS_RAW).to_list())

    assert dates() == [datetime(2024, 1, 2), datetime(2024, 1, 2), datetime(2024, 1, 13), datetime(2024, 1, 13)]
    (tmp_path / "us.csv").write_text("date,v\n14/01/2024,1\n03/01/2024,2\n")  # now day first too
    assert dates() == [datetime(2024, 1, 2), datetime(2024, 1, 3), datetime(2024, 1, 13), datetime(2024, 1, 14)]


def test_a_globs_per_file_orders_are_read_again_where_file_times_did_not_tick(tmp_path, monkeypatch):
    """srcB47: the per-file orders were kept per file size, times and inode: on a filesystem of coarse times (FAT's
    2 s, a share's, `touch -d` to one second) a file rewritten in the other order within one tick, its size the same
    ('01/13' for '13/01'), was read in the order kept. Its bytes are in the key too."""
    from flowcast.data import sources

    real = sources.source_states

    def coarse(source: object) -> dict[str, object]:  # as such a filesystem reports the two writes: times alike
        return {f: None if st is None else (st[0], 0, 0, st[3]) for f, st in real(source).items()}  # type: ignore

    monkeypatch.setattr(sources, "source_states", coarse)
    (tmp_path / "uk.csv").write_text("date,v\n13/01/2024,1\n02/01/2024,2\n")
    (tmp_path / "us.csv").write_text("date,v\n01/13/2024,1\n")
    (tmp_path / "x.csv").write_text("date,v\n01/14/2024,1\n")
    source = make_source(str(tmp_path), id_cols=[], time_col="date", target_col="v", freq="1d")

    def dates() -> list[datetime]:
        return ingest(source, None).frame.select(DS_RAW).collect().get_column(DS_RAW).sort(nulls_last=True).to_list()

    assert dates() == [datetime(2024, 1, 2), datetime(2024, 1, 13), datetime(2024, 1, 13), datetime(2024, 1, 14)]
    (tmp_path / "x.csv").write_text("date,v\n15/01/2024,1\n")  # day first now, the same size (the glob as split)
    assert dates() == [datetime(2024, 1, 2), datetime(2024, 1, 13), datetime(2024, 1, 13), datetime(2024, 1, 15)]


@pytest.mark.parametrize(("mtime_ns", "cached"), [(1_700_000_000_000_000_000, False), (1_700_000_000_123_456_789, True)])
def test_a_large_file_of_whole_second_times_keeps_no_per_file_orders(tmp_path, monkeypatch, mtime_ns, cached):
    """A file too large to hash whole (its first and last bytes are) whose time is a whole second (a filesystem of
    coarse times, or one set so) may be rewritten within one tick, its middle alone other: its orders are not kept."""
    from flowcast.data import sources

    monkeypatch.setattr(sources, "_WHOLE_HASHED", 16)
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("date,v\n13/01/2024,1\n02/01/2024,2\n")
        os.utime(tmp_path / name, ns=(mtime_ns, mtime_ns))
    source = make_source(str(tmp_path), id_cols=[], time_col="date", target_col="v", freq="1d")
    key = sources._per_file_key(source, resolve_files(source), None, None)
    assert (key is not None) is cached, key


@pytest.mark.parametrize("undecided", [
    "01/02/24\n02/01/24\n",  # two-digit years: a year first ('24/03/01') as much as a day or month first
    "03/04/2024\n04/03/2024\n",  # a four-digit year: a day or month first
])
def test_a_glob_file_settling_no_order_among_files_that_do_is_not_read_day_first(tmp_path, undecided):
    """Beside a day-first and a month-first file, a file that settles no order (every number 12 or below, spaced as no
    reading's freq) is read in no order: its dates unparsable, each with the hint, not read day first. The day-first
    stage took a date of a file without an order for one rewritten day first where its year could be first ('01/02/24'
    read as 1 February 2024)."""
    (tmp_path / "uk.csv").write_text("date,v\n13/01/2024,1\n14/01/2024,2\n")
    (tmp_path / "us.csv").write_text("date,v\n01/15/2024,1\n01/16/2024,2\n")
    (tmp_path / "undecided.csv").write_text("date,v\n" + "".join(f"{d},3\n" for d in undecided.split()))
    result = run_validate(tmp_path, id_cols=[], target_col="v")
    assert sorted(result.valid.get_column("ds").to_list()) == [
        datetime(2024, 1, 13), datetime(2024, 1, 14), datetime(2024, 1, 15), datetime(2024, 1, 16)]
    assert result.report.rows_quarantined == 2


@pytest.mark.parametrize("files", [
    {"uk.csv": "13/01/2024 1:00 PM,1\n14/01/2024 2:00 AM,2\n"},  # one order, a 12-hour clock
    {"uk.csv": "13/01/2024 13:00,1\n14/01/2024 02:00,2\n", "us.csv": "01/15/2024 13:00,3\n01/16/2024 02:00,4\n"},
])
def test_day_month_times_are_read_by_a_plan_of_bounded_size(tmp_path, files):
    """Each step of reading a day/month time reads the text before it from a field (`distinct.Steps`): nested as
    expressions, every reading ran the regexes of all the steps before it again (a plan of ~1 MB, 3 MB with a 12-hour
    clock; 300k hourly rows of a UK and a US file took 60 s a stage). The helper columns leave with the mapping."""
    for name, rows in files.items():
        (tmp_path / name).write_text("date,v\n" + rows)
    ingested = ingest(make_source(tmp_path / "*.csv", id_cols=[], time_col="date", target_col="v", freq="1h"), None)
    assert len(ingested.frame.explain(optimized=False)) < 50_000
    assert not [c for c in ingested.frame.collect_schema().names() if c.startswith(TIME_STAGE)]
    days = [datetime(2024, 1, 13, 13), datetime(2024, 1, 14, 2), datetime(2024, 1, 15, 13), datetime(2024, 1, 16, 2)]
    assert sorted(ingested.frame.collect().get_column("ds").to_list()) == days[:2 * len(files)]


@pytest.mark.parametrize("files", [
    # ISO hours repeated by each series, with a blank, an unparsable one and a repeat
    {"a.csv": "s,t,v\na,2024-01-01 00:00:00,1\nb,2024-01-01 00:00:00,2\na,,3\nb,2024-13-01 00:00:00,4\n"
              "a,2024-01-01 01:00:00,5\nb,2024-01-01 01:00:00,6\na,2024-01-01 01:00:00,7\n"},
    # offsets, one a series repeats, and a 12-hour clock
    {"a.csv": "s,t,v\na,2024-01-01T00:00:00+01:00,1\nb,2024-01-01T00:00:00+01:00,2\na,2024-01-01T01:00:00Z,3\n"
              "b,2024-01-01 2:00 PM,4\n"},
    # a glob whose files each settle their own day/month order: the same text read two ways
    {"uk.csv": "s,t,v\na,13/01/2024 13:00,1\nb,02/01/2024 02:00,2\nb,13/01/2024 13:00,3\n",
     "us.csv": "s,t,v\na,01/15/2024 13:00,4\nb,02/01/2024 02:00,5\n"},
])
def test_a_text_times_reading_per_distinct_value_is_its_reading_per_row(tmp_path, files, monkeypatch):
    """The helper column of a text time's reading is computed once per distinct value of what it reads and gathered
    back to the rows (`distinct.Steps`: 1,000,000 hourly times of 500 series took 6.5 s per row): the same mapped columns,
    in the same row order, as with its steps computed over every row; nulls and values read per file too."""
    for name, rows in files.items():
        (tmp_path / name).write_text(rows)
    source = make_source(tmp_path / "*.csv", id_cols=["s"], time_col="t", target_col="v", freq="1h")
    ingested = ingest(source, None)
    assert ingested.raw is not None
    shared = _mapped(ingested.raw, ingested.mapping)
    assert "search_sorted" in shared.explain()
    monkeypatch.setattr(distinct, "per_distinct", lambda values, f: f(values))  # the steps over every row
    per_row = ingest(source, None)
    assert per_row.raw is not None
    assert "search_sorted" not in _mapped(per_row.raw, per_row.mapping).explain()
    assert_frame_equal(shared.collect(), _mapped(per_row.raw, per_row.mapping).collect())
    assert ingested.frame.collect().height == sum(rows.count("\n") - 1 for rows in files.values())


@pytest.mark.parametrize(("first", "second", "expected"), [
    ("2024-01-01\n2024-01-02\n", "2024-01-03\n", True),  # its first file's ISO dates: the others are not read
    ("spring\nsummer\n", "2024-01-03\n", False),  # its first file's words: not times
    ("01/02/2024\n01/03/2024\n", "01/13/2024\n01/14/2024\n", True),  # settled month first by the other file
    ("", "2024-01-03\n2024-01-04\n", True),  # its first file a header alone (a day with no sale): the others read
])
def test_parses_as_times_of_a_folder_reads_its_first_file_unless_others_settle_its_order(tmp_path, first, second,
                                                                                          expected):
    """`parses_as_times` of a folder reads its first file's rows alone (200 files were ingested for 20 rows), and
    the whole folder only where those rows are day/month dates that file alone does not settle, or where that file
    has fewer than them (revB47: a first file of a header alone, an export of a day without sales, read no time: the
    column was not guessed, where the whole folder's first rows read as times)."""
    (tmp_path / "a.csv").write_text("when,v\n" + "".join(f"{t},1\n" for t in first.split()))
    (tmp_path / "b.csv").write_text("when,v\n" + "".join(f"{t},1\n" for t in second.split()))
    assert parses_as_times(str(tmp_path), "when") is expected


def test_a_glob_whose_files_each_have_their_order_counts_a_later_row_after_as_of(tmp_path):
    """Regression: in a glob of a US export (month first) and a UK one (day first), each file is read in its own
    order; a row written after as_of in a file's other order ('16/01/2024' in the US file: no date month first, 16
    January day first) was quarantined as time_unparsable in a backfill at that as_of (a row its run never saw).
    It is counted after as_of, as it is in a single file; a backfill reads its history as its run did."""
    us = "".join(f"01/{d}/2024,us,{d}\n" for d in (13, 14, 15))
    uk = "".join(f"{d}/01/2024,uk,{d}\n" for d in (13, 14, 15))
    as_of = datetime(2024, 1, 15, tzinfo=UTC)
    out = {}
    for name, later in (("run", ""), ("backfill", "16/01/2024,us,16\n")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "a_us.csv").write_text("date,id,val\n" + us + later)
        (folder / "b_uk.csv").write_text("date,id,val\n" + uk)
        out[name] = run_validate(folder / "*.csv", as_of=as_of)
    run, backfill = out["run"], out["backfill"]
    assert run.report.rows_valid == 6 and run.report.rows_quarantined == 0
    assert backfill.valid.sort("unique_id", "ds").rows() == run.valid.sort("unique_id", "ds").rows()
    assert (backfill.report.rows_after_as_of, backfill.report.rows_quarantined) == (1, 0)
    assert backfill.report.reconciled


def test_a_later_row_beside_a_history_no_order_settles_is_counted_after_as_of(tmp_path):
    """A history whose order nothing settles ('01/02/2020', '02/03/2020': either order, spaced as neither) is
    quarantined with its hint, in its run and its backfill alike; a row after as_of however it is read ('16/04/2020'
    at 31 March) is counted after as_of in the backfill (its run never saw it), where it was quarantined too."""
    history = "date,id,val\n01/02/2020,a,1\n02/03/2020,a,2\n2020-01-10,a,3\n"
    run, backfill = _run_and_backfill(tmp_path, history, "16/04/2020,a,4\n", datetime(2020, 3, 31, tzinfo=UTC))
    assert (run.report.rows_valid, run.report.rows_quarantined) == (1, 2)
    assert backfill.valid.rows() == run.valid.rows()
    assert (backfill.report.rows_after_as_of, backfill.report.rows_quarantined) == (1, 2)


def test_a_later_date_with_its_year_last_leaves_a_year_first_history_as_its_run_read_it(tmp_path):
    """Regression (a leak after as_of): whether a column's two-digit years may come first was decided from all its
    rows, so a later '5/5/24' (one digit first: its year is last) made a backfill test its year-first history
    ('24/03/28': 28 March 2024) only day first or month first (24 March 2028: after as_of), leave it out of the rows
    that decide, and quarantine it, where its run had read it year first. The rows by as_of decide."""
    history = "date,id,val\n" + "".join(f"24/03/{d},a,{d}\n" for d in (28, 29, 30))
    run, backfill = _run_and_backfill(tmp_path, history, "5/5/24,a,9\n", datetime(2024, 3, 31, tzinfo=UTC))
    assert run.valid.sort("ds")["ds"].to_list() == [datetime(2024, 3, d) for d in (28, 29, 30)]
    assert backfill.valid.sort("ds").rows() == run.valid.sort("ds").rows()
    assert (backfill.report.rows_after_as_of, backfill.report.rows_quarantined) == (1, 0)


@pytest.mark.parametrize(("value", "year_first", "after"), [
    ("16/01/2024", False, True),  # 16 Jan, or month 16: no month-first reading; after 2024-01-15 either way
    ("01/02/2024", False, False),  # 1 Feb or 2 Jan: 2 Jan is by the day, it may be dated by it
    ("15/01/2024", False, False),  # the day itself
    ("13.01.24", False, False),  # a two-digit year: 2024-01-13
    ("01-02-70", False, False),  # 1970
    ("24/03/01", False, False),  # 2001-03-24 (year last)
    ("24/03/25", True, True),  # 2025-03-24, 2025-24?, 2024-03-25: every reading after the day
    ("24/01/10", True, False),  # year first: 2024-01-10, by the day
    ("2024-01-16", False, False),  # not a day/month date: kept (the ISO filter decides it)
    ("99/99/2024", False, False),  # no reading is a date: kept, quarantined later
    (None, False, False),
])
def test_a_day_month_date_after_as_of_however_read_is_left_out_of_the_rows_that_decide(value, year_first, after):
    """Review19: the rows that may be dated by as_of (`_dated_by`) and the rows after as_of however read
    (`_after_every_reading`) are two sides of one reading of the numbers (`_earliest_reading`): each row is in
    exactly one, as the day/month order and the partition of rows after as_of decide alike."""
    from datetime import date

    from flowcast.data.dated_by import _after_every_reading, _dated_by

    day = date(2024, 1, 15)
    raw = pl.LazyFrame({"t": [value]}, schema={"t": pl.Utf8})
    kept = _dated_by(raw, "t", day, year_first).collect().height == 1
    later = raw.select(_after_every_reading("t", day, year_first)).collect().item()
    assert later is after and kept is not after


@pytest.mark.parametrize(("value", "kept"), [
    ("15/01/2024 12:00", True),  # as_of itself
    ("15/01/2024 12:01", False),  # later on as_of's own day: it was kept by its date
    ("15/01/2024 18:00:30", False),
    ("1/15/2024 6:00 PM", False),  # a 12-hour clock
    ("1/15/2024 11:00 AM", True),
    ("15.01.2024T11:59", True),
    ("15/01/2024", True),  # a date alone: its midnight, by as_of
    ("16/01/2024 00:00", False),
    ("01/02/2024 13:00", True),  # 2 January (month first) is by as_of: it may be dated by it
    ("12/01/2024 23:59", True),
])
def test_a_day_month_time_is_compared_with_as_of_by_its_instant(value, kept):
    """pit20 (a leak after as_of): a day/month date with a time of day was compared with as_of by its date, so a row
    written later on as_of's own day decided how the rows by as_of read (decimal marks, dates as timestamps). Its
    earliest reading's wall time is compared with as_of's, as an ISO time without an offset is; a row the order
    chosen cannot read is after as_of (`_after_every_reading`) exactly where it is not among the rows by it."""
    from flowcast.data.dated_by import _after_every_reading, _dated_by

    raw = pl.LazyFrame({"t": [value]}, schema={"t": pl.Utf8})
    wall = datetime(2024, 1, 15, 12, 0)
    assert (_dated_by(raw, "t", wall.date(), False, wall=wall).collect().height == 1) is kept
    assert raw.select(_after_every_reading("t", wall.date(), False, wall=wall)).collect().item() is not kept


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize(("freq", "expected"), [
    # 30-minute data: ds is the instant, naive UTC (1393594200 is 2014-02-28 13:30 UTC)
    ("30m", [datetime(2014, 2, 28, 13, 0), datetime(2014, 2, 28, 13, 30)]),
    # daily data: the date in the source's tz (13:00 UTC is 29 February's midnight (+11:00) in Melbourne)
    ("1d", [datetime(2014, 3, 1), datetime(2014, 3, 2)]),
])
def test_unix_seconds_are_instants_whatever_the_source_tz(tmp_path, fmt, freq, expected):
    """Regression: Unix epoch seconds (`--time-format %s`) name an instant, in no zone; with a `--tz` they were read
    as wall times of that zone, every time shifted by its offset (a Melbourne file's last half hour, 13:30 UTC, was
    ds 02:30 UTC, and its forecasts 11 hours early); a daily file's Melbourne midnights were the day before."""
    step = 1800 if freq == "30m" else 86400
    times = [1393592400, 1393592400 + step]  # 2014-02-28 13:00 UTC: midnight of 1 March in Melbourne (+11:00)
    p = tmp_path / f"e.{fmt}"
    frame = pl.DataFrame({"date": times, "id": ["a", "a"], "val": [1.0, 2.0]})
    if fmt == "csv":
        frame.write_csv(p)
    else:
        frame.write_parquet(p)
    src = make_source(p, time_format="%s", freq=freq, tz="Australia/Melbourne")
    got = ingest(src, None).frame.select("ds").collect()["ds"].to_list()
    assert got == expected


@pytest.mark.parametrize(("text", "times"), [
    ("when,v\n2024-01-01,1\n2024-01-02,2\n", True),
    ("when,v\nJan 2024,1\nFeb 2024,2\n", True),  # a month named as the run reads it
    ("when,v\n2024-01-01 09:00,1\n,2\n2024-01-01 10:00,3\n", True),  # an empty value is not counted
    ("when,v\nspring,1\nsummer,2\n", False),
    ("when,v\n1700000000,1\n1700086400,2\n", False),  # Unix seconds: read with --time-format %s only
    ("when\n2024-01-01\n", False),  # no other column
])
def test_parses_as_times_reads_a_column_as_the_run_reads_its_times(tmp_path, text, times):
    """cols43: the command line takes a column named as a time ('date', 'month') for the time only where its values
    read as times: 'period' holding seasons is not one."""

    (tmp_path / "f.csv").write_text(text)
    assert parses_as_times(str(tmp_path / "f.csv"), "when") is times
    assert parses_as_times(str(tmp_path / "f.csv"), "missing") is False


@pytest.mark.parametrize(("rows", "repeats"), [
    (["a,s1,2024-01-01,1", "a,s1,2024-01-02,2", "b,s1,2024-01-01,3"], False),
    # a row exported twice is no second row of its time: the run drops it as an exact duplicate (rows_duplicate)
    (["a,s1,2024-01-01,1", "a,s1,2024-01-02,2", "a,s1,2024-01-02,2", "b,s1,2024-01-01,3"], False),
    (["a,s1,2024-01-01,1", "a,s2,2024-01-01,1"], True),  # two skus of a store: equal in all but the sku
    (["a,s1,2024-01-01,1", "a,s1,2024-01-01,4"], True),  # two values of one time
])
def test_times_repeat_within_a_key_counts_no_exact_repeat_of_a_row(tmp_path, rows, repeats):
    """rev44: a series column's times were said to repeat under it where the file held one row written twice (an
    export appended a line again), so 'store' was not guessed and the command asked for --id-col store; the run drops
    such a row as an exact duplicate. A time repeats within a key where two rows of it differ in some column."""
    from flowcast.data.series_keys import times_repeat_within

    (tmp_path / "f.csv").write_text("store,sku,date,y\n" + "\n".join(rows) + "\n")
    assert times_repeat_within(str(tmp_path / "f.csv"), "date", ["store"]) is repeats


@pytest.mark.parametrize(("rows", "probed"), [
    (["2024-01-01,1,2", "2024-01-02,3,4"], (["north", "south"], [])),
    # a row exported twice is no second row of its date: the run drops it as an exact duplicate (rows_duplicate)
    (["2024-01-01,1,2", "2024-01-02,3,4", "2024-01-02,3,4"], (["north", "south"], [])),
    (["2024-01-01,1,2", "2024-01-02,3,4", "2024-01-02,3,5"], None),  # two values of one date: long
])
def test_wide_probe_counts_no_exact_repeat_of_a_row(tmp_path, rows, probed):
    """hint44: a file `date,sales` (or a wide file) with one line written twice was read as long, its dates
    repeating, and asked for --target-col; the run drops such a row as an exact duplicate. A date repeats where two
    of its rows differ in some column, and `long_only` reads the file so too."""
    from flowcast.data.probes import wide_probe

    (tmp_path / "f.csv").write_text("date,north,south\n" + "\n".join(rows) + "\n")
    assert wide_probe(str(tmp_path / "f.csv"), "date") == probed
    assert (wide_probe(str(tmp_path / "f.csv"), "date", long_only=True) is None) is (probed is not None)


@pytest.mark.parametrize(("header", "rows", "repeats"), [
    # rows that differ in one cell only, beside the columns asked about: each a second row of its time
    ("store,date,a,b", ["n,2024-01-01,x,y", "n,2024-01-01,y,x"], True),  # two cells swapped
    ("store,date,a,b", ["n,2024-01-01,x,", "n,2024-01-01,x,y"], True),  # an empty cell and a value
    ("store,date,a,b", ["n,2024-01-01,,", "n,2024-01-01,,"], False),  # a row of empty cells written twice
    # a file's own column named as the probes' hash of a row, and asked about
    ("store,date,__row__", ["n,2024-01-01,1", "m,2024-01-01,1"], True),
    ("store,date,__row__", ["n,2024-01-01,1", "n,2024-01-01,1"], False),
])
def test_the_probes_tell_a_row_written_twice_from_rows_that_differ(tmp_path, header, rows, repeats):
    """probe44: the probes deduplicate a file's rows on one hash of each whole row beside the columns asked about, not
    on every column (3 million rows of text: 9.5 s and 1.1 GB a `wide_probe`); rows differing in any cell still
    differ, and a row written twice is still one."""
    from flowcast.data.probes import wide_probe
    from flowcast.data.series_keys import times_repeat_within_each

    (tmp_path / "f.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    key = "__row__" if "__row__" in header else "store"
    assert times_repeat_within_each(str(tmp_path / "f.csv"), "date", [[], [key]]) == [repeats, repeats]
    for time_col in ("date", key):  # (a time column named as the probes' hash of a row, too)
        assert (wide_probe(str(tmp_path / "f.csv"), time_col, long_only=True) is not None) is repeats



@pytest.mark.parametrize("write", ["in place", "replaced", "removed"])
def test_wide_probe_reads_a_file_once_until_it_changes(tmp_path, monkeypatch, write):
    """src45: `wide_probe` is read once per state of the file in a process (a command asked it up to 4 times), by
    both of its questions (`long_only` or not); a file written in place, replaced or removed since is read again."""
    from flowcast.data import probes
    from flowcast.data.probes import id_candidates, wide_probe

    real, scans = probes._scan_one, []

    def counted(*args: object, **kwargs: object) -> object:
        scans.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(probes, "_scan_one", counted)
    csv = tmp_path / "f.csv"
    csv.write_text("date,north,south\n2024-01-01,1,2\n2024-01-02,3,4\n")
    for _ in range(2):
        assert wide_probe(str(csv), "date") == (["north", "south"], [])
        assert wide_probe(str(csv), "date", long_only=True) is None
        assert id_candidates(str(csv), "date") == []
    assert len(scans) == 2, scans  # its header (`columns_of`) and its rows, once each
    long = "shop,date,sales\nn,2024-01-01,1\ns,2024-01-01,2\n"
    if write == "in place":
        with open(csv, "r+") as fh:
            fh.truncate(0)
            fh.write(long)
    elif write == "replaced":
        (tmp_path / "new.csv").write_text(long)
        os.replace(tmp_path / "new.csv", csv)
    else:
        csv.unlink()
    assert wide_probe(str(csv), "date") is None
    assert id_candidates(str(csv), "date") == ([] if write == "removed" else [("shop", "n")])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_rows_after_more_blank_rows_than_the_probe_reads_are_no_file_of_no_rows(tmp_path, fmt):
    """A file whose first rows are blank (empty cells, or nulls) past the `_NO_ROWS_PROBE` rows `refuse_no_rows`
    reads, with data after them, has rows: it is left to the run, which reads them all. It was refused 'no rows (the
    file has a header but no data, only 1,000 blank lines)' before its columns were asked for."""
    blank = _NO_ROWS_PROBE + 5
    path = tmp_path / f"s.{fmt}"
    if fmt == "csv":
        path.write_text("date,id,val\n" + ",,\n" * blank + "2024-01-01,a,1\n")
    else:
        pl.DataFrame({"date": [None] * blank + ["2024-01-01"], "id": [None] * blank + ["a"],
                      "val": [None] * blank + [1.0]}, schema={"date": pl.Utf8, "id": pl.Utf8, "val": pl.Float64}
                     ).write_parquet(path)
    refuse_no_rows(str(path), "s")  # no DataValidationError


@pytest.mark.parametrize(("name", "write"), [
    ("quoted.csv", lambda p: p.write_text('date,id,val\n"","",""\n"","",""\n')),  # csv.QUOTE_ALL's missing values
    ("spaced.csv", lambda p: p.write_text("date,id,val\n, ,\n")),  # a blank in a later cell: polars reads text
    ("nulls.parquet", lambda p: pl.DataFrame({"date": [None, None], "val": [None, None]},
                                             schema={"date": pl.Date, "val": pl.Float64}).write_parquet(p)),
])
def test_rows_of_empty_values_are_rows_as_the_run_reads_them(tmp_path, name, write):
    """rev45: rows whose every value is empty, but which the run reads as rows (and quarantines, saying 'all 2 rows
    quarantined (time_missing=2)'), are no blank lines: only a CSV line the run skips as blank is one
    (`csv_text.blank_line`). `refuse_no_rows` counted any row of empty or null cells as blank and said 'no rows (the
    Parquet file has its columns but no rows)' of a Parquet file of two rows, and 'only 2 blank lines' of a CSV file
    of two rows of "" cells, contradicting the run's own words."""
    path = tmp_path / name
    write(path)
    refuse_no_rows(str(path), "s")  # no DataValidationError: the run reads its rows and says what is wrong with them


def test_a_header_and_blank_lines_alone_are_refused_as_no_rows(tmp_path):
    """The other side of the probe's rule: blank lines alone, fewer than the probe reads, are no rows."""
    path = tmp_path / "s.csv"
    path.write_text("date,id,val\n" + ",,\n" * 3)
    with pytest.raises(DataValidationError, match=r"s\.csv: no rows \(the file has a header but no data, only 3 "
                                                  r"blank lines\)$"):
        refuse_no_rows(str(path), "s")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("stores", [[" north", "north"], ["north ", "north"], ["Caf\u00e9", "Cafe\u0301"],
                                    ["north", "south"], ["north", "north"]])
def test_a_file_s_one_series_guess_reads_its_ids_as_the_run_does(tmp_path, fmt, stores):
    """fix45: `constant_values` (the guess of a file of one series, `Date,store,sales`) stripped the blanks of a
    Parquet file's text, where the run strips a CSV file's ids only: a Parquet file of ' north' and 'north' was named
    one series while the run read two. The guess reads the values as the run reads its ids (`id_text`)."""
    from flowcast.data.probes import constant_values
    from flowcast.data.sources import ingest

    frame = pl.DataFrame({"date": ["2024-01-01", "2024-01-02"], "store": stores, "val": [1.0, 2.0]})
    path = tmp_path / f"f.{fmt}"
    frame.write_csv(path) if fmt == "csv" else frame.write_parquet(path)
    read = ingest(make_source(path, id_cols=["store"]), None).frame.select("unique_id").unique().collect()
    guess = constant_values(str(path), ["store"])
    assert (guess is not None) is (read.height == 1), (guess, read)
    assert guess is None or guess == {"store": read.item()}


@pytest.mark.parametrize(("second", "expected"), [
    ({"store": ["north", "north"]}, {"store": "north"}),  # every file of one store
    ({"store": ["north", "south"]}, None),  # a later file of another store
    ({"shop": ["north", "north"]}, None),  # a later file without the column
])
def test_constant_values_reads_every_file_of_a_folder(tmp_path, second, expected):
    """globs46: `constant_values` read a folder's first file alone: a folder whose first file held one store was
    named that one series. Every file is read (a CSV and a Parquet file of one folder too); one without the column
    is no guess."""
    from flowcast.data.probes import constant_values

    (tmp_path / "f").mkdir()
    pl.DataFrame({"date": ["2024-01-01", "2024-01-02"], "store": [" north", "north"], "val": [1.0, 2.0]}).write_csv(
        tmp_path / "f" / "a.csv")
    pl.DataFrame({"date": ["2024-01-03", "2024-01-04"], **second, "val": [3.0, 4.0]}).write_parquet(
        tmp_path / "f" / "b.parquet")
    assert constant_values(str(tmp_path / "f"), ["store"]) == expected
    assert constant_values(str(tmp_path / "f"), ["store"], "date", ("val",)) == expected


@pytest.mark.parametrize(("times", "sales", "expected"), [
    # 2 January in both files, with other sales: written twice, not one series
    ([datetime(2024, 1, 2), datetime(2024, 1, 3)], [5.0, 6.0], None),
    ([datetime(2024, 1, 2, 0, 0, 0)], [5.0], None),
    ([datetime(2024, 1, 2).date()], [5.0], None),  # a Parquet date
    ([datetime(2024, 1, 3).date()], [5.0], {"store": "s0"}),
    # the Parquet file's days follow the CSV's: one series
    ([datetime(2024, 1, 3), datetime(2024, 1, 4)], [5.0, 6.0], {"store": "s0"}),
    # 2 January in both files with the same sales (the CSV's '2', the Parquet's 2.0): one row written twice, which
    # the run drops as an exact duplicate (revB47: compared as text, '2' and '2.0' were two rows, no guess)
    ([datetime(2024, 1, 2), datetime(2024, 1, 3)], [2.0, 6.0], {"store": "s0"}),
])
def test_constant_values_tells_a_time_written_twice_across_csv_and_parquet(tmp_path, times, sales, expected):
    """globs46's repeat look compared times as text: a CSV's '2024-01-02' and a Parquet timestamp's '2024-01-02
    00:00:00.000000' (pandas' datetime64 of dates) were two times, a folder writing 2 January twice with other sales
    was said one series (the run then quarantines both rows as a duplicate conflict)."""
    from flowcast.data.probes import constant_values

    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a.csv").write_text("Date,store,sales\n2024-01-01,s0,1\n2024-01-02 00:00,s0,2\n")
    pl.DataFrame({"Date": times, "store": ["s0"] * len(times), "sales": sales}).write_parquet(
        tmp_path / "f" / "b.parquet")
    assert constant_values(str(tmp_path / "f"), ["store"], "Date", ("sales",)) == expected


@pytest.mark.parametrize(("other", "expected"), [
    # one instant however its offset or fraction is written: written twice with other sales, no series guessed
    ("2024-01-02T09:00:00+00:00", None),
    ("2024-01-02T09:00:00.000Z", None),
    ("2024-01-02 09:00+0000", None),
    ("2024-01-02T10:00:00+01:00", None),
    ("2024-01-02T09:00:00.000000+00", None),
    # other instants: one series
    ("2024-01-02T09:00:00.500Z", {"store": "s0"}),
    ("2024-01-02T09:00:00-01:00", {"store": "s0"}),
    ("2024-01-02T10:00:00Z", {"store": "s0"}),
])
def test_constant_values_tells_an_instant_written_twice_with_other_offsets_or_fractions(tmp_path, other, expected):
    """srcB47: times compared as text missed an instant written 'Z' in one file and '+00:00' (or '.000Z', or
    '+01:00' an hour later on the clock) in another: one series was guessed where the run reads a time written twice
    with other sales."""
    from flowcast.data.probes import constant_values

    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a.csv").write_text("Date,store,sales\n2024-01-02T08:00:00Z,s0,1\n2024-01-02T09:00:00Z,s0,2\n")
    (tmp_path / "f" / "b.csv").write_text(f"Date,store,sales\n{other},s0,5\n")
    assert constant_values(str(tmp_path / "f"), ["store"], "Date", ("sales",)) == expected


@pytest.mark.parametrize("missing", ["NA", "", "  ", "N/A", "NULL"])
def test_constant_values_does_not_count_missing_times_as_a_time_written_twice(tmp_path, missing):
    """srcB47: two rows whose time is missing ('NA', empty, blank) counted as a time written twice: no series was
    guessed (nor the file's layout read), while the run quarantines those rows (time_missing) and reads one series.
    The guess agrees."""
    from flowcast.data.probes import constant_values, wide_probe

    path = tmp_path / "f.csv"
    path.write_text(f"Date,store,sales\n{missing},s0,1\n{missing},s0,2\n2024-01-01,s0,3\n")
    assert wide_probe(str(path), "Date") == (["sales"], [("store", "s0")])
    assert constant_values(str(path), ["store"], "Date", ("sales",)) == {"store": "s0"}
    rep = run_validate(path, id_cols=["store"], time_col="Date", target_col="sales").report
    assert rep.rows_valid == 1 and rep.n_series == 1, rep


_PEAK_GROWTH = """
import resource, sys
import polars as pl
from flowcast.data.probes import constant_values
pl.LazyFrame({"a": [1]}).select(pl.col("a").unique()).collect(engine="streaming")  # the engine's own start
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
guess = constant_values(sys.argv[1], ["store"], "Date", ("sales",))
print(guess, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_constant_values_of_a_folder_of_many_series_holds_no_rows(tmp_path):
    """globs46's guess over every file of a folder held every distinct row (store, time, a hash of the row) before it
    looked at the stores: 1,000,000 rows of 20 stores grew the process by ~275 MB to say None (676 MB for 2,000,000).
    The stores alone first: a folder of several series is no guess, its rows not held (~60 MB, the engine's buffers)."""
    import subprocess
    import sys

    n = 50_000
    times = pl.datetime_range(datetime(2000, 1, 1), datetime(2000, 1, 1) + timedelta(hours=n - 1), "1h", eager=True)
    (tmp_path / "f").mkdir()
    for i in range(20):
        pl.DataFrame({"Date": times, "store": [f"s{i}"] * n, "sales": pl.int_range(n, eager=True).cast(pl.Float64)}
                     ).write_csv(tmp_path / "f" / f"p{i}.csv")
    out = subprocess.run([sys.executable, "-c", _PEAK_GROWTH, str(tmp_path / "f")], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "None" and int(out[1]) < 150, out


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("blank", ["  ", "\t", ""])
def test_an_id_column_of_blanks_alone_is_no_one_series_guess(tmp_path, fmt, blank):
    """A Parquet file whose text column holds blanks alone ('  ' in every row) was guessed one series named '  ':
    `constant_values` kept a Parquet file's blanks, as the run keeps them in an id with other text, but the run
    quarantines an id that is blank once stripped (`id_missing`), every row of that series."""
    from flowcast.data.probes import constant_values

    frame = pl.DataFrame({"date": ["2024-01-01", "2024-01-02"], "store": [blank, blank], "val": [1.0, 2.0]})
    path = tmp_path / f"f.{fmt}"
    frame.write_csv(path) if fmt == "csv" else frame.write_parquet(path)
    assert constant_values(str(path), ["store"]) is None
    rep = run_validate(path, id_cols=["store"], time_col="date", target_col="val").report
    assert rep.rows_valid == 0 and rep.checks == {"id_missing": 2}, rep.checks
