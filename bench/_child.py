"""What the data benchmarks share: a function run in a fresh child process, and that process's peak memory.

A benchmark's timed part runs alone in a new Python process (`in_child`), so that the peak resident memory it
reports (`peak_rss_mb`, read in that process) is the stage's own: not the generator's, nor the parent's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def peak_rss_mb() -> float:
    """This process's peak resident set size. VmHWM (Linux) starts afresh at exec, unlike
    ru_maxrss, which a child inherits from the process that forked it."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_cli(ap: argparse.ArgumentParser, bench: Callable[..., dict[str, Any]], keep: str) -> None:
    """A data benchmark's command line: its own options (`ap`, named as `bench`'s arguments), then --workdir and
    --keep (`keep`: what it keeps); prints what `bench` returns as ONE JSON line."""
    ap.add_argument("--workdir", default=None, help="where the generated Parquet goes (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help=keep)
    print(json.dumps(bench(**vars(ap.parse_args()))), flush=True)


@contextmanager
def work_folder(workdir: str | None, keep: bool = False) -> Iterator[Path]:
    """The folder a benchmark writes its generated file in: `workdir` (made if missing, left in place), else a new
    `flowcast-bench-*` folder in the temporary directory, removed with what it holds when the benchmark ends, a
    failed one too, unless `keep` (the generated file is kept, and its folder with it). Every run left an empty
    `/tmp/flowcast-bench-*` folder behind (fcst44)."""
    made = workdir is None
    folder = Path(workdir or tempfile.mkdtemp(prefix="flowcast-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    finally:
        if made and not keep:
            shutil.rmtree(folder, ignore_errors=True)


def in_child(module: str, func: str, *args: Any, workdir: Path) -> Any:
    """`module.func(*args)` (a module of this folder; args and result JSON values) run in a fresh Python process, its
    result read back from a JSON file in `workdir`, which is removed after. A failing child raises
    CalledProcessError."""
    fd, name = tempfile.mkstemp(prefix=f"{module}-{func}-", suffix=".json", dir=workdir)
    os.close(fd)
    out = Path(name)
    code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import {module} as b; "
            f"open({name!r}, 'w').write(json.dumps(b.{func}(*json.loads({json.dumps(args)!r}))))")
    try:
        subprocess.run([sys.executable, "-c", code], check=True)
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
