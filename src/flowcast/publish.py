"""Deprecated: the forecast store moved to `flowcast.store` (forecasts keyed by dataset and as_of).

A thin re-export kept while other branches move their imports (remove it once nothing imports
it). `ForecastStore(warehouse_dir)` here is the embedded store, as before; its methods now take
the dataset: publish(..., dataset=...), read(dataset=...), as_ofs(dataset), has(dataset, as_of),
receipt_of(dataset, as_of). New code: `flowcast.store.open_store(settings)`.
"""

from __future__ import annotations

from flowcast.store import (  # noqa: F401
    EmbeddedStore,
    ForecastContractError,
    PublishReceipt,
    content_hash,
    open_store,
    published_order,
    quantile_columns,
    validate_forecasts,
)
from flowcast.store import EmbeddedStore as ForecastStore  # noqa: F401
