"""The Typer application and the `models` sub-command group."""

import os

import typer

# Prefect's temporary server (started when no PREFECT_API_URL is set) reports usage to Prefect and,
# on a machine without internet, logs "ERROR ... Failed to send telemetry" in every run: a new user's
# first `make run` showed an error that was none. Off unless the user sets it.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(
    name="flowcast",
    help="Batch forecasting pipeline: validate data, train RNN/LSTM/GRU models, publish forecasts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="The model registry: list versions, promote or roll back.", no_args_is_help=True)
app.add_typer(models_app, name="models")
