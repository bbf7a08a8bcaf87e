"""Multi-node training: torchrun's rendezvous, and how the other nodes learn what to train.

With `[distributed] launcher = "rendezvous"` every training (each backtest fit and each final
fit of a retrain) is one torchrun job over `nnodes` machines:

    torchrun --nnodes N --nproc-per-node D --node-rank R --rdzv-backend c10d
             --rdzv-endpoint HOST:PORT --rdzv-id <rdzv_id>-<job> -m flowcast.models.train_entry ...

Node 0 is the machine whose flow trains: `train_model` posts the job to the jobs folder (a
folder every node sees: `distributed.jobs_dir`, else shared/runs/jobs, else home/runs/jobs),
then starts node 0's torchrun agent. Every other node runs `flowcast train-node --node-rank R`
(`serve_jobs`): it waits for posted jobs, copies each job's training data and model settings to
its own home, and starts its torchrun agent for it; the agents meet at the rendezvous, DDP
averages the gradients (identical weights on every rank) and rank 0 writes the artifact on
node 0. Under SLURM, deployments/slurm/train.sbatch starts the same agents with srun.

A job folder `<jobs>/<rdzv_id>/<seq>-<cell>-<token>/` holds `data/` (TrainingData),
`config.json` (ModelConfig) and `job.json` (written last: the job is complete), then
`ranks/rank-<global rank>.json` (each rank's report: node, world size, steps, a digest of its
final weights) and `status.json` (node 0: ok or failed). A joining node takes the oldest job
without a status that it has not run yet, so a node that starts late catches up and a job whose
node 0 died is tried once and then skipped. `flowcast train-node --stop` (node 0, after its
flow) writes `<jobs>/<rdzv_id>/STOP`: joining nodes exit once no job is pending.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowcast.config import DistributedConfig
from flowcast.errors import TrainingError
from flowcast.store.fs import FileStore

log = logging.getLogger(__name__)
JOB_FILE = "job.json"
STATUS_FILE = "status.json"
STOP_FILE = "STOP"  # <jobs>/<rdzv_id>/STOP: node 0 is done, joining nodes exit once no job is pending


def rendezvous_command(dist: DistributedConfig, *, nproc: int, node_rank: int, rdzv_id: str,
                       args: list[str]) -> list[str]:
    """The torchrun command of one node of a multi-node job. Node 0 hosts the rendezvous store
    at rdzv_endpoint (is_host), the others only connect to it: left to guess, a joining agent on
    the endpoint's machine could host it and take it down when it exits first."""
    assert dist.rdzv_endpoint is not None
    host = "true" if node_rank == 0 else "false"
    return [sys.executable, "-m", "torch.distributed.run", f"--nnodes={dist.nnodes}", f"--nproc-per-node={nproc}",
            f"--node-rank={node_rank}", f"--rdzv-backend={dist.rdzv_backend}", f"--rdzv-endpoint={dist.rdzv_endpoint}",
            f"--rdzv-id={rdzv_id}", f"--rdzv-conf=join_timeout={dist.rdzv_timeout},is_host={host}", "-m",
            "flowcast.models.train_entry", *args]


def _jobs(location: str, storage_options: dict[str, Any] | None, dist: DistributedConfig) -> FileStore:
    return FileStore(f"{location.rstrip('/')}/{dist.rdzv_id}", storage_options=storage_options)


@dataclass
class PostedJob:
    name: str
    rdzv_id: str
    files: FileStore

    def report_rank(self, report_dir: Path) -> None:
        """Copy this node's rank reports (train_entry --report) into the job folder."""
        for p in sorted(Path(report_dir).glob("rank-*.json")):
            self.files.put_file(p, f"{self.name}/ranks/{p.name}")

    def finish(self, ok: bool, message: str = "") -> None:
        self.files.write_text(f"{self.name}/{STATUS_FILE}", json.dumps({"ok": ok, "message": message[-2000:]}))

    def ranks(self) -> list[dict[str, Any]]:
        """Every rank report of this job, by global rank."""
        out = [json.loads(self.files.read_text(f"{self.name}/ranks/{n}")) for n in self.files.list(f"{self.name}/ranks")]
        return sorted(out, key=lambda r: r["global_rank"])


def post_job(location: str, dist: DistributedConfig, *, data_dir: Path, config_file: Path, cell: str,
             storage_options: dict[str, Any] | None = None) -> PostedJob:
    """Node 0: publish one training job for the other nodes (see module doc)."""
    files = _jobs(location, storage_options, dist)
    seqs = [int(n.split("-", 1)[0]) for n in files.list() if n.split("-", 1)[0].isdigit()]
    name = f"{max(seqs, default=0) + 1:06d}-{cell}-{uuid.uuid4().hex[:8]}"
    files.put_dir(data_dir, f"{name}/data")
    files.put_file(config_file, f"{name}/config.json")
    rdzv_id = f"{dist.rdzv_id}-{name}"
    spec = {"job": name, "cell": cell, "rdzv_id": rdzv_id, "nnodes": dist.nnodes}
    files.write_text(f"{name}/{JOB_FILE}", json.dumps(spec))
    return PostedJob(name, rdzv_id, files)


@dataclass
class JobResult:
    job: str
    node_rank: int
    returncode: int
    log: str


def _next_job(files: FileStore, done: set[str]) -> str | None:
    for name in files.list():
        if name in done or name.startswith("."):
            continue
        if files.exists(f"{name}/{JOB_FILE}") and not files.exists(f"{name}/{STATUS_FILE}"):
            return name
    return None


def run_job(files: FileStore, name: str, dist: DistributedConfig, *, node_rank: int, nproc: int,
            work_dir: Path, env: dict[str, str] | None = None) -> JobResult:
    """A joining node: copy the job's data and settings here and run this node's torchrun agent."""
    spec = json.loads(files.read_text(f"{name}/{JOB_FILE}"))
    here = Path(work_dir) / name
    shutil.rmtree(here, ignore_errors=True)
    here.mkdir(parents=True)
    files.get_dir(f"{name}/data", here / "data")
    files.get_file(f"{name}/config.json", here / "config.json")
    report = here / "ranks"
    args = ["--data", str(here / "data"), "--config", str(here / "config.json"), "--out", str(here / "out"),
            "--cell", spec["cell"], "--report", str(report)]
    cmd = rendezvous_command(dist, nproc=nproc, node_rank=node_rank, rdzv_id=spec["rdzv_id"], args=args)
    log.info("node %d joins job %s: %s", node_rank, name, " ".join(cmd))
    with open(here / "train.log", "wb") as fh:
        # the training exits when this agent dies (train_entry.exit_with_launcher)
        rc = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT,
                             env={**os.environ, "FLOWCAST_LAUNCHER_PID": str(os.getpid()), **(env or {})})
    PostedJob(name, spec["rdzv_id"], files).report_rank(report)
    return JobResult(name, node_rank, rc, (here / "train.log").read_text(errors="replace")[-3000:])


def stop_jobs(location: str, dist: DistributedConfig, storage_options: dict[str, Any] | None = None) -> str:
    """Node 0 is done: joining nodes of this rendezvous id exit once no job is pending."""
    return _jobs(location, storage_options, dist).write_text(STOP_FILE, uuid.uuid4().hex)


def _stop_token(files: FileStore) -> str | None:
    try:
        return files.read_text(STOP_FILE)
    except FileNotFoundError:
        return None


def serve_jobs(location: str, dist: DistributedConfig, *, node_rank: int, nproc: int, work_dir: Path,
               storage_options: dict[str, Any] | None = None, max_jobs: int | None = None,
               idle_timeout: float | None = None, poll: float = 0.5) -> list[JobResult]:
    """Join every job posted to `location` (oldest first), until `max_jobs` were run, node 0 said
    stop (stop_jobs) or no new job came for `idle_timeout` seconds (None: distributed.join_timeout)."""
    if node_rank < 1 or node_rank >= dist.nnodes:
        raise TrainingError(f"a joining node's rank must lie in 1..{dist.nnodes - 1} (nnodes {dist.nnodes}); node 0 "
                            f"is the machine whose flow trains; got --node-rank {node_rank}")
    if dist.launcher != "rendezvous":
        raise TrainingError("flowcast train-node needs [distributed] launcher = 'rendezvous' (with rdzv_endpoint and "
                            f"nnodes); it is {dist.launcher!r}")
    files = _jobs(location, storage_options, dist)
    idle = dist.join_timeout if idle_timeout is None else idle_timeout
    done: set[str] = set()
    results: list[JobResult] = []
    stale_stop = _stop_token(files)  # a stop of an earlier session of this rendezvous id does not count
    last = time.monotonic()
    while max_jobs is None or len(results) < max_jobs:
        name = _next_job(files, done)
        if name is None:
            stop = _stop_token(files)
            if time.monotonic() - last > idle or (stop is not None and stop != stale_stop):
                break
            time.sleep(poll)
            continue
        done.add(name)
        results.append(run_job(files, name, dist, node_rank=node_rank, nproc=nproc, work_dir=work_dir))
        last = time.monotonic()
    return results


def job_work_dir(home: Path) -> Path:
    """Where a joining node keeps its copies of the jobs it runs."""
    return Path(home) / "runs" / "node-jobs" if home else Path(tempfile.gettempdir()) / "flowcast-node-jobs"
