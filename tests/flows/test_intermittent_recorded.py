"""The retrain records its intermittency decision with every model it registers (`flowcast forecast` then cuts
that model's forecasts as the retrain did: `intermittency.recorded_bounds`)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import polars as pl

from flowcast.models.recipes import Recipe, load_recipe


def test_register_records_the_runs_intermittency_decision_in_the_recipe(monkeypatch):
    from flowcast.flows import pipeline, tasks

    seen: dict[str, Any] = {}

    def fake_register(settings: Any, path: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return SimpleNamespace(version="croston-v1")

    monkeypatch.setattr(tasks, "register_task", fake_register)
    recipe = Recipe(name="croston", kind="statistical", components=[{"type": "statistical", "model": "croston"}],
                    weights=[1.0])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    log = SimpleNamespace(info=lambda *_: None)
    board = pl.DataFrame({"model": ["croston"], "rank": [1]})
    settings = SimpleNamespace(model=SimpleNamespace(model_dump=lambda **_: {}),
                               evaluation=SimpleNamespace(model_dump=lambda **_: {}))
    pipeline._register(settings, "croston", recipe, board=board, dataset="parts", fingerprint={}, as_of=now,
                       started=now, registered={}, log=log, intermittent=True)  # type: ignore[arg-type]
    assert seen["recipe"]["intermittent"] is True
    assert load_recipe(dict(seen["recipe"])).extra["intermittent"] is True
