"""Random kills of real `flowcast` commands, checked after the kill and after a re-run.

Each trial copies a prepared home (a tiny generated monthly dataset, damped in production, as_of 2019-01-01
published; for `accuracy`, a later forecast has scored it), starts one command in its own session, sends
SIGKILL to the process group after a random delay (uniform over the clean run's duration), and checks the
home: every JSON file of the registry, publish records, accuracy verdicts and flow-run records parses; the
production pointer names a version whose files load; `flowcast forecasts --verify` and `flowcast accuracy`
exit 0; every published (dataset, as_of) holds 48 rows, no duplicate (dataset, as_of, unique_id, ds) in the
store or in the DuckDB view, no duplicate (dataset, as_of, model, step) in the realized table; no process of
the home is left. Then the same command runs again (no kill) and must exit 0 and leave the clean run's
counts. A full-disk round (`--enospc`) runs each command on a home whose `warehouse/`, `models/`, `cache/`
or `runs/` is a tmpfs with 4 or 40 KB free beyond what it holds (root only) instead of killing it.

Prints one JSON line per trial and a summary line. Usage:
    python bench/faults_kill.py [--commands run,forecast,backfill,accuracy] [--trials 4] [--seed 17] [--enospc] [--max-steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# the flow tests' data (8 seasonal monthly series of 10 years) and settings (one small gru trained inline): one
# definition, `tests/flows/flow_helpers.py` (this bench had its own copy of both)
sys.path.insert(0, str(ROOT / "tests" / "flows"))
FLOWCAST = [sys.executable, "-m", "flowcast"]
ROWS = 48  # 8 series x horizon 6
BASE_AS_OF = "2019-01-01"

COMMANDS: dict[str, list[str]] = {
    "run": ["run", "--as-of", "2019-04-01"],
    "forecast": ["forecast", "--as-of", "2019-07-01"],
    "backfill": ["backfill", "--start", "2019-02-01", "--end", "2019-04-01", "--every", "1mo"],
    "accuracy": ["accuracy"],
}


def cli(home: Path, conf: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FLOWCAST, *args, *_named(args), "--config", str(conf), "--home", str(home)], capture_output=True,
                          text=True, timeout=timeout, env=_env(), check=False)


def _named(args: tuple[str, ...] | list[str]) -> list[str]:
    """--dataset tiny: every command this bench runs takes it (`models list`, `forecasts --verify` too)."""
    return ["--dataset", "tiny"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWCAST_", "PREFECT_API"))}
    env["PYTHONPATH"] = f"{ROOT / 'src'}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _tail(text: str, n: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-n:])[:400]


def check(home: Path, conf: Path, final: bool = False) -> dict[str, Any]:
    """What a tester looks at after a fault; `problems` lists every broken promise. `final` (after the re-run): each
    published as_of also has one publish record, of the publish the store holds (its run and content hash), that
    says nothing of it is left undone (no `saying`: its plot, receipt and event left), and the registry holds one
    production pointer (`models/production.json`, no temp copy beside it)."""
    import duckdb
    import polars as pl

    problems: list[str] = []
    temps = sorted(str(p.relative_to(home)) for p in home.rglob("*")
                   if p.is_file() and ".tmp" in p.name and "runs" not in p.parts)
    for p in home.rglob("*.json"):
        if "runs" in p.parts or ".tmp" in p.name:
            continue
        try:
            json.loads(p.read_text())
        except (ValueError, OSError) as e:
            problems.append(f"torn json {p.relative_to(home)}: {e}")
    views = home / "warehouse" / "forecasts.duckdb"
    if views.exists():
        try:
            con = duckdb.connect(str(views), read_only=True)
            dup = con.execute("select count(*) from (select dataset, as_of, unique_id, ds, count(*) c from forecasts "
                              "group by all having c > 1)").fetchone()
            con.close()
            if dup and dup[0]:
                problems.append(f"duckdb view: {dup[0]} duplicated keys")
        except duckdb.Error as e:  # a copied home's views name the original until a command opens the store
            if "this file is a copy or was moved" not in str(e):  # (README, "A home moved or copied away")
                problems.append(f"duckdb view: {str(e)[:200]}")
    verify = cli(home, conf, "forecasts", "--verify")
    if verify.returncode not in (0,) and "no published forecasts" not in verify.stdout + verify.stderr:
        problems.append(f"forecasts --verify rc={verify.returncode}: {_tail(verify.stdout + verify.stderr)}")
    sys.path.insert(0, str(ROOT / "src"))
    from flowcast.cli.common import resolve_settings
    from flowcast.shared import open_registry
    from flowcast.store import open_store

    settings = resolve_settings(config=conf, home=home)
    store = open_store(settings)
    counts: dict[str, int] = {}
    try:
        frame = store.read(dataset="tiny")
        if frame.height:
            per = frame.group_by("as_of").agg(pl.len().alias("n"), pl.struct("unique_id", "ds").n_unique().alias("u"))
            for r in per.to_dicts():
                counts[str(r["as_of"])[:10]] = r["n"]
                if r["n"] != ROWS or r["u"] != r["n"]:
                    problems.append(f"as_of {r['as_of']}: {r['n']} rows, {r['u']} distinct")
        realized = store.read_realized("tiny")
        if realized.height:
            d = realized.group_by("as_of", "model", "step").len().filter(pl.col("len") > 1)
            if d.height:
                problems.append(f"realized: {d.height} duplicated (as_of, model, step)")
        n_realized = realized.height
    except Exception as e:  # noqa: BLE001 - a tester's probe: every failure is a finding
        problems.append(f"store read: {type(e).__name__}: {str(e)[:200]}")
        n_realized = -1
    try:
        reg = open_registry(settings)
        prod = reg.production("tiny")
        if prod is not None:
            reg.get(prod.version)
        versions = [v.version for v in reg.list(dataset="tiny")]
    except Exception as e:  # noqa: BLE001
        problems.append(f"registry: {type(e).__name__}: {str(e)[:200]}")
        prod, versions = None, []
    if final:
        problems += _records_and_pointer(home, store, versions)
    acc = cli(home, conf, "accuracy", "--json")
    if acc.returncode != 0:
        problems.append(f"accuracy rc={acc.returncode}: {_tail(acc.stdout + acc.stderr)}")
    models = cli(home, conf, "models", "list", "--json")
    if models.returncode != 0:
        problems.append(f"models list rc={models.returncode}: {_tail(models.stdout + models.stderr)}")
    left = subprocess.run(["pgrep", "-f", str(home)], capture_output=True, text=True, check=False).stdout.split()
    if left:
        problems.append(f"processes left: {left}")
    return {"as_ofs": counts, "realized": n_realized, "production": prod.version if prod else None,
            "versions": versions, "temps": temps, "problems": problems}


def _records_and_pointer(home: Path, store: Any, registered: list[str]) -> list[str]:
    """`check`'s final promises: one publish record per published as_of, of that publish, nothing left undone, by a
    version the registry lists (`registered`); one production pointer."""
    from flowcast.ops.quiet import fingerprint_path

    problems: list[str] = []
    for when in store.as_ofs("tiny"):
        path = fingerprint_path(home, "tiny", when)
        held = store.receipt_of("tiny", when)
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            problems.append(f"as_of {when:%Y-%m-%d}: no publish record ({type(e).__name__})")
            continue
        if rec.get("content_hash") != held.get("content_hash") or rec.get("run_id") != held.get("run_id"):
            problems.append(f"as_of {when:%Y-%m-%d}: the record is of run {rec.get('run_id')}, the store holds "
                            f"run {held.get('run_id')}'s publish")
        version = held.get("model_version")
        if version and version not in registered:  # registry and store agree: a published version is listed
            problems.append(f"as_of {when:%Y-%m-%d}: published by {version}, which the registry does not list")
        if rec.get("saying"):
            problems.append(f"as_of {when:%Y-%m-%d}: the record says run {rec['saying']} is still to leave its "
                            "plot, receipt and event")
    pointers = sorted(p.name for p in (home / "models").glob("*production*.json*"))
    if "production.json" not in pointers:
        problems.append(f"production pointer: {pointers or 'none'}")
    return problems


def prepare(work: Path, max_steps: int = 30) -> tuple[Path, Path, Path]:
    from flow_helpers import tiny_toml, write_series

    csv = work / "tiny.csv"
    write_series(csv, n_series=ROWS // 6)
    conf = work / "tiny.toml"
    conf.write_text(tiny_toml(csv, max_steps=max_steps, checkpoint_every=5))
    base = work / "base"
    r = cli(base, conf, "run", "--as-of", BASE_AS_OF)
    assert r.returncode == 0, r.stdout + r.stderr
    scored = work / "scored"
    shutil.copytree(base, scored, symlinks=True)
    r = cli(scored, conf, "forecast", "--as-of", "2019-07-01")
    assert r.returncode == 0, r.stdout + r.stderr
    return conf, base, scored


def start(home: Path, conf: Path, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen([*FLOWCAST, *args, *_named(args), "--config", str(conf), "--home", str(home)], stdout=fh,
                                stderr=subprocess.STDOUT, env=_env(), start_new_session=True)


def trial(name: str, conf: Path, base: Path, work: Path, delay: float | None, idx: int,
          tmpfs: tuple[str, int] | None = None) -> dict[str, Any]:
    home = work / f"{name}-{idx}"
    shutil.copytree(base, home, symlinks=True)
    mounted = None
    if tmpfs:
        sub, kb = tmpfs
        mounted = home / sub
        keep = work / f"keep-{idx}"
        shutil.move(str(mounted), keep) if mounted.exists() else keep.mkdir()
        mounted.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", str(mounted)], check=True)
        subprocess.run(["cp", "-a", f"{keep}/.", str(mounted)], check=True)
        used = os.statvfs(mounted)
        used_kb = (used.f_blocks - used.f_bfree) * used.f_frsize // 1024
        subprocess.run(["mount", "-o", f"remount,size={used_kb + kb}k", str(mounted)], check=True)  # kb free
    log = work / f"{name}-{idx}.log"
    t0 = time.monotonic()
    proc = start(home, conf, COMMANDS[name], log)
    killed = False
    try:
        proc.wait(timeout=delay if delay is not None else 900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        killed = True
    took = round(time.monotonic() - t0, 1)
    time.sleep(3)  # the watchdog's reaping
    text = log.read_text(errors="replace")
    after = check(home, conf)
    if mounted is not None:  # room again: the whole folder back on the real disk
        keep2 = work / f"keep2-{idx}"
        subprocess.run(["cp", "-a", f"{mounted}/.", f"{keep2}/"], check=False) if keep2.mkdir() is None else None
        subprocess.run(["umount", str(mounted)], check=True)
        mounted.rmdir()
        shutil.move(str(keep2), mounted)
    rerun = cli(home, conf, *COMMANDS[name])
    time.sleep(3)  # its watchdog's exit
    final = check(home, conf, final=True)
    final["problems"] += claims(name, after["as_ofs"], rerun.stdout + rerun.stderr)
    out = {"command": name, "trial": idx, "delay_s": delay, "killed": killed, "rc": proc.returncode,
           "took_s": took, "log_tail": _tail(text, 2), "after": after, "rerun_rc": rerun.returncode,
           "rerun_tail": _tail(rerun.stdout + rerun.stderr, 2), "final": final}
    if tmpfs:
        out["tmpfs"] = f"{tmpfs[0]} {tmpfs[1]}k"
    return out


def claims(name: str, held: dict[str, int], said: str) -> list[str]:
    """The re-run's words against what the home held before it (`held`: as_of -> rows): it says an as_of was
    published already only where one was, and a backfill skips as many dates as were held in its range."""
    args = COMMANDS[name]
    if name == "backfill":
        lo, hi = args[args.index("--start") + 1], args[args.index("--end") + 1]
        were = sum(lo <= a <= hi for a in held)
        m = re.search(r"(\d+) to run, (\d+) already published", said)  # the backfill flow's log line
        if m is None:
            return [f"re-run: no 'N to run, M already published' in its output: {_tail(said)}"]
        return [] if int(m.group(2)) == were else [f"re-run said {m.group(2)} skipped, {were} were published before it"]
    if "--as-of" not in args:
        return []
    when = args[args.index("--as-of") + 1]
    says = re.search(r"already published|published already|publishes nothing", said) is not None
    return [f"re-run says {when} was published already; it was not"] if says and when not in held else []


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commands", default="run,forecast,backfill,accuracy")
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--enospc", action="store_true", help="full-disk trials (tmpfs mounts: root only)")
    ap.add_argument("--subs", default="warehouse,models,cache,runs", help="--enospc: the folders made full")
    ap.add_argument("--work", default=None)
    ap.add_argument("--max-steps", type=int, default=30, help="the gru's training steps")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    work = Path(a.work or tempfile.mkdtemp(prefix="faults-"))
    work.mkdir(parents=True, exist_ok=True)
    conf, base, scored = prepare(work, a.max_steps)
    bad = 0
    idx = 0
    for name in a.commands.split(","):
        src = scored if name == "accuracy" else base
        idx += 1
        clean = trial(name, conf, src, work, None, idx)
        print(json.dumps({"clean": True, **clean}, default=str), flush=True)
        span = max(clean["took_s"], 2.0)
        plans: list[tuple[float | None, tuple[str, int] | None]]
        if a.enospc:
            plans = [(None, (sub, kb)) for sub in a.subs.split(",") for kb in (4, 40)]
        else:
            plans = [(round(rng.uniform(0.5, span), 2), None) for _ in range(a.trials)]
        for delay, tmpfs in plans:
            idx += 1
            res = trial(name, conf, src, work, delay, idx, tmpfs)
            res["expected"] = clean["final"]["as_ofs"]
            if res["final"]["as_ofs"] != clean["final"]["as_ofs"] or res["rerun_rc"] != 0:
                res["final"]["problems"].append("re-run differs from a clean run")
            if len(res["final"]["versions"]) != len(clean["final"]["versions"]):  # a version registered twice
                res["final"]["problems"].append(f"versions {res['final']['versions']}, a clean run leaves "
                                                f"{clean['final']['versions']}")
            bad += bool(res["after"]["problems"] or res["final"]["problems"])
            print(json.dumps(res, default=str), flush=True)
    print(json.dumps({"summary": True, "trials": idx, "with_problems": bad, "work": str(work)}), flush=True)


if __name__ == "__main__":
    main()
