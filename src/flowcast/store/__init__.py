"""The forecast store: forecasts keyed by (dataset, as_of) and the realized-accuracy table,
behind one interface (`ForecastStore`) with two implementations.

    contract.py      what a forecast (and a realized-accuracy) frame must be; column order
    hashing.py       the content hash of published forecasts
    base.py          receipt, interface, fault hook, the preparation every backend shares
    parquet.py       the Parquet dataset, one file per key (local folder or object store)
    duckdb_views.py  DuckDB views over the Parquet dataset (no second copy)
    embedded.py      the embedded store: Parquet + DuckDB views (the default)
    migrate.py       stores written before forecasts were keyed by dataset
    postgres.py      PostgreSQL (store.url = postgresql://...)
    fs.py            an fsspec file layer for models, checkpoints and reports at a URL
    factory.py       open_store(settings)

Publishing a (dataset, as_of) replaces exactly that key, atomically: never a mix of two
publishes, never a duplicate row, never another key touched. Readers never block writers.
"""

from __future__ import annotations

from flowcast.store.base import ForecastStore, PublishReceipt
from flowcast.store.contract import (
    ForecastContractError,
    published_order,
    quantile_columns,
    validate_forecasts,
    validate_realized,
    value_columns,
)
from flowcast.store.embedded import EmbeddedStore
from flowcast.store.factory import open_store
from flowcast.store.hashing import content_hash

__all__ = [
    "EmbeddedStore", "ForecastContractError", "ForecastStore", "PublishReceipt", "content_hash", "open_store",
    "published_order", "quantile_columns", "validate_forecasts", "validate_realized", "value_columns",
]
