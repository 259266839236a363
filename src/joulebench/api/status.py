"""Where each key stands: the tracker joined with sacct/squeue, counted per suite and cycle."""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from joulebench.api.common import check_suite_name
from joulebench.paths import Paths
from joulebench.results.layout import result_csvs
from joulebench.schedulers import monitor, slurm
from joulebench.schedulers.slurm_view import (
    KeyLabels,
    label_keys,
    latest_failures,
    refuse_unknown,
)
from joulebench.suite import resolve_suite_path
from joulebench.suite.spec import split_key
from joulebench.tracker import (
    DONE,
    RUNNING,
    KeyRecord,
    ProgressTracker,
    TrackerState,
)

log = logging.getLogger(__name__)

# The latest failures `status` lists under each suite's table.
FAILURES_SHOWN = 5


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
    # keys running now, with the devices each runs on when several run at once
    running: list[KeyRecord] = field(default_factory=list)


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
        latest_failures(records, labels, per_suite=FAILURES_SHOWN),
        current,
        [r for r in records if labels.labels.get(r.key) == RUNNING],
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
        try:
            rows = read_rows(path)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            # A CSV saved from a spreadsheet in another encoding must not take status down.
            log.warning(
                "%s: not counted for flagged results (%s); save it as UTF-8 CSV",
                path,
                type(exc).__name__,
            )
            continue
        for row in rows:
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
