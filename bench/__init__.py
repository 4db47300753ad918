"""Benchmarks: each prints one JSON document. Run with `python -m bench.NAME`."""
