"""MQTT over TLS on a real private mosquitto: certificates made here with the openssl CLI.

A throwaway CA signs the broker's certificate (subjectAltName IP:127.0.0.1, DNS:localhost);
the broker runs a TLS-only listener with the shipped ACL and generated passwords. The
Gateway (as tokenbook-engine) and a BrokerClient complete an order round trip over TLS
with that CA; clients without the CA, with another CA, without TLS, or facing a
certificate for another host name cannot connect.
"""
from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from feeds.broker import EmbeddedBroker
from feeds.client import BrokerClient
from feeds.config import GatewayConfig
from feeds.security import (
    ACL_FILE,
    ENGINE_USER,
    ServerTLS,
    client_options,
    read_credentials,
)
from feeds.transports import make_gateway
from matching.instruments import Registry
from matching.messages import NewOrderSingle
from testkit.mqtt import connect, run, two_broker_engine

pytestmark = pytest.mark.network
ROOT = Path(__file__).resolve().parents[2]
OPENSSL = "/usr/bin/openssl"
REG = Registry.load_default()


def openssl(*args: str, cwd: Path) -> None:
    res = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, f"openssl {' '.join(args)}: {res.stderr}"


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA (EC P-256, valid 2 days): (cert, key)."""
    cert, key = d / f"{name}.crt", d / f"{name}.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return cert, key


def make_server_cert(d: Path, name: str, ca: tuple[Path, Path], san: str) -> ServerTLS:
    """A server certificate for ``san`` signed by ``ca``."""
    key, csr, cert, ext = (d / f"{name}.key", d / f"{name}.csr", d / f"{name}.crt",
                           d / f"{name}.ext")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}", cwd=d)
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
            "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext), cwd=d)
    return ServerTLS(str(cert), str(key))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "tokenbook-test-ca")
    other_ca = make_ca(d, "some-other-ca")
    return {"dir": d, "ca": ca[0], "other_ca": other_ca[0],
            "server": make_server_cert(d, "server", ca, "IP:127.0.0.1,DNS:localhost"),
            "elsewhere": make_server_cert(d, "elsewhere", ca, "DNS:broker.elsewhere.example")}


@pytest.fixture(scope="module")
def creds(tmp_path_factory):
    out = tmp_path_factory.mktemp("mqtt") / "secrets"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "make-credentials"),
                          "--out", str(out), "alpha", "beta"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return out, read_credentials(out / "credentials")


@pytest.fixture(scope="module")
def tls_broker(pki, creds):
    out, _ = creds
    with EmbeddedBroker(password_file=out / "passwd", acl_file=ACL_FILE,
                        tls=pki["server"]) as b:
        yield b


async def try_connect(broker, **options) -> str:
    """"connected", or the error a client got (bounded)."""
    try:
        async with connect(broker.url, timeout=3, **options):
            return "connected"
    except aiomqtt.MqttError as exc:
        return f"refused: {exc}"


def test_the_certificates_are_what_the_test_means(pki):
    """The server certificate chains to the test CA only, and names 127.0.0.1."""
    ok = subprocess.run([OPENSSL, "verify", "-CAfile", str(pki["ca"]), pki["server"].certfile],
                        capture_output=True, text=True, timeout=30)
    bad = subprocess.run([OPENSSL, "verify", "-CAfile", str(pki["other_ca"]),
                          pki["server"].certfile], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and bad.returncode != 0
    text = subprocess.run([OPENSSL, "x509", "-in", pki["server"].certfile, "-noout", "-text"],
                          capture_output=True, text=True, timeout=30).stdout
    assert "IP Address:127.0.0.1" in text


def test_order_round_trip_through_the_gateway_over_tls(tls_broker, pki, creds, transport):
    out, _ = creds
    cred = out / "credentials"
    engine = two_broker_engine()

    async def body():
        gw = make_gateway(engine, "127.0.0.1", tls_broker.port, GatewayConfig(
            client_id=f"engine-tls-{transport}", mqtt_options=client_options(
                credentials=cred, username=ENGINE_USER, tls_ca=pki["ca"])),
            transport=transport)
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        try:
            await asyncio.wait_for(gw.ready.wait(), 5)
            opts = {name: client_options(credentials=cred, username=name, tls_ca=pki["ca"])
                    for name in ("alpha", "beta")}
            async with BrokerClient("alpha", "127.0.0.1", tls_broker.port,
                                    mqtt_options=opts["alpha"]) as a, \
                    BrokerClient("beta", "127.0.0.1", tls_broker.port,
                                 mqtt_options=opts["beta"]) as b:
                ack = await a.submit(NewOrderSingle("t1", 1, "TB3M", "sell", "2",
                                                    price="99.100", time_in_force="gtc"))
                hit = await b.submit(NewOrderSingle("t2", 2, "TB3M", "buy", "1.5",
                                                    price="99.100"))
                fills = []
                async with asyncio.timeout(5):
                    async for r in a.reports():
                        if r.exec_type == "trade":
                            fills.append(r)
                            break
                return ack, hit, fills, gw.stats
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    ack, hit, fills, stats = run(body(), 20)
    assert (ack.exec_type, ack.ord_status, ack.leaves_qty) == ("new", "new", "2.0000")
    assert hit.exec_type == "new"
    assert (fills[0].cl_ord_id, fills[0].last_qty, fills[0].leaves_qty) == \
        ("t1", "1.5000", "0.5000")
    assert stats.trades == 1 and stats.received == 2


def test_clients_without_the_right_ca_or_without_tls_cannot_connect(tls_broker, pki, creds):
    _out, users = creds
    login = {"username": "alpha", "password": users["alpha"]}

    async def attempts():
        return await asyncio.gather(*[try_connect(tls_broker, **o) for o in options])

    options = [
        client_options(**login, tls_ca=pki["ca"]),
        client_options(**login, tls_ca=pki["other_ca"]),
        # TLS with the system's CAs only (no CA given): the test CA is not among them.
        {**login, "tls_params": aiomqtt.TLSParameters(cert_reqs=ssl.CERT_REQUIRED,
                                                      tls_version=ssl.PROTOCOL_TLS_CLIENT)},
        login,                                                 # plain MQTT to a TLS port
    ]
    outcomes = run(attempts(), 30)
    assert outcomes[0] == "connected"
    assert all(o.startswith("refused") for o in outcomes[1:]), outcomes
    assert "CERTIFICATE_VERIFY_FAILED" in outcomes[1] and \
        "CERTIFICATE_VERIFY_FAILED" in outcomes[2]
    # Over TLS with the right CA, the password is still checked.
    wrong = run(try_connect(tls_broker, **client_options(username="alpha", password="nope",
                                                         tls_ca=pki["ca"])), 10)
    assert wrong.startswith("refused")


def test_a_certificate_for_another_host_name_is_refused(pki, creds):
    """Same CA, certificate naming broker.elsewhere.example: the host name check fails."""
    out, users = creds
    with EmbeddedBroker(password_file=out / "passwd", acl_file=ACL_FILE,
                        tls=pki["elsewhere"]) as b:
        got = run(try_connect(b, **client_options(username="alpha", password=users["alpha"],
                                                  tls_ca=pki["ca"])), 10)
    assert got.startswith("refused") and "CERTIFICATE_VERIFY_FAILED" in got, got
    assert "hostname" in got.lower() or "IP address mismatch" in got, got


def test_the_gateway_does_not_connect_to_a_broker_it_cannot_verify(pki, creds, tls_broker,
                                                                    transport):
    """Another CA, or the right CA for another host name: the gateway gives up (after
    ``reconnect_give_up``) with the verification error, never online."""
    out, _ = creds
    cred = out / "credentials"

    async def attempt(port, ca):
        gw = make_gateway(two_broker_engine(), "127.0.0.1", port, GatewayConfig(
            client_id=f"engine-bad-tls-{transport}", reconnect_min=0.05, reconnect_max=0.1,
            reconnect_give_up=0.3, mqtt_options=client_options(
                credentials=cred, username=ENGINE_USER, tls_ca=ca)), transport=transport)
        try:
            await gw.run(asyncio.Event())
        except Exception as exc:      # noqa: BLE001 - either transport's error type
            return gw.ready.is_set(), str(exc)
        return gw.ready.is_set(), "returned"

    wrong_ca = run(attempt(tls_broker.port, pki["other_ca"]), 15)
    with EmbeddedBroker(password_file=out / "passwd", acl_file=ACL_FILE,
                        tls=pki["elsewhere"]) as b:
        wrong_host = run(attempt(b.port, pki["ca"]), 15)
    for ready, error in (wrong_ca, wrong_host):
        assert not ready and "CERTIFICATE_VERIFY_FAILED" in error, error
    assert "hostname" in wrong_host[1].lower() or "IP address mismatch" in wrong_host[1]


def test_embedded_tls_broker_config_has_no_plain_listener(tls_broker):
    conf = (Path(tls_broker.workdir) / "mosquitto.conf").read_text()
    assert conf.count("listener ") == 1 and "certfile " in conf and "keyfile " in conf
    assert "allow_anonymous false" in conf and "tls_version tlsv1.2" in conf
