"""Both books reproduce the known digest of the shared conformance flow."""
from bench.replay import LADDER, replay_batch
from matching.book import make_book
from testkit.flow import digest


def test_book_reproduces_the_100k_conformance_digest(book_engine, flow_100k):
    book = make_book(book_engine, *LADDER)
    trades, _ = replay_batch(book, flow_100k, 8192)
    assert digest(trades) == (27565, 5433276, "250ec1376f23ee9d")
    assert len(book) == 25060
    book.check()
