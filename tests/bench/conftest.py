"""The benchmark-tool tests (the report writer of ``python -m bench``); the benchmarks
themselves are ``bench/bench_*.py``, run with ``pytest bench/``. No fixture is shared by
these modules: each keeps its own."""
