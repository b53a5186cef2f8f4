"""The reliability campaign's venue-integrity checks (``reliability/integrity.py``): each
run small, its figures asserted, and its row of the report (``reliability/campaign.py``)
checked to carry those figures with a passing verdict.

- restart-md: ``tokenbook serve`` killed -9 with resting orders and started again;
- second-writer: a second ``tokenbook serve`` on the same data and on the same broker;
- burst: 10,000 orders from ``mosquitto_pub -q 1 -l`` on a stock ``mosquitto -p PORT``.
"""
from __future__ import annotations

import shutil

import pytest

from reliability import campaign, integrity
from testkit.mqtt import run

pytestmark = pytest.mark.network


def _row(res: dict, check: str) -> str:
    rows = [r for r in campaign.integrity_rows(res) if r.startswith(f"| {check}:")]
    assert len(rows) == 1, campaign.integrity_rows(res)
    return rows[0]


def test_after_kill_9_and_restart_the_retained_snapshot_is_the_recovered_book():
    r = run(integrity.restart_md(), timeout=90)
    assert r["acked"] == r["orders_resting"] == r["levels_recovered"] == 8
    assert r["symbols"] == 7                         # every instrument's retained md checked
    assert r["snapshot_equals_recovered"] and r["seq_forward"] and r["bbo_at_snapshot_seq"]
    assert r["epochs"] == [1, 2] and r["epoch_file"] == "2"
    assert r["watcher_in_sync"]                      # a subscriber across it resynced
    assert 0 < r["republish_s"] < 15 and r["online_s"] <= r["republish_s"] + 1
    assert r["exit_code"] == 0 and r["ok"]
    row = _row({"restart_md": r}, "restart-md")
    assert "(held)" in row and f"time to republish {r['republish_s']} s" in row
    assert "retained snapshot == recovered book True" in row and "epoch 1 -> 2" in row


def test_a_second_writer_is_refused_while_the_first_acknowledges_orders():
    r = run(integrity.second_writer(rate=100), timeout=120)
    assert r["exit_code_same_data"] == 5 and r["exit_code_same_broker"] == 4
    assert "in use by another tokenbook serve" in r["line_same_data"]
    assert "another engine serves this venue" in r["line_same_broker"]
    assert r["one_line_same_data"] and r["one_line_same_broker"]
    assert r["refusal_s_same_data"] < 15 and r["refusal_s_same_broker"] < 20
    # The first one served on through both attempts, undisturbed.
    assert r["acked_during_same_data"] > 0 and r["acked_during_same_broker"] > 0
    assert r["unanswered"] == 0 and r["lost"] == 0 and r["state_hash_equal"]
    assert r["first_kept_serving"] and r["first_exit_code"] == 0
    assert r["status_instance_unchanged"] and not r["first_reconnected"]
    assert r["refused_start_opened_nothing"] and r["epoch_file"] == "1" and r["ok"]
    row = _row({"second_writer": r}, "second-writer")
    assert "(held)" in row and f"{r['acked_during_attempts']} orders acknowledged" in row
    assert f"exit 5 in **{r['refusal_s_same_data']} s**" in row
    assert f"exit 4 in **{r['refusal_s_same_broker']} s**" in row


def test_a_burst_of_10000_from_mosquitto_pub_on_a_stock_mosquitto_arrives_whole():
    assert shutil.which("mosquitto_pub"), "scripts/ensure-mosquitto installs mosquitto-clients"
    r = run(integrity.burst(10_000), timeout=120)
    assert (r["sent"], r["arrived"], r["acked"]) == (10_000, 10_000, 10_000), r
    assert r["broker"] == "mosquitto -p PORT (no config)" and r["ok"]
    row = _row({"burst": r}, "burst")
    assert "(held)" in row and "**10000 / 10000 arrived**" in row
    assert f"**{r['seconds']} s**" in row


def test_a_failed_check_is_reported_as_failed():
    bad = {"sent": 10_000, "arrived": 9_000, "acked": 9_000, "seconds": 1.0,
           "orders_per_s": 9000, "transport": "aiomqtt", "publisher": "p", "broker": "b",
           "ok": False}
    assert "(**FAILED**)" in _row({"burst": bad}, "burst")
    assert campaign._ok(bad) is False
