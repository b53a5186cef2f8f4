"""Access control on a real private mosquitto with the shipped ACL and generated passwords.

Setup (per module): ``scripts/make-credentials`` writes the password file, credentials and
ACL for brokers alpha ("A") and beta ("B"); ``EmbeddedBroker`` runs mosquitto with them
(no anonymous access); the real Gateway + Engine connect as ``tokenbook-engine``. Test
clients are paho MQTT 5 clients, so a publish the ACL refuses comes back as PUBACK reason
code 0x87 (Not authorized), and every "never sees it" is checked on the receiving side
too, after a later message on the same path proved that path delivers.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from feeds import topics
from feeds.broker import EmbeddedBroker, _free_port, find_mosquitto
from feeds.client import BrokerClient
from feeds.config import GatewayConfig
from feeds.security import (
    ACL_FILE,
    AGENT_USER,
    ENGINE_USER,
    MD_USER,
    OPERATOR_USER,
    STANDBY_USER,
    client_options,
    hash_password,
    read_credentials,
)
from feeds.transports import make_gateway
from matching.instruments import Registry
from matching.ledger import CASH
from matching.messages import NewOrderSingle
from testkit.mqtt import two_broker_engine

pytestmark = pytest.mark.network
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "make-credentials"
REG = Registry.load_default()
A, B = "alpha", "beta"
NOT_AUTHORIZED = 0x87
BAD_CREDENTIALS = 0x86
WAIT = 5.0


def allowed(rc) -> bool:
    """A PUBACK that took the message (0x00, or 0x10 No matching subscribers)."""
    return not rc.is_failure


def make_credentials(out: Path, *brokers: str, extra: tuple[str, ...] = ()) -> dict[str, str]:
    res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), *extra, *brokers],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert str(out / "credentials") in res.stdout and str(out / "passwd") in res.stdout
    return read_credentials(out / "credentials")


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("mqtt") / "secrets"
    users = make_credentials(out, A, B)
    return out, users


@pytest.fixture(scope="module")
def broker(secrets_dir):
    out, _ = secrets_dir
    with EmbeddedBroker(password_file=out / "passwd", acl_file=out / "acl") as b:
        yield b


# ---------------------------------------------------------------------- MQTT 5 peers
class Peer:
    """A paho MQTT 5 client on its own network thread, with bounded blocking waits."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None,
                 *, will: tuple[str, bytes] | None = None):
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2,
                             client_id=f"peer-{uuid.uuid4().hex[:10]}", protocol=paho.MQTTv5)
        self.c.reconnect_delay_set(5, 5)          # a refused peer does not hammer the broker
        if username is not None:
            self.c.username_pw_set(username, password)
        if will:
            self.c.will_set(will[0], will[1], qos=1, retain=True)
        self.port = port
        self.cond = threading.Condition()
        self.connack = None
        self.messages: list[tuple[str, bytes]] = []
        self.properties: list[tuple[str, object]] = []     # (topic, MQTT 5 properties)
        self.acks: dict[int, object] = {}
        self.subacks: dict[int, list] = {}
        self.disconnects = 0
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = self._on_subscribe

    def _on_connect(self, c, ud, flags, rc, props):
        with self.cond:
            if self.connack is None:
                self.connack = rc
            self.cond.notify_all()

    def _on_disconnect(self, c, ud, flags, rc, props):
        with self.cond:
            self.disconnects += 1
            self.cond.notify_all()

    def _on_message(self, c, ud, msg):
        with self.cond:
            self.messages.append((msg.topic, msg.payload))
            self.properties.append((msg.topic, msg.properties))
            self.cond.notify_all()

    def _on_publish(self, c, ud, mid, rc, props):
        with self.cond:
            self.acks[mid] = rc
            self.cond.notify_all()

    def _on_subscribe(self, c, ud, mid, rcs, props):
        with self.cond:
            self.subacks[mid] = rcs
            self.cond.notify_all()

    def _wait(self, pred, timeout=WAIT, what="condition"):
        with self.cond:
            if not self.cond.wait_for(pred, timeout):
                raise AssertionError(f"timed out waiting for {what}")

    def connect(self):
        """Connect and return the CONNACK reason code (success or refusal)."""
        self.c.connect("127.0.0.1", self.port, keepalive=30)
        self.c.loop_start()
        self._wait(lambda: self.connack is not None, what="CONNACK")
        return self.connack

    def subscribe(self, *filters: str) -> list:
        _, mid = self.c.subscribe([(f, 1) for f in filters])
        self._wait(lambda: mid in self.subacks, what="SUBACK")
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes, retain: bool = False, properties=None):
        """Publish at QoS 1 and return the PUBACK reason code."""
        info = self.c.publish(topic, payload, qos=1, retain=retain, properties=properties)
        self._wait(lambda: info.mid in self.acks, what=f"PUBACK for {topic}")
        return self.acks[info.mid]

    def wait_message(self, pred, what="message"):
        """The first received (topic, payload) matching ``pred`` (bounded wait)."""
        found = []

        def check():
            found[:] = [m for m in self.messages if pred(*m)]
            return bool(found)
        self._wait(check, what=what)
        return found[0]

    def topics_seen(self) -> list[str]:
        with self.cond:
            return [t for t, _ in self.messages]

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


@contextmanager
def peer(port, username=None, password=None, **kw):
    p = Peer(port, username, password, **kw)
    try:
        rc = p.connect()
        assert rc == 0, f"{username} refused: {rc}"
        yield p
    finally:
        p.close()


# ---------------------------------------------------------------------- engine + gateway
@contextmanager
def running_gateway(port: int, options: dict, transport: str = "link", **gw_kwargs):
    """The real gateway (on ``transport``) + Engine on its own thread and event loop, as
    ``tokenbook-engine``."""
    gw = make_gateway(two_broker_engine(), "127.0.0.1", port, GatewayConfig(
        client_id=f"engine-{uuid.uuid4().hex[:8]}", mqtt_options=options, **gw_kwargs),
        transport=transport)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    error: list[BaseException] = []

    def main():
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(asyncio.wait_for(gw.run(stop), 60))
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            error.append(exc)
        finally:
            loop.close()
    t = threading.Thread(target=main, name="gateway", daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + WAIT
        while not gw.ready.is_set():
            assert not error, f"gateway failed: {error[0]!r}"
            assert time.monotonic() < deadline, "gateway not ready"
            time.sleep(0.01)
        yield gw
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        t.join(10)
        assert not t.is_alive(), "gateway did not stop"
    if error:
        raise error[0]


@pytest.fixture(scope="module")
def users(secrets_dir):
    return secrets_dir[1]


@pytest.fixture()
def gateway(broker, secrets_dir, transport):
    """The gateway as ``tokenbook-engine``, on each transport in turn."""
    out, _ = secrets_dir
    opts = client_options(credentials=out / "credentials", username=ENGINE_USER)
    with running_gateway(broker.port, opts, transport) as gw:
        yield gw


def order(cl, acct, side="buy", qty="1", price="99.000", symbol="TB3M", **kw) -> bytes:
    return json.dumps({"msg": "new_order", "cl_ord_id": cl, "account": acct, "symbol": symbol,
                       "side": side, "qty": qty, "price": price, **kw}).encode()


def report_for(cl):
    """Predicate: an exec report for ClOrdID ``cl``."""
    def pred(topic, payload):
        if "/exec/" not in topic:
            return False
        doc = json.loads(payload)
        return isinstance(doc, dict) and doc.get("cl_ord_id") == cl
    return pred


# ---------------------------------------------------------------------- the files
def test_make_credentials_writes_private_files_for_every_user(secrets_dir):
    out, users = secrets_dir
    assert set(users) == {ENGINE_USER, STANDBY_USER, MD_USER, OPERATOR_USER, AGENT_USER, A, B,
                          f"{A}-risk", f"{B}-risk"}          # each broker's risk user
    assert len(set(users.values())) == len(users) and all(len(p) >= 32 for p in users.values())
    assert stat.S_IMODE((out / "credentials").stat().st_mode) == 0o600
    passwd = (out / "passwd").read_text().splitlines()
    assert sorted(line.split(":", 1)[0] for line in passwd) == sorted(users)
    assert all(line.split(":", 1)[1].startswith("$7$") for line in passwd)
    assert not any(p in (out / "passwd").read_text() for p in users.values())
    # The shipped ACL, then one section per broker's risk user (its drop copy).
    assert (out / "acl").read_text().startswith(ACL_FILE.read_text())
    conf = (out / "tokenbook.conf").read_text()
    assert "allow_anonymous false" in conf and f"password_file {out / 'passwd'}" in conf
    assert f"acl_file {out / 'acl'}" in conf
    assert "use_username_as_clientid true" in conf
    # Refuses to clobber, and refuses reserved or unsafe broker names.
    again = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), A],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "--force" in again.stderr
    assert read_credentials(out / "credentials") == users
    for bad in (ENGINE_USER, "a/b", "a+", "#", "x:y"):
        res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out / "bad"), bad],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and not (out / "bad" / "passwd").exists(), bad


def test_acl_uses_the_authenticated_user_never_the_client_id():
    lines = [ln.split("#", 1)[0].strip() for ln in ACL_FILE.read_text().splitlines()]
    rules = [ln for ln in lines if ln]
    assert "%c" not in "\n".join(rules)
    assert rules[0].startswith("user "), "no rules for anonymous clients before any user"
    assert "pattern write tokenbook/v1/orders/%u" in rules
    assert "pattern read tokenbook/v1/exec/%u" in rules


def test_hashes_computed_without_mosquitto_passwd_are_accepted_by_mosquitto(tmp_path):
    users = make_credentials(tmp_path / "s", A, extra=("--no-mosquitto-passwd",))
    [line] = [ln for ln in (tmp_path / "s" / "passwd").read_text().splitlines()
              if ln.startswith(f"{A}:")]
    assert line.startswith(f"{A}:$7$101$")
    salt = __import__("base64").b64decode(line.split("$")[3])
    assert line.split(":", 1)[1] == hash_password(users[A], salt=salt)   # deterministic
    with EmbeddedBroker(password_file=tmp_path / "s" / "passwd", acl_file=ACL_FILE) as b:
        ok = Peer(b.port, A, users[A])
        bad = Peer(b.port, A, users[A] + "x")
        try:
            assert ok.connect() == 0
            assert bad.connect().value in (BAD_CREDENTIALS, NOT_AUTHORIZED)
        finally:
            ok.close()
            bad.close()


def test_the_config_written_by_the_script_runs_a_broker_without_anonymous_access():
    # Not under pytest's tmp_path: its parents are 0700 and mosquitto, run as root, reads
    # its password file after switching to its own user. make-credentials gives the files
    # to that user's group; the parent only needs to let it pass.
    with tempfile.TemporaryDirectory(prefix="tokenbook-conf-") as tmp:
        os.chmod(tmp, 0o711)
        with script_broker(Path(tmp) / "w", A) as (port, users):
            anon, good = Peer(port), Peer(port, A, users[A])
            try:
                assert anon.connect().value == NOT_AUTHORIZED
                assert good.connect() == 0
                assert allowed(good.publish(topics.orders(A), b"x"))
                assert good.publish(topics.orders(B), b"x").value == NOT_AUTHORIZED
            finally:
                anon.close()
                good.close()


# ---------------------------------------------------------------------- authentication
def test_anonymous_unknown_user_and_wrong_password_are_refused(broker, users):
    refused = []
    for creds in ((None, None), ("nobody", "x"), (A, users[B]), (A, users[A] + "x"),
                  (ENGINE_USER, "")):
        p = Peer(broker.port, *creds)
        try:
            refused.append(p.connect())
        finally:
            p.close()
    assert all(rc.is_failure and rc.value in (BAD_CREDENTIALS, NOT_AUTHORIZED)
               for rc in refused), refused
    with peer(broker.port, A, users[A]) as ok:             # the right password works
        assert ok.connack == 0


def test_aiomqtt_clients_without_credentials_are_refused(broker, users):
    import aiomqtt

    from testkit.mqtt import connect, run

    async def attempt(**kw):
        try:
            async with connect(broker.url, **kw):
                return "connected"
        except aiomqtt.MqttError as exc:
            return str(exc)

    assert "connected" != run(attempt(), 10)
    assert "connected" != run(attempt(username=A, password="wrong"), 10)
    assert run(attempt(**client_options(username=A, password=users[A])), 10) == "connected"


# ---------------------------------------------------------------------- confidentiality
def test_a_broker_cannot_read_another_brokers_execution_reports(broker, users, gateway):
    with peer(broker.port, A, users[A]) as a, peer(broker.port, B, users[B]) as b:
        # A may subscribe (mosquitto checks read access at delivery), but gets nothing.
        a.subscribe(topics.exec_reports(B), "#", topics.exec_reports(A))
        b.subscribe(topics.exec_reports(B))
        assert allowed(b.publish(topics.orders(B), order("b1", 2, "sell", price="99.500")))
        _, rep = b.wait_message(report_for("b1"), "B's own report")
        assert json.loads(rep)["exec_type"] == "new"
        # The engine publishes in order: once A has its own later report, B's is long gone.
        assert allowed(a.publish(topics.orders(A), order("a1", 1)))
        _, rep = a.wait_message(report_for("a1"), "A's own report")
        assert json.loads(rep)["exec_type"] == "new"
        seen = a.topics_seen()
        assert topics.exec_reports(B) not in seen
        assert not [t for t in seen if t.startswith(("tokenbook/v1/orders/",
                                                     "tokenbook/v1/presence/"))]
        assert topics.md_depth("TB3M") in seen      # public market data does reach A
        assert all(t.startswith(("tokenbook/v1/md/", "tokenbook/v1/status",
                                 topics.exec_reports(A))) for t in seen), seen


def test_the_market_data_user_reads_market_data_only(broker, users, gateway):
    with peer(broker.port, MD_USER, users[MD_USER]) as md, \
            peer(broker.port, A, users[A]) as a, peer(broker.port, B, users[B]) as b:
        md.subscribe("#")
        a.subscribe(topics.exec_reports(A))
        b.subscribe(topics.exec_reports(B))
        assert allowed(b.publish(topics.orders(B), order("m1", 2, "sell", price="99.400")))
        assert allowed(a.publish(topics.orders(A), order("m2", 1, "buy", price="99.400")))
        md.wait_message(lambda t, p: t == topics.md_trades("TB3M"), "the trade print")
        a.wait_message(report_for("m2"), "A's report")
        b.wait_message(report_for("m1"), "B's report")
        seen = md.topics_seen()
        assert topics.STATUS in seen
        assert all(t.startswith("tokenbook/v1/md/") or t == topics.STATUS for t in seen), seen
        # Read-only: no order entry (not even under its own name), no presence.
        assert md.publish(topics.orders(MD_USER), order("m3", 1)).value == NOT_AUTHORIZED
        assert md.publish(topics.presence(MD_USER), b"online").value == NOT_AUTHORIZED
        assert md.publish(topics.md_trades("TB3M"), b"{}").value == NOT_AUTHORIZED


# ---------------------------------------------------------------------- integrity
def test_only_the_operator_can_halt_trading(broker, users, gateway):
    halt = json.dumps({"action": "halt", "symbol": "TB3M", "request_id": "x"}).encode()
    with peer(broker.port, A, users[A]) as a, peer(broker.port, MD_USER, users[MD_USER]) as md, \
            peer(broker.port, OPERATOR_USER, users[OPERATOR_USER]) as op:
        a.subscribe(topics.ADMIN_REPLIES, topics.exec_reports(A))
        op.subscribe(topics.ADMIN_REPLIES)
        # Neither a broker nor the market-data user may send session commands.
        assert a.publish(topics.ADMIN, halt).value == NOT_AUTHORIZED
        assert md.publish(topics.ADMIN, halt).value == NOT_AUTHORIZED
        assert allowed(a.publish(topics.orders(A), order("op1", 1)))
        _, rep = a.wait_message(report_for("op1"), "A's order taken while trading is open")
        assert json.loads(rep)["exec_type"] == "new"
        assert gateway.engine.trading_status("TB3M").state == "continuous"
        # The operator may, and reads the engine's reply; brokers do not see the replies.
        assert allowed(op.publish(topics.ADMIN, halt))
        _, reply = op.wait_message(lambda t, p: t == topics.ADMIN_REPLIES, "the reply")
        assert json.loads(reply)["accepted"]
        assert gateway.engine.trading_status("TB3M").state == "halted"
        # The operator places no orders.
        assert op.publish(topics.orders(OPERATOR_USER), order("op2", 1)).value == NOT_AUTHORIZED
        assert allowed(a.publish(topics.orders(A), order("op3", 1)))
        _, rep = a.wait_message(report_for("op3"), "A's order refused while halted")
        assert json.loads(rep)["ord_rej_reason"] == "MARKET_NOT_OPEN"
        assert topics.ADMIN_REPLIES not in a.topics_seen()


def test_a_broker_cannot_place_orders_on_another_brokers_topic(broker, users, gateway):
    with peer(broker.port, A, users[A]) as a, peer(broker.port, B, users[B]) as b:
        a.subscribe(topics.exec_reports(A))
        b.subscribe(topics.exec_reports(B))
        spoof = order("spoof", 2, "sell", price="99.010")
        assert a.publish(topics.orders(B), spoof).value == NOT_AUTHORIZED
        assert allowed(a.publish(topics.orders(A), order("after", 1)))
        a.wait_message(report_for("after"), "A's later report")
        assert gateway.stats.received == 1                  # the engine never saw the spoof
        assert all(o.cl_ord_id != "spoof" for o in gateway.engine.orders.values())
        assert b.topics_seen() == []                        # and B got no report for it


def test_the_engine_rejects_an_order_for_another_brokers_account(broker, users, gateway):
    """Defence in depth: A's own topic, B's account -> Rejected UNKNOWN_ACCOUNT to A only."""
    with peer(broker.port, A, users[A]) as a, peer(broker.port, B, users[B]) as b:
        a.subscribe(topics.exec_reports(A))
        b.subscribe(topics.exec_reports(B))
        before = gateway.engine.ledger.total(CASH)
        assert allowed(a.publish(topics.orders(A), order("steal", 2, "buy", price="99.600")))
        _, rep = a.wait_message(report_for("steal"), "the reject")
        rep = json.loads(rep)
        assert (rep["exec_type"], rep["ord_rej_reason"]) == ("rejected", "UNKNOWN_ACCOUNT")
        assert not gateway.engine.orders and gateway.engine.ledger.total(CASH) == before
        # A control order of B's own arrives at B, and nothing before it did.
        assert allowed(b.publish(topics.orders(B), order("b-own", 2, "sell", price="99.900")))
        b.wait_message(report_for("b-own"), "B's own report")
        assert b.topics_seen() == [topics.exec_reports(B)]


def test_only_the_engine_publishes_market_data_reports_status_and_presence(
        broker, users, gateway):
    forged = [topics.md_trades("TB3M"), topics.md_snapshot("TB3M"), topics.md_bbo("TB3M"),
              topics.exec_reports(B), topics.exec_reports(A), topics.STATUS,
              topics.presence(B), "tokenbook/v1/other", "$SYS/forged"]
    with peer(broker.port, A, users[A]) as a, peer(broker.port, B, users[B]) as b, \
            peer(broker.port, MD_USER, users[MD_USER]) as md:
        b.subscribe(topics.exec_reports(B))
        md.subscribe("tokenbook/v1/#")
        # B rests an order; a forged "offline" presence would cancel it (cancel-on-disconnect).
        assert allowed(b.publish(topics.orders(B), order("rest", 2, "sell", price="99.800")))
        b.wait_message(report_for("rest"), "B's ack")
        gateway.config = dataclasses.replace(gateway.config, cancel_on_disconnect="*")
        codes = {t: a.publish(t, b'"forged"', retain=True) for t in forged}
        codes[topics.presence(B)] = a.publish(topics.presence(B), b"offline", retain=True)
        assert {t: rc.value for t, rc in codes.items()} == dict.fromkeys(forged, NOT_AUTHORIZED)
        # A real trade afterwards: its market data reaches md; nothing forged did.
        assert allowed(a.publish(topics.orders(A), order("hit", 1, "buy", price="99.800")))
        b.wait_message(lambda t, p: t == topics.exec_reports(B)
                       and json.loads(p).get("exec_type") == "trade", "B's fill")
        md.wait_message(lambda t, p: t == topics.md_trades("TB3M"), "the real trade print")
        assert not [p for t, p in md.messages if b"forged" in p]
        assert not [p for t, p in b.messages if b"forged" in p]
        assert [json.loads(p)["exec_type"] for _, p in b.messages] == ["new", "trade"]
    # A late subscriber finds the engine's retained status, not a forged one.
    with peer(broker.port, B, users[B]) as late:
        late.subscribe(topics.STATUS)
        _, status = late.wait_message(lambda t, p: t == topics.STATUS, "retained status")
        assert json.loads(status)["status"] == "online"


def test_broker_client_works_within_the_acl(broker, users, gateway, secrets_dir):
    """The real BrokerClient (presence with a last will, own exec topic) is allowed."""
    from testkit.mqtt import run
    out, _ = secrets_dir

    async def body():
        async with BrokerClient(B, "127.0.0.1", broker.port, mqtt_options=client_options(
                credentials=out / "credentials", username=B)) as c:
            ack = await c.submit(NewOrderSingle("bc1", 2, "TB3M", "sell", "1", price="99.700"))
            bad = await c.submit(NewOrderSingle("bc2", 1, "TB3M", "sell", "1", price="99.700"))
            return ack, bad

    ack, bad = run(body(), 15)
    assert (ack.exec_type, ack.ord_status) == ("new", "new")
    assert (bad.exec_type, bad.ord_rej_reason) == ("rejected", "UNKNOWN_ACCOUNT")


def test_tokenbook_serve_connects_with_the_credentials_file(broker, users, secrets_dir,
                                                            tmp_path, transport):
    out, _ = secrets_dir
    proc = subprocess.Popen(
        [sys.executable, "-m", "feeds.cli", "serve", "--transport", transport,
         "--broker", broker.url,
         "--credentials", str(out / "credentials"), "--data", str(tmp_path / "data"),
         "--seconds", "4"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with peer(broker.port, A, users[A]) as a:
            a.subscribe(topics.exec_reports(A))
            deadline = time.monotonic() + 8
            mine = report_for("cli1")
            while not any(mine(*m) for m in list(a.messages)):   # resend until subscribed
                assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
                assert time.monotonic() < deadline, "no report from tokenbook serve"
                assert allowed(a.publish(topics.orders(A), order("cli1", 1001)))
                time.sleep(0.3)
            _, rep = a.wait_message(mine)
            assert json.loads(rep)["exec_type"] == "new"
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


# ---------------------------------------------------------------------- no displacing
@contextmanager
def script_broker(work: Path, *brokers: str):
    """mosquitto run from the tokenbook.conf that scripts/make-credentials writes."""
    port = _free_port()
    users = make_credentials(work, *brokers, extra=("--port", str(port)))
    proc = subprocess.Popen([find_mosquitto(), "-c", str(work / "tokenbook.conf")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + WAIT
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                __import__("socket").create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "broker did not start"
                time.sleep(0.02)
        yield port, users
    finally:
        proc.terminate()
        proc.wait(5)
        proc.stderr.close()


def _session(port, user, password, client_id, *, clean_start):
    """A paho MQTT 5 client with a persistent session (expiry 1 h) unless clean_start."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    p = Peer(port, user, password)
    p.c._client_id = client_id.encode()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    p.c.connect("127.0.0.1", port, keepalive=30, clean_start=clean_start, properties=props)
    p.c.loop_start()
    p._wait(lambda: p.connack is not None, what="CONNACK")
    assert p.connack == 0, p.connack
    return p


def test_no_broker_can_displace_the_engine_the_operator_or_another_broker():
    """On the generated broker configuration, broker A connects with every client id it
    could steal (the engine's, the operator's, broker B's persistent session), keeping
    and cleaning sessions: nobody is disconnected, and B still gets what was queued for it
    while it was away. (mosquitto otherwise lets any authenticated client take over any
    client id: use_username_as_clientid makes the client id the user name.)"""
    with tempfile.TemporaryDirectory(prefix="tokenbook-conf-") as tmp:
        os.chmod(tmp, 0o711)
        with script_broker(Path(tmp) / "w", A, B) as (port, users):
            _no_displacing(port, users)


def _no_displacing(port: int, users: dict[str, str]) -> None:
    engine_opts = client_options(username=ENGINE_USER, password=users[ENGINE_USER])
    standby = client_options(username=STANDBY_USER, password=users[STANDBY_USER])
    with running_gateway(port, engine_opts, "aiomqtt", probe_options=standby) as gw, \
            peer(port, OPERATOR_USER, users[OPERATOR_USER]) as op:
        op.subscribe(topics.ADMIN_REPLIES)
        # B rests an order on a persistent session, then goes away; a fill is queued for it.
        b = _session(port, B, users[B], "beta-desk", clean_start=False)
        b.subscribe(topics.exec_reports(B))
        assert allowed(b.publish(topics.orders(B), order("b-rest", 2, "sell", price="99.300")))
        b.wait_message(report_for("b-rest"), "B's ack")
        b.close()
        with peer(port, A, users[A]) as a:
            a.subscribe(topics.exec_reports(A))
            assert allowed(a.publish(topics.orders(A), order("a-hit", 1, "buy",
                                                              price="99.300")))
            a.wait_message(lambda t, p: report_for("a-hit")(t, p)
                           and json.loads(p)["exec_type"] == "trade", "A's fill")
        # A tries every client id it could take, with and without the queued session.
        for client_id in (gw.config.client_id, ENGINE_USER, STANDBY_USER, OPERATOR_USER,
                          op.c._client_id.decode(), B, "beta-desk"):
            for clean in (False, True):
                thief = _session(port, A, users[A], client_id, clean_start=clean)
                thief.subscribe("#")
                time.sleep(0.1)
                thief.close()
                assert not [t for t, _ in thief.messages if t.startswith(
                    ("tokenbook/v1/exec/" + B, "tokenbook/v1/orders/"))], client_id
        # Nobody was disconnected: the engine never reconnected and still answers ...
        assert gw.stats.reconnects == 0 and gw.connected
        assert op.disconnects == 0
        halt = json.dumps({"action": "halt", "symbol": "TB6M", "request_id": "d1"}).encode()
        assert allowed(op.publish(topics.ADMIN, halt))
        op.wait_message(lambda t, p: t == topics.ADMIN_REPLIES, "the engine's reply")
        # ... and B finds its fill waiting in its session.
        b = _session(port, B, users[B], "beta-desk", clean_start=False)
        try:
            _, fill = b.wait_message(lambda t, p: t == topics.exec_reports(B)
                                     and json.loads(p)["exec_type"] == "trade", "B's fill")
            assert json.loads(fill)["cl_ord_id"] == "b-rest"
        finally:
            b.close()


def test_tokenbook_serve_with_wrong_credentials_is_one_line_and_exit_3(broker, users,
                                                                       tmp_path):
    creds = tmp_path / "creds"
    creds.write_text(f"{ENGINE_USER}:{users[ENGINE_USER]}\n{STANDBY_USER}:wrong\n")
    creds.chmod(0o600)
    res = subprocess.run([sys.executable, "-m", "feeds.cli", "serve", "--broker", broker.url,
                          "--credentials", str(creds), "--data", str(tmp_path / "d")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 3 and "Traceback" not in res.stderr
    [line] = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert f"refused the connection as {STANDBY_USER}" in line
    assert not (tmp_path / "d" / "journal.log").exists()


# ---------------------------------------------------------------------- refused publishes
def test_a_publish_the_acl_refuses_is_reported_and_not_retried(secrets_dir, users, tmp_path,
                                                               caplog):
    """The link transport keeps PUBACK reason codes: with an ACL that lets the engine write
    alpha's reports only, beta's report comes back 0x87 Not authorized, is counted and
    logged once, leaves the outbox and is never sent again; the gateway goes on."""
    import logging
    out, _ = secrets_dir
    acl = tmp_path / "acl"
    shipped = ACL_FILE.read_text()
    assert "topic write tokenbook/v1/exec/+\n" in shipped
    acl.write_text(shipped.replace("topic write tokenbook/v1/exec/+\n",
                                   "topic write tokenbook/v1/exec/alpha\n"))
    opts = client_options(credentials=out / "credentials", username=ENGINE_USER)
    with EmbeddedBroker(password_file=out / "passwd", acl_file=acl) as b, \
            caplog.at_level(logging.ERROR, logger="tokenbook.gateway"), \
            running_gateway(b.port, opts, "link") as gw, \
            peer(b.port, A, users[A]) as a, peer(b.port, B, users[B]) as bb:
        a.subscribe(topics.exec_reports(A))
        bb.subscribe(topics.exec_reports(B))
        assert allowed(bb.publish(topics.orders(B), order("denied", 2, "sell", price="99.500")))
        deadline = time.monotonic() + WAIT
        while gw.stats.publish_refused == 0:
            assert time.monotonic() < deadline, "no refusal reported"
            time.sleep(0.01)
        assert allowed(a.publish(topics.orders(A), order("fine", 1)))
        a.wait_message(report_for("fine"), "alpha's report: the gateway goes on")
        time.sleep(0.5)                                  # a retry would show by now
        stats, owed = gw.stats, len(gw.cycle.outbox)
        in_flight = len(gw.session.inflight) + len(gw.session.queue)
    assert stats.publish_refused == 1 and stats.published >= 1, stats
    assert stats.refused_reasons == {"NOT_AUTHORIZED (0x87)": 1}
    assert owed == 0 and in_flight == 0
    assert bb.topics_seen() == []
    logged = [r.getMessage() for r in caplog.records if "refused the publish" in r.getMessage()]
    assert logged == [f"broker refused the publish on {topics.exec_reports(B)}: "
                      "NOT_AUTHORIZED (0x87); not retried"]
