"""Both books reproduce the known digest of the shared conformance flow."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.replay import LADDER, replay_batch
from matching.book import make_book
from testkit.flow import digest, load_flow

GEN = Path(os.environ.get("TOKENBOOK_GEN",
                          Path(__file__).resolve().parents[3] / "shared/conformance/gen.py"))


@pytest.fixture(scope="module")
def flow_100k(tmp_path_factory):
    if not GEN.exists():
        pytest.fail(f"conformance generator missing at {GEN}; set TOKENBOOK_GEN")
    path = tmp_path_factory.mktemp("flow") / "flow.csv"
    with open(path, "w") as out:
        subprocess.run([sys.executable, str(GEN), "100000", "7"], stdout=out, check=True)
    return load_flow(path)


def test_book_reproduces_the_100k_conformance_digest(book_engine, flow_100k):
    book = make_book(book_engine, *LADDER)
    trades, _ = replay_batch(book, flow_100k, 8192)
    assert digest(trades) == (27565, 5433276, "250ec1376f23ee9d")
    assert len(book) == 25060
    book.check()
