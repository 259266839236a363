"""The progress store: one lock, an append-only journal, snapshots and legacy files.

Every read-modify-write happens under the tracker lock (locks.py: flock, or a lease file
where flock does not work). Updates append one journal line
(O(1)); the in-memory cache reads only the bytes appended since it last looked, so a
claim costs the same at 100 keys and at 100k. Compaction folds the journal into
``tracker_state.json`` and refreshes the seed's three files, all by atomic rename.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Literal

from joulebench.errors import TrackerError
from joulebench.fsutil import atomic_write_bytes, atomic_write_json, read_json
from joulebench.tracker import legacy
from joulebench.tracker.journal import (
    append_at,
    archive_journal,
    encode_events,
    new_journal,
    parse_events,
    read_journal,
)
from joulebench.tracker.layout import (
    ARCHIVE_DIR,
    BACKUPS_DIR,
    DEFAULT_DIR,
    HISTORY_DIR,
    JOURNAL,
    PROGRESS_BACKUP_GLOB,
    PROGRESS_FILE,
    SNAPSHOT,
    archive_name,
    backup_names,
    state_backup_of,
)
from joulebench.tracker.locks import LockTimeout, make_lock, pid_alive
from joulebench.tracker.settings import SETTINGS_FILE, load_settings
from joulebench.tracker.state import (
    DONE,
    PENDING,
    RUNNING,
    KeyRecord,
    TrackerState,
    apply_event,
    format_id,
    is_slurm_job,
)

_STORAGE_ERRORS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EIO,
    errno.EFBIG,
}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# new: a fresh ID; resumed: the key's earlier ID (a requeue or a rerun); done: nothing to
# run; busy: a live process or job holds the key.
ClaimStatus = Literal["new", "resumed", "done", "busy"]


@dataclass(frozen=True)
class Claim:
    key: str
    experiment_id: str | None
    attempt: int
    status: ClaimStatus


class ProgressTracker:
    """Thread- and process-safe progress store rooted at one directory."""

    def __init__(
        self,
        directory: Path = DEFAULT_DIR,
        *,
        compact_bytes: int = 2 << 20,
        lock_timeout_s: float = 600.0,
        lock: str | None = None,
        lease_s: float | None = None,
    ) -> None:
        self.dir = Path(directory)
        self.compact_bytes = compact_bytes
        self.lock_timeout_s = lock_timeout_s
        settings = load_settings(self.dir)
        self.lock_mode = lock or settings.lock
        self._lock = make_lock(self.dir, self.lock_mode, lease_s or settings.lease_s)
        self._state: TrackerState | None = None
        self._journal_generation = -1
        self._offset = 0
        self._header_end = 0  # events start here: an offset past it means something to fold
        # Kept open between operations: reads and appends skip an open() each, and the
        # open descriptor pins the inode, so "same inode as the path" proves that no
        # compaction has replaced the journal since we last read it.
        self._journal: BinaryIO | None = None
        self._journal_str = str(self.dir / JOURNAL)  # stat()ed on every operation
        self._pid = os.getpid()
        self._dir_ready = False

    def close(self) -> None:
        """Let go of the open journal and lock descriptors (the GC does it too)."""
        self._close_journal()
        self._lock.close()

    def _close_journal(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # ---- loading -------------------------------------------------------------------
    @property
    def journal_path(self) -> Path:
        return self.dir / JOURNAL

    def _load_base(self) -> TrackerState:
        snap = self.dir / SNAPSHOT
        if snap.exists():
            try:
                return TrackerState.from_dict(read_json(snap))
            except (ValueError, KeyError, TypeError) as exc:
                raise TrackerError(
                    f"{snap}: unreadable snapshot ({type(exc).__name__}); run "
                    f"`joulebench tracker repair --tracker-dir {self.dir}`"
                ) from None
        return legacy.load_legacy(self.dir)

    def _reload(self) -> None:
        state = self._load_base()
        self._journal_generation, self._offset = -1, 0
        self._close_journal()
        if not self.journal_path.exists() and (self.dir / SNAPSHOT).exists():
            raise TrackerError(
                f"{self.journal_path} is missing: updates since the last "
                "compaction are lost unless you restore the file; run "
                f"`joulebench tracker repair --tracker-dir {self.dir}` to go on "
                "from the snapshot"
            )
        if self.journal_path.exists():
            handle = self._open_journal()
            chunk = read_journal(self.journal_path, handle=handle)
            if chunk.generation > state.generation:
                handle.close()
                raise TrackerError(
                    f"{self.dir / SNAPSHOT} is missing or older than "
                    f"{self.journal_path}; run `joulebench tracker repair "
                    f"--tracker-dir {self.dir}`"
                )
            if chunk.generation == state.generation:
                for event in chunk.events:
                    apply_event(state, event)
                self._journal_generation, self._offset = chunk.generation, chunk.end_offset
                self._header_end = chunk.header_end
                self._journal = handle
            else:
                # an older journal is one a crash left behind mid-compaction: the snapshot
                # already holds its events, and the next append starts a new journal.
                handle.close()
        self._state = state

    def _open_journal(self) -> BinaryIO:
        # O_APPEND: even a writer that slipped past a broken lock cannot overwrite lines.
        try:
            fd = os.open(self.journal_path, os.O_RDWR | os.O_APPEND)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            fd = os.open(self.journal_path, os.O_RDONLY)  # a reader without write access
        self._pid = os.getpid()
        return os.fdopen(fd, "rb", buffering=0)

    def _journal_unchanged(self) -> bool:
        if self._journal is None or self._pid != os.getpid():
            return False
        try:
            on_disk = os.stat(self._journal_str)
        except FileNotFoundError:
            return False
        held = os.fstat(self._journal.fileno())
        return (on_disk.st_ino, on_disk.st_dev) == (held.st_ino, held.st_dev)

    def _refresh(self) -> TrackerState:
        """Bring the cache up to date by reading only what was appended since last time."""
        if self._state is None or not self._journal_unchanged():
            self._reload()
        else:
            assert self._journal is not None
            size = os.fstat(self._journal.fileno()).st_size
            if size > self._offset:
                data = os.pread(self._journal.fileno(), size - self._offset, self._offset)
                events, used = parse_events(self.journal_path, data)
                for event in events:
                    apply_event(self._state, event)
                self._offset += used
        assert self._state is not None
        return self._state

    @contextmanager
    def locked(self) -> Iterator[TrackerState]:
        """Hold the tracker lock with a fresh state; mutate only through _append."""
        if not self._dir_ready:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise TrackerError(
                    f"{self.dir}: is a file, not a folder; pass a tracker "
                    "folder (it is created if missing)"
                ) from None
            self._dir_ready = True
        try:
            self._lock.acquire(self.lock_timeout_s)
        except LockTimeout:
            raise TrackerError(
                f"{self._lock.path}: could not take the tracker lock within "
                f"{self.lock_timeout_s:.0f} s; another joulebench process holds "
                "it (check `ps`), or the file system lacks working locks (set "
                f"`lock: soft` in {self.dir / SETTINGS_FILE})"
            ) from None
        try:
            yield self._refresh()
        except OSError as exc:
            self._state = None  # a failed write may have left the cache ahead of disk
            if exc.errno not in _STORAGE_ERRORS:
                raise
            # Appends are whole lines and snapshots atomic renames: what failed left no
            # trace a reader would take for a record.
            raise TrackerError(
                f"{exc.filename or self.dir}: {exc.strerror}; free space or "
                "fix permissions, then rerun (this update was not recorded)"
            ) from None
        except BaseException:
            self._state = None
            raise
        finally:
            self._lock.release()

    def read(self) -> TrackerState:
        """A consistent copy of the state; creates nothing on disk."""
        if not self.dir.exists():
            return TrackerState()
        with self.locked() as state:
            return state.copy()

    # ---- writing -------------------------------------------------------------------
    def _append(self, state: TrackerState, *events: dict[str, Any]) -> None:
        if not events:
            return
        self._lock.verify()
        stamp = utc_now()
        stamped = [{"ts": stamp, **event} for event in events]
        if self._journal_generation != state.generation or self._journal is None:
            self._start_journal(state.generation)
        assert self._journal is not None
        data = encode_events(stamped)
        append_at(
            self._journal.fileno(),
            self._offset,
            data,
            self.journal_path,
            f"set `lock: soft` in {self.dir / SETTINGS_FILE}",
        )
        self._offset += len(data)
        for event in stamped:
            apply_event(state, event)

    def _compact_if_large(self, state: TrackerState) -> None:
        if self._offset >= self.compact_bytes:
            self._compact(state)

    def _compact(self, state: TrackerState) -> None:
        self._lock.verify()
        if not self.journal_path.exists():
            # Once a snapshot exists a journal always does, so a missing one means a
            # deleted one (lost updates), never a crash between the two writes.
            self._start_journal(state.generation)
        archive_journal(
            self.journal_path, self.dir / HISTORY_DIR, datetime.now(timezone.utc).strftime("%Y-%m")
        )
        state.generation += 1
        atomic_write_json(self.dir / SNAPSHOT, state.to_dict(), indent=None)
        legacy.write_legacy(self.dir, state)
        self._start_journal(state.generation)

    def _start_journal(self, generation: int) -> None:
        new_journal(self.journal_path, generation)
        self._close_journal()
        self._journal = self._open_journal()
        self._journal_generation = generation
        self._offset = self._header_end = os.fstat(self._journal.fileno()).st_size

    def sync(
        self, *, lazy: bool = False, interval_s: float = 60.0, suites: Iterable[str] | None = None
    ) -> None:
        """Fold the journal and refresh the legacy files (at the end of a job or command).

        Folding is O(keys): 1.6 s at 100k keys, under the lock. An array task runs one key,
        so folding at the end of every task would cost O(keys) per key. ``lazy`` (what array
        tasks use) folds only when there is something new and the last fold is older than
        ``interval_s`` or nothing of ``suites`` (default: of any suite) is left pending or
        running, so the seed files trail by at most a minute while a suite runs and are
        whole when it ends, whatever other suites have registered and not yet run.
        """
        with self.locked() as state:
            if not lazy or self._worth_folding(state, interval_s, suites):
                self._compact(state)

    def _worth_folding(
        self, state: TrackerState, interval_s: float, suites: Iterable[str] | None
    ) -> bool:
        if self._offset <= self._header_end:
            return False
        try:
            age_s = time.time() - os.stat(self.dir / SNAPSHOT).st_mtime
        except FileNotFoundError:
            return True
        if age_s >= interval_s:
            return True
        mine = None if suites is None else set(suites)
        return not any(
            r.state in (RUNNING, PENDING)
            for r in state.keys.values()
            if mine is None or r.suite in mine
        )

    def register(self, suite: str, keys: Iterable[tuple[str, str]]) -> dict[str, int]:
        """Record (key, config_hash) pairs as pending unless known; returns counts by state."""
        counts = {"new": 0, "done": 0, "known": 0}
        with self.locked() as state:
            events = []
            for key, config_hash in keys:
                rec = state.keys.get(key)
                if rec is None or (rec.state != DONE and rec.config_hash != config_hash):
                    events.append(
                        {"op": "register", "key": key, "suite": suite, "config_hash": config_hash}
                    )
                counts["new" if rec is None else "done" if rec.state == DONE else "known"] += 1
            self._append(state, *events)
            self._compact_if_large(state)
        return counts

    def claim(
        self,
        key: str,
        config_hash: str,
        *,
        suite: str | None = None,
        cycle: int | None = None,
        job_id: str | None = None,
        device_set: str | None = None,
    ) -> Claim:
        """Give this key an experiment ID (reusing the one a requeued run had);
        ``device_set`` names the devices it runs on when several run at once."""
        with self.locked() as state:
            rec = state.keys.get(key)
            if rec is not None and rec.state == DONE:
                return Claim(key, rec.experiment_id, rec.attempts, "done")
            if rec is not None and rec.state == RUNNING and self._owner_alive(rec, job_id):
                return Claim(key, rec.experiment_id, rec.attempts, "busy")
            if rec is not None and rec.experiment_id:
                # A changed config keeps the ID; the workers' checkpoint check refuses to
                # mix batches of two configs, with the fix in its message.
                experiment_id, status = rec.experiment_id, "resumed"
            else:
                experiment_id, status = format_id(state.last_id + 1), "new"
            attempt = (rec.attempts if rec else 0) + 1
            self._append(
                state,
                {
                    "op": "claim",
                    "key": key,
                    "experiment_id": experiment_id,
                    "attempt": attempt,
                    "config_hash": config_hash,
                    "suite": suite,
                    "cycle": cycle,
                    "job_id": job_id,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    **({"device_set": device_set} if device_set else {}),
                },
            )
            self._compact_if_large(state)
            return Claim(key, experiment_id, attempt, status)

    @staticmethod
    def _owner_alive(rec: KeyRecord, job_id: str | None) -> bool:
        """Whether another live process provably holds this key's claim.

        A requeued Slurm task carries the same job ID as the run that claimed the key,
        and Slurm never runs two instances of one job ID: that claim is over.
        """
        if job_id and rec.job_id == job_id and is_slurm_job(job_id):
            return False
        if rec.host != socket.gethostname() or rec.pid is None or rec.pid == os.getpid():
            return False
        return pid_alive(rec.pid)

    def complete(
        self, key: str, experiment_id: str, on_locked: Callable[[int], None] | None = None
    ) -> bool:
        """Mark done; ``on_locked(attempt)`` (the CSV append) runs under the same lock.

        Returns False, and runs nothing, when the key was already done.
        """
        with self.locked() as state:
            rec = state.keys.get(key)
            if rec is not None and rec.state == DONE:
                return False
            if on_locked is not None:
                on_locked(rec.attempts if rec else 1)
            self._append(state, {"op": "done", "key": key, "experiment_id": experiment_id})
            self._compact_if_large(state)
            return True

    def fail(self, key: str, cause: str, error: str) -> None:
        with self.locked() as state:
            self._append(state, {"op": "fail", "key": key, "cause": cause, "error": error[:500]})
            self._compact_if_large(state)

    def record_submission(
        self, suite: str, keys: list[str], job_id: str, job_ids: dict[str, str] | None = None
    ) -> None:
        with self.locked() as state:
            self._append(
                state,
                {
                    "op": "submitted",
                    "suite": suite,
                    "keys": keys,
                    "job_id": job_id,
                    "job_ids": job_ids or {},
                },
            )

    # ---- backups and --fresh -------------------------------------------------------
    def backup(self, keep: int = 50) -> Path | None:
        """Timestamped copies of the current state (seed 000's backups/ folder)."""
        if not self.dir.exists() or not any(self.dir.iterdir()):
            return None
        with self.locked() as state:
            if not state.keys:
                return None
            self._compact(state)
            stamp = datetime.now().strftime("%Y%m%d_%H%M%S_%f")
            backups = self.dir / BACKUPS_DIR
            backups.mkdir(exist_ok=True)
            progress_name, state_name = backup_names(stamp)
            target = backups / progress_name
            # Copied by atomic write: a backup torn by a crash would be the one that
            # `tracker repair` reaches for first.
            atomic_write_bytes(target, (self.dir / PROGRESS_FILE).read_bytes())
            atomic_write_bytes(backups / state_name, (self.dir / SNAPSHOT).read_bytes())
            for old in sorted(backups.glob(PROGRESS_BACKUP_GLOB))[:-keep]:
                old.unlink(missing_ok=True)
                old.with_name(state_backup_of(old.name)).unlink(missing_ok=True)
            return target

    def archive_suite(self, suite: str) -> Path | None:
        """--fresh: move the suite's records to archive/ and forget them; IDs still grow."""
        with self.locked() as state:
            records = [r.to_dict() for r in state.keys.values() if r.suite == suite]
            if not records:
                return None
            stamp = datetime.now().strftime("%Y%m%d_%H%M%S_%f")
            target = self.dir / ARCHIVE_DIR / archive_name(suite, stamp)
            atomic_write_json(target, {"suite": suite, "archived_at": utc_now(), "keys": records})
            self._append(state, {"op": "archive", "suite": suite})
            self._compact(state)
            return target
