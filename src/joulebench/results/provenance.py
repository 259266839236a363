"""Where a result came from: versions, commit, model revision, Slurm IDs, hosts."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

from joulebench.results.model_revision import model_revision

SLURM_VARS = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NODELIST",
    "SLURM_NODEID",
    "SLURM_RESTART_COUNT",
    "SLURM_JOB_PARTITION",
    "SLURM_CLUSTER_NAME",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in (
        "joulebench",
        "torch",
        "transformers",
        "accelerate",
        "datasets",
        "codecarbon",
        "nvidia-ml-py",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    """The experiments checkout's commit, if the user runs from a git work tree."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def git_dirty() -> bool | None:
    """Whether tracked files differ from the commit; None outside a git work tree.

    Untracked files do not count: results/ and logs/ usually are, and would mark every run.
    --no-optional-locks: array tasks run this at once, and a plain status would take
    index.lock to refresh the index (one of them then fails, or a user's git command does).
    """
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return bool(done.stdout.strip()) if done.returncode == 0 else None


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def collect(model: str | None = None) -> dict[str, Any]:
    revision = model_revision(model) if model is not None else None
    return {
        "versions": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "model_revision": revision.revision if revision else None,
        "model_revision_source": revision.source if revision else None,
        "slurm": {k.lower(): os.environ[k] for k in SLURM_VARS if k in os.environ},
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
