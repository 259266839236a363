"""Slurm commands go through one injectable runner; here it plays sacct failing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from joulebench.schedulers.slurm import max_array_size, query_sacct

DATA = Path(__file__).parent / "data"


def runner_returning(outputs: dict[bool, tuple[int, str]]):
    calls: list[list[str]] = []

    def run(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        calls.append(cmd)
        code, out = outputs["--json" in cmd]
        return subprocess.CompletedProcess(cmd, code, out, "sacct: error: unknown option")

    return run, calls


def test_json_first_then_parsable2_when_json_is_unsupported() -> None:
    text = (DATA / "sacct_22.05_parsable2_duplicates.txt").read_text()
    run, calls = runner_returning({True: (1, ""), False: (0, text)})
    result = query_sacct(["3", "8_1"], "2026-11-24T00:00:00", run)
    assert result.problem is None and result.jobs["8_1"].state == "COMPLETED"
    assert ["--json" in c for c in calls] == [True, False]


def test_missing_or_slow_sacct_falls_back_with_a_reason() -> None:
    def missing(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        raise FileNotFoundError("sacct")

    def slow(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        raise subprocess.TimeoutExpired(cmd, timeout_s)

    assert query_sacct(["1"], "now", missing).problem == "sacct not found on PATH"
    assert "did not answer within" in query_sacct(["1"], "now", slow).problem
    garbage, _ = runner_returning({True: (0, "not json"), False: (0, "garbage")})
    result = query_sacct(["1"], "now", garbage)
    assert result.jobs is None and "unexpected output" in result.problem


def test_no_jobs_means_no_call() -> None:
    run, calls = runner_returning({True: (0, "{}"), False: (0, "")})
    assert query_sacct([], "now", run).jobs == {} and calls == []


def test_max_array_size_falls_back_when_scontrol_fails() -> None:
    def failing(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(cmd, 1, "", "error")

    assert max_array_size(failing) == 1001
