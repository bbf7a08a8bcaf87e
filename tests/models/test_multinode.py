"""Multi-node training under torchrun's rendezvous: two torchrun agents on this machine act as two
nodes (gloo on CPU, one process each). Node 0 is started by a Prefect flow (train_model with
[distributed] launcher = "rendezvous"), node 1 by `flowcast train-node --node-rank 1` in its own
process, as a second machine would run it; they meet at a c10d rendezvous on loopback.
Checked: one flow run, both ranks (node 0 and node 1, world size 2) end with identical weights,
every series is predicted once, and the forecasts equal a single process's (same seed, the same
windows per step) within float tolerance."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from model_factories import make_td, tiny_cfg

from flowcast.config import DistributedConfig, load_settings

SRC = str(Path(__file__).resolve().parents[2] / "src")
STEPS, BATCH = 10, 16  # per rank: two ranks see 32 windows a step, like one process with batch 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node(config: Path, home: Path, rank: int, *extra: str) -> subprocess.Popen:
    """`flowcast train-node` as another machine runs it: its own process, home and config file."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    env.pop("FLOWCAST_HOME", None)
    return subprocess.Popen(
        [sys.executable, "-c", "from flowcast.cli import app; app()", "train-node", "--node-rank", str(rank),
         "--config", str(config), "--home", str(home), "--json", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _toml(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _config_file(tmp_path: Path, dist: dict, shared: dict) -> Path:
    lines = [f"{k} = {_toml(v)}" for k, v in shared.items()]
    lines += ["[distributed]"] + [f"{k} = {_toml(v)}" for k, v in dist.items()]
    lines += ["", "[model]", 'accelerator = "cpu"', "devices = 1"]
    path = tmp_path / "node.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_config_rejects_a_rendezvous_without_an_endpoint():
    with pytest.raises(ValueError, match="rdzv_endpoint"):
        DistributedConfig(launcher="rendezvous", nnodes=2)
    with pytest.raises(ValueError, match="node_rank 2 must be below nnodes 2"):
        DistributedConfig(launcher="rendezvous", nnodes=2, node_rank=2, rdzv_endpoint="head:29500")


def test_the_rendezvous_command_names_every_torchrun_option():
    from flowcast.models.nodes import rendezvous_command

    dist = DistributedConfig(launcher="rendezvous", nnodes=4, rdzv_endpoint="head:29500", rdzv_id="weekly")
    cmd = rendezvous_command(dist, nproc=8, node_rank=3, rdzv_id="weekly-000001-gru-ab", args=["--cell", "gru"])
    assert cmd[1:] == ["-m", "torch.distributed.run", "--nnodes=4", "--nproc-per-node=8", "--node-rank=3",
                       "--rdzv-backend=c10d", "--rdzv-endpoint=head:29500", "--rdzv-id=weekly-000001-gru-ab",
                       "--rdzv-conf=join_timeout=600,is_host=false", "-m", "flowcast.models.train_entry", "--cell", "gru"]


def test_a_joining_node_checks_its_rank_and_exits_on_a_new_stop_only(tmp_path):
    import threading

    from flowcast.errors import TrainingError
    from flowcast.models.nodes import serve_jobs, stop_jobs

    dist = DistributedConfig(launcher="rendezvous", nnodes=2, rdzv_endpoint="127.0.0.1:29500", rdzv_id="t")
    with pytest.raises(TrainingError, match="rank must lie in 1..1"):
        serve_jobs(str(tmp_path), dist, node_rank=0, nproc=1, work_dir=tmp_path / "w")
    with pytest.raises(TrainingError, match="launcher = 'rendezvous'"):
        serve_jobs(str(tmp_path), DistributedConfig(nnodes=2), node_rank=1, nproc=1, work_dir=tmp_path / "w")
    stop_jobs(str(tmp_path), dist)  # a stop left by an earlier session of this rendezvous id
    out: list = []
    agent = threading.Thread(target=lambda: out.append(serve_jobs(
        str(tmp_path), dist, node_rank=1, nproc=1, work_dir=tmp_path / "w", idle_timeout=120, poll=0.05)))
    agent.start()
    agent.join(1.0)
    assert agent.is_alive()  # the old stop does not count
    stop_jobs(str(tmp_path), dist)
    agent.join(60)
    assert not agent.is_alive() and out == [[]]  # the new one does: no job was posted, none was run


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["folder", "s3"])
def test_two_nodes_train_one_model_from_a_prefect_flow(prefect_api, tmp_path, request, jobs):
    """jobs=folder: the jobs folder on a file system both nodes see; jobs=s3: no folder in common,
    a shared home on an S3-compatible server (moto) carries the job's data to node 1."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    from flowcast.data.training_data import TrainingData
    from flowcast.flows import tasks
    from flowcast.models.predict import predict
    from flowcast.models.train import ModelArtifact

    td = make_td(n_series=6, length=60, horizon=6, lookback=12)
    data_dir = td.save(tmp_path / "td")
    dist = {"launcher": "rendezvous", "nnodes": 2, "rdzv_endpoint": f"127.0.0.1:{_free_port()}", "rdzv_id": "test"}
    shared: dict = {}
    if jobs == "folder":
        dist["jobs_dir"] = str(tmp_path / "jobs")
    else:
        url, opts = request.getfixturevalue("s3_url")
        shared = {"shared": url, "shared_options": opts}
    node1 = _node(_config_file(tmp_path, dist, shared), tmp_path / "node-1", 1, "--max-jobs", "1", "--idle", "300")
    flow_name = f"two-node-train-{tmp_path.name}"

    # the flows' own training task, configured as a [distributed] section would configure it
    settings = load_settings(home=tmp_path / "node-0-home", distributed=dist, model=tiny_cfg(
        launcher="process", batch_size=BATCH, max_steps=STEPS).model_dump(), **shared)

    @flow(name=flow_name)
    def train_flow(data: str, out: str) -> dict:
        return tasks.train_task(TrainingData.load(data), settings, Path(out), "gru").metrics

    try:
        metrics = train_flow(str(data_dir), str(tmp_path / "node-0"))
        out, _ = node1.communicate(timeout=300)
    finally:
        if node1.poll() is None:
            node1.kill()
    assert node1.returncode == 0, out
    assert json.loads(out.strip().splitlines()[-1])["jobs"][0]["returncode"] == 0
    assert metrics["world_size"] == 2 and metrics["steps"] == STEPS

    async def runs() -> int:
        async with get_client() as client:
            return len(await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name]))))

    assert asyncio.run(runs()) == 1  # DDP never re-ran the flow

    from flowcast.shared import jobs_location
    from flowcast.store.fs import FileStore

    where = jobs_location(settings)
    assert where == (str(tmp_path / "jobs") if jobs == "folder" else f"{shared['shared']}/runs/jobs")
    files = FileStore(f"{where}/test", storage_options=settings.shared_options)
    (job,) = files.list()  # one training, one job
    assert json.loads(files.read_text(f"{job}/status.json"))["ok"] is True
    ranks = [json.loads(files.read_text(f"{job}/ranks/{f}")) for f in files.list(f"{job}/ranks")]
    assert [(r["global_rank"], r["node_rank"], r["world_size"], r["num_nodes"]) for r in ranks] == [
        (0, 0, 2, 2), (1, 1, 2, 2)]
    assert ranks[0]["pid"] != ranks[1]["pid"] and {r["steps"] for r in ranks} == {STEPS}
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]  # identical weights on both ranks

    two = predict(ModelArtifact.load(tmp_path / "node-0"), td)
    assert two.height == 6 * 6 and two.select("unique_id", "step").is_duplicated().sum() == 0  # each series once
    assert sorted(two["unique_id"].unique().to_list()) == sorted(td.ids)

    # one process, the same seed, twice the batch: the same windows each step, the same forecasts
    from flowcast.models.train import fit

    one = fit(td, tiny_cfg(batch_size=2 * BATCH, max_steps=STEPS), tmp_path / "single", cell="gru")
    assert one is not None
    single = predict(one, td)
    joined = two.join(single, on=["unique_id", "step"], suffix="_single")
    assert joined.height == 36
    diff = np.abs(joined["y_hat"].to_numpy() - joined["y_hat_single"].to_numpy())
    scale = np.abs(joined["y_hat_single"].to_numpy()).mean()
    print(json.dumps({"jobs": jobs, "ranks": ranks, "max_abs_diff": float(diff.max()), "mean_abs_y_hat": float(scale)}))
    assert diff.max() <= 1e-5 * scale, diff.max()  # measured: ~4e-8 on a scale of 35
