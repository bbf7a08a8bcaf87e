"""`flowcast train`: prepare a dataset and train one model (rnn | lstm | gru) on it.

The run goes to `<home>/models/runs/<source>_<model>_<as_of>/` (checkpoints, meta.json, logs);
the same command with `--resume` continues a killed run from its last checkpoint. With --json
the artifact summary is one JSON object on the last line of stdout; progress goes to stderr.
"""

from __future__ import annotations

from typing import Annotated, Any

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
    parse_run_as_of,
    resolve_settings,
    said,
    source_options,
    warn,
)
from flowcast.config import ModelConfig
from flowcast.errors import ConfigError
from flowcast.figures import duration_text


def _default(key: str) -> Any:
    return ModelConfig.model_fields[key].default


# the defaults said are the configuration's (config.py, where they live): an option left out keeps [model]'s value.
# `flowcast run`'s per-frequency recipes (monthly: forking, 600 steps) are not applied here: the model trained is
# the one asked for, with the settings asked for
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="rnn | lstm | gru | mlp (windowed only)")]
DevicesOpt = Annotated[str | None, typer.Option("--devices", help=(
    f"number of devices (DDP when > 1), or auto: every GPU (default: [model] devices, {_default('devices')})"))]
AcceleratorOpt = Annotated[str | None, typer.Option("--accelerator", help=(
    f"cpu | gpu | auto (default: [model] accelerator, {_default('accelerator')}: a GPU when there is one)"))]
MaxStepsOpt = Annotated[int | None, typer.Option("--max-steps", help=(
    f"optimisation steps (default: [model] max_steps, {_default('max_steps')}; flowcast run's per-frequency "
    "recipes do not apply here)"))]
ModeOpt = Annotated[str | None, typer.Option("--mode", help=(
    f"windowed | forking (default: [model] mode, {_default('mode')})"))]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="continue the run from its last checkpoint")]


def _devices(value: str | None) -> int | str | None:
    if value is None or value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise ConfigError(f"--devices must be a positive integer or 'auto', got {value!r}") from None
    if n < 1:
        raise ConfigError(f"--devices must be a positive integer or 'auto', got {value!r}")
    return n


@app.command("train")
@cli_errors
@source_options
def train_cmd(
    model: ModelOpt = "lstm",
    *,
    source: SourceOptions,
    as_of: AsOfOpt = None,
    horizon: HorizonOpt = None,
    devices: DevicesOpt = None,
    accelerator: AcceleratorOpt = None,
    max_steps: MaxStepsOpt = None,
    mode: ModeOpt = None,
    resume: ResumeOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train an RNN, LSTM, GRU or MLP global model on a dataset (in its own process; DDP with --devices N)."""
    if model not in ("rnn", "lstm", "gru", "mlp"):
        raise ConfigError(f"--model must be rnn, lstm, gru or mlp, got {model!r}")
    if accelerator is not None and accelerator not in ("cpu", "gpu", "auto"):
        raise ConfigError(f"--accelerator must be cpu, gpu or auto, got {accelerator!r}")
    if mode is not None and mode not in ("windowed", "forking"):
        raise ConfigError(f"--mode must be windowed or forking, got {mode!r}")
    settings = resolve_settings(
        **source.settings_args(), horizon=horizon, config=config, home=home, as_of=as_of,
        model={"devices": _devices(devices), "accelerator": accelerator, "max_steps": max_steps, "mode": mode},
    )
    from flowcast.data.preprocess import prepare_data
    from flowcast.data.validate import as_of_label
    from flowcast.models.train import train_model

    run_as_of = parse_run_as_of(as_of, settings)
    prepared = prepare_data(settings, run_as_of, warn=warn)
    td = prepared.training
    run_dir = settings.models_dir / "runs" / f"{prepared.source.name}_{model}_{as_of_label(run_as_of)}"
    cfg = settings.model
    console.print(
        f"training [bold]{model}[/] ({cfg.mode}) on {td.n_series} series, {td.n_obs} rows, horizon {td.meta.horizon}"
        f" -> {said(run_dir)}", highlight=False, markup=True,
    )

    from flowcast.shared import jobs_location, mirror_of
    from flowcast.store.fs import FileStore

    mirror = mirror_of(settings, run_dir)  # with a shared home: the checkpoints another machine resumes from
    shared_ckpt = mirror is not None and FileStore(mirror, storage_options=settings.shared_options).exists(
        "checkpoints/last.ckpt")
    from flowcast.models.train import network_data, not_resumable, training_nodes

    blocker = (not_resumable(run_dir, network_data(td), cfg, model, nodes=training_nodes(settings.distributed))
               if resume else None)
    if blocker is not None:  # train_model starts over: said here, where the person who asked to resume reads
        console.print(f"[yellow]{said(blocker)}[/]: training from the start", highlight=False, markup=True)
    elif resume and not (run_dir / "checkpoints" / "last.ckpt").exists() and not shared_ckpt:
        console.print(f"[yellow]no checkpoint in {said(run_dir)} to resume from[/] (one is written every "
                      f"{cfg.checkpoint_every} steps, model.checkpoint_every): training from the start",
                      highlight=False, markup=True)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # the training process reports each validation; a rich bar in this process follows it
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as bar:
        task = bar.add_task(f"training {model}", total=cfg.max_steps if cfg.max_steps > 0 else None)

        def show(e: dict) -> None:
            val = f" val_loss {e['val_loss']:.4f}" if e.get("val_loss") is not None else ""
            trn = f" train_loss {e['train_loss']:.4f}" if e.get("train_loss") is not None else ""
            bar.update(task, completed=e["step"])
            bar.console.print(f"  step {e['step']}/{e['max_steps']} epoch {e['epoch']}{trn}{val}", highlight=False)

        art = train_model(td, cfg, run_dir, cell=model, resume=resume, on_progress=show,
                          distributed=settings.distributed, jobs=jobs_location(settings),
                          storage_options=settings.shared_options, mirror=mirror)
        bar.update(task, completed=art.metrics.get("steps") or 0)
    m = art.metrics
    console.print(
        f"[green]done[/]: {m['steps']} steps in {duration_text(m['train_seconds'])}, best val_loss "
        f"{m['val_loss'] if m['val_loss'] is None else round(m['val_loss'], 4)}", highlight=False, markup=True,
    )
    if json_out:
        emit_json({"model": model, "path": str(art.path), "metrics": m, "n_series": td.n_series,
                   "horizon": td.meta.horizon, "mode": cfg.mode, "as_of": td.meta.as_of})


NodeRankOpt = Annotated[int | None, typer.Option("--node-rank", help="this machine's rank, 1..nnodes-1 "
                                                 "(default: distributed.node_rank)")]
MaxJobsOpt = Annotated[int | None, typer.Option("--max-jobs", help="stop after this many trainings")]
StopOpt = Annotated[bool, typer.Option("--stop", help="node 0, after its flow: tell the joining nodes to exit "
                                        "once no training is pending")]
IdleOpt = Annotated[float | None, typer.Option("--idle", help="stop when no training was posted for this many "
                                               "seconds (default: distributed.join_timeout)")]


@app.command("train-node")
@cli_errors
def train_node_cmd(
    node_rank: NodeRankOpt = None,
    max_jobs: MaxJobsOpt = None,
    idle: IdleOpt = None,
    stop: StopOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Join multi-node trainings as node R: every training that node 0 (the machine whose flow
    trains) posts is run here too, under torchrun's rendezvous ([distributed] section)."""
    settings = resolve_settings(config=config, home=home)
    from flowcast.models.nodes import job_work_dir, serve_jobs, stop_jobs
    from flowcast.models.train import resolve_devices
    from flowcast.shared import jobs_location

    dist = settings.distributed
    rank = dist.node_rank if node_rank is None else node_rank
    where = jobs_location(settings)
    if stop:
        console.print(f"told the nodes of {dist.rdzv_id} to stop: {stop_jobs(where, dist, settings.shared_options)}",
                      highlight=False)
        return
    console.print(f"node {rank} of {dist.nnodes}: joining the trainings posted to {where}/{dist.rdzv_id} "
                  f"(rendezvous {dist.rdzv_endpoint})", highlight=False)
    results = serve_jobs(where, dist, node_rank=rank, nproc=resolve_devices(settings.model),
                         work_dir=job_work_dir(settings.home), storage_options=settings.shared_options,
                         max_jobs=max_jobs, idle_timeout=idle)
    for r in results:
        colour = "green" if r.returncode == 0 else "red"
        console.print(f"[{colour}]{said(r.job)}[/]: exit code {r.returncode}", highlight=False, markup=True)
        if r.returncode:
            console.print(r.log, highlight=False)
    if json_out:
        emit_json({"node_rank": rank, "jobs": [{"job": r.job, "returncode": r.returncode} for r in results]})
    if any(r.returncode for r in results):
        raise typer.Exit(1)
