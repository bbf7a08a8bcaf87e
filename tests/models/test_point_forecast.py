"""The point forecast of a quantile network is its median (issue 9.13)."""

from __future__ import annotations

import pytest
from model_factories import make_td, tiny_cfg
from pydantic import ValidationError

from flowcast.config import ModelConfig
from flowcast.models.predict import predict
from flowcast.models.train import train_model


def test_quantiles_without_the_median_still_publish_the_median(tmp_path):
    """Regression: with quantiles [0.75, 0.9] the published y_hat was the nearest quantile to 0.5
    the network had, the 75% quantile (with [0.9]: the 90% one)."""
    cfg = tiny_cfg(loss="quantile", quantiles=[0.75, 0.9], max_steps=30)
    assert cfg.quantiles == [0.5, 0.75, 0.9]  # the median is trained with them
    td = make_td()
    art = train_model(td, cfg, tmp_path / "run", cell="gru")
    fc = predict(art, td, horizon=6)
    assert {"y_hat_q50", "y_hat_q75", "y_hat_q90"} <= set(fc.columns)
    assert fc["y_hat"].to_list() == fc["y_hat_q50"].to_list()
    assert (fc["y_hat"] < fc["y_hat_q75"]).all() and (fc["y_hat_q75"] < fc["y_hat_q90"]).all()


@pytest.mark.parametrize("kw,needle", [
    ({"loss": "quantile", "quantiles": [0.1, 0.9, 0.1]}, r"name \[0.1\] more than once"),
    ({"loss": "mae", "quantiles": [0.1, 0.9]}, r"need loss='quantile'"),
    ({"loss": "quantile", "quantiles": [0.0, 0.5]}, r"must lie in \(0, 1\)"),
    ({"launcher": "inline", "devices": 2},
     r"launcher='inline' cannot train on devices=2: several devices need one process each \(DDP\)"),
    ({"launcher": "inline", "devices": "auto"}, r"launcher='inline' cannot train on devices='auto'"),
])
def test_the_config_refuses_what_it_cannot_honour(kw, needle):
    with pytest.raises(ValidationError, match=needle):
        ModelConfig(**kw)
    assert ModelConfig(launcher="process", devices=2).devices == 2  # torchrun starts one process per device
