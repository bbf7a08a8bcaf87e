"""Data half of the pipeline: sources, schemas, validate, preprocess, bundled datasets.

Stages (plain functions, testable without Prefect):

- `datasets.resolve_source(settings) -> SourceConfig`; `datasets.load_m3(subset, cache_dir)`
- `sources.ingest(source, as_of) -> Ingested` (lazy); `remote.source_fingerprint(source)`
- `validate.validate(ingested, source, cfg) -> ValidationResult(valid, quarantined, report)`;
  `validate.write_quarantine(result, dir)`; `validate.enforce_thresholds(result, cfg, artifact=KEY)`
- `preprocess.preprocess(valid, source, settings, as_of, fingerprint) -> (TrainingData, PreprocessSummary)`
- `preprocess.prepare_data(settings, as_of, run_key) -> PreparedData`: all of the above in one call

Submodules are imported explicitly (nothing heavy is imported here, so `flowcast --help` stays fast).
"""
