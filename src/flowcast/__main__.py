"""`python -m flowcast ...` runs the `flowcast` command (the same Typer app as the installed script)."""

from flowcast.cli import app

if __name__ == "__main__":
    app(prog_name="flowcast")
