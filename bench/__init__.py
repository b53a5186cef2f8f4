"""Benchmarks and replay tools for tokenbook (see bench/RESULTS.md)."""
