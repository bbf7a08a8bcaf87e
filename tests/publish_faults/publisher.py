"""Child process for the store's kill and concurrency tests: publish one deterministic forecast
(or loop publishing).

usage: publisher.py STORE DATASET AS_OF VARIANT N_SERIES HORIZON [--loop] [--noise] [--fsize BYTES]
                    [--no-link ERRNO]
STORE is a folder (the embedded store there), a JSON object of `[store]` settings (url,
storage_options, pg_schema, lock_timeout), or {"shared": URL, "shared_options": {...}, "store": {...}} (a shared
home: its warehouse, with those `[store]` settings), opened with flowcast.store.open_store like a flow does.
VARIANT picks the values (y_hat = variant * 1e6 + series index + step / 100) so that a reader
can tell which publish it sees; --noise makes a big file for the multipart-upload test (long
random ids, ~300 incompressible bytes a series, and noise below 1e-3 in the values). --fsize BYTES: no file
written past BYTES (RLIMIT_FSIZE: each write beyond fails with EFBIG, as on a full disk); the receipt's notes are
printed, one `note ...` line each, after its `published` line. --no-link ERRNO (x86-64 Linux): every hard link
this process makes fails with that error (EPERM, EOPNOTSUPP, ENOSYS: a file system without hard links; a seccomp
filter, so the kernel itself answers link(2) and linkat(2) so). --loop
publishes variants VARIANT, VARIANT+1, ... forever (the
parent SIGKILLs it, or stops it with SIGTERM). FLOWCAST_FAULT=publish:<point> makes the store
SIGKILL this process at that point.
"""

from __future__ import annotations

import base64
import ctypes
import errno
import json
import os
import resource
import signal
import sys
import tempfile
from datetime import datetime, timedelta

import numpy as np
import polars as pl


def make_forecast(variant: int, n_series: int, horizon: int, start: datetime, noise: bool = False) -> pl.DataFrame:
    names = [f"s{i:05d}" for i in range(n_series)]
    if noise:  # long random ids (the same for every variant): ~300 incompressible bytes a series
        rng = np.random.default_rng(0)
        names = [f"{n}-{base64.urlsafe_b64encode(rng.bytes(280)).decode()}" for n in names]
    ids = pl.DataFrame({"unique_id": names, "idx": list(range(n_series))})
    steps = pl.DataFrame({"step": pl.Series(range(1, horizon + 1), dtype=pl.Int32)})
    fc = (
        ids.join(steps, how="cross")
        .with_columns(
            (pl.lit(start) + pl.duration(days=pl.col("step"))).cast(pl.Datetime("us")).alias("ds"),
            (variant * 1_000_000 + pl.col("idx") + pl.col("step") / 100).cast(pl.Float64).alias("y_hat"),
        )
    )
    if noise:
        fc = fc.with_columns(pl.col("y_hat") + pl.Series(np.random.default_rng(variant).uniform(0, 1e-3, fc.height)))
    return (
        fc.with_columns((pl.col("y_hat") - 1).alias("y_hat_q10"), (pl.col("y_hat") + 1).alias("y_hat_q90"))
        .select("unique_id", "ds", "step", "y_hat", "y_hat_q10", "y_hat_q90")
    )


def refuse_links(code: int) -> None:
    """Make link(2) and linkat(2) of this process fail with errno `code` from here on, as a file system without hard
    links answers them (vfat EPERM, CIFS EOPNOTSUPP, sshfs without its hardlink extension ENOSYS): a seccomp filter
    (x86-64 Linux; SECCOMP_MODE_FILTER needs no privilege once PR_SET_NO_NEW_PRIVS is set)."""
    ld, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
    allow, fail = 0x7FFF0000, 0x00050000 | code  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | errno
    link, linkat, x86_64 = 86, 265, 0xC000003E  # syscall numbers; AUDIT_ARCH_X86_64
    prog = [(ld, 0, 0, 4), (jeq, 0, 3, x86_64), (ld, 0, 0, 0), (jeq, 2, 0, link), (jeq, 1, 0, linkat),
            (ret, 0, 0, allow), (ret, 0, 0, fail)]

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(prog))(*[Filter(*f) for f in prog])
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if (libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0
            or libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(Program(len(prog), filters)), 0, 0) != 0):
        raise OSError(ctypes.get_errno(), "could not install the seccomp filter")


def store_from_arg(arg: str):
    """A folder -> EmbeddedStore(folder); a JSON object -> open_store with that [store] section."""
    from flowcast.config import load_settings
    from flowcast.store import EmbeddedStore, open_store

    if arg.lstrip().startswith("{"):
        # home only names defaults (warehouse, registry) that a url-configured store never writes to
        home = os.path.join(tempfile.gettempdir(), "flowcast-child-home-unused")
        spec = json.loads(arg)
        if "shared" in spec:  # a shared home: the store is its warehouse (flowcast.shared)
            return open_store(load_settings(home=home, shared=spec["shared"], shared_options=spec["shared_options"],
                                            store=spec.get("store")))
        return open_store(load_settings(home=home, store=spec))
    return EmbeddedStore(arg)


def main() -> None:
    store_arg, dataset, as_of_s, variant_s, n_s, h_s = sys.argv[1:7]
    loop = "--loop" in sys.argv[7:]
    noise = "--noise" in sys.argv[7:]
    if "--fsize" in sys.argv[7:]:
        size = int(sys.argv[sys.argv.index("--fsize") + 1])
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))  # Python ignores SIGXFSZ: writes fail with EFBIG
    if "--no-link" in sys.argv[7:]:
        try:
            refuse_links(getattr(errno, sys.argv[sys.argv.index("--no-link") + 1]))
        except OSError as exc:  # a kernel without seccomp filters: the parent skips its test
            sys.exit(f"no seccomp filter: {exc}")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))  # finish the publish under way, then stop
    as_of = datetime.fromisoformat(as_of_s)
    store = store_from_arg(store_arg)
    variant = int(variant_s)
    while True:
        fc = make_forecast(variant, int(n_s), int(h_s), as_of, noise=noise)
        r = store.publish(fc, dataset=dataset, as_of=as_of, model="lstm", model_version=f"lstm-v{variant}",
                          run_id=f"run-{variant}", created_at=as_of + timedelta(hours=1), horizon=int(h_s))
        print(f"published {variant} {r.content_hash}", flush=True)
        for note in r.notes:
            print(f"note {note}", flush=True)
        if not loop or stop:
            break
        variant += 1


if __name__ == "__main__":
    main()
