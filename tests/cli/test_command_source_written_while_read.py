"""A source file another program writes while `flowcast validate` or `flowcast train` reads it (src44): a real
command process stopped between ingest's fingerprint and validation's read (FLOWCAST_FAULT=source:ingested,
SIGSTOP), the file written, the process continued, as `tests/flows/test_source_written_while_read.py` does a run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from proc_state import replaced, write_at_each_stop, written_in_place

SRC = Path(__file__).resolve().parents[2] / "src"
N_SERIES, N_DAYS = 8, 60
FILE_OPTS = ["--id-col", "id", "--time-col", "date", "--target-col", "val", "--freq", "1d", "--horizon", "3"]


def _write(csv: Path) -> bytes:
    start = date(2020, 1, 1)
    lines = ["date,id,val"] + [f"{start + timedelta(days=d)},s{s},{s + d}" for s in range(N_SERIES)
                               for d in range(N_DAYS)]
    csv.write_text("\n".join(lines) + "\n")
    return csv.read_bytes()


def _command(cmd: str, csv: Path, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "FLOWCAST_FAULT": "source:ingested", "FLOWCAST_FAULT_SIGNAL": "SIGSTOP",
           "COLUMNS": "400", "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    extra = ["--json"] if cmd == "validate" else ["--max-steps", "1"]
    return subprocess.Popen([sys.executable, "-m", "flowcast", cmd, "--data", str(csv), *FILE_OPTS, "--home",
                             str(home), "--as-of", "2020-03-01", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("cmd", "writer"), [("validate", "done"), ("validate", "in place"),
                                             ("train", "in place"), ("train", "replacing")])
def test_a_source_written_while_a_command_reads_it_is_read_again(tmp_path, cmd, writer):
    """Regression: `flowcast validate` and `flowcast train` (`preprocess.prepare_data`) read the source once: a file
    written in place between ingest and validation (a half-written export) was validated as it stood, half its rows,
    `validate` exit 0 on half the series. They read it by the run's rule now (`source_files.read_steadily`): read again
    (a `warning:` line each time) until it stops changing, or fail after 3 reads naming the file and what to do."""
    csv = tmp_path / "sales.csv"
    old = _write(csv)
    new = old.replace(b",s0,0\n", b",s0,10\n")  # one value corrected
    half = new[: len(new) // 2]
    writes = {"done": [half, new, None], "in place": [half, half + b"1", half + b"12"], "replacing": [new, old, new]}
    proc = _command(cmd, csv, tmp_path / "home")
    write_at_each_stop(proc, csv, writes[writer], replaced if writer == "replacing" else written_in_place)
    out, err = proc.communicate(timeout=200)
    said = " ".join(err.split())
    assert "warning: Source 'sales' changed while it was read:" in said, said[-3000:]
    assert "read again in 1 s (read 2 of 3)" in said and "read again in 2 s (read 3 of 3)" in said, said[-3000:]
    if writer == "replacing":
        assert f"{csv} (replaced by another file: {len(old):,} -> {len(new):,} bytes)" in said, said[-3000:]
        assert proc.returncode == 3 and "changed while it was read, 3 times" in said
        assert "Run the same command again once it stops changing" in said
        return
    assert f"{csv} (written in place: {len(old):,} -> {len(half):,} bytes)" in said, said[-3000:]
    if writer == "in place":
        assert proc.returncode == 3, said[-3000:]
        assert "changed while it was read, 3 times" in said and "write a temp file and rename it into place" in said
        return
    assert proc.returncode == 0, said[-3000:]
    got = json.loads(out.strip().splitlines()[-1])
    assert got["status"] == "clean" and got["n_series"] == N_SERIES and got["rows_in"] == N_SERIES * N_DAYS, got


HEADER = b"date,id,val\n"


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("checked", "writer", "writes", "said"), [
    # every row validated before the flow (`validate.nothing_to_run`): the export caught truncated, then written
    ("whole", written_in_place, ["header", "file", None], "PREFECT STARTED"),
    # ... and one truncated to its header for good: the refusal of the file as it stays
    ("whole", written_in_place, ["header", None], "s.csv: no rows (the file has a header but no data)"),
    # the time column alone (`validate.nothing_observed_by`): replaced by next year's export, then put back
    ("time", replaced, ["later", "file", None], "PREFECT STARTED"),
    # one replaced again and again: left to the flow, which reads it by the same rule
    ("whole", replaced, ["later", "file", "later"], "PREFECT STARTED"),
])
def test_a_source_written_while_run_checks_it_before_prefect_is_read_again(tmp_path, checked, writer, writes, said):
    """Regression: `flowcast run`'s checks before Prefect starts (`cli.pipeline.nothing_to_run_said`) read the
    source once: a file caught truncated to its header by a writer in place was refused 'no rows', and one replaced
    meanwhile by rows all after --as-of 'all rows are after as_of', where the run, which reads again what changed
    while it was read (`source_files.read_steadily`), would have read the whole file. They read it by that rule now."""
    csv = tmp_path / "s.csv"
    contents = {"file": _write(csv), "header": HEADER, None: None}
    contents["later"] = contents["file"].replace(b"\n2020-", b"\n2021-")  # every row after --as-of 2020-03-01
    env = {**os.environ, "FLOWCAST_FAULT": "source:ingested", "FLOWCAST_FAULT_SIGNAL": "SIGSTOP", "COLUMNS": "400",
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("run_before_prefect_child.py")),
         "0" if checked == "time" else str(2**20), "run", str(csv), *FILE_OPTS, "--home", str(tmp_path / "home"),
         "--as-of", "2020-03-01"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    write_at_each_stop(proc, csv, [contents[w] for w in writes], writer)
    out, err = proc.communicate(timeout=120)
    told = " ".join((out + err).split())
    assert said in told, told[-3000:]
    assert proc.returncode == (9 if said == "PREFECT STARTED" else 2), told[-3000:]
    assert told.count("warning: Source 's' changed while it was read:") == len(writes) - 1, told[-3000:]
