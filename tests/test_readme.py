"""README.md against the product: what a new user copies from it must work as written."""

import re
from pathlib import Path

import pytest
from typer.main import get_command

from flowcast.cli import app
from flowcast.config import Settings, load_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def _toml_blocks() -> list[tuple[int, str]]:
    """(line, text) of every ```toml block of the README."""
    blocks, lines = [], README.read_text(encoding="utf-8").splitlines()
    start: int | None = None
    for i, line in enumerate(lines, 1):
        if start is None and line.strip() == "```toml":
            start = i
        elif start is not None and line.strip() == "```":
            blocks.append((start, "\n".join(lines[start:i - 1])))
            start = None
    return blocks


def test_the_readme_has_toml_examples():
    assert len(_toml_blocks()) >= 4


@pytest.mark.parametrize(("line", "text"), _toml_blocks(), ids=lambda v: f"line{v}" if isinstance(v, int) else "")
def test_every_toml_example_of_the_readme_loads(line, text, tmp_path, monkeypatch):
    """Each example is a whole flowcast.toml: written to a file and read by the real loader, it
    names no unknown section or key and no invalid value (the loader forbids extras)."""
    for name in ("FLOWCAST_SHARED", "FLOWCAST_SHARED_OPTIONS", "FLOWCAST_ALERTS__WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text(text + "\n", encoding="utf-8")
    settings = load_settings(cfg)
    assert isinstance(settings, Settings), f"README.md line {line}"


def test_every_subcommand_is_documented_in_the_readme():
    text = README.read_text(encoding="utf-8")
    command = get_command(app)
    names = sorted(command.commands)  # type: ignore[attr-defined]
    assert "run" in names and "forecasts" in names
    for group in ("models", "automations"):  # and each subcommand of a group: `flowcast models rollback`
        names += [f"{group} {sub}" for sub in command.commands[group].commands]  # type: ignore[attr-defined]
    missing = [n for n in names if not re.search(rf"`flowcast {re.escape(n)}\b", text)]
    assert not missing, f"subcommands the README never names: {missing}"


def _section_fields() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, field in Settings.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and hasattr(ann, "model_fields"):
            out[name] = set(ann.model_fields)
    return out


def test_every_section_key_the_readme_names_exists():
    """`[preprocess] max_gap`, `evaluation.n_windows` and `FLOWCAST_STORE__URL` name real settings."""
    text = README.read_text(encoding="utf-8")
    sections = _section_fields()
    named: set[tuple[str, str]] = set()
    named |= set(re.findall(r"`([a-z_]+)\.([a-z_0-9]+)`", text)) - {("model", "ckpt")}  # a file name
    named |= set(re.findall(r"`\[([a-z_]+)\] ([a-z_0-9]+)", text))
    named |= {(s.lower(), k.lower()) for s, k in re.findall(r"FLOWCAST_([A-Z]+)__([A-Z_]+)", text)}
    checked = [(s, k) for s, k in named if s in sections]
    assert len(checked) >= 20
    unknown = sorted(f"{s}.{k}" for s, k in checked if k not in sections[s])
    assert not unknown, f"settings the README names that config.py does not have: {unknown}"


def test_every_option_the_readme_gives_a_command_exists():
    """`flowcast backfill ... --every 3mo --overwrite`, `flowcast gc --forecasts-before`: each --option the README
    writes after `flowcast <command>` (up to the end of that code span or line) is one of that command's."""
    text = README.read_text(encoding="utf-8")
    root = get_command(app)
    unknown, checked = set(), 0
    for m in re.finditer(r"flowcast ((?:models|automations) [a-z-]+|[a-z][a-z-]*)([^`\n|]*)", text):
        cmd = root
        for part in m.group(1).split():
            cmd = getattr(cmd, "commands", {}).get(part)
            if cmd is None:
                break
        if cmd is None:
            continue
        known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
        for opt in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", re.split(r"flowcast |#|;|\)|,", m.group(2))[0]):
            checked += 1
            if opt not in known:
                unknown.add(f"flowcast {m.group(1)} {opt}")
    assert checked >= 40
    assert not unknown, f"options the README gives that the commands do not have: {sorted(unknown)}"


def test_the_readme_shows_how_to_read_weeks_dated_by_their_end():
    """newuser25: `--time-label end` was documented for hour-ending data alone; where weekly data is described the
    README said nothing of weeks dated by their end (a `week_end` column, pandas' W-SUN). Its example is one line
    that `flowcast run` parses as written (options and values), near the paragraph on weekly dates."""
    import shlex

    text = README.read_text(encoding="utf-8")
    weekly = text.index("weekly dates keep the weekday they are written on")
    lines = [ln for ln in text[weekly:weekly + 3000].splitlines()
             if ln.startswith("flowcast run ") and "--time-label end" in ln and "--freq 1w" in ln]
    assert lines, "no `flowcast run ... --freq 1w --time-label end` line after the README's weekly paragraph"
    run = get_command(app).commands["run"]  # type: ignore[attr-defined]
    ctx = run.make_context("run", shlex.split(lines[0].split("#")[0])[2:])
    assert ctx.params["time_label"] == "end" and ctx.params["freq"] == "1w", ctx.params


def test_the_readme_says_a_scheduled_run_is_named_when_it_starts():
    """polish25: the README said every run is named `<flow> <dataset> <as_of>`, but a run Prefect creates (a
    schedule's, a deployment run from the UI) gets a generated two-word name, and the flows' `flow_run_name` renames
    it only when it starts. The README says so, beside the real mechanism it describes."""
    from prefect.server.schemas.actions import DeploymentFlowRunCreate

    from flowcast.flows.backfill import backfill_flow
    from flowcast.flows.forecast import forecast_flow
    from flowcast.flows.naming import run_name
    from flowcast.flows.pipeline import retrain_flow

    assert all(f.flow_run_name is run_name for f in (retrain_flow, forecast_flow, backfill_flow))
    assert re.fullmatch(r"[a-z]+-[a-z]+", DeploymentFlowRunCreate().name)  # Prefect's name until the run starts
    text = README.read_text(encoding="utf-8")
    start = text.index("**Runs say what ran.**")
    paragraph = " ".join(text[start:text.index("\n\n", start)].split())
    assert "named `<flow> <dataset> <as_of>` once it starts" in paragraph
    assert "is renamed when it starts" in paragraph and "Prefect generated" in paragraph
