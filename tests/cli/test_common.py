"""The command line's shared pieces: errors are printed as they were written."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from typer.testing import CliRunner

from flowcast.cli import app
from flowcast.cli.common import SourceOptions, TzOpt, _named_time, resolve_settings, source_options

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


def test_a_flowcast_variable_that_no_setting_reads_is_pointed_out(tmp_path, monkeypatch):
    """Regression: FLOWCAST_MAX_STEPS=50 (for FLOWCAST_MODEL__MAX_STEPS), FLOWCAST_HORIZN=7 or a misspelled
    section (FLOWCAST_MODLE__MAX_STEPS) were ignored without a word: the run trained with the defaults."""
    monkeypatch.chdir(tmp_path)
    for var, value in (("FLOWCAST_MAX_STEPS", "50"), ("FLOWCAST_HORIZN", "7"), ("FLOWCAST_MODLE__MAX_STEPS", "5"),
                       ("FLOWCAST_ZZZ", "1"), ("FLOWCAST_DEBUG", ""), ("FLOWCAST_MODEL__LOOKBACK", "12"),
                       ("FLOWCAST_SOURCE__UNIT", "kWh"), ("FLOWCAST_FAULT_SIGNAL", "SIGSTOP")):
        monkeypatch.setenv(var, value)
    res = runner.invoke(app, ["validate", "--dataset", "x", "--freq", "1d"])
    said = " ".join(res.output.split())  # (rich wraps at its console's width, fixed when it was made)
    ignored = "is not a flowcast setting and is ignored"
    assert said.count(ignored) == 4
    for var, close in (("HORIZN", "HORIZON"), ("MAX_STEPS", "MODEL__MAX_STEPS"), ("MODLE__MAX_STEPS", "MODEL__MAX_STEPS")):
        assert f"note: FLOWCAST_{var} {ignored} (did you mean FLOWCAST_{close}?)" in said
    assert f"note: FLOWCAST_ZZZ {ignored} error:" in said  # no guess; the known ones are not named
    assert "FLOWCAST_DEBUG" not in said and "LOOKBACK" not in said and "SOURCE__UNIT" not in said
    assert "FAULT_SIGNAL" not in said  # read by the fault points (`interrupts.fault_point`): it said ignored (faults46)


def test_help_keeps_the_brackets_of_setting_sections():
    """Regression: Typer's rich markup took '[store]' in `flowcast forecasts`' help for a style and dropped it
    ('the configured store (` url`; ...'), as '[distributed]' of train-node ('rendezvous ( section)') and kept
    each docstring's line breaks in the command list ('per dataset and as_of the points scored, MAE,' then
    'MASE, ...' on the next line). Help is read as Markdown now: brackets stay, paragraphs flow."""
    said = {}
    for args in (["--help"], ["forecasts", "--help"], ["train-node", "--help"], ["gc", "--help"]):
        res = runner.invoke(app, args, terminal_width=80)
        assert res.exit_code == 0, res.output
        said[args[0]] = " ".join(res.output.replace("│", " ").split())
    assert "([store] url; by default" in said["forecasts"] and "([store] url; by default" in said["--help"]
    assert "rendezvous ([distributed] section)" in said["train-node"] and "the [retention] section" in said["gc"]
    assert "the points scored, MAE, MASE, sMAPE" in said["--help"]


def _command_list_lines(output: str) -> dict[str, int]:
    """command -> the lines its description takes in a group's Commands panel."""
    panel = output[output.index("Commands"):].splitlines()[1:]
    lines: dict[str, int] = {}
    name = ""
    for line in panel:
        cell = line.strip("│╰─╯ ")
        if not cell:
            continue
        if not line.startswith("│  "):  # '│ name  description...': a command's first line
            name = cell.split()[0]
            lines[name] = 0
        lines[name] += 1
    return lines


@pytest.mark.parametrize("group", [[], ["models"], ["automations"]])
def test_each_command_is_listed_in_three_lines_at_80_columns(group):
    """Regression (ui40): `flowcast --help` in 80 columns listed `gc` in 11 lines and `accuracy` in 9 (`models
    --help`: `show` 8, `history` 7, `repair` 6): the list shows a command's first paragraph, and theirs was the
    whole manual. Each starts with a short paragraph now; `flowcast CMD --help` still says the rest."""
    res = runner.invoke(app, [*group, "--help"], terminal_width=80)
    assert res.exit_code == 0, res.output
    lines = _command_list_lines(res.output)
    assert len(lines) >= 2 and {n for n, k in lines.items() if k > 3} == set(), res.output


def _every_command() -> list[list[str]]:
    """The command line of every command and group, the root first (`[]`, `['models']`, `['models', 'list']`)."""
    import typer

    def walk(command, path):
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


def _options(output: str) -> dict[str, str]:
    """option -> what follows it on its first line of the help's panels ('<str>  id column (repeat for several)')."""
    import re

    found, panel = {}, ""
    for line in output.splitlines():
        if line.startswith("╭─"):
            panel = line.strip("╭─╮ ")
        elif panel == "Options" and (m := re.match(r"│ [ *]{0,4}(--[\w-]+)(?:\s+-\w)?\s+(.*?)\s*│$", line)):
            found.setdefault(m[1], m[2])  # (an option named inside a help's wrapped line starts further right)
    return found


@pytest.mark.parametrize("command", _every_command(), ids=lambda c: " ".join(c) or "flowcast")
def test_every_help_shows_a_value_only_for_options_that_take_one(command):
    """msg42: every command's --help at 80 columns showed `--json <bool>`, `--help <bool>` (a flag takes no value:
    `--json true` is refused), `--id-col <list[str]>` (one column a time, repeated) and `--limit <int range>`;
    a flag shows none now, a repeated option its one value and says so, and every option says what it is for."""
    import typer

    res = runner.invoke(app, [*command, "--help"], terminal_width=80)
    assert res.exit_code == 0, res.output
    for odd in ("<bool>", "list[", "range>"):
        assert odd not in res.output, res.output
    shown = _options(res.output)  # '--json' -> 'print one JSON object ...', '--id-col' -> '<str>  id column ...'
    assert shown["--help"] == "Show this message and exit.", shown
    leaf = typer.main.get_command(app)
    for name in command:
        leaf = leaf.commands[name]
    for param in leaf.params:
        assert param.help, (command, param.opts)  # no option or argument without its line of help
        if param.param_type_name != "option":
            continue
        said = shown[param.opts[0]]
        if param.is_flag:
            assert said.startswith(param.help.split()[0]), (param.opts, said)  # its help at once, no value
        else:
            assert said.split()[0] in ("<str>", "<int>", "<float>", "<path>"), (param.opts, said)
        if param.multiple:  # one value each time: the help says to give it again
            assert "repeat" in param.help, (param.opts, param.help)


def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path):
    """Regression: `flowcast models show V | head -c 100` (any command whose stdout reader exits first) ended
    with 'error: BrokenPipeError: [Errno 32] Broken pipe (FLOWCAST_DEBUG=1 shows the traceback)' and exit 1;
    it ends quietly with 141 (128 + SIGPIPE), as a shell tool does."""
    import os
    import subprocess
    import sys

    csv = tmp_path / "s.csv"
    csv.write_text("date,id,val\n2020-01-01,a,1\n2020-01-02,a,2\n")
    env = {**os.environ, "FLOWCAST_HOME": str(tmp_path / "home"), "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from flowcast.cli import app; app()", "validate", str(csv), "--id-col", "id",
         "--time-col", "date", "--target-col", "val", "--freq", "1d", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    proc.stdout.close()  # the reader is gone before the command writes its JSON
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "BrokenPipe" not in err and "error:" not in err, err


def _last_json(stdout: str) -> dict:
    import json

    return json.loads(stdout.strip().splitlines()[-1])


def test_an_option_error_with_json_ends_stdout_with_the_failure_object(tmp_path, monkeypatch):
    """Regression: an error in the options themselves (`--horizon abc`, an unknown option, a value Typer refuses)
    is raised by Click before the command runs, so `--json` printed no object at all (only Click's box on
    stderr); a script reading stdout's last line had nothing. The value refused is named too: the message said
    only 'Input should be a valid integer, unable to parse string as an integer'."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["run", "--json", "--horizon", "abc"])
    assert res.exit_code == 2
    failed = _last_json(res.stdout)
    assert failed["status"] == "failed" and failed["exit_code"] == 2
    assert "--horizon" in failed["error"] and "'abc'" in failed["error"]
    assert "'abc'" in " ".join(res.stderr.replace("│", " ").split())  # the person's message names it too
    res = runner.invoke(app, ["validate", "--bogus", "--json"])
    # (click may add "(Possible options: --ambiguous)": a near name, said whole)
    assert res.exit_code == 2 and _last_json(res.stdout)["error"].startswith("No such option: --bogus")
    res = runner.invoke(app, ["models", "list", "--json", "--dataset"])
    assert res.exit_code == 2 and "--dataset" in _last_json(res.stdout)["error"]
    res = runner.invoke(app, ["forecasts", "--format", "json", "--limit", "0"])
    assert res.exit_code == 2 and "--limit" in _last_json(res.stdout)["error"]
    res = runner.invoke(app, ["run", "--horizon", "abc"])  # without --json: no JSON on stdout
    assert res.exit_code == 2 and res.stdout == ""


@pytest.mark.parametrize("value", ["host=db password=s3cret", "postgresql://u:s3cret@h/db"])
def test_an_option_error_names_the_value_without_its_secret(tmp_path, monkeypatch, value):
    """secrets52: Click's error named the value refused as given, a DSN's password or a URL's with it, in its box and
    in the --json object."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["run", "--json", "--horizon", value])
    assert res.exit_code == 2
    assert "s3cret" not in res.stdout and "s3cret" not in res.stderr, res.output
    assert value.replace("s3cret", "***") in _last_json(res.stdout)["error"]


@pytest.mark.parametrize(("given", "told"), [
    (["run", "--file", "x.csv"], "flowcast run x.csv (or --data x.csv)"),
    (["validate", "--input=my sales.csv"], "flowcast validate 'my sales.csv' (or --data 'my sales.csv')"),
    (["train", "--csv", "x.csv", "--freq", "1d"], "flowcast train x.csv (or --data x.csv)"),
    (["run", "--path"], "flowcast run FILE (or --data FILE)"),
])
def test_an_option_other_tools_name_the_file_with_is_told_where_the_file_goes(tmp_path, monkeypatch, given, told):
    """cols43: `flowcast run --file x.csv` was told 'No such option: --file (Possible options: --freq)', an option
    that has nothing to do with the file. --file, --input, --csv and --path say how the file is given instead."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [*given, "--json"], terminal_width=400)
    assert res.exit_code == 2, res.output
    error = _last_json(res.stdout)["error"]
    option = given[1].split("=")[0]
    assert error == f"No such option: {option}. The data file goes as the first argument: {told}", error
    assert "Possible options" not in res.output and told in " ".join(res.stderr.replace("│", " ").split())


def test_an_unknown_option_of_a_command_without_a_file_keeps_clicks_words(tmp_path, monkeypatch):
    """cols43: the file's hint is for a command that reads a file: `flowcast models list --file x` is told as before."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["models", "list", "--file", "x", "--json"])
    assert res.exit_code == 2 and _last_json(res.stdout)["error"].startswith("No such option: --file")
    assert "data file" not in res.output


@pytest.mark.parametrize(("given", "told"), [
    (["status"], "No such command 'status'. What a home holds: flowcast models list"),
    (["ls", "--json"], "No such command 'ls'. What a home holds: flowcast models list"),
    (["model"], "No such command 'model'. Did you mean 'models'?"),  # Typer's near name, as before
    (["models", "status"], "No such command 'status'."),  # a group's own commands: Click's words
])
def test_a_command_other_tools_show_their_state_with_is_told_flowcasts(tmp_path, monkeypatch, given, told):
    """newuser46: `flowcast status`, what a new user tries first after a run, was told only 'No such command
    'status'.' (no near name among flowcast's): it names the commands that show what a home holds."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, given, terminal_width=400)
    assert res.exit_code == 2, res.output
    said = _last_json(res.stdout)["error"] if "--json" in given else " ".join(res.stderr.replace("│", " ").split())
    assert told in said, said
    assert ("flowcast forecasts (what was published" in said) is ("models list" in told)


def test_forecasts_format_json_ends_stdout_with_the_failure_object(tmp_path, monkeypatch):
    """Regression: `flowcast forecasts --format json` (its JSON mode; it has no --json) printed only the red
    sentence on a failure: a script parsing stdout got nothing to parse."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["forecasts", "--home", str(tmp_path / "h"), "--format", "json", "--as-of", "bad"])
    assert res.exit_code == 2
    failed = _last_json(res.stdout)
    assert failed["status"] == "failed" and "'bad'" in failed["error"] and failed["exit_code"] == 2


def test_models_show_takes_json_as_every_other_command_does(tmp_path, monkeypatch):
    """Regression: `flowcast models show V --json` (every other command takes --json; show prints JSON anyway)
    failed with 'No such option: --json'. It is accepted, and a failure then ends stdout with the object."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["models", "show", "gru-v9", "--json", "--home", str(tmp_path / "h")])
    assert res.exit_code == 1, res.output
    failed = _last_json(res.stdout)
    assert failed["status"] == "failed" and "gru-v9" in failed["error"]


@pytest.mark.parametrize(("ids", "hint"), [
    (("0", "1", "2"), ("its times repeat (several series?) and 'Meter ID' tells them apart (3 series, its numbers "
                       "read as ids): name it with --id-col (--id-col 'Meter ID')")),
    (("0", "0", "0"), None),  # one id: its times repeat under it too; the readings, each its own, are no id
])
def test_a_number_column_that_tells_series_apart_is_named(tmp_path, monkeypatch, ids, hint):
    """newuser45: a 15-minute file of meters with numeric ids (`Meter ID,Timestamp,Reading kWh`) was told only that
    it also needs --target-col, no word of its series (the hint named text columns alone), and given it, had every
    row quarantined as duplicates. Its number column under which no time repeats, making series of several rows, is
    named with the option to pass; the readings, which differ from row to row, are not."""
    monkeypatch.chdir(tmp_path)
    rows = "".join(f"{m},2024-03-01 {h:02d}:{q:02d},{i}.{h}{q}\n"
                   for i, m in enumerate(ids) for h in range(3) for q in (0, 15, 30, 45))
    (tmp_path / "meters.csv").write_text("Meter ID,Timestamp,Reading kWh\n" + rows)
    res = runner.invoke(app, ["validate", "meters.csv"], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "error: --data meters.csv also needs --target-col (its columns" in said, said
    assert (hint in said) if hint else ("tells them apart" not in said and "several series" not in said), said


@pytest.mark.parametrize(("values", "said"), [
    (("101.64 kg", "98.1 kg"), ("likely --target-col weight (its one column of numbers written with more: '101.64 kg' "
                                "(a unit after the number? export the numbers alone, without their unit 'kg'")),
    (("€12.50", "€9.99"), "likely --target-col weight (its one column of numbers written with more: '€12.50' (a "),
    (("heavy", "light"), None),  # words: no number written with more, no target named
])
def test_a_target_of_numbers_with_a_unit_is_named_as_likely(tmp_path, monkeypatch, values, said):
    """newuser51: `flowcast validate units.csv` of `store,date,weight`, its weights written '101.64 kg', was asked for
    --target-col naming its columns alone (a column of text is no number column), and told of the unit only once
    given it, when every row was quarantined. The column is named as likely, with what the run would say of it."""
    monkeypatch.chdir(tmp_path)
    rows = "".join(f"{s},2024-01-0{d},{values[(d - 1) % 2]}\n" for s in ("a", "b") for d in range(1, 8))
    (tmp_path / "units.csv").write_text("store,date,weight\n" + rows, encoding="utf-8")
    res = runner.invoke(app, ["validate", "units.csv", "--id-col", "store", "--time-col", "date"], terminal_width=400)
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "also needs --target-col (its columns: store, date, weight)" in text, text
    assert (said in text) if said else "likely --target-col" not in text, text


@pytest.mark.parametrize(("tz", "dst"), [
    ([], "the hour that occurs twice when daylight saving ends in Europe/Berlin"),
    (["--tz", "Europe/Berlin"], "(--tz Europe/Berlin --ambiguous infer)"),
    (["--tz", "Europe/London"], None),  # London's clocks go back from 02:00 BST: its 01:00 repeats, not 02:00
    # its advice given: not offered again, the file is read with --target-col
    (["--tz", "Europe/Berlin", "--ambiguous", "infer"], ("(the hour that occurs twice when daylight saving ends, which "
                                                        "--ambiguous infer reads in a long file: give --target-col)")),
])
def test_a_time_value_file_whose_time_repeats_names_it(tmp_path, monkeypatch, tz, dst):
    """Session 50: a file `time,kwh` of one meter's local half hours, its 02:00 and 02:30 written twice where daylight
    saving ends in Berlin, was asked for --target-col alone (a time written twice keeps it from being read as one
    series), the repeated time named nowhere. It names the first such time, how many there are, and the daylight-saving
    change whose hour it is in the zone given (or, without one, the zones where it is)."""
    monkeypatch.chdir(tmp_path)
    times = ["2024-10-27 01:00", "2024-10-27 01:30", "2024-10-27 02:00", "2024-10-27 02:30", "2024-10-27 02:00",
             "2024-10-27 02:30", "2024-10-27 03:00"]
    (tmp_path / "meter.csv").write_text("time,kwh\n" + "".join(f"{t},{i}.5\n" for i, t in enumerate(times)))
    res = runner.invoke(app, ["validate", "meter.csv", "--freq", "30m", *tz], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "also needs --target-col" in said, said
    assert ("it is not read as a wide file (its time, then a number column per series) because a time is written "
            "twice by rows that differ: '2024-10-27 02:00' (2 times are written twice, this the first)") in said, said
    assert (dst in said) if dst else "daylight saving" not in said, said
    assert "--ambiguous" not in tz or "declare the source's tz" not in said, said


@pytest.mark.parametrize("header", ["store,date,sales,store", "store,date,sales,Sales,store"])
def test_a_header_naming_a_column_twice_is_said_as_written(tmp_path, monkeypatch, header):
    """newuser46: `flowcast validate` of a file `store,date,sales,store` was told `also needs --time-col, --target-col
    (its columns: store, date, sales, store_duplicated_0)`, polars' name for the second 'store', which no option
    reads; the repeat kept every column from being guessed. It lists the header as written and says what to rename."""
    monkeypatch.chdir(tmp_path)
    extra = ",1" if "Sales" in header else ""
    rows = "".join(f"{s},2024-01-0{d},{d}{extra},{s}\n" for s in ("a", "b") for d in (1, 2))
    (tmp_path / "dup.csv").write_text(f"{header}\n{rows}")
    res = runner.invoke(app, ["validate", "dup.csv", "--freq", "1d"], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "_duplicated_" not in said, said
    written = header.replace(",", ", ")
    position = header.split(",").index("store", 1) + 1
    assert (f"(its columns: {written}; its header names a column more than once ('store' is column 1 and {position}): "
            "rename the others in the file so that each column has a name of its own)") in said, said


@pytest.mark.parametrize(("dates", "said"), [
    (["1422662400", "1425081600"], ("'date' holds integers read as Unix epoch seconds (e.g. 1422662400): as the time, "
                                   "--time-col date --time-format %s")),
    (["20151331", "20150228"], None),  # no 13th month: not dates, nothing hinted
    # newuser48: week numbers, which no --time-format reads, and Excel's mmm-yy months, which one does, were asked
    # for --time-col and --target-col alone
    (["1", "2"], ("'date' is named as a time, but its values do not read as times (e.g. '1' (a week or period number "
                  "without its year? no --time-format reads one: write each as a date, the first day of its period "
                  "(2024-01-01) or an ISO week (2024-W01)))")),
    (["Jan-22", "Feb-22"], ("'date' is named as a time, but its values do not read as times (e.g. 'Jan-22' (a month "
                            "name and a two-digit year? declare its time_format: --time-format '%b-%y'))")),
])
def test_a_time_column_of_integers_is_told_its_time_format_in_the_first_error(tmp_path, monkeypatch, dates, said):
    """Regression (newuserB47): `flowcast validate emp_intdate.csv` of dates written 20150131 was asked for --time-col
    and --target-col alone; the --time-format it also needs was hinted only once those were given."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "emp.csv").write_text("date,id,value\n" + "".join(f"{d},a,{i}\n" for i, d in enumerate(dates)))
    res = runner.invoke(app, ["validate", "emp.csv"], terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "also needs --time-col, --target-col (its columns: date, id, value" in out, out
    assert (said in out) if said else ("--time-format" not in out), out


@pytest.mark.parametrize(("header", "first", "said"), [
    ("id,ts,value", lambda i: str(1717200000 + 3600 * i),
     "'ts' holds integers read as Unix epoch seconds (e.g. 1717200000): as the time, --time-col ts --time-format %s"),
    ("id,day_key,value", lambda i: f"202406{i + 1:02d}",
     "'day_key' holds integers read as dates (e.g. 20240601): as the time, --time-col day_key --time-format %Y%m%d"),
    # a column whose values read as times is the likely time: an order number of 10 digits beside it is no epoch
    ("id,order_no,value", lambda i: f"2024-06-0{i + 1},{1717200000 + i}", None),
])
def test_a_time_column_of_integers_not_named_as_a_time_is_told_its_time_format(tmp_path, monkeypatch, header, first,
                                                                                said):
    """newuser54: `flowcast validate epoch.csv` of `id,ts,value`, its times Unix seconds, was asked for --time-col and
    --target-col among its columns alone ('ts' is not a time's name), and told --time-format %s only once given
    --time-col ts. A file with no column named as a time and none whose values read as times is told its one
    column of such integers, whatever its name."""
    monkeypatch.chdir(tmp_path)
    if said is None:
        header = "id,day_of_sale,order_no,value"
    (tmp_path / "e.csv").write_text(f"{header}\n" + "".join(f"{s},{first(i)},{i}\n" for s in "ab" for i in range(3)))
    res = runner.invoke(app, ["validate", "e.csv"], terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "also needs" in out and "--time-col" in out, out
    assert (said in out) if said else ("--time-format" not in out and "epoch" not in out), out


def test_a_time_column_of_basic_iso_dates_is_read_without_a_time_format(tmp_path, monkeypatch):
    """newuserB47's dates written 20150131 were asked for --time-col and --target-col, then hinted --time-format
    %Y%m%d; ingest53c reads them as ISO-8601's basic format: the column is guessed from its name and read."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "emp.csv").write_text("date,id,value\n20150131,a,0\n20150201,a,1\n20150202,a,2\n")
    res = runner.invoke(app, ["validate", "emp.csv"], terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 0 and "--time-col date guessed from their names" in out, out
    assert "date range | 2015-01-31 .. 2015-02-02 |" in out and "--time-format" not in out, out


@pytest.mark.parametrize(("header", "options", "said"), [
    # nothing in the names says the columns: those the values say are told, as options and as configuration keys
    ("shop_code,day_of_sale,revenue_eur", [],
     ("also needs --time-col, --target-col (its columns: shop_code, day_of_sale, revenue_eur); likely --time-col "
     "day_of_sale (its values read as times) --target-col revenue_eur (its one number column) --freq 1d (its dates "
     'step by 1d); in a configuration file, [sources.f] time_col = "day_of_sale", target_col = "revenue_eur", '
     'freq = "1d"; --freq, the period')),
    ("shop_code,day_of_sale,revenue_eur", ["--time-col", "day_of_sale"],
     ("also needs --target-col (its columns: shop_code, day_of_sale, revenue_eur); likely --target-col revenue_eur "
     '(its one number column) --freq 1d (its dates step by 1d); in a configuration file, [sources.f] target_col = '
     '"revenue_eur", freq = "1d"; --freq')),
    # two columns of dates, two of numbers: which is meant is not guessed, both are named
    ("shop_code,ordered,shipped,revenue,cost", [],
     "likely --time-col one of 'ordered', 'shipped' (their values read as times); --freq"),
    ("shop_code,day_of_sale,revenue,cost", ["--time-col", "day_of_sale"],
     "likely --target-col one of 'revenue', 'cost' (its number columns); --freq"),
    # store numbers (007, 012) tell the series apart: no target; of two others, the one named as a target
    ("store_no,date,sales", [],
     ("likely --target-col sales (its one number column besides 'store_no', the series' id) --freq 1d (its dates "
      'step by 1d); in a configuration file, [sources.f] target_col = "sales", freq = "1d"; --freq')),
    ("shop_code,date,sales,cost", [],
     "likely --target-col sales (its number column named as a target) --freq 1d (its dates step by 1d); in a"),
])
def test_a_file_whose_names_say_nothing_is_told_its_likely_columns(tmp_path, monkeypatch, header, options, said):
    """newuser48: `flowcast validate` of a file `shop_code,day_of_sale,revenue_eur` was told its columns alone; given
    --time-col, it was asked for --target-col, its one number column not named. The columns whose values read as
    times, and a long file's number columns, are named with the options and the [sources.NAME] keys that declare
    them, with the --freq their dates step by (newuser49); the series' hint is given off the likely time column (its
    times repeat: --id-col shop_code), or of two, the first (newuser49: none was given)."""
    monkeypatch.chdir(tmp_path)
    dated = {"day_of_sale": 0, "ordered": 0, "shipped": 1}  # (the days after the row's date)
    dated["date"] = 0
    ids = {"shop_code": ("north", "south"), "store_no": ("007", "012")}
    rows = [[ids[c][k] if c in ids else f"2024-01-{d + dated[c]:02d}" if c in dated else f"{d}.5"
             for c in header.split(",")] for d in (1, 2, 3) for k in (0, 1)]
    (tmp_path / "f.csv").write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows))
    res = runner.invoke(app, ["validate", "f.csv", *options], terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and said in out, out
    assert f"--id-col {header.split(',')[0]}" in out, out
    assert "'shipped' (e.g." not in out, out  # (a column of times is no id)


def test_a_file_of_number_columns_alone_is_told_no_likely_time(tmp_path, monkeypatch):
    """A number column is no likely time, though an id of 1001 or an amount of 2020.0 reads as a year."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.csv").write_text("shop,when,amount\n1001,x,2020.0\n1002,y,2021.0\n")
    res = runner.invoke(app, ["validate", "f.csv"], terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "also needs --time-col" in out and "likely" not in out, out


@pytest.mark.parametrize(("title", "said"), [
    ("Sales report Q1 2024,,\n", ("its header is line 2, 'store,date,sales', below a title ('Sales report Q1 2024'): "
                                 "remove 1 line above the header, or start each with '#'")),
    ("Sales report Q1 2024,,\nGenerated 2024-05-01,,\n",
     ("its header is line 3, 'store,date,sales', below a title ('Sales report Q1 2024' and 1 line more): remove 2 "
     "lines above the header, or start each with '#'")),
])
def test_a_title_line_above_the_header_is_told_so(tmp_path, monkeypatch, title, said):
    """newuser48: a report's export `Sales report Q1 2024,,` above `store,date,sales` was asked for --time-col and
    --target-col among the columns 'Sales report Q1 2024, column_2, column_3'. It is told which line is the header
    and what to remove; with its title commented out it reads."""
    monkeypatch.chdir(tmp_path)
    body = "store,date,sales\n" + "".join(f"{s},2024-01-0{d},{d}\n" for d in (1, 2, 3) for s in ("north", "south"))
    (tmp_path / "f.csv").write_text(title + body)
    res = runner.invoke(app, ["validate", "f.csv"], terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and f"error: --data f.csv: {said}" in out, out
    (tmp_path / "f.csv").write_text("".join(f"# {t}\n" for t in title.splitlines()) + body)
    res = runner.invoke(app, ["validate", "f.csv", "--json", "--home", "h"], terminal_width=400)
    assert res.exit_code == 0 and _last_json(res.stdout)["rows_valid"] == 6, res.output


def test_a_file_without_its_columns_and_freq_is_told_what_they_could_be(tmp_path, monkeypatch):
    """Regression: '--data sales.csv also needs --time-col, --target-col, --freq' left a new user to open the file
    for its column names and to look up which strings --freq takes; the error names both. Regression (newuser22):
    --freq was among what the file 'needs', though the command reads it off the dates once the columns are named;
    and a long file of stores given --time-col alone was not told that its text column names the series."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sales.csv").write_bytes("\ufeffstore;wk;units\n1;2024-01-07;3\n".encode())
    res = runner.invoke(app, ["validate", "sales.csv"], terminal_width=400)
    assert res.exit_code == 2
    # (newuser48: and the column whose values read as times, 'wk', is named as the likely time)
    assert ("--data sales.csv also needs --time-col, --target-col (its columns: store, wk, units); likely --time-col "
            'wk (its values read as times); in a configuration file, [sources.sales] time_col = "wk"; --freq, the '
            "period of its rows, is read off its dates when not given (30m, 1h, 1d, 1b, 1w, 1mo, 1q or 1y)"
            ) in " ".join(res.output.split())
    # (a column named 'shop': one named 'store' is taken for the series)
    (tmp_path / "stores.csv").write_text("shop,date,sales\nnorth,2024-01-07,3\nsouth,2024-01-07,4\n"
                                         "north,2024-01-14,5\nsouth,2024-01-14,6\n")
    res = runner.invoke(app, ["validate", "stores.csv", "--time-col", "date"], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and said.startswith("error: --data stores.csv also needs --target-col (its columns"), said
    assert ("its times repeat (several series?) and 'shop' (e.g. 'north') holds text: name the column that tells "
            "the series apart (or the columns that do together) with --id-col (e.g. --id-col shop)") in said
    # given --id-col shop, the hint is gone and its column named 'sales' is taken for the target (tgt43)
    res = runner.invoke(app, ["validate", "stores.csv", "--time-col", "date", "--id-col", "shop", "--freq", "1w",
                              "--home", "h"], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 0 and "tells the series apart" not in said and "y <- 'sales'" in said, said
    (tmp_path / "weeks.csv").write_text("store,week,units\n1,2024-01-07,3\n")
    res = runner.invoke(app, ["validate", "weeks.csv", "--time-col", "week", "--target-col", "units"],
                        terminal_width=400)
    assert res.exit_code == 2 and "--data weeks.csv also needs --freq (--freq is the period" in " ".join(res.output.split())


@pytest.mark.parametrize(("name", "content", "said"), [
    ("sales.xlsx", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 64,
     "sales.xlsx is a ZIP or Excel workbook, not a CSV file; save the sheet as CSV (UTF-8) or Parquet"),
    ("sales.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "sales.xls is a ZIP or Excel workbook"),
    ("sales.csv.bz2", b"BZh91AY&SY" + b"\x00" * 16, "sales.csv.bz2 is bzip2-compressed"),
    ("gone.csv", None, "file not found: gone.csv"),
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_file_that_cannot_be_read_is_refused_before_its_columns_are_asked_for(tmp_path, monkeypatch, command, name,
                                                                                content, said):
    """Regression: `flowcast run sales.xlsx` (no Excel reader is installed) was told 'also needs --time-col,
    --target-col, --freq'; given them, it started Prefect and only inside the run said the file was a workbook. A
    missing file was told the same. The file is refused first, with what to do."""
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / name).write_bytes(content)
    res = runner.invoke(app, [command, name, "--json", "--home", str(tmp_path / "h")], terminal_width=400)
    assert res.exit_code == 2, res.output
    error = _last_json(res.stdout)["error"]
    assert said in error and "also needs" not in error


def test_a_ctrl_c_that_a_library_turned_into_its_own_error_is_an_interruption(capsys):
    """Regression: a Ctrl-C while Prefect started its temporary server (it serializes its settings, a
    pydantic model, for the server's environment) ended 'error: PydanticSerializationError: Error calling
    function `_ser_model`: KeyboardInterrupt' with exit 1: pydantic turns a KeyboardInterrupt raised in a
    serializer (where Python's SIGINT handler raised it) into its own error. It is 'interrupted', 130."""
    import pydantic
    import pytest
    import typer

    from flowcast.cli.common import cli_errors

    class Server(pydantic.BaseModel):
        port: int = 8000

        @pydantic.model_serializer(mode="wrap")
        def _ser_model(self, handler):
            raise KeyboardInterrupt  # what Python's SIGINT handler raises in the code under way

    class Settings(pydantic.BaseModel):  # Prefect's settings have a serializer at every level
        server: Server = Server()

        @pydantic.model_serializer(mode="wrap")
        def _ser_model(self, handler):
            return handler(self)

    @cli_errors
    def command(model: pydantic.BaseModel, json_out: bool = False) -> None:
        model.model_dump()

    for model in (Server(), Settings()):  # the error is caused by the interrupt; nested, it only names it
        with pytest.raises(typer.Exit) as exit_:
            command(model, json_out=True)
        assert exit_.value.exit_code == 130
        said = capsys.readouterr()
        assert "interrupted" in said.err and "PydanticSerializationError" not in said.err
        assert _last_json(said.out) == {"status": "failed", "error": "interrupted", "exit_code": 130}

    @cli_errors
    def failing() -> None:  # an error of its own, not of an interrupt, is still an error
        raise ValueError("bad value 'x'")

    with pytest.raises(typer.Exit) as exit_:
        failing()
    assert exit_.value.exit_code == 1 and "error: ValueError: bad value 'x'" in capsys.readouterr().err


def test_a_file_in_flowcasts_own_vocabulary_needs_no_column_options(tmp_path, monkeypatch):
    """Regression: a file written as flowcast names its columns (Nixtla's long unique_id, ds, y: what `flowcast
    forecasts` and neuralforecast write) needed --time-col ds --target-col y, and without --id-col unique_id was
    read as one series whose every date repeated (all but one row per date quarantined as duplicates). Those
    names are the defaults for a file that has them; an option given still wins."""
    monkeypatch.chdir(tmp_path)
    rows = "".join(f"{s},2024-01-{d:02d},{d}\n" for s in ("a", "b") for d in range(1, 29))
    (tmp_path / "nixtla.csv").write_text("unique_id,ds,y\n" + rows)
    res = runner.invoke(app, ["validate", "nixtla.csv", "--freq", "1d", "--json"], terminal_width=400)
    assert res.exit_code == 0, res.output
    report = _last_json(res.stdout)
    assert report["rows_valid"] == 56 and report["rows_quarantined"] == 0 and report["n_series"] == 2, report
    assert "--time-col ds --target-col y --id-col unique_id" in " ".join(res.output.split())
    # an option given keeps its value: the target named explicitly, the others taken from the names
    (tmp_path / "two.csv").write_text("unique_id,ds,y,units\n" + rows.replace("\n", ",1\n"))
    res = runner.invoke(app, ["validate", "two.csv", "--freq", "1d", "--target-col", "units", "--json"],
                        terminal_width=400)
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "--time-col ds --id-col unique_id" in said and "--target-col y" not in said
    # a file without these names is told what it needs, as before
    (tmp_path / "sales.csv").write_text("store,wk,units\n1,2024-01-07,3\n")
    res = runner.invoke(app, ["validate", "sales.csv", "--freq", "1w"], terminal_width=400)
    assert res.exit_code == 2 and "also needs --time-col, --target-col" in " ".join(res.output.split())


def _two_series(header: str, time: str = "2024-01-{d:02d}") -> str:
    """A CSV of two series ('a', 'b') of 28 daily rows: `header`'s columns are an id, a time and a target."""
    return header + "\n" + "".join(f"{s},{time.format(d=d)},{d}\n" for s in ("a", "b") for d in range(1, 29))


@pytest.mark.parametrize(("header", "time", "said"), [
    ("Store,Date,y", "2024-01-{d:02d}", ("columns: unique_id <- 'Store', ds <- 'Date', y <- 'y' (--time-col Date "
                                         "--target-col y --id-col Store guessed from their names")),
    ("series_id,TIMESTAMP,y", "2024-01-{d:02d}T09:00", "columns: unique_id <- 'series_id', ds <- 'TIMESTAMP'"),
    ("item_id,month,y", "2024-01-{d:02d}", "columns: unique_id <- 'item_id', ds <- 'month'"),
    ("ID , period ,y", "2024-01-{d:02d}", "columns: unique_id <- 'ID', ds <- 'period'"),  # (a header's spaces go)
    # hint44: a time column named in German, Spanish, Italian / Portuguese, French, Dutch
    ("store,Datum,y", "{d:02d}.01.2024", "columns: unique_id <- 'store', ds <- 'Datum'"),
    ("store,Fecha,y", "2024-01-{d:02d}", "columns: unique_id <- 'store', ds <- 'Fecha'"),
    ("store,Data,y", "2024-01-{d:02d}", "columns: unique_id <- 'store', ds <- 'Data'"),
    ("store,Date_heure,y", "2024-01-{d:02d} 00:00", "columns: unique_id <- 'store', ds <- 'Date_heure'"),
    ("store,tijdstip,y", "2024-01-{d:02d}", "columns: unique_id <- 'store', ds <- 'tijdstip'"),
    # revC44: an English file's 'data' column of numbers beside its 'date' (hint44's 'data', Italian / Portuguese for
    # date, made them two columns named as a time, and 'date' was asked for with --time-col)
    ("store,date,data,y", "2024-01-{d:02d},{d}.5", "columns: unique_id <- 'store', ds <- 'date'"),
    ("store,Fecha,Hora,y", "2024-01-{d:02d},{d}", "columns: unique_id <- 'store', ds <- 'Fecha'"),  # hours 1..28
    # fixB46: a full time name that reads as times wins over a calendar part's ('Month' of 2024-01 also reads so)
    ("store,date,Month,y", "2024-01-{d:02d},2024-01", "columns: unique_id <- 'store', ds <- 'date'"),
    # newuser53: 'sku', 'region', 'sensor' ... were asked for with --id-col, the error naming the very column
    ("sku,week,units", "2024-01-{d:02d}", ("columns: unique_id <- 'sku', ds <- 'week', y <- 'units' (--time-col week "
                                           "--id-col sku --target-col units guessed from their names")),
    ("Region,quarter,revenue", "2024-01-{d:02d}", "columns: unique_id <- 'Region', ds <- 'quarter', y <- 'revenue'"),
    ("sensor,timestamp,y", "2024-01-{d:02d}T09:00", "columns: unique_id <- 'sensor', ds <- 'timestamp'"),
    # newuser54: hourly meter readings were asked for --id-col meter
    ("meter,time,kwh", "2024-01-{d:02d}T09:00", ("columns: unique_id <- 'meter', ds <- 'time', y <- 'kwh' (--time-col "
                                                 "time --id-col meter guessed from their names; --target-col kwh as "
                                                 "its one other number column")),
    ("Device_ID,timestamp,y", "2024-01-{d:02d}T09:00", "columns: unique_id <- 'Device_ID', ds <- 'timestamp'"),
    # ... looked for only where no column has a name of the first tier: 'store' beside 'region' is the series
    ("store,date,region,y", "2024-01-{d:02d},north", "columns: unique_id <- 'store', ds <- 'date'"),
])
def test_a_files_time_and_id_columns_are_taken_from_their_names(tmp_path, monkeypatch, header, time, said):
    """cols43: a file's target named 'y' was taken for the target, but its time column named 'Date' (or 'month',
    'timestamp', ...) and its series named 'store' (or 'item_id', 'series_id', ...) were not: a new user passed
    --time-col and --id-col every time. The file's one column so named (case and spaces aside) is taken, its times
    read as the run reads them, and the columns read are said."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.csv").write_text(_two_series(header, time))
    res = runner.invoke(app, ["validate", "f.csv", "--freq", "1d", "--json", "--home", "h"], terminal_width=400)
    assert res.exit_code == 0, res.output
    report = _last_json(res.stdout)
    assert report["rows_valid"] == 56 and report["rows_quarantined"] == 0 and report["n_series"] == 2, report
    assert f"note: f.csv is read with {said}" in " ".join(res.stderr.split()), res.stderr


@pytest.mark.parametrize(("header", "times", "freq"), [
    ("store,week,sales", [f"2024-{m:02d}-{d:02d}" for m, d in ((1, 1), (1, 8), (1, 15), (1, 22), (1, 29), (2, 5))],
     "1w"),  # W-MON weeks
    ("series,Quarter,value", [f"{y}Q{q}" for y in (2023, 2024) for q in (1, 2, 3)], "1q"),
    ("series,quarter,value", [f"{y}-Q{q}" for y in (2023, 2024) for q in (1, 2, 3)], "1q"),
    ("store,YEAR,units", [str(y) for y in range(2018, 2024)], "1y"),
])
def test_a_time_column_named_week_quarter_or_year_is_taken(tmp_path, monkeypatch, header, times, freq):
    """newuser45: a file's time column named 'month' was taken, but one named 'week', 'quarter' or 'year' was not:
    `flowcast validate weekly.csv` of `store,week,sales` was told it also needs --time-col and --target-col, its
    series and target named as flowcast takes them left unread for want of the time. Such a column is taken as the
    time (its values read as times), and the frequency read off its dates."""
    monkeypatch.chdir(tmp_path)
    time_col = header.split(",")[1]
    (tmp_path / "f.csv").write_text(header + "\n" + "".join(f"{s},{t},{i + 1}\n" for s in ("a", "b")
                                                             for i, t in enumerate(times)))
    res = runner.invoke(app, ["validate", "f.csv", "--json", "--home", "h"], terminal_width=400)
    assert res.exit_code == 0, res.output
    report = _last_json(res.stdout)
    assert report["rows_valid"] == 12 and report["rows_quarantined"] == 0 and report["n_series"] == 2, report
    said = " ".join(res.stderr.split())
    assert f"ds <- '{time_col}'" in said and f"--time-col {time_col} --id-col" in said, said
    assert f"so --freq {freq} is used" in said, said


@pytest.mark.parametrize(("header", "rows", "expected"), [
    # an M5-style calendar: its 'year' of 2024 also reads as times, the 'date' is the time
    ("date,year,store,sales", [f"2024-01-{d:02d},2024,north,{d}" for d in range(1, 8)], "date"),
    ("Date,Week,y", [f"2024-01-{d:02d},2024-01-01,{d}" for d in range(1, 8)], "Date"),
    ("Fecha,mes,y", [f"2024-01-{d:02d},2024-01,{d}" for d in range(1, 8)], "Fecha"),
    # a calendar part alone, or beside a full name that does not read as times, is the time
    ("year,y", [f"{y},{y - 2000}" for y in range(2018, 2024)], "year"),
    ("month,y", [f"2024-{m:02d},{m}" for m in range(1, 7)], "month"),
    ("period,Monat,y", [f"spring {m},2024-{m:02d},{m}" for m in range(1, 7)], "Monat"),
    # two of the first tier that reads as times: which is meant is not guessed
    ("date,timestamp,y", [f"2024-01-{d:02d},2024-01-{d:02d}T09:00,{d}" for d in range(1, 8)], None),
    ("week,month,y", [f"2024-01-{d:02d},2024-01,{d}" for d in range(1, 8)], None),
    ("store,y", [f"north,{d}" for d in range(1, 8)], None),
])
def test_a_full_time_name_is_taken_before_a_calendar_parts(tmp_path, header, rows, expected):
    """fixB46: `TIME_NAMES` took 'week', 'quarter' and 'year' (newuser45), and an M5-style file
    `date,year,store,sales`, whose 'year' of 2024 also reads as times, had two columns named as a time: its 'date' was
    asked for with --time-col. A column of a full time name ('date', 'Fecha') that reads as times is taken before one
    of a calendar part ('year', 'mes'), which is taken only where no full name reads as times."""
    path = tmp_path / "f.csv"
    path.write_text(header + "\n" + "".join(f"{r}\n" for r in rows))
    assert _named_time(str(path), header.split(","), ()) == expected


@pytest.mark.parametrize(("header", "time", "options", "needs"), [
    ("store,period,y", "spring {d}", [], "--time-col (its columns: store, period, y)"),  # not times
    ("store,week,Month,y", "2024-01-{d:02d},2024-01", [], "--time-col (its columns: store, week, Month, y)"),  # two
    ("store,wk,y", "2024-01-{d:02d}", [], "--time-col (its columns: store, wk, y)"),  # a name not known
    # hint44: a column named 'Data' (Italian / Portuguese for date) of values that are not times; 'Datum' and 'Fecha'
    ("store,Data,y", "x{d}", [], "--time-col (its columns: store, Data, y)"),
    ("store,Datum,Fecha,y", "2024-01-{d:02d},2024-01-{d:02d}", [], "--time-col (its columns: store, Datum, Fecha, y)"),
])
def test_a_time_column_not_named_as_one_or_named_twice_is_asked_for(tmp_path, monkeypatch, header, time, options,
                                                                   needs):
    """cols43: where no column, or several, are named as a time (or the one so named does not read as times), which
    is meant is not guessed: the command asks for --time-col, naming the file's columns, as before."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.csv").write_text(_two_series(header, time))
    res = runner.invoke(app, ["validate", "f.csv", "--freq", "1d", *options], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and f"error: --data f.csv also needs {needs}" in said, said
    assert "ds <-" not in said


def test_a_series_column_that_leaves_times_repeating_is_not_guessed(tmp_path, monkeypatch):
    """revC43: a file keyed by a column named as a series and one that is not ('store' and 'sku') had 'store' taken
    for the series alone: each store's date repeated once per sku, and the rows of equal sales (here every one)
    were dropped as exact duplicates, half the file gone with a note that it 'looks appended twice'. A column under
    which the times still repeat is not the series: it is not guessed, the columns that may tell the series apart
    are named with --id-col."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.csv").write_text("store,sku,date,y\n" + "".join(
        f"{st},{sku},2024-01-{d:02d},{d}\n" for st in ("north", "south") for sku in ("s1", "s2") for d in range(1, 29)))
    res = runner.invoke(app, ["validate", "f.csv", "--freq", "1d", "--home", "h"], terminal_width=400)
    said = " ".join(res.output.split())
    assert "unique_id <-" not in said and "ds <- 'date'" in said, said
    assert "store, sku may be what tells the series apart" in said and "name them with --id-col" in said, said


@pytest.mark.parametrize(("header", "keys", "example"), [
    # an M5 file: each item sold in each store, keyed by both
    ("item_id,store_id", [("i1", "s1"), ("i1", "s2"), ("i2", "s1"), ("i2", "s2")], "--id-col item_id --id-col store_id"),
    ("id,item_id,store_id", [("i1_s1", "i1", "s1"), ("i1_s2", "i1", "s2"), ("i2_s1", "i2", "s1")], "--id-col id"),
    ("shop", [("north",), ("south",)], "--id-col shop"),
    ("shop,region", [("north", "EU"), ("north", "US"), ("south", "EU")], "--id-col shop --id-col region"),
    # two rows of one shop and date that differ in their value: no set of its text columns keys it, the first named
    ("shop,region", [("north", "EU"), ("north", "EU"), ("south", "EU")], "--id-col shop"),
])
def test_the_id_col_hint_names_the_fewest_columns_under_which_times_do_not_repeat(tmp_path, monkeypatch, header,
                                                                                  keys, example):
    """hint44: an M5-style file (`item_id,store_id,date,sales`) was told '(e.g. --id-col item_id)', under which each
    date still repeats once per store (the run then quarantined them as duplicates). The example names the fewest of
    its text columns under which its times do not repeat (`times_repeat_within`), the first of them where none do."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.csv").write_text(f"{header},date,sales\n" + "".join(
        f"{','.join(key)},2024-01-{d:02d},{d + k}\n" for k, key in enumerate(keys) for d in range(1, 8)))
    res = runner.invoke(app, ["validate", "f.csv", "--home", "h"], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "also needs --target-col" in said, said
    assert (f"name the column that tells the series apart (or the columns that do together) with --id-col (e.g. "
            f"{example})") in said, said


def _weather(store: int, day: int) -> str:
    """A store's weather of a day: text that differs between two stores each day, and from day to day."""
    return f"{('sunny', 'rain', 'fog')[(day + store) % 3]} {10 + day + store}C"


@pytest.mark.parametrize(("header", "expected"), [
    # a weather column varying with the dates keys a file of 2 stores alone (each day's two differ), as 8 series
    ("weather,store", ["store"]),
    ("store,weather", ["store"]),
    # an M5 file: (item_id, weather) keys it too, as 16 series; item_id and store_id make the 4 it holds
    ("item_id,weather,store_id", ["item_id", "store_id"]),
    ("weather,region,store", ["store"]),  # both stores in one region: (region, store) keys it as store does
    # no set keys it (one day of one store written twice with two values): the column under which fewest rows repeat
    ("weather,store,dup", ["store"]),
])
def test_the_id_col_hint_prefers_columns_constant_over_a_series_time(tmp_path, header, expected):
    """src45: `_fewest_keying` tried its sets in the file's order, so a text column varying with the dates ('weather',
    each store's own each day) that keys the file alone was named for --id-col before 'store', and before 'item_id'
    and 'store_id' (item_id, weather). Of the sets that key the file, the one making the fewest series is named."""
    from flowcast.cli.common import _fewest_keying

    cols = header.split(",")
    rows = []
    for item in ("i1", "i2") if "item_id" in cols else ("i1",):
        for store in (0, 1):
            for day in range(1, 8):
                cells = {"weather": _weather(store, day), "store": f"s{store}", "store_id": f"s{store}",
                         "item_id": item, "region": "EU", "dup": "a"}
                rows.append([*(cells[c] for c in cols), f"2024-01-{day:02d}", str(day + store)])
    if "dup" in cols:
        rows.append([*rows[0][:-1], "99"])  # store 0's first day again, another value
    (tmp_path / "f.csv").write_text(",".join([*cols, "date", "sales"]) + "\n" + "".join(
        ",".join(r) + "\n" for r in rows))
    assert _fewest_keying(str(tmp_path / "f.csv"), "date", cols) == expected


@pytest.mark.parametrize(("at", "dup", "expected"), [
    (0, False, ["store"]), (5, False, ["store"]), (7, False, ["store"]),
    # no set keys it (one day of one store written twice with two values): the nearest column, wherever it stands
    (7, True, ["store"]),
])
def test_the_id_col_hint_looks_at_every_text_column(tmp_path, at, dup, expected):
    """`_fewest_keying` tried the first 5 text columns alone: a 'store' column sixth, after five text columns that
    tell no series apart (a category, a unit, a note), was never named, the hint naming one of those. Every text column
    is tried alone, those past the fifth in no combination (the sets grow as their number cubed)."""
    from flowcast.cli.common import _fewest_keying

    cols = [f"t{j}" for j in range(7)]
    cols.insert(at, "store")
    rows = []
    for store in ("north", "south", "east"):
        for day in range(1, 6):
            rows.append([store if c == "store" else f"{c}-{'ab'[day % 2] if c == 't0' else 'x'}" for c in cols]
                        + [f"2024-01-{day:02d}", str(day)])
    if dup:
        rows.append([*rows[0][:-1], "99"])
    (tmp_path / "f.csv").write_text(",".join([*cols, "date", "sales"]) + "\n" + "".join(
        ",".join(r) + "\n" for r in rows))
    assert _fewest_keying(str(tmp_path / "f.csv"), "date", cols) == expected


def test_the_fewest_keying_columns_are_found_in_one_pass_over_the_file(tmp_path, monkeypatch):
    """revC44: `_fewest_keying` read the whole file once per set of columns it tried (26 passes where only all five
    of the first five text columns key the file: 7.5 s on a 10 MB file of 50 text columns, minutes on an M5-sized
    one, for an error's hint). The file is read once, its rows deduplicated once, every set told from them."""
    from flowcast.cli.common import _fewest_keying
    from flowcast.data import probes, series_keys

    real, scans = probes._scan_one, []

    def counted(*args: object, **kwargs: object) -> object:
        scans.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    for module in (probes, series_keys):  # its header's read (`probes.columns_of`), its rows' (`series_keys.keyings`)
        monkeypatch.setattr(module, "_scan_one", counted)
    texts = [f"t{j}" for j in range(8)]  # t0..t4 key the file together (32 rows a date), none of their subsets does
    (tmp_path / "f.csv").write_text(",".join(["date", *texts, "sales"]) + "\n" + "".join(
        f"2024-01-{d:02d},{','.join('ab'[(k >> j) & 1] for j in range(5))},x,y,z,{k}\n"
        for d in range(1, 4) for k in range(32)))
    assert _fewest_keying(str(tmp_path / "f.csv"), "date", texts) == texts[:5]
    assert len(scans) == 2, scans  # its header (`columns_of`) and its rows, once each (26 times each before)


def _probe_reads(monkeypatch) -> list[str]:
    """Each pass `probes.wide_probe` makes over a file (its head and its times: `_distinct_rows` keyed by the time
    column alone), by that column's name."""
    from flowcast.data import probes

    real, reads = probes._distinct_rows, []

    def counted(scan, keys):
        names = [key.meta.output_name() for key in keys]
        if len(names) == 1:
            reads.append(names[0])
        return real(scan, keys)

    monkeypatch.setattr(probes, "_distinct_rows", counted)
    return reads


@pytest.mark.parametrize("args", [[], ["--time-col", "date"]])
def test_a_command_reads_its_file_s_layout_once(tmp_path, monkeypatch, args):
    """src45: a command of a --data file read its head and times up to 4 times (`wide_probe`: its layout, the guess of
    its series column, the hints of the options it needs), each a pass over the whole file. Once now."""
    monkeypatch.chdir(tmp_path)
    reads = _probe_reads(monkeypatch)
    (tmp_path / "f.csv").write_text("shop,date,sales\n" + "".join(
        f"{shop},2024-01-{d:02d},{d}\n" for shop in ("north", "south") for d in range(1, 29)))
    res = runner.invoke(app, ["validate", "f.csv", *args, "--home", "h"], terminal_width=400)
    assert res.exit_code == 2 and "--id-col" in res.output, res.output
    assert reads == ["date"], reads


def test_a_series_column_of_a_file_with_a_row_written_twice_is_guessed(tmp_path, monkeypatch):
    """rev44: a file of two series named 'store' and 'Date' whose one row was written twice (an export appended it
    again) was not read with --id-col store: the repeat made its times 'repeat under store', and the command asked for
    --id-col store and --target-col, which it guesses of the file without the repeat. The row is dropped by the run
    as an exact duplicate, so it keeps no column from being guessed."""
    monkeypatch.chdir(tmp_path)
    text = _two_series("store,Date,sales")
    (tmp_path / "f.csv").write_text(text + text.splitlines()[5] + "\n")
    res = runner.invoke(app, ["validate", "f.csv", "--freq", "1d", "--json", "--home", "h"], terminal_width=400)
    assert res.exit_code == 0, res.output
    report = _last_json(res.stdout)
    assert (report["rows_in"], report["rows_valid"], report["rows_duplicate"], report["n_series"]) == (57, 56, 1, 2)
    assert "columns: unique_id <- 'store', ds <- 'Date', y <- 'sales'" in " ".join(res.stderr.split()), res.stderr


def test_a_series_column_named_twice_or_given_is_not_guessed(tmp_path, monkeypatch):
    """cols43: two columns named as a series ('store', 'item_id': a file keyed by both) are not guessed, nor is one
    where --id-col is given (the option keeps its value), nor one of a file whose times do not repeat (a wide file's
    series named 'store')."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.csv").write_text(_two_series("store,date,y").replace(",2024", ",x,2024").replace("store,", "store,item_id,"))
    res = runner.invoke(app, ["validate", "f.csv", "--freq", "1d", "--id-col", "store", "--id-col", "item_id",
                              "--json", "--home", "h"], terminal_width=400)
    said = " ".join(res.stderr.split())
    assert res.exit_code == 0 and _last_json(res.stdout)["n_series"] == 2, res.output
    assert "columns: unique_id <- 'store' + 'item_id', ds <- 'date', y <- 'y' (--time-col date --target-col y " \
        "guessed" in said, said
    res = runner.invoke(app, ["validate", "f.csv", "--freq", "1d", "--home", "h"], terminal_width=400)
    assert "unique_id <-" not in " ".join(res.output.split()) and "ds <- 'date'" in " ".join(res.output.split())
    # a wide file (each date once) whose series column is named 'store' is read as wide: its times do not repeat
    (tmp_path / "w.csv").write_text("date,store,online\n" + "".join(f"2024-01-{d:02d},{d},{2 * d}\n" for d in range(1, 29)))
    res = runner.invoke(app, ["validate", "w.csv", "--freq", "1d", "--json", "--home", "h"], terminal_width=400)
    assert res.exit_code == 0 and _last_json(res.stdout)["wide_columns"] == ["store", "online"], res.output
    assert "columns: ds <- 'date' (--time-col date guessed" in " ".join(res.stderr.split()), res.stderr


def _one_series(header: str, text: tuple[str, ...] = (), days: int = 28) -> str:
    """A CSV of daily rows, each date once: `header`'s columns the time, then `text`'s columns of text (a value of
    each per row, cycled), then number columns."""
    n_numbers = len(header.split(",")) - 1 - len(text)
    return header + "\n" + "".join(
        ",".join([f"2024-01-{d:02d}", *(t.split("|")[d % len(t.split("|"))] for t in text),
                  *(str(d + k) for k in range(n_numbers))]) + "\n" for d in range(1, days + 1))


@pytest.mark.parametrize(("header", "text", "said"), [
    ("Date,store,sales", ("north",), ("columns: unique_id <- 'store', ds <- 'Date', y <- 'sales' (--time-col Date "
                                     "guessed from their names; --target-col sales as its one number column, one "
                                     "series: its times do not repeat, --id-col store as the column of one value in "
                                     "every row, the series 'north';")),
    ("Date,shop,region,sold", ("north", "EU"), ("columns: unique_id <- 'shop' + 'region', ds <- 'Date', y <- 'sold' "
                                                "(--time-col Date guessed from their names; --target-col sold as its "
                                                "one number column, one series: its times do not repeat, --id-col shop "
                                                "--id-col region as the columns of one value in every row, the series "
                                                "'north|EU';")),
])
def test_a_file_of_one_series_needs_no_target_col(tmp_path, monkeypatch, header, text, said):
    """src44: a file of one series without an id column (`Date,store,sales` of one store) was asked for --target-col:
    a target was guessed only beside a series column. Its one number column is the target now, a text column of one
    value in every row its series' id, and the command says which column it took and the series' name
    (`date,store,north` of one store was a case of the wide-file hint's test, `'store' (e.g. 's1')` named to
    remove)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.csv").write_text(_one_series(header, text))
    res = runner.invoke(app, ["validate", "f.csv", "--json", "--home", "h"], terminal_width=400)
    assert res.exit_code == 0, res.output
    report = _last_json(res.stdout)
    assert report["n_series"] == 1 and report["rows_valid"] == 28 and not report.get("wide_columns"), report
    assert f"note: f.csv is read with {said}" in " ".join(res.stderr.split()), res.stderr
    assert "wide file" not in res.stderr


@pytest.mark.parametrize(("header", "twice"), [("Date,sales", False), ("Date,sold", False), ("Date,sales", True)])
def test_a_file_of_one_number_column_is_one_series_named_after_it(tmp_path, monkeypatch, header, twice):
    """hint44: a file `Date,sales` (one number column, no text column) was read as a wide file of one column, its
    series 'sales'; src44 read it as one series named after the dataset ('f'), so a home that had published it saw
    its series' id change. It is a wide file of one column again, its series named after the column, as the note
    says. A line written twice (`twice`) is dropped as an exact duplicate: it was asked for --target-col, its dates
    'repeating'."""
    monkeypatch.chdir(tmp_path)
    text = _one_series(header)
    (tmp_path / "f.csv").write_text(text + (text.splitlines()[5] + "\n" if twice else ""))
    res = runner.invoke(app, ["validate", "f.csv", "--json", "--home", "h"], terminal_width=400)
    assert res.exit_code == 0, res.output
    report = _last_json(res.stdout)
    column = header.split(",")[1]
    assert (report["n_series"], report["rows_valid"], report["rows_duplicate"], report["wide_columns"]) == (
        1, 28, int(twice), [column]), report
    said = " ".join(res.stderr.split())
    assert "note: f.csv is read with columns: ds <- 'Date' (--time-col Date guessed from their names;" in said, said
    assert (f"it is read as a wide file of one column, its one series named {column!r} after the column, as a wide "
            f"file names its series; pass --target-col {column} for a long file, its series named after the "
            "dataset") in said, said
    # given --target-col, it is a long file of one series, named after the dataset
    res = runner.invoke(app, ["validate", "f.csv", "--target-col", column, "--json", "--home", "h"],
                        terminal_width=400)
    assert res.exit_code == 0 and not _last_json(res.stdout)["wide_columns"], res.output
    assert "wide file" not in res.stderr, res.stderr


@pytest.mark.parametrize(("header", "text", "said"), [
    # a wide file: each number column a series, as documented
    ("date,north,south", (), "wide_columns"),
    # a text column of several values may tell series apart: not guessed
    ("Date,store,sales", ("north|south",), "also needs --target-col (its columns: Date, store, sales)"),
    # several number columns and a text column: not wide, and which is the target is not guessed
    ("date,north,south,comment", ("ok|late",), "also needs --target-col (its columns: date, north, south, comment)"),
])
def test_a_file_of_several_number_columns_or_text_values_is_not_one_series(tmp_path, monkeypatch, header, text,
                                                                            said):
    """src44: only a file of one number column (and text columns of one value) is taken for one series: a wide file
    stays wide (a series per column), and one whose text column holds several values, or with several number
    columns beside a text one, is asked for --target-col as before."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.csv").write_text(_one_series(header, text))
    res = runner.invoke(app, ["validate", "f.csv", "--json", "--home", "h"], terminal_width=400)
    out = " ".join(res.output.split())
    assert "y <-" not in out and "one series: its times do not repeat" not in out, out
    if said == "wide_columns":
        assert res.exit_code == 0 and _last_json(res.stdout)["wide_columns"] == ["north", "south"], res.output
    else:
        assert res.exit_code == 2 and f"error: --data f.csv {said}" in out, out


def _three_files(tmp_path, fmt: str, stores: tuple[str, str, str], days: tuple[int, int, int]) -> str:
    """A folder `f` of 3 files `Date,store,sales` (CSV, Parquet, or CSV named by a glob), file i of store `stores[i]`
    and 9 daily rows from January `days[i]`; the --data argument naming them."""
    (tmp_path / "f").mkdir()
    for i, (store, first) in enumerate(zip(stores, days, strict=True)):
        frame = pl.DataFrame({"Date": [date(2024, 1, first + d) for d in range(9)], "store": [store] * 9,
                              "sales": [float(10 * i + d) for d in range(9)]})
        if fmt == "parquet":
            frame.write_parquet(tmp_path / "f" / f"p{i}.parquet")
        else:
            frame.write_csv(tmp_path / "f" / f"p{i}.csv")
    return "f/p*.csv" if fmt == "glob" else "f"


@pytest.mark.parametrize("fmt", ["csv", "parquet", "glob"])
@pytest.mark.parametrize(("stores", "days", "one"), [
    (("s0", "s1", "s1"), (1, 1, 10), False),  # the first file one series, the others another
    (("s0", "s0", "s0"), (1, 5, 10), False),  # one id, the files' dates overlapping with other sales: not one series
    (("s0", "s0", "s0"), (1, 10, 19), True),  # one series, a file per period
])
def test_a_folder_is_one_series_by_all_its_files(tmp_path, monkeypatch, fmt, stores, days, one):
    """globs46: `flowcast validate many` of a folder of 40 files said 'one series: its times do not repeat, ... the
    series 's0'' off its first file, then read 5 series. The guess reads every file's store and dates: files of
    other series, or of one id on the same dates, are not one series (the command asks for the option); a series
    split into a file per period still is."""
    monkeypatch.chdir(tmp_path)
    data = _three_files(tmp_path, fmt, stores, days)
    res = runner.invoke(app, ["validate", data, "--json", "--home", "h"], terminal_width=400)
    said = " ".join(res.output.split())
    if one:
        assert res.exit_code == 0 and _last_json(res.stdout)["n_series"] == 1, res.output
        assert ("y <- 'sales' (--time-col Date guessed from their names; --target-col sales as its one number "
                "column, one series: its times do not repeat, --id-col store as the column of one value in every "
                "row, the series 's0';") in said, said
    else:
        assert "one series" not in said and "y <-" not in said, said
        assert res.exit_code == 2 and f"error: --data {data} also needs --target-col (its columns: Date, store, sales)" in said, said


@pytest.mark.parametrize(("covariates", "series", "said"), [
    ((), ["a", "b", "price"], "it is read as a wide file, each of its 3 columns a series (a, b, price); pass"),
    (("--future-col", "price"), ["a", "b"],
     "it is read as a wide file, each of its 2 columns a series (a, b), and price a covariate of each; pass"),
    (("--future-col", "price", "--past-col", "b"), ["a"],
     "it is read as a wide file of one column, its one series named 'a' after the column"),
])
def test_the_wide_file_note_counts_the_columns_that_become_series(tmp_path, monkeypatch, covariates, series, said):
    """wide44: a wide file `date,a,b,price` given --future-col price was said to be read 'each of its 3 columns a
    series (a, b, price)', while its run melts a and b alone into series, price a covariate of both."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.csv").write_text(_one_series("date,a,b,price"))
    res = runner.invoke(app, ["validate", "f.csv", "--time-col", "date", "--freq", "1d", *covariates, "--json",
                              "--home", "h"], terminal_width=400)
    assert res.exit_code == 0 and _last_json(res.stdout)["wide_columns"] == series, res.output
    assert said in " ".join(res.stderr.split()), res.stderr


def test_the_wide_file_note_says_a_column_named_as_a_covariate_is_read_as_a_series(tmp_path, monkeypatch):
    """newuser49: a wide file of two regions' demand beside their 'Temperature' forecast the temperature as a third
    series (scored with them in the backtest), the note naming it among the series alone; it says the column is named
    as a covariate and how to read it as one. Given so, it is a covariate, and the note says nothing of it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.csv").write_text("Timestamp,Victoria North,Victoria South,Temp (C)\n" + "".join(
        f"2024-01-{d:02d},{40 + d},{60 + d},{20 + d % 3}\n" for d in range(1, 15)))
    res = runner.invoke(app, ["validate", "f.csv", "--freq", "1d", "--home", "h"], terminal_width=400)
    said = " ".join(res.stderr.split())
    assert res.exit_code == 0, res.output
    assert ("each of its 3 columns a series (Victoria North, Victoria South, Temp (C)); pass --target-col for a long "
            "file; 'Temp (C)' is named as a covariate, not a series: give --past-col 'Temp (C)' (known up to each "
            "period; --future-col: known ahead) to use it as a covariate of each series rather than forecast it"
            ) in said, said
    res = runner.invoke(app, ["validate", "f.csv", "--freq", "1d", "--past-col", "Temp (C)", "--home", "h"],
                        terminal_width=400)
    said = " ".join(res.stderr.split())
    assert res.exit_code == 0 and "and Temp (C) a covariate of each" in said and "named as" not in said, res.output


def test_the_wide_file_note_suggests_id_col_only_where_a_column_may_be_one(tmp_path, monkeypatch):
    """wordsC45: vic_elecdemand (`Time,Demand,Temperature,WorkDay`, no time written twice) was told 'pass --target-col
    and --id-col for a long file': no column of it tells series apart (WorkDay of 0 and 1 keys it, as two 'series').
    A file wide by its rows to --as-of whose later rows repeat a time under a meter number is told that column."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vic.csv").write_text("Time,Demand,Temperature,WorkDay\n" + "".join(
        f"2024-01-{d:02d},{4000 + d},{20 + d % 3},{int(d % 7 < 5)}\n" for d in range(1, 15)))
    res = runner.invoke(app, ["validate", "vic.csv", "--freq", "1d", "--home", "h"], terminal_width=400)
    said = " ".join(res.stderr.split())
    assert "it is read as a wide file, each of its 3 columns a series (Demand, Temperature, WorkDay); pass " \
           "--target-col for a long file" in said and "--id-col" not in said.split("; pass ")[-1], said
    # (a column not named as a series: 'Meter' is one since newuser54, and its file is read as long, keyed by it)
    (tmp_path / "meters.csv").write_text("Time,Unit,Reading\n2024-01-01,1,10.5\n2024-01-02,1,11.5\n" + "".join(
        f"2024-01-{d:02d},{m},{d * 10 + m + 0.5}\n" for d in range(3, 9) for m in (1, 2)))
    res = runner.invoke(app, ["validate", "meters.csv", "--as-of", "2024-01-02", "--freq", "1d", "--home", "h"],
                        terminal_width=400)
    said = " ".join(res.stderr.split())
    assert "each of its 2 columns a series (Unit, Reading); pass --target-col and --id-col (e.g. --id-col Unit) " \
           "for a long file" in said, said


def test_a_file_with_its_periods_across_is_told_how_to_melt_it(tmp_path, monkeypatch):
    """Regression (new-user trial): a planning spreadsheet's layout, one row per series and one column per period
    ('product,2022-01,2022-02,...'), was told 'also needs --time-col, --target-col' (it has no such column), and
    given --time-col product it was read as a wide file, each month a series, every row quarantined. The error says
    what the file is and how to melt it; a wide file whose series are numbered ('date,1001,1002,1003') is not it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.csv").write_text("product;2022-01;2022-02;2022-03\napples;1;2;3\npears;4;5;6\n")
    for extra in ([], ["--time-col", "product"]):
        res = runner.invoke(app, ["validate", "plan.csv", "--freq", "1mo", *extra], terminal_width=400)
        assert res.exit_code == 2, res.output
        assert ("plan.csv has its periods across: 3 of its 4 columns are named as times (2022-01 .. 2022-03), one row "
                "per series ('product'); flowcast reads a long file (one row per series and period) or a wide one (a "
                "time column, one column per series). Melt it first: python -c \"import polars as pl; "
                "pl.read_csv('plan.csv', separator=';').unpivot(index=['product'], variable_name='period', "
                "value_name='value').write_csv('plan_long.csv')\", then --data plan_long.csv --id-col product "
                "--time-col period "
                "--target-col value") in " ".join(res.output.split())
    (tmp_path / "wide.csv").write_text("date,1001,1002,1003\n2024-01-01,1,2,3\n2024-01-02,2,3,4\n")
    for extra in ([], ["--time-col", "date"]):  # (its column 'date' is taken for the time where none is named)
        res = runner.invoke(app, ["validate", "wide.csv", *extra, "--freq", "1d", "--home", "h"], terminal_width=400)
        assert "periods across" not in res.output and "wide file" in " ".join(res.output.split())


@pytest.mark.parametrize(("later", "first", "said"), [
    # a date repeated after as_of (a long file's rows from then on): the hint was gone
    ("2024-01-07,9,9,late\n2024-01-07,8,8,late\n", False, "1 column holds text: 'comment' (e.g. 'early')"),
    # rows after as_of written first: their text was the example, a value the run at as_of never read
    ("2024-01-09,9,9,late\n2024-01-08,8,8,later\n", True, "1 column holds text: 'comment' (e.g. 'early')"),
])
def test_the_not_wide_hint_reads_the_rows_by_as_of(tmp_path, monkeypatch, later, first, said):
    """pit21: the hint naming the text column that keeps a file from being read as wide was read off the file's
    first 200 rows whatever the --as-of, where the layout it explains is read off the rows by as_of (pit20): a date
    repeated after as_of left the error without the hint, and rows after as_of written first gave their value as
    the example. It reads the rows the layout was read off."""
    monkeypatch.chdir(tmp_path)
    history = "".join(f"2024-01-0{k},{k},{2 * k},early\n" for k in range(1, 6))
    (tmp_path / "w.csv").write_text("date,north,south,comment\n" + (later + history if first else history + later))
    res = runner.invoke(app, ["validate", "w.csv", "--time-col", "date", "--freq", "1d", "--as-of", "2024-01-05"],
                        terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "also needs --target-col" in out and said in out, res.output


@pytest.mark.parametrize(("header", "row", "said"), [
    ("store,date,sales", "s{k},{d},{k}",
     ("also needs --target-col (its columns: store, date, sales); --freq, the period of its rows, is read off its dates "
      "when not given (30m, 1h, 1d, 1b, 1w, 1mo, 1q or 1y); 'store' holds a value of its own in each row ('s1', 's2', "
      "...: one row per series?): name the column of series ids with --id-col and the values with --target-col (e.g. "
      "--id-col store --target-col sales)")),
    # two number columns: it may be wide too, both said
    ("store,date,sales,price", "s{k},{d},{k},3",
     ("remove it from the file to read it as wide; or, if 'store' holds a value of its own in each row ('s1', 's2', "
      "...: one row per series?): name the column of series ids with --id-col and the values with --target-col (e.g. "
      "--id-col store --target-col sales)")),
])
def test_a_file_of_one_row_per_series_is_told_to_name_its_id_column(tmp_path, monkeypatch, header, row, said):
    """newuser52: a file of one row per series (`store,date,sales`, each store once on a date of its own) was asked for
    --target-col and told to remove 'store' from the file to read it as wide (its sales one series). Its text column
    of a value per row is named for --id-col; named so, the file is read."""
    monkeypatch.chdir(tmp_path)
    lines = [row.format(k=k, d=f"2024-01-{k:02d}") for k in range(1, 6)]
    (tmp_path / "ones.csv").write_text(header + "\n" + "\n".join(lines) + "\n")
    res = runner.invoke(app, ["validate", "ones.csv"], terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and said in out, res.output
    if header.count(",") == 2:
        assert "wide" not in out, res.output
    res = runner.invoke(app, ["validate", "ones.csv", "--id-col", "store", "--target-col", "sales", "--freq", "1d"],
                        terminal_width=400)
    assert res.exit_code == 0, res.output


def test_a_sparse_notes_column_is_not_named_for_id_col(tmp_path, monkeypatch):
    """Regression (fixJ52): the one-row-per-series hint counted a column's values with its nulls left out, so a notes
    column of `date,sales,comment` with 'holiday' and 'strike' in 2 of 30 rows held "a value of its own in each row"
    and `--id-col comment` was suggested. A column with an empty row among those read is no series' ids: the file
    is said to hold text, as a wide file's notes column is."""
    monkeypatch.chdir(tmp_path)
    notes = {4: "holiday", 17: "strike"}
    lines = [f"2024-01-{k:02d},{k},{notes.get(k, '')}" for k in range(1, 31)]
    (tmp_path / "notes.csv").write_text("date,sales,comment\n" + "\n".join(lines) + "\n")
    res = runner.invoke(app, ["validate", "notes.csv"], terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "1 column holds text: 'comment' (e.g. 'holiday')" in out, res.output
    assert "value of its own" not in out and "--id-col comment" not in out, res.output


@pytest.mark.parametrize(("header", "row", "said", "note"), [
    ("date,north,south,comment", "{d},{i},{j},ok",
     ("; if each number column is a series (a wide file), it is not read as one because 1 column holds text: "
      "'comment' (e.g. 'ok'): remove it from the file to read it as wide"),
     ("note: w.csv reads --target-col north as its one series; its other number columns (south) are not used. If "
      "each is a series (a wide file), remove its text column ('comment') and leave out --target-col")),
    ("date,north,south,unit,comment", "{d},{i},{j},kg,", "1 column holds text: 'unit' (e.g. 'kg')",
     ("its other number columns (south, comment) are not used. If each is a series (a wide file), remove its text "
      "column ('unit')")),
    ("date,north,south,unit,comment", "{d},{i},{j},kg,ok",  # plurals27: '2 column(s) hold text'
     "2 columns hold text: 'unit' (e.g. 'kg'), 'comment' (e.g. 'ok'): remove them from the file",
     "If each is a series (a wide file), remove its text columns ('unit', 'comment') and leave out --target-col"),
])
def test_a_wide_file_with_a_text_column_is_told_why_it_is_not_read_as_wide(tmp_path, monkeypatch, header, row, said,
                                                                            note):
    """Regression (newuser17): a wide file with a text column beside its series ('date,north,south,comment') was
    asked for --target-col alone; given one it read that column and dropped the other series without a word. The
    error names the text column(s) that keep it from being read as wide; without them it is read as wide."""
    import polars as pl

    monkeypatch.chdir(tmp_path)
    lines = [row.format(d=f"2024-01-{k:02d}", i=k, j=2 * k) for k in range(1, 21)]
    (tmp_path / "w.csv").write_text(header + "\n" + "\n".join(lines) + "\n")
    res = runner.invoke(app, ["validate", "w.csv", "--time-col", "date", "--freq", "1d"], terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "also needs --target-col" in out and said in out, res.output
    # given --target-col, the other series it leaves out are said, with what keeps the file from being wide
    res = runner.invoke(app, ["validate", "w.csv", "--time-col", "date", "--freq", "1d", "--target-col", "north",
                              "--home", "h0"], terminal_width=400)
    out = " ".join(res.output.split())
    assert note in out if note else "not used" not in out, res.output
    # the columns it names removed, the file is wide
    keep = [c for c in header.split(",") if c not in said]
    pl.read_csv(tmp_path / "w.csv").select(keep).write_csv(tmp_path / "w.csv")
    res = runner.invoke(app, ["validate", "w.csv", "--time-col", "date", "--freq", "1d", "--home", "h"],
                        terminal_width=400)
    assert "read as a wide file" in " ".join(res.output.split()), res.output
    # a long file (dates repeated per series) or a wide one is told nothing of it
    (tmp_path / "long.csv").write_text("date,store,units\n2024-01-01,a,1\n2024-01-01,b,2\n")
    res = runner.invoke(app, ["validate", "long.csv", "--time-col", "date", "--freq", "1d", "--home", "h"],
                        terminal_width=400)
    assert "hold text" not in res.output and "y <- 'units'" in " ".join(res.output.split()), res.output


def test_periods_written_year_then_month_name_and_a_long_header_are_said_briefly(tmp_path, monkeypatch):
    """Regression (new-user trial, us_employment pivoted to a planning sheet: 'Series_ID,Title,1939 Jan,...'): its
    969 month columns written '1939 Jan' were not taken for periods, and the error listed all 971 column names.
    The file is said to have its periods across, and a file's columns are listed up to 12, with their count."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "emp.csv").write_text("id,title,1939 Jan,1939 Feb,1939 Mar\nA,Total,1,2,3\n")
    res = runner.invoke(app, ["validate", "emp.csv", "--freq", "1mo"], terminal_width=400)
    assert res.exit_code == 2 and ("emp.csv has its periods across: 3 of its 5 columns are named as times (1939 Jan .. "
                                   "1939 Mar), one row per series ('id', 'title')") in " ".join(res.output.split())
    (tmp_path / "many.csv").write_text(",".join(f"c{i}" for i in range(14)) + "\n" + ",".join("1" * 14) + "\n")
    res = runner.invoke(app, ["validate", "many.csv", "--freq", "1mo"], terminal_width=400)
    assert res.exit_code == 2 and ("also needs --time-col, --target-col (its columns: c0, c1, c2, c3, c4, c5, c6, c7, "
                                   "c8, c9, c10, c11, ... (14 in all))") in " ".join(res.output.split())


def test_a_prefect_api_that_did_not_answer_is_named(capsys):
    """Regression: a `flowcast run` whose Prefect server (PREFECT_API_URL) was down for 90 s during its
    backtest ended 'error: ConnectError: [Errno 111] Connection refused': no server named, nothing said of
    the run. The error names the API and says what becomes of the run's state."""
    import httpx
    import pytest
    import typer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowcast.cli.common import cli_errors

    @cli_errors
    def command() -> None:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4311/api"}), pytest.raises(typer.Exit) as exit_:
        command()
    err = " ".join(capsys.readouterr().err.split())
    assert exit_.value.exit_code == 1
    assert "the Prefect API at http://127.0.0.1:4311/api did not answer" in err
    assert "the run stopped" in err and "ConnectError: [Errno 111] Connection refused" in err


def test_a_debug_traceback_is_printed_without_a_urls_secrets(capsys, monkeypatch):
    """redact49: with FLOWCAST_DEBUG=1 a command raises its error, and the traceback Python printed as it exited named a
    library's URL with its password and token (the error's sentence, without it, hid them). The error is raised still
    (a debugger sees it); the traceback printed hides them, the rest of it as Python writes it."""
    import sys

    from flowcast.cli.common import cli_errors

    @cli_errors
    def command() -> None:
        try:
            raise ValueError("bad reply from https://u:pw5@h/x.csv?token=tok6")
        except ValueError as exc:
            raise OSError("cannot read https://u:pw5@h/x.csv?token=tok6") from exc

    monkeypatch.setenv("FLOWCAST_DEBUG", "1")
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    with pytest.raises(OSError) as err:
        command()
    sys.excepthook(err.type, err.value, err.tb)
    printed = capsys.readouterr().err
    assert "pw5" not in printed and "tok6" not in printed, printed
    assert "OSError: cannot read https://u:***@h/x.csv?token=***" in printed, printed
    assert "ValueError: bad reply from https://u:***@h/x.csv?token=***" in printed and "Traceback" in printed, printed


def test_a_debug_traceback_is_printed_without_a_keyword_dsns_password(capsys, monkeypatch):
    """secrets52: the traceback hid a URL's secrets but showed a keyword DSN's password (`password=s3cret`)."""
    import sys

    from flowcast.cli.common import cli_errors

    @cli_errors
    def command() -> None:
        raise OSError("could not connect to host=db user=u password='s3 cret' dbname=x")

    monkeypatch.setenv("FLOWCAST_DEBUG", "1")
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    with pytest.raises(OSError) as err:
        command()
    sys.excepthook(err.type, err.value, err.tb)
    printed = capsys.readouterr().err
    assert "OSError: could not connect to host=db user=u password=*** dbname=x" in printed, printed


def test_help_says_which_files_are_read():
    """Regression: `flowcast run --help` said 'CSV/Parquet' while gzipped CSV, TSV and Arrow IPC / Feather files are
    read too, and a user holding an .xlsx learned that it is not only from the run's error."""
    res = runner.invoke(app, ["run", "--help"], terminal_width=200)
    said = " ".join(res.output.replace("│", " ").split())
    assert res.exit_code == 0 and "CSV, TSV (gzipped too), Parquet or Arrow IPC/Feather; no .xlsx: save it as CSV" in said


def test_a_prefect_api_that_is_down_when_the_run_starts_is_named_with_what_to_do(capsys):
    """Regression: a `flowcast run` whose Prefect server (PREFECT_API_URL) was killed while the command started
    ended 'error: RuntimeError: Failed to reach API at http://.../api/': Prefect's wrapper of the connection
    error was not recognised, so nothing said what became of the run or what to do. The real client is asked
    here, against a port nothing listens on."""
    import asyncio
    import socket

    import pytest
    import typer
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowcast.cli.common import cli_errors

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/api"  # closed again below: nothing listens there

    async def ask() -> None:
        async with get_client() as client:
            await client.raise_for_api_version_mismatch()

    @cli_errors
    def command() -> None:
        asyncio.run(ask())

    with temporary_settings({PREFECT_API_URL: url}), pytest.raises(typer.Exit) as exit_:
        command()
    err = " ".join(capsys.readouterr().err.split())
    assert exit_.value.exit_code == 1
    assert f"the Prefect API at {url} did not answer" in err and "Failed to reach API" in err, err
    assert "start that server again" in err and "run the same command again" in err


def test_a_run_whose_api_went_away_after_its_publish_says_its_forecasts_were_published(tmp_path, capsys):
    """Regression: a `flowcast run` whose Prefect server was killed just after its leaderboard (the publish task
    running) waited, then failed 'the Prefect API ... did not answer and the run stopped': its forecasts were
    in the store and its winner promoted, but its log never reached 'Published' and nothing said so. The
    command's own flow-run record (`.flow-runs/`) ties the publish to it; a real connection error here."""
    from datetime import datetime

    import httpx
    import pytest
    import typer

    from flowcast.cli.common import cli_errors, note_publish_of_this_command
    from flowcast.config import load_settings
    from flowcast.ops.reaper import CLAIMS

    home = tmp_path / "home"
    settings = load_settings(home=home)
    as_of = datetime(2024, 3, 1)
    port = _published_by_this_command(home, as_of)

    @cli_errors
    def command(when: datetime | None) -> None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)  # nothing listens: the API went away
        except Exception as exc:
            note_publish_of_this_command(exc, settings, when)
            raise

    for when in (as_of, None):  # with --as-of, and without (now: the newest publish)
        with pytest.raises(typer.Exit):
            command(when)
        err = " ".join(capsys.readouterr().err.split())
        assert "did not answer" in err and "its forecasts of sales as_of 2024-03-01 were published" in err
        assert "(flow run run-of-this-command)" in err, err
    (home / CLAIMS / "run-of-this-command.json").unlink()  # another command's publish: nothing claimed
    with pytest.raises(typer.Exit):
        command(as_of)
    assert "were published" not in capsys.readouterr().err


def test_the_published_note_finds_a_date_only_as_of_on_the_sources_calendar(tmp_path, capsys):
    """`flowcast run --as-of 2024-03-01` hands the flow the date as given, read on the source's calendar (the
    midnight it starts at in its tz); the note looked for a publish at UTC midnight instead, so a source in
    Melbourne whose run had published said nothing of it."""
    from datetime import datetime

    import httpx
    import pytest
    import typer

    from flowcast.cli.common import cli_errors, note_publish_of_this_command
    from flowcast.config import SourceConfig, load_settings

    home = tmp_path / "home"
    source = SourceConfig(name="sales", path=str(tmp_path / "s.csv"), id_cols=["id"], time_col="date",
                          target_col="y", freq="1d", tz="Australia/Melbourne")
    settings = load_settings(home=home).model_copy(update={"source": source})
    as_of = datetime(2024, 2, 29, 13)  # 2024-03-01 00:00 in Melbourne (UTC+11), naive UTC as stored
    port = _published_by_this_command(home, as_of)

    @cli_errors
    def command() -> None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)  # nothing listens: the API went away
        except Exception as exc:
            note_publish_of_this_command(exc, settings, "2024-03-01")  # what flow_as_of hands a date alone
            raise

    with pytest.raises(typer.Exit):
        command()
    err = " ".join(capsys.readouterr().err.split())
    assert "its forecasts of sales as_of 2024-02-29 13:00 UTC were published" in err, err


def _published_by_this_command(home, as_of) -> int:
    """A publish of dataset 'sales' at `as_of` by the flow run this process claims (as a command's own run does),
    and a loopback port nothing listens on (the Prefect API that went away)."""
    import json
    import os
    import socket
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "publish_faults"))
    from publisher import make_forecast

    from flowcast.ops.reaper import CLAIMS, start_time
    from flowcast.store import EmbeddedStore

    EmbeddedStore(home / "warehouse").publish(make_forecast(1, 2, 3, as_of), dataset="sales", as_of=as_of,
                                              model="comb", model_version="comb-v1", run_id="run-of-this-command",
                                              created_at=as_of)
    (home / CLAIMS).mkdir(parents=True)
    (home / CLAIMS / "run-of-this-command.json").write_text(json.dumps(
        {"flow_run_id": "run-of-this-command", "pid": os.getpid(), "pid_start": start_time(os.getpid())}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("code", "advised"), [(30, True), (13, True), (1, True), (28, False), (2, False)])
def test_a_folder_it_may_not_write_is_said_with_what_to_do(capsys, code, advised):
    """Regression: a run on a read-only home (a read-only mount; another user's files) ended with
    `OSError: [Errno 30] Read-only file system: '<home>/cache'` and no word that every run writes under its home;
    a read-only (EROFS), permission (EACCES) or operation (EPERM) error, also one a flow raised from it, names
    the home's settings. A full disk (ENOSPC) or a missing file is another matter: no such advice."""
    import os

    import typer

    from flowcast.cli.common import cli_errors

    @cli_errors
    def command() -> None:
        try:
            raise OSError(code, os.strerror(code), "/mnt/ro/home/cache")
        except OSError as exc:
            raise RuntimeError("the flow failed") from exc

    with pytest.raises(typer.Exit) as exit_:
        command()
    err = " ".join(capsys.readouterr().err.split())
    assert exit_.value.exit_code == 1 and "RuntimeError: the flow failed" in err
    assert ("under its home (--home, FLOWCAST_HOME" in err) is advised, err


@pytest.mark.parametrize(("code", "advised"), [(30, True), (13, True), (28, False)])
def test_a_flowcast_error_of_a_folder_it_may_not_write_says_what_to_do(capsys, code, advised):
    """Regression (faults31): `flowcast forecast`, `run`, `backfill` and `reap` on a read-only home (a read-only bind
    mount) stopped at their first write, the command's claim in `.flow-runs/`, with `error: could not write
    <home>/.flow-runs/command-...json: [Errno 30] Read-only file system: ...; the previous file, if any, is intact`:
    the advice an OSError gets (every run writes under its home, point --home at a writable folder) was left out
    of a flowcast error raised from one. A full disk gets no such advice."""
    import os
    from pathlib import Path

    import typer

    from flowcast.atomic import storage_error
    from flowcast.cli.common import cli_errors

    claim = Path("/mnt/ro/home/.flow-runs/command-1-2.json")

    @cli_errors
    def command() -> None:
        try:
            raise OSError(code, os.strerror(code), str(claim.with_suffix(".json.x.tmp")))
        except OSError as exc:
            raise storage_error(claim, exc) from exc

    with pytest.raises(typer.Exit) as exit_:
        command()
    err = " ".join(capsys.readouterr().err.split())
    assert exit_.value.exit_code == 1 and f"could not write {claim}" in err, err
    assert ("under its home (--home, FLOWCAST_HOME" in err) is advised, err


@pytest.mark.parametrize(("code", "limited", "advice"), [
    (28, False, "free space"), (122, False, "quota"), (27, True, "ulimit"), (27, False, "largest"), (30, False, None)])
def test_a_write_that_found_no_room_says_the_room_left_and_what_to_do(tmp_path, capsys, code, limited, advice):
    """Regression (faults52): `flowcast backfill` on a full home (a tmpfs) stopped at its claim in `.flow-runs/` with
    `error: could not write <home>/.flow-runs/....json: no space left on device (the disk is full); the previous file,
    if any, is intact`: neither the room left nor what to free. A full disk (ENOSPC) now says the room left in that
    folder, what `flowcast gc` frees and to run again; a full quota (EDQUOT) says the quota, not to free space on a
    disk that has room (fixJ52); a file too large (EFBIG) says the `ulimit -f` set, or, with none set (fixJ52: it
    said to raise a limit there was not), the file system's largest file and another --home; a read-only disk keeps
    its own advice alone."""
    import os
    import resource

    import typer

    from flowcast.atomic import storage_error
    from flowcast.cli.common import cli_errors
    from flowcast.errors import StorageError

    claim = tmp_path / ".flow-runs" / "command-1-2.json"
    claim.parent.mkdir()

    @cli_errors
    def command() -> None:
        try:
            raise OSError(code, os.strerror(code), str(claim.with_suffix(".json.x.tmp")))
        except OSError as exc:
            try:
                raise storage_error(claim, exc) from exc
            except StorageError as flowcast_error:  # as a flow run raises it again in the command
                raise RuntimeError(str(flowcast_error)) from None

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        # 1 GiB where a limit is set, none otherwise (this test's own writes reach neither)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 30 if limited else hard, hard))
        with pytest.raises(typer.Exit) as exit_:
            command()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    err = " ".join(capsys.readouterr().err.split())
    flat = "".join(err.split())  # a long path is folded at 80 columns
    assert exit_.value.exit_code == 1 and f"couldnotwrite{claim}" in flat, err
    assert (f"bytesfreein{claim.parent}" in flat) is (advice in ("free space", "quota")), err
    assert ("free space on that disk (`flowcast gc` lists what the [retention] policy lets go" in err
            and "run the same command again" in err) is (advice == "free space"), err
    assert ("this user's disk quota is full, whatever room the disk has (" in err
            and "ask for a larger quota" in err) is (advice == "quota"), err
    assert ("a file-size limit stopped the write (ulimit -f: 1,073,741,824 bytes for this command, `ulimit -f 1048576`"
            in err) is (advice == "ulimit"), err
    assert ("the file grew past the largest file its file system takes (no file-size limit, `ulimit -f`, is set"
            in err and "point --home at a disk of another file system" in err) is (advice == "largest"), err
    assert ("raise it" in err) is (advice == "ulimit"), err
    assert ("under its home (--home, FLOWCAST_HOME" in err) is (advice is None), err


@pytest.mark.parametrize("wrapped", [True, False])
@pytest.mark.parametrize(("code", "advice"), [(28, ""), (27, "; the file grew past the largest file its file system"),
                                              (30, "; flowcast writes its cache"), (2, None)])
def test_a_json_caller_gets_the_advice_the_console_shows(tmp_path, capsys, wrapped, code, advice):
    """Regression (fixE52): the no-room and file-size-limit advice reached the console only: `--json` ended stdout
    with {"status": "failed", "error": ...} and no word of the room left or the limit where a flow raised the failed
    write again as another error (a RuntimeError). The JSON object has it in its own field, `advice`, the very text
    the console shows after the error (one source), whether a flowcast error or another carried the write's failure;
    no `advice` where there is none (a missing file)."""
    import json
    import os
    import re

    import typer

    from flowcast.atomic import storage_error
    from flowcast.cli.common import cli_errors
    from flowcast.errors import StorageError

    claim = tmp_path / ".flow-runs" / "command-1-2.json"
    claim.parent.mkdir()

    @cli_errors
    def command(json_out: bool = False) -> None:
        try:
            raise OSError(code, os.strerror(code), str(claim.with_suffix(".json.x.tmp")))
        except OSError as exc:
            try:
                raise storage_error(claim, exc) from exc
            except StorageError as flowcast_error:
                if wrapped:  # as a flow run raises it again in the command
                    raise RuntimeError(str(flowcast_error)) from None
                raise

    with pytest.raises(typer.Exit) as exit_:
        command(json_out=True)
    out, err = capsys.readouterr()
    failed = json.loads(out.strip().splitlines()[-1])
    assert exit_.value.exit_code == 1 and failed["status"] == "failed", failed
    assert f"could not write {claim}" in failed["error"], failed
    if advice is None:
        assert "advice" not in failed and "; flowcast writes" not in failed["error"], failed
        return
    said = failed["advice"]
    assert said.startswith(advice.removeprefix("; ")) and said not in failed["error"], failed
    if code == 28:  # the room left in the folder written, then what to free
        assert re.fullmatch(rf"[0-9,]+ bytes free in {re.escape(str(claim.parent))}: free space on that disk .*", said), said
    # the console's very words, a long path folded at 80 columns anywhere (by the length of pytest's tmp_path)
    assert "".join(said.split()) in "".join(err.split()), (said, err)


@pytest.mark.parametrize(("limited", "low"), [(True, False), (False, True), (False, False)])
def test_a_temporary_server_that_did_not_start_is_said_with_its_database_and_file_size_limit(tmp_path, capsys,
                                                                                               monkeypatch, limited,
                                                                                               low):
    """Regression (faults52): `flowcast forecast` under `ulimit -f 64` (Prefect's database not writable past 64 KB)
    ended, after uvicorn's 5 failed starts, with `error: RuntimeError: Timed out while attempting to connect to
    ephemeral Prefect API server.` alone. Where the command has a file-size limit (which the server inherits) or its
    database's disk little room, it names the database, the room left there, the limit and what to do; with neither
    (fixJ52: it said a write to the database failed all the same) that the server did not start in time and how to
    see why. A --json caller gets the same advice in its `advice` (fixJ52: it got none of it)."""
    import json
    import resource

    import typer
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, temporary_settings

    from flowcast import atomic
    from flowcast.cli.common import cli_errors

    @cli_errors
    def command(json_out: bool = False) -> None:
        raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server.")

    if low:  # the disk of the database with 4 KB left (a disk that full is not made here)
        monkeypatch.setattr(atomic, "bytes_free", lambda folder: 4096)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    db = tmp_path / "prefect.db"
    try:
        # 1 GiB where a limit is set, none otherwise (this test's own writes reach neither)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 30 if limited else hard, hard))
        with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{db}"}), \
                pytest.raises(typer.Exit) as exit_:
            command(json_out=True)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    out, err = capsys.readouterr()
    err = " ".join(err.split())
    flat = "".join(err.split())  # a long path is folded at 80 columns
    assert exit_.value.exit_code == 1, err
    written = limited or low
    assert ("Prefect's temporary server did not start and no flow ran" in err) is written, err
    assert (f"itsdatabase{db}(" in flat and f"bytesfreein{tmp_path})" in flat) is written, err
    assert ("`ulimit -f 1048576`), which the server inherits" in err) is limited, err
    assert ("a write to" in err) is written, err
    assert ("Prefect's temporary server did not start in time and no flow ran: its log above says why "
            "(PREFECT_LOGGING_LEVEL=DEBUG says more" in err) is not written, err
    assert "set PREFECT_API_URL to a running Prefect server" in err, err
    advice = json.loads(out.strip().splitlines()[-1])["advice"]
    assert advice.startswith("Prefect's temporary server did not start") and "".join(advice.split()) in flat, advice


@pytest.mark.parametrize("later", [
    # text values written after as_of (more than 1 in 10 of the column): the file was read long, asked for --target-col
    "".join(f"2024-01-{d},closed,3\n" for d in range(11, 14)),
    # ... later on as_of's own day (an ISO time of day after as_of, a day/month date with a time of day)
    "".join(f"2024-01-10 {h}:00,closed,3\n" for h in range(13, 16)),
    "".join(f"10/01/2024 {h}:00,n/a yet,3\n" for h in range(13, 16)),
])
def test_a_wide_file_is_told_from_a_long_one_by_its_rows_by_as_of(tmp_path, monkeypatch, later):
    """pit20 (a leak after as_of): wide vs long was decided from the file's first 200 rows whatever the as_of, so a
    row written after it (a text value in a series' column) made a backfill at that as_of read the file its run had
    read as wide (each column a series) as long, and stop asking for --target-col."""
    monkeypatch.chdir(tmp_path)
    history = "".join(f"2024-01-{d:02d},{d},{2 * d}\n" for d in range(1, 11))
    outs = []  # (as_of 2024-01-10T12:00Z)
    for name, body in (("run.csv", history), ("backfill.csv", history + later)):
        (tmp_path / name).write_text("date,north,south\n" + body)
        res = CliRunner().invoke(app, ["validate", name, "--time-col", "date", "--freq", "1d",
                                       "--as-of", "2024-01-10T12:00Z", "--home", str(tmp_path / "home")], terminal_width=400)
        outs.append((res.exit_code, " ".join(res.output.split())))
    for code, out in outs:
        assert code == 0, out
        assert "it is read as a wide file, each of its 2 columns a series (north, south)" in out
        assert "20 rows in: 20 valid" in out


def _steps_changing(tmp_path, name="x.csv"):
    """A daily history of two series, 1-10 January 2024, then hourly rows from 11 January 00:00 for 60 hours: a run
    at 11 January reads its rows daily, one at 12 January hourly (24 hourly steps of 34)."""
    from datetime import date, datetime, timedelta

    history = "".join(f"{date(2024, 1, 1) + timedelta(days=i)},s{j},{i}\n" for i in range(10) for j in (1, 2))
    later = "".join(f"{datetime(2024, 1, 11) + timedelta(hours=h):%Y-%m-%d %H:%M},s{j},{h}\n"
                    for h in range(60) for j in (1, 2))
    (tmp_path / name).write_text("date,store,units\n" + history + later)
    return tmp_path / name


@pytest.mark.parametrize(("freq", "days", "said"), [
    ("1d", [10, 11], None),  # each date reads its rows daily
    ("1d", [10, 11, 12], ("by the backfill's first date (2024-01-10), but a run at 2024-01-12 "
                         "reads them at --freq 1h (71% of 68 consecutive steps")),
    # a --start before the file's first row read the frequency off all its rows (hourly), rows after every date
    ("1h", [0, 2], ("by all its rows (none is dated by the backfill's first date, 2023-12-31), but a run at "
                   "2024-01-02 reads them at --freq 1d (100% of 2 consecutive steps")),
    ("1h", [0, 1], "but a run at 2024-01-01 reads them at no frequency (no series has two different times)"),
    ("1h", [-1, 0], None),  # (no row by either date: their runs say so)
])
# perf25: --aggregate without --freq: each date's run reads its frequency off the rows' step as well (`_inferred_freq`);
# an aggregated source's inferred frequency became the one it aggregates to, its rows' step beside it (`Inferred.step`)
@pytest.mark.parametrize("aggregate", ["none", "sum"])
def test_each_date_of_a_backfill_reads_the_frequency_its_run_does(tmp_path, freq, days, said, aggregate):
    """pit21: a backfill of a --data file without --freq read the frequency off the rows by --start and every date ran
    at it: the dates whose runs read the rows at another step (a history turning hourly within the range), or all of
    them where --start lay before the file's first row (the frequency of all its rows, those after each date too),
    were read at a frequency their own run would not have read. The backfill is refused, naming the first such date."""
    from datetime import datetime, timedelta

    from flowcast.cli.common import check_backfill_readings
    from flowcast.config import SourceConfig
    from flowcast.errors import ConfigError

    src = SourceConfig(name="x", path=str(_steps_changing(tmp_path)), id_cols=["store"], time_col="date",
                       target_col="units", freq=freq, aggregate=aggregate)
    dates = [datetime(2024, 1, 1) + timedelta(days=d - 1) for d in days]
    if aggregate != "none" and said is not None:  # (its periods are cut once over: a day's rows wait until it ends,
        # so a run at midnight on 1 January observes no row, one on 2 January a row per series)
        said = {(0, 1): None, (0, 2): "but a run at 2024-01-02 reads them at no frequency"}.get(
            tuple(days), said.rsplit(" (", 1)[0])
    if said is None:
        check_backfill_readings(src.path, src, dates, freq_given=False)
        check_backfill_readings(src.path, src.model_copy(update={"freq": "1w"}), dates, freq_given=True)  # given
        return
    with pytest.raises(ConfigError) as err:
        check_backfill_readings(src.path, src, dates, freq_given=False)
    assert said in str(err.value) and f"its dates step by {freq} by " in str(err.value)
    assert "give --freq to read every date at one frequency" in str(err.value)
    check_backfill_readings(src.path, src, dates, freq_given=True)  # --freq given: read at it, as the runs are


def test_a_backfill_whose_dates_read_another_layout_is_refused(tmp_path):
    """pit21: a wide file (a date, a number column per series) with a text value from 3 January on: a run at 2 January
    reads it wide, one at 3 January long (and asks for --target-col). A backfill over both read it wide throughout."""
    from datetime import datetime

    from flowcast.cli.common import check_backfill_readings
    from flowcast.config import SourceConfig
    from flowcast.errors import ConfigError

    (tmp_path / "w.csv").write_text("date,north,south\n2024-01-01,1,2\n2024-01-02,2,3\n2024-01-03,n/a?,4\n")
    src = SourceConfig(name="w", path=str(tmp_path / "w.csv"), time_col="date", freq="1d", layout="wide")
    check_backfill_readings(src.path, src, [datetime(2024, 1, 1), datetime(2024, 1, 2)], freq_given=True)
    with pytest.raises(ConfigError, match=r"is read as a wide file by the backfill's first date \(2024-01-01\), but "
                                          r"a run at 2024-01-03 reads it as a long one"):
        check_backfill_readings(src.path, src, [datetime(2024, 1, d) for d in (1, 2, 3)], freq_given=True)


def test_the_backfill_command_refuses_dates_that_read_another_frequency(tmp_path, monkeypatch):
    """pit21: `flowcast backfill x.csv` without --freq says which date reads its rows at another step, before any flow
    starts (exit 2)."""
    monkeypatch.chdir(tmp_path)
    _steps_changing(tmp_path)
    args = ["backfill", "x.csv", "--time-col", "date", "--target-col", "units", "--id-col", "store", "--home", "h",
            "--start", "2024-01-10", "--end", "2024-01-13"]
    res = runner.invoke(app, args, terminal_width=400)
    out = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert ("--data x.csv without --freq: its dates step by 1d by the backfill's first date (2024-01-10), "
            "but a run at 2024-01-12 reads them at --freq 1h (71% of 68 consecutive steps by then)") in out, out


def _source_option_specs() -> dict[str, tuple[tuple[str, ...], str | None, object]]:
    """Each `SourceOptions` field as its `Annotated` typer parameter declares it: (names, help, default)."""
    import dataclasses
    from typing import get_args, get_type_hints

    hints = get_type_hints(SourceOptions, include_extras=True)
    specs = {}
    for f in dataclasses.fields(SourceOptions):
        info = get_args(hints[f.name])[1]  # typer.Option("--id-col", ...): its first name is held as `default`
        names = (f.name,) if info.default is ... else (info.default, *(info.param_decls or ()))
        specs[f.name] = (tuple(sorted(names)), info.help, f.default)
    return specs


SOURCE_COMMANDS = ["run", "forecast", "backfill", "train", "tune", "validate"]


@pytest.mark.parametrize("command", SOURCE_COMMANDS)
def test_each_command_that_reads_a_source_takes_every_shared_source_option(command):
    """The source options (`--id-col`, `--time-col`, `--tz`, ..., `--static-col`, PATH, --data, --dataset) are
    declared once, `SourceOptions`: each of the six commands that read a source takes every one, with its names,
    help and default, in the shared order. They were written out in each command: one added to five of six was
    'No such option' in the sixth."""
    from typer.main import get_command

    specs = _source_option_specs()
    params = get_command(app).commands[command].params  # type: ignore[attr-defined]
    taken = {p.name: (tuple(sorted(p.opts)), p.help, p.default) for p in params if p.name in specs}
    assert taken == specs
    order = [p.name for p in params if p.name in specs]
    assert [n for n in specs if n != "path"] == [n for n in order if n != "path"]  # (PATH: listed as an argument)


def test_every_command_with_a_data_option_is_one_of_the_source_commands():
    """A new command taking --data is held to the shared source options too (it joins SOURCE_COMMANDS)."""
    from typer.main import get_command

    def walk(group, prefix=""):
        for name, cmd in group.commands.items():
            yield from walk(cmd, f"{prefix}{name} ") if hasattr(cmd, "commands") else [(f"{prefix}{name}", cmd)]

    with_data = sorted(n for n, c in walk(get_command(app)) if any("--data" in p.opts for p in c.params))
    assert with_data == sorted(SOURCE_COMMANDS)


def test_the_source_options_are_the_source_keywords_of_resolve_settings():
    """`SourceOptions.settings_args` is what `resolve_settings` takes: an option added to one is in the other."""
    import inspect

    keywords = set(inspect.signature(resolve_settings).parameters) - {"horizon", "config", "home", "as_of", "overrides"}
    assert set(SourceOptions().settings_args()) == keywords


@pytest.mark.parametrize(("path", "data", "file"), [(None, None, None), ("a.csv", None, "a.csv"),
                                                    (None, "a.csv", "a.csv"), ("a.csv", "a.csv", "a.csv")])
def test_the_source_options_hold_the_file_given_as_path_or_data(path, data, file):
    given = SourceOptions(path=path, data=data, tz="Europe/Paris")
    assert given.data == file and given.settings_args()["data"] == file and "path" not in given.settings_args()
    assert given.settings_args()["tz"] == "Europe/Paris"


def test_a_command_that_declares_a_source_option_itself_is_refused():
    """`source_options` gives a command the shared options; one it declares again would shadow one of them."""
    def own_tz(*, source: SourceOptions, tz: TzOpt = None) -> None: ...

    def no_source(*, tz: TzOpt = None) -> None: ...

    with pytest.raises(TypeError, match=r"own_tz declares source options of its own: \['tz'\]"):
        source_options(own_tz)
    with pytest.raises(TypeError, match="no_source takes no `source: SourceOptions` parameter"):
        source_options(no_source)


def test_a_file_whose_times_do_not_repeat_is_not_told_they_repeat(tmp_path, monkeypatch):
    """Regression (review25): the --id-col hint of a file given --time-col alone said 'its times repeat (several
    series?)' of a file whose every date is written once (one store, its sales written '$1200': text beside no number
    column): its text columns were offered as the series' ids, as in a long file of several series."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "one.csv").write_text("date,store,sales\n2024-01-07,north,$1200\n2024-01-14,north,$1300\n")
    res = runner.invoke(app, ["validate", "one.csv", "--time-col", "date"], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and said.startswith("error: --data one.csv also needs --target-col"), said
    assert "times repeat" not in said and "--id-col" not in said, said


def _two_series_of(header: str, extra: str = "") -> str:
    """A CSV of two series ('a', 'b') of 28 daily rows: `header`'s columns are an id, a time, a target and then
    `extra`'s values on each row."""
    return header + "\n" + "".join(f"{s},2024-01-{d:02d},{d}{extra}\n" for s in ("a", "b") for d in range(1, 29))


@pytest.mark.parametrize(("header", "extra", "said"), [
    ("store,Date,sales", "", "y <- 'sales' (--time-col Date --id-col store --target-col sales guessed from their names;"),
    ("store,Date,Units,region", ",north", "y <- 'Units' (--time-col Date --id-col store --target-col Units guessed from their"),
    ("store,Date,sold", "", ("y <- 'sold' (--time-col Date --id-col store guessed from their names; --target-col sold "
                             "as its one other number column; pass the options")),
    ("store,Date,sold,price", ",2.5", ("y <- 'sold' (--time-col Date --id-col store guessed from their names; "
                                      "--target-col sold as its one other number column")),  # (a covariate given)
    ("store,Date,demand,price", ",2.5", "y <- 'demand' (--time-col Date --id-col store --target-col demand guessed"),
])
def test_a_files_target_is_its_one_column_named_so_or_its_one_number_column(tmp_path, monkeypatch, header, extra,
                                                                             said):
    """tgt43: a file `Date,store,sales` still needed --target-col sales (only 'y' was taken for the target). Its one
    column named as a target ('sales', 'units', ...), else its one number column besides the time, the series and
    the covariates given, is read as the target, and said with the columns read."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.csv").write_text(_two_series_of(header, extra))
    options = ["--past-col", "price"] if header.endswith(",sold,price") else []
    res = runner.invoke(app, ["validate", "f.csv", "--freq", "1d", "--json", "--home", "h", *options],
                        terminal_width=400)
    assert res.exit_code == 0, res.output
    report = _last_json(res.stdout)
    assert report["rows_valid"] == 56 and report["rows_quarantined"] == 0 and report["n_series"] == 2, report
    assert f"note: f.csv is read with columns: unique_id <- 'store', ds <- 'Date', {said}" in " ".join(
        res.stderr.split()), res.stderr


@pytest.mark.parametrize(("header", "extra"), [
    ("store,Date,sold,price", ",2.5"),  # two number columns, neither named as a target
    ("store,Date,sales,units", ",3"),  # two named as a target
])
def test_a_target_among_several_candidates_is_asked_for(tmp_path, monkeypatch, header, extra):
    """tgt43: where several columns could be the target, which is meant is not guessed: the command asks for
    --target-col, naming the file's columns, as before."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.csv").write_text(_two_series_of(header, extra))
    res = runner.invoke(app, ["validate", "f.csv", "--freq", "1d", "--home", "h"], terminal_width=400)
    said = " ".join(res.output.split())
    assert res.exit_code == 2, said
    assert f"error: --data f.csv also needs --target-col (its columns: {', '.join(header.split(','))})" in said, said
    assert "y <-" not in said


def test_a_wide_files_column_named_as_a_target_stays_a_series(tmp_path, monkeypatch):
    """tgt43: a wide file (each date once, every other column numbers) whose series is named 'sales' is read as
    wide, each column a series, not as one long series of its 'sales' column."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.csv").write_text("date,sales,online\n" + "".join(f"2024-01-{d:02d},{d},{2 * d}\n" for d in range(1, 29)))
    res = runner.invoke(app, ["validate", "w.csv", "--freq", "1d", "--json", "--home", "h"], terminal_width=400)
    assert res.exit_code == 0 and _last_json(res.stdout)["wide_columns"] == ["sales", "online"], res.output
    assert "y <-" not in " ".join(res.stderr.split()), res.stderr


@pytest.mark.parametrize(("columns", "said"), [
    (("day",), ("ds <- 'day', y <- 'units' (--id-col store --target-col units guessed from their names; --time-col "
                "day as its one date column; pass the options")),
    (("ts",), ("ds <- 'ts', y <- 'units' (--id-col store --target-col units guessed from their names; --time-col ts "
               "as its one date column; pass the options")),
    (("day", "order_day"), None),  # two date columns: which is meant is not guessed
])
def test_a_parquet_files_one_date_column_is_its_time_whatever_its_name(tmp_path, monkeypatch, columns, said):
    """newuser44: a Parquet file whose time column is of type Date but named `day` (`day,store,units,price`) was
    asked for --time-col: a time column was guessed from its name alone, where the file's schema says which column
    holds dates. Its one column of type Date or Datetime is the time, and said so; of two, neither is guessed."""
    from datetime import date, datetime, timedelta

    import polars as pl

    monkeypatch.chdir(tmp_path)
    days = [date(2024, 1, 1) + timedelta(days=d) for d in range(28)]
    first = [datetime(d.year, d.month, d.day) if columns[0] == "ts" else d for d in days]
    frame = pl.DataFrame({columns[0]: first * 2, "store": ["a"] * 28 + ["b"] * 28, "units": list(range(56)),
                          "price": [2.5] * 56, **{c: days * 2 for c in columns[1:]}})
    frame.write_parquet(tmp_path / "f.parquet")
    res = runner.invoke(app, ["validate", "f.parquet", "--freq", "1d", "--future-col", "price", "--home", "h"],
                        terminal_width=400)
    said_all = " ".join(res.output.split())
    if said is None:
        assert res.exit_code == 2 and "error: --data f.parquet also needs --time-col" in said_all, said_all
        return
    assert res.exit_code == 0, said_all
    assert f"note: f.parquet is read with columns: unique_id <- 'store', {said}" in said_all, said_all


@pytest.mark.parametrize(("first", "said"), [
    (lambda d: f"2024-01-{d:02d}", ("ds <- 'column_1' (--time-col column_1 as its first column, without a header, of "
                                    "times (the date index pandas' to_csv writes); pass the options")),
    (lambda d: str(d - 1), None),  # a row index of numbers is no time column: asked for as before
    # (revG47) the row numbers of a slice (df.iloc[1000:1028].to_csv()) read as years 1001..1028: not taken either
    (lambda d: str(1000 + d), None),
], ids=["dates", "row_numbers", "row_numbers_of_a_slice"])
def test_a_wide_files_date_index_without_a_header_is_its_time(tmp_path, monkeypatch, first, said):
    """newuser47: pandas' to_csv of a wide table indexed by its dates writes them first under an empty header
    (`,north,south`): the command asked for --time-col and --target-col, though given --time-col column_1 alone it
    read the file as wide, as it should. A first column without a header whose values read as times is the time."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.csv").write_text(",north,south\n" + "".join(f"{first(d)},{d},{2 * d}\n" for d in range(1, 29)))
    res = runner.invoke(app, ["validate", "w.csv", "--freq", "1d", "--json", "--home", "h"], terminal_width=400)
    said_all = " ".join(res.output.split())
    if said is None:
        assert res.exit_code == 2 and "error: --data w.csv also needs --time-col" in said_all, said_all
        return
    assert res.exit_code == 0, said_all
    assert _last_json(res.stdout)["wide_columns"] == ["north", "south"], res.output
    assert f"note: w.csv is read with columns: {said}" in said_all, said_all


def test_a_warning_is_one_line_however_long_its_path(monkeypatch):
    """A warning folded at 80 columns split the path in it (the other output prints with soft_wrap)."""
    from flowcast.cli import common

    monkeypatch.setattr(common.console, "_width", 80)
    path = "/home/someone/forecasting/" + "a-rather-long-folder-name/" * 4 + "sales.csv"
    with common.console.capture() as captured:
        common.warn(f"{path} has 3 rows without a time; they are left out")
    assert captured.get() == f"warning: {path} has 3 rows without a time; they are left out\n"


def test_an_unexpected_error_naming_a_url_says_it_without_its_secrets(capsys):
    """redact48: an error flowcast does not explain (a library's, printed as `error: Type: text`) named a URL whole,
    its password and token with it, on stderr and in the --json object; so did the Prefect API's URL."""
    import json

    import httpx
    import typer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowcast.cli.common import cli_errors

    @cli_errors
    def command(json_out: bool = True) -> None:
        raise httpx.ConnectError("cannot reach https://u:pw1@h/x.csv?token=tok2")

    with temporary_settings({PREFECT_API_URL: "http://v:key3@127.0.0.1:4311/api"}), pytest.raises(typer.Exit) as exit_:
        command(json_out=True)
    out, err = capsys.readouterr()
    err = " ".join(err.split())
    assert exit_.value.exit_code == 1
    for text in (out, err):
        assert "pw1" not in text and "tok2" not in text and "key3" not in text, text
    assert "the Prefect API at http://v:***@127.0.0.1:4311/api did not answer" in err
    assert "ConnectError: cannot reach https://u:***@h/x.csv?token=***" in err
    assert json.loads(out.strip().splitlines()[-1])["error"] == "ConnectError: cannot reach https://u:***@h/x.csv?token=***"


@pytest.mark.parametrize("explained", [True, False])
def test_an_error_naming_a_keyword_dsn_says_it_without_its_password(capsys, explained):
    """secrets52: the error's sentence hid a URL's secrets but showed a keyword DSN's password (`redact_text` read
    URLs alone), an unexpected error's, an explained one's and an earlier error's, on stderr and in --json."""
    import json

    import typer

    from flowcast.cli.common import cli_errors
    from flowcast.errors import StorageError

    @cli_errors
    def command(json_out: bool = True) -> None:
        try:
            raise ValueError("cannot open host=db sslpassword=k3y sslmode=verify-full")
        except ValueError:
            if explained:
                raise StorageError("could not write to host=db user=u password=s3cret dbname=x") from None
            raise RuntimeError("connect(host=db user=u password='s3 cret' dbname=x) failed")

    with pytest.raises(typer.Exit) as exit_:
        command(json_out=True)
    out, err = capsys.readouterr()
    err = " ".join(err.split())
    for text in (out, err):
        assert "s3cret" not in text and "s3 cret" not in text and "k3y" not in text, text
    said = ("could not write to host=db user=u password=*** dbname=x" if explained else
            "RuntimeError: connect(host=db user=u password=*** dbname=x) failed; raised while handling an earlier "
            "error: ValueError: cannot open host=db sslpassword=*** sslmode=verify-full")
    assert exit_.value.exit_code == 1 and f"error: {said}" in err, err
    assert json.loads(out.strip().splitlines()[-1])["error"] == said


@pytest.mark.parametrize("explained", [True, False])
def test_an_error_raised_while_handling_another_is_said_with_it(capsys, explained):
    """redact48: a command whose error was raised while it handled another (no `from`) said the last one alone, on
    stderr and in --json: the first, often the one to mend, was lost. The exit code is the last error's."""
    import json

    import typer

    from flowcast.cli.common import cli_errors
    from flowcast.errors import DataValidationError, StorageError

    @cli_errors
    def command(json_out: bool = True) -> None:
        try:
            raise DataValidationError("source 'tiny': no rows (the file has a header but no data)")
        except DataValidationError:
            if explained:
                raise StorageError("could not write /h/quarantine/q.parquet: [Errno 28] No space left on device")
            raise RuntimeError("the quarantine writer stopped")

    with pytest.raises(typer.Exit) as exit_:
        command(json_out=True)
    out, err = capsys.readouterr()
    err = " ".join(err.split())
    last = (StorageError("could not write /h/quarantine/q.parquet: [Errno 28] No space left on device") if explained
            else "RuntimeError: the quarantine writer stopped")
    both = (f"{last}; raised while handling an earlier error: DataValidationError: source 'tiny': no rows (the file has "
            "a header but no data)")
    assert exit_.value.exit_code == 1 and f"error: {both}" in err, err
    # a write that found no room is followed by what to do about it (faults52), after both errors
    said = json.loads(out.strip().splitlines()[-1])["error"]
    assert said == both or (explained and said.startswith(f"{both}; free space on that disk")), said


def test_a_warning_names_a_url_without_its_secrets(capsys):
    """redact48: a command's warning naming a source's URL (a file that changed while it was read) showed its password
    and token."""
    from flowcast.cli.common import warn

    warn("Source 'x' changed while it was read (https://u:pw1@h/x.csv?token=tok2): read again")
    assert capsys.readouterr().err == "warning: Source 'x' changed while it was read (https://u:***@h/x.csv?token=***): read again\n"
    warn("could not connect to host=db password=s3cret dbname=x")
    assert capsys.readouterr().err == "warning: could not connect to host=db password=*** dbname=x\n"
