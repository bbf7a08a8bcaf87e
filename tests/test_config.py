"""Configuration (issue 9.11, 9.13): defaults live in config.py only, a file is read only when it
is named, and the config refuses what it cannot honour."""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from flowcast.config import ModelConfig, Settings, load_settings, parse_duration, with_overrides

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


@pytest.mark.parametrize("text", ["# hidden_size = 7\n\n# [model]\n", ""])
def test_a_flowcast_toml_that_sets_nothing_is_not_noted(tmp_path, monkeypatch, text):
    """`make run` in the repository passed by its example flowcast.toml (every line a comment) and said it was not
    read: a file that sets nothing changes nothing when named either, so nothing is said of it; a file that cannot
    be parsed is still noted (its owner meant something by it)."""
    from typer.testing import CliRunner

    from flowcast.cli import app

    (tmp_path / "flowcast.toml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWCAST_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["validate", "--home", str(tmp_path / "home")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "is not read unless named" not in result.output
    # a byte-order mark before it sets nothing either (ingest54: read past where the file is read); unparsable: noted
    for written, noted in (("\ufeff" + text, False), (text + "[model\n", True)):
        (tmp_path / "flowcast.toml").write_text(written, encoding="utf-8")
        result = CliRunner().invoke(app, ["validate", "--home", str(tmp_path / "home")], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert ("./flowcast.toml is not read unless named" in " ".join(result.output.split())) is noted, result.output


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("how", ["argument", "FLOWCAST_CONFIG"])
def test_a_flowcast_toml_with_a_byte_order_mark_is_read(tmp_path, monkeypatch, how, newline):
    """Regression (ingest54): a flowcast.toml saved with a UTF-8 byte-order mark (Windows' Notepad, PowerShell's
    Out-File) was refused by `load_settings` ('Invalid statement (at line 1, column 1)': pydantic-settings reads it
    with tomllib). It is read past wherever the file is read (Windows' line ends too): its settings take effect, and a
    bad value is named by its key in the file."""
    cfg = tmp_path / "flowcast.toml"
    lines = ["# saved by Notepad", "[model]", "hidden_size = 7", "", "[alerts]", 'publish_deadline = "3h"']
    cfg.write_bytes(b"\xef\xbb\xbf" + newline.join(lines).encode())
    monkeypatch.delenv("FLOWCAST_CONFIG", raising=False)
    if how == "FLOWCAST_CONFIG":
        monkeypatch.setenv("FLOWCAST_CONFIG", str(cfg))
    named = (cfg,) if how == "argument" else ()
    settings = load_settings(*named)
    assert settings.model.hidden_size == 7 and settings.model.hidden_size != ModelConfig().hidden_size
    assert settings.alerts.publish_deadline == "3h"
    cfg.write_bytes(b"\xef\xbb\xbf" + newline.join(["[model]", 'max_steps = "abc"']).encode())
    with pytest.raises(ValueError, match=re.escape(f'model.max_steps = "abc" in {cfg}: Input should be a valid integer')):
        load_settings(*named)


def test_the_cli_reads_a_named_flowcast_toml_with_a_byte_order_mark(tmp_path, monkeypatch):
    """Regression (ingest54): `flowcast validate --config flowcast.toml` failed on a file with a byte-order mark
    (tomllib: 'Invalid statement'); its one declared source is validated."""
    from typer.testing import CliRunner

    from flowcast.cli import app

    (tmp_path / "w.csv").write_text("store,week_end,sales\na,2024-01-07,1\na,2024-01-14,2\na,2024-01-21,3\n")
    (tmp_path / "flowcast.toml").write_bytes(b"\xef\xbb\xbf" + _SHOP.format(name="bom_shop").encode())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWCAST_CONFIG", raising=False)
    monkeypatch.delenv("FLOWCAST_DATASET", raising=False)
    result = CliRunner().invoke(app, ["validate", "--config", "flowcast.toml", "--home", str(tmp_path / "home")],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "bom_shop" in result.output and "us_employment" not in result.output, result.output


@pytest.mark.parametrize("how", ["--home", "FLOWCAST_HOME"])
def test_the_cli_says_a_flowcast_toml_in_the_home_is_not_read(tmp_path, monkeypatch, how):
    """Regression (newuser21): a new user made a home (FLOWCAST_HOME=/tmp/x) and put a flowcast.toml declaring
    [sources.mine] in it; `flowcast validate --dataset mine` said only `unknown dataset 'mine'`. The file is named
    with the --config to pass, as one in the working directory is; named, it is read and nothing is said."""
    from typer.testing import CliRunner

    from flowcast.cli import app

    home = tmp_path / "my home"
    home.mkdir()
    (home / "flowcast.toml").write_text("[model]\nhidden_size = 7\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.delenv("FLOWCAST_CONFIG", raising=False)
    args, env = (["--home", str(home)], {}) if how == "--home" else ([], {"FLOWCAST_HOME": str(home)})
    result = CliRunner().invoke(app, ["validate", *args], env={"COLUMNS": "300", **env})
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert (f"{home / 'flowcast.toml'} (in the home) is not read unless named: pass --config "
            f"'{home / 'flowcast.toml'}'") in said, said
    result = CliRunner().invoke(app, ["validate", *args, "--config", str(home / "flowcast.toml")],
                                env={"COLUMNS": "300", **env})
    assert result.exit_code == 0, result.output
    assert "is not read unless named" not in result.output


PRECEDENCE_TOML = """
horizon = 5
[model]
lookback = 24
hidden_size = 16
max_steps = 100
[evaluation]
margin = 0.1
[alerts]
publish_deadline = "2d"
"""


def test_each_layer_wins_over_the_one_below_and_nested_sections_merge(tmp_path, monkeypatch):
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(PRECEDENCE_TOML)
    monkeypatch.setenv("FLOWCAST_MODEL__HIDDEN_SIZE", "48")
    monkeypatch.setenv("FLOWCAST_MODEL__MAX_STEPS", "200")
    monkeypatch.setenv("FLOWCAST_HORIZON", "7")
    s = load_settings(cfg, model={"max_steps": 50})
    assert s.model.dropout == 0.0  # default: nobody set it
    assert s.model.lookback == 24 and s.evaluation.margin == 0.1  # the file over the defaults
    assert s.model.hidden_size == 48 and s.horizon == 7  # the environment over the file
    assert s.model.max_steps == 50  # an override over the environment and the file
    assert s.alerts.publish_deadline == "2d" and s.alerts.webhook_url is None

    # None means "not given" (typer and flow parameters pass None): the lower layers stay
    s = load_settings(cfg, horizon=None, model={"max_steps": None})
    assert s.horizon == 7 and s.model.max_steps == 200

    # FLOWCAST_CONFIG names the file when none is passed; without env, the file's values show
    monkeypatch.delenv("FLOWCAST_MODEL__HIDDEN_SIZE")
    monkeypatch.delenv("FLOWCAST_MODEL__MAX_STEPS")
    monkeypatch.delenv("FLOWCAST_HORIZON")
    monkeypatch.setenv("FLOWCAST_CONFIG", str(cfg))
    s = load_settings()
    assert (s.model.hidden_size, s.model.max_steps, s.horizon) == (16, 100, 5)

    # with_overrides: one more layer on built settings, merged per section
    t = with_overrides(s, model={"lookback": 6}, alerts={"webhook_url": "http://127.0.0.1:9/hook"})
    assert (t.model.lookback, t.model.hidden_size, t.alerts.publish_deadline) == (6, 16, "2d")


def test_defaults_without_any_file_or_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no flowcast.toml here
    s = load_settings()
    assert s.model.lookback == 36 and s.horizon is None and s.publish.skip_unchanged is True
    assert s.retention.keep_versions == 3 and s.accuracy.window == 3


def test_a_named_file_that_does_not_exist_and_bad_values_are_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_settings(tmp_path / "nope.toml")
    monkeypatch.setenv("FLOWCAST_CONFIG", str(tmp_path))  # regression: a folder was said to be 'not found'
    with pytest.raises(FileNotFoundError, match=r"is a folder, not a TOML file \(named by FLOWCAST_CONFIG\)"):
        load_settings()
    monkeypatch.delenv("FLOWCAST_CONFIG")
    monkeypatch.setenv("FLOWCAST_MODEL__LOOKBACK", "abc")
    with pytest.raises(ValueError, match="lookback"):
        load_settings()
    monkeypatch.delenv("FLOWCAST_MODEL__LOOKBACK")
    with pytest.raises(ValueError, match="at least 10s"):
        load_settings(alerts={"publish_deadline": "5s"})
    with pytest.raises(ValueError, match="http"):
        load_settings(alerts={"webhook_url": "ftp://x"})


def test_durations():
    assert parse_duration("26h") == timedelta(hours=26)
    assert parse_duration("1.5d") == timedelta(days=1.5)
    with pytest.raises(ValueError, match="such as 90s"):
        parse_duration("tomorrow")


def test_workers_section_defaults_env_and_bounds(monkeypatch):
    s = load_settings()
    assert (s.workers.max_attempts, s.workers.wait_timeout, s.workers.crash_after) == (3, "6h", "10m")
    monkeypatch.setenv("FLOWCAST_WORKERS__CRASH_AFTER", "75s")
    assert load_settings().workers.crash_after == "75s"
    with pytest.raises(ValueError, match="crash_after must be at least 40s.*'30s'"):
        load_settings(workers={"crash_after": "30s"})
    with pytest.raises(ValueError, match="max_attempts"):
        load_settings(workers={"max_attempts": 0})
    with pytest.raises(ValueError, match="such as 90s"):
        load_settings(workers={"wait_timeout": "soon"})


def test_a_dataset_name_the_store_cannot_key_is_refused_when_the_configuration_is_read(tmp_path, monkeypatch):
    """Regression: such a name trained and promoted a model, then failed at publish."""
    monkeypatch.chdir(tmp_path)
    src = {"path": "x.csv", "time_col": "t", "target_col": "y", "freq": "1d"}
    with pytest.raises(ValueError, match=r"dataset name .my sales. cannot key the forecast store"):
        load_settings(source={**src, "name": "my sales"})
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sources."my sales"]\npath = "x.csv"\ntime_col = "t"\ntarget_col = "y"\nfreq = "1d"\n')
    with pytest.raises(ValueError, match=r"dataset name .my sales. cannot key the forecast store"):
        load_settings(cfg)
    cfg.write_text('[sources."my sales"]\nname = "my_sales"\npath = "x.csv"\ntime_col = "t"\ntarget_col = "y"\n'
                   'freq = "1d"\n')
    assert load_settings(cfg).sources["my sales"].name == "my_sales"


@pytest.mark.parametrize(("name", "value", "needs"), [
    ("FLOWCAST_MODEL__CELLS", "gru", """FLOWCAST_MODEL__CELLS='["gru"]'"""),
    ("FLOWCAST_EVALUATION__STATISTICAL", "theta, damped", """FLOWCAST_EVALUATION__STATISTICAL='["theta", "damped"]'"""),
    ("FLOWCAST_MODEL__QUANTILES", "0.1,0.9", "FLOWCAST_MODEL__QUANTILES='[0.1, 0.9]'"),
    ("FLOWCAST_MODEL__BLEND", "theta=0.2", "is not a JSON object"),
])
def test_a_list_or_table_setting_from_the_environment_names_its_variable(monkeypatch, name, value, needs):
    """Regression: FLOWCAST_MODEL__CELLS=gru failed with pydantic-settings' 'error parsing value for field
    "model" from source "EnvSettingsSource"', naming neither the variable nor its value nor the JSON it needs."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as err:
        load_settings()
    assert f"{name}={value!r}" in str(err.value) and needs in str(err.value)
    assert "EnvSettingsSource" not in str(err.value)
    monkeypatch.setenv(name, '["gru"]' if name.endswith("CELLS") else "[]" if "BLEND" not in name else "{}")
    load_settings()  # the JSON it asks for is read


def test_a_home_or_shared_folder_under_tilde_is_the_users(tmp_path, monkeypatch):
    """Regression: home = "~/flowcast" in flowcast.toml (or a quoted FLOWCAST_HOME, which no shell expands)
    wrote everything under a folder named '~' in the working directory: a different home from every
    directory, and not the one the user meant."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("FLOWCAST_HOME")  # (set for every test by conftest)
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text('home = "~/flowcast"\nshared = "~/team"\n')
    s = load_settings(cfg)
    assert s.home == tmp_path / "flowcast" and s.shared == str(tmp_path / "team")
    assert s.quarantine_dir == tmp_path / "flowcast" / "quarantine"
    monkeypatch.setenv("FLOWCAST_HOME", "~/other")
    assert load_settings().home == tmp_path / "other"


def test_an_empty_flowcast_variable_is_not_set(tmp_path, monkeypatch):
    """Regression: FLOWCAST_HOME= (an `export` without a value, or a variable set from an unset one) made the
    home '.', so that a run wrote lake/, models/, warehouse/ and quarantine/ into the working directory; and
    FLOWCAST_MODEL__MAX_STEPS= failed as not an integer. An empty variable is not set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWCAST_HOME", "")
    monkeypatch.setenv("FLOWCAST_MODEL__MAX_STEPS", "")
    s = load_settings()
    assert s.home == Path(".flowcast") and s.model.max_steps == 300


def test_a_tuning_step_range_the_step_granularity_cannot_reach_is_refused():
    """Regression: [tuning] max_steps = [5, 10] with the default steps_step = 50 ran a search of 5 steps only:
    Optuna replaced the range by [5, 5] with a UserWarning in the middle of the trials' log."""
    from flowcast.config import TuningConfig

    with pytest.raises(ValueError, match=re.escape(
            "tuning.max_steps = [5, 10] spans 5 steps, not a multiple of tuning.steps_step = 50: the search would "
            "try up to 5 steps only, never 10; set steps_step to 5 (FLOWCAST_TUNING__STEPS_STEP=5)")):
        TuningConfig(max_steps=(5, 10))
    assert TuningConfig(max_steps=(5, 10), steps_step=5).max_steps == (5, 10)
    assert TuningConfig(max_steps=(100, 100)).max_steps == (100, 100) and TuningConfig().max_steps == (50, 400)


def test_freq_takes_business_days_one_at_a_time():
    from flowcast.config import SourceConfig

    src = {"name": "s", "path": "x.csv", "time_col": "t", "target_col": "y"}
    assert SourceConfig(**src, freq="1b").freq == "1b"
    with pytest.raises(ValueError, match=r"got '2b': freq '2b': business days come one period at a time, '1b'"):
        SourceConfig(**src, freq="2b")
    with pytest.raises(ValueError, match=r"or 1b \(business days\), got '1bd'"):
        SourceConfig(**src, freq="1bd")


@pytest.mark.parametrize(("given", "meant"), [
    ("D", "1d"), ("daily", "1d"), ("H", "1h"), ("2H", "2h"), ("15min", "15m"), ("W-SUN", "1w"), ("MS", "1mo"),
    ("1M", "1mo"), ("QS-JAN", "1q"), ("Y", "1y"), ("Monthly", "1mo"), ("B", "1b")])
def test_a_pandas_frequency_or_a_word_gets_its_polars_spelling(given, meant):
    """Regression: '--freq D' (pandas' and Nixtla's alias), 'MS', '15min' or 'monthly' listed the valid strings
    but not which one was meant; the error says it ('did you mean '1mo'?')."""
    from flowcast.config import SourceConfig

    src = {"name": "s", "path": "x.csv", "time_col": "t", "target_col": "y"}
    with pytest.raises(ValueError, match=re.escape(f"got {given!r} (did you mean {meant!r}?)")):
        SourceConfig(**src, freq=given)
    with pytest.raises(ValueError, match=r"got 'bogus'$|got 'bogus'\s*\["):
        SourceConfig(**src, freq="bogus")


@pytest.mark.parametrize(("setting", "value"), [("max_steps", 0), ("max_epochs", 0)])
def test_a_training_of_zero_steps_or_epochs_is_refused(setting, value, monkeypatch):
    """Regression: max_steps = 0 (FLOWCAST_MODEL__MAX_STEPS=0, --max-steps 0) trained nothing without a word: each
    network kept its random initial weights, was backtested and could be promoted. -1 (no step limit) stays."""
    with pytest.raises(ValueError, match=rf"{setting} = 0 trains nothing .*or -1 for no limit"):
        ModelConfig(**{setting: value})
    monkeypatch.setenv(f"FLOWCAST_MODEL__{setting.upper()}", str(value))
    with pytest.raises(ValueError, match=rf"FLOWCAST_MODEL__{setting.upper()}='0' \(model\.{setting}, from the "
                                         rf"environment\): {setting} = 0 trains nothing"):
        load_settings()
    assert ModelConfig(max_steps=-1, max_epochs=2).max_steps == -1


@pytest.mark.parametrize("how", ["option", "env"])
def test_a_home_that_is_a_file_is_refused_naming_it(tmp_path, monkeypatch, how):
    """Regression: `flowcast run --data sales.csv --home sales.csv` (or FLOWCAST_HOME=sales.csv) ran validation and
    preprocessing inside a flow, then failed with "NotADirectoryError: [Errno 20] Not a directory:
    'sales.csv/cache/prefect/...'". The configuration names the file and what home is; a folder (or none yet) is as
    before."""
    from typer.testing import CliRunner

    from flowcast.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sales.csv").write_text("date,val\n2020-01-01,1\n")
    args = ["validate", "--data", "sales.csv", "--time-col", "date", "--target-col", "val", "--freq", "1d"]
    if how == "env":
        monkeypatch.setenv("FLOWCAST_HOME", "sales.csv")
    res = CliRunner().invoke(app, [*args, *(["--home", "sales.csv"] if how == "option" else [])], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    where = "FLOWCAST_HOME='sales.csv' (home, from the environment)" if how == "env" else "home"
    assert (f"{where}: home 'sales.csv' is a file, not a folder: home is the folder a run writes everything to (--home, "
            "FLOWCAST_HOME; default .flowcast); a data file goes in --data") in said and "PosixPath" not in said
    assert load_settings(home=tmp_path / "new").home == tmp_path / "new"  # not there yet: made by the run


@pytest.mark.parametrize(("how", "said"), [
    ("env", "FLOWCAST_MODEL__MAX_STEPS='abc' (model.max_steps, from the environment): Input should be a valid integer"),
    ("env-lower", "flowcast_model__max_steps='abc' (model.max_steps, from the environment): Input should be"),
    ("toml", 'model.max_steps = "abc" in {path}: Input should be a valid integer'),
    ("both", "FLOWCAST_MODEL__MAX_STEPS='abc' (model.max_steps, from the environment): Input should be"),
    ("toml-source", 'sources.shop.freq = "daily" in {path}: '),
])
def test_a_bad_value_names_the_variable_or_the_file_key_that_set_it(tmp_path, monkeypatch, how, said):
    """Regression: FLOWCAST_MODEL__MAX_STEPS=abc failed naming the key `model.max_steps`, which the user never
    wrote, and not the variable they set or its value; a value from flowcast.toml did not name the file."""
    cfg = tmp_path / "flowcast.toml"
    if how == "toml-source":
        cfg.write_text('[sources.shop]\npath = "x.csv"\ntime_col = "t"\ntarget_col = "y"\nfreq = "daily"\n')
    else:
        cfg.write_text('[model]\nmax_steps = "abc"\n' if how in ("toml", "both") else '[model]\nlookback = 4\n')
    if how in ("env", "both"):
        monkeypatch.setenv("FLOWCAST_MODEL__MAX_STEPS", "abc")
    if how == "env-lower":
        monkeypatch.setenv("flowcast_model__max_steps", "abc")
    with pytest.raises(ValueError) as err:
        load_settings(cfg)
    assert said.format(path=cfg) in str(err.value)
    assert "\n" not in str(err.value) and (how.startswith("toml") or str(cfg) not in str(err.value))
    monkeypatch.delenv("FLOWCAST_MODEL__MAX_STEPS", raising=False)
    monkeypatch.delenv("flowcast_model__max_steps", raising=False)
    with pytest.raises(ValueError) as err:  # an option names its key, as before
        load_settings(model={"max_steps": "xyz"})
    assert "model.max_steps" in str(err.value) and "from the environment" not in str(err.value)


_SHOP = '[sources.{name}]\npath = "w.csv"\nid_cols = ["store"]\ntime_col = "week_end"\ntarget_col = "sales"\nfreq = "1w"\n'


@pytest.mark.parametrize(("text", "overrides", "env", "dataset"), [
    (_SHOP.format(name="shop"), {}, {}, "shop"),  # one source, no dataset: that source
    (_SHOP.format(name="shop") + _SHOP.format(name="shop2"), {}, {}, "us_employment"),  # several: dataset chooses
    ('dataset = "m3-yearly"\n' + _SHOP.format(name="shop"), {}, {}, "m3-yearly"),
    (_SHOP.format(name="shop"), {"dataset": "us_employment"}, {}, "us_employment"),  # --dataset
    (_SHOP.format(name="shop"), {}, {"FLOWCAST_DATASET": "vic_elecdemand"}, "vic_elecdemand"),
    ("", {}, {}, "us_employment"),
])
def test_a_configuration_of_one_source_runs_it_without_dataset(tmp_path, monkeypatch, text, overrides, env, dataset):
    """newuser25: `flowcast validate --config shop.toml` (one [sources.shop], no `dataset`) validated the bundled
    us_employment, and `flowcast run --config shop.toml` would have trained on it for minutes, the declared source
    unread. One declared source is the default dataset; `dataset`, FLOWCAST_DATASET or --dataset still choose."""
    monkeypatch.delenv("FLOWCAST_DATASET", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = tmp_path / "shop.toml"
    cfg.write_text(text)
    assert load_settings(cfg, home=tmp_path, **overrides).dataset == dataset
