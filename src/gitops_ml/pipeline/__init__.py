"""The DVC stages: ingest, validate, split, train, evaluate, export."""
