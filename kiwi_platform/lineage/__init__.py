"""Lineage: which data, code and config made a model, walked back from MLflow to the raw files."""
