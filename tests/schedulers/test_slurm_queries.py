"""Slurm commands go through one injectable runner; here it plays sacct and squeue failing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from joulebench import api
from joulebench.errors import SchedulerError
from joulebench.schedulers.sacct import parse_squeue
from joulebench.schedulers.slurm import max_array_size, query_sacct
from joulebench.suite.spec import make_key
from joulebench.tracker import ProgressTracker

DATA = Path(__file__).parent / "data"


def runner_returning(outputs: dict[bool, tuple[int, str]]):
    calls: list[list[str]] = []

    def run(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        calls.append(cmd)
        code, out = outputs["--json" in cmd]
        return subprocess.CompletedProcess(cmd, code, out, "sacct: error: unknown option")

    return run, calls


def test_json_first_then_parsable2_when_json_is_unsupported() -> None:
    text = (DATA / "sacct_22.05_parsable2_duplicates.txt").read_text()
    run, calls = runner_returning({True: (1, ""), False: (0, text)})
    result = query_sacct(["3", "8_1"], "2026-11-24T00:00:00", run)
    assert result.problem is None and result.jobs["8_1"].state == "COMPLETED"
    assert ["--json" in c for c in calls] == [True, False]


def test_missing_or_slow_sacct_falls_back_with_a_reason() -> None:
    def missing(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        raise FileNotFoundError("sacct")

    def slow(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        raise subprocess.TimeoutExpired(cmd, timeout_s)

    assert query_sacct(["1"], "now", missing).problem == "sacct not found on PATH"
    assert "did not answer within" in query_sacct(["1"], "now", slow).problem
    garbage, _ = runner_returning({True: (0, "not json"), False: (0, "garbage")})
    result = query_sacct(["1"], "now", garbage)
    assert result.jobs is None and "unexpected output" in result.problem


def test_no_jobs_means_no_call() -> None:
    run, calls = runner_returning({True: (0, "{}"), False: (0, "")})
    assert query_sacct([], "now", run).jobs == {} and calls == []


def test_max_array_size_falls_back_when_scontrol_fails() -> None:
    def failing(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(cmd, 1, "", "error")

    assert max_array_size(failing) == 1001


DBD_DOWN = (
    "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent "
    "connection to host:127.0.0.1:6819: Connection refused\n"
    "sacct: error: Sending PersistInit msg: Connection refused\n"
    "sacct: error: Problem talking to the database: Connection refused\n"
)


def test_a_failing_sacct_is_reported_in_one_line() -> None:
    def down(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(cmd, 1, "", DBD_DOWN)

    assert (
        query_sacct(["1"], "now", down).problem
        == "sacct failed: Problem talking to the database: Connection refused"
    )


def test_squeue_lists_live_array_tasks_one_per_line() -> None:
    jobs = parse_squeue("205_2|PENDING\n205_0|RUNNING\n210|COMPLETING\n")
    assert {j: r.state for j, r in jobs.items()} == {
        "205_2": "PENDING",
        "205_0": "RUNNING",
        "210": "COMPLETING",
    }
    with pytest.raises(SchedulerError, match="squeue: unexpected line"):
        parse_squeue("JOBID PARTITION NAME\n")


KEYS = [make_key("m", "s", f"c{i}", 1) for i in range(3)]


@pytest.fixture
def slurm_tracker(tmp_path: Path) -> api.Paths:
    """k0 running as 7_0, k1 preempted (requeued by submitit as 7_1), k2 queued as 7_2."""
    paths = api.Paths(tracker_dir=tmp_path / "tracker")
    tracker = ProgressTracker(paths.tracker_dir)
    tracker.register("s", [(k, "h") for k in KEYS])
    ids = {k: f"7_{i}" for i, k in enumerate(KEYS)}
    tracker.record_submission("s", KEYS, "7_0", ids)
    for key in KEYS[:2]:
        tracker.claim(key, "h", suite="s", cycle=1, job_id=ids[key])
    tracker.fail(KEYS[1], "preempted", "USR2")
    return paths


def slurm_runner(sacct: tuple[int, str], squeue: tuple[int, str]):
    def run(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        code, out = sacct if cmd[0] == "sacct" else squeue
        return subprocess.CompletedProcess(cmd, code, out, DBD_DOWN if code else "")

    return run


LIVE = "7_0|RUNNING\n7_1|PENDING\n7_2|PENDING\n"


def test_sacct_down_squeue_says_which_keys_are_alive(slurm_tracker: api.Paths) -> None:
    run = slurm_runner((1, ""), (0, LIVE))
    labels = api.key_labels("s", slurm_tracker, runner=run)
    assert [labels.labels[k] for k in KEYS] == ["running", "queued", "queued"]
    assert labels.sacct_problem.endswith("live jobs from squeue, failure causes from the tracker")
    assert api.resumable_keys("s", paths=slurm_tracker, runner=run) == []


def test_a_job_sacct_has_not_recorded_yet_is_not_stale(slurm_tracker: api.Paths) -> None:
    # slurmctld reports jobs to slurmdbd asynchronously: sacct may not know a running job.
    run = slurm_runner((0, '{"jobs": []}'), (0, "7_0|RUNNING\n"))
    labels = api.key_labels("s", slurm_tracker, runner=run).labels
    assert [labels[k] for k in KEYS] == ["running", "failed:preempted", "pending"]
    assert api.resumable_keys("s", paths=slurm_tracker, runner=run) == [KEYS[1]]


def sacct_json(*jobs: tuple[str, str]) -> str:
    import json

    return json.dumps(
        {
            "jobs": [
                {
                    "job_id": 100 + n,
                    "array": {
                        "job_id": int(j.split("_")[0]),
                        "task_id": {"set": True, "number": int(j.split("_")[1])},
                    },
                    "state": {"current": [state]},
                    "exit_code": {},
                    "nodes": "n1",
                }
                for n, (j, state) in enumerate(jobs)
            ]
        }
    )


def test_a_requeued_job_sacct_still_shows_ended_is_not_resubmitted(
    slurm_tracker: api.Paths,
) -> None:
    # After a node failure slurmctld requeues the task at once, but slurmdbd may still hold
    # only the NODE_FAIL record: squeue, which lists the requeued task, decides.
    sacct = sacct_json(("7_0", "NODE_FAIL"), ("7_1", "PREEMPTED"), ("7_2", "PENDING"))
    run = slurm_runner((0, sacct), (0, "7_1|PENDING\n7_2|PENDING\n"))
    labels = api.key_labels("s", slurm_tracker, runner=run).labels
    assert [labels[k] for k in KEYS] == ["failed:node_fail", "requeued", "queued"]
    assert api.resumable_keys("s", paths=slurm_tracker, runner=run) == [KEYS[0]]


def test_squeue_live_state_wins_over_a_lagging_sacct(slurm_tracker: api.Paths) -> None:
    # sacct still says RUNNING for 7_0 (preempted, back in the queue) and 7_2 (started, key
    # not claimed yet); squeue, slurmctld's own state, says PENDING and RUNNING.
    sacct = sacct_json(("7_0", "RUNNING"), ("7_1", "PENDING"), ("7_2", "RUNNING"))
    run = slurm_runner((0, sacct), (0, "7_0|PENDING\n7_1|COMPLETING\n7_2|RUNNING\n"))
    labels = api.key_labels("s", slurm_tracker, runner=run)
    assert [labels.labels[k] for k in KEYS] == ["requeued", "stopping", "running"]
    assert api.resumable_keys("s", paths=slurm_tracker, runner=run) == []


def test_squeue_down_keeps_sacct_view_of_live_jobs(slurm_tracker: api.Paths) -> None:
    sacct = sacct_json(("7_0", "RUNNING"), ("7_1", "PENDING"), ("7_2", "PENDING"))
    labels = api.key_labels("s", slurm_tracker, runner=slurm_runner((0, sacct), (1, "")))
    assert [labels.labels[k] for k in KEYS] == ["running", "queued", "queued"]
    assert labels.unknown == frozenset() and labels.sacct_problem is None


def test_only_the_first_waiting_key_of_a_starting_task_is_running(tmp_path: Path) -> None:
    paths = api.Paths(tracker_dir=tmp_path / "tracker")
    tracker = ProgressTracker(paths.tracker_dir)
    tracker.register("s", [(k, "h") for k in KEYS])
    tracker.record_submission("s", KEYS, "7_0", {k: "7_0" for k in KEYS})  # one task, 3 keys
    run = slurm_runner((0, sacct_json(("7_0", "RUNNING"))), (0, "7_0|RUNNING\n"))
    labels = api.key_labels("s", paths, runner=run).labels
    assert [labels[k] for k in KEYS] == ["running", "queued", "queued"]
    tracker.claim(KEYS[0], "h", suite="s", cycle=1, job_id="7_0")
    tracker.complete(KEYS[0], "0001")
    labels = api.key_labels("s", paths, runner=run).labels
    assert [labels[k] for k in KEYS] == ["done", "running", "queued"]


def test_failure_lines_name_the_cause_the_table_shows(slurm_tracker: api.Paths) -> None:
    from joulebench.schedulers.slurm_view import latest_failures

    tracker = ProgressTracker(slurm_tracker.tracker_dir)
    tracker.fail(KEYS[0], "interrupted", "stopped by a signal")  # a TERM alone: scancel
    sacct = sacct_json(("7_0", "CANCELLED"), ("7_1", "PREEMPTED"), ("7_2", "PENDING"))
    run = slurm_runner((0, sacct), (0, "7_2|PENDING\n"))
    labels = api.key_labels("s", slurm_tracker, runner=run)
    state = tracker.read()
    failures = latest_failures(list(state.keys.values()), labels)
    assert {r.key: r.cause for r in failures} == {KEYS[0]: "cancelled", KEYS[1]: "preempted"}
    assert all(labels.labels[r.key] == f"failed:{r.cause}" for r in failures)
    assert state.keys[KEYS[0]].cause == "interrupted"  # the journal keeps what the task saw


def test_ended_in_sacct_with_squeue_down_refuses_to_resubmit(slurm_tracker: api.Paths) -> None:
    sacct = sacct_json(("7_0", "NODE_FAIL"), ("7_1", "RUNNING"), ("7_2", "PENDING"))
    run = slurm_runner((0, sacct), (1, ""))
    labels = api.key_labels("s", slurm_tracker, runner=run)
    assert labels.unknown == frozenset({KEYS[0]})
    with pytest.raises(SchedulerError, match="state is unknown"):
        api.resumable_keys("s", paths=slurm_tracker, runner=run)


def test_unknown_slurm_state_refuses_to_resubmit(slurm_tracker: api.Paths) -> None:
    run = slurm_runner((1, ""), (1, ""))
    labels = api.key_labels("s", slurm_tracker, runner=run)
    assert labels.unknown == frozenset(KEYS)
    assert labels.sacct_problem.endswith("showing the tracker alone")
    with pytest.raises(SchedulerError, match="state is unknown"):
        api.resumable_keys("s", paths=slurm_tracker, runner=run)
    state = ProgressTracker(slurm_tracker.tracker_dir).read()
    with pytest.raises(SchedulerError, match="submitting nothing"):
        api._live_keys(state, slurm_tracker, run, KEYS)


def test_no_sacct_keeps_running_slurm_keys_running(slurm_tracker: api.Paths) -> None:
    labels = api.key_labels("s", slurm_tracker, use_sacct=False)
    assert [labels.labels[k] for k in KEYS] == ["running", "failed:preempted", "pending"]


def test_submit_refused_over_unknown_slurm_state_writes_nothing(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refusal comes before the backup and the registration, like every user error."""
    import hashlib

    from tests.conftest import write_suite

    bin_dir = checkout / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\nexit 1\n")  # never called: only on PATH
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    write_suite(checkout, "few", "models: [tiny-demo]\ncontrolled: {batch_size: [2, 4]}\n")
    paths = api.Paths()
    keys = [s.key for s in api.expand_suite("few", 1, paths)]
    tracker = ProgressTracker(paths.tracker_dir)
    tracker.register("few", [(k, "h") for k in keys])
    tracker.record_submission("few", keys, "9_0", {k: f"9_{i}" for i, k in enumerate(keys)})
    tracker.sync()

    def tree() -> dict[str, str]:
        return {
            str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(checkout.rglob("*"))
            if p.is_file() and p.name != ".tracker.lock"
        }

    before = tree()
    with pytest.raises(SchedulerError, match="submitting nothing"):
        api.submit_suite(
            "few",
            executor="slurm",
            paths=paths,
            preflight=False,
            runner=slurm_runner((1, ""), (1, "")),
        )
    assert tree() == before


def test_latest_failures_keep_each_suites_own() -> None:
    from joulebench.schedulers.slurm_view import KeyLabels, latest_failures
    from joulebench.tracker import KeyRecord

    busy = [
        KeyRecord(
            f"m::busy::c::{i}",
            state="failed",
            suite="busy",
            cause="oom",
            updated_at=f"2026-12-02T10:{i:02d}:00",
        )
        for i in range(8)
    ]
    quiet = [
        KeyRecord(
            "m::quiet::c::1",
            state="failed",
            suite="quiet",
            cause="oom",
            updated_at="2026-12-01T00:00:00",
        )
    ]
    labels = KeyLabels({r.key: "failed:oom" for r in busy + quiet}, None)
    shown = latest_failures(busy + quiet, labels, per_suite=5)
    assert [r.suite for r in shown].count("busy") == 5 and shown[-1].suite == "quiet"
    assert shown[0].key == "m::busy::c::7"  # newest first
