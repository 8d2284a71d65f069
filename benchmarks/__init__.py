"""Benchmark suite: `python -m benchmarks [--only NAME ...] [--repeats N]` (not part of the tests)."""
