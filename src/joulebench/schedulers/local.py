"""Local executor: run a suite's keys one after another on this machine.

It calls the same in-job entry point a Slurm array task calls (``job.run_tasks``),
so nothing about tracking, checkpoints or result files differs from a cluster run.
One experiment at a time: each already spreads over all cores through its processes.
All keys go to one ``run_tasks`` call, so consecutive keys of one process count and
device share launched workers, and of one model also the loaded model.
"""

from __future__ import annotations

from collections.abc import Callable

from joulebench.paths import Paths
from joulebench.schedulers.job import TaskOutcome, run_tasks
from joulebench.suite.spec import ExperimentSpec


def run_local(
    specs: list[ExperimentSpec],
    paths: Paths,
    on_start: Callable[[ExperimentSpec], None] | None = None,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
) -> list[TaskOutcome]:
    return run_tasks(specs, paths, on_outcome, on_start)
