"""Rendering for the Prefect UI without Prefect: tables, markdown, the forecast PNG, progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from flowcast import reporting
from flowcast.timekeys import utc_text


def _frames(n_series: int, with_quantiles: bool = False):
    hist = pl.DataFrame({
        "unique_id": [f"s{i}" for i in range(n_series) for _ in range(24)],
        "ds": [datetime(2020 + t // 12, t % 12 + 1, 1) for _ in range(n_series) for t in range(24)],
        "y": [float(i * 10 + t) for i in range(n_series) for t in range(24)],
    })
    fc = pl.DataFrame({
        "unique_id": [f"s{i}" for i in range(n_series) for _ in range(3)],
        "ds": [datetime(2022, m, 1) for _ in range(n_series) for m in (1, 2, 3)],
        "y_hat": [float(i * 10 + 24 + h) for i in range(n_series) for h in range(3)],
    })
    if with_quantiles:
        fc = fc.with_columns((pl.col("y_hat") - 2).alias("y_hat_q10"), (pl.col("y_hat") + 2).alias("y_hat_q90"))
    return hist, fc


@pytest.mark.parametrize("n_series,with_q", [(1, False), (5, True), (12, False)])
def test_plot_forecasts_writes_a_png(tmp_path, n_series, with_q):
    hist, fc = _frames(n_series, with_q)
    path = reporting.plot_forecasts(hist, fc, tmp_path / "r" / "plot.png", n_series=4, title="t")
    assert path == tmp_path / "r" / "plot.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["plot.png"]  # no temp file left behind
    md = reporting.plot_markdown(path, "Forecasts")
    assert "data:image/png;base64," in md and str(path.resolve()) in md


def test_plot_with_nothing_to_draw(tmp_path):
    hist, fc = _frames(2)
    assert reporting.plot_forecasts(hist, fc.clear(), tmp_path / "p.png") is None
    assert reporting.plot_forecasts(hist, fc, tmp_path / "p.png", n_series=0) is None
    assert not (tmp_path / "p.png").exists()


def test_large_png_is_linked_not_embedded(tmp_path):
    hist, fc = _frames(2)
    path = reporting.plot_forecasts(hist, fc, tmp_path / "p.png")
    md = reporting.plot_markdown(path, "Forecasts", embed_limit=10)
    assert "base64" not in md and str(path.resolve()) in md


def test_tables_round_and_render():
    board = pl.DataFrame({"model": ["lstm", "naive"], "mase": [0.912345678, float("nan")], "rank": [1, None]})
    rows = reporting.table_rows(board)
    assert rows == [{"model": "lstm", "mase": 0.9123, "rank": 1}, {"model": "naive", "mase": "nan", "rank": None}]
    md = reporting.leaderboard_markdown(board, "mase", champion="lstm-v2")
    assert "| model | mase | rank |" in md and "| lstm | 0.9123 | 1 |" in md and "lstm-v2" in md
    assert reporting.markdown_table([]) == "_(empty)_"


@pytest.mark.parametrize(("metric", "header", "says"), [
    ("mase", "snaive MASE", "1.0 is as accurate as snaive was in-sample"),
    ("smape", "sMAPE", "not relative to a baseline"),
    ("mae", "MAE", "in the target's units"),
    ("rmsse", "naive RMSSE", "1.0 is as accurate as naive was in-sample"),
    # on intermittent data (ranked on RMSSE) sMAPE read ~170 beside RMSSE ~0.7 with no word of why (ui16)
    ("rmsse", "naive RMSSE", "sMAPE is 200 at every point where the actual or the forecast alone is 0"),
])
def test_the_leaderboard_names_what_its_metric_is_relative_to(metric, header, says):
    """Regression: the leaderboard said 'ranked by mase' and nothing said that MASE 1.0 is seasonal naive."""
    board = pl.DataFrame({"model": ["lstm"], metric: [0.9], "rank": [1]})
    md = reporting.leaderboard_markdown(board, metric)
    assert f"ranked by {header}," in md and says in md, md
    desc = reporting.leaderboard_description(metric, "lstm")
    assert f"ranked by {header} (lower is better)" in desc and says in desc
    # the published model closes the first line; what the metric means is a paragraph of its own (it came between)
    head, meaning = desc.split("\n\n")
    assert head.endswith("come from lstm.") and says in meaning


@pytest.mark.parametrize(("champion", "version", "ends"), [
    ("production", "croston-v1", "come from production (croston-v1)"),  # read 'come from production', no model named
    ("croston", "croston-v1", "come from croston (croston-v1)"),
    ("naive", None, "come from naive"),
    ("naive", "naive", "come from naive"),
])
def test_the_leaderboard_names_the_published_model_with_its_version(champion, version, ends):
    assert reporting.leaderboard_description("rmsse", champion, version).split("\n\n")[0].endswith(ends + ".")


@pytest.mark.parametrize(("model", "version", "models", "as_of", "tz", "title"), [
    ("damped", "damped-v1", None, datetime(2019, 9, 1), None,
     "us_employment: forecasts of damped (damped-v1) as of 2019-09-01"),
    ("naive", None, None, datetime(2019, 9, 1, 6), None, "us_employment: forecasts of naive as of 2019-09-01 06:00 UTC"),
    ("naive", "naive", None, datetime(2019, 9, 1), "Australia/Melbourne",
     ("us_employment: forecasts of naive as of 2019-09-01 00:00 UTC (2019-09-01 10:00 +10:00 Australia/Melbourne) "
      "(times in Australia/Melbourne)")),
    ("theta", "theta-v1", ["theta", "naive"], datetime(2019, 9, 1), None,
     "us_employment: forecasts of theta (theta-v1) as of 2019-09-01"),  # some rows its: the model
    # fixB46: every row the fallback's: the fallback, as the receipt names it (it read 'forecasts of theta (theta-v1)')
    ("theta", "theta-v1", ["naive"], datetime(2019, 9, 1), None,
     ("us_employment: forecasts of naive, the fallback for every series (theta-v1 forecast none) as of "
      "2019-09-01")),
])
def test_the_forecast_plot_names_the_model_as_the_receipt_does(model, version, models, as_of, tz, title):
    # it read 'forecasts of damped damped-v1 as of', the receipt and the leaderboard 'damped (damped-v1)' (ui17)
    assert reporting.forecast_plot_title("us_employment", model, version, as_of, tz, models) == title


@pytest.mark.parametrize(("when", "cell"), [
    (datetime(2019, 9, 1), "2019-09-01"),
    (datetime(2019, 9, 1, 6, 30), "2019-09-01 06:30 UTC"),
    (datetime(2019, 9, 1, 6, 30, 5, tzinfo=timezone(timedelta(hours=2))), "2019-09-01 04:30:05 UTC"),
])
def test_a_tables_times_are_written_as_every_message_writes_an_instant(when, cell):
    """inst43b: a datetime cell of a table artifact read '2019-09-01 00:00:00' (ISO, no zone) beside messages that
    write that instant '2019-09-01' (`timekeys.utc_text`)."""
    assert reporting.table_rows(pl.DataFrame({"as_of": [when], "rows": [24]})) == [{"as_of": cell, "rows": 24}]


def test_receipt_rows_from_to_dict_and_dataclass():
    class Receipt:
        def to_dict(self):
            return {"as_of": "2019-06-01T00:00:00", "rows": 24}

    @dataclass
    class Plain:
        rows: int
        path: Path

    assert reporting.receipt_rows(Receipt()) == [{"field": "as_of", "value": "2019-06-01T00:00:00"},
                                                 {"field": "rows", "value": "24"}]
    assert reporting.receipt_rows(Plain(3, Path("/x")))[1] == {"field": "path", "value": "/x"}


@pytest.mark.parametrize("event,expected", [
    ({"step": 30, "max_steps": 300}, 0.1),
    ({"epoch": 1, "max_epochs": 4}, 0.25),
    ({"fraction": 0.5}, 0.5),
    ({"step": 3, "max_steps": None}, None),
    ({"val_loss": 1.0}, None),
])
def test_progress_fraction(event, expected):
    assert reporting.TrainingProgress.fraction(event) == expected


def test_progress_outside_a_run_notifies_listeners_only():
    seen = []
    reporting.progress_listeners.append(lambda key, label, f: seen.append((key, f)))
    try:
        p = reporting.TrainingProgress("lstm")
        for step in (0, 1, 2, 150, 150, 300):
            p({"step": step, "max_steps": 300})
        p.done()
    finally:
        reporting.progress_listeners.clear()
    assert p.key == reporting.progress_key("lstm") == "training-progress-lstm"
    fractions = [f for _, f in seen]
    assert fractions == sorted(set(fractions)) and fractions[0] == 0.0 and fractions[-1] == 1.0
    scope = reporting.Scope("tiny")
    assert reporting.leaderboard_artifact(pl.DataFrame({"model": ["x"]}), "mase", scope) is None  # no run: no artifact


def test_a_series_id_the_font_cannot_draw_raises_no_warning(tmp_path):
    """Regression: a series id in a script the plot's font lacks ('négatif-東京') made every forecast plot print
    'UserWarning: Glyph 26481 (\\N{CJK UNIFIED IDEOGRAPH-6771}) missing from font(s) DejaVu Sans.' and its
    source line, twice per plot (every date of a backfill), among the command's output."""
    import warnings

    hist, fc = _frames(2)
    rename = {"s0": "négatif-東京", "s1": "naïve ☃"}
    hist, fc = (f.with_columns(pl.col("unique_id").replace(rename)) for f in (hist, fc))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        path = reporting.plot_forecasts(hist, fc, tmp_path / "p.png", title="東京 sales")
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"
    assert not [str(w.message) for w in said if "Glyph" in str(w.message)], [str(w.message) for w in said]


def _sample_like_frames():
    """6 noisy monthly series (a trend, a season, a random walk) with 80/95% bands and actuals after
    as_of: what a run's forecast plot draws for the bundled us_employment sample."""
    import numpy as np

    rng = np.random.default_rng(7)
    months = [datetime(2008 + t // 12, t % 12 + 1, 1) for t in range(144 + 12)]
    hist, fc, act = [], [], []
    for i in range(6):
        level = 1000.0 * (i + 1)
        y = level + np.cumsum(rng.normal(0, level / 100, len(months))) + 30 * np.sin(np.arange(len(months)) / 1.9)
        hist += [(f"CEU{i:010d}", months[t], float(y[t])) for t in range(144)]
        act += [(f"CEU{i:010d}", months[t], float(y[t])) for t in range(144, 156)]
        for h, t in enumerate(range(144, 156)):
            w = level / 60 * (1 + h / 3)
            fc.append((f"CEU{i:010d}", months[t], float(y[143]), float(y[143]) - 2 * w, float(y[143]) - w,
                       float(y[143]) + w, float(y[143]) + 2 * w))
    cols = ["unique_id", "ds", "y"]
    return (pl.DataFrame(hist, schema=cols, orient="row"),
            pl.DataFrame(fc, schema=["unique_id", "ds", "y_hat", "y_hat_lo95", "y_hat_lo80", "y_hat_hi80", "y_hat_hi95"],
                         orient="row"),
            pl.DataFrame(act, schema=cols, orient="row"))


def test_the_forecast_plot_is_small_enough_to_embed_in_every_run_and_looks_the_same(tmp_path):
    """Every forecast, retrain and backfill run embeds its plot in a Prefect artifact (base64), which the
    Prefect database keeps for good: a 6-panel plot of us_employment was a 222 KB PNG (~300 KB per run in
    the database, 90% of all a run leaves there; measured over a day of scheduled runs). Saved with an
    adaptive 256-colour palette it is under 100 KB, and no pixel moves by more than 16 of 255 per channel
    from the full-colour rendering."""
    import io

    import numpy as np
    from PIL import Image

    hist, fc, act = _sample_like_frames()
    kw: dict = {"n_series": 6, "title": "us_employment: forecasts of damped damped-v1 as of 2020-01-01",
                "unit": "thousands of persons", "actuals": act, "as_of": datetime(2019, 12, 31)}
    path = reporting.plot_forecasts(hist, fc, tmp_path / "p.png", **kw)
    assert path is not None
    size = path.stat().st_size
    assert size < 100_000, f"the plot is {size:,} bytes"
    full = io.BytesIO()
    fig = reporting.forecast_figure(hist, fc, **kw)
    fig.savefig(full, format="png", dpi=reporting.PLOT_DPI)
    reference = np.asarray(Image.open(full).convert("RGB"), dtype=int)
    saved = np.asarray(Image.open(path).convert("RGB"), dtype=int)
    assert saved.shape == reference.shape
    assert np.abs(saved - reference).max() <= 16


def test_progress_stops_updating_once_the_api_refused_an_update():
    """Regression: an update the Prefect API did not take (a server restarted or gone mid-training) was retried by
    Prefect's client for about a minute, then dropped, and the next event (every few seconds) did the same: the
    training loop waited on the UI for hours while the training process had finished. After one failed update the
    progress is no longer sent. A real HTTP server here answers 503 to every request and counts them."""
    import threading
    import uuid
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    hits = []

    class Unavailable(BaseHTTPRequestHandler):
        def answer(self):
            hits.append(f"{self.command} {self.path}")
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PATCH = answer  # (http.server's names)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = f"http://127.0.0.1:{server.server_address[1]}/api"
        with temporary_settings({PREFECT_API_URL: api, PREFECT_CLIENT_MAX_RETRIES: 0}):
            p = reporting.TrainingProgress("gru")
            p._id = uuid.uuid4()  # as inside a run, once its artifact exists
            for step in (10, 20, 30, 40):
                p({"step": step, "max_steps": 100})
            p.done({"steps": 100})
    finally:
        server.shutdown()
    assert len(hits) == 1 and p.updates == 0, hits


def test_an_id_no_installed_font_can_draw_is_shown_with_its_escaped_form(monkeypatch):
    """Regression: a series id in a script the plot's fonts do not have (東京 where no CJK font is installed) was
    drawn as boxes, so two such panels could not be told apart; its escaped form follows it. Installed fonts of
    other scripts are used glyph by glyph, and what they draw is left as it is."""
    from flowcast import reporting

    monkeypatch.setattr(reporting, "plot_fonts", lambda: (["DejaVu Sans"], frozenset(map(ord, "Café ()abc0123"))))
    assert reporting.panel_title("東京", None) == "東京 (\\u6771\\u4eac)"
    assert reporting.panel_title("Café", None) == "Café"
    monkeypatch.setattr(reporting, "plot_fonts", lambda: (["DejaVu Sans", "Noto Sans CJK JP"],
                                                          frozenset(map(ord, "東京Café "))))
    assert reporting.panel_title("東京", None) == "東京"


def test_the_fonts_a_plot_draws_with_start_with_dejavu_and_cover_latin():
    from flowcast.reporting import plot_fonts

    families, covered = plot_fonts()
    assert families[0] == "DejaVu Sans" and {ord(c) for c in "Zürich 0-9"} <= covered


@pytest.mark.parametrize(("time_label", "xlabel"), [("end", reporting.END_LABEL_AXIS), ("start", "")])
def test_the_plot_of_hour_ending_data_says_its_times_are_interval_starts(time_label, xlabel):
    """Regression (new-user trial): the forecast plot of an end-labelled dataset (time_label = "end") drew every
    point at ds, the interval's start, one step before the labels the data write, and nothing on it said so. Each
    panel's time axis says it (whole, within the panel, clear of the date the axis writes under its right end on
    hourly data: '2024-Mar-30'); a start-labelled dataset's axis has no label."""
    from datetime import timedelta

    hours = [datetime(2024, 3, 28, 12) + timedelta(hours=i) for i in range(52)]
    hist = pl.DataFrame({"unique_id": [f"s{i}" for i in range(3) for _ in range(48)], "ds": hours[:48] * 3,
                         "y": [float(i + t % 24) for i in range(3) for t in range(48)]})
    fc = pl.DataFrame({"unique_id": [f"s{i}" for i in range(3) for _ in range(4)], "ds": hours[48:] * 3,
                       "y_hat": [float(i + h) for i in range(3) for h in range(4)]})
    fig = reporting.forecast_figure(hist, fc, n_series=3, title="t", tz="Europe/Berlin", time_label=time_label)
    shown = [ax for ax in fig.axes if ax.axison]
    assert len(shown) == 3 and all(ax.get_xlabel() == xlabel for ax in shown)
    if xlabel:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        for ax in shown:
            text, panel = ax.xaxis.label.get_window_extent(renderer), ax.get_window_extent(renderer)
            offset = ax.xaxis.get_offset_text()
            assert offset.get_text() and not text.overlaps(offset.get_window_extent(renderer)), offset.get_text()
            assert panel.x0 - 20 <= text.x0 and text.x1 <= panel.x1 + 20, (text, panel)


@pytest.mark.parametrize(("metric", "scored", "best"), [
    ("mase", "Scored by **snaive MASE**", "Best MASE: **0.8123**"),
    ("rmsse", "Scored by **naive RMSSE**", "Best RMSSE: **0.6735**"),
])
def test_the_tuning_artifact_names_its_metric_as_the_leaderboard_does(metric, scored, best):
    """Regression: the tuning artifact said 'Scored by **mase**' and 'Best mase' beside a leaderboard 'ranked by
    snaive MASE'."""
    import polars as pl

    from flowcast.models.tuning import TuningResult
    from flowcast.reporting import tuning_markdown

    trials = pl.DataFrame({"number": [0], "state": ["COMPLETE"], "value": [0.81234], "seconds": [1.0]})
    text = tuning_markdown(TuningResult(best_params={"hidden_size": 8}, best_value=0.81234 if metric == "mase"
                                        else 0.67351, metric=metric, trials=trials, budget_minutes=1.0, seconds=3.0))
    assert scored in text and best in text
    assert text.startswith("## Hyperparameter search (1 trial in 3 s, budget 1 min)")  # newuser52: "1 trials"


def test_a_withdrawn_leaderboard_marks_its_winner_not_published_and_links_the_run_that_published():
    """retrainslot19: the follow-up leaderboard of a retrain refused under the key's lock marks the winner its first
    version marked published as withdrawn, and its description links the run that published."""
    board = pl.DataFrame({"rank": [1, 2], "model": ["damped", "theta"], "kind": ["statistical", "statistical"],
                          "mase": [0.29, 0.45]})
    other = "5c1e0a2b-1111-4222-8333-444455556666"
    assert [r["published"] for r in reporting.leaderboard_rows(board, "damped", "mase")] == ["✔ published", ""]
    rows = reporting.leaderboard_rows(board, "damped", "mase", mark=reporting.WITHDRAWN_MARK)
    assert [r["published"] for r in rows] == [reporting.WITHDRAWN_MARK, ""]
    text = reporting.withdrawn_leaderboard_description(f"tiny as of 2019-07-08 03:00 was retrained already: run "
                                                       f"{other} kept the production model damped-v1.", "mase",
                                                       "damped", "damped-v2")
    assert text.startswith("Withdrawn: nothing published by this run. tiny as of")
    assert f"[{other}](" in text and "damped (damped-v2)" in text and "snaive MASE" in text
    # ui19: one pair of parentheses, not 'its winner damped (damped-v2) (marked published in ...)'
    assert "its winner, damped (damped-v2), marked to publish in the previous version of this key, was not" in text


@pytest.mark.parametrize("metric", ["mase", "rmsse"])
def test_a_withdrawn_leaderboard_says_what_its_metric_means_and_links_its_details(metric):
    """ui20: the follow-up leaderboard of a refused retrain, the key's newest version and the one its page opens on,
    had lost what the leaderboard's own description says after its first line: what the metric means and the link to
    the details (MAE, RMSE, weights, notes), which the follow-up details' version holds. It says both again."""
    details = "0af1b4db-d66a-4967-9807-194f800eb41c"
    text = reporting.withdrawn_leaderboard_description("tiny as of 2019-07-08 03:00 is published already.", metric,
                                                       "damped", "damped-v2", details=details)
    meaning = reporting._meaning(metric)
    assert f"was not published.\n\n{meaning}.\n\nMAE, RMSE, weights, notes and how to read the scores: " in text
    assert text.endswith(f"[leaderboard details]({reporting._ui_url(f'artifacts/artifact/{details}')})"), text
    said = reporting.leaderboard_description(metric, "damped", "damped-v2")  # the first version's says the same
    assert said.endswith(f"\n\n{meaning}.")


@pytest.mark.parametrize(("parts", "joined"), [
    (("another run published it, so this run publishes nothing", "Its promotion of the winner was withdrawn."),
     "another run published it, so this run publishes nothing. Its promotion of the winner was withdrawn."),
    (("run X retrained it (a run given its date retrains it again)", "This run's own decision was refused: moved"),
     "run X retrained it (a run given its date retrains it again). This run's own decision was refused: moved."),
    (("said already.", ""), "said already."),
    (("  is it?  ", "Yes!"), "is it? Yes!"),
])
def test_a_note_of_several_sentences_ends_each_with_a_period(parts, joined):
    """ui19: a refused retrain's note joined the sentence naming the run that published (no period at its end) and
    the one saying what was withdrawn: the run's state message and its artifacts read 'so this run publishes nothing
    Its promotion of the winner was withdrawn'."""
    assert reporting.sentences(*parts) == joined
    text = reporting.skipped_markdown(reporting.sentences(*parts))
    assert f"\n\n{joined}\n" in text and ".." not in text


@pytest.mark.parametrize(("notes", "says"), [
    (["", ""], ""),
    (["X are blank: why", "X are blank: why"], "X are blank: why"),  # every candidate: said once
    (["X are blank: why", ""], "a: X are blank: why"),  # only some: named
    (["X are blank: one", "X are blank: two"], "a: X are blank: one; b: X are blank: two"),
    # the production model scored on its own registered intervals, its cells filled: the others' note said once
    (["X are blank: why", "X are blank: why", ""], "X are blank: why"),
])
def test_the_leaderboard_says_why_its_interval_cells_are_blank(notes, says):
    """Regression: coverage95 / msis cells blank (a one-window backtest) with nothing saying why; the table's
    description and the details say the candidates' `intervals_note`."""
    from types import SimpleNamespace

    cands = [SimpleNamespace(name=n, intervals_note=t, intervals={"coverage95": None if t or n != "c" else 0.95})
             for n, t in zip("abc", notes)]
    text = reporting.blank_intervals_text(cands)
    assert text == says
    desc = reporting.leaderboard_description("mase", "a", None, text)
    board = pl.DataFrame({"rank": [1, 2], "model": ["a", "b"], "mase": [0.9, 1.0], "coverage95": [None, None]})
    details = reporting.leaderboard_details_markdown(board, "mase", "a", intervals_note=text)
    if says:
        assert desc.split("\n\n")[-1] == f"{reporting.md_text(says)}." and f"{reporting.md_text(says)}." in details
    else:
        assert len(desc.split("\n\n")) == 2 and "blank" not in details


@pytest.mark.parametrize("note", ["cov95 and MSIS are blank: the backtest has one window", ""])
@pytest.mark.parametrize("withdrawn", [True, False])
def test_a_refused_runs_follow_up_leaderboard_still_says_why_its_interval_cells_are_blank(note, withdrawn):
    """review22: a refused retrain's follow-up leaderboard (the key's newest version) dropped the note on its blank
    coverage / MSIS cells that the version it follows (`leaderboard_description`) gave; it says it, in the same
    place (after what the metric means, before the left-out columns' sentence and the details' link)."""
    empty = "No candidate has a cov95 or MSIS score: ..."
    text = reporting.withdrawn_leaderboard_description("tiny as of 2019-07-08 03:00 is published already.", "mase",
                                                       "damped", "damped-v2", withdrawn=withdrawn, empty=empty,
                                                       intervals_note=note)
    before = reporting.leaderboard_description("mase", "damped", "damped-v2", note, landed=False)
    paragraphs = text.split("\n\n")
    assert paragraphs[-1] == empty
    if note:
        assert paragraphs[-2] == before.split("\n\n")[-1] == f"{reporting.md_text(note)}."
    else:
        assert "blank" not in text and paragraphs[-2] == f"{reporting._meaning('mase')}."


def test_the_refusal_artifact_shows_the_error_and_files_as_written():
    """The data-quality artifact of a run refused on its source (a header alone): the error and the file names as
    written, markdown's characters in them shown, not read as markup."""
    from flowcast.reporting import refusal_markdown

    md = refusal_markdown("my_sales", "s_1*.csv: no rows (the file has a header but no data)", ["/d/s_1*.csv"])
    assert md.startswith("## Data quality: my\\_sales\n") and "**Refused: the source left this run nothing" in md
    assert "s\\_1\\*.csv: no rows (the file has a header but no data)" in md and md.endswith("files: /d/s\\_1\\*.csv")


@pytest.mark.parametrize("landed", [False, True])
def test_a_leaderboard_written_before_its_publish_says_its_winner_is_to_publish(landed):
    """followup21: the leaderboard written before the publish describes its winner as to publish, not published."""
    text = reporting.leaderboard_description("mase", "damped", "damped-v2", landed=landed)
    assert ("the published forecasts come from damped (damped-v2)" in text) is landed
    assert ("this run is to publish the forecasts of damped (damped-v2) (not published yet" in text) is not landed


@pytest.mark.parametrize("as_of", [
    datetime(2019, 9, 1, 6),  # naive: UTC
    datetime(2019, 9, 1, 6, tzinfo=UTC),
    datetime(2019, 9, 1, 16, tzinfo=timezone(timedelta(hours=10))),
    "2019-09-01T06:00:00",
    "2019-09-01T06:00:00Z",
    "2019-09-01T06:00:00z",  # what `timekeys.as_instant` reads and datetime.fromisoformat refused
    " 2019-09-01T06:00:00+00:00",
    "2019-09-01T16:00:00+10:00",
])
def test_the_receipt_sentence_reads_its_as_of_as_every_as_of_is_read(as_of):
    """A receipt's as_of (stored ISO text or a datetime, naive or with an offset) renders as `timekeys.utc_text`
    renders the instant, the one definition of how an as_of reads."""
    receipt = {"dataset": "us_employment", "as_of": as_of, "rows": 24, "n_series": 2, "model": "theta"}
    assert utc_text(as_of) == "2019-09-01 06:00 UTC"
    assert reporting.receipt_sentence(receipt) == ("Published 24 forecast rows of 2 series of us_employment as of "
                                                   "2019-09-01 06:00 UTC from theta.")


@pytest.mark.parametrize(("models", "said"), [
    (["naive", "theta"], "from theta (theta-v1)."),
    (["theta"], "from theta (theta-v1)."),
    ([], "from theta (theta-v1)."),  # an older receipt without `models`
    (["naive"], "from naive, the fallback for every series (theta-v1 forecast none)."),
    (["damped", "naive"], "from damped and naive, the fallbacks for every series (theta-v1 forecast none)."),
])
def test_the_receipt_sentence_names_the_fallback_when_every_row_is_its(models, said):
    """iv44: a backfill date whose every series had 1 observation was published by naive only, and the receipt
    said 'Published ... from theta (theta-v1)', a model that made none of its rows."""
    receipt = {"dataset": "shop", "as_of": "2024-01-01T00:00:00", "rows": 18, "n_series": 3, "model": "theta",
               "model_version": "theta-v1", "models": models}
    assert reporting.receipt_sentence(receipt) == ("Published 18 forecast rows of 3 series of shop as of "
                                                   f"2024-01-01 {said}")


def _bands_frame(lo80: list[float | None], lo95: list[float | None]) -> pl.DataFrame:
    """Two steps of each of len(lo80) // 2 series 'a', 'b', ... with those lower bounds (the upper ones alike)."""
    ids = [chr(ord("a") + i // 2) for i in range(len(lo80))]
    return pl.DataFrame({"unique_id": ids, "y_hat": [1.0] * len(ids), "y_hat_lo80": lo80, "y_hat_hi80": lo80,
                         "y_hat_lo95": lo95, "y_hat_hi95": lo95}, schema_overrides={
                             c: pl.Float64 for c in ("y_hat_lo80", "y_hat_hi80", "y_hat_lo95", "y_hat_hi95")})


@pytest.mark.parametrize(("lo80", "lo95", "said"), [
    ([1.0] * 4, [1.0] * 4, "with 80% and 95% intervals"),
    ([1.0] * 4, [None] * 4, "with 80% intervals"),  # 95% left out whole: too few calibration points
    ([None] * 4, [None] * 4, "without intervals"),
    # probe45: a constant series' zero-width interval beside a series with no typical change to scale its widths by
    ([1.0, 1.0, None, None], [1.0, 1.0, None, None],
     "with 80% and 95% intervals (none for 1 of 2 series: b; the run's notes say why)"),
    ([1.0, 1.0, None, None, None, None], [1.0, 1.0, None, None, None, None],
     "with 80% and 95% intervals (none for 2 of 3 series: b, c; the run's notes say why)"),
    # cachedir46: too few calibration points for 95%: a constant series' zero width alone, the others' 80% drawn
    ([1.0] * 6, [1.0, 1.0, None, None, None, None],
     "with 80% and 95% intervals (no 95% interval for 2 of 3 series: b, c; the run's notes say why)"),
    # wordsB46: one series lacks both levels, another the 95% only: each said of its own series
    ([1.0, 1.0, None, None, 1.0, 1.0], [1.0, 1.0, None, None, None, None],
     ("with 80% and 95% intervals (none for 1 of 3 series: b; no 95% interval for 1 of 3 series: c; the run's notes "
     "say why)")),
])
def test_the_plot_caption_says_which_series_have_no_interval(lo80, lo95, said):
    """The caption said 'with 80% and 95% intervals' where some series had none (probe45: a series without a typical
    change to scale its widths by is published without bounds beside a constant series' zero-width interval)."""
    assert reporting.plot_bands_text(_bands_frame(lo80, lo95)) == said


@pytest.mark.parametrize(("bare", "named"), [
    ("a_b*", "a\\_b\\*"),  # wordsB45: unescaped, the caption (a markdown heading) read it as italics
    ("x|y", "x\\|y"),
    ("<EU>", "&lt;EU&gt;"),  # an HTML tag that vanished
    ("north, east", "'north, east'"),  # quoted, as a list of ids names it: not two series
])
def test_the_plot_caption_names_the_series_without_an_interval_as_markdown_shows_them(bare, named):
    """The caption is the plot artifact's markdown: a series id named in it is escaped (`mdtext.md_id`)."""
    frame = _bands_frame([1.0, 1.0, None, None], [1.0, 1.0, None, None]).with_columns(
        pl.col("unique_id").replace({"b": bare}))
    assert reporting.plot_bands_text(frame) == (
        f"with 80% and 95% intervals (none for 1 of 2 series: {named}; the run's notes say why)")


@pytest.mark.parametrize(("ended", "stopped"), [
    ([], ""),
    (["a_b*"], "; 1 ended series forecast from its own last observation, long before the others' (marked): 'a\\_b\\*'"),
    (["x|y", "<EU>", "north, east", "d"],
     ("; 4 ended series forecast from their own last observation, long before the others' (marked), e.g. 'x\\|y', "
     "'&lt;EU&gt;', 'north, east'")),
])
def test_the_plot_caption_names_its_model_and_ended_series_as_markdown_shows_them(ended, stopped):
    """wordsC45: the caption (a markdown heading) put the ended series' ids and the model in unescaped: a model
    `seasonal_naive` and an id `a_b*` read as italics, `<EU>` vanished as an HTML tag."""
    caption = reporting.forecast_plot_caption("my_seasonal_naive", 2, 40, _bands_frame([1.0] * 4, [1.0] * 4), ended,
                                              ", and the actuals observed after 2024-03-01")
    assert caption == ("Forecasts of 2 of 40 series from my\\_seasonal\\_naive with 80% and 95% intervals, and the "
                       f"actuals observed after 2024-03-01{stopped}")
    # review46: the fallback that made every row, as the receipt names it: one text, not an id quoted for its comma
    fell = reporting.forecast_plot_caption("naive, the fallback for every series (theta-v1 forecast none)", 2, 40,
                                           _bands_frame([1.0] * 4, [1.0] * 4), ended)
    assert fell.startswith("Forecasts of 2 of 40 series from naive, the fallback for every series (theta-v1 forecast "
                           "none) with 80% and 95% intervals"), fell


@pytest.mark.parametrize(("rows", "said"), [(1776, "1,776"), ("1776", "1,776"), (None, "—"), ("", "—"), ("n/a", "n/a")])
def test_rows_text_writes_a_count_with_separators_and_never_fails_on_a_records_text(rows, said):
    """rev50b: a publish record's `rows` is text; '' raised ValueError in the sentence saying a date was published."""
    from flowcast.reporting import NONE, rows_text

    assert rows_text(rows) == said.replace("—", NONE)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 9])
def test_a_paged_read_gets_every_item_once_in_order_past_the_first_page(n):
    """`api_pages`, which the receipt and plot searches and a backfill's date runs read the Prefect API with: every
    item once, in the API's order, page after page (a page of 3 here: 7 items are 3 pages; 9 a last page that is
    empty), and no read after a short page."""
    items = [f"run-{i}" for i in range(n)]
    reads = []

    def read(limit: int, offset: int) -> list[str]:
        reads.append((limit, offset))
        return items[offset:offset + limit]

    assert list(reporting.api_pages(read, page=3)) == items
    assert reads == [(3, 3 * k) for k in range(n // 3 + 1)]


def test_a_paged_read_that_stops_at_its_find_reads_no_more_pages():
    reads = []

    def read(limit: int, offset: int) -> list[int]:
        reads.append(offset)
        return list(range(offset, offset + limit))  # never ends

    assert next(x for x in reporting.api_pages(read, page=4) if x == 5) == 5 and reads == [0, 4]
