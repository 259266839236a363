"""The HTML report opens in a real browser (Debian's headless Chromium) and renders."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from joulebench.results.report import write_report
from tests.results.test_report import row


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("JB_REQUIRE_CHROMIUM"):
        pytest.fail("JB_REQUIRE_CHROMIUM is set but chromium is not installed")
    pytest.skip("chromium not installed (apt-get install chromium)")


def test_report_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = chromium()
    rows = [
        row(
            f"{i:04d}",
            "m",
            f"batch_size_{b}",
            c,
            0.01 * b + 0.001 * c,
            throughput=100.0 * b,
            batch_size=str(b),
        )
        for i, (b, c) in enumerate(((b, c) for b in (1, 8, 32) for c in (1, 2, 3)), 1)
    ]
    files = write_report(rows, "s", tmp_path / "report", results_dir=tmp_path / "results")
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,1600",
            f"--screenshot={shot}",
            files.html.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-500:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000  # a page, not a blank
