"""Benchmark suite for ignite_cache: ``benchmarks/run.sh [--quick]`` or ``python -m benchmarks``."""
