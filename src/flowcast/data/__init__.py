"""Data half of the pipeline: sources, schemas, validation, preprocessing, bundled datasets."""
