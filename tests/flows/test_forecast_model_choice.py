"""The model a forecast run at an as_of forecasts with (`flows.forecast.model_for_as_of`), chosen per date by a
backfill's checks from one read of the registry's history (`run_models`), as a run of the date chooses it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from flowcast.config import Settings, SourceConfig
from flowcast.flows.backfill import backfill_model_at
from flowcast.flows.forecast import data_end, model_for_as_of, run_model, run_models, saw_after
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
    model_at = backfill_model_at(Settings(home=tmp_path / "home"), _source("1h"), "forecast")
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
    version_at = backfill_model_at(Settings(home=tmp_path / "home"), _source("1h"), "forecast")
    assert version_at is not None
    dates = [ENDS["gru-v1"] + timedelta(hours=h) for h in range(24 * 100)]
    chosen = [version_at(d) for d in dates]
    assert reads == ["toy"]
    assert chosen[0] == "gru-v1" and chosen[-1] == "gru-v3" and set(chosen) == set(ENDS)
    model_at = run_models(reg, "toy")
    assert model_at(ENDS["gru-v1"]) is model_at(ENDS["gru-v1"] + timedelta(hours=1))  # its files fetched once


def _source(freq: str, **kw: str) -> SourceConfig:
    return SourceConfig(name="toy", path="toy.csv", time_col="t", target_col="y", freq=freq, **kw)


RETRAINED = datetime(2026, 12, 7, 9)  # the as_of of a retrain, today, of data that ended long before


@pytest.mark.parametrize(("source", "last", "as_of", "trained"), [
    # the new-user trial: data to 2024-02-18 retrained today, forecast as of 2024-02-25: nothing after it seen
    (_source("1d"), "2024-02-18T00:00:00", datetime(2024, 2, 25), True),
    (_source("1d"), "2024-02-18T00:00:00", datetime(2024, 2, 18), True),  # the day dated as_of, observed by it
    (_source("1d"), "2024-02-18T00:00:00", datetime(2024, 2, 17, 23, 59), False),
    # a daily total dated by the next midnight: ds 2024-02-18 (labelled 19 February) is over at midnight
    (_source("1d", time_label="end"), "2024-02-18T00:00:00", datetime(2024, 2, 19), True),
    (_source("1d", time_label="end"), "2024-02-18T00:00:00", datetime(2024, 2, 18, 23), False),
    # hourly readings summed to days: the day of 18 February over at midnight, not before
    (_source("1d", aggregate="sum"), "2024-02-18T00:00:00", datetime(2024, 2, 19), True),
    (_source("1d", aggregate="sum"), "2024-02-18T00:00:00", datetime(2024, 2, 18, 23), False),
    # daily ds are dates of the source's zone: 18 February in New York starts at 05:00 UTC
    (_source("1d", tz="America/New_York"), "2024-02-18T00:00:00", datetime(2024, 2, 18, 5), True),
    (_source("1d", tz="America/New_York"), "2024-02-18T00:00:00", datetime(2024, 2, 18, 4), False),
    (_source("1h", time_label="end"), "2024-02-18T09:00:00", datetime(2024, 2, 18, 10), True),  # 09-10 over at 10
    (_source("1h", time_label="end"), "2024-02-18T09:00:00", datetime(2024, 2, 18, 9, 59), False),
])
def test_a_model_is_trained_by_an_as_of_that_observed_its_last_period(tmp_path, source, last, as_of, trained):
    """new-user51: `flowcast forecast --as-of 2024-02-25` with production trained today on data that ended 2024-02-18
    said its forecasts were "not the ones a run at this as_of could have made": the check compared the as_of with
    the as_of of the run that trained the model. It compares the last period the model's data covered (its recorded
    `last_observation`) with the last one a run at the as_of observed, on the source's ds axis as ingest cuts it:
    in its zone, an end-labelled period once its end label is reached, an aggregated one once over."""
    reg = ModelRegistry(tmp_path / "models")
    mv = reg.register(None, name="naive", dataset="toy", kind="statistical", fingerprint={"last_observation": last},
                      recipe={"components": [{"type": "statistical", "model": "naive"}]},
                      created_at=RETRAINED, as_of=RETRAINED)
    assert data_end(mv, source) == datetime.fromisoformat(last)
    assert saw_after(mv, as_of, source) is (not trained)
    reg.promote(mv.version, dataset="toy", at=RETRAINED)
    chosen, said = model_for_as_of(reg, "toy", reg.production("toy"), as_of, source)
    assert chosen.version == mv.version and (said is None) is trained, said
    assert run_models(reg, "toy", source)(as_of).version == mv.version


@pytest.mark.parametrize(("source", "end"), [
    (_source("1h", time_label="end"), datetime(2024, 2, 18, 9, 30)),  # hour-ending: the hour labelled 10:00 read
    (_source("1d", tz="America/New_York"), datetime(2024, 2, 18, 5, 30)),  # its wall time in New York
    (_source("1d", aggregate="sum"), datetime(2024, 2, 17, 10, 30)),  # the day of 18 February not over: not read
])
def test_a_model_without_its_last_observation_is_bounded_by_its_run_s_as_of(tmp_path, source, end):
    """A version registered without `last_observation` (by hand, or before a retrain recorded it): the as_of of
    the run that trained it bounds the data that run read, cut as ingest cuts it (`timekeys.observed_through`), a
    run at that as_of saw all of it (the boundary), one a minute before it may not have."""
    trained_at = datetime(2024, 2, 18, 10, 30)
    reg = ModelRegistry(tmp_path / "models")
    mv = reg.register(None, name="naive", dataset="toy", kind="statistical", fingerprint={"source": "toy"},
                      recipe={"components": [{"type": "statistical", "model": "naive"}]},
                      created_at=RETRAINED, as_of=trained_at)
    assert data_end(mv, source) == end
    assert saw_after(mv, trained_at, source) is False and saw_after(mv, trained_at + timedelta(days=1), source) is False
    assert saw_after(mv, trained_at - timedelta(minutes=1), source) is True


def test_an_earlier_model_is_chosen_by_where_its_data_ended_not_by_when_it_was_trained(tmp_path):
    """Of two earlier versions a past as_of may take, the one whose data ended later wins, whenever each was
    retrained: one retrained later of data to January is not newer data than one of data to February."""
    reg = ModelRegistry(tmp_path / "models")
    versions = {}
    for name, last, at in [("feb", "2024-02-01T00:00:00", datetime(2024, 3, 1)),
                           ("jan", "2024-01-01T00:00:00", datetime(2024, 3, 15)),
                           ("jun", "2024-06-01T00:00:00", datetime(2024, 6, 2))]:
        mv = reg.register(None, name=name, dataset="toy", kind="statistical", created_at=at, as_of=at,
                          fingerprint={"last_observation": last},
                          recipe={"components": [{"type": "statistical", "model": "naive"}]})
        reg.promote(mv.version, dataset="toy", at=at)
        versions[name] = mv.version
    source = _source("1mo")
    chosen, said = model_for_as_of(reg, "toy", reg.production("toy"), datetime(2024, 4, 1), source)
    assert chosen.version == versions["feb"] and said is not None and said.startswith(versions["jun"]), said


def test_a_backfill_computes_each_date_s_bound_and_each_version_s_data_end_once(tmp_path, monkeypatch):
    """Review 51: `run_models` recomputed the observed bound of an as_of (a `pl.select` for end-labelled data) once
    per promoted version and each version's data end at every date: 2,000 hourly dates of 10 versions took 4 s.
    Once each now, choosing what the single run chooses."""
    from flowcast.flows import forecast

    reg = _home(tmp_path)
    source = _source("1h", time_label="end")
    dates = [ENDS["gru-v1"] + timedelta(hours=h) for h in range(0, 24 * 100, 7)]
    expected = [model_for_as_of(reg, "toy", reg.production("toy"), d, source)[0].version for d in dates]
    bounds: list[object] = []
    ends: list[str] = []
    observed, data_end_of = forecast._observed_through, forecast.data_end
    monkeypatch.setattr(forecast, "_observed_through", lambda a, s: bounds.append(a) or observed(a, s))
    monkeypatch.setattr(forecast, "data_end", lambda m, s=None: ends.append(m.version) or data_end_of(m, s))
    model_at = run_models(reg, "toy", source)
    assert [model_at(d).version for d in dates] == expected
    assert sorted(ends) == sorted(ENDS)
    assert len(bounds) == len(dates) + len(ENDS), len(bounds)  # (data_end bounds a version by its run's as_of)
