"""Terminal output: a progress bar with done/total, rate and ETA; the status table."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from joulebench.schedulers.executors import LOCAL
from joulebench.schedulers.monitor import LABELS
from joulebench.wording import plural

STATE_ORDER = list(LABELS)  # display order: the status labels, then failed:<cause>


class SuiteProgress:
    """Callbacks for api.submit_suite / resume_failed that drive one rich progress bar."""

    def __init__(self) -> None:
        self.console = Console(highlight=False, soft_wrap=True)
        # Piped into a log or `| tee`, a bar is one frozen line cut at 80 columns
        # ("0:0…"): there each outcome line carries its k/N instead.
        self.live_bar = self.console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            disable=not self.live_bar,
        )
        self.task_id: Any = None
        self.started = time.monotonic()
        self.current_start = self.started
        self.started_at: dict[str, float] = {}

    def __enter__(self) -> SuiteProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def plan(self, summary: Any) -> None:
        for note in summary.notes:
            self.console.print(note)
        self.console.print(
            f"suite {summary.suite}: {plural(summary.total, 'experiment')}, "
            f"{summary.already_done} already done, {len(summary.to_run)} to run "
            f"(executor: {summary.executor})"
        )
        if summary.executor == LOCAL:
            self._add(len(summary.to_run))

    def plan_keys(self, keys: list[str]) -> None:
        self.console.print(f"resuming {plural(len(keys), 'key')}")
        self._add(len(keys))

    def _add(self, total: int) -> None:
        if total:
            self.task_id = self.progress.add_task("experiments", total=total, rate="")
        self.started = time.monotonic()

    def start(self, spec: Any) -> None:
        # by key: with --max-parallel several run at once and finish in any order
        self.current_start = time.monotonic()
        self.started_at[spec.key] = self.current_start
        self.progress.update(
            self.task_id, description=f"running {spec.config_name} (cycle {spec.cycle})"
        )

    def outcome(self, outcome: Any) -> None:
        took = time.monotonic() - self.started_at.pop(outcome.key, self.current_start)
        if outcome.status == "done":
            fig = outcome.figures or {}
            jpt = fig.get("energy_per_output_token_j")
            energy = f"{jpt:.4g} J/token ({fig.get('energy_method')})" if jpt else "no energy"
            resumed = (
                f", resumed {plural(outcome.resumed_batches, 'batch', 'batches')}"
                if outcome.resumed_batches
                else ""
            )
            line = (
                f"[green]done[/] {outcome.experiment_id} {outcome.key} "
                f"{took:.1f} s, {energy}{resumed}"
            )
        elif outcome.status == "failed":
            line = f"[red]failed[/] [{outcome.cause}] {outcome.key}: {outcome.message}"
        else:
            line = f"{outcome.status} {outcome.key}"
        self.progress.advance(self.task_id)
        task = self.progress.tasks[self.task_id]
        count = "" if self.live_bar else f"[{task.completed:g}/{task.total:g}] "
        self.console.print(count + line)
        per_min = task.completed / max(time.monotonic() - self.started, 1e-9) * 60
        self.progress.update(self.task_id, rate=f"{per_min:.1f}/min")


def _bar(done: int, total: int, width: int = 12) -> str:
    filled = round(width * done / total) if total else 0
    return f"{'█' * filled}{'░' * (width - filled)} {100 * done / total if total else 0:3.0f}%"


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}"


def status_view(report: Any, tracker_dir: Path) -> Group:
    """The status screen: table per suite/cycle, pace and ETA, latest failures."""
    parts: list[Any] = []
    if report.sacct_problem:
        parts.append(Text(f"note: {report.sacct_problem}"))
    rows = report.rows
    if not rows:
        return Group(Text(f"no experiments tracked in {tracker_dir}/"), *parts)
    states = STATE_ORDER + sorted({s for r in rows for s in r.counts if s not in STATE_ORDER})
    table = Table(title=f"progress ({tracker_dir})")
    for column in ["suite", "cycle", "progress", *states, "total", "flagged"]:
        table.add_column(
            column,
            justify="left" if column in ("suite", "progress") else "right",
            min_width=len(column) if column != "suite" else None,
        )
    for row in rows:
        done = row.counts.get("done", 0)
        table.add_row(
            row.suite,
            str(row.cycle),
            _bar(done, row.total),
            *(str(row.counts.get(s, 0)) for s in states),
            str(row.total),
            str(row.flagged),
        )
    parts.insert(0, table)
    for suite, eta in sorted(report.eta.items()):
        parts.append(Text(f"{suite}: {eta_line(eta)}"))
    if any(row.flagged for row in rows):
        parts.append(
            Text(
                "flagged: results whose quality flags leave them out of `joulebench "
                "report`'s statistics (estimate_only alone does not; see the "
                "quality_flags column of the CSV)"
            )
        )
    if any(rec.device_set for rec in getattr(report, "running", [])):
        parts.append(Text("running side by side:"))
        for rec in report.running:
            parts.append(Text(f"  {rec.experiment_id} on {rec.device_set or '-'}: {rec.key}"))
    if report.failures:
        parts.append(Text("latest failures:"))
        for rec in report.failures:
            parts.append(
                Text(f"  [{rec.cause}] {rec.key} ({rec.experiment_id}): {(rec.error or '')[:120]}")
            )
    return Group(*parts)


def eta_line(eta: Any) -> str:
    """Done/total with the recent pace and time left; a finished suite has neither."""
    if eta.total and eta.done >= eta.total:
        return f"all {eta.total} done"
    pace = f"{eta.per_hour:.1f}/h recently" if eta.per_hour else "pace unknown yet"
    left = f", ETA {_duration(eta.remaining_s)}" if eta.remaining_s else ""
    return f"{eta.done}/{eta.total} done, {pace}{left}"


def _console() -> Console:
    # Piped output (logs, CI, `| grep`) gets a wide console: rich would otherwise cut
    # column names like failed:node_fail to 80 columns.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def print_status(report: Any, tracker_dir: Path) -> None:
    _console().print(status_view(report, tracker_dir))


def watch_status(refresh: Any, interval_s: float, tracker_dir: Path) -> None:
    """Redraw in place until every key is done (or Ctrl-C); back off while idle."""
    console, previous, wait = _console(), None, interval_s
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while True:
            report = refresh()
            live.update(status_view(report, tracker_dir), refresh=True)
            rows = report.rows
            if rows and all(r.counts.get("done") == r.total for r in rows):
                return
            wait = interval_s if rows != previous else min(wait * 2, 60.0)
            previous = rows
            time.sleep(wait)


def render_experiment(parts: dict[str, Any]) -> None:
    """Key figures and provenance of one experiment, as a two-column table."""
    from joulebench.results.figures import experiment_figures

    rows = experiment_figures(parts)
    table = Table(show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for name, value in rows:
        table.add_row(name, value)
    Console(highlight=False, width=None if sys.stdout.isatty() else 160).print(table)
