"""`flowcast forecasts` (read published forecasts) and `flowcast models list|show|promote|rollback`."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from flowcast.cli.app import app, models_app
from flowcast.cli.common import (
    ConfigOpt,
    HomeOpt,
    JsonOpt,
    cli_errors,
    console,
    emit_json,
    out,
    parse_as_of,
    resolve_settings,
)
from flowcast.errors import ConfigError, RegistryError

FORMATS = ("table", "csv", "json")


def _jsonable(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


@app.command("forecasts")
@cli_errors
def forecasts(
    as_of: Annotated[str | None, typer.Option("--as-of", help="only this as_of (ISO date or timestamp)")] = None,
    unique_id: Annotated[str | None, typer.Option("--unique-id", help="only this series")] = None,
    model: Annotated[str | None, typer.Option("--model", help="only forecasts of this model")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json (one array of row objects)")] = "table",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="at most this many rows")] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Read published forecasts back (from the warehouse under FLOWCAST_HOME)."""
    import polars as pl

    from flowcast.publish import ForecastStore

    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {list(FORMATS)}, got {fmt!r}")
    settings = resolve_settings(config=config, home=home)
    store = ForecastStore(settings.warehouse_dir)
    frame = store.read(as_of=parse_as_of(as_of), unique_id=unique_id, model=model)
    if limit is not None:
        frame = frame.head(limit)
    if fmt == "json":
        rows = [{k: _jsonable(v) for k, v in r.items()} for r in frame.iter_rows(named=True)]
        sys.stdout.write(json.dumps(rows) + "\n")
        sys.stdout.flush()
        return
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
        sys.stdout.flush()
        return
    if frame.height == 0:
        filters = {k: v for k, v in {"as_of": as_of, "unique_id": unique_id, "model": model}.items() if v}
        published = store.as_ofs() if filters else []
        known = (f"; published as_of: {', '.join(t.isoformat() for t in published[-10:])}"
                 f"{f' (last 10 of {len(published)})' if len(published) > 10 else ''}") if published else ""
        console.print(f"no published forecasts{f' matching {filters}' if filters else ''} in {settings.warehouse_dir}"
                      f"{known}", highlight=False)
        return
    # polars' own table: every row and column, never squeezed into ellipses (wide tables wrap)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=30_000, fmt_str_lengths=1000,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, fmt_float="full", tbl_formatting="UTF8_FULL_CONDENSED"):
        sys.stdout.write(f"{frame}\n")
    sys.stdout.flush()
    console.print(f"{frame.height} rows, {frame['as_of'].n_unique()} as_of, {frame['unique_id'].n_unique()} series")


def _version_row(mv: Any, production: str | None) -> dict[str, Any]:
    m = mv.metrics or {}
    return {
        "version": mv.version,
        "name": mv.name,
        "production": mv.version == production,
        "as_of": mv.as_of,
        "created_at": mv.created_at,
        **{k: m.get(k) for k in ("smape", "mase", "mae", "rmse")},
    }


def _production_or_none(reg: Any) -> Any:
    """The production version before a promote/rollback; None when there is none or it is gone
    (a dangling pointer must not block the command that repairs it)."""
    try:
        return reg.production()
    except RegistryError:
        return None


@models_app.command("list")
@cli_errors
def models_list(
    name: Annotated[str | None, typer.Option("--name", help="only versions of this model (rnn, lstm, gru)")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Registered model versions, oldest first; the production one is marked."""
    from flowcast.registry import ModelRegistry

    settings = resolve_settings(config=config, home=home)
    reg = ModelRegistry(settings.models_dir)
    problem = None
    try:
        prod = reg.production()
    except RegistryError as exc:  # still list what is there: that is how the user repairs it
        prod, problem = None, str(exc)
    prod_v = prod.version if prod else None
    rows = [_version_row(v, prod_v) for v in reg.list(name)]
    if problem:
        console.print(f"[bold yellow]warning:[/] {problem}", highlight=False)
    if json_out:
        emit_json({"production": prod_v, "versions": rows, **({"problem": problem} if problem else {})})
        return
    if not rows:
        console.print(f"no registered models in {settings.models_dir}")
        return
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    for c in ("", "version", "name", "as_of", "created_at", "smape", "mase", "mae", "rmse"):
        table.add_column(c, overflow="fold")  # timestamps wrap on a narrow terminal instead of ending in '…'
    for r in rows:
        fmt = lambda v: "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
        r = {**r, **{c: (r[c] or "").replace("T", " ").removesuffix(":00") for c in ("as_of", "created_at")}}
        table.add_row("*" if r["production"] else "", *[fmt(r[c]) for c in
                      ("version", "name", "as_of", "created_at", "smape", "mase", "mae", "rmse")])
    out.print(table)
    console.print(f"production: {prod_v or 'none'}")


@models_app.command("show")
@cli_errors
def models_show(
    version: Annotated[str, typer.Argument(help="a version from `flowcast models list`")],
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Everything recorded about one version (JSON)."""
    from flowcast.registry import ModelRegistry

    settings = resolve_settings(config=config, home=home)
    emit_json(ModelRegistry(settings.models_dir).get(version).to_dict())


@models_app.command("promote")
@cli_errors
def models_promote(
    version: Annotated[str, typer.Argument(help="the version to put in production")],
    reason: Annotated[str, typer.Option("--reason", help="why (kept in the promotion history)")] = "manual promotion",
    at: Annotated[str | None, typer.Option("--at", help="timestamp recorded with the promotion (ISO)")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Make VERSION the production model (atomic pointer swap)."""
    from flowcast.registry import ModelRegistry

    settings = resolve_settings(config=config, home=home)
    reg = ModelRegistry(settings.models_dir)
    before = _production_or_none(reg)
    mv = reg.promote(version, reason=reason, at=parse_as_of(at))
    console.print(f"production: {before.version if before else 'none'} -> [bold]{mv.version}[/]")
    if json_out:
        emit_json({"production": mv.version, "previous": before.version if before else None})


@models_app.command("rollback")
@cli_errors
def models_rollback(
    reason: Annotated[str, typer.Option("--reason", help="why (kept in the promotion history)")] = "manual rollback",
    at: Annotated[str | None, typer.Option("--at", help="timestamp recorded with the rollback (ISO)")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Put the previous production version back."""
    from flowcast.registry import ModelRegistry

    settings = resolve_settings(config=config, home=home)
    reg = ModelRegistry(settings.models_dir)
    before = _production_or_none(reg)
    mv = reg.rollback(reason=reason, at=parse_as_of(at))
    console.print(f"production: {before.version if before else 'none'} -> [bold]{mv.version}[/] (rolled back)")
    if json_out:
        emit_json({"production": mv.version, "previous": before.version if before else None})
