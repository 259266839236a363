"""Running keys: the checks every submission makes, then local runs or Slurm arrays;
resume-failed and `run` of one config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from joulebench.api.common import NO_SLURM_OPTIONS, expand_suite
from joulebench.api.status import _live_keys, resumable_keys
from joulebench.config.loader import load_yaml_mapping, validate_experiment
from joulebench.errors import ConfigError
from joulebench.paths import Paths
from joulebench.schedulers import slurm
from joulebench.schedulers.executors import (
    AUTO,
    LOCAL,
    SLURM,
    Executor,
    ExecutorChoice,
    choose_executor,
    resume_executor,
)
from joulebench.schedulers.job import TaskOutcome, run_tasks
from joulebench.schedulers.local import check_max_parallel, run_local
from joulebench.schedulers.slurm_options import SlurmOptions
from joulebench.schedulers.slurm_task import SuiteTask
from joulebench.suite import ExperimentSpec, resolve_suite_path
from joulebench.suite.spec import make_key, split_key
from joulebench.tracker import (
    DONE,
    ProgressTracker,
    TrackerState,
)
from joulebench.wording import plural


@dataclass
class SubmitSummary:
    suite: str
    executor: Executor
    total: int
    already_done: int
    to_run: list[ExperimentSpec]
    outcomes: list[TaskOutcome] = field(default_factory=list)
    submitted: dict[str, str] = field(default_factory=dict)  # key -> Slurm job ID
    notes: list[str] = field(default_factory=list)


def ignored_slurm_flags(executor: str, opts: SlurmOptions) -> str | None:
    """The note for Slurm options given to a run that will not go through Slurm.

    Named by key, not as flags: they may come from the command line or a --profile file.
    """
    given = [k for k, v in asdict(opts).items() if v is not None]
    if executor == SLURM or not given:
        return None
    return f"Slurm options ignored by the {executor} executor: {', '.join(given)}"


def _cuda_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def plan_slurm(
    specs: list[ExperimentSpec], opts: SlurmOptions, runner: slurm.CommandRunner = slurm.run_command
) -> list[slurm.ArrayPlan]:
    return slurm.plan_arrays(
        specs,
        opts,
        slurm.max_array_size(runner),
        job_name=f"jb-{specs[0].suite}" if specs else "jb",
    )


def check_submission(
    specs: list[ExperimentSpec],
    executor: str,
    paths: Paths,
    opts: SlurmOptions,
    source: str = "suite",
    runner: slurm.CommandRunner = slurm.run_command,
) -> None:
    """What a submission needs besides valid specs: usable folders, acceptable sbatch
    options, nodes this executor (and partition) can give. Writes nothing, so --dry-run
    and the real run refuse the same input."""
    from joulebench.runner.preflight import local_nodes_problem
    from joulebench.schedulers.slurm_nodes import check_partition_nodes

    if executor == LOCAL:
        problem = local_nodes_problem(specs)
        if problem:
            raise ConfigError(f"{source}: {problem}")
    paths.check(write=True, logs=executor == SLURM)
    if executor == SLURM:
        slurm.plan_arrays(specs, opts, slurm.DEFAULT_MAX_ARRAY_SIZE, "jb")
        widest = max((s.config.nodes for s in specs), default=1)
        check_partition_nodes(widest, opts.partition, source, runner)


@dataclass(frozen=True)
class CheckedSuite:
    """A suite that passed every check a submission makes."""

    specs: list[ExperimentSpec]
    executor: Executor  # resolved
    notes: list[str]


def check_suite(
    suite: str,
    cycles: int = 1,
    *,
    executor: ExecutorChoice = AUTO,
    paths: Paths = Paths(),
    slurm_options: SlurmOptions = NO_SLURM_OPTIONS,
    preflight: bool = True,
    max_parallel: int = 1,
) -> CheckedSuite:
    """Every check ``submit_suite`` makes before it writes, and nothing else: a dry run is
    exactly this, so it refuses what the real submission would, with the same line.

    Args:
        suite: a name from ``configs/suites/`` or a path to a suite YAML.
        cycles: how many times each config is repeated.
        executor: ``auto``, ``local`` or ``slurm``.
        paths: where configs, the tracker, results and logs live.
        slurm_options: sbatch resources (validated even for a dry run).
        preflight: check models, datasets, prompt fit and device counts on this machine.
        max_parallel: experiments run at once by the local executor (disjoint devices).
    """
    from joulebench.runner.preflight import check_specs

    specs = expand_suite(suite, cycles, paths)
    name, note = choose_executor(executor)
    source = str(resolve_suite_path(suite, paths.configs_dir))
    check_submission(specs, name, paths, slurm_options, source)
    check_max_parallel(specs, name, max_parallel, _where(suite, paths))
    if preflight:  # a login node has no GPU: only a local run checks the device
        check_specs(
            specs,
            source,
            local_cuda_gpus=_cuda_gpus() if name == LOCAL else None,
        )
    notes = [n for n in (note, ignored_slurm_flags(name, slurm_options)) if n]
    return CheckedSuite(specs, name, notes)


def _where(suite: str, paths: Paths) -> str:
    return str(resolve_suite_path(suite, paths.configs_dir))


# Tracker backups kept in persistent_progress_trackers/backups/ (a pair of files each).
BACKUPS_KEPT = 20


def _will_change(state: TrackerState, specs: list[ExperimentSpec]) -> bool:
    """Whether registering and running ``specs`` writes to the tracker at all."""
    for spec in specs:
        rec = state.keys.get(spec.key)
        if rec is None or rec.state != DONE:
            return True
    return False


def _prepare(
    suite: str,
    cycles: int,
    executor: str,
    fresh: bool,
    paths: Paths,
    preflight: bool,
    opts: SlurmOptions,
    runner: slurm.CommandRunner,
    max_parallel: int = 1,
) -> tuple[SubmitSummary, ProgressTracker, set[str]]:
    checked = check_suite(
        suite,
        cycles,
        executor=executor,
        paths=paths,
        slurm_options=opts,
        preflight=preflight,
        max_parallel=max_parallel,
    )
    specs, name, notes = checked.specs, checked.executor, list(checked.notes)
    tracker = ProgressTracker(paths.tracker_dir)
    before = tracker.read()
    live: set[str] = set()
    if name == SLURM:
        # Asked before any write, so a refusal (Slurm state unknown) changes nothing.
        wanted = [
            s.key for s in specs if s.key not in before.keys or before.keys[s.key].state != DONE
        ]
        live = _live_keys(before, paths, runner, wanted)
    # Everything is validated: only now may the tracker be written. A backup first, but
    # only when this run will change the tracker: a no-op rerun leaves it as it is.
    if fresh or _will_change(before, specs):
        tracker.backup(keep=BACKUPS_KEPT)
    if fresh:
        archived = tracker.archive_suite(specs[0].suite)
        if archived is not None:
            notes.append(f"--fresh: archived earlier progress of '{specs[0].suite}' to {archived}")
    tracker.register(specs[0].suite, [(s.key, s.config_hash) for s in specs])
    state = tracker.read()
    todo = [s for s in specs if state.keys[s.key].state != DONE]
    return (
        SubmitSummary(specs[0].suite, name, len(specs), len(specs) - len(todo), todo, notes=notes),
        tracker,
        live,
    )


def submit_suite(
    suite: str,
    cycles: int = 1,
    *,
    executor: ExecutorChoice = AUTO,
    fresh: bool = False,
    paths: Paths = Paths(),
    slurm_options: SlurmOptions = NO_SLURM_OPTIONS,
    preflight: bool = True,
    runner: slurm.CommandRunner = slurm.run_command,
    on_plan: Callable[[SubmitSummary], None] | None = None,
    on_start: Callable[[ExperimentSpec], None] | None = None,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
    max_parallel: int = 1,
) -> SubmitSummary:
    """Validate, register, then run (local) or submit (Slurm) every key not done.

    Nothing is written until every check of ``check_suite`` has passed; a rerun resumes
    (done keys are skipped, interrupted ones keep their experiment IDs).

    Example (a notebook on a laptop; on a login node drop ``executor`` and pass
    ``slurm_options=SlurmOptions(partition="gpu", time="04:00:00")``)::

        from joulebench import api
        summary = api.submit_suite("demo", cycles=2, executor="local")
        print(summary.already_done, [o.status for o in summary.outcomes])
        frame = api.load_results("demo")

    Args:
        suite: a name from ``configs/suites/`` or a path to a suite YAML.
        cycles: how many times each config is repeated (for confidence intervals).
        executor: ``auto`` (Slurm when sbatch is on PATH, else local), ``local``, ``slurm``.
        fresh: archive the suite's earlier progress and start over (IDs keep growing).
        paths: where configs, the tracker, results and logs live.
        slurm_options: sbatch resources; ignored (and named in ``notes``) when local.
        preflight: check models, datasets, prompt fit and device counts on this machine.
        runner: runs Slurm's commands (sacct, squeue, scontrol); tests inject one.
        on_plan: called once with the summary before anything runs or is submitted.
        on_start: called before each local key runs.
        on_outcome: called with each local key's outcome.
        max_parallel: local executor only: up to this many experiments at once, each on
            its own devices (``schedulers.parallel``); 1 runs them one after another.

    Returns:
        What was planned and what happened: ``to_run``, ``outcomes`` (local),
        ``submitted`` (key -> Slurm job ID) and one-line ``notes`` for the user.
    """
    summary, tracker, live = _prepare(
        suite, cycles, executor, fresh, paths, preflight, slurm_options, runner, max_parallel
    )
    try:
        if summary.executor == SLURM:
            if live:
                summary.notes.append(
                    f"{plural(len(live), 'key')} already queued or running "
                    "in Slurm: not submitting them again"
                )
            summary.to_run = [s for s in summary.to_run if s.key not in live]
            if on_plan is not None:
                on_plan(summary)
            summary.submitted = submit_to_slurm(summary.to_run, slurm_options, paths, runner)
        else:
            if on_plan is not None:
                on_plan(summary)
            summary.outcomes = run_local(
                summary.to_run, paths, on_start, on_outcome, max_parallel, _where(suite, paths)
            )
    finally:
        tracker.sync()
    return summary


def submit_to_slurm(
    specs: list[ExperimentSpec],
    opts: SlurmOptions,
    paths: Paths,
    runner: slurm.CommandRunner = slurm.run_command,
) -> dict[str, str]:
    """One sbatch call per array; job IDs are recorded against keys as they go."""
    if not specs:
        return {}
    tracker = ProgressTracker(paths.tracker_dir)
    task = SuiteTask(paths.tracker_dir, paths.results_dir, Path.cwd())
    submitted: dict[str, str] = {}
    for plan in plan_slurm(specs, opts, runner):
        ids = slurm.submit_array(plan, task, paths.logs_dir / "submitit")
        tracker.record_submission(specs[0].suite, list(ids), next(iter(ids.values())), ids)
        submitted.update(ids)
    return submitted


# Keys only a suite file has: a suite passed to `joulebench run` is named as one.
SUITE_ONLY_KEYS = ("models", "controlled", "grid", "configs", "overrides")


def run_config(
    config_path: Path,
    paths: Paths = Paths(),
    on_start: Callable[[ExperimentSpec], None] | None = None,
) -> TaskOutcome:
    """`joulebench run`: one experiment from one config file, recorded like any other.

    The file is a complete experiment config over the code's defaults (the README's
    configs reference); unlike a suite it does not build on ``configs/base.yaml``. Each
    run of the same file is recorded as the next cycle of ``MODEL::single::STEM``.
    """
    from joulebench.runner.preflight import check_specs, local_nodes_problem

    data = load_yaml_mapping(config_path)
    suite_keys = [k for k in SUITE_ONLY_KEYS if k in data]
    if suite_keys:
        raise ConfigError(
            f"{config_path}: is a suite (it has '{suite_keys[0]}'), not one "
            f"experiment config; run it with: submit-suite {config_path} "
            "--executor local"
        )
    config = validate_experiment(data, str(config_path))
    paths.check(write=True)
    tracker = ProgressTracker(paths.tracker_dir)
    state = tracker.read()
    stem = config_path.stem.replace("::", "_")
    prefix = make_key(config.model, "single", stem, 0).removesuffix("0")
    cycle = 1 + sum(1 for k in state.keys if k.startswith(prefix))
    spec = ExperimentSpec(suite="single", config_name=stem, cycle=cycle, config=config)
    nodes_problem = local_nodes_problem([spec])
    if nodes_problem:
        raise ConfigError(f"{config_path}: {nodes_problem}")
    check_specs([spec], str(config_path), local_cuda_gpus=_cuda_gpus())
    tracker.register("single", [(spec.key, spec.config_hash)])
    return run_tasks([spec], paths, on_start=on_start)[0]


def resume_failed(
    suite: str,
    *,
    causes: set[str] | None = None,
    dry_run: bool = False,
    executor: ExecutorChoice = AUTO,
    paths: Paths = Paths(),
    slurm_options: SlurmOptions = NO_SLURM_OPTIONS,
    runner: slurm.CommandRunner = slurm.run_command,
    preflight: bool = True,
    on_start: Callable[[ExperimentSpec], None] | None = None,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
    on_keys: Callable[[list[str]], None] | None = None,
    max_parallel: int = 1,
) -> SubmitSummary:
    """Rerun exactly the failed/stale keys of a suite, keeping their experiment IDs.

    A dry run makes every check the real rerun makes (the suite, the folders, the Slurm
    options, and models, prompts and devices as ``check_suite`` does) and lists the keys.

    Args:
        suite: a name from ``configs/suites/`` or a path to a suite YAML.
        causes: only keys whose last attempt failed for one of these causes.
        dry_run: check and list, run nothing, write nothing.
        executor: ``auto`` reruns on the executor the suite's last attempt ran on (Slurm
            when a Slurm job ran it, else local); ``local`` or ``slurm`` force one.
        paths, slurm_options, runner: as for ``submit_suite``.
        preflight: check models, datasets, prompt fit and device counts here first.
        max_parallel: as for ``submit_suite`` (local executor only).
    """
    from joulebench.runner.preflight import check_specs

    source = resolve_suite_path(suite, paths.configs_dir)  # a typo must not read "all done"
    state = ProgressTracker(paths.tracker_dir).read()
    name, note = _resume_executor(executor, suite, state)
    paths.check(write=not dry_run, logs=name == SLURM and not dry_run)
    keys = resumable_keys(suite, causes, paths, runner)
    specs_by_key: dict[str, ExperimentSpec] = {}
    if keys:
        cycles = max(split_key(k)[3] for k in keys)
        specs_by_key = {s.key: s for s in expand_suite(suite, cycles, paths)}
        missing = [k for k in keys if k not in specs_by_key]
        if missing:
            raise ConfigError(
                f"{missing[0]}: no longer produced by suite '{suite}' (config "
                "edited?); restore the suite file or start over with --fresh"
            )
    specs = [specs_by_key[k] for k in keys]
    if specs:
        check_submission(specs, name, paths, slurm_options, str(source), runner)
        check_max_parallel(specs, name, max_parallel, str(source))
        if preflight:
            check_specs(specs, str(source), local_cuda_gpus=_cuda_gpus() if name == LOCAL else None)
    notes = [n for n in (note, ignored_slurm_flags(name, slurm_options)) if n]
    summary = SubmitSummary(suite, name, len(keys), 0, specs, notes=notes)
    if dry_run or not keys:
        return summary
    if on_keys is not None:
        on_keys(keys)
    tracker = ProgressTracker(paths.tracker_dir)
    tracker.backup(keep=BACKUPS_KEPT)
    try:
        if name == SLURM:
            summary.submitted = submit_to_slurm(specs, slurm_options, paths, runner)
        else:
            summary.outcomes = run_local(
                specs, paths, on_start, on_outcome, max_parallel, str(source)
            )
    finally:
        tracker.sync()
    return summary


def _resume_executor(requested: str, suite: str, state: TrackerState) -> tuple[str, str | None]:
    return resume_executor(requested, suite, [r for r in state.keys.values() if r.suite == suite])
