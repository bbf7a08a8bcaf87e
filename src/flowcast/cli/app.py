"""The Typer application and the `models` sub-command group."""

import typer

app = typer.Typer(
    name="flowcast",
    help="Batch forecasting pipeline: validate data, train RNN/LSTM/GRU models, publish forecasts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
models_app = typer.Typer(help="The model registry: list versions, promote or roll back.", no_args_is_help=True,
                         rich_markup_mode="markdown")
app.add_typer(models_app, name="models")
