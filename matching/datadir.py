"""The data directory of one venue: one engine at a time, and an epoch per start.

``DataDir.open(path)`` takes an exclusive ``flock`` on ``path/lock`` (held until
``close()`` or the process ends, whatever way it ends: the kernel drops the lock with the
last descriptor), then increments the epoch persisted in ``path/epoch`` (written to a
temporary file, fsynced, renamed over the old one, the directory fsynced: a crash leaves
the old number or the new one, never a torn one). A second opener of the same directory
gets ``DataDirLocked`` at once and has touched nothing.

The epoch numbers the starts of a venue: 1 for the first, +1 for each restart. It goes on
every market-data message (a subscriber tells a restart from a gap) and into the ids of
rejects of undecodable messages (``R<epoch>.<n>``: unique for the venue's life). A data
directory from before epochs (a journal or snapshots but no epoch file) counts as having
had epoch 1.
"""
from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

__all__ = ["DataDir", "DataDirError", "DataDirLocked", "LOCK_NAME", "EPOCH_NAME"]

LOCK_NAME = "lock"
EPOCH_NAME = "epoch"


class DataDirError(Exception):
    """The data directory cannot be used (its epoch file is unreadable, ...)."""


class DataDirLocked(DataDirError):
    """Another process (another ``tokenbook serve``) holds the data directory.

    ``str()`` is one line for the command line: which directory, held by which pid."""

    def __init__(self, path: Path, holder: int | None):
        self.path, self.holder = path, holder
        by = f" (pid {holder})" if holder else ""
        super().__init__(f"data directory {path} is in use by another tokenbook serve{by}; "
                         "one engine per data directory")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DataDir:
    """A venue's data directory, held open: the lock, the epoch of this start, the paths."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.epoch = 0                    # this start's epoch, once opened
        self._fd = -1

    @classmethod
    def open(cls, path: str | os.PathLike) -> DataDir:
        """Lock ``path`` (created if missing) and start a new epoch in it."""
        d = cls(path)
        d.path.mkdir(parents=True, exist_ok=True)
        d._lock()
        try:
            d.epoch = d._next_epoch()
        except BaseException:
            d.close()
            raise
        return d

    # ------------------------------------------------------------------ the files
    @property
    def snapshots(self) -> Path:
        return self.path / "snapshots"

    @property
    def journal_path(self) -> Path:
        return self.path / "journal.log"

    @property
    def locked(self) -> bool:
        return self._fd >= 0

    def _lock(self) -> None:
        path = self.path / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise DataDirLocked(self.path, holder) from None
            raise
        # The holder's pid, for the refusal another opener prints (advice only: the lock
        # is the flock, not the file's content).
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _next_epoch(self) -> int:
        path = self.path / EPOCH_NAME
        try:
            text = path.read_text()
        except FileNotFoundError:
            old = 1 if (self.journal_path.exists() or self.snapshots.exists()) else 0
        else:
            try:
                old = int(text.strip())
            except ValueError:
                raise DataDirError(f"{path}: not an epoch number: {text[:40]!r}") from None
            if old < 0:
                raise DataDirError(f"{path}: negative epoch {old}")
        epoch = old + 1
        tmp = path.with_name(EPOCH_NAME + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, f"{epoch}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(self.path)
        return epoch

    def close(self) -> None:
        """Release the lock (the epoch stays as it is: the next open starts the next)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)                  # closing the last descriptor drops the flock

    def __enter__(self) -> DataDir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DataDir({str(self.path)!r}, epoch={self.epoch}, locked={self.locked})"


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
