"""Fixtures of the flow tests (helpers in flow_helpers.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flow_helpers import AS_OF, TINY_OVERRIDES, source_dict, write_series

from flowcast.registry import ModelRegistry


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    return write_series(tmp_path / "raw" / "sales.csv")


@pytest.fixture
def flow_kwargs(tiny_csv, tmp_path) -> dict:
    """Keyword arguments every flow accepts: the tiny source, a fresh home, tiny settings."""
    return {"source": source_dict(tiny_csv), "home": str(tmp_path / "home"), "overrides": TINY_OVERRIDES}


@pytest.fixture
def prefect_logging() -> None:
    """Prefect's logging configured before the test runs (it configures it at the first flow run of the process,
    replacing the root logger's handlers, caplog's among them: a test reading caplog that ran first saw no record)."""
    from prefect.logging.configuration import setup_logging

    setup_logging()


@pytest.fixture(scope="session")
def trained(tmp_path_factory, prefect_api):
    """One retrain run (as_of 2019-06-01, refit_all so that gru is registered) on tiny data, its
    summary, and gru promoted by hand (a 5-step model does not beat seasonal naive, and the
    forecast flow needs a production model)."""
    from flowcast.flows import retrain_flow

    root = tmp_path_factory.mktemp("trained")
    csv = write_series(root / "raw" / "sales.csv")
    kw = {"source": source_dict(csv), "home": str(root / "home"), "overrides": TINY_OVERRIDES}
    summary = retrain_flow(as_of=AS_OF, refit_all=True, **kw)
    ModelRegistry(Path(kw["home"]) / "models").promote(summary["registered"]["gru"], reason="test fixture")
    return kw, summary


@pytest.fixture
def production_home(trained, tmp_path) -> dict:
    """A private copy of the trained home, so that tests do not see each other's partitions."""
    kw, _ = trained
    home = tmp_path / "home"
    shutil.copytree(kw["home"], home)
    return {**kw, "home": str(home)}
