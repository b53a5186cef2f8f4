"""Fixtures of the book tests: every rule test runs on both books, the reference and the
core (``book_cls``), through a ``CheckedBook`` (``book``); helpers and event builders are
in ``testkit/books.py``. Also the 100k-command conformance flow (``flow_100k``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from matching.reference import ReferenceBook
from testkit.books import ENGINES, LO, CheckedBook, N, load_book_cls
from testkit.flow import load_flow

GEN = Path(os.environ.get("TOKENBOOK_GEN",
                          Path(__file__).resolve().parents[3] / "shared/conformance/gen.py"))


@pytest.fixture(params=ENGINES)
def book_cls(request):
    """The book class under test: ``ReferenceBook`` or ``matching._core.Book``."""
    return load_book_cls(request.param)


@pytest.fixture
def book_engine(book_cls):
    """The engine name (``"reference"``/``"core"``) of ``book_cls``, for ``make_book``."""
    return "reference" if book_cls is ReferenceBook else "core"


@pytest.fixture
def book(book_cls):
    """A checked, unbounded book on the ladder ``[0, 20000)``."""
    return CheckedBook(book_cls(price_lo=LO, n_levels=N))


@pytest.fixture(scope="module")
def flow_100k(tmp_path_factory):
    """The COMMAND_DTYPE array of ``gen.py 100000 7`` (the shared conformance generator)."""
    if not GEN.exists():
        pytest.fail(f"conformance generator missing at {GEN}; set TOKENBOOK_GEN")
    path = tmp_path_factory.mktemp("flow") / "flow_100000_7.csv"
    with open(path, "w") as out:
        subprocess.run([sys.executable, str(GEN), "100000", "7"], stdout=out, check=True)
    return load_flow(path)
