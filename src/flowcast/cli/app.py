"""The Typer application and the `models` sub-command group."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

import typer
from typer.core import TyperGroup, TyperOption

try:  # typer 0.2x vendors click: its usage errors derive from TyperException
    from typer import TyperException as _OptionError
except ImportError:  # pragma: no cover  (older typer raises click's own)
    from click import ClickException as _OptionError  # type: ignore[assignment]

_ARGS = "flowcast.args"  # ctx.meta: the command line as given, before Click consumed it


def wants_json(args: Sequence[str]) -> bool:
    """Whether a command line asks for JSON on stdout: `--json`, or `--format json` (`flowcast forecasts`)."""
    args = list(args)
    return ("--json" in args or "--format=json" in args
            or any(a == "--format" and b == "json" for a, b in pairwise(args)))


@contextmanager
def _option_errors(args: Sequence[str]) -> Iterator[None]:
    """An error in the options themselves (`--horizon abc`, an unknown option, a missing value) is raised
    by Click before any command runs, so `cli_errors` never sees it: with --json it printed Click's box
    on stderr and no JSON object, and a script reading stdout's last line had nothing. Such a failure
    ends stdout with the same object as any other: {"status": "failed", "error": ..., "exit_code": ...}.
    A value Typer's pydantic coercion refused is named in the message (it said only 'Input should be a
    valid integer'). A URL's or a keyword DSN's secret in the value is shown `***` (`redact_log_text`: Click named
    the value as given, `--horizon 'postgresql://u:pw@h/db'`, secrets52)."""
    from flowcast.cli import common
    from flowcast.redaction import redact_log_text

    emitted = common._json_emitted
    try:
        yield
    except _OptionError as exc:
        _name_refused_value(exc)
        _point_to_the_data_option(exc, args)
        if isinstance(message := getattr(exc, "message", None), str):
            exc.message = redact_log_text(message)
        if wants_json(args) and common._json_emitted == emitted:
            common.emit_json({"status": "failed", "error": exc.format_message(),
                              "exit_code": getattr(exc, "exit_code", 2)})
        raise


# options other tools name the data file with: `flowcast run --file x.csv` was told 'No such option: --file
# (Possible options: --freq)', pointing at an option that has nothing to do with the file
_FILE_OPTIONS = ("--file", "--input", "--csv", "--path")


def _point_to_the_data_option(exc: Exception, args: Sequence[str]) -> None:
    """An unknown option that other tools name the data file with (`_FILE_OPTIONS`) is told what to write instead,
    with the file given (`No such option: --file. The data file goes as the first argument: flowcast run x.csv (or
    --data x.csv)`), in place of Click's near names ('--freq'). Only for a command that reads a file (its PATH
    argument or --data); other errors are left as they are."""
    name = getattr(exc, "option_name", None)
    ctx = getattr(exc, "ctx", None)
    if not isinstance(name, str) or name not in _FILE_OPTIONS or ctx is None or not hasattr(exc, "possibilities"):
        return
    takes_path = any(p.name == "path" and not isinstance(p, TyperOption) for p in ctx.command.params)
    takes_data = any("--data" in getattr(p, "opts", []) for p in ctx.command.params)
    if not (takes_path or takes_data):
        return
    given = list(args)
    file = next((a.split("=", 1)[1] for a in given if a.startswith(f"{name}=")), None)
    if file is None and name in given and given.index(name) + 1 < len(given):
        file = given[given.index(name) + 1]
    file = shlex.quote(file) if file and not file.startswith("-") else "FILE"
    command = " ".join(["flowcast", *ctx.command_path.split()[1:]])  # (a test runner names the root otherwise)
    if takes_path:
        where = f"as the first argument: {command} {file}" + (f" (or --data {file})" if takes_data else "")
    else:
        where = f"as --data: {command} --data {file}"
    exc.message = f"No such option: {name}. The data file goes {where}"  # type: ignore[attr-defined]
    exc.possibilities = None


# commands other tools show a home's state with: `flowcast status` (what a new user tried first) was told only
# 'No such command', no near name among flowcast's
_STATE_COMMANDS = ("status", "state", "info", "show", "list", "ls")


def _point_to_the_state_commands(exc: Exception, args: Sequence[str]) -> None:
    """An unknown command that other tools show their state with (`_STATE_COMMANDS`) is told which commands show what
    a home holds: its production models, its published forecasts, their realized accuracy. Other errors are left as
    they are (Typer's near names: 'model' is told 'models')."""
    if not args or args[0] not in _STATE_COMMANDS or not isinstance(getattr(exc, "message", None), str):
        return
    exc.message = (f"No such command {args[0]!r}. What a home holds: flowcast models list (each dataset's production "  # type: ignore[attr-defined]
                   "model and versions), flowcast forecasts (what was published; --dataset NAME for one), flowcast "
                   "accuracy (how the published forecasts scored)")


def _name_refused_value(exc: Exception) -> None:
    errors = getattr(exc.__cause__, "errors", None)
    message = getattr(exc, "message", None)
    if not callable(errors) or not isinstance(message, str) or "(got " in message:
        return
    try:
        given = errors()[0]["input"]
    except (LookupError, TypeError, ValueError):
        return
    exc.message = f"{message} (got {given!r})"  # type: ignore[attr-defined]


def plain_metavars(params: Sequence[Any], ctx: Any) -> None:
    """Each option's value in --help as a person types it: none for a flag (`--json`, `--help` showed `<bool>`, as if
    `--json true` were read), one value for an option given again for each (`--id-col <str>`, shown `<list[str]>`),
    `<int>` for a bounded number (`--limit <int range>`; its bound stays beside it, `[x>=1]`). A metavar a command
    set is kept."""
    for param in params:
        if not isinstance(param, TyperOption) or param.metavar is not None:
            continue
        if param.is_flag:
            param.metavar = ""
        elif param.multiple:  # '<list[str]>': '<str>' (a choice's '<list[a|b]>': '<a|b>')
            param.metavar = re.sub(r"^<list\[(.*)\]>$", r"<\1>", param.display_type(ctx))
        elif param.type_descriptor.is_ranged:
            param.metavar = f"<{param.bare_type()}>"


class HelpGroup(TyperGroup):
    """A command group whose --help, and each of its commands', show a value only for options that take one
    (`plain_metavars`)."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        plain_metavars([option], ctx)
        return option

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None and not isinstance(command, HelpGroup):  # a group fixes its own when asked
            plain_metavars([*command.params, command.get_help_option(ctx)], ctx)
        return command


class FlowcastGroup(HelpGroup):
    """The `flowcast` group: option errors of any command say what was refused, and in JSON with --json."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except _OptionError as exc:
            _point_to_the_state_commands(exc, args)
            raise

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        given = ctx.meta.setdefault(_ARGS, list(args))
        with _option_errors(given):
            return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        from flowcast.streams import guard

        guard()  # a console that goes away (a pipe closed, a worker killed) silences the output, not the run
        try:
            with _option_errors(ctx.meta.get(_ARGS, [])):
                return super().invoke(ctx)
        finally:
            _flush_events()


def _flush_events() -> None:
    """The events the command queued sent before it exits (`events.flush`), where Prefect's exit hook sent them
    printing `EventsWorker - Still processing items: 1 items remaining...` on stderr (a refusal before Prefect sends
    its event and exits at once). Prefect not imported: no event was queued, nothing to import it for."""
    import sys

    if "prefect.events.worker" not in sys.modules:
        return
    from flowcast import events

    events.flush()


app = typer.Typer(
    name="flowcast",
    help="Batch forecasting pipeline: validate data, train RNN/LSTM/GRU models, publish forecasts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    cls=FlowcastGroup,
)
models_app = typer.Typer(help="The model registry: list versions, promote or roll back.", no_args_is_help=True,
                         rich_markup_mode="markdown", cls=HelpGroup)
app.add_typer(models_app, name="models")
