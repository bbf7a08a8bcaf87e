"""The Prefect tasks the flows use (they live in flowcast.flows.tasks, importable from anywhere)."""

from flowcast.flows.tasks import (
    backtest_task,
    baseline_task,
    cached_preprocess,
    fingerprint_task,
    ingest_task,
    predict_task,
    preprocess_task,
    promote_task,
    publish_task,
    quarantine_task,
    register_task,
    train_task,
    validate_task,
)

__all__ = [
    "backtest_task", "baseline_task", "cached_preprocess", "fingerprint_task", "ingest_task", "predict_task",
    "preprocess_task", "promote_task", "publish_task", "quarantine_task", "register_task", "train_task",
    "validate_task",
]
