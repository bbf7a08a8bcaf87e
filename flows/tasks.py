"""The Prefect tasks the flows use (re-exported from flowcast.flows.tasks, where they live)."""

from flowcast.flows.tasks import *  # noqa: F401,F403
