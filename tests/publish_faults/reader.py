"""Child process for the readers-never-block test: read the whole store in a loop and check
every read.

usage: reader.py STORE N_SERIES HORIZON [--duckdb]   (reads until SIGTERM)
STORE as in publisher.py. Each read must hold, for every (dataset, as_of) it returns, exactly
N_SERIES x HORIZON rows of ONE publish (make_forecast's variant), no duplicate key, labels that
agree with the rows, and per as_of a variant never older than one seen before. --duckdb reads
through the DuckDB file's `forecasts` view instead (read-only, as the README shows), holding the
file open for the whole run. Prints "ready", then one JSON line: reads, keys seen per read,
problems (the first 20).
"""

from __future__ import annotations

import json
import signal
import sys

import polars as pl


def check(frame: pl.DataFrame, n: int, last: dict, problems: list[str]) -> int:
    keys = 0
    for (dataset, as_of), g in frame.group_by("dataset", "as_of"):
        keys += 1
        variants = (g["y_hat"] // 1_000_000).cast(pl.Int64).unique().to_list()
        where = f"{dataset} {as_of}"
        if g.height != n:
            problems.append(f"{where}: {g.height} rows, expected {n} (a partial as_of)")
        if len(variants) != 1:
            problems.append(f"{where}: a mix of publishes {sorted(variants)}")
            continue
        if g.select("unique_id", "ds").n_unique() != g.height:
            problems.append(f"{where}: duplicated (unique_id, ds)")
        if g["model_version"].unique().to_list() != [f"lstm-v{variants[0]}"]:
            problems.append(f"{where}: labels {g['model_version'].unique().to_list()} do not match variant {variants[0]}")
        if variants[0] < last.get((dataset, as_of), -1):
            problems.append(f"{where}: went back from variant {last[(dataset, as_of)]} to {variants[0]}")
        last[(dataset, as_of)] = variants[0]
    return keys


def main() -> None:
    spec, n_s, h_s = sys.argv[1:4]
    via_duckdb = "--duckdb" in sys.argv[4:]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))  # finish the read under way, then report
    n = int(n_s) * int(h_s)
    if via_duckdb:
        import duckdb

        con = duckdb.connect(spec.rstrip("/") + "/forecasts.duckdb", read_only=True)
        read = lambda: pl.from_arrow(con.sql("SELECT * FROM forecasts").to_arrow_table())
    else:
        sys.path.insert(0, __file__.rsplit("/", 1)[0])
        from publisher import store_from_arg

        store = store_from_arg(spec)
        read = store.read
    print("ready", flush=True)
    reads, keys, problems, last = 0, [], [], {}
    while not stop:
        try:
            frame = read()
        except Exception as exc:  # noqa: BLE001 - a failed read is a finding, reported with the others
            problems.append(f"read failed: {type(exc).__name__}: {exc}")
            continue
        keys.append(check(frame, n, last, problems))
        reads += 1
    print(json.dumps({"reads": reads, "min_keys": min(keys, default=0), "max_keys": max(keys, default=0),
                      "problems": problems[:20], "n_problems": len(problems),
                      "last": {f"{d} {a}": v for (d, a), v in last.items()}}), flush=True)


if __name__ == "__main__":
    main()
