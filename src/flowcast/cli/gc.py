"""`flowcast gc`: remove old models, run folders, cache entries, quarantine files and report
images by the `[retention]` policy (dry run unless --yes)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.cells import cell_len

from flowcast.cli.app import app
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
from flowcast.timekeys import is_date_only
from flowcast.wording import plural


def policy_text(retention: dict[str, Any]) -> str:
    """The retention policy as the settings that change it: '[retention] keep_versions = 3, runs_days = 30, ...,
    in_runs = true' (TOML values; it printed the Python dict, "{'keep_versions': 3, 'runs_days': 30.0, ...}")."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return f"{v:g}" if isinstance(v, float) else str(v)

    return "[retention] " + ", ".join(f"{k} = {value(v)}" for k, v in retention.items())


def middle_cut(text: str, width: int) -> str:
    """`text` in at most `width` terminal cells: as it is where it fits, else its start and its end around an
    ellipsis ('quarantine/north…/2024-01-01T00-00-00'), so a path keeps its top folder and its own name."""
    if cell_len(text) <= width:
        return text
    head, tail = "", ""
    for k in range(len(text)):  # a character to the end, then one to the start: the end names the file
        grown = (head, text[-(len(tail) + 1):]) if k % 2 == 0 else (text[:len(head) + 1], tail)
        if cell_len(grown[0]) + cell_len(grown[1]) + 1 > width:
            break
        head, tail = grown
    return f"{head}…{tail}"


def _items_table(items: list[Any], home: Path, *, title: str, width: int) -> Any:
    """gc's plan as a table of `width` columns: kind, size, and each item's path (relative to `home`) on a line of
    its own, cut in the middle where it is wider than that, with why under it. The path had a column of its own
    that folded it mid-word at 80 columns ('models/runs/sales_gru_202' over '4-01-01'); --json has every path
    whole."""
    from rich.table import Table
    from rich.text import Text

    from flowcast.ops.retention import human

    rows = [(i.kind, human(i.bytes), i.to_dict(home)["path"], i.reason) for i in items]
    kind_w = max(cell_len(r[0]) for r in [("kind",), *rows])
    size_w = max(cell_len(r[1]) for r in [("", "size"), *rows])
    room = max(width - kind_w - size_w - 3 * 2 - 4, 10)  # 3 columns: a cell of padding each side, 4 rules
    table = Table(title=title)
    table.add_column("kind", no_wrap=True)
    table.add_column("size", no_wrap=True, justify="right")
    table.add_column("path: why", overflow="fold")
    for kind, size, path, why in rows:
        table.add_row(kind, size, Text(f"{middle_cut(path, room)}\n{why}"))
    return table


@app.command("gc")
@cli_errors
def gc(
    yes: Annotated[bool, typer.Option("--yes", help="delete; without it, only list what would go")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="measure ages from this instant (default: now)")] = None,
    forecasts_before: Annotated[str | None, typer.Option(
        "--forecasts-before", help="also remove published forecasts (and their realized accuracy) of every as_of "
                                   "before this date (a date alone: that day of each dataset's source tz): only "
                                   "when asked")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="with --forecasts-before: only this dataset")] = None,
    version: Annotated[list[str] | None, typer.Option(
        "--version", help="also remove this model version even if it is a previous production model or a recorded "
                          "champion (its record withdrawn with it, the previous champion put back; never the production model); "
                          "repeat for several")] = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Remove old model versions, training runs, caches, quarantine files and report images as the retention
    policy lets go. Dry run by default.

    What the retention policy (the [retention] section of the --config file) lets go: model versions
    beyond keep_versions per dataset (never production, its predecessor, the recorded champion, a version
    a running run chose to forecast with, or a version that made forecasts still published: each is listed
    as kept, with why), training run folders
    and checkpoints, preprocessing cache entries, quarantine files and report images older than
    their days, and this home's flow runs on Prefect's temporary server (no PREFECT_API_URL) that ended
    more than prefect_runs_days ago, with their task runs, logs and artifacts. Published forecasts are removed only when asked (--forecasts-before). Dry run by
    default: prints what would go and its size."""
    from flowcast.ops.retention import PublishIndex, execute, human, plan_and_kept, total_bytes

    settings = resolve_settings(config=config, home=home)
    parsed = parse_as_of(as_of)
    now = parsed if parsed is not None else datetime.now(UTC)  # the clock is read here, at the edge
    before: datetime | date | None = parse_as_of(forecasts_before, "--forecasts-before")
    if forecasts_before is not None and is_date_only(forecasts_before):  # each dataset's day (its source's tz)
        before = date.fromisoformat(forecasts_before.strip())
    published = PublishIndex(settings)  # each publish's receipt read once (the plan's, read again where changed)
    items, kept = plan_and_kept(settings, now, versions=list(version or []), forecasts_before=before,
                                dataset=dataset, published=published)
    removed = execute(settings, items, now, published=published) if yes else []
    locks = _remove_idle_locks(settings) if yes else 0
    home_path = Path(settings.home)
    prefect_runs = _prefect_runs(settings, now, yes)
    if json_out:
        emit_json({"home": str(home_path.resolve()), "as_of": now.isoformat(), "dry_run": not yes,
                   "lock_files_removed": locks, "prefect_flow_runs": prefect_runs,
                   "items": [i.to_dict(home_path) for i in items], "bytes": total_bytes(items),
                   "removed": len(removed), "removed_bytes": total_bytes(removed),
                   "skipped": [i.to_dict(home_path) for i in items if i not in removed] if yes else [],
                   "kept": [{"version": i.version, "why": i.reason} for i in kept if i.kind == "model"],
                   "notes": [i.reason for i in kept if i.kind != "model"]})
        return
    if locks:
        out.print(f"removed {plural(locks, 'idle writer lock file')} of the forecast store", highlight=False)
    if prefect_runs and prefect_runs["flow_runs"]:
        out.print(_prefect_runs_line(prefect_runs, yes, settings.retention.prefect_runs_days), highlight=False,
                  soft_wrap=True)
    for i in kept:  # model versions that stay whatever the policy says, and why
        out.print(f"kept {i.version}: {i.reason}" if i.kind == "model" else f"note: {i.reason}",
                  highlight=False, soft_wrap=True)
    if not items:
        console.print(f"nothing to remove under {home_path} (policy: {policy_text(settings.retention.model_dump())})")
        return
    out.print(_items_table(items, home_path, title=f"{'Removed' if yes else 'Would remove'} under {home_path}",
                           width=out.width))
    if yes:
        skipped = [i for i in items if i not in removed]
        out.print(f"removed {plural(len(removed), 'item')}, {human(total_bytes(removed))}"
                  + (f"; kept {len(skipped)} that became protected meanwhile" if skipped else ""), highlight=False)
    else:
        out.print(f"{plural(len(items), 'item')}, {human(total_bytes(items))} would be removed: "
                  "run again with --yes",
                  highlight=False)


def _remove_idle_locks(settings: Any) -> int:
    """The embedded store's writer lock files that no writer holds (one per key ever written stayed for good);
    0 for other stores or when the store cannot be opened (gc's other work is done and said)."""
    from flowcast.store import open_store

    try:
        store = open_store(settings)
    except Exception:  # noqa: BLE001 - nothing to sweep: the store's own commands say what is wrong
        return 0
    sweep = getattr(store, "remove_idle_locks", None)
    return int(sweep()) if callable(sweep) else 0


def _prefect_runs(settings: Any, now: datetime, yes: bool) -> dict[str, Any] | None:
    """This home's flow runs on Prefect's temporary server that ended more than `retention.prefect_runs_days` before
    `now`: deleted with `yes` (`ops.prefect_runs`), else counted; None where runs report to a configured server or
    the temporary server has no database yet; an error (its database unreadable, locked) is said, not raised, gc's
    other work done."""
    from flowcast.ops.prefect_runs import temporary_database, vacuum
    from flowcast.redaction import redact_log_text

    cutoff = now - timedelta(days=settings.retention.prefect_runs_days)
    try:
        done = vacuum(settings.home, cutoff, dry_run=not yes)
    except Exception as exc:  # noqa: BLE001 - Prefect's database is not flowcast's: say it, keep what gc did
        out.print(f"note: the flow runs of Prefect's temporary server ({temporary_database()}) were not vacuumed: "
                  f"{type(exc).__name__}: {redact_log_text(str(exc))}", highlight=False, soft_wrap=True)
        return None
    if done is None:
        return None
    return {"database": str(temporary_database()), "ended_before": cutoff.isoformat(), "flow_runs": done.flow_runs,
            "logs": done.logs, "artifacts": done.artifacts}


def _prefect_runs_line(done: dict[str, Any], yes: bool, days: float) -> str:
    """What gc did (or would do) with the temporary server's flow runs, for a person."""
    runs = plural(done["flow_runs"], "flow run")
    what = (f"{runs} of this home that ended more than {days:g} days ago (retention.prefect_runs_days), before "
            f"{done['ended_before']}, from Prefect's temporary server ({done['database']})")
    if yes:
        return f"removed {what}, with {plural(done['logs'], 'log')} and {plural(done['artifacts'], 'artifact')}"
    return f"would remove {what}, with their task runs, logs and artifacts"
