"""Append-only journal: a header line with its generation, then one JSON event a line.

Readers take complete lines only, so a line a crash left half-written is invisible;
the next append cuts it off before writing (see fsutil.append_line).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joulebench.errors import TrackerError
from joulebench.fsutil import append_line, atomic_write_text

JOURNAL_FORMAT = "joulebench-journal/1"


@dataclass(frozen=True)
class JournalChunk:
    generation: int
    events: list[dict[str, Any]]
    end_offset: int  # just past the last complete line read


def new_journal(path: Path, generation: int) -> None:
    header = json.dumps({"format": JOURNAL_FORMAT, "generation": generation})
    atomic_write_text(path, header + "\n")


def _parse(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        item = json.loads(raw)
    except json.JSONDecodeError:
        raise TrackerError(f"{path}: a line is not JSON; move the file aside and restore "
                           "the newest state from backups/") from None
    if not isinstance(item, dict):
        raise TrackerError(f"{path}: a line is not a JSON object; restore from backups/")
    return item


def read_journal(path: Path, offset: int = 0,
                 expect_generation: int | None = None) -> JournalChunk:
    """The header's generation plus the events after ``offset`` (0 = all of them).

    With ``expect_generation``, a journal of another generation yields no events: the
    offset belongs to a file that compaction has replaced.

    The header is read every time: generations only grow, so it tells a compacted
    (replaced) journal from the one this reader cached, where inode numbers can repeat.
    """
    with path.open("rb") as handle:
        header_raw = handle.readline()
        if not header_raw.endswith(b"\n"):
            raise TrackerError(f"{path}: missing its header line; restore from backups/")
        header = _parse(path, header_raw)
        if header.get("format") != JOURNAL_FORMAT:
            raise TrackerError(f"{path}: not a joulebench journal; move it aside")
        generation = int(header["generation"])
        if expect_generation is not None and generation != expect_generation:
            return JournalChunk(generation=generation, events=[], end_offset=0)
        start = max(offset, len(header_raw))
        handle.seek(start)
        data = handle.read()
    end = data.rfind(b"\n") + 1  # 0 when no complete line
    events = [_parse(path, raw) for raw in data[:end].splitlines() if raw.strip()]
    return JournalChunk(generation=generation, events=events,
                        end_offset=start + end)


def append_events(path: Path, events: list[dict[str, Any]]) -> int:
    """Append events with one write and one fsync; returns the bytes written.

    Registering a 100k-key suite is then one durable write, not 100k of them. A crash
    mid-write leaves a torn last line, which readers skip and the next append cuts.
    """
    text = "\n".join(json.dumps(e, separators=(",", ":")) for e in events)
    append_line(path, text)
    return len(text.encode("utf-8")) + 1
