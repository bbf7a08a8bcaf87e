"""flowcast.ops.accuracy: what the registry's versions promised, read for realized accuracy."""

from __future__ import annotations

from datetime import datetime

import pytest


@pytest.mark.parametrize("promise", ["mase", "rmsse"])
def test_a_promise_is_read_without_copying_the_model_files(s3_url, tmp_path, promise):
    """Regression: the promised MASE read each published version with fetch=True: at a registry URL (S3) every
    run's realized scoring copied those versions' model files to the machine's cache to read one figure (the
    RMSSE promise read the metadata alone). Both read the metadata alone, and each says what the version holds."""
    from flowcast.ops.accuracy import promised_mase, promised_rmsse
    from flowcast.registry import ModelRegistry

    url, opts = s3_url
    art = tmp_path / "art"
    art.mkdir()
    (art / "model.ckpt").write_bytes(b"x" * 1000)
    writer = ModelRegistry(f"{url}/models", storage_options=opts, cache_dir=tmp_path / "machine-a")
    mv = writer.register(art, name="gru", dataset="parts", recipe={"metric": "rmsse"},
                         metrics={"mase": 0.9, "rmsse": 0.7}, created_at=datetime(2024, 1, 2))
    reader = ModelRegistry(f"{url}/models", storage_options=opts, cache_dir=tmp_path / "machine-b")
    read = {"mase": promised_mase, "rmsse": promised_rmsse}[promise](reader, [mv.version, "gone-v9"])
    assert read == {mv.version: {"mase": 0.9, "rmsse": 0.7}[promise], "gone-v9": None}
    assert not list((tmp_path / "machine-b").rglob("model.ckpt"))  # nothing of the model was copied
