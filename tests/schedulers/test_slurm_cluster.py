"""Against a real Slurm (the dev cluster): arrays, preemption, requeue, cancel, resume.

The cluster has one node with 2 CPUs and two fake GPUs, partitions `gpu` (default,
preemptable, GraceTime 20 s) and `urgent` (preempts `gpu` with REQUEUE).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from joulebench import api
from joulebench.schedulers.slurm import query_sacct
from joulebench.tracker import ProgressTracker
from tests.conftest import finished_batches, write_suite
from tests.conftest import wait_for as shared_wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "joulebench", *args], capture_output=True, text=True, timeout=300
    )


def squeue() -> str:
    return "; squeue:\n" + subprocess.run(["squeue"], capture_output=True, text=True).stdout


def wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 1.0
) -> None:
    shared_wait_for(predicate, timeout_s, what, poll_s, diagnose=squeue)


def labels(suite: str) -> dict[str, str]:
    return api.key_labels(suite).labels


def all_done(suite: str, n: int) -> Callable[[], bool]:
    return lambda: list(labels(suite).values()).count("done") == n


def rows(checkout: Path) -> list[dict[str, str]]:
    path = checkout / "results" / "text_generation_results.csv"
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def job_ids(checkout: Path) -> dict[str, str]:
    state = ProgressTracker(checkout / "persistent_progress_trackers").read()
    return {k: str(r.job_id) for k, r in state.keys.items()}


def test_demo_suite_as_arrays_on_the_gpu_partition(checkout: Path) -> None:
    flags = ["--cycles", "2", "--partition", "gpu", "--gpus-per-node", "1"]
    dry = cli("submit-suite", "demo", *flags, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "#SBATCH --array=0-7%8" in dry.stdout and "#SBATCH --gpus-per-node=1" in dry.stdout
    assert not (checkout / "persistent_progress_trackers").exists()

    sub = cli("submit-suite", "demo", *flags)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    assert "submitted 8 tasks in 1 sbatch call" in sub.stdout
    # --dry-run printed exactly what submitit submitted.
    submitted = next((checkout / "logs" / "submitit").glob("*_submission.sh")).read_text()
    script = dry.stdout.split("---", 1)[1].split("\n", 1)[1].rsplit("dry run:", 1)[0]
    assert script.strip() == submitted.strip()

    wait_for(all_done("demo", 8), 600, "the demo suite to finish on Slurm", poll_s=3)
    got = rows(checkout)
    assert len(got) == 8 and len({r["key"] for r in got}) == 8
    assert all(r["slurm_job_id"] for r in got)
    ids = job_ids(checkout)
    # A task marks its key done just before its process exits: Slurm may still say
    # RUNNING for a moment, so wait for the accounting to settle before comparing.

    def sacct_states() -> set[str]:
        result = query_sacct(list(ids.values()), "now-1hour")
        assert result.problem is None and result.jobs is not None
        return {result.jobs[j].state for j in ids.values()}

    wait_for(
        lambda: not {"RUNNING", "COMPLETING"} & sacct_states(),
        60,
        "sacct to show every task finished",
    )
    assert sacct_states() == {"COMPLETED"}
    status = cli("status", "demo")
    assert status.returncode == 0 and "note:" not in status.stdout
    assert api.status_rows("demo")[0].counts == {"done": 4}


PREEMPT_SUITE = """
models: [tiny-demo]
overrides:
  num_processes: 2
  warmup_iterations: 0
  energy_meter: codecarbon
  max_input_tokens: 64
configs:
  slow: {num_prompts: 48, batch_size: 2, max_output_tokens: 192, min_output_tokens: 192}
"""


def test_preempted_task_requeues_and_resumes_from_its_checkpoint(checkout: Path) -> None:
    write_suite(checkout, "preempt", PREEMPT_SUITE)
    sub = cli("submit-suite", "preempt", "--partition", "gpu", "--time", "00:20:00")
    assert sub.returncode == 0, sub.stdout + sub.stderr
    work = checkout / "results" / "raw_results" / "0001" / ".work"
    wait_for(lambda: finished_batches(work) >= 2, 300, "two checkpointed batches", poll_s=0.2)
    urgent = subprocess.run(
        ["sbatch", "--partition", "urgent", "--exclusive", "--parsable", "--wrap", "sleep 3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert urgent.stdout.strip()
    wait_for(all_done("preempt", 1), 600, "the preempted key to finish", poll_s=2)
    got = rows(checkout)
    assert [(r["experiment_id"], r["config_name"]) for r in got] == [("0001", "slow")]
    metrics = json.loads((work.parent / "0001_4_inference_metrics.json").read_text())
    assert metrics["batches_resumed"] >= 2  # from the results, not the logs
    assert metrics["num_prompts"] == 48
    assert int(got[0]["attempt"]) >= 2
    job = job_ids(checkout)["models/tiny-llama::preempt::slow::1"]
    history = query_sacct([job], "now-1hour").jobs[job]
    assert "PREEMPTED" in history.history or "REQUEUED" in history.history
    assert ProgressTracker(checkout / "persistent_progress_trackers").read().last_id == 1


# Short keys: the window between a key's done mark and its task's exit is what is tested.
LATE_SUITE = """
models: [tiny-demo]
shuffle: false
overrides:
  num_processes: 1
  warmup_iterations: 0
  energy_meter: codecarbon
  idle_baseline_s: 0
  max_input_tokens: 64
  num_prompts: 4
  batch_size: 2
  max_output_tokens: 16
  min_output_tokens: 16
controlled:
  seed: [1, 2, 3]
"""


REQUEUE_SUITE = """
models: [tiny-demo]
shuffle: false  # array tasks 0 and 1 run first, together: they are requeued and cancelled
overrides:
  num_processes: 1
  warmup_iterations: 0
  energy_meter: codecarbon
  max_input_tokens: 64
  num_prompts: 32
  batch_size: 2
  max_output_tokens: 128
  min_output_tokens: 128
controlled:
  seed: [1, 2, 3]
"""


def test_requeue_and_cancel_then_resume_failed_puts_back_only_the_cancelled(checkout: Path) -> None:
    write_suite(checkout, "rq", REQUEUE_SUITE)
    sub = cli(
        "submit-suite",
        "rq",
        "--partition",
        "gpu",
        "--time",
        "00:20:00",
        "--cpus-per-task",
        "1",
        "--array-parallelism",
        "2",
    )
    assert sub.returncode == 0, sub.stdout + sub.stderr
    keys = sorted(job_ids(checkout))
    requeued, cancelled, untouched = keys
    ids = job_ids(checkout)

    def running(*wanted: str) -> bool:
        # Claimed in the tracker too, not only started by Slurm: the IDs are compared below.
        now = labels("rq")
        state = ProgressTracker(checkout / "persistent_progress_trackers").read()
        return all(now.get(k) == "running" and state.keys[k].experiment_id for k in wanted)

    wait_for(lambda: running(requeued, cancelled), 300, "two running tasks", poll_s=0.5)
    subprocess.run(["scontrol", "requeue", ids[requeued]], check=True)
    subprocess.run(["scancel", ids[cancelled]], check=True)

    wait_for(
        lambda: (
            labels("rq")[requeued] == "done"
            and labels("rq")[untouched] == "done"
            and labels("rq")[cancelled].startswith("failed")
        ),
        600,
        "the requeued and untouched keys to finish",
        poll_s=2,
    )
    assert labels("rq")[cancelled] == "failed:cancelled"
    dry = cli("resume-failed", "rq", "--dry-run")
    assert dry.returncode == 0
    listed = [line.strip() for line in dry.stdout.splitlines()[1:] if line.strip()]
    assert listed == [cancelled]

    before = ProgressTracker(checkout / "persistent_progress_trackers").read()
    resumed = cli(
        "resume-failed", "rq", "--partition", "gpu", "--time", "00:20:00", "--cpus-per-task", "1"
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "submitted 1 task" in resumed.stdout
    wait_for(all_done("rq", 3), 600, "the resumed key to finish", poll_s=2)
    got = rows(checkout)
    assert sorted(r["key"] for r in got) == keys  # one row per key, none twice
    by_key = {r["key"]: r["experiment_id"] for r in got}
    assert by_key[cancelled] == before.keys[cancelled].experiment_id
    assert by_key[requeued] == before.keys[requeued].experiment_id


CHUNK_SUITE = """
models: [tiny-demo]
shuffle: false
overrides:
  num_processes: 1
  warmup_iterations: 0
  energy_meter: codecarbon
  max_input_tokens: 64
  num_prompts: 40
  batch_size: 2
  max_output_tokens: 160
  min_output_tokens: 160
controlled:
  seed: [1, 2, 3]
"""


def test_keys_per_task_reuses_workers_and_a_preempted_chunk_skips_its_done_keys(
    checkout: Path,
) -> None:
    write_suite(checkout, "chunk", CHUNK_SUITE)
    sub = cli(
        "submit-suite", "chunk", "--partition", "gpu", "--time", "00:20:00", "--keys-per-task", "3"
    )
    assert sub.returncode == 0, sub.stdout + sub.stderr
    assert "submitted 3 keys as 1 task in 1 sbatch call" in sub.stdout
    keys = sorted(job_ids(checkout))
    assert len(set(job_ids(checkout).values())) == 1  # one array task holds all three
    # Preempt once the first key is done and the second has checkpointed a batch.
    second = checkout / "results" / "raw_results" / "0002" / ".work"
    wait_for(lambda: finished_batches(second) >= 1, 300, "the second key under way", poll_s=0.2)
    assert list(labels("chunk").values()).count("done") == 1
    assert sorted(labels("chunk").values()) == ["done", "queued", "running"]
    subprocess.run(
        ["sbatch", "--partition", "urgent", "--exclusive", "--parsable", "--wrap", "sleep 3"],
        capture_output=True,
        text=True,
        check=True,
    )
    wait_for(all_done("chunk", 3), 600, "the chunk to finish after its requeue", poll_s=2)
    state = ProgressTracker(checkout / "persistent_progress_trackers").read()
    assert [state.keys[k].experiment_id for k in keys] == ["0001", "0002", "0003"]
    assert state.last_id == 3
    got = rows(checkout)
    assert sorted(r["key"] for r in got) == keys  # one row each: nothing ran twice
    job = next(iter(job_ids(checkout).values()))
    history = query_sacct([job], "now-1hour").jobs[job]
    assert "PREEMPTED" in history.history or "REQUEUED" in history.history
    setups = {
        r["experiment_id"]: json.loads(
            (
                checkout
                / "results"
                / "raw_results"
                / r["experiment_id"]
                / f"{r['experiment_id']}_1_experiment_setup.json"
            ).read_text()
        )
        for r in got
    }
    assert int(next(r for r in got if r["experiment_id"] == "0001")["attempt"]) == 1
    metrics = json.loads((second.parent / "0002_4_inference_metrics.json").read_text())
    assert metrics["batches_resumed"] >= 1  # the interrupted key kept its batches
    # The key after the requeue's first one ran in the workers the requeued run launched.
    assert setups["0003"]["timing"]["model_reused"] is True


def tracker_events(checkout: Path, op: str) -> list[dict[str, str]]:
    """Every ``op`` event ever journalled: the folded history, then the live journal."""
    tracker = ProgressTracker(checkout / "persistent_progress_trackers")
    files = [
        *sorted((tracker.journal_path.parent / "history").glob("journal-*.jsonl")),
        tracker.journal_path,
    ]
    events = []
    for path in files:
        for line in path.read_text().splitlines() if path.exists() else []:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("op") == op:
                events.append(event)
    return events


def test_usr2_then_term_40ms_apart_is_recorded_as_preempted(checkout: Path) -> None:
    # What a preemption looks like from inside the task: Slurm's USR2, then the TERM that
    # submitit's own `scontrol requeue` brings tens of ms later.
    write_suite(checkout, "storm", PREEMPT_SUITE)
    sub = cli("submit-suite", "storm", "--partition", "gpu", "--time", "00:20:00")
    assert sub.returncode == 0, sub.stdout + sub.stderr
    key, job = next(iter(job_ids(checkout).items()))
    work = checkout / "results" / "raw_results" / "0001" / ".work"
    wait_for(lambda: finished_batches(work) >= 1, 300, "a checkpointed batch", poll_s=0.2)
    # Straight to the task's process (the claim names it; one node): scancel --signal
    # retries a job Slurm is requeueing and would TERM the rerun seconds later instead.
    pid = ProgressTracker(checkout / "persistent_progress_trackers").read().keys[key].pid
    assert pid is not None
    os.kill(pid, signal.SIGUSR2)
    time.sleep(0.04)
    os.kill(pid, signal.SIGTERM)
    wait_for(all_done("storm", 1), 600, "the key to finish after its requeue", poll_s=2)
    causes = [e["cause"] for e in tracker_events(checkout, "fail") if e["key"] == key]
    assert causes and set(causes) == {"preempted"}, causes
    assert [(r["experiment_id"], r["key"]) for r in rows(checkout)] == [("0001", key)]
    history = query_sacct([job], "now-1hour").jobs[job].history
    assert "REQUEUED" in history or "PREEMPTED" in history


def test_usr2_after_the_last_key_ends_the_task_instead_of_requeueing(checkout: Path) -> None:
    write_suite(checkout, "late", LATE_SUITE)
    sub = cli(
        "submit-suite",
        "late",
        "--partition",
        "gpu",
        "--time",
        "00:20:00",
        "--cpus-per-task",
        "1",
        "--array-parallelism",
        "1",
    )
    assert sub.returncode == 0, sub.stdout + sub.stderr
    ids = job_ids(checkout)
    caught = []
    tracker = ProgressTracker(checkout / "persistent_progress_trackers")
    for key in sorted(ids, key=lambda k: ids[k]):
        # The signal must land between the done mark and the task's exit. Holding the
        # tracker lock as soon as the key is done keeps the task there: it takes the lock
        # once more, to sync the legacy files, before it returns.
        wait_for(
            lambda k=key: tracker.read().keys[k].state == "done", 300, f"{key} done", poll_s=0.02
        )
        with tracker.locked():
            alive = subprocess.run(
                ["squeue", "-h", "-j", ids[key], "-o", "%T"], capture_output=True, text=True
            ).stdout.strip()
            if (
                alive == "RUNNING"
                and subprocess.run(
                    ["scancel", "--signal=USR2", ids[key]], capture_output=True
                ).returncode
                == 0
            ):
                caught.append(ids[key])
                time.sleep(1.0)  # the handler runs while the task waits for the lock
    wait_for(all_done("late", len(ids)), 300, "every key done", poll_s=1)
    assert caught, "no USR2 reached a task before it exited"

    def settled() -> bool:
        jobs = query_sacct(caught, "now-1hour").jobs or {}
        return all(j in jobs and jobs[j].category != "active" for j in caught)

    wait_for(settled, 90, "sacct to show the signalled tasks ended")
    jobs = query_sacct(caught, "now-1hour").jobs or {}
    assert {j: (jobs[j].state, jobs[j].history) for j in caught} == {
        j: ("COMPLETED", []) for j in caught
    }
    logs = "".join(p.read_text() for p in (checkout / "logs" / "submitit").glob("*.err"))
    assert "USR2 after this task's last key: ending instead of requeueing" in logs
    assert "Requeued job" not in logs and "Calling checkpoint method" not in logs


def test_a_cancelled_task_never_reads_queued_and_ends_failed_cancelled(checkout: Path) -> None:
    write_suite(checkout, "cut", PREEMPT_SUITE)
    sub = cli("submit-suite", "cut", "--partition", "gpu", "--time", "00:20:00")
    assert sub.returncode == 0, sub.stdout + sub.stderr
    key, job = next(iter(job_ids(checkout).items()))
    work = checkout / "results" / "raw_results" / "0001" / ".work"
    wait_for(lambda: finished_batches(work) >= 1, 300, "a checkpointed batch", poll_s=0.2)
    subprocess.run(["scancel", job], check=True)
    seen = [labels("cut")[key]]
    while not seen[-1].startswith("failed") and len(seen) < 600:
        time.sleep(0.1)
        seen.append(labels("cut")[key])
    assert seen[-1] == "failed:cancelled", seen
    assert set(seen) <= {"running", "stopping", "failed:cancelled"}, seen
    status = cli("status", "cut")
    assert "[cancelled]" in status.stdout and "[interrupted]" not in status.stdout


ONE_CPU_SUITE = """
models: [tiny-demo]
overrides:
  num_processes: 1
  num_prompts: 8
  batch_size: 4
  max_output_tokens: 16
  min_output_tokens: 16
  warmup_iterations: 0
  energy_meter: codecarbon
configs:
  small: {max_input_tokens: 32}
"""


def _energy_file(checkout: Path, experiment_id: str) -> dict:
    folder = checkout / "results" / "raw_results" / experiment_id
    return json.loads((folder / f"{experiment_id}_7_global_energy_results.json").read_text())


def test_a_task_on_part_of_the_node_is_flagged_host_energy_shared_and_exclusive_is_not(
    checkout: Path,
) -> None:
    """The dev node has 2 CPUs: a 1-CPU task shares it (its environment says so), a task
    submitted with --exclusive holds all of it."""
    write_suite(checkout, "onecpu", ONE_CPU_SUITE)
    flags = ["--partition", "gpu", "--cpus-per-task", "1"]
    dry = cli("submit-suite", "onecpu", *flags, "--exclusive", "--dry-run")
    assert dry.returncode == 0 and "#SBATCH --exclusive" in dry.stdout, dry.stdout + dry.stderr

    sub = cli("submit-suite", "onecpu", *flags)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    wait_for(all_done("onecpu", 1), 300, "the 1-CPU task to finish", poll_s=2)
    (row,) = rows(checkout)
    sharing = _energy_file(checkout, row["experiment_id"])["host_sharing"]
    assert (sharing["job_cpus"], sharing["node_cpus"]) == (1, 2), sharing
    assert sharing["reasons"] == ["slurm_partial_node"]
    assert "host_energy_shared" in row["quality_flags"].split(";")
    assert row["energy_scope"] == "host_apportioned"
    assert float(row["energy_j"]) <= float(row["host_energy_j"])

    again = cli("submit-suite", "onecpu", *flags, "--exclusive", "--fresh")
    assert again.returncode == 0, again.stdout + again.stderr
    scripts = (checkout / "logs" / "submitit").glob("*_submission.sh")
    submitted = max(scripts, key=lambda p: p.stat().st_mtime_ns)
    assert "#SBATCH --exclusive" in submitted.read_text()
    wait_for(all_done("onecpu", 1), 300, "the exclusive task to finish", poll_s=2)
    current = ProgressTracker(checkout / "persistent_progress_trackers").read()
    (rec,) = [r for r in current.keys.values() if r.suite == "onecpu"]
    sharing = _energy_file(checkout, rec.experiment_id)["host_sharing"]
    assert sharing["job_cpus"] == sharing["node_cpus"] == 2, sharing
    assert not sharing["shared"]
    (new_row,) = [r for r in rows(checkout) if r["experiment_id"] == rec.experiment_id]
    assert "host_energy_shared" not in new_row["quality_flags"].split(";")
    assert new_row["energy_scope"] == "host"
