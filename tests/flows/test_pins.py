"""The model pins of running runs (models/pins/<version>@<run>.json: `flowcast gc` keeps a version a running run
forecasts with) as the flows take and release them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from flowcast.registry import ModelRegistry

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_the_forecast_flow_pins_its_model_while_it_forecasts_and_releases_it_when_it_ends(production_home,
                                                                                            monkeypatch):
    """The pin had no flow-level test: held while the run forecasts (gc would refuse the version), gone when the
    run ends, whether it published or failed."""
    from flowcast.errors import RegistryError
    from flowcast.flows import forecast as forecast_module
    from flowcast.flows import forecast_flow

    registry = ModelRegistry(Path(production_home["home"]) / "models")
    production = registry.production("tiny").version
    seen: list[dict[str, str]] = []
    forecast_task = forecast_module.tasks.forecast_task

    def watched(*a: Any, **k: Any) -> Any:
        seen.append(registry.pins())
        with pytest.raises(RegistryError, match="in use by the running flow run"):
            registry.delete(production, allow_protected=True)
        return forecast_task(*a, **k)

    monkeypatch.setattr(forecast_module.tasks, "forecast_task", watched)
    out = forecast_flow(as_of=datetime(2019, 10, 1), **production_home)
    assert out["published_rows"] > 0 and list(seen[0]) == [production] and out["run_id"] in seen[0][production]
    assert registry.pins() == {}
    # the publish records where its model's training data ended (realized accuracy's lookahead, once it is gone)
    from flowcast.config import load_settings
    from flowcast.store import open_store
    from flowcast.timekeys import storage_naive

    receipt = open_store(load_settings(home=production_home["home"])).receipt_of("tiny", datetime(2019, 10, 1))
    assert storage_naive(receipt["trained_as_of"]) == storage_naive(registry.get(production).as_of)

    def broken(*a: Any, **k: Any) -> Any:
        seen.append(registry.pins())
        raise RuntimeError("the model could not be loaded")

    monkeypatch.setattr(forecast_module.tasks, "forecast_task", broken)
    with pytest.raises(RuntimeError, match="could not be loaded"):
        forecast_flow(as_of=datetime(2019, 11, 1), **production_home)
    assert list(seen[-1]) == [production] and registry.pins() == {}


def test_a_retrain_failing_between_its_promotion_and_its_publish_withdraws_it_and_releases_its_pin(production_home,
                                                                                                   monkeypatch):
    """Regression: only the publish itself was guarded. A retrain that failed after registering and promoting its
    winner but before publishing (here the decision artifact: the Prefect API gone; or a refit_all registration on
    a full disk) left production on a model whose forecasts were never published, and its pin to lapse 24 hours
    later (gc kept the version meanwhile). The promotion is withdrawn and the pin released, as for a failed
    publish."""
    from flowcast.flows import pipeline, retrain_flow

    registry = ModelRegistry(Path(production_home["home"]) / "models")
    before, versions = registry.production("tiny").version, [v.version for v in registry.list()]
    kw = {**production_home, "overrides": {**production_home["overrides"], "evaluation": {"n_windows": 1}}}

    def api_gone(*a: Any, **k: Any) -> None:
        raise RuntimeError("the Prefect API is gone")

    monkeypatch.setattr(pipeline.reporting, "decision_artifact", api_gone)
    with pytest.raises(RuntimeError, match="API is gone"):
        retrain_flow(as_of=datetime(2019, 9, 1), **kw)
    assert registry.pins() == {}
    assert registry.production("tiny").version == before
    assert [v.version for v in registry.list()] == versions  # the promoted version is gone
    last = registry.history("tiny")[-1]
    assert last["action"] == "withdraw" and last["previous"] == before and "API is gone" in last["reason"]
