"""deployments/slurm/train.sbatch on this machine: no SLURM here, so `srun` and `scontrol` are two
small shell scripts that do what SLURM does for the batch script (srun starts its command once
per node with SLURM_NODEID set; scontrol lists the job's hosts, here 127.0.0.1 twice). Everything
else is the script's own: the retrain flow on node 0 (`flowcast run`), `flowcast train-node` on
node 1, every training a two-node torchrun rendezvous, `train-node --stop` at the end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from flow_helpers import source_dict, write_series

ROOT = Path(__file__).resolve().parents[2]
SBATCH = ROOT / "deployments" / "slurm" / "train.sbatch"

FAKE_SRUN = """#!/bin/bash
# srun for one machine: run the command once per node (SLURM_NNODES), SLURM_NODEID set, in parallel
while [[ "$1" == --* ]]; do shift; done
pids=()
for ((i = 0; i < SLURM_NNODES; i++)); do
  SLURM_NODEID=$i SLURM_TMPDIR="$FAKE_TMP/node-$i" "$@" > "$FAKE_TMP/node-$i.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
exit $status
"""
FAKE_SCONTROL = """#!/bin/bash
# scontrol show hostnames LIST: one host per node, written line by line as a real one streams them
# (a reader that stops after the first line makes the next write a SIGPIPE)
for ((i = 0; i < SLURM_NNODES; i++)); do echo 127.0.0.1; sleep 0.2; done
"""
FLOWCAST = f"""#!/bin/bash
exec {sys.executable} -c "from flowcast.cli import app; app()" "$@"
"""


def _exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_slurm_script_retrains_with_every_training_on_two_nodes(prefect_api, tmp_path):
    from prefect.settings import PREFECT_API_URL

    from flowcast.config import load_settings
    from flowcast.shared import open_registry
    from flowcast.store import open_store

    csv = write_series(tmp_path / "raw" / "sales.csv")
    src = source_dict(csv)
    config = tmp_path / "flowcast.toml"
    config.write_text("\n".join([
        'dataset = "tiny"', "",
        "[sources.tiny]", *(f"{k} = {json.dumps(v)}" for k, v in src.items() if k != "name"), "",
        "[model]", 'cells = ["gru"]', "lookback = 12", "hidden_size = 8", "num_layers = 1", "batch_size = 32",
        "max_steps = 6", 'accelerator = "cpu"', "num_threads = 1", "early_stopping_patience = 0", "",
        "[evaluation]", "n_windows = 1", "",
    ]))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _exe(bin_dir / "srun", FAKE_SRUN)
    _exe(bin_dir / "scontrol", FAKE_SCONTROL)
    _exe(bin_dir / "flowcast", FLOWCAST)
    (tmp_path / "slurm-tmp").mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_TMP": str(tmp_path / "slurm-tmp"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "SLURM_JOB_ID": "4242", "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "node[0-1]",
           "SLURM_SUBMIT_DIR": str(tmp_path), "FLOWCAST_CONFIG": str(config), "AS_OF": "2019-06-01",
           "DEVICES": "1", "RDZV_PORT": str(_free_port())}
    env.pop("FLOWCAST_HOME", None)
    proc = subprocess.run(["bash", str(SBATCH)], check=False, env=env, capture_output=True, text=True, timeout=900)
    node_logs = [tmp_path / "slurm-tmp" / f"node-{i}.log" for i in (0, 1)]
    logs = {i: p.read_text() if p.exists() else f"(no {p.name})" for i, p in enumerate(node_logs)}
    assert proc.returncode == 0, (proc.stderr, logs[0][-3000:], logs[1][-3000:])

    summary = json.loads([line for line in logs[0].splitlines() if line.startswith("{")][-1])
    assert summary["published_rows"] == 4 * 6
    jobs_root = tmp_path / ".flowcast-shared" / "runs" / "jobs" / "slurm-4242"
    jobs = sorted(p for p in jobs_root.iterdir() if p.is_dir())
    assert len(jobs) >= 1 and (jobs_root / "STOP").exists()
    for job in jobs:  # every training of the retrain ran on both nodes, with identical weights
        assert json.loads((job / "status.json").read_text())["ok"] is True
        ranks = [json.loads(p.read_text()) for p in sorted((job / "ranks").glob("rank-*.json"))]
        assert [(r["global_rank"], r["node_rank"], r["world_size"]) for r in ranks] == [(0, 0, 2), (1, 1, 2)]
        assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert logs[1].count("exit code 0") == len(jobs)  # node 1 joined each of them, then stopped

    settings = load_settings(config_file=config, home=tmp_path / "reader", shared=str(tmp_path / ".flowcast-shared"))
    assert open_registry(settings).list(dataset="tiny")  # registered in the shared home
    back = open_store(settings).read(dataset="tiny")
    assert back.height == 24 and back.select("unique_id", "ds").n_unique() == 24
