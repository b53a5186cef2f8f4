"""The reliability tests: small, time-bounded runs of the fault harness
(``reliability/faults.py``) and the fuzz tests, which share the fuzz campaign's
generators (``testkit/fuzzgen.py``, ``testkit/fuzzdata.py``). No fixture is shared by
these modules: each keeps its own."""
