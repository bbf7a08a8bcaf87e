"""Model registry: immutable versions, atomic production pointer, crash safety, rollback, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowcast.errors import RegistryError
from flowcast.registry import ModelRegistry

CHILD = Path(__file__).parent / "publish_faults" / "registry_child.py"
T0 = datetime(2024, 1, 1, 12, 0)


def _artifact(tmp_path: Path, name: str, payload: str) -> Path:
    d = tmp_path / f"art_{name}_{payload}"
    (d / "ckpt").mkdir(parents=True)
    (d / "ckpt" / "model.ckpt").write_text(payload)
    (d / "meta.json").write_text(json.dumps({"cell": name}))
    return d


def _register(reg: ModelRegistry, tmp_path: Path, name: str, payload: str = "w"):
    return reg.register(
        _artifact(tmp_path, name, payload), name=name, config={"hidden_size": 8},
        fingerprint={"source": "toy", "as_of": "2024-01-01", "rows": 10}, metrics={"mase": 0.9},
        as_of=datetime(2024, 1, 1), created_at=T0,
    )


def test_register_copies_an_immutable_version(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    art = _artifact(tmp_path, "lstm", "weights-1")
    mv = reg.register(art, name="lstm", config={"hidden_size": 8}, fingerprint={"rows": 10},
                      metrics={"mase": 0.9}, as_of=datetime(2024, 1, 1), created_at=T0)
    assert mv.version == "lstm-v1"
    assert (mv.path / "ckpt" / "model.ckpt").read_text() == "weights-1"
    (art / "ckpt" / "model.ckpt").write_text("changed later")  # the registry holds its own copy
    assert (reg.get("lstm-v1").path / "ckpt" / "model.ckpt").read_text() == "weights-1"
    assert not os.stat(mv.path / "ckpt" / "model.ckpt").st_mode & 0o222  # files are read-only
    if os.geteuid() != 0:  # root ignores file modes
        with pytest.raises(PermissionError):
            (mv.path / "ckpt" / "model.ckpt").write_text("tamper")
    got = reg.get("lstm-v1")
    assert got.config == {"hidden_size": 8} and got.fingerprint == {"rows": 10} and got.metrics == {"mase": 0.9}
    assert got.as_of == "2024-01-01T00:00:00" and got.created_at == T0.isoformat()
    assert reg.production() is None  # registering never promotes
    assert json.loads(json.dumps(got.to_dict()))["version"] == "lstm-v1"


def test_versions_are_sequential_and_listed_in_order(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    names = [_register(reg, tmp_path, n, str(i)).version for i, n in enumerate(["rnn", "lstm", "rnn", "gru"])]
    assert names == ["rnn-v1", "lstm-v2", "rnn-v3", "gru-v4"]
    assert [v.version for v in reg.list()] == names
    assert [v.version for v in reg.list("rnn")] == ["rnn-v1", "rnn-v3"]


def test_a_deleted_version_name_is_never_reused(tmp_path):
    import shutil

    reg = ModelRegistry(tmp_path / "models")
    v1 = _register(reg, tmp_path, "rnn", "1").version
    v2 = _register(reg, tmp_path, "rnn", "2").version
    reg.promote(v2)
    for d in (reg.versions_dir / v2, reg.versions_dir / v1):
        for f in d.rglob("*"):
            if f.is_file():
                f.chmod(0o644)
        shutil.rmtree(d)
    assert _register(reg, tmp_path, "gru", "3").version == "gru-v3"
    with pytest.raises(RegistryError, match="unknown model version 'rnn-v2'"):
        reg.production()  # the pointer names a version removed by hand: said, not hidden


@pytest.mark.parametrize("bad", ["nope-v9", "../x", ".tmp-abc", ""])
def test_unknown_version_is_named(tmp_path, bad):
    reg = ModelRegistry(tmp_path / "models")
    _register(reg, tmp_path, "gru")
    with pytest.raises(RegistryError, match="unknown model version") as exc:
        reg.get(bad)
    assert repr(bad) in str(exc.value) and "gru-v1" in str(exc.value)
    with pytest.raises(RegistryError):
        reg.promote(bad)


def test_promote_and_rollback_stack(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    a, b, c = (_register(reg, tmp_path, "lstm", p).version for p in "abc")
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()
    reg.promote(a, reason="first", at=T0)
    with pytest.raises(RegistryError, match="nothing to roll back to: production is lstm-v1"):
        reg.rollback()
    reg.promote(b)
    reg.promote(b)  # promoting the champion again does not stack it twice
    reg.promote(c)
    assert reg.production().version == c
    assert reg.rollback().version == b
    assert reg.production().version == b
    assert reg.rollback(reason="bad data").version == a
    assert [e["action"] for e in reg.history()] == ["promote", "promote", "promote", "promote", "rollback", "rollback"]
    assert reg.history()[0] == {"action": "promote", "version": a, "previous": None, "reason": "first",
                                "at": T0.isoformat()}
    assert not [p for p in reg.root.iterdir() if p.name.endswith(".tmp")]


def test_corrupt_pointer_is_a_registry_error(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    _register(reg, tmp_path, "rnn")
    reg.pointer_path.write_text("{not json")
    with pytest.raises(RegistryError, match="corrupt production pointer"):
        reg.production()


def _run_child(root: Path, art: Path, name: str, fault: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ}
    env.pop("FLOWCAST_FAULT", None)
    if fault:
        env["FLOWCAST_FAULT"] = fault
    return subprocess.run([sys.executable, str(CHILD), str(root), str(art), name], env=env, check=False,
                          capture_output=True, text=True, timeout=120)


def test_crash_between_register_and_promote_keeps_the_old_champion(tmp_path):
    root = tmp_path / "models"
    reg = ModelRegistry(root)
    old = _register(reg, tmp_path, "lstm", "old").version
    reg.promote(old)
    # killed while swapping the pointer: the new version exists, production is still the old one
    proc = _run_child(root, _artifact(tmp_path, "gru", "new"), "gru", "registry:before_pointer_rename")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.split()[0] == "gru-v2"
    assert reg.production().version == old
    assert [v.version for v in reg.list()] == [old, "gru-v2"]
    assert json.loads(reg.pointer_path.read_text())["stack"] == [old]  # the pointer is whole JSON
    # killed while registering: no half version is listed, and the next run completes
    proc = _run_child(root, _artifact(tmp_path, "rnn", "new"), "rnn", "registry:before_version_rename")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert [v.version for v in reg.list()] == [old, "gru-v2"]
    assert reg.production().version == old
    proc = _run_child(root, _artifact(tmp_path, "rnn", "again"), "rnn", None)
    assert proc.returncode == 0, proc.stderr
    assert reg.production().version == "rnn-v3"
    assert not [d for d in reg.versions_dir.iterdir() if d.name.startswith(".")]  # stale temp cleaned
    assert reg.rollback().version == old  # rolling back is one call (one command in the CLI)


def test_cli_models_list_promote_rollback(tmp_path, _isolated_home):
    from flowcast.cli import app

    reg = ModelRegistry(_isolated_home / "models")
    a = _register(reg, tmp_path, "rnn", "1").version
    b = _register(reg, tmp_path, "gru", "2").version
    runner = CliRunner()
    r = runner.invoke(app, ["models", "list", "--json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout.strip().splitlines()[-1])
    assert payload["production"] is None and [v["version"] for v in payload["versions"]] == [a, b]
    assert runner.invoke(app, ["models", "promote", a]).exit_code == 0
    assert runner.invoke(app, ["models", "promote", b, "--reason", "better"]).exit_code == 0
    r = runner.invoke(app, ["models", "list", "--json"])
    assert json.loads(r.stdout.strip().splitlines()[-1])["production"] == b
    r = runner.invoke(app, ["models", "rollback", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout.strip().splitlines()[-1]) == {"production": a, "previous": b}
    assert reg.production().version == a
    r = runner.invoke(app, ["models", "promote", "lstm-v42"])
    assert r.exit_code == 1 and "unknown model version 'lstm-v42'" in r.output
    r = runner.invoke(app, ["models", "list"])
    assert r.exit_code == 0 and "rnn-v1" in r.output


def test_a_production_version_deleted_by_hand_can_be_seen_and_repaired(tmp_path, _isolated_home):
    """Regression: when the production version's folder was deleted, `models list` and `models rollback`
    both failed with 'unknown model version', so the CLI could not repair the registry."""
    from flowcast.cli import app
    from flowcast.registry import _make_writable

    reg = ModelRegistry(_isolated_home / "models")
    a = _register(reg, tmp_path, "rnn", "1").version
    b = _register(reg, tmp_path, "gru", "2").version
    reg.promote(a)
    reg.promote(b)
    gone = reg.versions_dir / b
    _make_writable(gone)
    import shutil

    shutil.rmtree(gone)
    with pytest.raises(RegistryError, match=rf"unknown model version '{b}' in the production pointer .*: it is missing from"):
        reg.production()
    runner = CliRunner()
    r = runner.invoke(app, ["models", "list", "--json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout.strip().splitlines()[-1])
    assert payload["production"] is None and [v["version"] for v in payload["versions"]] == [a]
    assert f"unknown model version '{b}' in the production pointer" in payload["problem"]
    r = runner.invoke(app, ["models", "rollback", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"production": a, "previous": None}
    assert reg.production().version == a
