"""Benchmarks: ``python -m benchmarks interp`` (see RESULTS.md)."""
