"""The README's Python API example, run as written in a fresh experiments checkout."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from joulebench import api
from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of one `## ` section of the README, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


def test_the_python_api_example_runs_as_written(checkout: Path) -> None:
    blocks = python_blocks("Python API")
    assert len(blocks) == 2 and 'api.status_rows("demo")' in blocks[0]
    names: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), names)

    assert len(names["specs"]) == 8
    summary = names["summary"]
    assert isinstance(summary, api.SubmitSummary)
    assert [o.status for o in summary.outcomes] == ["done"] * 8
    rows = names["rows"]
    assert [(r.suite, r.cycle, r.counts) for r in rows] == [
        ("demo", 1, {"done": 4}),
        ("demo", 2, {"done": 4}),
    ]
    results = names["results"]
    assert sorted(results["experiment_id"]) == [f"{i:04d}" for i in range(1, 9)]
    assert set(results["peak_memory_source"]) == {"host_rss"}
    revisions = set(results["model_revision"])
    assert len(revisions) == 1 and revisions.pop().startswith("local:")
    assert results["git_dirty"].isna().all()  # the checkout is no git tree
    assert (results["energy_j"] > 0).all()
    assert (names["clean"]["quality_flags"] == "").all()
    assert len(names["state"].keys) == 8

    shown = api.show_experiment("1")  # what pandas makes of "0001" without dtype=str
    assert shown["setup"]["provenance"]["model_revision"] == results["model_revision"].iloc[0]
