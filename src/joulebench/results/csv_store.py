"""The per-task CSV: one flat row per experiment, appended under the tracker lock."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

from joulebench.fsutil import append_line, drop_partial_last_line


def _read_header(path: Path) -> list[str] | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), None)


def _format(values: list[Any]) -> str:
    buffer = io.StringIO()
    # One physical line per row keeps the crash-repair of a torn last line simple.
    clean = ["" if v is None else str(v).replace("\r", " ").replace("\n", " ") for v in values]
    csv.writer(buffer, lineterminator="").writerow(clean)
    return buffer.getvalue()


def append_row(path: Path, row: dict[str, Any], columns: list[str]) -> None:
    """Append one row; an existing file keeps its own column order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    drop_partial_last_line(path)
    header = _read_header(path)
    if header is None:
        append_line(path, _format(list(columns)))
        header = list(columns)
    dropped = [c for c in row if c not in header]
    if dropped:
        print(f"warning: {path} has an older header; not writing columns {dropped[:5]}",
              file=sys.stderr)
    append_line(path, _format([row.get(c) for c in header]))


def _complete_lines(path: Path) -> io.StringIO:
    """The file up to its last newline: a row a crash cut short is not a row."""
    data = path.read_bytes()
    return io.StringIO(data[:data.rfind(b"\n") + 1].decode("utf-8"), newline="")


def has_experiment(path: Path, experiment_id: str) -> bool:
    """Whether a row for this ID exists (checked only on retries, so O(N) is rare)."""
    if not path.exists():
        return False
    return any(r.get("experiment_id") == experiment_id
               for r in csv.DictReader(_complete_lines(path)))


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return list(csv.DictReader(_complete_lines(path)))
