"""Benchmarks: run with `make bench` (all) or `python -m bench NAME`."""
