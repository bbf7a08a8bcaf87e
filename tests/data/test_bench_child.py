"""bench/_child.py, what the data benchmarks share: a function run in a fresh process, its JSON result read back and
its file removed, and a peak resident memory that is the child's own (not its parent's, which `fork` hands down)."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


def test_a_child_reports_its_own_peak_memory_and_leaves_no_file(tmp_path):
    import _child

    held = bytearray(256 * 2**20)  # the parent's peak is at least this, a fresh interpreter's far below it
    held[:: 4096] = b"x" * len(held[:: 4096])  # touched, so resident
    parent = _child.peak_rss_mb()
    child = _child.in_child("_child", "peak_rss_mb", workdir=tmp_path)
    assert isinstance(child, float) and 0 < child < parent - 200, (child, parent)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_child_raises_and_leaves_no_file(tmp_path):
    import _child

    with pytest.raises(subprocess.CalledProcessError):
        _child.in_child("_child", "no_such_function", "an argument", workdir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [(), ("s", 1, 2.5, None, [1, "two"])])
def test_a_childs_arguments_and_result_go_through_json(tmp_path, args):
    import _child

    assert _child.in_child("json", "dumps", list(args), workdir=tmp_path) == json.dumps(list(args))


def test_a_benchmarks_command_line_gives_its_options_workdir_and_keep_and_prints_one_json_line(monkeypatch, capsys):
    import argparse

    import _child

    def bench(series: int, freq: str, workdir: str | None = None, keep: bool = False) -> dict:
        return {"series": series, "freq": freq, "workdir": workdir, "keep": keep}

    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=3)
    ap.add_argument("--freq", default="1h")
    monkeypatch.setattr(sys, "argv", ["bench", "--freq", "1d", "--keep"])
    _child.bench_cli(ap, bench, keep="keep the generated file")
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [{"series": 3, "freq": "1d", "workdir": None, "keep": True}]
    assert "keep the generated file" in ap.format_help() and "--workdir" in ap.format_help()


@pytest.mark.parametrize(("given", "keep", "fails", "left"), [
    (False, False, False, False), (False, False, True, False),  # its own folder: removed, after a failure too
    (False, True, False, True),  # --keep: the generated file kept, its folder with it
    (True, False, False, True), (True, False, True, True),  # --workdir: the folder given stays
])
def test_a_benchmarks_own_work_folder_is_removed_when_it_ends(tmp_path, monkeypatch, given, keep, fails, left):
    """fcst44: bench/preprocess.py left an empty /tmp/flowcast-bench-* folder behind every run."""
    import tempfile

    import _child

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    workdir = str(tmp_path / "given") if given else None
    seen: list = []
    with pytest.raises(RuntimeError) if fails else nullcontext(), _child.work_folder(workdir, keep) as folder:
        seen.append(folder)
        (folder / "bench.parquet").write_bytes(b"x")
        if fails:
            raise RuntimeError("the bench failed")
    (folder,) = seen
    assert folder.is_dir() == left, folder
    assert given or folder.name.startswith("flowcast-bench-") and folder.parent == tmp_path / "tmp"
