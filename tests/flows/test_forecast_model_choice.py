"""The model a forecast run at an as_of forecasts with (`flows.forecast.choose_model`), chosen per date by a
backfill's checks from one read of the registry's history (`run_models`), as a run of the date chooses it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from flowcast.config import Settings
from flowcast.flows.backfill import backfill_model_at
from flowcast.flows.forecast import model_for_as_of, run_model, run_models
from flowcast.registry import ModelRegistry

T0 = datetime(2024, 6, 1)
ENDS = {"gru-v1": datetime(2024, 1, 1), "gru-v2": datetime(2024, 2, 1), "gru-v3": datetime(2024, 4, 1)}


def _home(tmp_path: Path) -> ModelRegistry:
    """A home whose dataset toy promoted three versions in turn, trained on data up to `ENDS`."""
    reg = ModelRegistry(tmp_path / "home" / "models")
    for version, end in ENDS.items():
        art = tmp_path / f"art_{version}"
        (art / "ckpt").mkdir(parents=True)
        (art / "ckpt" / "model.ckpt").write_text(version)
        (art / "meta.json").write_text(json.dumps({"cell": "gru"}))
        made = reg.register(art, name="gru", fingerprint={"source": "toy"}, created_at=T0, as_of=end)
        assert made.version == version
        reg.promote(version, dataset="toy", at=T0)
    return reg


_SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(("as_of", "expected"), [
    (ENDS["gru-v1"] - _SECOND, "gru-v3"),  # before every model's data ended: production kept (and said by the run)
    (ENDS["gru-v1"], "gru-v1"),
    (ENDS["gru-v2"] - _SECOND, "gru-v1"),
    (ENDS["gru-v2"], "gru-v2"),
    (ENDS["gru-v3"] - _SECOND, "gru-v2"),
    (ENDS["gru-v3"], "gru-v3"),
    (ENDS["gru-v3"] + timedelta(days=30), "gru-v3"),
])
def test_a_backfill_s_dates_take_the_model_a_run_of_each_date_takes(tmp_path, as_of, expected):
    """Around each version's data end, the backfill's choice of one history read is the single run's."""
    reg = _home(tmp_path)
    production = reg.production("toy")
    assert model_for_as_of(reg, "toy", production, as_of)[0].version == expected
    assert run_model(reg, "toy", as_of).version == expected
    assert run_models(reg, "toy")(as_of).version == expected
    model_at = backfill_model_at(Settings(home=tmp_path / "home"), "toy", "forecast")
    assert model_at is not None and model_at(as_of) == expected


def test_a_backfill_reads_the_registry_history_once_for_all_its_dates(tmp_path, monkeypatch):
    """An hourly backfill of three months read the history (and the pointer) once per date before the production
    model's data ended: ~2,000 reads before any date ran. Once now, whatever the number of dates."""
    reg = _home(tmp_path)
    reads: list[str | None] = []
    history = ModelRegistry.history

    def counted(self: ModelRegistry, dataset: str | None = None, **kw: bool) -> list[dict]:
        reads.append(dataset)
        return history(self, dataset, **kw)

    monkeypatch.setattr(ModelRegistry, "history", counted)
    version_at = backfill_model_at(Settings(home=tmp_path / "home"), "toy", "forecast")
    assert version_at is not None
    dates = [ENDS["gru-v1"] + timedelta(hours=h) for h in range(24 * 100)]
    chosen = [version_at(d) for d in dates]
    assert reads == ["toy"]
    assert chosen[0] == "gru-v1" and chosen[-1] == "gru-v3" and set(chosen) == set(ENDS)
    model_at = run_models(reg, "toy")
    assert model_at(ENDS["gru-v1"]) is model_at(ENDS["gru-v1"] + timedelta(hours=1))  # its files fetched once
