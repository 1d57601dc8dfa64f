"""Local fakes of external services (lakeFS, ...) so tests run the real client code without a network."""
