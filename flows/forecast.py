"""Entrypoint for `prefect deploy` (deployments/prefect.yaml): the flow lives in
flowcast.flows.forecast so that the installed `flowcast` command can import it from anywhere."""

from flowcast.flows.forecast import forecast_flow

__all__ = ["forecast_flow"]

if __name__ == "__main__":
    forecast_flow()
