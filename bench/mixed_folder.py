"""Benchmark: a folder of small CSV files, some dated day first and some month first; prints ONE JSON line.

    python bench/mixed_folder.py --files 200 --series 3 --steps 60 [--freq 1d] [--day-first 0.5] [--given-freq]

The folder is generated first: `files` CSV files of `series` series x `steps` periods each (daily or hourly from
2026-01-12 12:00), the first `day_first` share of them writing dates day first ('31/01/2026', '31/01/2026 13:00') and the
rest month first ('01/31/2026'), every file settling its own order (a day above 12). `--day-first 0` or `1` is the
same-order folder to compare with. The timed part runs in a fresh child process, as `flowcast run --data
'folder/*.csv'` reads it: the frequency read off the dates (`freq_infer.explain_freq`, skipped with --given-freq, as
when --freq is passed), the command's check before its flow (`validate.nothing_to_run`: ingest + validate), then the
flow's ingest + validate. `peak_rss_mb` is that process's peak resident memory.

Output keys: files, rows, freq, day_first, seconds (all stages), stage_seconds {explain_freq, nothing_to_run,
ingest_validate}, rows_valid, rows_quarantined, inferred, peak_rss_mb, base_rss_mb, gen_seconds, load_avg, cpus.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _child import (  # the benchmarks' shared module, beside this one
    bench_cli,
    in_child,
    peak_rss_mb,
    work_folder,
)

_START = datetime(2026, 1, 12, 12)  # (an hourly file of 12 hours or more reaches the 13th: it settles its order)


def _stamp(t: datetime, day_first: bool, hourly: bool) -> str:
    """`t` as a day-first ('31/01/2026') or month-first ('01/31/2026') date, with its hour ('13:00') when `hourly`."""
    text = t.strftime("%d/%m/%Y" if day_first else "%m/%d/%Y")
    return f"{text} {t:%H:%M}" if hourly else text


def generate(folder: str, files: int, series: int, steps: int, freq: str, day_first: float) -> int:
    """Write the folder's `files` CSV files (store, date, sales); returns the rows written."""
    hourly = freq == "1h"
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    rows = 0
    for f in range(files):
        first = f < round(files * day_first)
        lines = ["store,date,sales"]
        for s in range(series):
            for k in range(steps):
                lines.append(f"f{f:03d}s{s},{_stamp(_START + k * step, first, hourly)},{100 + (k * 7 + s) % 13}")
        Path(folder, f"part{f:03d}.csv").write_text("\n".join(lines) + "\n")
        rows += series * steps
    return rows


def run_stage(folder: str, freq: str, given_freq: bool) -> dict:
    """The timed part (runs in the child): as `flowcast run --data 'folder/*.csv'` reads and validates it."""
    import polars as pl  # noqa: F401  imports before the baseline

    from flowcast.config import SourceConfig, load_settings
    from flowcast.data.freq_infer import Inferred, explain_freq
    from flowcast.data.sources import ingest
    from flowcast.data.validate import nothing_to_run, validate

    base = peak_rss_mb()
    settings = load_settings(config_file=None)
    path = str(Path(folder) / "*.csv")
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    inferred = None
    if not given_freq:  # (`cli.common._inferred_freq`: the probe's declaration, its freq a placeholder)
        probe = SourceConfig(name="bench", path=path, id_cols=["store"], time_col="date", target_col="sales", freq="1d")
        found = explain_freq(probe, None)
        inferred = found.freq if isinstance(found, Inferred) else found
    t1 = time.perf_counter()
    src = SourceConfig(name="bench", path=path, id_cols=["store"], time_col="date", target_col="sales", freq=freq)
    said = nothing_to_run(src, None, settings.validation)
    t2 = time.perf_counter()
    result = validate(ingest(src, None), src, settings.validation)
    t3 = time.perf_counter()
    stages = {"explain_freq": round(t1 - t0, 3), "nothing_to_run": round(t2 - t1, 3),
              "ingest_validate": round(t3 - t2, 3)}
    return {
        "seconds": t3 - t0,
        "stage_seconds": stages,
        "rows_read": result.report.rows_read,
        "rows_valid": result.report.rows_valid,
        "rows_quarantined": result.report.rows_quarantined,
        "inferred": inferred,
        "refused": said,
        "peak_rss_mb": peak_rss_mb(),
        "base_rss_mb": base,
    }


def bench(files: int, series: int, steps: int, freq: str = "1d", day_first: float = 0.5, given_freq: bool = False,
          workdir: str | None = None, keep: bool = False) -> dict:
    if freq not in ("1d", "1h"):
        raise SystemExit(f"--freq {freq}: this benchmark writes daily (1d) or hourly (1h) files")
    with work_folder(workdir, keep) as tmp:
        folder = tmp / "mixed"
        folder.mkdir(exist_ok=True)
        t = time.perf_counter()
        rows = generate(str(folder), files, series, steps, freq, day_first)
        gen = time.perf_counter() - t
        stage = in_child("mixed_folder", "run_stage", str(folder), freq, given_freq, workdir=tmp)
    return {
        "files": files,
        "rows": rows,
        "freq": freq,
        "day_first": day_first,
        "seconds": round(stage["seconds"], 3),
        "stage_seconds": stage["stage_seconds"],
        "rows_read": stage["rows_read"],
        "rows_valid": stage["rows_valid"],
        "rows_quarantined": stage["rows_quarantined"],
        "inferred": stage["inferred"],
        "refused": stage["refused"],
        "peak_rss_mb": round(stage["peak_rss_mb"], 1),
        "base_rss_mb": round(stage["base_rss_mb"], 1),
        "gen_seconds": round(gen, 2),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--series", type=int, default=3)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--freq", default="1d", help="1d or 1h")
    ap.add_argument("--day-first", type=float, default=0.5, help="share of the files written day first")
    ap.add_argument("--given-freq", action="store_true", help="skip reading the frequency off the dates (--freq given)")
    bench_cli(ap, bench, keep="keep the generated folder")


if __name__ == "__main__":
    main()
