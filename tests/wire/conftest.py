"""The wire tests: the JSON codec and the topics (``feeds/codec.py``, ``feeds/topics.py``).
No fixture is shared by these modules: each keeps its own."""
