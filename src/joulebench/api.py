"""The Python API the CLI is a thin layer over; notebook users call it directly.

>>> from joulebench import api
>>> specs = api.expand_suite("demo", cycles=2)
>>> summary = api.submit_suite("demo", cycles=2, executor="local")
>>> rows = api.status_rows("demo")
>>> frame = api.load_results("demo")
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joulebench.config.loader import load_yaml_mapping, validate_experiment
from joulebench.config.models import SAFE_NAME
from joulebench.errors import ConfigError
from joulebench.paths import Paths
from joulebench.results.layout import raw_dir, read_experiment, result_csvs
from joulebench.schedulers import monitor, slurm
from joulebench.schedulers.job import TaskOutcome, run_tasks
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
from joulebench.tracker import (
    DONE,
    KeyRecord,
    ProgressTracker,
    TrackerState,
    format_id,
)
from joulebench.tracker.layout import ARCHIVE_DIR
from joulebench.wording import plural

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

EXECUTORS = ("auto", "local", "slurm")
NO_SLURM_OPTIONS = SlurmOptions()  # frozen: safe as a shared default


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
    """Resolve 'auto'; the note is the one line a user sees about the choice and why."""
    if requested not in EXECUTORS:
        raise ConfigError(f"--executor: '{requested}' is not one of {', '.join(EXECUTORS)}")
    if requested == "slurm" and not sbatch_on_path():
        raise ConfigError(
            "--executor slurm: sbatch is not on PATH; run on a Slurm login node "
            "or use --executor local"
        )
    if requested != "auto":
        return requested, None
    if sbatch_on_path():
        return "slurm", (
            "executor: slurm (--executor auto found sbatch on PATH; "
            "--executor local runs here instead)"
        )
    return "local", "executor: local (--executor auto found no sbatch on PATH)"


def last_executor(records: list[KeyRecord]) -> str | None:
    """The executor the most recent attempt among ``records`` ran on, if any ran."""
    tried = [r for r in records if r.job_id]
    if not tried:
        return None
    latest = max(tried, key=lambda r: r.updated_at or "")
    return "slurm" if monitor.is_slurm_job(latest.job_id) else "local"


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
    specs: list[ExperimentSpec], executor: str, paths: Paths, opts: SlurmOptions
) -> None:
    """What a submission needs besides valid specs: usable folders, acceptable sbatch
    options. Writes nothing, so --dry-run and the real run refuse the same input."""
    paths.check(write=True, logs=executor == "slurm")
    if executor == "slurm":
        slurm.plan_arrays(specs, opts, slurm.DEFAULT_MAX_ARRAY_SIZE, "jb")


@dataclass(frozen=True)
class CheckedSuite:
    """A suite that passed every check a submission makes."""

    specs: list[ExperimentSpec]
    executor: str  # resolved: "local" or "slurm"
    notes: list[str]


def check_suite(
    suite: str,
    cycles: int = 1,
    *,
    executor: str = "auto",
    paths: Paths = Paths(),
    slurm_options: SlurmOptions = NO_SLURM_OPTIONS,
    preflight: bool = True,
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
    """
    from joulebench.runner.preflight import check_specs

    specs = expand_suite(suite, cycles, paths)
    name, note = choose_executor(executor)
    check_submission(specs, name, paths, slurm_options)
    if preflight:  # a login node has no GPU: only a local run checks the device
        check_specs(
            specs,
            str(resolve_suite_path(suite, paths.configs_dir)),
            local_cuda_gpus=_cuda_gpus() if name == "local" else None,
        )
    notes = [n for n in (note, ignored_slurm_flags(name, slurm_options)) if n]
    return CheckedSuite(specs, name, notes)


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
) -> tuple[SubmitSummary, ProgressTracker, set[str]]:
    checked = check_suite(
        suite, cycles, executor=executor, paths=paths, slurm_options=opts, preflight=preflight
    )
    specs, name, notes = checked.specs, checked.executor, list(checked.notes)
    tracker = ProgressTracker(paths.tracker_dir)
    before = tracker.read()
    live: set[str] = set()
    if name == "slurm":
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
    executor: str = "auto",
    fresh: bool = False,
    paths: Paths = Paths(),
    slurm_options: SlurmOptions = NO_SLURM_OPTIONS,
    preflight: bool = True,
    runner: slurm.CommandRunner = slurm.run_command,
    on_plan: Callable[[SubmitSummary], None] | None = None,
    on_start: Callable[[ExperimentSpec], None] | None = None,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
) -> SubmitSummary:
    """Validate, register, then run (local) or submit (Slurm) every key not done."""
    summary, tracker, live = _prepare(
        suite, cycles, executor, fresh, paths, preflight, slurm_options, runner
    )
    try:
        if summary.executor == "slurm":
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
            summary.outcomes = run_local(summary.to_run, paths, on_start, on_outcome)
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


def show_experiment(experiment_id: str, paths: Paths = Paths()) -> dict[str, Any]:
    """One experiment's setup, metrics and energy, read from its result files."""
    experiment_id = _result_id(experiment_id, paths.results_dir)
    return read_experiment(paths.results_dir, experiment_id)


def _result_id(given: str, results_dir: Path) -> str:
    """The experiment ID as its folder is named: '1' means '0001'.

    pandas and spreadsheets read the CSV's "0001" as the number 1, so users paste that
    back; a folder named exactly as given still wins (IDs from an older padding).
    """
    if not (given.isascii() and given.isdigit()):
        raise ConfigError(
            f"experiment ID '{given}' is not a number like 0042; "
            "see `joulebench status` or the CSV for IDs"
        )
    padded = format_id(int(given))
    if padded != given and raw_dir(results_dir, given).is_dir():
        return given
    return padded


def check_suite_name(suite: str) -> None:
    """A suite name becomes part of file names (archive/, reports/): keep it tame."""
    if not SAFE_NAME.match(suite):
        raise ConfigError(
            f"suite name '{suite}' may only hold letters, digits, '.', '_' "
            "and '-'; use the name of a file in configs/suites/"
        )


def report_suite(suite: str, out_dir: Path | None = None, paths: Paths = Paths()) -> Any:
    """`joulebench report`: statistics across cycles, plots and an HTML page for a suite.

    Pools only each key's current run (the experiment ID the tracker holds for it now), so
    runs archived by ``--fresh`` are listed apart, never mixed in; tabulates and plots the
    fields the suite's YAML varies (the CSV's own columns when the YAML is gone).
    """
    from joulebench.results.report import write_report

    check_suite_name(suite)
    csvs = result_csvs(paths.results_dir)
    if not csvs:
        raise ConfigError(
            f"{paths.results_dir}: no *_results.csv yet; run the suite first "
            "(submit-suite), or point --results-dir at its results"
        )
    return write_report(
        csvs,
        suite,
        out_dir or Path("reports") / suite,
        results_dir=paths.results_dir,
        variables=report_variables(suite, paths),
        current_ids=current_experiment_ids(suite, paths.tracker_dir),
    )


def current_experiment_ids(suite: str, tracker_dir: Path) -> dict[str, str] | None:
    """key -> the experiment ID the tracker holds for it now; None when the tracker knows
    nothing of the suite, live or archived (a results folder copied on its own, or a
    tracker folder started afresh), where every result counts as current."""
    state = ProgressTracker(tracker_dir).read()
    current = {
        key: rec.experiment_id
        for key, rec in state.keys.items()
        if rec.experiment_id and _suite_of(key) == suite
    }
    if not current and not any((tracker_dir / ARCHIVE_DIR).glob(f"{suite}_[0-9]*.json")):
        return None
    return current


def _suite_of(key: str) -> str | None:
    try:
        return split_key(key)[1]
    except ValueError:
        return None


def report_variables(suite: str, paths: Paths = Paths()) -> Any:
    """The fields the suite's YAML varies, with each config's resolved value; None (the
    report then reads them off the CSV) when the YAML is gone or no longer loads."""
    from joulebench.results.variables import suite_variables
    from joulebench.suite import expand_suite, load_suite

    try:
        definition = load_suite(suite, paths.configs_dir)
        specs = expand_suite(definition, 1)
    except ConfigError as exc:
        log.warning("report %s: varied fields taken from the results CSV (%s)", suite, exc)
        return None
    resolved = {(s.config.model, s.config_name): s.config.model_dump(mode="json") for s in specs}
    return suite_variables(definition.controlled, definition.grid, definition.configs, resolved)


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
    from joulebench.runner.preflight import check_specs

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
    check_specs([spec], str(config_path), local_cuda_gpus=_cuda_gpus())
    tracker.register("single", [(spec.key, spec.config_hash)])
    return run_tasks([spec], paths, on_start=on_start)[0]


@dataclass(frozen=True)
class StatusRow:
    suite: str
    cycle: int
    counts: dict[str, int]
    flagged: int = 0  # done results whose quality flags exclude them from the report

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def key_labels(
    suite: str | None = None,
    paths: Paths = Paths(),
    *,
    use_sacct: bool = True,
    runner: slurm.CommandRunner = slurm.run_command,
    state: TrackerState | None = None,
) -> KeyLabels:
    """Label every key of ``suite`` (or all) from the tracker and one sacct call."""
    state = state or ProgressTracker(paths.tracker_dir).read()
    return label_keys(state, suite, runner, use_sacct)


def _live_keys(
    state: TrackerState, paths: Paths, runner: slurm.CommandRunner, to_submit: list[str]
) -> set[str]:
    """Keys a Slurm job holds right now (queued, running or waiting after a requeue)."""
    labels = key_labels(None, paths, runner=runner, state=state)
    refuse_unknown(to_submit, labels, "submitting")
    return {
        key
        for key, label in labels.labels.items()
        if label in monitor.LIVE_LABELS and monitor.is_slurm_job(state.keys[key].job_id)
    }


@dataclass(frozen=True)
class StatusReport:
    rows: list[StatusRow]
    sacct_problem: str | None
    eta: dict[str, monitor.Eta]  # suite -> recent pace and time left
    failures: list[KeyRecord]  # most recent failed keys, newest first
    # key -> the experiment ID the tracker holds for it now (every suite), from the same read
    current_ids: dict[str, str] = field(default_factory=dict)


def status_report(
    suite: str | None = None,
    paths: Paths = Paths(),
    *,
    use_sacct: bool = True,
    runner: slurm.CommandRunner = slurm.run_command,
) -> StatusReport:
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
    current = {k: r.experiment_id for k, r in state.keys.items() if r.experiment_id}
    return StatusReport(
        rows_by_cycle(labels, paths.results_dir, current),
        labels.sacct_problem,
        eta,
        latest_failures(records, labels)[:5],
        current,
    )


def status_rows(
    suite: str | None = None,
    paths: Paths = Paths(),
    *,
    use_sacct: bool = True,
    runner: slurm.CommandRunner = slurm.run_command,
) -> list[StatusRow]:
    """Counts per suite and cycle (done, running, queued, failed:<cause>, ...), as the
    table of `joulebench status` shows them."""
    return status_report(suite, paths, use_sacct=use_sacct, runner=runner).rows


def load_results(suite: str | None = None, paths: Paths = Paths()) -> pd.DataFrame:
    """Every row of every results/*_results.csv (or one suite's) as a typed DataFrame.

    IDs and names are text ("0001" stays "0001"), cycle and attempt integers, true/false
    columns booleans, times UTC timestamps, every measurement a float, and quality_flags
    text ("" when none). No results yet gives an empty frame with every column.
    """
    from joulebench.results.frame import results_frame

    if suite is not None:
        check_suite_name(suite)
    frame = results_frame(result_csvs(paths.results_dir), suite)
    if suite is not None and frame.empty and suite != "single":
        resolve_suite_path(suite, paths.configs_dir)  # a typo must not read as "no results"
    return frame


def flagged_counts(
    results_dir: Path, current_ids: dict[str, str] | None = None
) -> Counter[tuple[str, int]]:
    """(suite, cycle) -> current results whose quality flags exclude them from the report's
    statistics (``measure.quality.is_flagged``: the report's rule, so the two agree).

    ``current_ids`` (key -> experiment ID the tracker holds now) leaves out rows archived
    by ``--fresh``: without it a rerun suite counts its old results too.
    """
    from joulebench.measure.quality import is_flagged
    from joulebench.results import read_rows

    counts: Counter[tuple[str, int]] = Counter()
    for path in result_csvs(results_dir):
        for row in read_rows(path):
            if current_ids is not None and current_ids.get(row.get("key", "")) != row.get(
                "experiment_id"
            ):
                continue
            if is_flagged(row.get("quality_flags")) and row.get("cycle", "").isdigit():
                counts[(row.get("suite", "?"), int(row["cycle"]))] += 1
    return counts


def rows_by_cycle(
    labels: KeyLabels, results_dir: Path | None = None, current_ids: dict[str, str] | None = None
) -> list[StatusRow]:
    """Counts per (suite, cycle) and state; ``flagged`` counts only done keys' current
    results, so it never exceeds the done count (nor the total)."""
    grouped: dict[tuple[str, int], Counter[str]] = {}
    for key, label in labels.labels.items():
        try:
            _, suite, _, cycle = split_key(key)
        except ValueError:
            suite, cycle = "?", 0
        grouped.setdefault((suite, cycle), Counter())[label] += 1
    done = {key for key, label in labels.labels.items() if label == DONE}
    mine = {k: v for k, v in current_ids.items() if k in done} if current_ids is not None else None
    flagged = flagged_counts(results_dir, mine) if results_dir is not None else Counter()
    return [
        StatusRow(s, c, dict(n), flagged.get((s, c), 0)) for (s, c), n in sorted(grouped.items())
    ]


def resumable_keys(
    suite: str,
    causes: set[str] | None = None,
    paths: Paths = Paths(),
    runner: slurm.CommandRunner = slurm.run_command,
) -> list[str]:
    """Keys not done whose last attempt failed or vanished; never ones alive right now."""
    labels = key_labels(suite, paths, runner=runner)
    out = []
    for key, label in labels.labels.items():
        cause = monitor.resumable(label)
        if cause is not None and (not causes or cause in causes):
            out.append(key)
    refuse_unknown(out, labels, "resubmitting")
    return out


def resume_failed(
    suite: str,
    *,
    causes: set[str] | None = None,
    dry_run: bool = False,
    executor: str = "auto",
    paths: Paths = Paths(),
    slurm_options: SlurmOptions = NO_SLURM_OPTIONS,
    runner: slurm.CommandRunner = slurm.run_command,
    preflight: bool = True,
    on_start: Callable[[ExperimentSpec], None] | None = None,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
    on_keys: Callable[[list[str]], None] | None = None,
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
    """
    from joulebench.runner.preflight import check_specs

    source = resolve_suite_path(suite, paths.configs_dir)  # a typo must not read "all done"
    state = ProgressTracker(paths.tracker_dir).read()
    name, note = _resume_executor(executor, suite, state)
    paths.check(write=not dry_run, logs=name == "slurm" and not dry_run)
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
        check_submission(specs, name, paths, slurm_options)
        if preflight:
            check_specs(
                specs, str(source), local_cuda_gpus=_cuda_gpus() if name == "local" else None
            )
    notes = [n for n in (note, ignored_slurm_flags(name, slurm_options)) if n]
    summary = SubmitSummary(suite, name, len(keys), 0, specs, notes=notes)
    if dry_run or not keys:
        return summary
    if on_keys is not None:
        on_keys(keys)
    tracker = ProgressTracker(paths.tracker_dir)
    tracker.backup(keep=BACKUPS_KEPT)
    try:
        if name == "slurm":
            summary.submitted = submit_to_slurm(specs, slurm_options, paths, runner)
        else:
            summary.outcomes = run_local(specs, paths, on_start, on_outcome)
    finally:
        tracker.sync()
    return summary


def _resume_executor(requested: str, suite: str, state: TrackerState) -> tuple[str, str | None]:
    """``auto`` for a rerun means where the suite last ran, so a laptop suite is not sent to
    a cluster (or the reverse) just because sbatch happens to be on PATH."""
    if requested != "auto":
        return choose_executor(requested)
    ran_on = last_executor([r for r in state.keys.values() if r.suite == suite])
    if ran_on is None:
        return choose_executor("auto")
    if ran_on == "slurm" and not sbatch_on_path():
        raise ConfigError(
            f"suite '{suite}' last ran on Slurm but sbatch is not on PATH here; "
            "run resume-failed on the login node, or pass --executor local to "
            "rerun here"
        )
    return ran_on, (
        f"executor: {ran_on} (where '{suite}' last ran; --executor "
        f"{'local' if ran_on == 'slurm' else 'slurm'} to change)"
    )
