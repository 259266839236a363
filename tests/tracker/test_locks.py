"""Tracker locks under contention, and the soft lock's lease, heartbeat and fencing."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from joulebench.errors import TrackerError
from joulebench.tracker import DONE, ProgressTracker
from joulebench.tracker.locks import SOFT_LOCK_FILE, LockTimeout, SoftLock
from joulebench.tracker.settings import load_settings

PROCESSES, EACH = 16, 100


def _contender(folder: str, worker: int, keys: list[str], lock: str, out: mp.Queue) -> None:
    tracker = ProgressTracker(Path(folder), lock=lock, lease_s=30.0)
    order = list(keys)
    random.Random(worker).shuffle(order)
    done: list[tuple[str, str]] = []
    for key in order:
        if len(done) == EACH:
            break
        claim = tracker.claim(key, "h", job_id=f"local-{worker}")
        if claim.status in ("done", "busy"):
            continue
        assert claim.experiment_id is not None
        if tracker.complete(key, claim.experiment_id):
            done.append((key, claim.experiment_id))
    out.put(done)


def _journal_ops(folder: Path, op: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in (folder / "journal.jsonl").read_text().splitlines()[1:]:
        event = json.loads(line)
        if event.get("op") == op:
            counts[event["key"]] += 1
    return counts


@pytest.mark.parametrize("lock", ["hard", "soft"])
def test_sixteen_processes_hundred_claims_each_share_one_pool(tmp_path: Path, lock: str) -> None:
    keys = [f"m::s::c{i}::1" for i in range(PROCESSES * EACH)]
    # A large compaction threshold keeps every event in one journal for the count below.
    ProgressTracker(tmp_path, lock=lock, compact_bytes=1 << 30).register(
        "s", [(k, "h") for k in keys]
    )
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [
        ctx.Process(target=_contender, args=(str(tmp_path), w, keys, lock, out))
        for w in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    results = [pair for _ in procs for pair in out.get(timeout=300)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(results) == PROCESSES * EACH
    ids = [experiment_id for _, experiment_id in results]
    assert len(set(ids)) == len(ids), "an experiment ID was issued twice"
    assert sorted({k for k, _ in results}) == sorted(keys)
    dones = _journal_ops(tmp_path, "done")
    assert set(dones.values()) == {1} and len(dones) == len(keys)
    state = ProgressTracker(tmp_path, lock=lock).read()
    assert all(state.keys[k].state == DONE for k in keys)
    assert not (tmp_path / SOFT_LOCK_FILE).exists()


def _hold_soft_lock_forever(folder: str, ready: mp.Event) -> None:
    lock = SoftLock(Path(folder), lease_s=30.0)
    lock.acquire(5)
    ready.set()
    time.sleep(600)


def test_soft_lock_of_a_killed_holder_on_this_host_is_broken_at_once(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_soft_lock_forever, args=(str(tmp_path), ready))
    holder.start()
    assert ready.wait(60)
    with pytest.raises(LockTimeout):
        SoftLock(tmp_path, lease_s=30.0).acquire(0.3)  # alive: not broken
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    start = time.monotonic()
    lock = SoftLock(tmp_path, lease_s=30.0)
    lock.acquire(5)
    assert time.monotonic() - start < 2, "a dead holder's lock waited for its lease"
    lock.release()
    assert not (tmp_path / SOFT_LOCK_FILE).exists()


def _foreign_lock(folder: Path) -> None:
    (folder / SOFT_LOCK_FILE).write_text(
        json.dumps({"token": "feedface", "host": "another-node", "pid": 1, "lease_s": 1.0})
    )


def test_soft_lock_of_another_host_is_broken_only_after_its_lease(tmp_path: Path) -> None:
    _foreign_lock(tmp_path)
    lock = SoftLock(tmp_path, lease_s=1.0)
    with pytest.raises(LockTimeout):
        lock.acquire(0.5)  # unchanged for less than the lease: still someone's lock
    start = time.monotonic()
    lock.acquire(5)
    assert 0.9 <= time.monotonic() - start < 3
    lock.release()


def test_soft_lock_heartbeat_keeps_a_long_holder_safe(tmp_path: Path) -> None:
    holder = SoftLock(tmp_path, lease_s=0.6)
    holder.acquire(1)
    try:
        with pytest.raises(LockTimeout):
            SoftLock(tmp_path, lease_s=0.6).acquire(2.0)  # 3x the lease, never broken
        holder.verify()
    finally:
        holder.release()
    other = SoftLock(tmp_path, lease_s=0.6)
    other.acquire(1)
    other.release()


def test_a_writer_that_lost_its_soft_lock_writes_nothing(tmp_path: Path) -> None:
    tracker = ProgressTracker(tmp_path, lock="soft", lease_s=30.0)
    tracker.register("s", [("m::s::c0::1", "h")])
    before = (tmp_path / "journal.jsonl").read_bytes()
    with pytest.raises(TrackerError, match="lost the soft tracker lock"):
        with tracker.locked() as state:
            _foreign_lock(tmp_path)  # what a waiter does after our lease ran out
            tracker._append(state, {"op": "fail", "key": "m::s::c0::1", "cause": "oom"})
    assert (tmp_path / "journal.jsonl").read_bytes() == before
    (tmp_path / SOFT_LOCK_FILE).unlink()


def test_threads_of_one_process_are_serialised_by_the_hard_lock(tmp_path: Path) -> None:
    tracker = ProgressTracker(tmp_path)
    keys = [f"m::s::t{i}::1" for i in range(200)]
    ids: list[str] = []

    def work(part: list[str]) -> None:
        for key in part:
            claim = tracker.claim(key, "h")
            ids.append(claim.experiment_id or "")

    threads = [threading.Thread(target=work, args=(keys[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 200


def test_tracker_yaml_selects_soft_lock(tmp_path: Path) -> None:
    (tmp_path / "tracker.yaml").write_text("lock: soft\nlease_s: 12\n")
    tracker = ProgressTracker(tmp_path)
    assert tracker.lock_mode == "soft"
    tracker.register("s", [("m::s::c0::1", "h")])
    assert tracker.claim("m::s::c0::1", "h").experiment_id == "0001"
    assert not (tmp_path / SOFT_LOCK_FILE).exists()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("lock: nfs\n", "'lock'"),
        ("lease_s: 1\n", "'lease_s'"),
        ("lease_s: soon\n", "'lease_s'"),
        ("locks: soft\n", "'locks'"),
        ("- soft\n", "mapping"),
        ("lock: [soft\n", "not valid YAML"),
    ],
)
def test_bad_tracker_yaml_is_a_one_line_error(tmp_path: Path, text: str, field: str) -> None:
    (tmp_path / "tracker.yaml").write_text(text)
    with pytest.raises(TrackerError) as err:
        load_settings(tmp_path)
    message = str(err.value)
    assert field in message and "tracker.yaml" in message and "\n" not in message


def test_short_lived_trackers_leak_no_descriptors(tmp_path: Path) -> None:
    """`status --watch` opens a tracker per redraw; a day of redraws must not hit EMFILE."""
    ProgressTracker(tmp_path).register("s", [("m::s::c0::1", "h")])
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(300):
        ProgressTracker(tmp_path).read()
    assert len(os.listdir("/proc/self/fd")) - before < 5


def test_a_line_written_past_the_lock_stops_the_next_writer(tmp_path: Path) -> None:
    """Whole unread lines under our lock mean the lock failed: refuse, cut nothing."""
    tracker = ProgressTracker(tmp_path)
    tracker.register("s", [("m::s::c0::1", "h"), ("m::s::c1::1", "h")])
    with pytest.raises(TrackerError, match="lock does not work here"):
        with tracker.locked() as state:
            with (tmp_path / "journal.jsonl").open("ab") as intruder:
                intruder.write(b'{"ts":"t","op":"fail","key":"m::s::c1::1","cause":"oom"}\n')
            tracker._append(state, {"op": "fail", "key": "m::s::c0::1", "cause": "oom"})
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["key"] == "m::s::c1::1", "the intruder's line was cut"


def test_soft_lock_heartbeat_threads_end_after_release(tmp_path: Path) -> None:
    before = threading.active_count()
    for _ in range(20):
        lock = SoftLock(tmp_path, lease_s=0.15)
        lock.acquire(1)
        lock.release()
    time.sleep(0.3)  # one heartbeat period and a bit
    assert threading.active_count() <= before + 1


def test_lock_timeout_names_its_file_and_survives_pickling(tmp_path: Path) -> None:
    import pickle

    error = LockTimeout(tmp_path / ".tracker.lock")
    again = pickle.loads(pickle.dumps(error))  # it crosses submitit's process boundary
    assert isinstance(again, LockTimeout) and isinstance(again, TimeoutError)
    assert again.path == str(tmp_path / ".tracker.lock") and str(again) == str(error)
    assert str(tmp_path / ".tracker.lock") in str(again)


def test_both_locks_share_one_acquire_loop() -> None:
    from joulebench.tracker.locks import HardLock, _BaseLock

    for kind in (HardLock, SoftLock):
        assert issubclass(kind, _BaseLock)
        assert "acquire" not in vars(kind) and "release" not in vars(kind)
