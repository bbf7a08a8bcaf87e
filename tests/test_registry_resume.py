"""A re-run of a killed run's as_of and the version that run registered and never published: `same_registration`
proves it the same model (then `reuse` takes it over), else `delete(run=..., for_run=..., released=...)` takes it
back past the dead run's pin. Real registries on disk."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowcast.errors import RegistryError
from flowcast.registry import ModelRegistry, Pin, Promotion, same_registration

T0 = datetime(2024, 1, 1, 12, 0)
AS_OF = datetime(2024, 1, 1)
DEAD, RERUN = "dead-run", "re-run"


def _art(tmp_path: Path, payload: str = "w") -> Path:
    d = tmp_path / f"art_{payload}"
    (d / "members" / "gru").mkdir(parents=True, exist_ok=True)
    (d / "members" / "gru" / "model.ckpt").write_text(payload)
    (d / "recipe.json").write_text("{}")  # written over by `register`: not compared
    return d


def _kwargs(**change: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {"name": "gru", "dataset": "toy", "kind": "network",
                          "recipe": {"components": [{"type": "network", "cell": "gru", "path": "members/gru"}],
                                     "weights": [1.0], "intervals": {"gru": {"q": [0.5, 1.25]}}},
                          "config": {"hidden_size": 8}, "metrics": {"mase": 0.9}, "as_of": AS_OF,
                          "fingerprint": {"source": "toy", "fingerprint": "abc", "as_of": AS_OF.isoformat(),
                                          "run_id": DEAD}}
    kw.update(change)
    return kw


def _killed_runs_version(reg: ModelRegistry, tmp_path: Path) -> str:
    """What a backfill date killed before its publish leaves: registered, recorded as the champion, pinned."""
    pin = Pin(run=DEAD, at=T0, until=T0 + timedelta(hours=24))
    return reg.register(_art(tmp_path), **_kwargs(), created_at=T0, pin=pin,
                        then=Promotion("champion", at=T0, as_of=AS_OF)).version


def test_the_same_training_is_proved_the_same_whatever_run_registered_it(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    mv = reg.get(_killed_runs_version(reg, tmp_path))
    ours = _kwargs(fingerprint={**_kwargs()["fingerprint"], "run_id": RERUN}, metrics={"mase": 0.91})
    assert same_registration(mv, _art(tmp_path / "again"), **ours) == ""


@pytest.mark.parametrize(("change", "payload", "said"), [
    ({"name": "lstm"}, "w", "its name differs"),
    ({"recipe": {**_kwargs()["recipe"], "weights": [0.5]}}, "w", "its recipe differs"),
    ({"config": {"hidden_size": 9}}, "w", "its configuration differs"),
    ({"fingerprint": {**_kwargs()["fingerprint"], "fingerprint": "abd"}}, "w", "its data fingerprint differs"),
    ({}, "other weights", "its model files differ"),
])
def test_anything_else_differing_is_named(tmp_path, change, payload, said):
    reg = ModelRegistry(tmp_path / "models")
    mv = reg.get(_killed_runs_version(reg, tmp_path))
    assert same_registration(mv, _art(tmp_path / "again", payload), **_kwargs(**change)) == said


PREP = {"preprocess": {"impute": "linear", "max_gap": 3}, "ended_series": "forecast", "horizon": None, "version": 30}


@pytest.mark.parametrize(("theirs", "ours", "said"), [
    (PREP, PREP, ""),
    (PREP, {**PREP, "version": 31}, "its preprocessing (what it was trained on) differs"),  # flowcast upgraded since
    (PREP, {**PREP, "preprocess": {"impute": "zero", "max_gap": 3}}, "its preprocessing (what it was trained on) differs"),
    (PREP, {**PREP, "ended_series": "exclude"}, "its preprocessing (what it was trained on) differs"),
    (None, PREP, "its preprocessing (what it was trained on) differs"),  # registered by a flowcast that did not say
])
def test_a_statistical_version_prepared_otherwise_is_not_the_same(tmp_path, theirs, ours, said):
    """mend29: a statistical version holds no trained files, so nothing told one trained on data prepared otherwise
    (flowcast upgraded, [preprocess] or validation.ended_series changed between the kill and the re-run: neither in
    the data fingerprint nor in the recorded [model]/[evaluation] configuration) from the re-run's own: it was taken
    over. The data fingerprint records the preprocessing, compared on its own."""
    fp = {"source": "toy", "fingerprint": "abc", "as_of": AS_OF.isoformat()}
    kw = {"name": "theta", "dataset": "toy", "kind": "statistical", "recipe": {"model": "theta"}, "config": {},
          "metrics": {"mase": 0.9}, "as_of": AS_OF}
    reg = ModelRegistry(tmp_path / "models")
    mv = reg.get(reg.register(None, **kw, created_at=T0, fingerprint={
        **fp, "run_id": DEAD, **({"preprocessing": theirs} if theirs is not None else {})}).version)
    assert same_registration(mv, None, **kw, fingerprint={**fp, "run_id": RERUN, "preprocessing": ours}) == said


@pytest.mark.parametrize(("change", "said"), [
    ("none", ""),
    ("last byte", "its model files differ"),  # the same size: read to its end
    ("longer", "its model files differ"),
    ("extra file", "its model files differ"),
    ("missing file", "its model files differ"),
])
def test_model_files_are_compared_streamed_never_read_whole(tmp_path, monkeypatch, change, said):
    """Both versions' model files were read whole into memory (two copies of every checkpoint at once): they are
    compared a chunk at a time, to the last byte."""
    weights = "w" * 200_000  # a few of filecmp's 8 KiB chunks
    reg = ModelRegistry(tmp_path / "models")
    first = _art(tmp_path)
    (first / "members" / "gru" / "model.ckpt").write_text(weights)
    mv = reg.get(reg.register(first, **_kwargs(), created_at=T0).version)
    again = _art(tmp_path / "again")
    (again / "members" / "gru" / "model.ckpt").write_text(
        weights[:-1] + ("x" if change == "last byte" else "w") + ("w" if change == "longer" else ""))
    if change == "extra file":
        (again / "members" / "gru" / "meta.json").write_text("{}")
    if change == "missing file":
        (again / "members" / "gru" / "model.ckpt").unlink()

    def whole(self: Path) -> bytes:
        raise AssertionError(f"{self} read whole")

    monkeypatch.setattr(Path, "read_bytes", whole)
    assert same_registration(mv, again, **_kwargs()) == said


def test_reuse_pins_it_for_the_rerun_releases_the_dead_pin_and_says_so_once(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    version = _killed_runs_version(reg, tmp_path)
    at = T0 + timedelta(hours=1)
    pin = Pin(run=RERUN, at=at, until=at + timedelta(hours=24))
    mv = reg.reuse(version, dataset="toy", run=RERUN, for_run=DEAD, pin=pin, reason="the same model",
                   then=Promotion("champion", at=at, as_of=AS_OF), released=[DEAD])
    assert mv.version == version and [v.version for v in reg.list()] == [version]
    assert reg.pin_runs(version) == [RERUN]  # the dead run's pin gone, the re-run's in its place
    events = [(e["action"], e["version"], e.get("run"), e.get("for_run")) for e in reg.history("toy")]
    assert events == [("champion", version, None, None), ("reuse", version, RERUN, DEAD)]  # not recorded twice
    assert reg.champion("toy").version == version


def test_reuse_refused_by_its_check_changes_nothing(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    version = _killed_runs_version(reg, tmp_path)
    before = (tmp_path / "models" / "production.json").read_bytes()

    def check() -> None:
        raise RegistryError("published since")

    with pytest.raises(RegistryError, match="published since"):
        reg.reuse(version, dataset="toy", run=RERUN, for_run=DEAD, pin=Pin(run=RERUN, at=T0, until=T0), reason="x",
                  released=[DEAD], check=check)
    assert (tmp_path / "models" / "production.json").read_bytes() == before and reg.pin_runs(version) == [DEAD]


def test_a_take_back_goes_past_the_dead_runs_pin_only(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    version = _killed_runs_version(reg, tmp_path)
    at = T0 + timedelta(hours=1)  # the dead run's pin has not lapsed
    with pytest.raises(RegistryError, match="in use by the running flow run dead-run"):
        reg.delete(version, at=at, run=RERUN, dataset="toy", reason="x", allow_protected=True)
    reg.delete(version, at=at, run=RERUN, for_run=DEAD, dataset="toy", reason="its recipe differs",
               released=[DEAD], allow_protected=True)
    assert reg.list() == [] and reg.pin_runs(version) == [] and reg.champion("toy") is None
    last = reg.history("toy")[-2:]
    assert [(e["action"], e["version"]) for e in last] == [("withdraw_champion", version), ("take_back", version)]
    assert last[1]["run"] == RERUN and last[1]["for_run"] == DEAD and last[0]["reason"] == "its recipe differs"


def test_reuse_refuses_a_version_whose_removal_is_recorded(tmp_path, monkeypatch):
    """review27: `reuse` pinned, and recorded the `reuse` of, a version whose removal is recorded and not finished
    (its files left by an I/O error, the note kept for the next writer), as `pin`, `promote` and `record_champion`
    refuse to: the next writer then removed the version the re-run had taken over to publish, its pin and its `reuse`
    event naming a version gone. Refused now, nothing written."""
    import errno

    reg = ModelRegistry(tmp_path / "models")
    version = _killed_runs_version(reg, tmp_path)
    real = ModelRegistry._remove_version

    def broken(self: ModelRegistry, name: str) -> None:
        if name == version:
            raise OSError(errno.EIO, "Input/output error", str(self.versions_dir / name))
        real(self, name)

    monkeypatch.setattr(ModelRegistry, "_remove_version", broken)
    with pytest.raises(OSError, match="Input/output error"):
        reg.delete(version, at=T0 + timedelta(hours=25), allow_protected=True)  # `flowcast gc --version`, the dead
        # run's pin lapsed: recorded, its files left
    assert version in reg.removals_due()
    before = (tmp_path / "models" / "production.json").read_bytes()
    at = T0 + timedelta(hours=1)
    with pytest.raises(RegistryError, match="its removal is recorded"):
        reg.reuse(version, dataset="toy", run=RERUN, for_run=DEAD, pin=Pin(run=RERUN, at=at, until=at),
                  reason="the same model", released=[DEAD])
    assert (tmp_path / "models" / "production.json").read_bytes() == before
    assert RERUN not in reg.pin_runs(version)


def _network(root: Path, change: str = "") -> Path:
    """A trained network's files as train.py writes them: a Lightning checkpoint (torch.save) and meta.json,
    `change` made to one field."""
    import json

    import torch

    art = root / "members" / "gru"
    art.mkdir(parents=True)
    weight = torch.arange(6, dtype=torch.float64 if change == "weight dtype" else torch.float32).reshape(2, 3)
    if change == "weight":
        weight[1, 2] += 1e-6
    run = "20190601T000000-2d92e9fb" if change == "run folder" else "20190601T000000-3beb6088"
    callback = {"monitor": None, "best_model_score": None, "best_model_path": "", "kth_value": torch.tensor(float("inf")),
                "dirpath": f"/home/runs/{run}/gru-s0/checkpoints", "best_k_models": {}, "last_model_path": ""}
    torch.save({"state_dict": {"encoder.weight": weight, "head.bias": torch.zeros(3)},
                "callbacks": {"ModelCheckpoint{'monitor': None}": callback}, "epoch": 0,
                "global_step": 6 if change == "steps" else 5, "hyper_parameters": {"cell": "gru", "hidden_size": 8}},
               art / "model.ckpt")
    seconds = 0.77 if change == "train_seconds" else 0.41
    meta = {"cell": "gru", "hparams": {"hidden_size": 9 if change == "hparams" else 8},
            "metrics": {"val_loss": float("nan"), "train_seconds": 0.67 if change == "metrics.train_seconds" else 0.41},
            "train_seconds": seconds, "checkpoint": "model.ckpt",
            "config": {"seed": 0, "init_from": f"/home/runs/{run}/gru-s0-backtest/model.ckpt"}}
    (art / "meta.json").write_text(json.dumps(meta, indent=2))
    return root


@pytest.mark.parametrize(("change", "said"), [
    ("", ""),
    ("train_seconds", ""),  # the wall-clock time of the training
    ("metrics.train_seconds", ""),
    ("run folder", ""),  # the checkpoint callback's dirpath, meta.json's config.init_from
    ("weight", "its model files differ"),
    ("weight dtype", "its model files differ"),
    ("steps", "its model files differ"),
    ("hparams", "its model files differ"),
])
def test_a_network_trained_again_is_the_same_but_its_volatile_fields(tmp_path, change, said):
    """reuse28: a network trained again on the same data with the same seed has the same weights but never the same
    files (meta.json's train_seconds, the checkpoint's run folder): a killed run's network
    version was always taken back and registered again under a new number. Its `VOLATILE_FIELDS` aside, it is the
    same model; a weight, a step or a hyperparameter that differs is not."""
    reg = ModelRegistry(tmp_path / "models")
    import filecmp

    mv = reg.get(reg.register(_network(tmp_path / "first"), **_kwargs(), created_at=T0).version)
    again = _network(tmp_path / "again", change)
    ckpt = "members/gru/model.ckpt"  # the same content saved again: the same bytes; another run folder: not
    in_ckpt = change in ("run folder", "weight", "weight dtype", "steps")
    assert filecmp.cmp(tmp_path / "first" / ckpt, again / ckpt, shallow=False) != in_ckpt
    assert same_registration(mv, again, **_kwargs()) == said


def _warm_run(root: Path, run: str, *, data_seed: int = 0, warm: bool = True) -> tuple[Path, dict[str, Any]]:
    """One retrain's network winner as a run with model.warm_start_steps makes it, really trained: its backtest
    network in the run's own folder (`runs/<as_of>-<run id>/gru-s0-backtest`), then the production refit on all data
    starting from that network's weights (`retrain_scoring.warm_settings`: model.init_from names that checkpoint,
    in the run's folder), its model.ckpt and meta.json copied into the candidate's folder as the pipeline copies them
    (`members/gru-s0`). `warm=False`: a refit from new weights, as many steps. Returns (the artifact folder, the
    registration's arguments: the run's configuration, `pipeline._registration`'s)."""
    import shutil
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "models"))
    from model_factories import make_td, tiny_cfg

    from flowcast.config import Settings
    from flowcast.flows.retrain_scoring import warm_settings
    from flowcast.models.train import train_model

    settings = Settings(home=root / "home", model=tiny_cfg(max_steps=6, warm_start_steps=3, seed=0))
    run_dir = root / "runs" / f"20240101T000000-{run}"
    td = make_td(n_series=3, length=40, seed=data_seed)
    train_model(td, settings.model, run_dir / "gru-s0-backtest", cell="gru")
    refit = warm_settings(settings, run_dir / "gru-s0-backtest") if warm else settings.model_copy(
        update={"model": settings.model.model_copy(update={"max_steps": 3})})
    assert (refit.model.init_from is not None) == warm and refit.model.max_steps == 3
    trained = train_model(td, refit.model, run_dir / "gru-s0", cell="gru")
    art = root / "candidates" / run / "gru"
    (art / "members" / "gru-s0").mkdir(parents=True)
    for f in ("model.ckpt", "meta.json"):
        shutil.copy2(trained.path / f, art / "members" / "gru-s0" / f)
    kwargs = _kwargs(recipe={"components": [{"type": "network", "cell": "gru", "seed": 0, "path": "members/gru-s0"}],
                             "weights": [1.0]},
                     config={**settings.model.model_dump(mode="json"),
                             "evaluation": settings.evaluation.model_dump(mode="json")},
                     fingerprint={**_kwargs()["fingerprint"], "run_id": run})
    return art, kwargs


@pytest.mark.parametrize(("again", "said"), [
    ({}, ""),  # the same data, configuration and seed, warm-started from its own run's backtest weights
    ({"data_seed": 1}, "its model files differ"),  # warm-started from other weights (its backtest saw other data)
    ({"warm": False}, "its model files differ"),  # not warm-started: new weights, as many steps
])
def test_a_warm_started_network_trained_again_is_the_same_registration_only_from_the_same_weights(
        tmp_path, again, said):
    """registry29: `VOLATILE_FIELDS` leaves meta.json's config.init_from out of the comparison (model.warm_start_steps
    sets it to the backtest checkpoint in the run's own folder, a path with the run id), which was read from the code
    and never tested with a real warm-started training. Trained for real: a re-run's warm-started network, from the
    same backtest weights in its own run's folder, is the killed run's registration (`same_registration`: ''), and
    the paths differ only there; one warm-started from other weights, or trained from new weights (init_from unset,
    nothing else in meta.json's config differing), is not."""
    import json

    first, kwargs = _warm_run(tmp_path / "a", "3beb6088")
    reg = ModelRegistry(tmp_path / "models")
    mv = reg.get(reg.register(first, **kwargs, created_at=T0).version)
    art, ours = _warm_run(tmp_path / "b", "2d92e9fb", **again)
    assert ours["config"] == kwargs["config"]  # the run's configuration: the same (init_from set per training only)
    meta = [json.loads((d / "members" / "gru-s0" / "meta.json").read_text()) for d in (first, art)]
    inits = [m["config"]["init_from"] for m in meta]
    assert inits[0] is not None and "20240101T000000-3beb6088" in inits[0] and inits[0] != inits[1]
    assert {k: v for k, v in meta[0]["config"].items() if k != "init_from"} == \
           {k: v for k, v in meta[1]["config"].items() if k != "init_from"}
    assert same_registration(mv, art, **ours) == said
