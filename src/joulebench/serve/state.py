"""What the dashboard shows, computed once per change of the tracker and results, shared
by every client.

A change is seen through the (mtime_ns, size) of the tracker's files, the results CSVs and
the suite YAMLs, checked at most every ``check_interval_s`` (and every twice the last
rebuild's time); on a Slurm login node the sacct-joined labels also age out every
``sacct_ttl_s`` (a job starts running without the tracker changing). The rebuild runs on a
background thread while every client keeps getting the previous snapshot: a slow sacct or a
100k-key tracker never stalls a request, and 50 clients never mean 50 reads.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import os
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from joulebench import api
from joulebench.errors import JoulebenchError, TrackerError
from joulebench.schedulers import slurm
from joulebench.tracker import ProgressTracker

log = logging.getLogger(__name__)

TABLE_COLUMNS = (
    "experiment_id",
    "config_name",
    "cycle",
    "model",
    "key",
    "energy_per_output_token_j",
    "dynamic_energy_per_output_token_j",
    "throughput_output_tokens_per_s",
    "request_latency_p95_s",
    "quality_flags",
)
NUMERIC = frozenset(TABLE_COLUMNS[5:9])
# What one bad results CSV (not UTF-8, unreadable, malformed) raises while being read: it
# is skipped and named, so the rest of the dashboard keeps working.
CSV_ERRORS = (OSError, UnicodeDecodeError, csv.Error, ValueError)


@dataclass
class Snapshot:
    """One consistent view: the status (or the tracker's error) and the results rows."""

    version: str
    suites: dict[str, Any]  # the /api/suites body
    rows: list[dict[str, str]]  # every results CSV row
    # suite -> api.current_experiment_ids (key -> the ID the tracker holds now; None: every
    # row counts): the one rule `report`, the suite page and /metrics all use
    current_ids: dict[str, dict[str, str] | None]
    tracker_ok: bool
    problems: list[str] = field(default_factory=list)  # results CSVs skipped, and why
    suite_pages: dict[str, dict[str, Any]] = field(default_factory=dict)  # memo per suite
    lock: threading.Lock = field(default_factory=threading.Lock)

    def current_for(self, suite: str) -> dict[str, str] | None:
        return self.current_ids.get(suite)


def _stat_entries(folder: Path, keep: Callable[[str], bool]) -> Iterable[tuple[str, int, int]]:
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if keep(entry.name):
                    try:
                        st = entry.stat()
                    except OSError:
                        continue  # replaced between listing and stat: seen next time
                    yield (entry.path, st.st_mtime_ns, st.st_size)
    except OSError:
        return


def fingerprint(paths: api.Paths) -> str:
    """Changes whenever a file the snapshot is made from changes (written atomically by
    rename or appended: either moves the mtime or the size)."""
    parts: list[tuple[str, int, int]] = []
    parts += _stat_entries(paths.tracker_dir, lambda n: not n.startswith("."))
    parts += _stat_entries(paths.results_dir, lambda n: n.endswith(".csv"))
    parts += _stat_entries(paths.configs_dir / "suites", lambda n: n.endswith(".yaml"))
    digest = hashlib.sha1(repr(sorted(parts)).encode(), usedforsecurity=False)
    return digest.hexdigest()[:16]


class StateCache:
    """The shared snapshot; ``get()`` is cheap while nothing changed."""

    def __init__(
        self,
        paths: api.Paths,
        *,
        use_sacct: bool = True,
        check_interval_s: float = 0.25,
        sacct_ttl_s: float = 15.0,
        runner: slurm.CommandRunner = slurm.run_command,
    ) -> None:
        self.paths = paths
        self.use_sacct = use_sacct
        self.check_interval_s = check_interval_s
        self.sacct_ttl_s = sacct_ttl_s
        self.runner = runner
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0
        self._key = ""
        self._failed_key: str | None = None  # a build failed on these files: wait for a change
        self._compute = threading.Lock()
        self.computations = 0  # how many times the state was computed (tests, benchmark)
        self.last_build_s = 0.0

    def _current_key(self) -> str:
        key = fingerprint(self.paths)
        if self.use_sacct and shutil.which("sacct"):
            key += f"-{int(time.time() // self.sacct_ttl_s)}"
        return key

    def get(self) -> Snapshot:
        """The latest snapshot, at once. Only the very first call waits for a build;
        after that a change is picked up by a background refresh while every request
        keeps getting the previous snapshot, so no client waits on a tracker read."""
        snap = self._snapshot
        if snap is None:
            return self.refresh()
        due = max(self.check_interval_s, 2 * self.last_build_s)
        if time.monotonic() - self._checked_at >= due and self._compute.acquire(blocking=False):
            self._checked_at = time.monotonic()  # claimed: the others go on serving
            threading.Thread(
                target=self._refresh_locked, name="joulebench-serve-refresh", daemon=True
            ).start()
        return snap

    def refresh(self) -> Snapshot:
        """Look for a change now and rebuild if there is one (waits for the result)."""
        with self._compute:
            self._update()
        assert self._snapshot is not None
        return self._snapshot

    def _refresh_locked(self) -> None:
        try:
            self._update()
        except Exception:  # a failed refresh must not kill the server: next one retries
            log.exception("serve: refreshing the dashboard state failed")
        finally:
            self._compute.release()

    def _update(self) -> None:
        key = self._current_key()
        if key == self._failed_key:
            # The same files failed last time: rebuilding would fail again, so wait for a
            # change rather than spin (every request or refresh rereading everything).
            self._checked_at = time.monotonic()
            if self._snapshot is None:
                raise RuntimeError("dashboard state: the last build failed (see the log)")
            return
        if self._snapshot is None or key != self._key:
            start = time.monotonic()
            try:
                snapshot = self._build(key)
            except Exception:
                self._failed_key = key
                self._checked_at = time.monotonic()
                raise
            self._snapshot, self._failed_key = snapshot, None
            # Rebuilds at most every 2x their own cost: a 100k-key tracker changing every
            # second must not keep the server reading it all the time.
            self.last_build_s = time.monotonic() - start
            self._key = key
        self._checked_at = time.monotonic()

    def _build(self, key: str) -> Snapshot:
        self.computations += 1
        rows, problems = read_results(self.paths.results_dir)
        try:
            report = self._status_report(problems)
            # Only suites with results need it (it filters rows); each call reads the tracker.
            suites = sorted({r.get("suite") or "" for r in rows})
            tracker = ProgressTracker(self.paths.tracker_dir).read()  # once for every suite
            current = {
                s: api.current_experiment_ids(s, self.paths.tracker_dir, tracker) for s in suites
            }
        except JoulebenchError as exc:
            log.warning("serve: tracker unreadable: %s", exc)
            body = _damaged(exc, self.paths.tracker_dir, key)
            body["results_problems"] = problems
            return Snapshot(key, body, rows, {}, tracker_ok=False, problems=problems)
        body = suites_body(report, key)
        body["results_problems"] = problems
        return Snapshot(key, body, rows, current, tracker_ok=True, problems=problems)

    def _status_report(self, problems: list[str]) -> api.StatusReport:
        try:
            return api.status_report(None, self.paths, use_sacct=self.use_sacct, runner=self.runner)
        except CSV_ERRORS:
            if not problems:
                raise
        # status counts flagged results from the same CSVs: without the bad one it cannot
        # read them, so show the tracker's counts with no flagged figures rather than none.
        log.warning("serve: flagged counts left out while a results CSV is unreadable")
        no_results = dataclasses.replace(
            self.paths, results_dir=self.paths.results_dir / ".joulebench-serve-none"
        )
        return api.status_report(None, no_results, use_sacct=self.use_sacct, runner=self.runner)

    def suite_page(self, suite: str) -> dict[str, Any] | None:
        """The /api/suites/{suite} body; None when the suite is nowhere to be found."""
        snap = self.get()
        with snap.lock:
            if suite not in snap.suite_pages:
                snap.suite_pages[suite] = suite_body(suite, snap, self.paths)
            page = snap.suite_pages[suite]
        return page or None


def read_results(results_dir: Path) -> tuple[list[dict[str, str]], list[str]]:
    """Every row of every results CSV, and one line per CSV that could not be read (by
    file name only: the page must not show the server's paths)."""
    from joulebench.results import read_rows, result_csvs

    rows: list[dict[str, str]] = []
    problems: list[str] = []
    for path in result_csvs(results_dir):
        try:
            rows += read_rows(path)
        except UnicodeDecodeError:
            problems.append(f"{path.name}: not UTF-8 text; skipped (fix or move the file)")
        except CSV_ERRORS as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            problems.append(f"{path.name}: unreadable ({reason}); skipped (fix or move the file)")
    for problem in problems:
        log.warning("serve: results %s", problem)
    return rows, problems


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _damaged(error: JoulebenchError, tracker_dir: Path, version: str) -> dict[str, Any]:
    """What `joulebench tracker check` says, for the page to show instead of the table;
    `tracker repair` is suggested only for a damaged tracker (a TrackerError), not for,
    say, a --tracker-dir that is a file, which repair cannot mend."""
    from joulebench.tracker.repair import check

    message = str(error)
    fix: str | None = None
    problems = [message]
    if isinstance(error, TrackerError):
        fix = f"joulebench tracker repair --tracker-dir {tracker_dir}"
        try:
            problems = check(tracker_dir) or problems
        except JoulebenchError as exc:
            problems = [str(exc)]
    return {
        "version": version,
        "generated_at": _now_iso(),
        "suites": [],
        "failures": [],
        "sacct_problem": None,
        "tracker_error": {
            "message": message,
            "check": problems,
            "fix": fix,
        },
    }


def _failure(rec: Any) -> dict[str, Any]:
    return {
        "key": rec.key,
        "suite": rec.suite,
        "experiment_id": rec.experiment_id,
        "cause": rec.cause,
        "error": rec.error,
        "attempts": rec.attempts,
        "updated_at": rec.updated_at,
    }


def suites_body(report: api.StatusReport, version: str) -> dict[str, Any]:
    """Per suite: its cycles' counts as `status` shows them, progress, pace, ETA,
    flagged results and latest failures."""
    by_suite: dict[str, list[api.StatusRow]] = defaultdict(list)
    for row in report.rows:
        by_suite[row.suite].append(row)
    failures = [_failure(r) for r in report.failures]
    suites = []
    for name, rows in sorted(by_suite.items()):
        counts: dict[str, int] = defaultdict(int)
        for row in rows:
            for state, n in row.counts.items():
                counts[state] += n
        eta = report.eta.get(name)
        total = sum(counts.values())
        suites.append(
            {
                "name": name,
                "total": total,
                "done": counts.get("done", 0),
                "counts": dict(sorted(counts.items())),
                "flagged": sum(r.flagged for r in rows),
                "pace_per_hour": eta.per_hour if eta else None,
                "eta_s": eta.remaining_s if eta else None,
                "cycles": [
                    {
                        "cycle": r.cycle,
                        "total": r.total,
                        "done": r.counts.get("done", 0),
                        "counts": dict(sorted(r.counts.items())),
                        "flagged": r.flagged,
                    }
                    for r in rows
                ],
                "failures": [f for f in failures if f["suite"] == name],
            }
        )
    return {
        "version": version,
        "generated_at": _now_iso(),
        "suites": suites,
        "failures": failures,
        "sacct_problem": report.sacct_problem,
        "tracker_error": None,
    }


def _table_row(row: dict[str, str], status: str) -> dict[str, Any]:
    from joulebench.results.stats import to_float

    out: dict[str, Any] = {
        c: (to_float(row.get(c)) if c in NUMERIC else row.get(c) or "") for c in TABLE_COLUMNS
    }
    out["cycle"] = int(row["cycle"]) if (row.get("cycle") or "").isdigit() else None
    out["status"] = status
    return out


def suite_body(suite: str, snap: Snapshot, paths: api.Paths) -> dict[str, Any]:
    """Results table, per-config statistics and the report's plot data for one suite;
    {} when neither the tracker nor the results nor configs/suites know it."""
    from joulebench.results.plots import build_plot_data
    from joulebench.results.report import is_current, run_status, summarise, usable_variables

    status = next((s for s in snap.suites["suites"] if s["name"] == suite), None)
    rows = [r for r in snap.rows if r.get("suite") == suite]
    known_yaml = (paths.configs_dir / "suites" / f"{suite}.yaml").is_file()
    if status is None and not rows and not known_yaml:
        return {}
    current = snap.current_for(suite)
    live = [r for r in rows if is_current(r, current)]
    variables = usable_variables(api.report_variables(suite, paths), live) if live else []
    summaries = summarise(rows, suite, variables, current) if live else []
    plots = build_plot_data(summaries, suite, variables) if summaries else []
    return {
        "name": suite,
        "version": snap.version,
        "status": status,
        "tracker_error": snap.suites.get("tracker_error"),
        "results": [_table_row(r, run_status(r, summaries, current)) for r in rows],
        "variables": [v.path for v in variables],
        "summaries": [
            {
                "model": s.model,
                "config": s.config_name,
                "variables": s.variables,
                "n_used": len(s.experiment_ids),
                "flagged": s.flagged,
                "config_flags": s.config_flags,
                "metrics": {k: asdict(m) for k, m in s.metrics.items()},
            }
            for s in summaries
        ],
        "plots": [_plot(p) for p in plots],
    }


def _plot(plot: Any) -> dict[str, Any]:
    data = asdict(plot)
    data.pop("path", None)
    data.pop("svg_path", None)
    return data
