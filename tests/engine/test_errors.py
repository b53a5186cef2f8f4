"""One set of reject and cancel codes: each in its layer's range, named as on the wire,
the book's numbered as the core's, and every code the venue sends is listed."""
from pathlib import Path

from matching.constants import CancelReason, RejectReason
from matching.errors import (
    LAYERS,
    BookCancel,
    BookReject,
    CancelReject,
    DecodeReject,
    EngineCancel,
    EngineReject,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_code_is_named_as_on_the_wire_and_in_its_layer_range():
    for layer, numbers in LAYERS:
        seen = set()
        for code in layer:
            assert code.value == code.name and str(code) == code.name
            assert code.number in numbers and code.number not in seen
            assert code.text and code.text == code.text.strip()
            seen.add(code.number)


def test_book_codes_are_the_cores_codes():
    assert {m.name: m.number for m in BookReject} == {m.name: int(m) for m in RejectReason}
    assert {m.name: m.number - 100 for m in BookCancel} == {
        m.name: int(m) for m in CancelReason}


def test_the_codec_sends_only_decode_codes():
    from feeds.codec import DECODE_REASONS
    assert set(DECODE_REASONS) == {m.value for m in DecodeReject}


def test_every_code_the_venue_sent_on_the_golden_stream_is_listed():
    """Rejects carry a listed reject code, cancels and expiries a listed cancel reason,
    cancel rejects a listed CxlRejReason (OTHER's text: a listed code, then why)."""
    from testkit import golden
    rejects = {m.value for m in (*BookReject, *EngineReject, *DecodeReject)}
    cancels = {m.value for m in (*BookCancel, *EngineCancel)}
    cxl = {m.value for m in CancelReject}
    seen_rejects, seen_cancels, seen_cxl, seen_other = set(), set(), set(), set()
    for line in golden.load_expected():
        for _, r in line.get("reports", ()):
            if r["msg"] == "cancel_reject":
                seen_cxl.add(r["cxl_rej_reason"])
                if r["cxl_rej_reason"] == "OTHER":
                    seen_other.add(r["text"].split(":", 1)[0])
            elif r["exec_type"] == "rejected":
                seen_rejects.add(r["ord_rej_reason"])
            elif r["exec_type"] in ("canceled", "expired", "restated"):
                seen_cancels.add(r["text"])
    assert seen_rejects and seen_rejects <= rejects, seen_rejects - rejects
    assert seen_cancels and seen_cancels <= cancels, seen_cancels - cancels
    assert seen_cxl and seen_cxl <= cxl, seen_cxl - cxl
    assert seen_other and seen_other <= rejects, seen_other - rejects


def test_every_code_is_documented():
    doc = (ROOT / "docs" / "engine-rules.md").read_text()
    missing = [m.value for layer, _ in LAYERS for m in layer if f"`{m.value}`" not in doc]
    assert not missing, missing


def test_a_code_compares_equal_to_its_wire_name():
    assert EngineReject.MARKET_NOT_OPEN == "MARKET_NOT_OPEN"
    assert {"MARKET_NOT_OPEN": 1}[EngineReject.MARKET_NOT_OPEN] == 1

