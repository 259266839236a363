"""Check a tracker folder and rebuild its state from whatever survived.

Normal loading refuses a damaged tracker instead of guessing, so no progress is ever
reset silently. ``repair`` is the explicit step: it copies the damaged files into
``damaged/<stamp>/``, then rebuilds from, in order, the newest readable backup, the
seed's files written at the last compaction, and every readable journal line, and it
never lets the ID counter fall below any ID the tracker, its backups or the results
folder have seen, so no experiment ID can be issued twice.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from joulebench.errors import TrackerError
from joulebench.fsutil import atomic_write_json, read_json
from joulebench.results.layout import experiment_ids_on_disk
from joulebench.tracker import legacy
from joulebench.tracker.journal import JOURNAL_FORMAT, new_journal
from joulebench.tracker.layout import (
    BACKUPS_DIR,
    ID_FILE,
    JOURNAL,
    LEGACY_FILES,
    PROGRESS_BACKUP_GLOB,
    PROGRESS_FILE,
    SNAPSHOT,
    STATE_BACKUP_GLOB,
)
from joulebench.tracker.locks import LockTimeout, make_lock
from joulebench.tracker.settings import load_settings
from joulebench.tracker.state import DONE, KeyRecord, TrackerState, apply_event

_ID_IN_LINE = re.compile(rb'"experiment_id"\s*:\s*"(\d+)"')


@dataclass
class RepairReport:
    sources: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped_lines: int = 0
    moved_to: Path | None = None
    keys: int = 0
    done: int = 0
    last_id: int = 0


def check(directory: Path) -> list[str]:
    """Problems a load would hit or hide, one line each; [] when healthy."""
    from joulebench.tracker.store import ProgressTracker

    if not Path(directory).is_dir():
        raise TrackerError(f"{directory}: no tracker folder here; check --tracker-dir")
    problems = []
    try:
        ProgressTracker(directory).read()
    except TrackerError as exc:
        problems.append(str(exc))
    for name in LEGACY_FILES:
        path = directory / name
        if not path.exists():
            continue
        try:
            _read_legacy_file(path)
        except (ValueError, UnicodeDecodeError):
            problems.append(
                f"{path}: damaged (the seed's view; `joulebench tracker repair` "
                "rewrites it from the journal)"
            )
    return problems


def _read_legacy_file(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        value = json.loads(text or "{}")
        if not isinstance(value, dict):
            raise ValueError("not an object")
        return value
    return int(text.strip() or 0)


def _try(loader: Any, path: Path, report: RepairReport) -> Any:
    if not path.exists():
        return None
    try:
        return loader(path)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, OSError) as exc:
        report.problems.append(f"{path.name}: unreadable ({type(exc).__name__})")
        return None


def _newest_backup(directory: Path, report: RepairReport) -> TrackerState | None:
    for path in sorted((directory / BACKUPS_DIR).glob(STATE_BACKUP_GLOB), reverse=True):
        state = _try(lambda p: TrackerState.from_dict(read_json(p)), path, report)
        if state is not None:
            report.sources.append(f"backup {path.name} (generation {state.generation})")
            return state
    return None


def _overlay_legacy(directory: Path, state: TrackerState, report: RepairReport) -> None:
    progress = _try(_read_legacy_file, directory / PROGRESS_FILE, report)
    if progress is None:
        backups = sorted((directory / BACKUPS_DIR).glob(PROGRESS_BACKUP_GLOB), reverse=True)
        for path in backups:
            progress = _try(_read_legacy_file, path, report)
            if progress is not None:
                report.sources.append(f"seed backup {path.name}")
                break
    else:
        report.sources.append(PROGRESS_FILE)
    for key, value in (progress or {}).items():
        rec = state.keys.get(key) or KeyRecord(key=key, suite=legacy._suite_of(key), legacy=True)
        if value is not None and rec.state != DONE:
            rec.state, rec.experiment_id = DONE, str(value)
        state.keys[key] = rec
        if value is not None and str(value).isdigit():
            state.last_id = max(state.last_id, int(value))
    counter = _try(_read_legacy_file, directory / ID_FILE, report)
    if counter is not None:
        state.last_id = max(state.last_id, counter)


def _journal_generation(path: Path) -> int | None:
    try:
        with path.open("rb") as handle:
            header = json.loads(handle.readline())
        return int(header["generation"]) if header.get("format") == JOURNAL_FORMAT else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _replay_journal(path: Path, state: TrackerState, report: RepairReport) -> None:
    """Apply every readable line; damaged lines are skipped but their IDs still count."""
    applied = 0
    for number, raw in enumerate(path.read_bytes().split(b"\n")):
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except ValueError:
            report.skipped_lines += 1
            found = [int(n) for n in _ID_IN_LINE.findall(raw)]
            # A line holds at most one claim, and a claim takes the next ID, so a line
            # whose ID is unreadable may have used last_id + 1: never issue that again.
            state.last_id = max(state.last_id, *found) if found else state.last_id + 1
            continue
        if number == 0 and event.get("format") == JOURNAL_FORMAT:
            continue
        apply_event(state, event)
        applied += 1
    report.sources.append(f"{applied} journal events")
    if report.skipped_lines:
        report.problems.append(f"{JOURNAL}: {report.skipped_lines} damaged lines skipped")


def _max_result_id(results_dir: Path | None) -> int:
    if results_dir is None:
        return 0
    return max(experiment_ids_on_disk(results_dir), default=0)


def rebuild(directory: Path, results_dir: Path | None, report: RepairReport) -> TrackerState:
    """The best state the folder's surviving files allow (pure reading, no writes)."""
    journal = directory / JOURNAL
    journal_gen = _journal_generation(journal) if journal.exists() else None
    snapshot = _try(lambda p: TrackerState.from_dict(read_json(p)), directory / SNAPSHOT, report)
    if snapshot is not None and (journal_gen is None or snapshot.generation >= journal_gen):
        report.sources.append(f"{SNAPSHOT} (generation {snapshot.generation})")
        state = snapshot
        replay = journal.exists() and journal_gen in (None, snapshot.generation)
    else:
        # The snapshot is gone or older than the journal: start from the newest copy, add
        # the done keys and counter the last compaction wrote, then the journal on top.
        bases = [s for s in (snapshot, _newest_backup(directory, report)) if s is not None]
        state = max(bases, key=lambda s: s.generation, default=TrackerState())
        _overlay_legacy(directory, state, report)
        state.generation = max(state.generation, journal_gen or 0)
        replay = journal.exists()
    if replay:
        _replay_journal(journal, state, report)
    elif journal.exists():
        report.sources.append(f"{JOURNAL} ignored (already folded into the snapshot)")
    from_results = _max_result_id(results_dir)
    if from_results > state.last_id:
        report.sources.append(f"results folder IDs up to {from_results}")
        state.last_id = from_results
    return state


def _keep_damaged(directory: Path) -> Path:
    target = directory / "damaged" / datetime.now().strftime("%Y%m%d_%H%M%S_%f")
    target.mkdir(parents=True)
    for name in (SNAPSHOT, JOURNAL, *LEGACY_FILES):
        if (directory / name).exists():
            shutil.copy2(directory / name, target / name)
    return target


def repair(
    directory: Path, results_dir: Path | None = None, lock_timeout_s: float = 60.0
) -> RepairReport:
    """Rebuild the state under the tracker lock and write it back atomically."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TrackerError(f"{directory}: no tracker folder here; check --tracker-dir")
    settings = load_settings(directory)
    lock = make_lock(directory, settings.lock, settings.lease_s)
    try:
        lock.acquire(lock_timeout_s)
    except LockTimeout:
        raise TrackerError(
            f"{lock.path}: another joulebench process holds the tracker "
            "lock; stop it before repairing"
        ) from None
    try:
        report = RepairReport()
        state = rebuild(directory, results_dir, report)
        report.moved_to = _keep_damaged(directory)
        # Snapshot first with a newer generation: a crash before the new journal leaves
        # an older journal, which loading ignores as already folded in.
        state.generation += 1
        atomic_write_json(directory / SNAPSHOT, state.to_dict(), indent=None)
        new_journal(directory / JOURNAL, state.generation)
        legacy.write_legacy(directory, state)
        report.keys = len(state.keys)
        report.done = sum(r.state == DONE for r in state.keys.values())
        report.last_id = state.last_id
        return report
    finally:
        lock.release()
        lock.close()
