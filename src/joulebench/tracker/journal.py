"""Append-only journal: a header line with its generation, then one JSON event a line.

Readers take complete lines only, so a line a crash left half-written is invisible;
the next append cuts it off before writing (see ``append_at``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from joulebench.errors import TrackerError
from joulebench.fsutil import append_at_end, atomic_write_text, fsync_dir

JOURNAL_FORMAT = "joulebench-journal/1"


@dataclass(frozen=True)
class JournalChunk:
    generation: int
    events: list[dict[str, Any]]
    end_offset: int  # just past the last complete line read
    header_end: int = 0  # where the events start


def new_journal(path: Path, generation: int) -> None:
    header = json.dumps({"format": JOURNAL_FORMAT, "generation": generation})
    atomic_write_text(path, header + "\n")


def _parse(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        item = json.loads(raw)
    except json.JSONDecodeError:
        raise TrackerError(
            f"{path}: a line is not JSON (damaged file); run `joulebench tracker repair`"
        ) from None
    if not isinstance(item, dict):
        raise TrackerError(
            f"{path}: a line is not a JSON object (damaged file); run `joulebench tracker repair`"
        )
    return item


def parse_events(path: Path, data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The events in the complete lines of ``data`` and how many bytes they span."""
    end = data.rfind(b"\n") + 1  # 0 when no complete line
    return [_parse(path, raw) for raw in data[:end].splitlines() if raw.strip()], end


def read_journal(
    path: Path,
    offset: int = 0,
    expect_generation: int | None = None,
    handle: BinaryIO | None = None,
) -> JournalChunk:
    """The header's generation plus the events after ``offset`` (0 = all of them).

    With ``expect_generation``, a journal of another generation yields no events: the
    offset belongs to a file that compaction has replaced. ``handle`` reads through a
    descriptor the caller keeps open (and leaves open).
    """
    own = handle is None
    handle = path.open("rb") if handle is None else handle
    try:
        handle.seek(0)
        header_raw = handle.readline()
        if not header_raw.endswith(b"\n"):
            raise TrackerError(f"{path}: missing its header line; run `joulebench tracker repair`")
        header = _parse(path, header_raw)
        if header.get("format") != JOURNAL_FORMAT:
            raise TrackerError(f"{path}: not a joulebench journal; move it aside")
        generation = int(header["generation"])
        if expect_generation is not None and generation != expect_generation:
            return JournalChunk(
                generation=generation, events=[], end_offset=0, header_end=len(header_raw)
            )
        start = max(offset, len(header_raw))
        handle.seek(start)
        data = handle.read()
    finally:
        if own:
            handle.close()
    events, used = parse_events(path, data)
    return JournalChunk(
        generation=generation, events=events, end_offset=start + used, header_end=len(header_raw)
    )


def encode_events(events: list[dict[str, Any]]) -> bytes:
    """Events as one block of lines, appended with one write and one fsync.

    Registering a 100k-key suite is then one durable write, not 100k of them. A crash
    mid-write leaves a torn last line, which readers skip and the next append cuts.
    """
    text = "\n".join(json.dumps(e, separators=(",", ":")) for e in events)
    return (text + "\n").encode("utf-8")


def append_at(fd: int, offset: int, data: bytes, path: Path, lock_fix: str) -> None:
    """Append whole lines at ``offset`` (where the caller's last read ended) and fsync.

    A tail without a newline is a line a dead writer left half done: cut it so ours
    starts on its own line. Whole lines the caller has not read can only come from a
    writer that got past the lock: refuse rather than cut or interleave them. A failed
    write is cut back, so the file still ends on a whole record.
    """
    size = os.fstat(fd).st_size
    if size != offset:
        tail = os.pread(fd, size - offset, offset) if size > offset else b""
        if size < offset or b"\n" in tail:
            raise TrackerError(
                f"{path}: changed while this process held the tracker lock, "
                f"so the lock does not work here: {lock_fix} (nothing was "
                "written)"
            )
        os.ftruncate(fd, offset)
    append_at_end(fd, data, offset, path)


def archive_journal(journal: Path, history: Path, month: str) -> Path | None:
    """Append the whole journal, header and events, to ``history/journal-<month>.jsonl``.

    Compaction calls this before it replaces the journal, so every claim, failure and
    completion stays on record after the fold (the snapshot keeps only each key's last
    state). O(events since the last fold): amortised O(1) per event. A crash between this
    append and the new journal archives that generation again at the next fold; the copy
    under the later header line of one generation is the complete one.
    """
    data = journal.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if complete.count(b"\n") <= 1:  # the header alone: nothing happened
        return None
    history.mkdir(exist_ok=True)
    target = history / f"journal-{month}.jsonl"
    created = not target.exists()
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        append_at_end(fd, complete, os.fstat(fd).st_size, target)
    finally:
        os.close(fd)
    if created:  # a new month's file: its directory entry must survive a crash too
        fsync_dir(history)
        fsync_dir(history.parent)
    return target
