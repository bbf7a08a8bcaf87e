"""Entrypoint for `prefect deploy` (deployments/prefect.yaml): the flow lives in
flowcast.flows.backfill so that the installed `flowcast` command can import it from anywhere."""

from flowcast.flows.backfill import backfill_flow

__all__ = ["backfill_flow"]

if __name__ == "__main__":
    backfill_flow()
