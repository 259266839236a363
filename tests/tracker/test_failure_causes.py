"""One list of failure causes: the README's table, the tracker, the CLI and Slurm's map."""

from __future__ import annotations

import re
from pathlib import Path

import click

from joulebench.cli.main import cli
from joulebench.schedulers.sacct import STATE_MAP
from joulebench.tracker import FAILURE_CAUSES

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_table_causes() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Failure causes", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)


def test_the_readme_table_is_the_list_the_tracker_uses() -> None:
    assert readme_table_causes() == list(FAILURE_CAUSES)


def test_resume_failed_offers_exactly_the_table_causes() -> None:
    command = cli.commands["resume-failed"]
    option = next(p for p in command.params if p.name == "causes")
    assert isinstance(option.type, click.Choice)
    assert list(option.type.choices) == list(FAILURE_CAUSES)


def test_the_readme_usage_line_lists_the_same_causes() -> None:
    usage = re.search(
        r"resume-failed SUITE \[--cause ([a-z_|]+)\]", README.read_text(encoding="utf-8")
    )
    assert usage is not None
    assert usage[1].split("|") == list(FAILURE_CAUSES)


def test_every_cause_slurm_can_name_is_in_the_table() -> None:
    slurm_causes = {cause for _, cause in STATE_MAP.values() if cause is not None}
    assert slurm_causes <= set(FAILURE_CAUSES)
    assert slurm_causes  # the map names causes at all
