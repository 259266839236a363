"""sacct parsers on output captured from the dev cluster (Slurm 22.05.8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulebench.errors import SchedulerError
from joulebench.schedulers.sacct import parse_json, parse_parsable2, sacct_command

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "parse, name",
    [
        (parse_json, "sacct_22.05_json.txt"),
        (parse_parsable2, "sacct_22.05_parsable2_duplicates.txt"),
    ],
)
def test_both_real_formats_agree(parse, name: str) -> None:
    jobs = parse((DATA / name).read_text())
    # Job 3 was PREEMPTED and job 2 REQUEUED, then both ran again to COMPLETED.
    assert jobs["3"].state == "COMPLETED" and jobs["3"].history == ["PREEMPTED"]
    assert jobs["2"].state == "COMPLETED" and jobs["2"].history == ["REQUEUED"]
    assert jobs["5"].state == "CANCELLED" and jobs["5"].cause == "cancelled"
    assert [jobs[f"8_{i}"].state for i in range(4)] == ["COMPLETED"] * 4
    assert "9" not in jobs  # array tasks are keyed by ARRAY_TASK, not their raw ID


def test_without_duplicates_only_the_newest_record_shows() -> None:
    jobs = parse_parsable2((DATA / "sacct_22.05_parsable2.txt").read_text())
    assert jobs["3"].state == "COMPLETED" and jobs["3"].history == []


def test_states_that_are_never_done() -> None:
    text = (
        "JobID|JobIDRaw|JobName|State|ExitCode|Start|End|NodeList|Reason\n"
        "20_0|21|t|PREEMPTED|0:0|x|x|vm|None\n20_1|22|t|REQUEUED|0:0|x|x|vm|None\n"
        "20_2|23|t|NODE_FAIL|0:0|x|x|vm|None\n20_3|24|t|TIMEOUT|0:0|x|x|vm|None\n"
        "20_4|25|t|CANCELLED by 0|0:15|x|x|vm|None\n20_5|26|t|OUT_OF_MEMORY|0:125|x|x|vm|\n"
        "20_[6-8%2]|20|t|PENDING|0:0|x|x|None assigned|JobArrayTaskLimit\n"
    )
    jobs = parse_parsable2(text)
    assert {j: jobs[j].category for j in jobs} == {
        "20_0": "failed",
        "20_1": "active",
        "20_2": "failed",
        "20_3": "failed",
        "20_4": "failed",
        "20_5": "failed",
        "20_6": "active",
        "20_7": "active",
        "20_8": "active",
    }
    assert [jobs[f"20_{i}"].cause for i in (0, 2, 3, 4, 5)] == [
        "preempted",
        "node_fail",
        "timeout",
        "cancelled",
        "oom",
    ]


def test_newer_slurm_json_state_lists_and_task_objects() -> None:
    text = (
        '{"jobs": [{"job_id": 31, "array": {"job_id": 30, "task_id": {"set": true, '
        '"number": 1}}, "state": {"current": ["PREEMPTED"]}, "time": {"submission": 5}}]}'
    )
    assert parse_json(text)["30_1"].state == "PREEMPTED"


@pytest.mark.parametrize("text", ["", "garbage", "{}", '{"jobs": 3}'])
def test_garbage_is_a_scheduler_error(text: str) -> None:
    with pytest.raises(SchedulerError):
        parse_json(text)
    with pytest.raises(SchedulerError):
        parse_parsable2(text)


def test_one_batched_command_for_all_array_tasks() -> None:
    cmd = sacct_command(["12_0", "12_1", "9_3", "40"], "2026-11-24T01:00:00", use_json=True)
    assert cmd == ["sacct", "--starttime", "2026-11-24T01:00:00", "--jobs", "9,12,40", "--json"]
    assert "-D" in sacct_command(["12_0"], "now", use_json=False)
