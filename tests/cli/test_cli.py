"""The ``tokenbook`` command as an outsider runs it: subprocesses, exit codes, stderr.

Every failure is one line on stderr and a documented exit code (README, "Exit codes"),
never a traceback; a restart whose configuration disagrees with its data directory is
refused before anything is opened (feeds/venue.py).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feeds import topics
from feeds.broker import EmbeddedBroker, _free_port
from feeds.cli import build_parser
from feeds.exits import EXIT_BROKER, EXIT_DATA, EXIT_OK, EXIT_USAGE
from matching import __version__

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).with_name("tokenbook")
TOKENBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "feeds.cli"]

EXTRA = """
[[instrument]]
symbol = "TB1M"
isin = "XS000TB1M263"
name = "1-month bill"
kind = "tbill"
face_value = "1000"
token_decimals = 4
tick_size = "{tick}"
reference_price = "{ref}"
band_pct = "5"
min_order_qty = "0.01"
eligibility = ["retail", "institutional"]
issue_date = 2026-11-01
maturity = 2027-01-01
day_count = "ACT/365F"
yield_convention = "money_market"
"""
ACCOUNT = """
[[account]]
id = {id}
broker = "{broker}"
cash = 1000000
"""


def tokenbook(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*TOKENBOOK, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def one_line_error(res: subprocess.CompletedProcess, code: int) -> str:
    """The single stderr line of a failed command (exit ``code``), never a traceback."""
    assert res.returncode == code, (res.returncode, res.stdout[-500:], res.stderr[-2000:])
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


def closed_port() -> int:
    port = _free_port()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), 0.2).close()
    return port


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def found(tmp_path: Path, name: str, *args: str) -> Path:
    """Found a venue in ``tmp_path/name`` (serve on a private broker for half a second)."""
    data = tmp_path / name
    res = tokenbook("serve", "--data", str(data), "--seconds", "0.5", "--log-level", "error",
                    *args)
    assert res.returncode == EXIT_OK, res.stderr
    assert (data / "venue.json").exists()
    return data


# ---------------------------------------------------------------------- arguments
def test_version():
    res = tokenbook("--version")
    assert (res.returncode, res.stdout.strip()) == (0, f"tokenbook {__version__}")


@pytest.mark.parametrize("argv", [
    [], ["bogus"], ["serve", "--fsync", "sometimes"], ["serve", "--seconds", "-1"],
    ["serve", "--snapshot-every", "0"], ["serve", "--session", "25:00-26:00"],
    ["serve", "--log-level", "loud"], ["admin", "explode"], ["admin", "halt", "--timeout", "x"],
    ["watch", "--bogus"], ["demo", "--rate", "0"], ["serve", "--broker", "http://x:1"],
    ["admin", "halt", "--broker", "mqtt://h:99999"],
], ids=lambda a: " ".join(a) or "nothing")
def test_bad_arguments_are_one_line_and_exit_2(argv):
    line = one_line_error(tokenbook(*argv), EXIT_USAGE)
    assert line.startswith("tokenbook")


def test_every_option_has_help_text():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and "serve" in a.choices)
    parsers = {"tokenbook": parser, **sub.choices}
    missing = [f"{name} {a.dest}" for name, p in parsers.items() for a in p._actions
               if not a.help and a.dest != "help"]
    assert not missing, missing
    for name in ("", *sub.choices):
        res = tokenbook(*([name] if name else []), "--help")
        assert res.returncode == 0 and "exit codes:" in res.stdout, name
    assert "--log-level" in tokenbook("serve", "--help").stdout


def test_take_over_is_refused_in_one_line_naming_why_and_what_to_do(tmp_path):
    """On the file journal a take-over would fork the venue's state: refused (exit 2)
    before anything is opened, saying why and what to do instead."""
    data = tmp_path / "d"
    line = one_line_error(tokenbook("serve", "--take-over", "--data", str(data)), EXIT_USAGE)
    assert line.startswith("tokenbook serve: --take-over is refused with --data: without a "
                           "replicated journal")
    assert "would fork the venue's state" in line                     # why
    assert "stop the running engine" in line and "on its --data" in line   # what to do
    assert "--journal, where --take-over is a fenced switch" in line
    assert "docs/fencing.md" in line and (ROOT / "docs" / "fencing.md").exists()
    assert not data.exists()                                        # nothing was opened


# ---------------------------------------------------------------------- brokers
@pytest.mark.network
@pytest.mark.parametrize("command", [
    ["serve", "--data", "{tmp}/d"], ["watch"], ["watch", "--json"], ["admin", "halt"],
    ["simulate", "--seconds", "1"], ["demo", "--seconds", "1"]], ids=lambda c: c[0] +
    (" --json" if "--json" in c else ""))
def test_an_unreachable_broker_is_one_line_and_exit_3(command, tmp_path):
    url = f"mqtt://127.0.0.1:{closed_port()}"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in command]
    line = one_line_error(tokenbook(*argv, "--broker", url), EXIT_BROKER)
    assert f"cannot reach the MQTT broker at {url}" in line
    assert not (tmp_path / "d" / "journal.log").exists()


@pytest.mark.network
def test_watch_json_into_a_closed_pipe_ends_quietly_with_0():
    """``tokenbook watch --json | head -1``: the reader leaves, watch ends with 0."""
    with EmbeddedBroker() as b:
        pub = subprocess.run(["mosquitto_pub", "-p", str(b.port), "-r", "-q", "1", "-t",
                              topics.md("TB3M", "state"), "-m",
                              '{"symbol":"TB3M","state":"continuous"}'],
                             capture_output=True, timeout=10)
        if pub.returncode != 0:
            pytest.skip("needs mosquitto_pub")
        shell = f"{' '.join(TOKENBOOK)} watch --json --broker {b.url} | head -1"
        proc = subprocess.Popen(["sh", "-c", shell], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            # head exits after the retained line; watch notices at its next write.
            deadline = time.monotonic() + 20
            while proc.poll() is None and time.monotonic() < deadline:
                subprocess.run(["mosquitto_pub", "-p", str(b.port), "-q", "1", "-t",
                                topics.md("TB3M", "state"), "-m",
                                '{"symbol":"TB3M","state":"halted"}'],
                               timeout=10)
                time.sleep(0.2)
            out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert out.startswith(topics.md("TB3M", "state"))
    assert err == "" and proc.returncode == 0


# ---------------------------------------------------------------------- files
def test_bad_configuration_files_are_one_line_and_exit_2(tmp_path):
    bad_toml = write(tmp_path / "bad.toml", "[[account]\n")
    no_id = write(tmp_path / "noid.toml", '[[account]]\nbroker = "x"\n')
    unknown_asset = write(tmp_path / "asset.toml", ACCOUNT.format(id=1, broker="x")
                          + 'tokens = { NOPE = 5 }\n')
    bad_inst = write(tmp_path / "inst.toml", EXTRA.format(tick="0.001", ref="abc"))
    creds = write(tmp_path / "creds", "tokenbook-engine:pw\n")
    os.chmod(creds, 0o600)
    cases = [
        (["--accounts", str(tmp_path / "missing.toml")], "missing.toml"),
        (["--accounts", bad_toml], "bad.toml"),
        (["--accounts", no_id], "noid.toml"),
        (["--accounts", unknown_asset], "NOPE"),
        (["--instruments", bad_inst], "inst.toml"),
        (["--instruments", str(tmp_path / "nothere.toml")], "nothere.toml"),
        (["--credentials", str(tmp_path / "nocreds")], "nocreds"),
        (["--credentials", creds], "tokenbook-standby"),
        (["--tls-ca", str(tmp_path / "ca.crt"), "--broker", "mqtt://127.0.0.1:1"], "ca.crt"),
    ]
    for args, needle in cases:
        line = one_line_error(tokenbook("serve", "--data", str(tmp_path / "d"), *args),
                              EXIT_USAGE)
        assert needle in line, (args, line)
    assert not (tmp_path / "d").exists()                   # refused before opening anything


# ---------------------------------------------------------------------- restarts
@pytest.mark.network
def test_serve_says_where_it_serves_and_what_it_loaded(tmp_path):
    res = tokenbook("serve", "--data", str(tmp_path / "d"), "--seconds", "0.5")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert f"tokenbook {__version__} serve: the venue at mqtt://127.0.0.1:" in out
    assert "a private mosquitto" in out and "topics tokenbook/v1/#" in out
    assert f"data         {tmp_path / 'd'}: a new venue, founded now; epoch 1" in out
    assert "accounts     8 (1001-1003, 2001-2002, 3001, 9001-9002) of 4 brokers" in out
    assert "!!! DEMO ACCOUNTS" in out and "DEMO accounts" in res.stderr
    assert "instruments  7 (TB3M, TB6M, TB12M, BD3Y, BD5Y, BD10Y, GOLD)" in out
    again = tokenbook("serve", "--data", str(tmp_path / "d"), "--seconds", "0.5")
    assert "recovered to sequence 0" in again.stdout and "!!! DEMO ACCOUNTS" in again.stdout


@pytest.mark.network
def test_a_restart_with_another_accounts_file_is_refused_with_what_differs(tmp_path):
    data = found(tmp_path, "demo")
    more = write(tmp_path / "a.toml", ACCOUNT.format(id=4001, broker="delta"))
    line = one_line_error(tokenbook("serve", "--data", str(data), "--accounts", more),
                          EXIT_DATA)
    assert "holds accounts 1001-1003, 2001-2002, 3001, 9001-9002 (the demo accounts)" in line
    assert "adds 4001" in line and "--data NEWDIR" in line
    # A venue founded with a file restarts with the same file, or with none.
    mine = found(tmp_path, "mine", "--accounts", more)
    ok = tokenbook("serve", "--data", str(mine), "--accounts", more, "--seconds", "0.3")
    assert ok.returncode == 0 and "--accounts" in ok.stdout and "matches it" in ok.stdout
    assert "DEMO" not in ok.stdout
    changed = write(tmp_path / "b.toml", ACCOUNT.format(id=4001, broker="omega"))
    line = one_line_error(tokenbook("serve", "--data", str(mine), "--accounts", changed),
                          EXIT_DATA)
    assert "changes 4001 (delta/retail -> omega/retail)" in line
    assert tokenbook("serve", "--data", str(mine), "--seconds", "0.3").returncode == 0


@pytest.mark.network
def test_a_restart_without_its_instruments_or_with_changed_ones_is_refused(tmp_path):
    extra = write(tmp_path / "x.toml", EXTRA.format(tick="0.001", ref="99.700"))
    data = found(tmp_path, "d", "--instruments", extra)
    line = one_line_error(tokenbook("serve", "--data", str(data)), EXIT_DATA)
    assert "holds instruments TB1M, which this start does not define" in line
    assert f"founded with --instruments {extra}" in line
    retick = write(tmp_path / "y.toml", EXTRA.format(tick="0.005", ref="99.700"))
    line = one_line_error(tokenbook("serve", "--data", str(data), "--instruments", retick),
                          EXIT_DATA)
    assert "TB1M tick_size 0.001 -> 0.005" in line
    # A moved reference price is no disagreement: it is said, and recorded.
    moved = write(tmp_path / "z.toml", EXTRA.format(tick="0.001", ref="99.750"))
    ok = tokenbook("serve", "--data", str(data), "--instruments", moved, "--seconds", "0.3")
    assert ok.returncode == 0, ok.stderr
    assert "TB1M reference_price 99.7 -> 99.75" in ok.stdout
    assert json.loads((data / "venue.json").read_text())["instruments"]["TB1M"][
        "reference_price"] == "99.75"


@pytest.mark.network
def test_a_data_directory_from_before_venue_json_is_checked_against_its_snapshot(tmp_path):
    extra = write(tmp_path / "x.toml", EXTRA.format(tick="0.001", ref="99.700"))
    data = found(tmp_path, "d", "--instruments", extra)
    (data / "venue.json").unlink()
    line = one_line_error(tokenbook("serve", "--data", str(data)), EXIT_DATA)
    assert "holds instruments TB1M" in line            # not a KeyError from the replay
    ok = tokenbook("serve", "--data", str(data), "--instruments", extra, "--seconds", "0.3")
    assert ok.returncode == 0 and "DEMO ACCOUNTS" in ok.stdout
    assert (data / "venue.json").exists()


@pytest.mark.network
def test_a_data_directory_in_use_is_one_line_and_exit_5(tmp_path):
    """Two serves on one --data (each with its own broker): the second is refused because
    the first holds the data directory's lock, with its pid, before it checks anything
    else on the broker or reads the data."""
    data = tmp_path / "d"
    first = subprocess.Popen([*TOKENBOOK, "serve", "--data", str(data), "--seconds", "30"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True)
    try:
        assert "tokenbook" in first.stdout.readline()          # the banner: it is serving
        line = one_line_error(tokenbook("serve", "--data", str(data), "--log-level",
                                        "error"), EXIT_DATA)
        assert "is in use by another tokenbook serve" in line and str(first.pid) in line
    finally:
        first.terminate()
        first.wait(15)
        first.stdout.close()
