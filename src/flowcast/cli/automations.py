"""`flowcast automations apply|list`: the Prefect automations flowcast ships, on the server
named by PREFECT_API_URL."""

from __future__ import annotations

import typer

from flowcast.cli.app import HelpGroup, app
from flowcast.cli.common import (
    ConfigOpt,
    HomeOpt,
    JsonOpt,
    cli_errors,
    console,
    emit_json,
    out,
    resolve_settings,
)

automations_app = typer.Typer(help="Prefect automations that notify on failed runs, bad data, degraded accuracy "
                                   "and missed publishes.", no_args_is_help=True, cls=HelpGroup)
app.add_typer(automations_app, name="automations")


def _api_hint() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return url or "Prefect's temporary local API (set PREFECT_API_URL to your server)"


@automations_app.command("apply")
@cli_errors
def apply_cmd(config: ConfigOpt = None, home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """Create or update flowcast's automations and their notification block (idempotent).

    Notifications go to [alerts] webhook_url (FLOWCAST_ALERTS__WEBHOOK_URL); without one only
    `flowcast: crash silent runs` (runs whose heartbeats stopped are marked Crashed) is applied."""
    from flowcast.ops.automations import apply
    from flowcast.ops.reaper import temporary_api

    settings = resolve_settings(config=config, home=home)
    with temporary_api():  # without PREFECT_API_URL: a watched temporary server that sends no telemetry
        done = apply(settings)
    if json_out:
        emit_json({"api": _api_hint(), "block": settings.alerts.block_name, "webhook_url": settings.alerts.webhook_url,
                   "automations": [d.to_dict() for d in done]})
        return
    for d in done:
        out.print(f"{d.action:<9} {d.name}  ({d.id})", highlight=False)
    if settings.alerts.webhook_url:
        console.print(f"notification block {settings.alerts.block_name!r} -> {settings.alerts.webhook_url} on "
                      f"{_api_hint()}", highlight=False)
    else:
        console.print(f"no [alerts] webhook_url: notifications are off; silent runs are still marked crashed on "
                      f"{_api_hint()}", highlight=False)


@automations_app.command("list")
@cli_errors
def list_cmd(json_out: JsonOpt = False) -> None:
    """flowcast's automations on the Prefect server."""
    from flowcast.ops.automations import listing
    from flowcast.ops.reaper import temporary_api

    with temporary_api():  # (offline, the temporary server's telemetry logged ERROR tracebacks)
        rows = listing()
    if json_out:
        emit_json({"api": _api_hint(), "automations": rows})
        return
    if not rows:
        console.print(f"no flowcast automations on {_api_hint()}: `flowcast automations apply` creates them")
        return
    for r in rows:
        out.print(f"{'on ' if r['enabled'] else 'off'} {r['name']}  ({r['id']})", highlight=False)
