"""Prefect flow entrypoints for `prefect deploy`; the flows live in `flowcast.flows`."""
