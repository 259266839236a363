"""The library logs; the CLI shows a warning as one `warning: ...` line on stderr."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys

import pytest

from joulebench import api
from joulebench.cli.log import configure_logging
from tests.test_api_report import paths, run_fake  # noqa: F401  (paths is a fixture)


def test_a_library_warning_is_one_line_and_info_stays_silent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()
    configure_logging()  # a second call adds no second line
    logger = logging.getLogger("joulebench.results.example")
    logger.info("not shown")
    try:
        raise ValueError("why")
    except ValueError:
        logger.warning("%s: odd\nsecond line", "file.csv", exc_info=True)
    assert capsys.readouterr().err == "warning: file.csv: odd\n"


def test_report_says_on_stderr_where_the_varied_fields_came_from(paths: api.Paths) -> None:  # noqa: F811
    run_fake(paths, api.expand_suite("demo", cycles=1, paths=paths), {})
    shutil.rmtree(paths.configs_dir / "suites")  # the YAML is gone: fall back to the CSV
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "joulebench",
            "report",
            "demo",
            "--out",
            str(paths.logs_dir),
            "--configs-dir",
            str(paths.configs_dir),
            "--tracker-dir",
            str(paths.tracker_dir),
            "--results-dir",
            str(paths.results_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, done.stderr
    assert warnings[0].startswith("warning: report demo: varied fields taken from the results CSV")
