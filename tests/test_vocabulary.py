"""Each word of the vocabulary is defined once: states and causes with the tracker, status
labels with the monitor, executors with the schedulers, meters with measure. These tests
tie every copy a user meets (CLI choices, the sacct map, the status table, the README) to
that one definition. The failure causes have their own file: tests/tracker/test_failure_causes.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from joulebench.cli.main import cli
from joulebench.schedulers import monitor
from joulebench.schedulers.executors import EXECUTOR_CHOICES, EXECUTORS
from joulebench.schedulers.sacct import STATE_MAP
from joulebench.tracker.state import FAILURE_CAUSES, STATES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def choices(command: str, param: str) -> list[str]:
    option = next(p for p in cli.commands[command].params if p.name == param)
    assert isinstance(option.type, click.Choice)
    return list(option.type.choices)


def test_the_executor_flag_offers_exactly_the_executors() -> None:
    assert set(EXECUTORS) < set(EXECUTOR_CHOICES) == {"auto", *EXECUTORS}
    for command in ("submit-suite", "resume-failed"):
        assert choices(command, "executor") == list(EXECUTOR_CHOICES)
    assert "[--executor auto|local|slurm]" in README
    assert "|".join(EXECUTOR_CHOICES) == "auto|local|slurm"


def test_the_sacct_map_speaks_the_tracker_vocabulary() -> None:
    for category, cause in STATE_MAP.values():
        assert category in (*STATES, "active", "completed"), category
        assert cause is None or cause in FAILURE_CAUSES


def test_the_status_table_shows_the_monitor_labels_in_order() -> None:
    from joulebench.cli.progress import STATE_ORDER

    assert STATE_ORDER == list(monitor.LABELS)
    assert set(monitor.LIVE_LABELS) <= set(monitor.LABELS)
    assert monitor.failed_label("oom") == "failed:oom" and monitor.is_failed("failed:oom")
    assert monitor.resumable(monitor.failed_label("node_fail")) == "node_fail"


def test_the_readme_status_section_names_every_label() -> None:
    section = README.split("- `status` prints", 1)[1].split("\n- `", 1)[0]
    named = set(re.findall(r"`([a-z]+)`", section))
    assert set(monitor.LABELS) <= named, set(monitor.LABELS) - named
