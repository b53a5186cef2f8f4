"""``tokenbook watch`` as an outsider runs it: malformed market data published with
``mosquitto_pub`` is skipped, counted, logged and shown, never an exit or a traceback;
``--credentials`` connects as the read-only viewer that ``scripts/make-credentials``
creates (adding it to a credentials directory from before it existed), which reads
market data and can publish neither orders nor operator commands.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from feeds import topics
from feeds.broker import EmbeddedBroker
from feeds.cli import WATCH_GRACE
from feeds.security import (
    ACL_FILE,
    ENGINE_USER,
    MD_USER,
    OPERATOR_USER,
    read_credentials,
    risk_acl_section,
)
from feeds.watch import MarketView, render

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).with_name("tokenbook")
TOKENBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "feeds.cli"]
MAKE_CREDENTIALS = ROOT / "scripts" / "make-credentials"

SNAPSHOT = {"symbol": "TB3M", "seq": 3, "epoch": 1,
            "bids": [["99.000", "1.0000", 1]], "asks": [["99.100", "2.0000", 1]]}
#: (channel, payload, the reason it is skipped for)
BAD = [
    ("trades", b"{}", "wrong_type"),
    ("trades", b"not json", "bad_json"),
    ("depth", b'{"symbol":"TB3M","seq":"4","epoch":1,"levels":[]}', "wrong_type"),
    ("depth", b'{"symbol":"TB3M","seq":4,"epoch":1,"levels":[["buy","99.000","lots",1]]}',
     "bad_decimal"),
    ("snapshot", b'{"symbol":"TB3M","seq":9,"epoch":1,"bids":[["NaN","1",1]],"asks":[]}',
     "bad_decimal"),
    ("snapshot", json.dumps({**SNAPSHOT, "symbol": "TB6M", "seq": 9}).encode(),
     "wrong_symbol"),
    ("state", b'{"symbol":"TB3M","state":"party"}', "wrong_type"),
    ("bbo", b"[1, 2, 3]", "wrong_type"),
    ("trades", b"\xff\xfe", "bad_json"),
    ("foo", b"{}", "unknown_channel"),
]


def test_malformed_market_data_is_skipped_and_counted_and_the_book_is_untouched():
    view = MarketView()
    assert view.on_message(topics.md("TB3M", "snapshot"), json.dumps(SNAPSHOT).encode())
    before = (view.books["TB3M"].ladder("buy"), view.books["TB3M"].ladder("sell"))
    for channel, payload, _ in BAD:
        assert not view.on_message(f"{topics.ROOT}/md/TB3M/{channel}", payload)
    book = view.books["TB3M"]
    assert (book.ladder("buy"), book.ladder("sell")) == before
    assert book.in_sync and book.seq == 3 and book.n_trades == 0 and book.state == "continuous"
    want: dict[str, int] = {}
    for _, _, reason in BAD:
        want[reason] = want.get(reason, 0) + 1
    assert dict(view.skipped) == want
    assert view.last_skip.startswith(f"{topics.ROOT}/md/TB3M/foo: ")
    # A good update after the bad ones applies as usual.
    assert view.on_message(topics.md("TB3M", "depth"), json.dumps(
        {"symbol": "TB3M", "seq": 4, "epoch": 1, "levels": [["buy", "99.000", "0", 0]]}).encode())
    assert book.seq == 4 and book.ladder("buy") == []
    from rich.console import Console
    console = Console(width=200, record=True)
    console.print(render(view))
    assert f"skipped {len(BAD)} malformed market-data messages" in console.export_text()


def _pub(port: int, topic: str, payload: bytes, *auth: str, retain: bool = False) -> None:
    """``mosquitto_pub`` (MQTT 5, QoS 1) of ``payload`` read from stdin."""
    subprocess.run(["mosquitto_pub", "-p", str(port), "-V", "5", "-q", "1", "-t", topic,
                    "-s", *auth, *(["-r"] if retain else [])], input=payload, timeout=10,
                   capture_output=True)


def _connections_to(port: int) -> int:
    """Established loopback TCP connections whose far end is ``port`` (Linux /proc)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def _wait_subscribed(port: int, watch: subprocess.Popen, timeout: float = 30) -> None:
    """Until the viewer has connected (it subscribes at once after), however slow its
    start on a busy machine."""
    deadline = time.monotonic() + timeout
    while _connections_to(port) == 0:
        assert watch.poll() is None and time.monotonic() < deadline, "watch never connected"
        time.sleep(0.05)
    time.sleep(0.5)


def _watch(url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*TOKENBOOK, "watch", "--broker", url, *args], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.network
def test_watch_shows_a_note_and_goes_on_when_bad_market_data_is_published():
    with EmbeddedBroker() as b:
        watch = _watch(b.url)
        try:
            _wait_subscribed(b.port, watch)
            for channel, payload, _ in BAD:
                _pub(b.port, f"{topics.ROOT}/md/TB3M/{channel}", payload)
            _pub(b.port, topics.md("TB3M", "snapshot"), json.dumps(SNAPSHOT).encode())
            time.sleep(1.0)
            assert watch.poll() is None                       # still watching
            watch.send_signal(signal.SIGINT)                  # Ctrl-C
            out, err = watch.communicate(timeout=15)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
    assert watch.returncode == 130, err
    assert "Traceback" not in out + err
    assert f"skipped {len(BAD)} malformed market-data messages" in out   # shown in the view
    assert "TB3M  seq 3  in sync" in out and "99.100" in out             # the good one applied
    logged = [ln for ln in err.splitlines() if "skipped malformed market data" in ln]
    assert {ln.split("(", 1)[1].split(")", 1)[0] for ln in logged} == {r for _, _, r in BAD}


# ---------------------------------------------------------------------- the viewer user
def _without(path: Path, user: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(ln for ln in lines if not ln.startswith(f"{user}:")))


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory):
    """A credentials directory from before the viewer user (no tokenbook-md in the
    credentials, password file or ACL), upgraded by running make-credentials again."""
    out = tmp_path_factory.mktemp("creds") / "secrets"
    first = subprocess.run([sys.executable, str(MAKE_CREDENTIALS), "--out", str(out), "alpha"],
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    for name in ("credentials", "passwd"):
        _without(out / name, MD_USER)
    acl = (out / "acl").read_text()
    start = acl.index(f"user {MD_USER}")
    (out / "acl").write_text(acl[:start] + acl[acl.index("# Every authenticated user"):])
    old = read_credentials(out / "credentials")
    assert MD_USER not in old
    again = subprocess.run([sys.executable, str(MAKE_CREDENTIALS), "--out", str(out), "alpha"],
                           capture_output=True, text=True, timeout=60)
    return out, old, again


def test_make_credentials_adds_the_missing_viewer_and_keeps_every_password(upgraded):
    out, old, again = upgraded
    assert again.returncode == 0, again.stderr
    assert f"added 1 MQTT user(s) to {out}: {MD_USER}" in again.stdout
    users = read_credentials(out / "credentials")
    assert set(users) == {*old, MD_USER}
    assert all(users[u] == p for u, p in old.items())        # nobody's password changed
    passwd = [ln.split(":", 1)[0] for ln in (out / "passwd").read_text().splitlines()]
    assert sorted(passwd) == sorted(users)
    # Its section is back: the shipped ACL, then alpha's risk user's section.
    assert (out / "acl").read_text() == ACL_FILE.read_text() + risk_acl_section("alpha")
    assert f"user {MD_USER}" not in (out / "acl.bak").read_text()
    # With nothing missing, it refuses as before.
    third = subprocess.run([sys.executable, str(MAKE_CREDENTIALS), "--out", str(out), "alpha"],
                           capture_output=True, text=True, timeout=60)
    assert third.returncode == 1 and "--force" in third.stderr


@pytest.mark.network
def test_watch_with_credentials_reads_market_data_as_the_viewer_who_cannot_trade(upgraded):
    out, _, again = upgraded
    assert again.returncode == 0, again.stderr
    users = read_credentials(out / "credentials")

    def auth(user: str) -> tuple[str, ...]:
        return ("-u", user, "-P", users[user])

    with EmbeddedBroker(password_file=out / "passwd", acl_file=out / "acl") as b:
        # One connection per user (the client id is the user name), so each step below
        # connects as a user nobody else is connected as at that moment.
        _pub(b.port, topics.md("TB3M", "snapshot"), json.dumps(SNAPSHOT).encode(),
             *auth(ENGINE_USER), retain=True)
        # What the engine receives: every order topic and the operator's commands.
        got: list[str] = []
        engine = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        engine.username_pw_set(ENGINE_USER, users[ENGINE_USER])
        engine.on_message = lambda c, ud, m: got.append(f"{m.topic} {m.payload.decode()}")
        engine.on_connect = lambda c, ud, flags, rc, props: c.subscribe(
            [(f"{topics.ROOT}/orders/+", 1), (topics.ADMIN, 1)])
        engine.connect("127.0.0.1", b.port)
        engine.loop_start()
        try:
            time.sleep(1.0)
            # The viewer tries to trade, to halt and to publish market data; alpha places
            # a real order and the operator halts.
            _pub(b.port, topics.orders(MD_USER), b'{"msg":"new_order","from":"viewer"}',
                 *auth(MD_USER))
            _pub(b.port, topics.orders("alpha"), b'{"from":"viewer-as-alpha"}', *auth(MD_USER))
            _pub(b.port, topics.ADMIN, b'{"action":"halt","from":"viewer"}', *auth(MD_USER))
            _pub(b.port, topics.md("TB3M", "snapshot"), b'{"from":"viewer"}', *auth(MD_USER),
                 retain=True)
            _pub(b.port, topics.ADMIN, b'{"action":"halt","from":"operator"}',
                 *auth(OPERATOR_USER))
            _pub(b.port, topics.orders("alpha"), b'{"from":"alpha"}', *auth("alpha"))
            time.sleep(1.0)
        finally:
            engine.disconnect()
            engine.loop_stop()
        # The viewer (its own connection: one per user) reads the retained market data.
        watch = _watch(b.url, "--json", "--credentials", str(out / "credentials"))
        try:
            _wait_subscribed(b.port, watch)     # connects, subscribes, gets the retained copy
            still = watch.poll() is None        # connected all along
        finally:
            watch.send_signal(signal.SIGINT)
            w_out, w_err = watch.communicate(timeout=15)
    assert still
    assert watch.returncode == 130 and "Traceback" not in w_err, w_err
    assert w_out == f"{topics.md('TB3M', 'snapshot')} {json.dumps(SNAPSHOT)}\n"
    received = list(got)
    assert any('"from":"alpha"' in ln for ln in received), received
    assert any('"from":"operator"' in ln for ln in received), received
    assert not any("viewer" in ln for ln in received), received


@pytest.mark.network
def test_watch_with_a_wrong_password_is_one_line_and_exit_3(upgraded, tmp_path):
    out, _, _ = upgraded
    wrong = tmp_path / "credentials"
    wrong.write_text(f"{MD_USER}:not-the-password\n")
    wrong.chmod(0o600)
    with EmbeddedBroker(password_file=out / "passwd", acl_file=out / "acl") as b:
        res = subprocess.run([*TOKENBOOK, "watch", "--broker", b.url, "--credentials",
                              str(wrong)], cwd=ROOT, capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 3 and len(lines) == 1, res.stderr
    assert lines[0].startswith("tokenbook watch: the MQTT broker at") and MD_USER in lines[0]


@pytest.mark.network
def test_a_viewer_displaced_by_a_second_connection_of_its_user_says_so(upgraded):
    """One connection per user (the broker makes the user name the client id): a second
    watch under the viewer's user takes the first one's place, which ends in one line
    saying so, exit 3."""
    out, _, _ = upgraded
    creds = ("--json", "--credentials", str(out / "credentials"))
    with EmbeddedBroker(password_file=out / "passwd", acl_file=out / "acl") as b:
        first = _watch(b.url, *creds)
        _wait_subscribed(b.port, first)
        second = _watch(b.url, *creds)
        try:
            _, err = first.communicate(timeout=20)
        finally:
            for p in (first, second):
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
                p.communicate(timeout=15)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert first.returncode == 3 and len(lines) == 1, err
    assert lines[0].startswith(f"tokenbook watch: lost the connection to the MQTT broker at "
                               f"{b.url} as {MD_USER}")
    assert "give each viewer a user of its own" in lines[0]


@pytest.mark.network
def test_ctrl_c_ends_the_viewer_promptly_even_when_the_broker_is_frozen():
    """The viewer keeps no state: Ctrl-C ends it with 130 within its grace period, even
    when the broker never answers (stopped with SIGSTOP after the viewer subscribed)."""
    with EmbeddedBroker() as b:
        watch = _watch(b.url, "--json")
        try:
            _wait_subscribed(b.port, watch)
            os.kill(b.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                watch.send_signal(signal.SIGINT)
                _, err = watch.communicate(timeout=15)
                took = time.monotonic() - started
            finally:
                os.kill(b.pid, signal.SIGCONT)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
    assert watch.returncode == 130 and "Traceback" not in err, err
    assert took < WATCH_GRACE + 5, took
