"""The README as a user reads it: its workflow and Python API example run as written, its
refusal example is the real refusal, and its configs reference matches the code and
configs/base.yaml."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from joulebench import api
from joulebench.config.models import ExperimentConfig

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
PROGRAMS = {"submit-suite", "resume-failed", "joulebench"}


def fenced_after(marker: str) -> list[str]:
    """The fenced blocks that follow ``<!-- readme-test: marker`` up to the next heading."""
    start = README.index(f"<!-- readme-test: {marker}")
    ends = (
        README.find("\n## ", start),
        README.find("\n### ", start),
        README.find("<!-- readme-test:", start + 1),
    )
    end = min(i for i in ends if i > 0)
    section = README[start:end]
    return re.findall(r"```[a-z]*\n(.*?)```", section, re.DOTALL)


def run(line: str) -> subprocess.CompletedProcess[str]:
    """One README command line (comment stripped), run through this interpreter."""
    words = shlex.split(line.split("  #", 1)[0])
    program, args = words[0], words[1:]
    assert program in PROGRAMS, line
    argv = [
        sys.executable,
        "-m",
        "joulebench",
        *([] if program == "joulebench" else [program]),
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


@pytest.mark.e2e
def test_the_check_first_workflow_runs_as_written(checkout: Path) -> None:
    (block,) = fenced_after("workflow")
    lines = [line for line in block.splitlines() if line.strip()]
    assert lines[0].startswith("submit-suite demo") and "--dry-run" in lines[0]
    for line in lines:
        done = run(line)
        assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
        if "--dry-run" in line and line.startswith("submit-suite"):
            assert "every check passed" in done.stdout
            assert not (checkout / "persistent_progress_trackers").exists()
    assert "nothing to resume" not in done.stdout  # the last line is a dry run: it lists
    assert "0 keys would be resumed" in done.stdout


def test_the_refusal_example_is_the_real_refusal_for_run_and_dry_run(checkout: Path) -> None:
    suite_yaml, session = fenced_after("refusal")
    path_line, *_ = suite_yaml.splitlines()
    target = checkout / path_line.removeprefix("# ").strip()
    target.write_text(suite_yaml)
    command, expected = (line for line in session.splitlines() if line.strip())
    for line in (command.removeprefix("$ "), command.removeprefix("$ ").replace(" --dry-run", "")):
        done = run(line)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.strip() == expected, line
    assert not (checkout / "persistent_progress_trackers").exists()
    assert not (checkout / "results").exists()


def _reference_rows() -> list[list[str]]:
    start = README.index("### Configs reference")
    table = README[start : README.index("\n## ", start)]
    return [
        [cell.strip() for cell in row.strip("|").split(" | ")]
        for row in table.splitlines()
        if row.startswith("| `")
    ]


def _cell_values(cell: str, count: int) -> list[str]:
    parts = cell.split(" / ") if " / " in cell else cell.split(", ")
    assert len(parts) == count, cell
    return [p.strip() for p in parts]


def _parse(text: str) -> Any:
    """A table cell's value: `quoted` is text (or `[]`), bare words are YAML-ish."""
    if text.startswith("`"):
        inner = text.strip("`")
        return () if inner == "[]" else inner
    if text in ("none", "(required)"):
        return None
    if text in ("true", "false"):
        return text == "true"
    if text == "[]":
        return ()
    try:
        return float(text)
    except ValueError:
        return text


def _native(value: Any) -> Any:
    """A YAML value as _parse reads its table cell."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def _dotted(obj: Any, name: str) -> Any:
    for part in name.split("."):
        if obj == "—":  # a block base.yaml does not set (scenario.*)
            return obj
        obj = obj.get(part, "—") if isinstance(obj, dict) else getattr(obj, part)
    return obj


def test_the_configs_reference_matches_the_code_and_base_yaml() -> None:
    defaults = ExperimentConfig(model="x")
    base = yaml.safe_load((REPO / "configs" / "base.yaml").read_text())
    seen = set()
    for cells in _reference_rows():
        fields = re.findall(r"`([a-z_.]+)`", cells[0])
        for name, code, suite in zip(
            fields,
            _cell_values(cells[1], len(fields)),
            _cell_values(cells[2], len(fields)),
            strict=True,
        ):
            seen.add(name.split(".")[0])
            expected = None if name == "model" else _dotted(defaults, name)
            assert _parse(code) == (
                float(expected)
                if isinstance(expected, (int, float)) and not isinstance(expected, bool)
                else expected
            ), name
            in_base = _dotted(base, name)
            if suite == "—":
                assert in_base == "—", f"{name} is set in base.yaml: {in_base!r}"
            else:
                assert _parse(suite) == _native(in_base), name
    undocumented = set(ExperimentConfig.model_fields) - seen
    assert not undocumented, f"fields missing from the README's configs reference: {undocumented}"


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of one `## ` section of the README, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


@pytest.mark.e2e
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
