"""`publish(..., keep_same=True)`: a key that holds these very forecasts (same model version, same rows and values)
is left as it is, checked under the key's lock, on every backend; different forecasts replace it as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from publisher import make_forecast
from store_helpers import AS_OF, DS, H, publish, variant_of

from flowcast.errors import AlreadyPublished, SamePublished
from flowcast.store import EmbeddedStore

N = 5


def test_the_same_forecasts_are_not_published_again(backend):
    store = backend.store
    first = publish(store, make_forecast(1, N, H, AS_OF), run_id="first")
    with pytest.raises(SamePublished, match=r"already holds these forecasts \(run first, lstm-v1, 30 rows") as held:
        publish(store, make_forecast(1, N, H, AS_OF), run_id="second", keep_same=True)
    assert isinstance(held.value, AlreadyPublished)  # the flows' refused-publish path takes it
    assert held.value.held["run_id"] == "first" and held.value.held["content_hash"] == first.content_hash
    assert store.receipt_of(DS, AS_OF)["run_id"] == "first"  # nothing written: the first run's publish stays
    assert set(store.read(dataset=DS, as_of=AS_OF)["run_id"]) == {"first"}


@pytest.mark.parametrize("other", ["values", "version"])
def test_other_forecasts_replace_the_key_as_before(backend, other):
    store = backend.store
    publish(store, make_forecast(1, N, H, AS_OF), run_id="first")
    fc = make_forecast(2 if other == "values" else 1, N, H, AS_OF)
    again = store.publish(fc, dataset=DS, as_of=AS_OF, model="lstm", run_id="second", created_at=AS_OF,
                          model_version="lstm-v1" if other == "values" else "lstm-v9", keep_same=True)
    assert not again.unchanged and again.replaced_rows == N * H
    assert set(store.read(dataset=DS, as_of=AS_OF)["run_id"]) == {"second"}
    assert variant_of(store.read(dataset=DS, as_of=AS_OF)) == ({2} if other == "values" else {1})


def test_without_keep_same_the_same_forecasts_replace_the_key(backend):
    store = backend.store
    publish(store, make_forecast(1, N, H, AS_OF), run_id="first")
    again = publish(store, make_forecast(1, N, H, AS_OF), run_id="second")
    assert again.unchanged and store.receipt_of(DS, AS_OF)["run_id"] == "second"


def test_a_damaged_file_of_the_same_forecasts_is_replaced(tmp_path):
    """The footer says the same content hash, a data page does not: the rows are not the same, the key is repaired."""
    from test_embedded import _damage_page

    store = EmbeddedStore(tmp_path / "wh")
    publish(store, make_forecast(1, N, H, AS_OF), run_id="first")
    _damage_page(Path(store.data.current("forecasts", DS, AS_OF)))
    assert store.verify(DS, AS_OF)[1]  # damaged
    again = publish(store, make_forecast(1, N, H, AS_OF), run_id="second", keep_same=True)
    assert again.rows == N * H and store.receipt_of(DS, AS_OF)["run_id"] == "second"
    assert store.verify(DS, AS_OF) == (1, [])
