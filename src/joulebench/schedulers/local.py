"""Local executor: run a suite's keys one after another on this machine.

It calls the same in-job entry point a Slurm array task calls (``job.run_tasks``),
so nothing about tracking, checkpoints or result files differs from a cluster run.
One experiment at a time: each already spreads over all cores through its processes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from joulebench.schedulers.job import JobPaths, TaskOutcome, run_tasks
from joulebench.suite.spec import ExperimentSpec


def sbatch_on_path() -> bool:
    return shutil.which("sbatch") is not None


def run_local(specs: list[ExperimentSpec], paths: JobPaths,
              on_start: Callable[[ExperimentSpec], None] | None = None,
              on_outcome: Callable[[TaskOutcome], None] | None = None) -> list[TaskOutcome]:
    outcomes: list[TaskOutcome] = []
    for spec in specs:
        if on_start is not None:
            on_start(spec)
        outcomes.extend(run_tasks([spec], paths, on_outcome))
    return outcomes
