"""Loopback ports and watched child processes, for the brokers tokenbook starts itself.

A child started here is killed by a watchdog if this process dies without cleaning up
(SIGKILL, ``os._exit``), so no broker is ever left behind.
"""
from __future__ import annotations

import os
import socket
import subprocess

__all__ = ["free_port", "accepts", "owns_listener", "Child"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def owns_listener(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds the socket listening on 127.0.0.1:``port`` (Linux).

    A connect alone cannot tell our broker from another process that took the port in the
    moment between ``free_port`` and mosquitto's bind. None where /proc cannot say.
    """
    try:
        with open("/proc/net/tcp") as f:
            lines = f.readlines()[1:]
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    want = f"0100007F:{port:04X}"
    inodes = {f"socket:[{cols[9]}]" for cols in (line.split() for line in lines)
              if len(cols) > 9 and cols[1] == want and cols[3] == "0A"}      # 0A = LISTEN
    if not inodes:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            continue
    return False


# $1: the broker's pid, $2: its private folder (ours, from mkdtemp) to remove after it.
_WATCHDOG = 'read _eof; kill -TERM "$1" 2>/dev/null; sleep 1; rm -rf -- "$2"'


class Child:
    """A broker process plus its watchdog: ``sh`` reading a pipe whose only writer is us.

    When this process dies in any way the kernel closes the write end, ``read`` returns and
    the watchdog SIGTERMs the broker and removes its folder. Why not PR_SET_PDEATHSIG:
    mosquitto started as root switches to the ``mosquitto`` user, and a credential change
    clears the death signal.
    """

    def __init__(self, argv: list[str], cwd: str, stderr_path: str):
        with open(stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                cwd=cwd,
                # Own session: a Ctrl-C for the terminal's process group reaches us, not the
                # broker, so the engine can still publish its offline status on the way out.
                start_new_session=True)
        self.watchdog: subprocess.Popen | None = None
        self.fd: int | None = None
        if os.name == "posix" and os.path.exists("/bin/sh"):
            r, w = os.pipe()                       # both ends non-inheritable
            try:
                self.watchdog = subprocess.Popen(
                    ["/bin/sh", "-c", _WATCHDOG, "tokenbook-broker-watchdog",
                     str(self.proc.pid), cwd],
                    stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True)
                self.fd = w
            except OSError:
                os.close(w)
            finally:
                os.close(r)

    @staticmethod
    def end(proc: subprocess.Popen, watchdog: subprocess.Popen | None, fd: int | None,
            timeout: float = 5.0) -> None:
        """Stop the watchdog first (so it can never signal a reused pid), then the broker."""
        if watchdog is not None:
            if watchdog.poll() is None:
                watchdog.kill()
            watchdog.wait()
        if fd is not None:
            os.close(fd)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
