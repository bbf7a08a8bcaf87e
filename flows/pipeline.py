"""Entrypoint for `prefect deploy` (deployments/prefect.yaml): the flow lives in
flowcast.flows.pipeline so that the installed `flowcast` command can import it from anywhere."""

from flowcast.flows.pipeline import retrain_flow

__all__ = ["retrain_flow"]

if __name__ == "__main__":
    retrain_flow()
