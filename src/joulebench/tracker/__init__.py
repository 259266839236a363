"""Progress tracker: lock, claim IDs, key states, journal, legacy files, backups."""

from joulebench.tracker.state import (
    DONE,
    FAILED,
    FAILURE_CAUSES,
    PENDING,
    RUNNING,
    KeyRecord,
    TrackerState,
    format_id,
)
from joulebench.tracker.store import DEFAULT_DIR, Claim, ProgressTracker, pid_alive

__all__ = [
    "DEFAULT_DIR",
    "DONE",
    "FAILED",
    "FAILURE_CAUSES",
    "PENDING",
    "RUNNING",
    "Claim",
    "KeyRecord",
    "ProgressTracker",
    "TrackerState",
    "format_id",
    "pid_alive",
]
