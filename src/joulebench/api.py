"""The Python API the CLI is a thin layer over; notebook users call it directly.

>>> from joulebench import api
>>> specs = api.expand_suite("demo", cycles=2)
>>> summary = api.submit_suite("demo", cycles=2, executor="local")
>>> api.status_rows()
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from joulebench.config.loader import load_yaml_mapping, validate_experiment
from joulebench.errors import ConfigError
from joulebench.schedulers.job import JobPaths, TaskOutcome, run_tasks
from joulebench.schedulers.local import run_local, sbatch_on_path
from joulebench.suite import ExperimentSpec, load_and_expand, resolve_suite_path
from joulebench.suite.spec import make_key, split_key
from joulebench.tracker import DONE, FAILED, PENDING, RUNNING, ProgressTracker, TrackerState
from joulebench.tracker.store import pid_alive

EXECUTORS = ("auto", "local")


@dataclass(frozen=True)
class Paths:
    configs_dir: Path = Path("configs")
    tracker_dir: Path = Path("persistent_progress_trackers")
    results_dir: Path = Path("results")

    @property
    def job(self) -> JobPaths:
        return JobPaths(self.tracker_dir, self.results_dir)


@dataclass
class SubmitSummary:
    suite: str
    executor: str
    total: int
    already_done: int
    to_run: list[ExperimentSpec]
    outcomes: list[TaskOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[TaskOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def expand_suite(suite: str, cycles: int = 1, paths: Paths = Paths()) -> list[ExperimentSpec]:
    return load_and_expand(suite, cycles, paths.configs_dir)


def choose_executor(requested: str) -> tuple[str, str | None]:
    """Resolve 'auto'; the note is the one line a user sees about the choice."""
    if requested not in EXECUTORS:
        raise ConfigError(f"--executor: '{requested}' is not one of {', '.join(EXECUTORS)}")
    if requested == "local":
        return "local", None
    if sbatch_on_path():
        return "local", ("sbatch found, but Slurm submission is not available in this version;"
                         " running locally")
    return "local", "sbatch not found on PATH: running locally (--executor local)"


def _cuda_visible() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def submit_suite(suite: str, cycles: int = 1, *, executor: str = "auto", fresh: bool = False,
                 paths: Paths = Paths(), preflight: bool = True,
                 on_plan: Callable[[SubmitSummary], None] | None = None,
                 on_start: Callable[[ExperimentSpec], None] | None = None,
                 on_outcome: Callable[[TaskOutcome], None] | None = None) -> SubmitSummary:
    """Validate, register, then run every key that is not done (resume by default)."""
    from joulebench.runner.preflight import check_specs

    specs = expand_suite(suite, cycles, paths)
    source = str(resolve_suite_path(suite, paths.configs_dir))
    name, note = choose_executor(executor)
    if preflight:
        check_specs(specs, source, local_device_has_cuda=_cuda_visible())
    tracker = ProgressTracker(paths.tracker_dir)
    tracker.backup()
    notes = [note] if note else []
    if fresh:
        archived = tracker.archive_suite(specs[0].suite)
        if archived is not None:
            notes.append(f"--fresh: archived earlier progress of '{specs[0].suite}' to {archived}")
    tracker.register(specs[0].suite, [(s.key, s.config_hash) for s in specs])
    state = tracker.read()
    todo = [s for s in specs if state.keys[s.key].state != DONE]
    summary = SubmitSummary(specs[0].suite, name, len(specs), len(specs) - len(todo), todo,
                            notes=notes)
    if on_plan is not None:
        on_plan(summary)
    try:
        summary.outcomes = run_local(todo, paths.job, on_start, on_outcome)
    finally:
        tracker.sync()
    return summary


def run_config(config_path: Path, paths: Paths = Paths()) -> TaskOutcome:
    """`joulebench run`: one experiment from one config file, recorded like any other."""
    config = validate_experiment(load_yaml_mapping(config_path), str(config_path))
    from joulebench.runner.preflight import check_specs

    tracker = ProgressTracker(paths.tracker_dir)
    state = tracker.read()
    stem = config_path.stem.replace("::", "_")
    prefix = make_key(config.model, "single", stem, 0).rsplit("::", 1)[0]
    cycle = 1 + sum(1 for k in state.keys if k.startswith(prefix + "::"))
    spec = ExperimentSpec(suite="single", config_name=stem, cycle=cycle, config=config)
    check_specs([spec], str(config_path), local_device_has_cuda=_cuda_visible())
    tracker.register("single", [(spec.key, spec.config_hash)])
    return run_tasks([spec], paths.job)[0]


@dataclass(frozen=True)
class StatusRow:
    suite: str
    cycle: int
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def effective_state(rec_state: str, host: str | None, pid: int | None) -> str:
    """'running' whose process on this host is gone is 'stale' (a claim nobody holds)."""
    import socket

    if rec_state == RUNNING and host == socket.gethostname() and pid is not None \
            and not pid_alive(pid):
        return "stale"
    return rec_state


def status_rows(suite: str | None = None, paths: Paths = Paths(),
                state: TrackerState | None = None) -> list[StatusRow]:
    """Counts per suite and cycle by state (done, running, stale, failed:<cause>, pending)."""
    state = state or ProgressTracker(paths.tracker_dir).read()
    grouped: dict[tuple[str, int], Counter[str]] = {}
    for rec in state.keys.values():
        try:
            _, rec_suite, _, cycle = split_key(rec.key)
        except ValueError:
            rec_suite, cycle = rec.suite or "?", 0
        if suite is not None and rec_suite != suite:
            continue
        label = effective_state(rec.state, rec.host, rec.pid)
        if label == FAILED:
            label = f"failed:{rec.cause or 'unknown'}"
        grouped.setdefault((rec_suite, cycle), Counter())[label] += 1
    return [StatusRow(s, c, dict(counts)) for (s, c), counts in sorted(grouped.items())]


def resumable_keys(suite: str, causes: set[str] | None = None, paths: Paths = Paths()
                   ) -> list[str]:
    """Keys not done whose last attempt failed or whose claim went stale; never live ones."""
    state = ProgressTracker(paths.tracker_dir).read()
    out = []
    for rec in state.keys.values():
        if rec.suite != suite:
            continue
        label = effective_state(rec.state, rec.host, rec.pid)
        cause = rec.cause if label == FAILED else "interrupted" if label == "stale" else None
        if cause is None or (causes and cause not in causes):
            continue
        out.append(rec.key)
    return out


def resume_failed(suite: str, cycles_hint: int | None = None, *, causes: set[str] | None = None,
                  dry_run: bool = False, paths: Paths = Paths(),
                  on_start: Callable[[ExperimentSpec], None] | None = None,
                  on_outcome: Callable[[TaskOutcome], None] | None = None,
                  on_keys: Callable[[list[str]], None] | None = None
                  ) -> tuple[list[str], list[TaskOutcome]]:
    """Rerun exactly the failed/stale keys of a suite, keeping their experiment IDs."""
    keys = resumable_keys(suite, causes, paths)
    if dry_run or not keys:
        return keys, []
    if on_keys is not None:
        on_keys(keys)
    max_cycle = max(split_key(k)[3] for k in keys)
    specs = {s.key: s for s in expand_suite(suite, max(max_cycle, cycles_hint or 1), paths)}
    missing = [k for k in keys if k not in specs]
    if missing:
        raise ConfigError(f"{missing[0]}: no longer produced by suite '{suite}' (config edited?);"
                          " restore the suite file or start over with submit-suite --fresh")
    try:
        outcomes = run_local([specs[k] for k in keys], paths.job, on_start, on_outcome)
    finally:
        ProgressTracker(paths.tracker_dir).sync()
    return keys, outcomes


__all__ = [
    "PENDING",
    "Paths",
    "StatusRow",
    "SubmitSummary",
    "expand_suite",
    "resumable_keys",
    "resume_failed",
    "run_config",
    "status_rows",
    "submit_suite",
]
