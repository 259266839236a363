"""A full disk (a real, tiny tmpfs) mid-suite: one-line errors, nothing torn, resumes.

Needs root to mount; skips elsewhere.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from joulebench.errors import TrackerError
from joulebench.results.csv_store import append_row, read_rows
from joulebench.tracker import DONE, ProgressTracker


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_full_disk_refuses_cleanly_and_the_suite_resumes_after(small_disk: Path) -> None:
    tracker = ProgressTracker(small_disk / "t", compact_bytes=1 << 30)
    keys = [f"m::s::c{i}::1" for i in range(6)]
    tracker.register("s", [(k, "h") for k in keys])
    first = tracker.claim(keys[0], "h")
    tracker.complete(keys[0], first.experiment_id or "")
    journal_before = (small_disk / "t" / "journal.jsonl").read_bytes()
    filler = _fill(small_disk)

    failures = []
    for attempt in range(40):  # the journal's last page may take a few lines first
        try:
            tracker.claim(keys[1 + attempt % 5], "h")
        except TrackerError as exc:
            failures.append(str(exc))
            break
    assert failures, "the disk never filled up"
    message = failures[0]
    assert "No space left on device" in message and "journal.jsonl" in message
    assert "\n" not in message and "not recorded" in message
    with pytest.raises(TrackerError, match="No space left"):
        tracker.sync()  # compaction needs room for a whole new snapshot
    journal = (small_disk / "t" / "journal.jsonl").read_bytes()
    assert journal.startswith(journal_before) and journal.endswith(b"\n"), "a torn line"

    state = ProgressTracker(small_disk / "t").read()
    assert state.keys[keys[0]].state == DONE

    filler.unlink()
    tracker = ProgressTracker(small_disk / "t")
    ids = set()
    for key in keys[1:]:
        claim = tracker.claim(key, "h")
        tracker.complete(key, claim.experiment_id or "")
        ids.add(claim.experiment_id)
    tracker.sync()
    state = ProgressTracker(small_disk / "t").read()
    assert all(state.keys[k].state == DONE for k in keys)
    done_ids = [state.keys[k].experiment_id for k in keys]
    assert len(set(done_ids)) == len(keys)


def test_full_disk_during_the_csv_append_leaves_the_key_undone(small_disk: Path) -> None:
    tracker = ProgressTracker(small_disk / "t", compact_bytes=1 << 30)
    tracker.register("s", [("m::s::c0::1", "h")])
    claim = tracker.claim("m::s::c0::1", "h")
    csv_file = small_disk / "rows.csv"
    columns = ["experiment_id", "note"]
    append_row(csv_file, {"experiment_id": "0000", "note": "earlier row"}, columns)
    filler = _fill(small_disk)
    big_note = "x" * 200_000  # larger than any page the CSV still has room for

    with pytest.raises(TrackerError, match="No space left"):
        tracker.complete(
            "m::s::c0::1",
            claim.experiment_id or "",
            lambda attempt: append_row(
                csv_file, {"experiment_id": claim.experiment_id, "note": big_note}, columns
            ),
        )
    assert ProgressTracker(small_disk / "t").read().keys["m::s::c0::1"].state != DONE
    assert [r["experiment_id"] for r in read_rows(csv_file)] == ["0000"]
    filler.unlink()
    assert tracker.complete(
        "m::s::c0::1",
        claim.experiment_id or "",
        lambda attempt: append_row(
            csv_file, {"experiment_id": claim.experiment_id, "note": "ok"}, columns
        ),
    )
    assert [r["experiment_id"] for r in read_rows(csv_file)] == ["0000", "0001"]
