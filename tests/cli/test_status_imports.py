"""`status` and `tracker check` stay on the light path: no torch, whatever the tracker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from joulebench.tracker import ProgressTracker


@pytest.mark.parametrize("args", [["status", "--no-sacct"], ["tracker", "check"]])
def test_monitoring_commands_import_no_torch(tmp_path: Path, args: list[str]) -> None:
    tracker = ProgressTracker(tmp_path / "persistent_progress_trackers")
    tracker.register("s", [(f"m::s::c{i}::1", "h") for i in range(20)])
    claim = tracker.claim("m::s::c0::1", "h")
    tracker.complete("m::s::c0::1", claim.experiment_id or "")
    probe = (
        "import sys\nfrom joulebench.cli.main import cli\n"
        f"try:\n    cli({args!r})\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120
    ).stdout
    assert out.strip().splitlines()[-1] in ("NO-TORCH 0", "NO-TORCH None")
