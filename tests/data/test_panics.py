"""A panic of polars (a `PanicException`, no Exception) anywhere in ingest is an error naming the file and what to
try (`panics.panics_named`), never a Rust backtrace and a traceback. Real panics: a Parquet file cut short under a
lazy scan that had read its footer (polars 2.1: 'assertion failed: range.end as u64 <= self.size'); where the
installed polars raises an ordinary error there instead, that error is asserted to reach the user unchanged and the
test is skipped, saying so (`_said`), and the panic path is tested through `panics_named` itself, a panic raised in
its block (`_panic`). Validation's collect and the first rows of a day-first file of many morsels:
tests/data/test_freq_infer.py."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from data_helpers import make_source
from proc_state import written_in_place

from flowcast.data.panics import file_probe
from flowcast.data.sources import ingest
from flowcast.errors import DataValidationError


def _parquet(path: Path) -> bytes:
    """A Parquet file of 20 series x 500 days in row groups of 1,000 rows (as tests/data/test_read_stopped.py's): its
    bytes."""
    n = 20 * 500
    pl.DataFrame({"id": [f"s{i // 500}" for i in range(n)],
                  "date": pl.date_range(pl.date(2020, 1, 1), pl.date(2021, 5, 14), eager=True).to_list() * 20,
                  "val": [float(i) for i in range(n)]}).write_parquet(path, row_group_size=1000)
    return path.read_bytes()


def _said(error: pytest.ExceptionInfo[BaseException]) -> str:
    """What the user is told of a read of a Parquet file cut short under its scan (`pytest.raises` of
    DataValidationError and polars' errors): polars 2.1 panics there, said as `panics.panic_error` (its cause the
    PanicException), whose message is returned. Where the installed polars raises an ordinary error instead, that
    error reaches the user as polars said it (`panics_named` passes other errors unchanged: asserted), and the test
    is skipped, naming that error; `test_a_globs_panic_names_the_file_that_fails_alone` provokes the panic path."""
    if isinstance(error.value, DataValidationError):
        assert type(error.value.__cause__).__name__ == "PanicException", repr(error.value.__cause__)
        return str(error.value)
    said = " ".join(str(error.value).split())
    assert isinstance(error.value, pl.exceptions.PolarsError) and "failed inside its query engine" not in said, said
    pytest.skip(f"polars {pl.__version__} reads a Parquet file cut under its scan with an ordinary error, no panic "
                f"({type(error.value).__name__}: {said[:120]}): the panic path is tested through panics_named itself")


def _panic() -> None:
    """A panic of polars, as any reaches Python (`pl.exceptions.PanicException`, no Exception), without the bug of a
    polars version that makes one: what `panics_named` takes from its block."""
    raise pl.exceptions.PanicException("assertion failed: range.end as u64 <= self.size")


@pytest.mark.parametrize("url", [False, True])
def test_a_globs_panic_names_the_file_that_fails_alone(tmp_path, url):
    """Regression (ingest53): a file:// glob is one URL to ingest (polars expands it), and after its panic none of its
    files was read again: the error named the glob alone, where a local glob's named its cut file. Its files are read
    alone as a local glob's are (`source_files.local_files`), the cut one named as the source names it. The panic is
    raised in the block of the source's `panics_named` (polars 2.1 reads a file:// glob's cut file with an ordinary
    error); the files' reads alone are real, and the cut one fails however the installed polars fails on it."""
    whole = _parquet(tmp_path / "a.parquet")
    for name in ("b", "c"):
        (tmp_path / f"{name}.parquet").write_bytes(whole)
    glob = f"file://{tmp_path}/*.parquet" if url else str(tmp_path / "*.parquet")
    ingested = ingest(make_source(glob), None)
    written_in_place(tmp_path / "b.parquet", whole[: len(whole) // 2])
    with pytest.raises(DataValidationError) as error, ingested.panics_named():
        _panic()
    said = str(error.value)
    label = glob if url else f"{glob} (3 files)"
    cut = f"file://{tmp_path / 'b.parquet'}" if url else str(tmp_path / "b.parquet")
    assert said.startswith(f"cannot read {label}: polars failed inside its query engine (assertion failed: "), said
    assert f"; of its files, {cut} fails to read alone; " in said, said
    assert "POLARS_ENGINE_AFFINITY=in-memory" in said, said


@pytest.mark.parametrize("cut", ["a", "b"])
def test_a_panic_reading_rows_back_names_the_source(tmp_path, cut):
    """Regression: `Ingested.rows` (validation reads the rows it quarantines back by it) collected without a word of
    a panic: a file of a Parquet glob cut short under its scan ended in polars' PanicException and a traceback. The
    glob and its number of files are named, and the file of it that fails read alone (each read after the panic)."""
    whole = _parquet(tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_bytes(whole)
    source = make_source(tmp_path / "*.parquet")
    ingested = ingest(source, None)
    written_in_place(tmp_path / f"{cut}.parquet", whole[: len(whole) // 2])
    with pytest.raises((DataValidationError, pl.exceptions.PolarsError)) as error:
        ingested.rows(pl.Series([0, 1, 9_000, 12_000]))
    said = _said(error)
    assert said.startswith(f"cannot read {tmp_path / '*.parquet'} (2 files): polars failed inside its query engine ("), said
    assert f"; of its files, {tmp_path / f'{cut}.parquet'} fails to read alone; " in said, said
    assert "POLARS_ENGINE_AFFINITY=in-memory" in said, said


@pytest.mark.parametrize("kind", ["glob", "folder", "file_glob"])
def test_an_error_reading_a_glob_names_the_file_that_fails_alone(tmp_path, monkeypatch, kind):
    """Regression (ingest53b): polars 2.1 reads a file:// glob's cut Parquet file with an ordinary ComputeError
    ('expected parquet magic bytes "PAR1" or "PARE" in footer'), not a panic, and the user was told it naming the
    glob alone (`panics_named` passes other errors unchanged); so was a local glob's or folder's file cut under its
    scan. The file that fails read alone is named, as after a panic (`Ingested.failing_file`); its files are listed
    and read again after the error only: validating the glob whole lists none of them."""
    from flowcast.config import ValidationConfig
    from flowcast.data import sources
    from flowcast.data.validate import validate

    data = tmp_path / "data"
    data.mkdir()
    whole = _parquet(data / "a.parquet")
    for name in ("b", "c"):
        (data / f"{name}.parquet").write_bytes(whole)
    path = {"glob": str(data / "*.parquet"), "folder": str(data), "file_glob": f"file://{data}/*.parquet"}[kind]
    source = make_source(path)
    listed = sources.local_files

    def not_listed(files):
        raise AssertionError(f"the files of {files} were listed again on the happy path")

    monkeypatch.setattr(sources, "local_files", not_listed)
    assert validate(ingest(source, None), source, ValidationConfig()).report.rows_in == 3 * 20 * 500
    monkeypatch.setattr(sources, "local_files", listed)
    ingested = ingest(source, None)
    written_in_place(data / "b.parquet", whole[: len(whole) // 2])
    with pytest.raises(DataValidationError) as error:
        validate(ingested, source, ValidationConfig())
    said = str(error.value)
    label = path if kind == "file_glob" else f"{path} (3 files)"
    cut = f"file://{data / 'b.parquet'}" if kind == "file_glob" else str(data / "b.parquet")
    assert said.startswith(f"cannot read {label}: "), said
    assert f"; of its files, {cut} fails to read alone" in said, said


def test_a_globs_panic_reads_again_its_local_files_alone(tmp_path, monkeypatch):
    """Regression (fixJ52): after a glob's panic each of its files was read whole again, to name the one that fails
    alone, but for https:// files only were object stores' left out: an s3:// or gs:// object was downloaded whole
    again. Only the local files are read again (the remote ones are not read at all), and the cut one is named."""
    import dataclasses

    from flowcast.data import sources

    whole = _parquet(tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_bytes(whole)
    ingested = ingest(make_source(tmp_path / "*.parquet"), None)
    remote = ["s3://bucket/c.parquet", "gs://bucket/d.parquet"]
    ingested = dataclasses.replace(ingested, files=[*remote, *ingested.files])
    real, read = sources._scan_one, []

    def scan_one(source, file):  # what the panic's reads of each file alone read (an object store: none here)
        read.append(file)
        if "://" in file:
            raise OSError(f"no object store to download {file} from in this test")
        return real(source, file)

    monkeypatch.setattr(sources, "_scan_one", scan_one)
    written_in_place(tmp_path / "b.parquet", whole[: len(whole) // 2])
    with pytest.raises(DataValidationError) as error, ingested.panics_named():
        _panic()
    assert f"; of its files, {tmp_path / 'b.parquet'} fails to read alone; " in str(error.value), str(error.value)
    assert read == [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], read


def test_a_file_probe_says_a_panic_as_an_error_naming_its_file_and_passes_other_errors(tmp_path):
    """A probe that refuses a file (`probes.refuse_no_rows`) is read through `file_probe`: a panic of its read is an
    error naming the file it was given, any other error is raised as it was. (The courtesy probes, whose hints are
    optional, take a panic in their own `except` and give no hint: test_probe_panics.py.)"""
    path = tmp_path / "sales.parquet"
    whole = _parquet(path)

    @file_probe
    def missing(file: str) -> pl.DataFrame:
        return pl.read_parquet(file)

    with pytest.raises(FileNotFoundError):
        missing(str(tmp_path / "none.parquet"))

    @file_probe
    def panicking(file: str) -> None:
        _panic()

    with pytest.raises(DataValidationError, match=r"^cannot read .*sales\.parquet: polars failed inside its query"):
        panicking(str(path))

    @file_probe
    def cut_under_its_scan(file: str) -> pl.DataFrame:
        scan = pl.scan_parquet(file)
        scan.collect_schema()  # its footer read, as a lazy scan of ingest's
        written_in_place(Path(file), whole[: len(whole) // 2])
        return scan.collect()

    with pytest.raises((DataValidationError, pl.exceptions.PolarsError)) as error:
        cut_under_its_scan(str(path))
    assert re.match(r"cannot read .*sales\.parquet: polars failed inside its query", _said(error)), error.value


def test_a_panic_while_preprocessing_names_the_stage_and_the_source():
    """A panic of polars in preprocessing's queries (a time past the calendar polars computes with, year 294,247,
    where max_length shifts a monthly series: 'invalid or out-of-range datetime') is an error naming the stage and the
    source, not a Rust backtrace and a traceback."""
    from flowcast.config import SourceConfig, load_settings
    from flowcast.data.preprocess import preprocess

    source = SourceConfig(name="shop", path="sales.csv", id_cols=["id"], time_col="date", target_col="val", freq="1mo")
    month = 31 * 86_400_000_000
    valid = pl.DataFrame({"unique_id": ["a"] * 10, "y": [float(i) for i in range(10)],
                          "ds": pl.Series([2**63 - 10 - month * k for k in range(10, 0, -1)], dtype=pl.Datetime("us"))})
    with pytest.raises(DataValidationError) as error:
        preprocess(valid, source, load_settings(horizon=2, preprocess={"max_length": 5}), None)
    said = str(error.value)
    assert said.startswith("cannot preprocess source 'shop' (sales.csv): polars failed inside its query engine ("), said
    assert "POLARS_ENGINE_AFFINITY=in-memory" in said and "split the file" not in said, said
    assert type(error.value.__cause__).__name__ == "PanicException", repr(error.value.__cause__)
