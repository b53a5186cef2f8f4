"""Test support shared by the test suite, the reliability tools and the benchmarks."""
