"""What submitit pickles and runs inside each Slurm array task.

A Checkpointable: on USR2 (preemption or time limit) submitit calls ``checkpoint``,
which resubmits the same call; the rerun reclaims its key under the same experiment
ID and resumes from the workers' batch checkpoints. A USR2 that comes after the task's
last key is not passed on: the task ends instead of being requeued to find nothing.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

import submitit

from joulebench.config.models import ExperimentConfig
from joulebench.paths import Paths
from joulebench.runner.launch import note_stop_signal
from joulebench.runner.pool import WorkerPools
from joulebench.schedulers.job import TaskOutcome, run_tasks
from joulebench.schedulers.slurm_nodes import SlurmNodeSpread, is_follower, node_rank
from joulebench.suite.spec import ExperimentSpec
from joulebench.wording import plural

log = logging.getLogger(__name__)


def spec_payload(spec: ExperimentSpec) -> dict[str, Any]:
    """Plain data, so a job never unpickles joulebench objects of another version."""
    return {
        "suite": spec.suite,
        "config_name": spec.config_name,
        "cycle": spec.cycle,
        "model_label": spec.model_label,
        "order_seed": spec.order_seed,
        "config": spec.config.model_dump(mode="json"),
    }


def spec_from_payload(payload: dict[str, Any]) -> ExperimentSpec:
    return ExperimentSpec(
        suite=payload["suite"],
        config_name=payload["config_name"],
        cycle=int(payload["cycle"]),
        model_label=payload["model_label"],
        order_seed=payload.get("order_seed"),
        config=ExperimentConfig.model_validate(payload["config"]),
    )


def watch_stop_signals(keys_left: Callable[[], int]) -> None:
    """Note every USR2 and TERM this task gets (so a failure is named by what happened),
    then let the handler installed before act (submitit's: checkpoint and requeue on
    USR2, log and carry on for TERM) - unless a USR2 finds no key left to run.

    Preemptions and time-limit warnings that land after the last key is recorded would
    otherwise requeue a task whose rerun finds nothing to do: a slot and a queue wait
    wasted. Ending normally within GraceTime leaves the job COMPLETED.
    """
    for signum in (signal.SIGUSR2, signal.SIGTERM):
        previous = signal.getsignal(signum)

        def on_signal(num: int, frame: FrameType | None, previous: Any = previous) -> None:
            note_stop_signal(num)
            if num == signal.SIGUSR2 and keys_left() == 0:
                log.warning("USR2 after this task's last key: ending instead of requeueing")
                return
            if callable(previous):
                previous(num, frame)

        signal.signal(signum, on_signal)


class SuiteTask(submitit.helpers.Checkpointable):
    """Runs one key, or several in turn (``--keys-per-task``); submitit's default
    checkpoint() resubmits it with the same payload, and the rerun skips the keys done."""

    def __init__(self, tracker_dir: Path, results_dir: Path, workdir: Path) -> None:
        self.tracker_dir = str(Path(tracker_dir).resolve())
        self.results_dir = str(Path(results_dir).resolve())
        self.workdir = str(Path(workdir).resolve())

    def __call__(
        self, payload: dict[str, Any] | list[dict[str, Any]]
    ) -> dict[str, Any] | list[dict[str, Any]]:
        import os

        os.chdir(self.workdir)  # relative dataset/model paths mean the same as at submission
        if is_follower(os.environ):
            # A multi-node task's copy on another node: the leader's srun step starts
            # this node's workers; nothing to claim, run or record here.
            log.info("node %s of a multi-node task: the leader runs it", node_rank(os.environ))
            return {"follower_node": node_rank(os.environ)}
        specs = [
            spec_from_payload(p) for p in (payload if isinstance(payload, list) else [payload])
        ]
        finished: list[TaskOutcome] = []
        watch_stop_signals(lambda: len(specs) - len(finished))
        # Consecutive keys of one process count share launched workers (runner/pool);
        # keys over several nodes launch on every node through srun.
        paths = Paths(tracker_dir=Path(self.tracker_dir), results_dir=Path(self.results_dir))
        with WorkerPools(spread=SlurmNodeSpread(dict(os.environ))) as pools:
            outcomes = run_tasks(
                specs, paths, on_outcome=finished.append, pools=pools, lazy_sync=True
            )
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            # A failed key must show as FAILED in sacct too, not COMPLETED.
            first = failed[0]
            raise RuntimeError(
                f"{len(failed)} of {plural(len(outcomes), 'key')} failed; first: "
                f"{first.key} [{first.cause}]: {first.message}"
            )
        results = [asdict(o) for o in outcomes]
        return results if isinstance(payload, list) else results[0]
