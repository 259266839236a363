"""The folders a command reads and writes (one :class:`Paths`), and the checks that they
can be used.

The checks run before anything is written: a --results-dir that is a file, or sits on a
read-only mount, would otherwise fail only after the tracker had registered the suite.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from joulebench.errors import ConfigError


def _nearest_existing(path: Path) -> Path:
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def check_output_dir(path: Path, flag: str) -> None:
    """Raise ConfigError unless ``path`` is a folder, or can be made one, that we may write.

    Root passes the permission bits, but not a read-only mount (access() says EROFS).
    """
    existing = _nearest_existing(path)
    if existing == path.absolute() and not existing.is_dir():
        raise ConfigError(
            f"{flag} {path}: is a file, not a folder; pass a folder (it is created if missing)"
        )
    if not existing.is_dir():
        raise ConfigError(
            f"{flag} {path}: {existing} is a file, so no folder can be made "
            "under it; pass another folder"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{flag} {path}: {existing} is not writable (permissions or a "
            "read-only file system); fix that or pass another folder"
        )


def check_readable_dir(path: Path, flag: str) -> None:
    """A folder a command only reads: it may be missing, but must not be a file."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: is a file, not a folder; pass the folder")


def check_paths(configs_dir: Path, outputs: dict[str, Path], *, write: bool) -> None:
    """Every folder a command will touch (flag -> path), checked before it touches any."""
    check_readable_dir(configs_dir, "--configs-dir")
    for flag, path in outputs.items():
        if write:
            check_output_dir(path, flag)
        else:
            check_readable_dir(path, flag)


@dataclass(frozen=True)
class Paths:
    """Where suites are read from and progress, results and logs go; the defaults are
    relative to the folder the user stands in (a checkout of their experiments)."""

    configs_dir: Path = Path("configs")
    tracker_dir: Path = Path("persistent_progress_trackers")
    results_dir: Path = Path("results")
    logs_dir: Path = Path("logs")

    def check(self, *, write: bool, logs: bool = False) -> None:
        """Refuse, before anything is written, folders that are files or read-only."""
        outputs = {"--tracker-dir": self.tracker_dir, "--results-dir": self.results_dir}
        if logs:
            outputs["logs folder"] = self.logs_dir
        check_paths(self.configs_dir, outputs, write=write)
