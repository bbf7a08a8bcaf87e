"""Deprecated: the forecast store moved to `flowcast.store` (forecasts keyed by dataset and as_of).

A thin re-export kept while other branches move their imports; new code imports flowcast.store.
"""

from __future__ import annotations

from flowcast.store import (  # noqa: F401
    EmbeddedStore,
    ForecastContractError,
    ForecastStore,
    PublishReceipt,
    content_hash,
    open_store,
    published_order,
    quantile_columns,
    validate_forecasts,
)
