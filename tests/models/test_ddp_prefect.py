"""DDP on two CPU processes (gloo), started from inside a Prefect flow: exactly one flow run,
and predictions for every series exactly once afterwards."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from model_factories import make_td, tiny_cfg


@pytest.mark.slow
def test_ddp_two_cpu_processes_from_a_prefect_flow(prefect_api, tmp_path):
    from prefect import flow, task
    from prefect.client.orchestration import get_client

    from flowcast.data.training_data import TrainingData
    from flowcast.models.predict import predict
    from flowcast.models.train import train_model

    td = make_td(n_series=6, length=48, horizon=6, lookback=12)
    data_dir = td.save(tmp_path / "td")
    flow_name = f"ddp-train-{tmp_path.name}"

    @task
    def train_task(data: str, out: str) -> dict:
        art = train_model(TrainingData.load(data), tiny_cfg(launcher="process", devices=2, max_steps=12),
                          Path(out), cell="gru")
        return art.metrics

    @flow(name=flow_name)
    def train_flow(data: str, out: str) -> dict:
        return train_task(data, out)

    metrics = train_flow(str(data_dir), str(tmp_path / "run"))
    assert metrics["world_size"] == 2 and metrics["steps"] == 12

    async def count_runs() -> int:
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName
        from prefect.client.schemas.sorting import FlowRunSort

        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])), limit=50, sort=FlowRunSort.ID_DESC
            )
            return len(runs)

    assert asyncio.run(count_runs()) == 1
    from flowcast.models.train import ModelArtifact

    p = predict(ModelArtifact.load(tmp_path / "run"), td)
    assert p.height == 6 * 6 and p.select("unique_id", "step").is_duplicated().sum() == 0
