"""RefVIE data pipeline (SPEC section 1, stages 2-4): edit regions, reference synthesis, quality control."""
