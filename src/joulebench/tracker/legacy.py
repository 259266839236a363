"""The original system's three files, read on first use and kept in sync as a view.

Formats (seed 000): ``experiment_id.txt`` holds the last issued ID as one integer,
``cycle_id.txt`` the current cycle, ``configs_run_progress.json`` maps
``model::suite::config::cycle`` to the experiment ID when done or null.
"""

from __future__ import annotations

import json
from pathlib import Path

from joulebench.errors import TrackerError
from joulebench.fsutil import atomic_write_json, atomic_write_text
from joulebench.tracker.layout import CYCLE_FILE, ID_FILE, PROGRESS_FILE
from joulebench.tracker.state import DONE, KeyRecord, TrackerState


def _read_int(path: Path) -> int | None:
    if not path.exists():
        return None
    text = path.read_text(encoding="utf-8").strip()
    try:
        return int(text) if text else 0
    except ValueError:
        raise TrackerError(
            f"{path}: expected one integer, found {text[:40]!r}; fix the file "
            "or run `joulebench tracker repair`"
        ) from None


def _suite_of(key: str) -> str | None:
    parts = key.rsplit("::", 3)
    return parts[1] if len(parts) == 4 else None


def has_legacy_files(directory: Path) -> bool:
    return any((directory / name).exists() for name in (ID_FILE, CYCLE_FILE, PROGRESS_FILE))


def load_legacy(directory: Path) -> TrackerState:
    """Build a state from the original files; done keys keep their IDs."""
    state = TrackerState()
    state.last_id = _read_int(directory / ID_FILE) or 0
    state.current_cycle = _read_int(directory / CYCLE_FILE) or 0
    progress_path = directory / PROGRESS_FILE
    if progress_path.exists():
        try:
            progress = json.loads(progress_path.read_text(encoding="utf-8") or "{}")
        except json.JSONDecodeError as exc:
            raise TrackerError(
                f"{progress_path}: not valid JSON ({exc.msg} at line {exc.lineno});"
                " run `joulebench tracker repair`"
            ) from None
        if not isinstance(progress, dict):
            raise TrackerError(f"{progress_path}: expected a JSON object of key -> ID")
        for key, value in progress.items():
            rec = KeyRecord(key=key, suite=_suite_of(key), legacy=True)
            if value is not None:
                rec.state, rec.experiment_id = DONE, str(value)
                if str(value).isdigit():
                    state.last_id = max(state.last_id, int(value))
            state.keys[key] = rec
    return state


def write_legacy(directory: Path, state: TrackerState) -> None:
    """Refresh the three files atomically, each one valid on its own at every instant."""
    atomic_write_json(directory / PROGRESS_FILE, state.legacy_progress(), indent=2)
    atomic_write_text(directory / ID_FILE, f"{state.last_id}\n")
    atomic_write_text(directory / CYCLE_FILE, f"{state.current_cycle}\n")
