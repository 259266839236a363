"""Per-tracker settings in ``tracker.yaml`` beside the journal.

The lock mode lives with the tracker, not in a suite or on a command line, because every
process that shares a tracker must use the same lock: two modes on one tracker would
let two writers in at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from joulebench.errors import TrackerError
from joulebench.tracker.layout import SETTINGS_FILE
from joulebench.tracker.locks import LOCK_MODES

MIN_LEASE_S = 5.0


@dataclass(frozen=True)
class TrackerSettings:
    lock: str = "hard"
    lease_s: float = 30.0


def load_settings(directory: Path) -> TrackerSettings:
    path = Path(directory) / SETTINGS_FILE
    if not path.exists():
        return TrackerSettings()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TrackerError(f"{path}: not valid YAML ({first}); fix it, e.g. `lock: soft`") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise TrackerError(f"{path}: expected a mapping such as `lock: soft`")
    unknown = sorted(set(raw) - {"lock", "lease_s"})
    if unknown:
        raise TrackerError(f"{path}: unknown field {unknown[0]!r}; allowed: lock, lease_s")
    lock = raw.get("lock", "hard")
    if lock not in LOCK_MODES:
        raise TrackerError(f"{path}: field 'lock' is {lock!r}; use one of {', '.join(LOCK_MODES)}")
    lease_s = raw.get("lease_s", 30.0)
    if isinstance(lease_s, bool) or not isinstance(lease_s, int | float) or lease_s < MIN_LEASE_S:
        raise TrackerError(
            f"{path}: field 'lease_s' is {lease_s!r}; use a number of "
            f"seconds >= {MIN_LEASE_S:.0f} (default 30)"
        )
    return TrackerSettings(lock=lock, lease_s=float(lease_s))
