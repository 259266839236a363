"""Shared fixtures: an offline tiny model and an experiments checkout to run in."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub name would otherwise take ~50 s to fail
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from joulebench.runner.demo_model import build_demo_model

    return build_demo_model(tmp_path_factory.mktemp("model") / "tiny-llama")


@pytest.fixture
def checkout(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's experiments folder: the repo's configs plus models/tiny-llama; cwd is it."""
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny-llama").symlink_to(tiny_model)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def wait_for(
    predicate: Callable[[], bool],
    timeout_s: float,
    what: str,
    poll_s: float = 0.05,
    diagnose: Callable[[], str] = lambda: "",
) -> None:
    """Poll until ``predicate`` holds; fail naming ``what`` (plus ``diagnose()``) if not."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out waiting for {what}{diagnose()}")


def finished_batches(work: Path) -> int:
    """Prompt batches the workers of one experiment have checkpointed, all ranks."""
    total = 0
    for ckpt in work.glob("ckpt_rank*.json"):
        try:
            total += len(json.loads(ckpt.read_text())["batches"])
        except (OSError, ValueError, KeyError):
            pass  # not written yet, or caught mid-rename: count it next poll
    return total


def write_suite(checkout: Path, name: str, text: str) -> Path:
    path = checkout / "configs" / "suites" / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """A real Slurm, started by the project's own script when JB_SLURM=start (CI does).

    Without JB_SLURM the slurm tests skip on machines with no answering Slurm; with it
    set, a missing cluster is a failure, so CI cannot pass by skipping them.
    """
    import subprocess

    mode = os.environ.get("JB_SLURM", "")
    if mode == "start":
        subprocess.run([str(REPO / "slurm" / "dev-cluster" / "up")], check=True, timeout=900)
    answering = (
        shutil.which("sbatch") is not None
        and subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0
    )
    if not answering:
        if mode:
            pytest.fail("JB_SLURM is set but no Slurm answers (sinfo failed)")
        pytest.skip("no Slurm: run slurm/dev-cluster/up as root, then JB_SLURM=1 make test")
