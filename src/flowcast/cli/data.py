"""`flowcast validate`: check a dataset and print its data quality report.

Exit codes: 0 clean, 1 rows were quarantined (written under the quarantine folder), 2 a
dataset-level failure (missing column, unreadable file, quarantine rate above the threshold,
no series left). With --json the report is one JSON object on the last line of stdout (on a
failure before any report exists: {"status": "failed", "error": ..., "exit_code": ...}); the
human-readable report then goes to stderr.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from flowcast.cli.app import app, models_app  # noqa: F401
from flowcast.cli.common import (
    AsOfOpt,
    ConfigOpt,
    HomeOpt,
    HorizonOpt,
    JsonOpt,
    SourceOptions,
    cli_errors,
    console,
    emit_json,
    out,
    parse_run_as_of,
    resolve_settings,
    source_options,
    warn,
)
from flowcast.errors import DataValidationError, FlowcastError
from flowcast.mdtext import md_plain
from flowcast.wording import plural


@app.command("validate")
@cli_errors
@source_options
def validate_cmd(
    *,
    source: SourceOptions,
    as_of: AsOfOpt = None,
    horizon: HorizonOpt = None,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Ingest, validate and preprocess a dataset; print its data quality report.

    Exit 0 when clean, 1 when rows were quarantined, 2 on a dataset-level failure."""
    from flowcast.data.preprocess import prepare_data

    failure: FlowcastError | None = None
    try:
        settings = resolve_settings(
            **source.settings_args(), horizon=horizon, config=config, home=home, as_of=as_of,
        )
        run_as_of = parse_run_as_of(as_of, settings)
        prepared = prepare_data(settings, run_as_of, warn=warn, fit_spans=True)  # as the run it checks for prepares it
        report = prepared.report
        stale = _freshness(prepared, run_as_of, settings.validation.max_staleness)
    except FlowcastError as exc:
        report = exc.report if isinstance(exc, DataValidationError) else None
        if report is None:  # no report yet: cli_errors ends --json's stdout with the failure's object
            raise
        failure = exc

    # the report is the UI's markdown; a terminal renders none of it, so its escapes are undone (`\_`: `_`)
    (console if json_out else out).print(md_plain(report.to_markdown()), markup=False, highlight=False)
    for line in [] if failure else stale:
        warn(line)
    if json_out:
        payload = report.to_dict()
        payload["status"] = "failed" if failure else ("quarantined" if report.rows_quarantined else "clean")
        if failure:  # the keys of every failed command's object (cli_errors): status, error, exit_code
            payload["error"] = str(failure)
        payload["exit_code"] = failure.exit_code if failure else (1 if report.rows_quarantined else 0)
        emit_json(payload)
    if failure:
        raise failure
    if report.rows_quarantined:
        from flowcast.data.validate import standard_time_line

        hint = standard_time_line(report.checks, prepared.source.tz)  # said once, as a run's warning says it
        console.print(
            f"{plural(report.rows_quarantined, 'row')} quarantined ({report.quarantine_rate:.2%}): "
            f"{report.quarantine_path}"
            + (f"; {hint}" if hint else ""),
            highlight=False, soft_wrap=True,  # a path folded at 80 columns ('qua' 'rantine') cannot be copied whole
        )
        raise typer.Exit(1)


def _freshness(prepared: Any, as_of: datetime | None, max_staleness: int | None) -> list[str]:
    """The data's freshness, as `flowcast run` measures it (`flowcast.data.freshness`): periods from the latest
    observation to as_of (now when no --as-of is given, as a run without one), series that ended long before the
    others, into the report; the run's warnings returned; `[validation] max_staleness` fails as it fails a run
    (validate said nothing about it: data two years old were 'clean', then every run warned or failed)."""
    from flowcast.data.freshness import (
        check_staleness,
        ended_set_aside,
        freshness,
        freshness_lines,
        instant_bounds,
    )
    from flowcast.data.periods import as_of_bound

    td = prepared.training
    measured = as_of or datetime.now(UTC)
    src = prepared.source  # on the ds axis as a run cuts its data (an end-labelled source's bound moves back)
    bound = as_of_bound(src, measured, freq=td.meta.freq)
    lengths = td.lengths()  # daily times written with an offset: each series judged by the instant, as a run does
    bounds = instant_bounds(lengths, measured, freq=td.meta.freq, tz=src.tz, aggregate=src.aggregate, time_label=src.time_label,
                      shifts=getattr(prepared, "shifts", None))
    fresh = freshness(lengths, bound, td.meta.freq, int(td.meta.horizon), ended_set_aside(prepared.summary), bounds)
    prepared.report.freshness = {**fresh.to_dict(), **({} if as_of else {"measured_at": measured.isoformat()})}
    try:
        check_staleness(fresh, max_staleness)
    except DataValidationError as exc:
        exc.report = prepared.report
        raise
    return freshness_lines(fresh, measured, src.tz)
