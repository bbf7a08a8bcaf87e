"""Configuration (issue 9.11, 9.13): defaults live in config.py only, a file is read only when it
is named, and the config refuses what it cannot honour."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from flowcast.config import ModelConfig, Settings, load_settings

REPO_TOML = Path(__file__).resolve().parents[1] / "flowcast.toml"


def test_a_flowcast_toml_in_the_working_directory_is_not_read_unless_named(tmp_path, monkeypatch):
    """Regression: flowcast.toml was read from the working directory, so the same command trained
    another model inside the repository (hidden_size 32 there, 64 elsewhere)."""
    (tmp_path / "flowcast.toml").write_text("[model]\nhidden_size = 7\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().model.hidden_size == ModelConfig().hidden_size
    assert load_settings("flowcast.toml").model.hidden_size == 7  # named: read
    monkeypatch.setenv("FLOWCAST_CONFIG", str(tmp_path / "flowcast.toml"))
    assert load_settings().model.hidden_size == 7
    monkeypatch.setenv("FLOWCAST_MODEL__HIDDEN_SIZE", "9")  # env over the file
    assert load_settings().model.hidden_size == 9
    assert load_settings(model={"hidden_size": 11}).model.hidden_size == 11  # options over env
    monkeypatch.setenv("FLOWCAST_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError, match=r"nope.toml \(named by FLOWCAST_CONFIG\)"):
        load_settings()


def test_the_same_command_gives_the_same_settings_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_TOML.parent)
    in_repo = load_settings().model_dump()
    monkeypatch.chdir(tmp_path)
    assert load_settings().model_dump() == in_repo


def _documented_values(text: str) -> dict[str, dict]:
    """The settings the example file shows in comments ('# key = value' under '# [section]'),
    parsed as TOML; the [sources.*] example is not a default."""
    lines, keep = [], True
    for line in text.splitlines():
        m = re.match(r"^# (\[[\w.]+\]|\w+ = .*)$", line)
        if not m:
            continue
        body = m.group(1)
        if body.startswith("["):
            keep = not body.startswith("[sources")
        if keep:
            lines.append(body)
    return tomllib.loads("\n".join(lines))


def test_the_repositorys_flowcast_toml_changes_no_default_and_shows_the_real_ones(monkeypatch):
    monkeypatch.delenv("FLOWCAST_HOME")  # (set for every test by conftest): the plain defaults here
    assert load_settings(REPO_TOML).model_dump() == Settings().model_dump()
    defaults = Settings().model_dump(mode="json")
    shown = _documented_values(REPO_TOML.read_text())
    examples = {("model", "quantiles"), ("model", "blend")}  # shown as examples, not as defaults
    compared = 0
    for key, value in shown.items():
        if isinstance(value, dict):
            for k, v in value.items():
                if (key, k) not in examples:
                    assert defaults[key][k] == v, f"{key}.{k}: file shows {v!r}, default is {defaults[key][k]!r}"
                    compared += 1
        else:
            assert defaults[key] == (str(value) if key == "home" else value), key
            compared += 1
    assert compared >= 20


def test_the_cli_says_an_unnamed_flowcast_toml_is_not_read(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from flowcast.cli import app

    (tmp_path / "flowcast.toml").write_text("[model]\nhidden_size = 7\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["validate", "--home", str(tmp_path / "home")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "./flowcast.toml is not read unless named: pass --config flowcast.toml" in " ".join(result.output.split())
