"""`flowcast run` on synthetic intermittent counts (30 spare parts x 120 days, mostly zeros), end to end under the
session's Prefect API: the data is classed intermittent, croston, tsb and adida are on the leaderboard, it is ranked
on RMSSE (unless evaluation.metric is given), the champion beats naive on the backtest, and nothing published (forecasts, intervals) goes below 0 although no y_min is declared."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flowcast.cli import app
from flowcast.reporting import score_text
from flowcast.store import EmbeddedStore

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_intermittent_counts_get_their_models_and_stay_at_or_above_zero(tmp_path):
    from intermittent import run_args, write_intermittent

    csv = write_intermittent(tmp_path / "parts.csv", n_series=30, days=120, seed=0)
    home = tmp_path / "home"
    result = CliRunner().invoke(app, run_args(csv, home))
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    board = out["leaderboard"]
    assert {"croston", "tsb", "adida", "naive", "seasonal_naive", "theta", "damped"} <= set(board)
    assert "The data was classed intermittent: 30 of 30 series" in out["note"]
    assert "cut at 0" in out["note"]
    # ranked on RMSSE, which rewards the demand rate where MASE rewards forecasting 0, and the run says why
    assert out["metric"] == "rmsse" and "ranked on RMSSE instead of MASE" in out["note"]
    champion = out["champion"]
    assert board[champion]["rank"] == 1 and board[champion]["rmsse"] < board["naive"]["rmsse"]
    assert board[champion]["rmsse"] == min(r["rmsse"] for r in board.values() if r["rank"] is not None)
    # the UI's leaderboard shows the score it ranks by right after kind (RMSSE came third, after sMAPE and MASE),
    # and its description names the published model's version
    from flow_helpers import artifacts_of

    art = artifacts_of(out["run_id"])["leaderboard-parts"][0]
    rows = json.loads(art.data) if isinstance(art.data, str) else art.data
    assert list(rows[0]) == ["rank", "model", "published", "kind", "RMSSE", "sMAPE", "MASE",
                             "cov80", "cov95", "MSIS"]  # one screen wide: its 18 columns needed a scroll
    head, meaning, more = art.description.split("\n\n")
    assert head.endswith(f"come from {champion} ({out['model_version']}).") and "RMSSE is" in meaning, art.description
    # the rest is the details', linked from the table's description, which links back
    details = artifacts_of(out["run_id"])["leaderboard-details-parts"][0]
    assert f"/artifacts/artifact/{details.id}" in more and "[leaderboard-parts](" in details.data
    assert "| MAE | RMSE |" in details.data and "- RMSSE: " in details.data
    # the receipt: each of the run's notes a paragraph of its own (they ran on as one)
    said = artifacts_of(out["run_id"])["publish-receipt-parts"][0].description.split("\n\n")
    assert said[1].startswith("Note: the data was classed intermittent") and "cut at 0" not in said[1], said
    assert said[2].startswith("Note: intermittent counts without a declared y_min"), said
    # on these counts the intermittent models beat every classical one (bench/intermittent.py, README)
    assert champion in {"croston", "tsb", "adida"}
    published = EmbeddedStore(home / "warehouse").read(dataset="parts")
    assert published.height == 30 * 14 and published["model"].unique().to_list() == [champion]
    values = [c for c in published.columns if c.startswith("y_hat")]
    assert len(values) > 1  # the intervals too
    assert published.select(pl.min_horizontal(values).min()).item() >= 0
    # the daily forecast with the promoted model cuts them at 0 too, as its retrain recorded in its recipe
    fc_args = [a for a in run_args(csv, home) if a not in ("run", "--models", "none")]
    forecast = CliRunner().invoke(app, ["forecast", *fc_args])
    assert forecast.exit_code == 0, forecast.output
    fc_note = json.loads(forecast.stdout.strip().splitlines()[-1])["note"]
    assert "cut at 0" in fc_note
    # by the decision recorded with the model, not by classing the forecast run's own data again
    assert "as the retrain that trained this model classed them" in fc_note, fc_note
    again = EmbeddedStore(home / "warehouse").read(dataset="parts")
    assert again.height == 30 * 14 and again.select(pl.min_horizontal(values).min()).item() >= 0


def test_a_given_list_of_statistical_models_and_a_given_metric_are_kept_on_intermittent_data(tmp_path):
    from intermittent import run_args, write_intermittent

    csv = write_intermittent(tmp_path / "parts.csv", n_series=30, days=120, seed=0)
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text('[evaluation]\nstatistical = ["naive", "theta"]\ncombination = ["theta"]\nmetric = "mase"\n')
    result = CliRunner().invoke(app, [*run_args(csv, tmp_path / "home"), "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert not {"croston", "tsb", "adida"} & set(out["leaderboard"])
    assert "kept as they are: croston, tsb, adida could be added" in out["note"]
    assert out["metric"] == "mase" and 'ranked on MASE as evaluation.metric = "mase" says' in out["note"]
    ranked = {m: r for m, r in out["leaderboard"].items() if r["rank"] is not None}
    assert min(ranked, key=lambda m: ranked[m]["mase"]) == out["champion"]


def test_a_search_on_intermittent_data_is_scored_by_rmsse_as_the_retrain_ranks(tmp_path):
    """`flowcast tune` (and `flowcast run --budget`, which runs the same search first) scores its trials by the
    metric the retrain ranks on: RMSSE for data classed intermittent where evaluation.metric is not given."""
    from intermittent import run_args, write_intermittent

    csv = write_intermittent(tmp_path / "parts.csv", n_series=6, days=120, seed=0)
    cfg = tmp_path / "flowcast.toml"
    cfg.write_text('[model]\naccelerator = "cpu"\nlauncher = "inline"\n[tuning]\ncells = ["gru"]\n'
                   'hidden_size = [4]\nnum_layers = [1]\nmax_steps = [5, 5]\nlookback = [14]\nmode = ["windowed"]\n')
    args = [a for a in run_args(csv, tmp_path / "home") if a not in ("run", "--models", "none")]
    result = CliRunner().invoke(app, ["tune", *args, "--trials", "1", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["metric"] == "rmsse" and any("ranked on RMSSE instead of MASE" in n for n in out["notes"]), out


def test_the_realized_accuracy_of_intermittent_data_is_judged_on_rmsse(tmp_path):
    """A retrain on intermittent counts ranks on RMSSE; the forecast run 14 days later scores its publish on the
    actuals since and judges the decay on RMSSE against the promoted model's backtest RMSSE, and says so in the
    stored verdict, the run's JSON and `flowcast accuracy`."""
    from intermittent import run_args, write_intermittent

    csv = write_intermittent(tmp_path / "parts.csv", n_series=30, days=134, seed=0)
    home = tmp_path / "home"
    result = CliRunner().invoke(app, run_args(csv, home, days=120))  # as_of day 119: days 120..133 not seen
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["metric"] == "rmsse"
    promised = out["leaderboard"][out["champion"]]["rmsse"]
    forecast = CliRunner().invoke(app, ["forecast", *[a for a in run_args(csv, home, days=134)
                                                      if a not in ("run", "--models", "none")]])
    assert forecast.exit_code == 0, forecast.output
    decay = json.loads(forecast.stdout.strip().splitlines()[-1])["realized"]["decay"]
    assert decay["judged"] and decay["metric"] == "rmsse" and decay["points"] == 30 * 14
    assert decay["promised_rmsse"] == pytest.approx(promised)
    assert decay["realized_rmsse"] is not None and decay["realized_mase"] is not None
    assert f"realized RMSSE {score_text(decay['realized_rmsse'])}" in decay["reasons"][0]
    assert "judged on RMSSE, the metric its models were ranked on" in decay["reasons"][-1]
    # and against seasonal naive's RMSSE on the same points, recorded with every realized row
    assert decay["snaive_rmsse"] is not None and "seasonal naive's RMSSE on the same points" in decay["reasons"][-1]
    shown = CliRunner().invoke(app, ["accuracy", "--home", str(home)], terminal_width=80)
    assert shown.exit_code == 0, shown.output
    verdict = next(line for line in shown.output.splitlines() if line.startswith("parts: "))
    assert verdict.startswith(("parts: healthy on RMSSE - realized RMSSE", "parts: DEGRADED on RMSSE - realized RMSSE"))
    assert "promised RMSSE: the publishing model's backtest RMSSE" in " ".join(shown.output.split())
    assert json.loads(CliRunner().invoke(app, ["accuracy", "--home", str(home), "--json"]).stdout)[
        "datasets"]["parts"]["status"]["metric"] == "rmsse"
