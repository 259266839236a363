"""Every name in a tracker folder (``persistent_progress_trackers/``), defined once.

The seed's three files keep their documented names (the compatibility contract); the
rest are joulebench's own. Modules that read or write the folder import these.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_DIR = Path("persistent_progress_trackers")

# The original system's files, in their documented formats.
ID_FILE = "experiment_id.txt"
CYCLE_FILE = "cycle_id.txt"
PROGRESS_FILE = "configs_run_progress.json"
LEGACY_FILES = (PROGRESS_FILE, ID_FILE, CYCLE_FILE)

# joulebench's state: the folded snapshot plus the journal of events since it.
SNAPSHOT = "tracker_state.json"
JOURNAL = "journal.jsonl"
SETTINGS_FILE = "tracker.yaml"
HARD_LOCK_FILE = ".tracker.lock"
SOFT_LOCK_FILE = ".tracker.softlock"

# Folders beside them.
BACKUPS_DIR = "backups"  # pairs written before a run changes the tracker
ARCHIVE_DIR = "archive"  # suites put aside by --fresh
HISTORY_DIR = "history"  # every folded journal, by month

PROGRESS_BACKUP_GLOB = "progress_backup_*.json"
STATE_BACKUP_GLOB = "tracker_state_backup_*.json"


def backup_names(stamp: str) -> tuple[str, str]:
    """The pair of backup files written at ``stamp``: the legacy view and the snapshot."""
    return f"progress_backup_{stamp}.json", f"tracker_state_backup_{stamp}.json"


def state_backup_of(progress_backup: str) -> str:
    """The snapshot backup written with a legacy-view backup."""
    return progress_backup.replace("progress_", "tracker_state_", 1)


def archive_name(suite: str, stamp: str) -> str:
    """archive/{suite}_{YYYYmmdd_HHMMSS_ffffff}.json: what --fresh put aside."""
    return f"{suite}_{stamp}.json"


def archives_of(directory: Path, suite: str) -> list[Path]:
    """This suite's archives only: 'demo' must not match the archives of 'demo_2'."""
    stamp = "[0-9]" * 8 + "_" + "[0-9]" * 6 + "_" + "[0-9]" * 6
    return sorted((directory / ARCHIVE_DIR).glob(f"{suite}_{stamp}.json"))
