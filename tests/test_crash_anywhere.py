"""Crash anywhere: SIGKILL a job process at hundreds of points and check what survives.

Each child runs the write path of a job (claim, checkpoint each batch, results JSON,
CSV row plus done mark, compaction) with the real functions. Most children are killed
at their Nth write, fsync, rename or truncate (a write is first cut in half, as a power
cut would leave it); the rest at a random instant. After every death the tracker must
load, every completion that returned must still be done, no ID may belong to two
keys, and the CSV may hold no partial or duplicate row; a last run must finish.
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import os
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from joulebench.results import CSV_COLUMNS, write_json_files
from joulebench.results.csv_store import read_rows
from joulebench.runner.checkpoint import BatchCheckpoint
from joulebench.schedulers.job import complete_with_row
from joulebench.tracker import DONE, ProgressTracker, TrackerState

KILLS = 300
KEYS_PER_SUITE = 4
BATCHES = 2
JOB_ID = "4242_7"  # one Slurm task requeued again and again: its claims are its own

CATEGORIES = {  # innermost matching frame wins: (file stem, function) -> category
    ("store", "_compact"): "compaction",
    ("store", "_start_journal"): "compaction",
    ("csv_store", "append_row"): "complete: CSV append",
    ("layout", "write_json_files"): "results JSON write",
    ("checkpoint", "add"): "checkpoint write",
    ("store", "claim"): "claim: journal append",
    ("store", "complete"): "complete: journal append",
}


def _where() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        name = (Path(frame.f_code.co_filename).stem, frame.f_code.co_name)
        if name in CATEGORIES:
            return CATEGORIES[name]
        frame = frame.f_back
    return "other"


def _arm(kill_at: int, report: Any) -> None:
    """Count I/O calls; at call number kill_at, report where and die mid-call."""
    count = [0]
    real_write = os.write

    def hit() -> bool:
        count[0] += 1
        if count[0] == kill_at:
            report({"ev": "kill", "where": _where()})
            return True
        return False

    def write(fd: int, data: Any) -> int:
        if hit():
            real_write(fd, bytes(data)[: max(1, len(data) // 2)])
            os.kill(os.getpid(), signal.SIGKILL)
        return real_write(fd, data)

    def wrap(real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if hit():
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        return call

    os.write = write  # type: ignore[assignment]
    for name in ("fsync", "replace", "rename", "ftruncate"):
        setattr(os, name, wrap(getattr(os, name)))


def _sections(experiment_id: str) -> dict[str, Any]:
    small = {"experiment_id": experiment_id}
    return {
        "setup": small,
        "variables": small,
        "architecture": small,
        "inference": small,
        "compute": small,
        "per_process": [{"process_rank": 0, **small}],
        "energy": small,
        "outputs": None,
    }


def _child(root: str, suite: str, kill_at: int, out_fd: int) -> None:
    real_write = os.write

    def report(event: dict[str, Any]) -> None:
        real_write(out_fd, (json.dumps(event) + "\n").encode())

    if kill_at:
        _arm(kill_at, report)
    base = Path(root)
    tracker = ProgressTracker(base / "tracker", compact_bytes=1500)
    for i in range(KEYS_PER_SUITE):
        key = f"m::{suite}::c{i}::1"
        claim = tracker.claim(key, "h", suite=suite, job_id=JOB_ID)
        report({"ev": "claim", "key": key, "id": claim.experiment_id, "status": claim.status})
        if claim.status == "done":
            continue
        experiment_id = claim.experiment_id or ""
        ckpt = BatchCheckpoint.open(
            base / "ckpt" / f"{experiment_id}_rank0.json",
            experiment_id=experiment_id,
            config_hash="h",
            world_size=1,
            rank=0,
            batch_size=2,
        )
        for batch in range(BATCHES):
            if not ckpt.done(batch):
                ckpt.add(batch, {"tokens": 4})
                report({"ev": "batch", "id": experiment_id, "batch": batch})
        write_json_files(base / "results", experiment_id, _sections(experiment_id))
        row = {c: "" for c in CSV_COLUMNS} | {
            "experiment_id": experiment_id,
            "key": key,
            "model": "m",
            "config_name": f"c{i}",
        }
        complete_with_row(tracker, key, experiment_id, base / "results" / "rows.csv", row)
        report({"ev": "done", "key": key, "id": experiment_id})
    tracker.sync()  # what every job does at its end
    report({"ev": "finished"})
    os._exit(0)


def _run_child(
    root: Path, suite: str, rng: random.Random, kill: bool
) -> tuple[list[dict[str, Any]], bool]:
    """One job process; returns its reports and whether a timer killed it."""
    read_fd, write_fd = os.pipe()
    timer = kill and rng.random() < 0.2
    kill_at = rng.randint(1, 90) if kill and not timer else 0
    proc = mp.get_context("fork").Process(target=_child, args=(str(root), suite, kill_at, write_fd))
    proc.start()
    os.close(write_fd)
    if timer:
        time.sleep(rng.uniform(0.0, 0.04))
        os.kill(proc.pid, signal.SIGKILL)
    proc.join(60)
    with os.fdopen(read_fd, "rb") as pipe:
        events = [json.loads(line) for line in pipe.read().splitlines()]
    return events, timer and proc.exitcode == -signal.SIGKILL


def _check_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1].decode()
    rows = list(csv.reader(complete.splitlines()))
    assert rows[0] == CSV_COLUMNS
    assert all(len(r) == len(CSV_COLUMNS) for r in rows[1:]), "a partial CSV row"
    parsed = read_rows(path)
    ids = Counter(r["experiment_id"] for r in parsed)
    assert not [i for i, n in ids.items() if n > 1], f"duplicate CSV rows: {ids}"
    return parsed


class Ledger:
    """Everything the children reported, checked against the disk after each death."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.key_of_id: dict[str, str] = {}
        self.done: dict[str, str] = {}
        self.batches: set[tuple[str, int]] = set()

    def absorb(self, events: list[dict[str, Any]]) -> None:
        for ev in events:
            if ev["ev"] == "claim" and ev["id"]:
                assert self.key_of_id.setdefault(ev["id"], ev["key"]) == ev["key"], (
                    f"ID {ev['id']} issued to two keys"
                )
            elif ev["ev"] == "done":
                self.done[ev["key"]] = ev["id"]
            elif ev["ev"] == "batch":
                self.batches.add((ev["id"], ev["batch"]))

    def check(self) -> TrackerState:
        state = ProgressTracker(self.root / "tracker").read()
        for key, experiment_id in self.done.items():
            rec = state.keys[key]
            assert rec.state == DONE and rec.experiment_id == experiment_id, key
        owners = Counter(r.experiment_id for r in state.keys.values() if r.experiment_id)
        assert max(owners.values(), default=1) == 1, "one ID on two keys in the tracker"
        for experiment_id, batch in self.batches:
            ckpt = BatchCheckpoint.open(
                self.root / "ckpt" / f"{experiment_id}_rank0.json",
                experiment_id=experiment_id,
                config_hash="h",
                world_size=1,
                rank=0,
                batch_size=2,
            )
            assert ckpt.done(batch), f"finished batch {batch} of {experiment_id} lost"
        _check_csv(self.root / "results" / "rows.csv")
        return state


def test_sigkill_at_hundreds_of_points_loses_and_repeats_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    ledger = Ledger(tmp_path)
    where: Counter[str] = Counter()
    kills, suite_no = 0, 0
    while kills < KILLS:
        suite_no += 1
        suite = f"s{suite_no}"
        for _ in range(200):  # kill until a child outlives its kill point
            events, timed_out = _run_child(tmp_path, suite, rng, kill=True)
            ledger.absorb(events)
            killed = [e["where"] for e in events if e["ev"] == "kill"]
            if killed or timed_out:
                kills += 1
                where[killed[0] if killed else "random instant"] += 1
            ledger.check()
            if any(e["ev"] == "finished" for e in events):
                break
        events, _ = _run_child(tmp_path, suite, rng, kill=False)  # the rerun
        ledger.absorb(events)
        assert events[-1]["ev"] == "finished"
        state = ledger.check()
        keys = [f"m::{suite}::c{i}::1" for i in range(KEYS_PER_SUITE)]
        assert all(state.keys[k].state == DONE for k in keys)
    rows = _check_csv(tmp_path / "results" / "rows.csv")
    state = ProgressTracker(tmp_path / "tracker").read()
    done_ids = sorted(r.experiment_id or "" for r in state.keys.values() if r.state == DONE)
    assert sorted(r["experiment_id"] for r in rows) == done_ids, "CSV rows != done keys"
    for experiment_id in done_ids:
        folder = tmp_path / "results" / "raw_results" / experiment_id
        for path in folder.glob("*.json"):
            json.loads(path.read_text())
    print(f"\n{kills} kills over {suite_no} suites: {dict(sorted(where.items()))}")
    assert kills >= 200
    for category in [*set(CATEGORIES.values()), "random instant"]:
        assert where[category] >= 3, f"too few kills in {category}: {dict(where)}"
