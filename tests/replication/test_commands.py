"""The commands of the replicated journal: ``tokenbook cluster`` (a private JetStream
cluster on loopback, stopped cleanly on Ctrl-C) and ``serve --journal``'s refusals: no
broker, and a second primary while one appends."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from feeds.broker import EmbeddedBroker
from feeds.cluster import MIN_VERSION, _version, nats_server_binary
from feeds.exits import EXIT_ANOTHER_ENGINE, EXIT_FENCED, EXIT_USAGE
from matching.jetstream import NatsLink
from testkit.nats import ROOT, ServeProcess, unique_names

pytestmark = pytest.mark.replication


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_cluster_command_serves_jetstream_with_fsync_always_and_stops_on_ctrl_c(tmp_path):
    assert _version(nats_server_binary()) >= MIN_VERSION      # knows sync_interval
    out = tmp_path / "out"
    with open(out, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "feeds.cli", "cluster", "--dir",
                                 str(tmp_path / "c")], cwd=ROOT, stdout=f,
                                stderr=subprocess.STDOUT)
    try:
        _wait(lambda: "--journal" in out.read_text() or proc.poll() is not None, 60,
              "no URLs printed")
        text = out.read_text()
        urls = text.split("--journal ", 1)[1].split()[0]
        ports = [int(p) for p in re.findall(r":(\d+)", urls)]
        assert len(ports) == 3 and 4222 not in ports
        pids = [int(p) for p in re.findall(r"pid (\d+)", text)]
        confs = sorted((tmp_path / "c").glob("n*/nats.conf"))
        assert len(confs) == 3
        assert all("sync_interval: always" in c.read_text() for c in confs)
        link = NatsLink.parse(urls)
        try:
            link.call(link.connect(), 15)
            info = link.call(link.js.account_info(), 15)
            assert info.limits is not None               # JetStream answers
        finally:
            link.shutdown()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert "stopped" in out.read_text()
        for pid in pids:
            _wait(lambda p=pid: not os.path.exists(f"/proc/{p}") or
                  open(f"/proc/{p}/stat").read().split()[2] == "Z", 10, f"node {pid} left")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_serve_journal_without_a_broker_is_a_usage_error(nats_cluster):
    r = subprocess.run([sys.executable, "-m", "feeds.cli", "serve", "--journal",
                        nats_cluster.urls], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == EXIT_USAGE
    assert "--journal needs --broker" in r.stderr


def test_a_second_primary_refuses_while_the_first_appends(nats_cluster, tmp_path):
    stream = unique_names("two").venue
    with EmbeddedBroker() as broker:
        first = ServeProcess(tmp_path, "first", nats_cluster.urls, broker.url, stream, False)
        try:
            first.wait_for("  primary      epoch 1", 60)
            second = ServeProcess(tmp_path, "second", nats_cluster.urls, broker.url, stream,
                                  False)
            assert second.proc.wait(60) == EXIT_ANOTHER_ENGINE
            assert "start this one with --standby" in second.err.read_text()
            assert first.proc.poll() is None                 # undisturbed
        finally:
            first.stop()
    assert "served " in first.text()


def test_take_over_on_the_journal_fences_the_running_primary(nats_cluster, tmp_path):
    stream = unique_names("switch").venue
    with EmbeddedBroker() as broker:
        old = ServeProcess(tmp_path, "old", nats_cluster.urls, broker.url, stream, False)
        new = None
        try:
            old.wait_for("  primary      epoch 1", 60)
            new = ServeProcess(tmp_path, "new", nats_cluster.urls, broker.url, stream, False,
                               ("--take-over",))
            new.wait_for("  primary      epoch 2", 60)
            assert old.proc.wait(30) == EXIT_FENCED            # its next heartbeat: refused
            assert "fenced" in old.err.read_text()
            assert new.proc.poll() is None
        finally:
            old.stop()
            if new is not None:
                new.stop()
    assert "served " in new.text()
