"""Fault tests: the platform under concurrency and crashes, with real processes and real state."""
