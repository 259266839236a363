"""Slurm faults on the dev cluster: nothing lost, nothing run twice.

Each test runs a small suite as an array, breaks the cluster mid-suite with
slurm/dev-cluster/fault (slurmctld stopped, the node crashed, slurmdbd stopped), brings
it back with `up`, and checks that every key finished exactly once: done once in the
tracker and its journal, one CSV row each, distinct experiment IDs, no ID wasted.
Whatever happens, the cluster is left with every daemon up and no job of the test left.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from joulebench import api
from joulebench.schedulers.slurm import query_sacct
from joulebench.tracker import ProgressTracker
from tests.conftest import REPO, write_suite
from tests.conftest import wait_for as shared_wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.e2e, pytest.mark.usefixtures("slurm_cluster")]

DEV = REPO / "slurm" / "dev-cluster"
TRACKER = "persistent_progress_trackers"
# Three short keys (about 30 s each, mostly start-up); with one CPU each, two run at a
# time on the dev node's two CPUs and the third waits in the queue.
SUITE = """
models: [tiny-demo]
shuffle: false  # array tasks 0 and 1 run first
overrides:
  num_processes: 1
  warmup_iterations: 0
  energy_meter: codecarbon
  idle_baseline_s: 0
  max_input_tokens: 64
  num_prompts: 8
  batch_size: 2
  max_output_tokens: 64
  min_output_tokens: 64
controlled:
  seed: [1, 2, 3]
"""
URGENT = "jb-fault-urgent"  # the job that preempts the suite's tasks
SLURM_FLAGS = [
    "--partition",
    "gpu",
    "--time",
    "00:20:00",
    "--cpus-per-task",
    "1",
    "--array-parallelism",
    "2",
]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    # sbatch exports this to the tasks. The runner sizes torch's threads from the CPUs
    # it can see (2 here: the dev node binds no CPUs), not the 1 Slurm gave the task, so
    # two tasks would run 4 spinning threads on 2 cores, ten times slower.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "joulebench", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def dev(script: str, *args: str) -> float:
    """Run a dev-cluster script; the wall clock when it returned."""
    done = subprocess.run([str(DEV / script), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{script} {' '.join(args)}:\n{done.stderr[-2000:]}"
    return time.time()


def squeue() -> str:
    return "; squeue:\n" + subprocess.run(["squeue"], capture_output=True, text=True).stdout


def wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 1.0
) -> None:
    shared_wait_for(predicate, timeout_s, what, poll_s, diagnose=squeue)


def labels(suite: str, use_sacct: bool = True) -> dict[str, str]:
    return api.key_labels(suite, use_sacct=use_sacct).labels


def tracker_labels(suite: str) -> dict[str, str]:
    return labels(suite, use_sacct=False)


def job_ids(checkout: Path) -> dict[str, str]:
    state = ProgressTracker(checkout / TRACKER).read()
    return {k: str(r.job_id) for k, r in state.keys.items()}


def submit(checkout: Path, suite: str) -> list[str]:
    write_suite(checkout, suite, SUITE)
    sub = cli("submit-suite", suite, *SLURM_FLAGS)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    assert "submitted 3 tasks in 1 sbatch call" in sub.stdout
    return sorted(job_ids(checkout))


@pytest.fixture
def recover(checkout: Path) -> Iterator[None]:
    """Leave the cluster as the next test expects it, even when this one failed."""
    try:
        yield
    finally:
        dev("up")  # starts any stopped daemon, resumes a DOWN node
        arrays = sorted(
            {
                j.split("_")[0]
                for j in job_ids(checkout).values()
                if j and j != "None" and not j.startswith("local-")
            }
        )
        subprocess.run(["scancel", "--name", URGENT], capture_output=True, timeout=30)
        if arrays:
            subprocess.run(["scancel", *arrays], capture_output=True, timeout=30)
            wait_for(
                lambda: (
                    not subprocess.run(
                        ["squeue", "-h", "--jobs", ",".join(arrays)], capture_output=True, text=True
                    ).stdout.strip()
                ),
                60,
                "the test's jobs to leave the node",
            )


def journal_done_counts(checkout: Path) -> Counter[str]:
    """Done events per key still in the tracker's journal (it is folded into the
    snapshot at the end of every job, so this sees only the latest stretch)."""
    counts: Counter[str] = Counter()
    for line in ProgressTracker(checkout / TRACKER).journal_path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("op") == "done":
            counts[event["key"]] += 1
    return counts


def finished_runs(checkout: Path) -> Counter[str]:
    """Task runs that finished their key: every Slurm job's returned outcome.

    submitit pickles what each job returned into our own log folder; a requeued job's
    earlier run was interrupted (it returned nothing), and a resubmission is a new job.
    """
    counts: Counter[str] = Counter()
    for path in (checkout / "logs" / "submitit").glob("*_result.pkl"):
        with path.open("rb") as handle:
            status, outcome = pickle.load(handle)
        assert status == "success", outcome
        assert outcome["status"] in ("done", "skipped"), outcome  # never "busy"
        counts[outcome["key"]] += outcome["status"] == "done"
    return counts


def assert_each_key_done_once(checkout: Path, keys: list[str]) -> None:
    state = ProgressTracker(checkout / TRACKER).read()
    assert {k: state.keys[k].state for k in keys} == dict.fromkeys(keys, "done")
    ids = [state.keys[k].experiment_id for k in keys]
    assert len(set(ids)) == len(keys), ids
    assert state.last_id == len(keys), "an experiment ID was issued and abandoned"
    with (checkout / "results" / "text_generation_results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["key"] for r in rows) == sorted(keys)
    assert sorted(r["experiment_id"] for r in rows) == sorted(ids)
    assert finished_runs(checkout) == Counter(dict.fromkeys(keys, 1))
    assert max(journal_done_counts(checkout).values(), default=1) == 1
    raw = sorted(p.name for p in (checkout / "results" / "raw_results").iterdir())
    assert raw == sorted(ids)


def wait_sacct_settled(checkout: Path, earlier: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Job ID -> every state sacct recorded for it, once none is still active.

    The tracker's job IDs, plus ``earlier`` ones it no longer holds (a resubmission)."""
    ids = [*job_ids(checkout).values(), *earlier]
    result: dict[str, list[str]] = {}

    def settled() -> bool:
        got = query_sacct(ids, "now-1hour")
        if got.jobs is None or any(j not in got.jobs for j in ids):
            return False
        result.update({j: [*got.jobs[j].history, got.jobs[j].state] for j in ids})
        return all(got.jobs[j].category != "active" for j in ids)

    wait_for(settled, 90, "sacct to show every task finished")
    return result


def report(name: str, **figures: float | int | str) -> None:
    """Timings for the docs; shown with pytest -s, and in the -rA summary."""
    text = " ".join(
        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
    )
    print(f"\nFAULT-TIMING {name}: {text}")


def test_slurmd_killed_then_slurmctld_restarted_mid_suite(checkout: Path, recover: None) -> None:
    t0 = time.time()
    keys = submit(checkout, "ctld")
    wait_for(
        lambda: list(tracker_labels("ctld").values()).count("running") == 2,
        180,
        "two tasks running",
    )
    # slurmd dies alone (SIGKILL) and comes back: its running jobs carry on untouched.
    killed_at = dev("fault", "kill-slurmd")
    slurmd_back_at = dev("up")
    stopped_at = dev("fault", "stop-ctld")
    # With the controller gone, sacct (slurmdbd) still answers: status works.
    status = cli("status", "ctld")
    assert status.returncode == 0 and "Traceback" not in status.stdout + status.stderr
    # slurmctld may not have told slurmdbd about the jobs yet, and squeue needs
    # slurmctld: then resume-failed refuses rather than take running jobs for gone.
    dry = cli("resume-failed", "ctld", "--dry-run")
    assert (
        dry.stdout.startswith("0 keys would be resumed")
        if dry.returncode == 0
        else dry.returncode == 2 and "state is unknown" in dry.stderr
    ), dry.stdout + dry.stderr
    # Keep it down until a task finishes meanwhile: its end reaches slurmctld only later.
    wait_for(
        lambda: "done" in tracker_labels("ctld").values(),
        240,
        "a task to finish while slurmctld is down",
    )
    restarted_at = dev("up")
    wait_for(lambda: set(labels("ctld").values()) == {"done"}, 300, "the suite to finish", poll_s=2)
    finished_at = time.time()
    history = wait_sacct_settled(checkout)
    assert all(states == ["COMPLETED"] for states in history.values()), history
    assert_each_key_done_once(checkout, keys)
    report(
        "slurmd-kill+slurmctld-restart",
        slurmd_down_s=slurmd_back_at - killed_at,
        ctld_down_s=restarted_at - stopped_at,
        after_restart_to_done_s=finished_at - restarted_at,
        suite_s=finished_at - t0,
        requeued=0,
        resubmitted=0,
    )


def test_node_crash_then_resume_failed(checkout: Path, recover: None) -> None:
    t0 = time.time()
    keys = submit(checkout, "crash")
    ids = job_ids(checkout)
    # Running in the tracker: claimed, so the crash interrupts a run with an ID.
    wait_for(
        lambda: list(tracker_labels("crash").values()).count("running") == 2,
        180,
        "two tasks running",
    )
    running = sorted(k for k, label in tracker_labels("crash").items() if label == "running")
    stuck, requeued = running
    # One task may not be requeued (sbatch --no-requeue, or JobRequeue=0 on a site):
    # a node failure ends it NODE_FAIL and only resume-failed brings it back.
    subprocess.run(["scontrol", "update", f"jobid={ids[stuck]}", "requeue=0"], check=True)
    crashed_at = dev("fault", "crash-node")
    back_at = dev("up")
    wait_for(
        lambda: labels("crash")[stuck] == "failed:node_fail",
        60,
        "the non-requeueable task to show NODE_FAIL",
    )
    dry = cli("resume-failed", "crash", "--dry-run")
    assert dry.returncode == 0
    assert [ln.strip() for ln in dry.stdout.splitlines()[1:] if ln.strip()] == [stuck]
    before = ProgressTracker(checkout / TRACKER).read()
    resumed = cli("resume-failed", "crash", *SLURM_FLAGS[:-2])
    resumed_at = time.time()
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "submitted 1 task" in resumed.stdout
    wait_for(
        lambda: set(labels("crash").values()) == {"done"}, 300, "the suite to finish", poll_s=2
    )
    finished_at = time.time()
    after = ProgressTracker(checkout / TRACKER).read()
    assert after.keys[stuck].experiment_id == before.keys[stuck].experiment_id
    assert after.keys[stuck].attempts >= 2 and after.keys[requeued].attempts >= 2
    history = wait_sacct_settled(checkout, (ids[stuck],))
    assert history[ids[requeued]][0] == "NODE_FAIL" and history[ids[requeued]][-1] == "COMPLETED"
    assert history[ids[stuck]] == ["NODE_FAIL"]
    assert_each_key_done_once(checkout, keys)
    report(
        "node-crash",
        node_down_s=back_at - crashed_at,
        crash_to_resubmit_s=resumed_at - crashed_at,
        after_resubmit_to_done_s=finished_at - resumed_at,
        suite_s=finished_at - t0,
        requeued=1,
        resubmitted=1,
    )


def one_line_note(result: subprocess.CompletedProcess[str]) -> str:
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "Traceback" not in out, out
    notes = [line for line in out.splitlines() if "sacct" in line]
    assert len(notes) == 1 and notes[0].startswith("note: sacct failed: "), out
    return notes[0]


def test_sacct_down_status_warns_and_nothing_alive_is_resubmitted(
    checkout: Path, recover: None
) -> None:
    t0 = time.time()
    keys = submit(checkout, "nodb")
    wait_for(
        lambda: list(tracker_labels("nodb").values()).count("running") == 2,
        180,
        "two tasks running",
    )
    stopped_at = dev("fault", "stop-dbd")
    # Preempt both running tasks: they record "failed: preempted" and submitit requeues
    # them. The tracker alone would call them resumable; squeue knows they are queued.
    subprocess.run(
        [
            "sbatch",
            "--partition",
            "urgent",
            "--exclusive",
            "--job-name",
            URGENT,
            "--wrap",
            "sleep 3",
        ],
        check=True,
        capture_output=True,
    )
    note = one_line_note(cli("status", "nodb"))
    array = job_ids(checkout)[keys[0]].split("_")[0]

    def preempted_and_off_the_node() -> bool:
        # Stopping slurmctld while a preempted step still ends leaves it unable to report
        # its end; slurmd then drains the node ("Kill task failed"). Wait for the ends.
        ending = subprocess.run(
            ["squeue", "-h", "-t", "R,CG", "--jobs", array], capture_output=True, text=True
        )
        return (
            ending.returncode == 0
            and not ending.stdout.strip()
            and "failed:preempted" in tracker_labels("nodb").values()
        )

    wait_for(preempted_and_off_the_node, 120, "the preempted tasks to leave the node")
    dry = cli("resume-failed", "nodb", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith("0 keys would be resumed"), dry.stdout
    again = cli("submit-suite", "nodb", *SLURM_FLAGS)
    assert again.returncode == 0 and "submitted 0 tasks" in again.stdout, again.stdout
    # Neither sacct nor squeue: the state of those jobs is unknown; refuse, don't guess.
    dev("fault", "stop-ctld")
    both_down_note = one_line_note(cli("status", "nodb"))
    for args in (["resume-failed", "nodb"], ["submit-suite", "nodb", *SLURM_FLAGS]):
        refused = cli(*args)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert refused.stderr.count("\n") == 1 and "state is unknown" in refused.stderr
    restored_at = dev("up")
    wait_for(lambda: set(labels("nodb").values()) == {"done"}, 300, "the suite to finish", poll_s=2)
    finished_at = time.time()
    history = wait_sacct_settled(checkout)
    requeued = sum("PREEMPTED" in states or "REQUEUED" in states for states in history.values())
    assert requeued >= 1 and all(states[-1] == "COMPLETED" for states in history.values())
    assert_each_key_done_once(checkout, keys)
    report(
        "sacct-down",
        dbd_down_s=restored_at - stopped_at,
        after_restore_to_done_s=finished_at - restored_at,
        suite_s=finished_at - t0,
        requeued=requeued,
        resubmitted=0,
        note=repr(note),
        both_down=repr(both_down_note),
    )
