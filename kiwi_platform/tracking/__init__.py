"""MLflow-side helpers: the pyfunc flavour of a Kiwi-Edit checkpoint and the lineage tag names."""
