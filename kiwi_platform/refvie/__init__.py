"""RefVIE data pipeline (docs/contract.md §1.2, stages 2-4): edit regions, reference synthesis, quality control."""
