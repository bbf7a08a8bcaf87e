"""`flowcast` commands: train (filled in by its area)."""

from flowcast.cli.app import app, models_app  # noqa: F401
