"""The command line's shared pieces: errors are printed as they were written."""

from __future__ import annotations

from typer.testing import CliRunner

from flowcast.cli import app

runner = CliRunner()


def test_error_text_in_brackets_is_printed_not_taken_for_markup(tmp_path, monkeypatch):
    """Regression: rich markup took any '[...]' in an error for a style and dropped it: 'declare a variant as
    [sources.NAME] in a configuration file' printed as 'declare a variant as  in a configuration file', and
    FLOWCAST_MODEL__CELLS='[gru]' as FLOWCAST_MODEL__CELLS=''."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["validate", "--dataset", "x", "--freq", "1d"], terminal_width=400)
    assert res.exit_code == 2
    assert "declare a variant as [sources.NAME] in a configuration file" in res.output
    monkeypatch.setenv("FLOWCAST_MODEL__CELLS", "[gru]")
    res = runner.invoke(app, ["validate"], terminal_width=400)
    assert res.exit_code == 2 and "FLOWCAST_MODEL__CELLS='[gru]' is not a JSON list" in res.output
