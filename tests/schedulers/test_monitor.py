"""Joining the tracker with sacct: which keys are alive, done, or need resuming."""

from __future__ import annotations

import socket

import pytest

from joulebench.schedulers.monitor import classify, resumable, sacct_starttime
from joulebench.schedulers.sacct import SacctJob
from joulebench.tracker import KeyRecord


def rec(
    state: str, job_id: str | None = "7_1", cause: str | None = None, pid: int | None = None
) -> KeyRecord:
    return KeyRecord(
        key="m::s::c::1",
        state=state,
        job_id=job_id,
        cause=cause,
        host=socket.gethostname(),
        pid=pid,
    )


@pytest.mark.parametrize(
    "state, sacct_state, history, expected",
    [
        ("running", "RUNNING", [], "running"),
        ("pending", "PENDING", [], "queued"),
        ("pending", "RUNNING", [], "queued"),  # --keys-per-task: its task runs another key first
        ("running", "PENDING", ["PREEMPTED"], "requeued"),
        ("running", "REQUEUED", [], "requeued"),
        ("running", "PREEMPTED", [], "failed:preempted"),
        ("running", "NODE_FAIL", [], "failed:node_fail"),
        ("running", "TIMEOUT", [], "failed:timeout"),
        ("running", "CANCELLED", [], "failed:cancelled"),
        ("failed", "FAILED", [], "failed:oom"),  # the tracker's cause is the precise one
        ("running", "COMPLETED", [], "stale"),
        ("done", "PREEMPTED", [], "done"),
    ],
)
def test_sacct_states_are_never_done_unless_the_tracker_says_so(
    state: str, sacct_state: str, history: list[str], expected: str
) -> None:
    jobs = {"7_1": SacctJob("7_1", sacct_state, history=history)}
    assert classify(rec(state, cause="oom" if state == "failed" else None), jobs) == expected


def test_slurm_names_the_cause_of_a_generic_interruption() -> None:
    jobs = {"7_1": SacctJob("7_1", "CANCELLED")}
    assert classify(rec("failed", cause="interrupted"), jobs) == "failed:cancelled"


@pytest.mark.parametrize(
    "state, cause", [("running", None), ("failed", "interrupted"), ("pending", None)]
)
def test_a_job_slurm_is_ending_is_stopping_never_queued_nor_resumable(
    state: str, cause: str | None
) -> None:
    # scancel, a preemption or a requeue: COMPLETING until its processes are gone.
    jobs = {"7_1": SacctJob("7_1", "COMPLETING")}
    label = classify(rec(state, cause=cause), jobs)
    assert label == "stopping"
    assert resumable(label) is None


def test_a_claim_whose_job_vanished_from_slurm_is_stale() -> None:
    assert classify(rec("running"), {}) == "stale"
    assert classify(rec("running"), None) == "running"  # sacct unavailable: trust the tracker


def test_local_claims_of_dead_processes_are_stale() -> None:
    assert classify(rec("running", job_id="local-1", pid=1), {}, alive=lambda p: False) == "stale"
    assert classify(rec("running", job_id="local-1", pid=1), {}, alive=lambda p: True) == "running"


def test_resumable_labels() -> None:
    assert resumable("failed:preempted") == "preempted"
    assert resumable("stale") == "interrupted"
    assert [resumable(x) for x in ("done", "running", "queued", "requeued", "pending")] == [
        None
    ] * 5


def test_starttime_is_local_and_a_little_earlier() -> None:
    assert sacct_starttime(None) == "now-7days"
    assert len(sacct_starttime("2026-11-24T01:00:00.000+00:00")) == 19


def test_eta_from_the_pace_of_recent_completions() -> None:
    from joulebench.schedulers.monitor import estimate_eta

    done = [
        KeyRecord(key=f"k{i}", state="done", updated_at=f"2026-11-24T01:{i:02d}:00+00:00")
        for i in range(0, 10, 2)
    ]
    pending = [KeyRecord(key=f"p{i}") for i in range(4)]
    eta = estimate_eta(done + pending)
    assert (eta.done, eta.total) == (5, 9)
    assert eta.per_hour == pytest.approx(30.0)  # one every 2 minutes
    assert eta.remaining_s == pytest.approx(4 * 120)
    assert estimate_eta(pending).remaining_s is None  # no pace yet
