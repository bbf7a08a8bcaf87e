"""Benchmark: the content fingerprint of a local source file; prints ONE JSON line.

    python bench/fingerprint.py [--mb 256]

Writes a file of `--mb` MB of CSV-like bytes, then times `remote.source_fingerprint` twice in
one process: `first_s` digests every byte (blake2b), `again_s` finds the digest remembered for
the file's unchanged (size, mtime, ctime, inode). Output keys: mb, first_s, mb_per_s, again_s.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from flowcast.config import SourceConfig
from flowcast.data.remote import source_fingerprint


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=256)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        line = b"2020-01-01T00:00:00,series_0001,12345.678\n"
        block = line * ((1 << 20) // len(line))
        with open(path, "wb") as fh:
            fh.write(b"date,id,val\n")
            fh.writelines(block for _ in range(args.mb))
        src = SourceConfig(name="bench", path=str(path), id_cols=["id"], time_col="date", target_col="val", freq="1h")
        t0 = time.perf_counter()
        source_fingerprint(src)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        source_fingerprint(src)
        again = time.perf_counter() - t0
        size_mb = os.path.getsize(path) / (1 << 20)
    print(json.dumps({"mb": round(size_mb, 1), "first_s": round(first, 3), "mb_per_s": round(size_mb / first, 1),
                      "again_s": round(again, 5)}))


if __name__ == "__main__":
    main()
