"""Where each key stands: the tracker joined with sacct (pure, given both)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from joulebench.schedulers.sacct import SacctJob
from joulebench.tracker import DONE, FAILED, PENDING, RUNNING, KeyRecord, pid_alive
from joulebench.tracker.state import INTERRUPTED, is_slurm_job

# Labels, in display order. "queued": submitted, waiting in Slurm; "requeued": preempted
# or requeued and waiting to run again; "stopping": its Slurm job is being ended
# (COMPLETING: cancelled, preempted or requeued; which, sacct says within seconds);
# "stale": the tracker says running but no live process or Slurm job holds the key.
# A key that failed reads "failed:<cause>" (tracker.state.FAILURE_CAUSES, or "unknown").
Label = Literal["done", "running", "queued", "requeued", "stopping", "pending", "stale"]
LABELS: tuple[Label, ...] = get_args(Label)
QUEUED: Label = "queued"
REQUEUED: Label = "requeued"
STOPPING: Label = "stopping"
STALE: Label = "stale"
FAILED_PREFIX = f"{FAILED}:"
# Keys a live Slurm job holds: never resubmitted.
LIVE_LABELS: tuple[Label, ...] = (RUNNING, QUEUED, REQUEUED, STOPPING)


def failed_label(cause: str | None) -> str:
    return f"{FAILED_PREFIX}{cause or 'unknown'}"


def is_failed(label: str) -> bool:
    return label.startswith(FAILED_PREFIX)


def _local_label(rec: KeyRecord, alive: Callable[[int], bool]) -> str:
    if (
        rec.state == RUNNING
        and rec.host == socket.gethostname()
        and rec.pid is not None
        and not alive(rec.pid)
        and not is_slurm_job(rec.job_id)
    ):
        return STALE
    return rec.state


def classify(
    rec: KeyRecord, jobs: dict[str, SacctJob] | None, alive: Callable[[int], bool] = pid_alive
) -> str:
    """One label per key; ``jobs`` is None when sacct could not be asked."""
    if rec.state == DONE:
        return DONE
    label = _local_label(rec, alive)
    if jobs is not None and is_slurm_job(rec.job_id):
        job = jobs.get(str(rec.job_id))
        if job is None:
            label = STALE if rec.state == RUNNING else label
        elif job.category == "active":
            interrupted = job.state == "REQUEUED" or any(
                h in ("PREEMPTED", "REQUEUED", "NODE_FAIL", "TIMEOUT") for h in job.history
            )
            # A task of several keys runs them in turn: one not claimed yet is waiting.
            label = (
                STOPPING
                if job.state == "COMPLETING"
                else RUNNING
                if job.state == "RUNNING" and rec.state != PENDING
                else REQUEUED
                if interrupted
                else QUEUED
            )
        elif job.category == "failed":
            # "interrupted" only says a signal came; Slurm knows whether it was a cancel,
            # a preemption or the time limit. Causes found by the job itself are finer.
            precise = rec.state == FAILED and rec.cause not in (None, INTERRUPTED)
            return failed_label(rec.cause if precise else job.cause)
        elif rec.state in (RUNNING, PENDING):  # COMPLETED in Slurm, never marked done
            label = STALE
    if label == FAILED:
        return failed_label(rec.cause)
    return label


def mark_starting(
    records: list[KeyRecord], labels: dict[str, str], jobs: dict[str, SacctJob] | None
) -> None:
    """A running job that holds no claimed key yet is starting its first waiting key: say
    ``running`` for that one, not ``queued`` (records in tracker order, which is the order
    a task of several keys runs them)."""
    if not jobs:
        return
    busy = {str(r.job_id) for r in records if labels.get(r.key) == RUNNING}
    for rec in records:
        job = jobs.get(str(rec.job_id))
        if (
            job is not None
            and job.state == "RUNNING"
            and job.job_id not in busy
            and labels.get(rec.key) == QUEUED
        ):
            labels[rec.key] = RUNNING
            busy.add(job.job_id)


def resumable(label: str) -> str | None:
    """The cause to resume a key for, or None when it is done or still alive."""
    if is_failed(label):
        return label.removeprefix(FAILED_PREFIX)
    return INTERRUPTED if label == STALE else None


def sacct_starttime(iso_utc: str | None, margin_min: int = 5) -> str:
    """A tracker timestamp (UTC, ISO) as sacct's local --starttime, a little earlier."""
    if not iso_utc:
        return "now-7days"
    moment = datetime.fromisoformat(iso_utc).astimezone() - timedelta(minutes=margin_min)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class Eta:
    done: int
    total: int
    per_hour: float | None  # keys finished per hour, over the recent completions
    remaining_s: float | None


def estimate_eta(records: list[KeyRecord], recent: int = 20) -> Eta:
    """Time left from the pace of the last ``recent`` completions (not the whole history,
    which a pause or a preemption storm would skew)."""
    finished = sorted(
        datetime.fromisoformat(r.updated_at).timestamp()
        for r in records
        if r.state == DONE and r.updated_at
    )
    done, total = len(finished), len(records)
    window = finished[-recent:]
    if len(window) < 2 or window[-1] <= window[0]:
        return Eta(done, total, None, None)
    per_s = (len(window) - 1) / (window[-1] - window[0])
    return Eta(done, total, per_s * 3600, (total - done) / per_s)
