"""The Python API the CLI is a thin layer over; notebook users call it directly.

>>> from joulebench import api
>>> specs = api.expand_suite("demo", cycles=2)
>>> summary = api.submit_suite("demo", cycles=2, executor="local")
>>> api.status_rows("demo")
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from joulebench.config.loader import load_yaml_mapping, validate_experiment
from joulebench.config.models import SAFE_NAME
from joulebench.errors import ConfigError
from joulebench.paths import check_paths
from joulebench.schedulers import monitor, slurm
from joulebench.schedulers.job import JobPaths, TaskOutcome, run_tasks
from joulebench.schedulers.local import run_local, sbatch_on_path
from joulebench.schedulers.slurm_options import SlurmOptions
from joulebench.schedulers.slurm_task import SuiteTask
from joulebench.schedulers.slurm_view import (
    KeyLabels,
    label_keys,
    latest_failures,
    refuse_unknown,
)
from joulebench.suite import ExperimentSpec, load_and_expand, resolve_suite_path
from joulebench.suite.spec import make_key, split_key
from joulebench.tracker import DONE, KeyRecord, ProgressTracker, TrackerState

EXECUTORS = ("auto", "local", "slurm")
NO_SLURM_OPTIONS = SlurmOptions()  # frozen: safe as a shared default


@dataclass(frozen=True)
class Paths:
    configs_dir: Path = Path("configs")
    tracker_dir: Path = Path("persistent_progress_trackers")
    results_dir: Path = Path("results")
    logs_dir: Path = Path("logs")

    @property
    def job(self) -> JobPaths:
        return JobPaths(self.tracker_dir, self.results_dir)

    def check(self, *, write: bool, logs: bool = False) -> None:
        """Refuse, before anything is written, folders that are files or read-only."""
        outputs = {"--tracker-dir": self.tracker_dir, "--results-dir": self.results_dir}
        if logs:
            outputs["logs folder"] = self.logs_dir
        check_paths(self.configs_dir, outputs, write=write)


@dataclass
class SubmitSummary:
    suite: str
    executor: str
    total: int
    already_done: int
    to_run: list[ExperimentSpec]
    outcomes: list[TaskOutcome] = field(default_factory=list)
    submitted: dict[str, str] = field(default_factory=dict)  # key -> Slurm job ID
    notes: list[str] = field(default_factory=list)


def expand_suite(suite: str, cycles: int = 1, paths: Paths = Paths()) -> list[ExperimentSpec]:
    return load_and_expand(suite, cycles, paths.configs_dir)


def choose_executor(requested: str) -> tuple[str, str | None]:
    """Resolve 'auto'; the note is the one line a user sees about the choice."""
    if requested not in EXECUTORS:
        raise ConfigError(f"--executor: '{requested}' is not one of {', '.join(EXECUTORS)}")
    if requested == "slurm" and not sbatch_on_path():
        raise ConfigError("--executor slurm: sbatch is not on PATH; run on a Slurm login node "
                          "or use --executor local")
    if requested != "auto":
        return requested, None
    if sbatch_on_path():
        return "slurm", None
    return "local", "sbatch not found on PATH: running locally (--executor local)"


def ignored_slurm_flags(executor: str, opts: SlurmOptions) -> str | None:
    """The note for Slurm options given to a run that will not go through Slurm.

    Named by key, not as flags: they may come from the command line or a --profile file.
    """
    given = [k for k, v in asdict(opts).items() if v is not None]
    if executor == "slurm" or not given:
        return None
    return f"Slurm options ignored by the {executor} executor: {', '.join(given)}"


def _cuda_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def plan_slurm(specs: list[ExperimentSpec], opts: SlurmOptions,
               runner: slurm.CommandRunner = slurm.run_command) -> list[slurm.ArrayPlan]:
    return slurm.plan_arrays(specs, opts, slurm.max_array_size(runner),
                             job_name=f"jb-{specs[0].suite}" if specs else "jb")


def check_submission(specs: list[ExperimentSpec], executor: str, paths: Paths,
                     opts: SlurmOptions) -> None:
    """What a submission needs besides valid specs: usable folders, acceptable sbatch
    options. Writes nothing, so --dry-run and the real run refuse the same input."""
    paths.check(write=True, logs=executor == "slurm")
    if executor == "slurm":
        slurm.plan_arrays(specs, opts, slurm.DEFAULT_MAX_ARRAY_SIZE, "jb")


def _prepare(suite: str, cycles: int, executor: str, fresh: bool, paths: Paths,
             preflight: bool, opts: SlurmOptions, runner: slurm.CommandRunner
             ) -> tuple[SubmitSummary, ProgressTracker, set[str]]:
    from joulebench.runner.preflight import check_specs

    specs = expand_suite(suite, cycles, paths)
    name, note = choose_executor(executor)
    check_submission(specs, name, paths, opts)
    if preflight:  # a login node has no GPU: only a local run checks the device
        check_specs(specs, str(resolve_suite_path(suite, paths.configs_dir)),
                    local_cuda_gpus=_cuda_gpus() if name == "local" else None)
    tracker = ProgressTracker(paths.tracker_dir)
    live: set[str] = set()
    if name == "slurm":
        # Asked before any write, so a refusal (Slurm state unknown) changes nothing.
        before = tracker.read()
        wanted = [s.key for s in specs
                  if s.key not in before.keys or before.keys[s.key].state != DONE]
        live = _live_keys(before, paths, runner, wanted)
    # Everything is validated: only now may the tracker be written.
    tracker.backup()
    notes = [n for n in (note, ignored_slurm_flags(name, opts)) if n]
    if fresh:
        archived = tracker.archive_suite(specs[0].suite)
        if archived is not None:
            notes.append(f"--fresh: archived earlier progress of '{specs[0].suite}' to {archived}")
    tracker.register(specs[0].suite, [(s.key, s.config_hash) for s in specs])
    state = tracker.read()
    todo = [s for s in specs if state.keys[s.key].state != DONE]
    return SubmitSummary(specs[0].suite, name, len(specs), len(specs) - len(todo), todo,
                         notes=notes), tracker, live


def submit_suite(suite: str, cycles: int = 1, *, executor: str = "auto", fresh: bool = False,
                 paths: Paths = Paths(), slurm_options: SlurmOptions = NO_SLURM_OPTIONS,
                 preflight: bool = True, runner: slurm.CommandRunner = slurm.run_command,
                 on_plan: Callable[[SubmitSummary], None] | None = None,
                 on_start: Callable[[ExperimentSpec], None] | None = None,
                 on_outcome: Callable[[TaskOutcome], None] | None = None) -> SubmitSummary:
    """Validate, register, then run (local) or submit (Slurm) every key not done."""
    summary, tracker, live = _prepare(suite, cycles, executor, fresh, paths, preflight,
                                      slurm_options, runner)
    try:
        if summary.executor == "slurm":
            if live:
                summary.notes.append(f"{len(live)} keys are already queued or running in "
                                     "Slurm; not submitting them again")
            summary.to_run = [s for s in summary.to_run if s.key not in live]
            if on_plan is not None:
                on_plan(summary)
            summary.submitted = submit_to_slurm(summary.to_run, slurm_options, paths, runner)
        else:
            if on_plan is not None:
                on_plan(summary)
            summary.outcomes = run_local(summary.to_run, paths.job, on_start, on_outcome)
    finally:
        tracker.sync()
    return summary


def submit_to_slurm(specs: list[ExperimentSpec], opts: SlurmOptions, paths: Paths,
                    runner: slurm.CommandRunner = slurm.run_command) -> dict[str, str]:
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


def show_experiment(experiment_id: str, paths: Paths = Paths()) -> dict[str, Any]:
    """One experiment's setup, metrics and energy, read from its result files."""
    import json

    from joulebench.results import raw_dir

    if not experiment_id.isdigit():
        raise ConfigError(f"experiment ID '{experiment_id}' is not a number like 0042; "
                          "see `joulebench status` or the CSV for IDs")
    folder = raw_dir(paths.results_dir, experiment_id)
    parts = {"setup": "1_experiment_setup", "inference": "4_inference_metrics",
             "compute": "5_compute_metrics", "energy": "7_global_energy_results"}
    out: dict[str, Any] = {}
    for name, suffix in parts.items():
        path = folder / f"{experiment_id}_{suffix}.json"
        try:
            out[name] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: not found; experiment {experiment_id} has no results "
                              f"in {paths.results_dir}/ (wrong --results-dir, or not done)"
                              ) from None
        except ValueError:
            raise ConfigError(f"{path}: not valid JSON; rerun the experiment") from None
    return out


def check_suite_name(suite: str) -> None:
    """A suite name becomes part of file names (archive/, reports/): keep it tame."""
    if not SAFE_NAME.match(suite):
        raise ConfigError(f"suite name '{suite}' may only hold letters, digits, '.', '_' "
                          "and '-'; use the name of a file in configs/suites/")


def report_suite(suite: str, out_dir: Path | None = None, paths: Paths = Paths()) -> Any:
    """`joulebench report`: statistics across cycles, plots and an HTML page for a suite."""
    from joulebench.results.report import write_report

    check_suite_name(suite)
    csvs = sorted(paths.results_dir.glob("*_results.csv"))
    if not csvs:
        raise ConfigError(f"{paths.results_dir}: no *_results.csv yet; run the suite first "
                          "(submit-suite), or point --results-dir at its results")
    return write_report(csvs, suite, out_dir or Path("reports") / suite,
                        results_dir=paths.results_dir)


def run_config(config_path: Path, paths: Paths = Paths()) -> TaskOutcome:
    """`joulebench run`: one experiment from one config file, recorded like any other."""
    from joulebench.runner.preflight import check_specs

    config = validate_experiment(load_yaml_mapping(config_path), str(config_path))
    paths.check(write=True)
    tracker = ProgressTracker(paths.tracker_dir)
    state = tracker.read()
    stem = config_path.stem.replace("::", "_")
    prefix = make_key(config.model, "single", stem, 0).removesuffix("0")
    cycle = 1 + sum(1 for k in state.keys if k.startswith(prefix))
    spec = ExperimentSpec(suite="single", config_name=stem, cycle=cycle, config=config)
    check_specs([spec], str(config_path), local_cuda_gpus=_cuda_gpus())
    tracker.register("single", [(spec.key, spec.config_hash)])
    return run_tasks([spec], paths.job)[0]


@dataclass(frozen=True)
class StatusRow:
    suite: str
    cycle: int
    counts: dict[str, int]
    flagged: int = 0  # done results whose energy carries a quality flag

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def key_labels(suite: str | None = None, paths: Paths = Paths(), *, use_sacct: bool = True,
               runner: slurm.CommandRunner = slurm.run_command,
               state: TrackerState | None = None) -> KeyLabels:
    """Label every key of ``suite`` (or all) from the tracker and one sacct call."""
    state = state or ProgressTracker(paths.tracker_dir).read()
    return label_keys(state, suite, runner, use_sacct)


def _live_keys(state: TrackerState, paths: Paths, runner: slurm.CommandRunner,
               to_submit: list[str]) -> set[str]:
    """Keys a Slurm job holds right now (queued, running or waiting after a requeue)."""
    labels = key_labels(None, paths, runner=runner, state=state)
    refuse_unknown(to_submit, labels, "submitting")
    return {key for key, label in labels.labels.items()
            if label in monitor.LIVE_LABELS
            and monitor.is_slurm_job(state.keys[key].job_id)}


@dataclass(frozen=True)
class StatusReport:
    rows: list[StatusRow]
    sacct_problem: str | None
    eta: dict[str, monitor.Eta]  # suite -> recent pace and time left
    failures: list[KeyRecord]  # most recent failed keys, newest first


def status_report(suite: str | None = None, paths: Paths = Paths(), *, use_sacct: bool = True,
                  runner: slurm.CommandRunner = slurm.run_command) -> StatusReport:
    """Everything `joulebench status` shows, from one tracker read and one sacct call."""
    if suite is not None:
        check_suite_name(suite)
    paths.check(write=False)
    state = ProgressTracker(paths.tracker_dir).read()
    labels = key_labels(suite, paths, use_sacct=use_sacct, runner=runner, state=state)
    if suite is not None and not labels.labels:
        resolve_suite_path(suite, paths.configs_dir)  # a typo must not read as "nothing yet"
    records = [r for r in state.keys.values() if r.key in labels.labels]
    suites = sorted({r.suite or "?" for r in records})
    eta = {s: monitor.estimate_eta([r for r in records if r.suite == s]) for s in suites}
    return StatusReport(status_rows(labels, paths.results_dir), labels.sacct_problem, eta,
                        latest_failures(records, labels)[:5])


def flagged_counts(results_dir: Path) -> Counter[tuple[str, int]]:
    """(suite, cycle) -> results with quality flags, from every results CSV."""
    from joulebench.results import read_rows

    counts: Counter[tuple[str, int]] = Counter()
    for path in sorted(results_dir.glob("*_results.csv")):
        for row in read_rows(path):
            if row.get("quality_flags") and row.get("cycle", "").isdigit():
                counts[(row.get("suite", "?"), int(row["cycle"]))] += 1
    return counts


def status_rows(labels: KeyLabels, results_dir: Path | None = None) -> list[StatusRow]:
    grouped: dict[tuple[str, int], Counter[str]] = {}
    for key, label in labels.labels.items():
        try:
            _, suite, _, cycle = split_key(key)
        except ValueError:
            suite, cycle = "?", 0
        grouped.setdefault((suite, cycle), Counter())[label] += 1
    flagged = flagged_counts(results_dir) if results_dir is not None else Counter()
    return [StatusRow(s, c, dict(n), flagged.get((s, c), 0))
            for (s, c), n in sorted(grouped.items())]


def resumable_keys(suite: str, causes: set[str] | None = None, paths: Paths = Paths(),
                   runner: slurm.CommandRunner = slurm.run_command) -> list[str]:
    """Keys not done whose last attempt failed or vanished; never ones alive right now."""
    labels = key_labels(suite, paths, runner=runner)
    out = []
    for key, label in labels.labels.items():
        cause = monitor.resumable(label)
        if cause is not None and (not causes or cause in causes):
            out.append(key)
    refuse_unknown(out, labels, "resubmitting")
    return out


def resume_failed(suite: str, *, causes: set[str] | None = None, dry_run: bool = False,
                  executor: str = "auto", paths: Paths = Paths(),
                  slurm_options: SlurmOptions = NO_SLURM_OPTIONS,
                  runner: slurm.CommandRunner = slurm.run_command,
                  on_start: Callable[[ExperimentSpec], None] | None = None,
                  on_outcome: Callable[[TaskOutcome], None] | None = None,
                  on_keys: Callable[[list[str]], None] | None = None) -> SubmitSummary:
    """Rerun exactly the failed/stale keys of a suite, keeping their experiment IDs."""
    name, note = choose_executor(executor)
    resolve_suite_path(suite, paths.configs_dir)  # a typo'd name must not read as "all done"
    paths.check(write=not dry_run, logs=name == "slurm" and not dry_run)
    keys = resumable_keys(suite, causes, paths, runner)
    specs_by_key: dict[str, ExperimentSpec] = {}
    if keys:
        cycles = max(split_key(k)[3] for k in keys)
        specs_by_key = {s.key: s for s in expand_suite(suite, cycles, paths)}
        missing = [k for k in keys if k not in specs_by_key]
        if missing:
            raise ConfigError(f"{missing[0]}: no longer produced by suite '{suite}' (config "
                              "edited?); restore the suite file or start over with --fresh")
    specs = [specs_by_key[k] for k in keys]
    if name == "slurm":
        check_submission(specs, name, paths, slurm_options)
    notes = [n for n in (note, ignored_slurm_flags(name, slurm_options)) if n]
    summary = SubmitSummary(suite, name, len(keys), 0, specs, notes=notes)
    if dry_run or not keys:
        return summary
    if on_keys is not None:
        on_keys(keys)
    try:
        if name == "slurm":
            summary.submitted = submit_to_slurm(specs, slurm_options, paths, runner)
        else:
            summary.outcomes = run_local(specs, paths.job, on_start, on_outcome)
    finally:
        ProgressTracker(paths.tracker_dir).sync()
    return summary
