"""The preprocessing cache of the flows (`flows.tasks`): the cache key holds the horizon preprocessing resolves, not
the one given (cache32)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flow_helpers import AS_OF, TINY_OVERRIDES, source_dict

from flowcast.config import Settings, SourceConfig, load_settings

pytestmark = pytest.mark.usefixtures("prefect_api")


def _inputs(tiny_csv: Path, home: Path, **given) -> tuple[Settings, SourceConfig, object]:
    from flowcast.data.datasets import resolve_source
    from flowcast.data.sources import ingest
    from flowcast.data.validate import validate

    settings = load_settings(source=source_dict(tiny_csv), home=str(home), **{**TINY_OVERRIDES, **given})
    source = resolve_source(settings)
    return settings, source, validate(ingest(source, AS_OF), source, settings.validation).valid


def test_a_horizon_given_equal_to_the_sources_is_the_same_cache_entry(tiny_csv, tmp_path):
    """Regression (cache32): the cache key held the horizon as given, so a run given the source's own horizon (6)
    missed the entry of a run given none and preprocessed the same data again. The key holds the resolved horizon;
    another horizon is another entry. The registry's identity (`preprocessing_identity`, recorded in registered
    versions' fingerprints) keeps the horizon as given, as the versions registered before recorded it."""
    from prefect import flow

    from flowcast.flows.tasks import cached_preprocess, preprocess_cache_key, preprocessing_identity

    home = tmp_path / "home"
    runs = {h: _inputs(tiny_csv, home, horizon=h) for h in (None, 6, 3)}

    def key(h: int | None) -> str:
        settings, source, _ = runs[h]
        return preprocess_cache_key(None, {"settings": settings, "source": source, "as_of": AS_OF,
                                           "fingerprint": "fp"})

    assert key(None) == key(6) != key(3)
    assert [preprocessing_identity(runs[h][0])["horizon"] for h in (None, 6)] == [None, 6]

    @flow
    def run(h: int | None) -> str:
        settings, source, valid = runs[h]
        return cached_preprocess(settings)(valid, source, settings, AS_OF, "fp", return_state=True).name

    assert [run(None), run(6), run(3)] == ["Completed", "Cached", "Completed"]
