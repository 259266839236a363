"""The tracker's two locks: a kernel lock by default, a lease file where locks do not work.

``hard`` (default) holds ``flock`` on ``.tracker.lock`` through one descriptor kept open,
so taking the lock costs two system calls, and the kernel frees it when a holder dies.

``soft`` is for shared file systems whose ``flock``/``fcntl`` locks are missing or broken
(NFS without lockd, some Lustre mounts with ``noflock``). The holder creates
``.tracker.softlock`` with ``O_EXCL`` (atomic on NFSv3+ and Lustre), writes a token
into it and touches it every ``lease_s / 3`` while it holds it. A waiter breaks the lock
when its holder is a dead process on the same host, or when the file has not changed
for ``lease_s`` by the waiter's own clock, so clock skew between nodes cannot break a
live lock. Before writing, a holder checks that the token is still its own (fencing).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import socket
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path

from joulebench.errors import TrackerError
from joulebench.tracker.layout import HARD_LOCK_FILE, SOFT_LOCK_FILE

LOCK_MODES = ("hard", "soft")
log = logging.getLogger(__name__)


class LockTimeout(TimeoutError):
    """The lock at ``path`` stayed taken for the whole timeout.

    Carries the path and pickles with it: it can cross submitit's process boundary.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"{path}: lock still held when the timeout ran out")
        self.path = str(path)

    def __reduce__(self) -> tuple[type[LockTimeout], tuple[str]]:
        return (LockTimeout, (self.path,))


def _sleep_backoff(attempt: int) -> None:
    time.sleep(min(0.0005 * (2 ** min(attempt, 7)), 0.05))


class _BaseLock(ABC):
    """The one acquire loop (as in tox-dev/filelock's ``BaseFileLock``): per-process
    re-entrancy, thread exclusion, fork safety, timeout and backoff live here; a lock kind
    implements only ``_try_acquire`` (one attempt, no waiting) and ``_release``.
    """

    path: Path

    def __init__(self) -> None:
        self._threads = threading.RLock()
        self._depth = 0
        self._pid = os.getpid()

    def acquire(self, timeout_s: float) -> None:
        if not self._threads.acquire(timeout=max(timeout_s, 0.0)):
            raise LockTimeout(self.path)
        if self._pid != os.getpid():  # a forked child inherits nothing it may trust
            self._after_fork()
        self._depth += 1
        if self._depth > 1:
            return
        deadline = time.monotonic() + timeout_s
        try:
            self._begin_acquire()
            attempt = 0
            while not self._try_acquire():
                if time.monotonic() >= deadline:
                    raise LockTimeout(self.path)
                _sleep_backoff(attempt)
                attempt += 1
            self._acquired()
        except BaseException:
            self._leave()
            raise

    def release(self) -> None:
        if self._depth == 1:
            self._release()
        self._leave()

    def _leave(self) -> None:
        self._depth -= 1
        self._threads.release()

    def _after_fork(self) -> None:
        self._pid = os.getpid()
        self._depth = 0

    def _begin_acquire(self) -> None:  # noqa: B027 (an optional hook)
        """Reset per-acquire bookkeeping before the first attempt."""

    def _acquired(self) -> None:  # noqa: B027 (an optional hook)
        """Runs once the lock is held (outermost level only)."""

    @abstractmethod
    def _try_acquire(self) -> bool:
        """One attempt, no waiting: True when the lock is now held."""

    @abstractmethod
    def _release(self) -> None:
        """Let go of the file lock (outermost level only)."""

    def verify(self) -> None:  # noqa: B027 (an optional hook)
        """Raise TrackerError if this holder can no longer trust the lock."""

    def close(self) -> None:  # noqa: B027 (an optional hook)
        """Free what is kept between operations."""


class HardLock(_BaseLock):
    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.path = Path(directory) / HARD_LOCK_FILE
        self._path_str = str(self.path)
        self._fd: int | None = None

    def _after_fork(self) -> None:
        super()._after_fork()
        if self._fd is not None:
            # flock belongs to the open file description, which the parent shares.
            os.close(self._fd)
            self._fd = None

    def _try_acquire(self) -> bool:
        while True:
            if self._fd is None:
                self._fd = os.open(self._path_str, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            if self._same_file(self._fd):
                return True
            # Someone deleted or replaced the lock file: our lock guards nothing.
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _same_file(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self._path_str)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (on_disk.st_ino, on_disk.st_dev) == (held.st_ino, held.st_dev)

    def _release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def verify(self) -> None:
        """The kernel keeps a flock until its holder lets go; nothing to check."""

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __del__(self) -> None:
        # `status --watch` builds a tracker per redraw: without this, one fd per redraw.
        try:
            self.close()
        except Exception:  # at interpreter exit `os` may already be gone
            pass


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SoftLock(_BaseLock):
    def __init__(self, directory: Path, lease_s: float = 30.0) -> None:
        super().__init__()
        self.path = Path(directory) / SOFT_LOCK_FILE
        self.lease_s = lease_s
        self._token: str | None = None
        self._host = socket.gethostname()
        self._beat = threading.Event()
        self._beater: threading.Thread | None = None
        self._seen: tuple[object, ...] | None = None
        self._seen_since = 0.0

    def _after_fork(self) -> None:
        super()._after_fork()
        self._token, self._beater = None, None  # the parent's lease is not the child's

    def _begin_acquire(self) -> None:
        self._seen, self._seen_since = None, time.monotonic()

    def _try_acquire(self) -> bool:
        """Create the lock file, breaking a stale one first: a dead holder on this host,
        or a file unchanged for ``lease_s`` by this process's own clock."""
        while True:
            token = secrets.token_hex(8)
            if self._create(token):
                self._token = token
                return True
            current = self._observe()
            if current is None:
                continue  # released between our create and our look: try again at once
            now = time.monotonic()
            if current != self._seen:
                self._seen, self._seen_since = current, now
            if not (self._holder_dead(current) or now - self._seen_since >= self.lease_s):
                return False
            self._break(current)
            self._seen = None

    def _acquired(self) -> None:
        self._start_heartbeat()

    def _create(self, token: str) -> bool:
        body = json.dumps(
            {
                "token": token,
                "host": self._host,
                "pid": os.getpid(),
                "lease_s": self.lease_s,
                "since": time.time(),
            }
        ).encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def _observe(self) -> tuple[object, ...] | None:
        """What the lock file looks like now: (inode, mtime, holder); None when gone."""
        try:
            st = os.stat(self.path)
            holder = json.loads(self.path.read_bytes() or b"{}")
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            holder = {}  # half-written by a holder that died at creation: stale by lease
        return (
            st.st_ino,
            st.st_mtime_ns,
            holder.get("token"),
            holder.get("host"),
            holder.get("pid"),
        )

    def _holder_dead(self, observed: tuple[object, ...]) -> bool:
        _, _, _, host, pid = observed
        return host == self._host and isinstance(pid, int) and not pid_alive(pid)

    def _break(self, observed: tuple[object, ...]) -> None:
        """Move the stale file aside, then check it was the one we judged stale."""
        aside = self.path.with_name(f"{SOFT_LOCK_FILE}.stale-{secrets.token_hex(6)}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            moved = json.loads(aside.read_bytes() or b"{}").get("token")
        except (ValueError, OSError):
            moved = None
        if moved != observed[2]:
            # A new holder took the lock between our look and the rename: give it back.
            try:
                os.link(aside, self.path)
            except FileExistsError:
                log.warning(
                    "%s: broke a lock that was just taken; two writers may have overlapped",
                    self.path,
                )
        aside.unlink(missing_ok=True)

    def _start_heartbeat(self) -> None:
        if self._beater is None or not self._beater.is_alive():
            self._beater = threading.Thread(
                target=self._heartbeat, daemon=True, name="joulebench-softlock-heartbeat"
            )
            self._beater.start()

    def _heartbeat(self) -> None:
        # Ends once the lock is let go, so short-lived trackers (one per `status --watch`
        # redraw) leave no thread behind; the next acquire starts a new one.
        while True:
            self._beat.wait(self.lease_s / 3)
            if self._token is None or self._pid != os.getpid():
                return
            try:
                os.utime(self.path)
            except OSError:
                pass  # verify() reports a lost lock before the next write

    def verify(self) -> None:
        try:
            holder = json.loads(self.path.read_bytes() or b"{}")
        except (OSError, ValueError):
            holder = {}
        if self._token is None or holder.get("token") != self._token:
            raise TrackerError(
                f"{self.path}: this process lost the soft tracker lock (its "
                f"lease of {self.lease_s:.0f} s ran out, e.g. the process was "
                "paused); nothing was written; rerun the command"
            )

    def _release(self) -> None:
        if self._token is None:
            return
        try:
            holder = json.loads(self.path.read_bytes() or b"{}")
        except (OSError, ValueError):
            holder = {}
        if holder.get("token") == self._token:
            self.path.unlink(missing_ok=True)
        self._token = None

    def close(self) -> None:
        """Nothing is held between operations."""


def make_lock(directory: Path, mode: str, lease_s: float) -> HardLock | SoftLock:
    if mode == "soft":
        return SoftLock(directory, lease_s)
    return HardLock(directory)
