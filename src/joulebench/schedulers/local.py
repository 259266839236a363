"""Local executor: run a suite's keys on this machine, one after another or side by side.

It calls the same in-job entry point a Slurm array task calls (``job.run_tasks`` /
``job.run_task``), so nothing about tracking, checkpoints or result files differs from a
cluster run. By default one experiment at a time: each already spreads over all cores
through its processes, and all keys go to one ``run_tasks`` call, so consecutive keys of
one process count and device share launched workers, and of one model also the loaded
model. ``max_parallel`` > 1 runs several at once on disjoint devices
(``schedulers.parallel``).
"""

from __future__ import annotations

from collections.abc import Callable

from joulebench.errors import ConfigError
from joulebench.paths import Paths
from joulebench.schedulers.executors import LOCAL
from joulebench.schedulers.job import TaskOutcome, run_tasks
from joulebench.suite.spec import ExperimentSpec


def check_max_parallel(
    specs: list[ExperimentSpec], executor: str, max_parallel: int, where: str
) -> None:
    """--max-parallel runs local experiments side by side; refuse what cannot work
    (before anything is written: a dry run refuses the same)."""
    if max_parallel == 1:
        return
    if executor != LOCAL:
        raise ConfigError(
            f"--max-parallel {max_parallel}: runs experiments side by side on this node "
            "with --executor local; Slurm runs array tasks at once already "
            "(limit them with --array-parallelism)"
        )
    from joulebench.schedulers.parallel import check_parallel

    check_parallel(specs, max_parallel, where)


def run_local(
    specs: list[ExperimentSpec],
    paths: Paths,
    on_start: Callable[[ExperimentSpec], None] | None = None,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
    max_parallel: int = 1,
    where: str = "suite",
) -> list[TaskOutcome]:
    """Run ``specs`` here; ``where`` (the suite file) names a refusal of --max-parallel."""
    if max_parallel == 1 or len(specs) < 2:
        return run_tasks(specs, paths, on_outcome, on_start)
    from joulebench.schedulers.parallel import check_parallel, run_parallel

    plan = check_parallel(specs, max_parallel, where)
    return run_parallel(specs, paths, max_parallel, plan, on_start, on_outcome)
