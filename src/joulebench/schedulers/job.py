"""The in-job entry point: what one Slurm array task or one local step runs.

lock -> claim (reuse the key's ID on a requeue) -> unlock -> run the workers ->
write the JSON files -> lock -> append the CSV row, mark done -> unlock.
The same functions serve the local executor and Slurm, so a laptop run exercises
the code path a cluster job takes.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from joulebench.config.models import ExperimentConfig
from joulebench.errors import JoulebenchError
from joulebench.measure.host_share import HostSharing, node_sharing
from joulebench.paths import Paths
from joulebench.results import (
    CSV_COLUMNS,
    Identity,
    RunTiming,
    Sections,
    append_row,
    build_sections,
    csv_path,
    failed_csv_path,
    flatten,
    has_experiment,
    raw_dir,
    write_json_files,
)
from joulebench.runner.experiment import ExperimentFailed, cause_of, run_workers
from joulebench.runner.launch import stop_cause
from joulebench.runner.pool import WorkerPools
from joulebench.suite.spec import ExperimentSpec
from joulebench.tracker import ProgressTracker
from joulebench.tracker.state import (
    CONFIG_ERROR,
    INTERRUPTED,
    NODE_FAIL,
    OOM,
    PREEMPTED,
    local_job_id,
)

FAILED_COLUMNS = [
    "timestamp",
    "experiment_id",
    "config_name",
    "model_name",
    "error_message",
    "config_json",
    "cause",
    "key",
    "attempt",
]


# done: ran and recorded now; skipped: the tracker had it done already; busy: another job
# holds the key; failed: out of retries, or bad input (never retried).
TaskStatus = Literal["done", "skipped", "busy", "failed"]


@dataclass(frozen=True)
class TaskOutcome:
    key: str
    status: TaskStatus
    experiment_id: str | None = None
    cause: str | None = None
    message: str | None = None
    resumed_batches: int = 0
    figures: dict[str, Any] | None = None  # a few headline numbers for progress output


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_experiment(
    config: ExperimentConfig,
    ident: Identity,
    results_dir: Path,
    batch_size: int | None = None,
    pools: WorkerPools | None = None,
    sharing: SharingFn | None = None,
) -> Sections:
    """Run the workload and write files 1-8; returns the sections for the CSV row.

    ``sharing`` says who else used the node while it ran (asked once the workers are
    done); by default what the Slurm environment shows (``node_sharing``).
    """
    started = _now()
    folder = raw_dir(results_dir, ident.experiment_id)
    raw = run_workers(
        config,
        ident.experiment_id,
        config.config_hash(),
        folder / ".work",
        batch_size,
        baseline_cache_dir=results_dir / ".baseline",
        pools=pools,
    )
    timing: RunTiming = {
        "started_at": started,
        "finished_at": _now(),
        "launch_wall_s": raw.launch_wall_s,
        "workers_launch_s": raw.workers_launch_s,
        "workers_reused": raw.workers_launch_s == 0.0,
    }
    sections = build_sections(
        ident,
        config,
        raw.config_hash,
        raw.device,
        raw.ranks,
        timing,
        batch_size_used=batch_size or config.batch_size,
        sharing=(sharing or environment_sharing)(ident.experiment_id),
    )
    window_s = sections["inference"]["window_s"]
    if window_s < config.min_window_s:
        raise ExperimentFailed(
            f"min_window_s: the measured window was {window_s:.2f} s, "
            f"under {config.min_window_s:g} s; raise num_prompts or "
            "max_output_tokens so the measurement is long enough",
            CONFIG_ERROR,
            user_error=True,
        )
    write_json_files(results_dir, ident.experiment_id, sections)
    return sections


# Who shared the node during one experiment (its ID -> the record for its results).
SharingFn = Callable[[str], HostSharing]


def environment_sharing(experiment_id: str) -> HostSharing:
    """A one-at-a-time run: shared only when Slurm gave the job part of the node."""
    return node_sharing(os.environ, os.cpu_count())


def _backoff_s(base_s: float, attempt: int) -> float:
    """Exponential backoff with full jitter, so requeued array tasks do not stampede."""
    return base_s * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)


def _log_failure(
    paths: Paths,
    spec: ExperimentSpec,
    experiment_id: str | None,
    failure: ExperimentFailed,
    attempt: int,
) -> None:
    path = failed_csv_path(paths.results_dir)
    row = {
        "timestamp": _now(),
        "experiment_id": experiment_id,
        "config_name": spec.config_name,
        "model_name": spec.config.model,
        "error_message": str(failure),
        "config_json": json.dumps(spec.config.model_dump(mode="json"), sort_keys=True),
        "cause": failure.cause,
        "key": spec.key,
        "attempt": attempt,
    }
    append_row(path, row, FAILED_COLUMNS)


def complete_with_row(
    tracker: ProgressTracker, key: str, experiment_id: str, csv_file: Path, row: dict[str, Any]
) -> bool:
    """Append the CSV row and mark the key done under one lock hold, exactly once.

    A run killed between the two leaves a row and no done mark; its retry (attempt > 1)
    finds the row and only marks done, so the CSV never gets a second copy.
    """

    def append_csv(attempt: int) -> None:
        if attempt > 1 and has_experiment(csv_file, experiment_id):
            return
        append_row(csv_file, row, CSV_COLUMNS)

    return tracker.complete(key, experiment_id, append_csv)


def _record_done(
    spec: ExperimentSpec,
    experiment_id: str,
    sections: Sections,
    paths: Paths,
    tracker: ProgressTracker,
) -> TaskOutcome:
    row = flatten(sections)
    complete_with_row(
        tracker, spec.key, experiment_id, csv_path(paths.results_dir, spec.config.task_type), row
    )
    figures = {
        k: row[k]
        for k in (
            "energy_j",
            "energy_per_output_token_j",
            "throughput_output_tokens_per_s",
            "energy_method",
        )
    }
    return TaskOutcome(
        spec.key,
        "done",
        experiment_id,
        resumed_batches=sections["inference"]["batches_resumed"],
        figures=figures,
    )


def _halved_batch(
    failure: ExperimentFailed, config: ExperimentConfig, batch_size: int
) -> int | None:
    """The one OOM retry a config may allow: half the batch, once."""
    if (
        failure.cause == OOM
        and config.oom_halve_batch
        and batch_size == config.batch_size
        and batch_size > 1
    ):
        return batch_size // 2
    return None


def run_task(
    spec: ExperimentSpec,
    paths: Paths,
    tracker: ProgressTracker,
    job_id: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    pools: WorkerPools | None = None,
    sharing: SharingFn | None = None,
) -> TaskOutcome:
    """Claim, run (retrying transient failures with backoff) and record one key.

    With ``pools`` bound to a device set (``--max-parallel``), the claim records that set
    so `status` can show it.
    """
    tries, batch_size = 0, spec.config.batch_size
    device_set = pools.device_set.label if pools and pools.device_set else None
    while True:
        claim = tracker.claim(
            spec.key,
            spec.config_hash,
            suite=spec.suite,
            cycle=spec.cycle,
            job_id=job_id,
            device_set=device_set,
        )
        if claim.status in ("done", "busy"):
            return TaskOutcome(
                spec.key, "skipped" if claim.status == "done" else "busy", claim.experiment_id
            )
        assert claim.experiment_id is not None
        ident = Identity(
            claim.experiment_id,
            spec.key,
            spec.suite,
            spec.config_name,
            spec.cycle,
            claim.attempt,
            spec.order_seed,
        )
        try:
            sections = run_experiment(
                spec.config, ident, paths.results_dir, batch_size, pools=pools, sharing=sharing
            )
        except JoulebenchError as exc:
            failure = (
                exc
                if isinstance(exc, ExperimentFailed)
                else ExperimentFailed(str(exc), cause_of(exc), user_error=True)
            )
            if failure.cause == INTERRUPTED:  # workers killed: by a preemption?
                failure.cause = stop_cause()
            with tracker.locked():  # the failure row and the state change land together
                _log_failure(paths, spec, claim.experiment_id, failure, claim.attempt)
                tracker.fail(spec.key, failure.cause, str(failure))
            halved = _halved_batch(failure, spec.config, batch_size)
            if halved is not None:
                batch_size = halved
                continue
            tries += 1
            # A lost node breaks the job's allocation: retrying inside it cannot help
            # (Slurm requeues the job, or resume-failed reruns the key).
            if failure.user_error or failure.cause == NODE_FAIL or tries > spec.config.max_retries:
                return TaskOutcome(
                    spec.key, "failed", claim.experiment_id, failure.cause, str(failure)
                )
            sleep(_backoff_s(spec.config.backoff_base_s, tries))
            continue
        except BaseException:
            # Ctrl-C or a scheduler's stop signal: the checkpoint keeps finished batches.
            # Recorded like any failed attempt, so failed_experiments.csv has them all.
            cause = stop_cause()
            stopped = ExperimentFailed(
                "USR2: preempted or at the time limit; requeued by submitit"
                if cause == PREEMPTED
                else "stopped by a signal",
                cause,
            )
            with tracker.locked():
                _log_failure(paths, spec, claim.experiment_id, stopped, claim.attempt)
                tracker.fail(spec.key, stopped.cause, str(stopped))
            raise
        return _record_done(spec, claim.experiment_id, sections, paths, tracker)


def job_id_from_env() -> str:
    """Slurm's array task identity when inside Slurm, else this process."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or local_job_id(os.getpid())


def run_tasks(
    specs: list[ExperimentSpec],
    paths: Paths,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
    on_start: Callable[[ExperimentSpec], None] | None = None,
    pools: WorkerPools | None = None,
    lazy_sync: bool = False,
) -> list[TaskOutcome]:
    """Run keys one after another (a job's share of a suite), syncing the legacy view
    (``lazy_sync``: only when due, for array tasks of one key each; see tracker.sync).

    Consecutive keys of one process count and device (``runner.pool.PoolShape``) run in
    the same launched workers, which keep a model loaded while the next key asks for the
    same one; each still gets its own claim, ID, warm-up, energy window, checkpoint, files
    and CSV row.
    """
    tracker = ProgressTracker(paths.tracker_dir)
    outcomes = []
    job_id = job_id_from_env()
    owned = pools is None
    pools = WorkerPools() if pools is None else pools
    try:
        for spec in specs:
            if on_start is not None:
                on_start(spec)
            outcome = run_task(spec, paths, tracker, job_id, pools=pools)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    finally:
        if owned:
            pools.close()
        tracker.sync(lazy=lazy_sync, suites={spec.suite for spec in specs})
    return outcomes
