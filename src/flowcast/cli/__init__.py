"""The `flowcast` command. Each area registers its commands on the one Typer app."""

from flowcast.cli import accuracy as _accuracy  # noqa: F401  accuracy
from flowcast.cli import automations as _automations  # noqa: F401  automations apply|list
from flowcast.cli import data as _data  # noqa: F401  validate
from flowcast.cli import gc as _gc  # noqa: F401  gc
from flowcast.cli import pipeline as _pipeline  # noqa: F401  run, backfill, serve
from flowcast.cli import store as _store  # noqa: F401  forecasts, models
from flowcast.cli import train as _train  # noqa: F401  train
from flowcast.cli import tune as _tune  # noqa: F401  tune
from flowcast.cli.app import app

__all__ = ["app"]
