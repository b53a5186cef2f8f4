"""The engine tests: the engine and what it is built of (instruments, fixed income,
economics, ledger, journal, trading schedule) and the golden stream (``testkit/golden.py``,
data in ``tests/data/golden``). No fixture is shared by these modules: each keeps its own."""
