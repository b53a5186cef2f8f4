"""Issue 18's "done when": a venue brought up from an empty data directory with no
accounts file at all (``tokenbook serve --accounts none``), its accounts opened, funded and
whitelisted with ``tokenbook admin`` only, through a private mosquitto with the shipped
ACL and generated passwords; then two brokers' orders fill and settle, and the venue
recovers its accounts on a restart."""
from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from test_access import make_credentials, peer

from feeds import topics
from feeds.broker import EmbeddedBroker
from feeds.client import BrokerClient
from feeds.exits import EXIT_REFUSED, EXIT_USAGE
from feeds.security import MD_USER, client_options
from matching.messages import NewOrderSingle
from testkit.mqtt import run

pytestmark = pytest.mark.network
ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = ROOT / ".venv" / "bin" / "tokenbook"
TOKENBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "feeds.cli"]


@pytest.fixture()
def venue(tmp_path):
    """A private mosquitto with the shipped ACL, and the way to start ``tokenbook serve``
    on it and to run ``tokenbook admin`` against it."""
    secrets = tmp_path / "secrets"
    users = make_credentials(secrets, "alpha", "beta")
    with EmbeddedBroker(password_file=secrets / "passwd", acl_file=secrets / "acl") as b:
        url = f"mqtt://127.0.0.1:{b.port}"
        creds = str(secrets / "credentials")

        def serve(data: Path) -> subprocess.Popen:
            proc = subprocess.Popen(
                [*TOKENBOOK, "serve", "--broker", url, "--credentials", creds, "--data",
                 str(data), "--accounts", "none", "--seconds", "60", "--log-level", "error"],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
            with peer(b.port, MD_USER, users[MD_USER]) as md:
                md.subscribe(topics.STATUS)
                md.wait_message(lambda t, p: json.loads(p).get("status") == "online"
                                and json.loads(p).get("pid") == proc.pid, "engine online")
            return proc

        def admin(*argv: str) -> subprocess.CompletedProcess:
            return subprocess.run([*TOKENBOOK, "admin", *argv, "--broker", url,
                                   "--credentials", creds, "--timeout", "10"],
                                  cwd=ROOT, capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL)

        yield b, users, secrets, serve, admin


def accepted(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert res.stdout.startswith("accepted: ") and "(sequence " in res.stdout, res.stdout
    return res.stdout


def one_line(res: subprocess.CompletedProcess, code: int) -> str:
    assert res.returncode == code, (res.stdout, res.stderr)
    text = (res.stdout + res.stderr).strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    return text


async def filled(client: BrokerClient, cl_ord_id: str):
    """The report that filled ``cl_ord_id``."""
    async for r in client.reports():
        if r.cl_ord_id == cl_ord_id and r.ord_status == "filled":
            return r
    raise AssertionError("the report stream ended")  # pragma: no cover


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_an_operator_founds_a_venue_with_no_accounts_file_using_only_tokenbook_admin(
        venue, tmp_path):
    broker, _, secrets, serve, admin = venue
    data = tmp_path / "venue"
    proc = serve(data)
    try:
        # Nothing exists yet: an order's account is unknown, a deposit has nowhere to go.
        assert "UNKNOWN_ACCOUNT" in one_line(admin("deposit", "1001", "USDC", "1"),
                                             EXIT_REFUSED)
        accepted(admin("open-account", "1001", "alpha", "--country", "DE"))
        accepted(admin("open-account", "2001", "beta", "--eligibility", "institutional",
                       "--country", "FRA"))
        assert "DUPLICATE_ACCOUNT" in one_line(
            admin("open-account", "2001", "beta", "--country", "FR"), EXIT_REFUSED)
        for acct in ("1001", "2001"):
            accepted(admin("whitelist", acct, "TB3M"))
        accepted(admin("deposit", "1001", "USDC", "5000"))
        accepted(admin("deposit", "2001", "TB3M", "10"))
        assert "INSUFFICIENT_FUNDS" in one_line(admin("withdraw", "1001", "USDC", "5000.01"),
                                                EXIT_REFUSED)
        assert "INVALID_AMOUNT" in one_line(admin("deposit", "1001", "USDC", "-5"),
                                            EXIT_REFUSED)
        assert one_line(admin("deposit", "1001", "USDC"), EXIT_USAGE).startswith(
            "tokenbook admin: usage: tokenbook admin deposit ACCOUNT ASSET AMOUNT")

        async def trade():
            def opts(user):
                return client_options(credentials=secrets / "credentials", username=user)
            async with BrokerClient("alpha", "127.0.0.1", broker.port,
                                    mqtt_options=opts("alpha"), client_id="alpha") as a, \
                    BrokerClient("beta", "127.0.0.1", broker.port,
                                 mqtt_options=opts("beta"), client_id="beta") as b:
                buy = await a.submit(NewOrderSingle("b1", 1001, "TB3M", "buy", "2",
                                                    price="99.000"))
                assert buy.ord_status == "new"
                await b.submit(NewOrderSingle("s1", 2001, "TB3M", "sell", "2",
                                              price="99.000"))
                return await filled(a, "b1"), await filled(b, "s1")
        bought, sell = run(trade(), 30)
        assert bought.cum_qty == sell.cum_qty == "2.0000"
        assert bought.settl_amount == sell.settl_amount
        cash = Decimal(sell.settl_amount)
        assert cash > 0
        # The transfer agent (tokenbook-agent, picked for its controls) freezes a token
        # quantity: the buyer's withdrawal of both tokens is then refused.
        assert "freeze 1001 1 TB3M" in accepted(admin("freeze", "1001", "TB3M", "--qty", "1"))
        assert "INSUFFICIENT_TOKENS" in one_line(admin("withdraw", "1001", "TB3M", "2"),
                                                 EXIT_REFUSED)
        accepted(admin("unfreeze", "1001", "TB3M", "--qty", "1"))
        # Settled: the tokens are the buyer's, the cash the seller's, both free to leave.
        accepted(admin("withdraw", "1001", "TB3M", "2"))
        accepted(admin("withdraw", "2001", "USDC", str(cash)))
        assert "INSUFFICIENT_FUNDS" in one_line(
            admin("withdraw", "1001", "USDC", str(Decimal(5000) - cash + Decimal("0.000001"))),
            EXIT_REFUSED)
    finally:
        stop(proc)
    record = json.loads((data / "venue.json").read_text())
    assert record["accounts_source"] == "none" and not record["accounts"]
    # A restart recovers the accounts the operator opened (no accounts file then either).
    proc = serve(data)
    try:
        accepted(admin("withdraw", "1001", "USDC", str(Decimal(5000) - cash)))
        assert "ACCOUNT_NOT_EMPTY" in one_line(admin("close-account", "2001"), EXIT_REFUSED)
        accepted(admin("withdraw", "2001", "TB3M", "8"))
        accepted(admin("close-account", "2001"))
    finally:
        stop(proc)
