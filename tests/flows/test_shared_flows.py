"""A shared home on an S3-compatible server (moto in server mode on loopback): machine A retrains,
machine B, which shares nothing with A but the bucket, forecasts with A's model; everything
another machine must read (registry, checkpoints, forecasts, reports, quarantine, accuracy
status) is in the bucket; each machine's home keeps its caches, run folders and local copies."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from flow_helpers import AS_OF, TINY_OVERRIDES, source_dict, write_series

from flowcast.config import load_settings
from flowcast.registry import ModelRegistry
from flowcast.store import open_store

pytestmark = pytest.mark.usefixtures("prefect_api")


def _bucket_keys(url: str, opts: dict) -> list[str]:
    import fsspec

    fs = fsspec.filesystem("s3", **opts)
    fs.invalidate_cache()
    root = url.split("://", 1)[1]
    return sorted(p.removeprefix(root + "/") for p in fs.find(root))


def test_retrain_on_one_machine_and_forecast_on_another_through_a_shared_home_on_s3(s3_url, tmp_path):
    from flowcast.flows import forecast_flow, retrain_flow

    url, opts = s3_url
    csv = write_series(tmp_path / "raw" / "sales.csv")
    raw = pl.read_csv(csv, infer_schema=False)
    raw.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("n/a")).otherwise(pl.col("sales"))
                     .alias("sales")).write_csv(csv)  # one bad row: quarantined
    overrides = {**TINY_OVERRIDES, "shared": url, "shared_options": opts}
    home_a, home_b = tmp_path / "machine-a", tmp_path / "machine-b"

    s = retrain_flow(as_of=AS_OF, refit_all=True, source=source_dict(csv), home=str(home_a), overrides=overrides)
    assert s["published_rows"] == 4 * 6 and s["rows_quarantined"] == 1
    assert s["store"] == f"{url}/warehouse"
    gru = s["registered"]["gru"]
    # a person on a third machine puts the network in production (so B must load A's checkpoint)
    ModelRegistry(f"{url}/models", storage_options=opts, cache_dir=tmp_path / "laptop").promote(
        gru, dataset="tiny", reason="test: forecast with the network")

    later = datetime(2019, 9, 1)
    f = forecast_flow(as_of=later, source=source_dict(csv), home=str(home_b), overrides=overrides)
    assert f["model_version"] == gru and f["published_rows"] == 4 * 6 and f["rows_quarantined"] == 1
    assert (home_b / "models-cache").is_dir()  # B's local copy of A's model ...
    assert not any((home_b / "models-cache").rglob("*.tmp*"))
    ckpts = list((home_b / "models-cache").rglob("model.ckpt"))
    assert ckpts and all(c.stat().st_size > 0 for c in ckpts)  # ... with its checkpoint

    for home in (home_a, home_b):  # the registry and the forecasts live in the bucket only (reports,
        for shared_only in ("models", "warehouse"):  # quarantine and status are drawn locally, then copied)
            assert not (home / shared_only).exists(), (home, shared_only)
    keys = _bucket_keys(url, opts)
    assert "models/production.json" in keys and f"models/versions/{gru}/_COMPLETE" in keys
    assert any(k.startswith(f"models/versions/{gru}/artifact/") and k.endswith("/model.ckpt") for k in keys), keys
    parts = [k for k in keys if k.startswith("warehouse/forecasts/dataset=tiny/")]
    assert sorted({p.rsplit("/", 2)[1] for p in parts}) == ["as_of=2019-06-01T00:00:00", "as_of=2019-09-01T00:00:00"]
    assert "quarantine/tiny/2019-06-01T00-00-00/quarantine.parquet" in keys
    assert "quarantine/tiny/2019-09-01T00-00-00/quarantine.parquet" in keys
    assert "reports/forecast_tiny_20190601T000000.png" in keys and "reports/forecast_tiny_20190901T000000.png" in keys
    assert "accuracy/tiny.json" in keys

    # any machine reads the same forecasts: one row per series and step, each as_of from its run
    store = open_store(load_settings(home=tmp_path / "reader", shared=url, shared_options=opts))
    assert store.as_ofs("tiny") == [AS_OF, later]
    back = store.read(dataset="tiny", as_of=later)
    assert back.height == 24 and back.select("unique_id", "ds").n_unique() == 24
    assert back["model_version"].unique().to_list() == [gru] and back["run_id"].unique().to_list() == [f["run_id"]]
    assert store.read(dataset="tiny", as_of=AS_OF)["run_id"].unique().to_list() == [s["run_id"]]
    q = pl.read_parquet(f"{url}/quarantine/tiny/2019-09-01T00-00-00/quarantine.parquet", storage_options={
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_endpoint_url": opts["endpoint_url"],
        "aws_region": "us-east-1"})
    assert q["sales"].to_list() == ["n/a"] and q["reason"].null_count() == 0
    assert Path(home_a / "runs").is_dir()  # run folders (checkpoints while training) stay on the machine
