"""A source file another program writes while a run reads it (faults43): a real process stopped between ingest's
fingerprint and validation's read (FLOWCAST_FAULT=source:ingested, SIGSTOP), the file written, the process continued."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from flow_helpers import tiny_toml, write_series
from proc_state import replaced, stopped, write_at_each_stop, written_in_place

from flowcast.config import load_settings
from flowcast.data.datasets import resolve_source
from flowcast.data.remote import source_fingerprint

AS_OF = datetime(2019, 6, 1)
HERE = Path(__file__).resolve().parent


def _reader(conf: Path, home: Path) -> subprocess.Popen[str]:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "FLOWCAST_FAULT": "source:ingested", "FLOWCAST_FAULT_SIGNAL": "SIGSTOP",
           "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PYTHONPATH": os.pathsep.join([str(HERE.parents[1] / "src"), str(HERE)])}
    return subprocess.Popen([sys.executable, str(HERE / "read_source_child.py"), str(conf), str(home),
                             AS_OF.isoformat()], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("writer", ["done", "in place", "replacing"])
def test_a_source_written_while_it_is_read_is_read_again(tmp_path, prefect_api, writer):
    """Regression: ingest fingerprints the file and scans it lazily; validation reads the rows later. A file written in
    place in between (a half-written export: 4 of 8 series) was validated as it stood, the run published forecasts of
    those 4 series (the others 'gone since the last publish') under the whole file's fingerprint. The files' states
    are compared after the read now: a file that changed is read again (the writer done: the whole new file, its own
    fingerprint); one that keeps changing fails the run naming it and what to do, nothing read: a writer in place is
    told to write a temp file and rename it, one that replaces the file whole to run again once it stops."""
    csv = write_series(tmp_path / "tiny.csv", n_series=8)
    conf = tmp_path / "tiny.toml"
    conf.write_text(tiny_toml(csv))
    old = csv.read_bytes()
    new = old.replace(b"S0,2011-01-01,", b"S0,2011-01-01,1").replace(b"\r\n", b"\n")  # one value corrected
    assert new != old
    half = new[: len(new) // 2]
    # what each of the 3 reads finds as validation reads it: written in place each time, or the writer done after the
    # second (the third read finds the file as the second left it), or replaced whole each time
    writes = {"done": [half, new, None], "in place": [half, half + b"1", half + b"12"], "replacing": [new, old, new]}
    reader = _reader(conf, tmp_path / "home")
    write_at_each_stop(reader, csv, writes[writer], replaced if writer == "replacing" else written_in_place)
    out, err = reader.communicate(timeout=240)
    if writer == "replacing":
        assert f"{csv} (replaced by another file: {len(old):,} -> {len(new):,} bytes)" in err
        assert reader.returncode != 0 and "changed while it was read, 3 times" in err
        assert "replaces it again and again; nothing was published. Run the same command again once it" in err
        return
    assert f"{csv} (written in place: {len(old):,} -> {len(half):,} bytes)" in err
    if writer == "in place":
        assert reader.returncode != 0
        assert "SourceUnavailableError" in err and "changed while it was read, 3 times" in err
        assert "write a temp file and rename it into place" in err
        return
    assert reader.returncode == 0, err[-3000:]
    got = json.loads(out.strip().splitlines()[-1])
    assert "read again in 1 s (read 2 of 3)" in err and "read again in 2 s (read 3 of 3)" in err
    assert got["n_series"] == 8 and got["rows_in"] == 8 * 114  # every series, 2010-01 .. 2019-06
    assert got["fingerprint"] == source_fingerprint(resolve_source(load_settings(conf, home=tmp_path / "home")))


@pytest.mark.timeout(300)
def test_a_parquet_source_cut_short_while_it_is_read_is_read_again(tmp_path, prefect_api):
    """Regression: a Parquet file written in place (pandas' `to_parquet` truncates it, then writes) found half written
    by validation's read made polars panic (PanicException, not an Exception): the run crashed with a Rust backtrace
    instead of reading the file again. Now it is read again once the writer is done, as a CSV is."""
    csv = write_series(tmp_path / "tiny.csv", n_series=8)
    parquet, whole = tmp_path / "tiny.parquet", tmp_path / "whole" / "tiny.parquet"
    whole.parent.mkdir()
    pl.read_csv(csv).write_parquet(parquet)
    pl.read_csv(csv.read_bytes().replace(b"S0,2011-01-01,", b"S0,2011-01-01,1")).write_parquet(whole)
    csv.unlink()
    conf = tmp_path / "tiny.toml"
    conf.write_text(tiny_toml(parquet))
    new = whole.read_bytes()
    reader = _reader(conf, tmp_path / "home")
    assert reader.stderr is not None
    err = ""
    try:
        assert stopped(reader), reader.communicate()
        written_in_place(parquet, new[: len(new) // 2])  # the writer half way as validation reads the file
        os.kill(reader.pid, signal.SIGCONT)
        while "read again in 1 s" not in err and (line := reader.stderr.readline()):
            err += line
        assert "read again in 1 s (read 2 of 3)" in err, err[-3000:]
        written_in_place(parquet, new)  # the writer done before the second read
        assert stopped(reader), reader.communicate()
        os.kill(reader.pid, signal.SIGCONT)
    finally:
        if reader.poll() is None:
            os.kill(reader.pid, signal.SIGCONT)
    out, rest = reader.communicate(timeout=240)
    assert reader.returncode == 0, (err + rest)[-3000:]
    got = json.loads(out.strip().splitlines()[-1])
    assert got["n_series"] == 8 and got["rows_in"] == 8 * 114
    assert got["fingerprint"] == source_fingerprint(resolve_source(load_settings(conf, home=tmp_path / "home")))
