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

STATE_ORDER = ["done", "running", "queued", "requeued", "stopping", "pending", "stale"]


class SuiteProgress:
    """Callbacks for api.submit_suite / resume_failed that drive one rich progress bar."""

    def __init__(self) -> None:
        self.console = Console(highlight=False, soft_wrap=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=self.console, transient=False)
        self.task_id: Any = None
        self.started = time.monotonic()
        self.current_start = self.started

    def __enter__(self) -> SuiteProgress:
        self.progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.stop()

    def plan(self, summary: Any) -> None:
        for note in summary.notes:
            self.console.print(note)
        self.console.print(f"suite {summary.suite}: {summary.total} experiments, "
                           f"{summary.already_done} already done, {len(summary.to_run)} to run "
                           f"(executor: {summary.executor})")
        if summary.executor == "local":
            self._add(len(summary.to_run))

    def plan_keys(self, keys: list[str]) -> None:
        self.console.print(f"resuming {len(keys)} keys")
        self._add(len(keys))

    def _add(self, total: int) -> None:
        if total:
            self.task_id = self.progress.add_task("experiments", total=total, rate="")
        self.started = time.monotonic()

    def start(self, spec: Any) -> None:
        self.current_start = time.monotonic()
        self.progress.update(self.task_id, description=f"running {spec.config_name} "
                                                       f"(cycle {spec.cycle})")

    def outcome(self, outcome: Any) -> None:
        took = time.monotonic() - self.current_start
        if outcome.status == "done":
            fig = outcome.figures or {}
            jpt = fig.get("energy_per_output_token_j")
            energy = f"{jpt:.4g} J/token ({fig.get('energy_method')})" if jpt else "no energy"
            resumed = f", resumed {outcome.resumed_batches} batches" if outcome.resumed_batches \
                else ""
            self.console.print(f"[green]done[/] {outcome.experiment_id} {outcome.key} "
                               f"{took:.1f} s, {energy}{resumed}")
        elif outcome.status == "failed":
            self.console.print(f"[red]failed[/] [{outcome.cause}] {outcome.key}: "
                               f"{outcome.message}")
        else:
            self.console.print(f"{outcome.status} {outcome.key}")
        self.progress.advance(self.task_id)
        task = self.progress.tasks[self.task_id]
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
        table.add_column(column, justify="left" if column in ("suite", "progress") else "right",
                         min_width=len(column) if column != "suite" else None)
    for row in rows:
        done = row.counts.get("done", 0)
        table.add_row(row.suite, str(row.cycle), _bar(done, row.total),
                      *(str(row.counts.get(s, 0)) for s in states), str(row.total),
                      str(row.flagged))
    parts.insert(0, table)
    for suite, eta in sorted(report.eta.items()):
        pace = f"{eta.per_hour:.1f}/h recently" if eta.per_hour else "pace unknown yet"
        left = f", ETA {_duration(eta.remaining_s)}" if eta.remaining_s else ""
        parts.append(Text(f"{suite}: {eta.done}/{eta.total} done, {pace}{left}"))
    if any(row.flagged for row in rows):
        parts.append(Text("flagged: results whose energy carries quality flags (see the "
                          "quality_flags column of the CSV)"))
    if report.failures:
        parts.append(Text("latest failures:"))
        for rec in report.failures:
            parts.append(Text(f"  [{rec.cause}] {rec.key} ({rec.experiment_id}): "
                              f"{(rec.error or '')[:120]}"))
    return Group(*parts)


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


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}{unit}"
    return f"{value}{unit}"


def render_experiment(parts: dict[str, Any]) -> None:
    """Key figures and provenance of one experiment, as a two-column table."""
    setup, inf, energy = parts["setup"], parts["inference"], parts["energy"]
    prov = setup.get("provenance", {})
    lat, ttft = inf.get("request_latency", {}), inf.get("time_to_first_token", {})
    rows = [
        ("experiment", f"{setup['experiment_id']}  {setup.get('key') or ''}"),
        ("config hash", _fmt(setup.get("config_hash"))),
        ("device / processes", f"{setup.get('device')} x {setup.get('num_processes')}"),
        ("prompts / output tokens", f"{inf['num_prompts']} / {inf['total_output_tokens']}"),
        ("throughput", _fmt(inf.get("throughput_output_tokens_per_s"), " tokens/s")),
        ("request latency p50/p95", f"{_fmt(lat.get('p50_s'), ' s')} / "
                                    f"{_fmt(lat.get('p95_s'), ' s')}"),
        ("time to first token p50", _fmt(ttft.get("p50_s"), " s")),
        ("energy", f"{_fmt(energy.get('energy_j'), ' J')} ({energy.get('meter')}, "
                   f"{energy.get('method')})"),
        ("energy per output token", _fmt(energy.get("energy_per_output_token_j"), " J")),
        ("dynamic energy per token", _fmt(energy.get("dynamic_energy_per_output_token_j"),
                                          " J")),
        ("quality flags", ", ".join(energy.get("quality_flags", [])) or "none"),
        ("batches resumed", _fmt(inf.get("batches_resumed"))),
        ("hosts", ", ".join(setup.get("hosts", []))),
        ("slurm", ", ".join(f"{k}={v}" for k, v in prov.get("slurm", {}).items()) or "-"),
        ("git commit", _fmt(prov.get("git_commit"))),
        ("versions", ", ".join(f"{k} {v}" for k, v in prov.get("versions", {}).items() if v)),
        ("dataset / prompt hash", f"{setup.get('dataset', {}).get('name')} / "
                                  f"{setup.get('dataset', {}).get('prompt_hash')}"),
    ]
    table = Table(show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for name, value in rows:
        table.add_row(name, value)
    Console(highlight=False, width=None if sys.stdout.isatty() else 160).print(table)
