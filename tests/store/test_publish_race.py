"""Publishing races the production pointer: a run decides on a model (promotes its winner, or
keeps production), then publishes that model's forecasts. Checked and published under the
registry's lock (`ModelRegistry.publishing`), so forecasts land only while the model that made
them is in production: real processes on the real registry and stores."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from publisher import make_forecast
from store_backends import make_backend

from flowcast.errors import ProductionMovedError
from flowcast.registry import ModelRegistry

WORKER = Path(__file__).resolve().parents[1] / "publish_faults" / "race_worker.py"
DS, AS_OF = "sales", datetime(2024, 3, 1)


def _statistical(reg: ModelRegistry, name: str) -> str:
    return reg.register(None, name=name, dataset=DS, kind="statistical",
                        recipe={"components": [{"type": "statistical", "model": "naive"}]},
                        created_at=datetime(2024, 1, 1)).version


def _publish(store, variant: int, version: str):
    return store.publish(make_forecast(variant, 3, 2, AS_OF), dataset=DS, as_of=AS_OF, model="naive",
                         model_version=version, run_id=f"run-{variant}", created_at=AS_OF + timedelta(hours=1),
                         horizon=2)


def test_a_run_publishes_nothing_once_production_moved_after_its_decision(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    store = make_backend("embedded", None, tmp_path).store  # type: ignore[arg-type]
    kept, other = _statistical(reg, "kept"), _statistical(reg, "other")
    reg.promote(kept)
    _publish(store, 1, kept)
    reg.promote(other, expected=kept)  # another run, after this one decided to keep `kept`
    with pytest.raises(ProductionMovedError, match=f"it decided on {kept} and production is now {other}; nothing "
                                                   "was published"), reg.publishing(DS, kept):
        _publish(store, 2, kept)
    assert set(store.read(dataset=DS, as_of=AS_OF)["run_id"]) == {"run-1"}


def test_no_promotion_lands_between_the_check_and_the_publish(tmp_path):
    """A run holds `publishing` (production checked); another process promotes meanwhile: its
    promotion waits for the publish, so the publish and the pointer never disagree."""
    reg = ModelRegistry(tmp_path / "models")
    store = make_backend("embedded", None, tmp_path).store  # type: ignore[arg-type]
    kept, other = _statistical(reg, "kept"), _statistical(reg, "other")
    reg.promote(kept)
    seen: list[str] = []
    code = ("import sys; from flowcast.registry import ModelRegistry; "
            f"ModelRegistry(sys.argv[1]).promote({other!r}); print('promoted', flush=True)")
    with reg.publishing(DS, kept):
        promoter = subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "models")],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
            stdout=subprocess.PIPE, text=True)
        reader = threading.Thread(target=lambda: seen.append(promoter.stdout.readline().strip()))
        reader.start()
        _publish(store, 1, kept)
        # the promoter may have started or not; either way it has not promoted: the lock is held
        assert reg.production(DS).version == kept and not seen
    assert promoter.wait(timeout=120) == 0
    reader.join()
    assert seen == ["promoted"] and reg.production(DS).version == other


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend_name", ["embedded", "postgres"])
def test_concurrent_runs_leave_the_production_models_forecasts_published(tmp_path, request, backend_name):
    """Four processes, each five times: read production, promote a new version (compare and swap)
    or keep it, publish the forecasts of the version decided on, for one as_of. Whatever the
    interleaving, what that as_of holds at the end is the production model's, whole."""
    backend = make_backend(backend_name, request, tmp_path)
    models = tmp_path / "models"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                                        str(WORKER.parent)])}
    env.pop("FLOWCAST_FAULT", None)
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(models), backend.spec, str(w), "5"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(4)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    lines = [ln for o, _ in outs for ln in o.split()]
    assert "published" in lines
    reg = ModelRegistry(models)
    held = backend.reopen().read(dataset=DS, as_of=AS_OF)
    assert held.height == 6 and set(held["model_version"]) == {reg.production(DS).version}
    assert held["run_id"].n_unique() == 1 and not held.select("unique_id", "ds").is_duplicated().any()


def test_a_promoted_run_that_lost_the_publish_takes_its_promotion_out_of_the_stack(tmp_path):
    """Run A promoted W, run B promoted X over it before A published: A publishes nothing, and a
    rollback from X puts back the model before W (W never published forecasts)."""
    reg = ModelRegistry(tmp_path / "models")
    before, w, x = _statistical(reg, "before"), _statistical(reg, "w"), _statistical(reg, "x")
    reg.promote(before)
    reg.promote(w, expected=before)  # run A's promotion
    reg.promote(x, expected=w)  # run B's, before A published
    with pytest.raises(ProductionMovedError, match=f"{w} was taken out of the production stack"), \
            reg.publishing(DS, w, promoted=True):
        pytest.fail("published although production moved")
    assert reg.production(DS).version == x
    assert [e["action"] for e in reg.history(DS)][-1] == "retract"
    assert reg.rollback(dataset=DS).version == before


def test_a_run_whose_publish_failed_after_another_promotion_takes_its_promotion_out_of_the_stack(tmp_path):
    """Run A promoted W and its publish failed (a full disk); run B promoted X over W before A could withdraw it
    (the registry's lock is free between A's failed publish and its withdrawal). The withdrawal's compare and swap
    failed, A logged that W 'stays in production' (it did not: X was) and left W in the stack under X, so a
    rollback from X put back W, whose forecasts were never published. W is taken out, as when a run loses the
    publish guard."""
    from types import SimpleNamespace

    from flowcast.config import load_settings
    from flowcast.flows.pipeline import _withdraw_unpublished

    settings = load_settings(home=tmp_path / "home")
    reg = ModelRegistry(settings.models_dir)
    before, w, x = _statistical(reg, "before"), _statistical(reg, "w"), _statistical(reg, "x")
    reg.promote(before)
    reg.promote(w, expected=before)  # run A's promotion; its publish then fails
    reg.promote(x, expected=w)  # run B's, before A withdrew W
    said: list[str] = []
    log = SimpleNamespace(error=said.append, warning=said.append, info=said.append)  # what the run's log receives
    _withdraw_unpublished(settings, reg, DS, w, AS_OF, datetime(2024, 3, 1, 1), OSError(28, "No space left"), log)
    assert reg.production(DS).version == x
    assert [e["action"] for e in reg.history(DS)][-1] == "retract"
    assert len(said) == 1 and f"{w} was taken out of the production stack of {DS}" in said[0], said
    assert reg.rollback(dataset=DS).version == before


SLOT_WORKER = WORKER.parent / "slot_worker.py"


@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend_name", ["embedded", "postgres"])
def test_runs_of_one_slot_that_all_found_it_empty_publish_it_once(tmp_path, request, backend_name):
    """Regression (ops16): two scheduled runs of one slot (overwrite off) that both found the key empty as they
    started both published, one after the other on the key's lock. Three real processes check, wait until all
    have checked, then publish with `if_absent`: the check made again under the key's lock (in the publish
    transaction) lets one write; the others write nothing and name the run that did."""
    backend = make_backend(backend_name, request, tmp_path)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                                        str(WORKER.parent)])}
    env.pop("FLOWCAST_FAULT", None)
    procs = [subprocess.Popen([sys.executable, str(SLOT_WORKER), backend.spec, str(barrier), str(w), "3"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(3)]
    outs = [p.communicate(timeout=200) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    lines = sorted(o.strip() for o, _ in outs)
    published = [ln.split()[1] for ln in lines if ln.startswith("published ")]
    assert len(published) == 1, lines  # every racer got past the first check: it was empty for all of them
    assert lines.count(f"held {published[0]}") == 2, lines
    held = backend.reopen().read(dataset=DS, as_of=AS_OF)
    assert held.height == 6 and set(held["run_id"]) == set(published)  # 3 series x 2 steps, one set
    assert not held.select("unique_id", "ds").is_duplicated().any()
    assert backend.reopen().receipt_of(DS, AS_OF)["run_id"] == published[0]


@pytest.mark.parametrize("backend_name", ["embedded", "postgres"])
def test_if_absent_writes_nothing_into_a_published_key(tmp_path, request, backend_name):
    from flowcast.errors import AlreadyPublished

    store = make_backend(backend_name, request, tmp_path).store
    first = store.publish(make_forecast(1, 3, 2, AS_OF), dataset=DS, as_of=AS_OF, model="naive", model_version="a-v1",
                          run_id="run-a", created_at=AS_OF, horizon=2, if_absent=True)  # empty: published
    with pytest.raises(AlreadyPublished, match="as_of 2024-03-01 is published already \\(run run-a, a-v1\\)") \
            as caught:
        store.publish(make_forecast(2, 3, 2, AS_OF), dataset=DS, as_of=AS_OF, model="naive", model_version="b-v1",
                      run_id="run-b", created_at=AS_OF, horizon=2, if_absent=True)
    assert caught.value.held["run_id"] == "run-a" and int(caught.value.held["rows"]) == 6
    assert store.receipt_of(DS, AS_OF)["content_hash"] == first.content_hash
    assert set(store.read(dataset=DS, as_of=AS_OF)["run_id"]) == {"run-a"}
    replaced = store.publish(make_forecast(2, 3, 2, AS_OF), dataset=DS, as_of=AS_OF, model="naive",
                             model_version="b-v1", run_id="run-b", created_at=AS_OF, horizon=2)  # overwrite: replaces
    assert replaced.replaced_rows == 6 and set(store.read(dataset=DS, as_of=AS_OF)["run_id"]) == {"run-b"}


@pytest.mark.parametrize("backend_name", ["embedded", "postgres"])
def test_refuse_if_refuses_only_the_publishes_it_names(tmp_path, request, backend_name):
    """`refuse_if(held)` (a scheduled retrain: refuse a key another run of the slot retrained, replace any other
    publish) is asked under the key's lock with what the key holds: True writes nothing (AlreadyPublished naming
    it), False replaces; an empty key is written without asking."""
    from flowcast.errors import AlreadyPublished

    store = make_backend(backend_name, request, tmp_path).store
    asked: list[dict] = []

    def retrained(held: dict) -> bool:
        asked.append(dict(held))
        return held.get("model_version") == "slot-v2"

    def publish(variant: int, version: str, run: str):
        return store.publish(make_forecast(variant, 3, 2, AS_OF), dataset=DS, as_of=AS_OF, model="naive",
                             model_version=version, run_id=run, created_at=AS_OF, horizon=2, refuse_if=retrained)

    publish(1, "old-v1", "run-forecast")  # empty: written, nothing asked
    assert asked == []
    publish(2, "slot-v2", "run-a")  # the forecast flow's publish: replaced
    assert [h["run_id"] for h in asked] == ["run-forecast"]
    with pytest.raises(AlreadyPublished, match="published already \\(run run-a, slot-v2\\)") as caught:
        publish(3, "slot-v3", "run-b")  # another run's retrain of the slot: refused
    assert caught.value.held["run_id"] == "run-a" and [h["run_id"] for h in asked] == ["run-forecast", "run-a"]
    assert set(store.read(dataset=DS, as_of=AS_OF)["run_id"]) == {"run-a"}
    assert store.receipt_of(DS, AS_OF)["model_version"] == "slot-v2"
