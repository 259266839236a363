"""The per-task CSV: one flat row per experiment, appended under the tracker lock."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

from joulebench.fsutil import append_line, atomic_write_bytes, drop_partial_last_line

log = logging.getLogger(__name__)


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
    """Append one row; an existing file keeps its own column order.

    Columns are only ever added at the end, so a file an older version wrote has a header
    that is a prefix of ``columns``: it gets the longer header once (an atomic rewrite, under
    the caller's lock like every append), and its old rows stay as written, shorter, which
    csv and pandas read as empty trailing cells. Every later append is O(1) again.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    drop_partial_last_line(path)
    header = _read_header(path)
    if header is None:
        append_line(path, _format(list(columns)))
        header = list(columns)
    elif len(header) < len(columns) and header == columns[: len(header)]:
        _extend_header(path, header, columns)
        header = list(columns)
    dropped = [c for c in row if c not in header]
    if dropped:
        log.warning("%s has a header of another layout; not writing columns %s", path, dropped[:5])
    append_line(path, _format([row.get(c) for c in header]))


def _extend_header(path: Path, old: list[str], columns: list[str]) -> None:
    data = path.read_bytes()
    rows = data[data.find(b"\n") + 1 :]
    atomic_write_bytes(path, _format(list(columns)).encode("utf-8") + b"\n" + rows)
    log.info("%s: added columns %s to the header", path, columns[len(old) :])


def _complete_lines(path: Path) -> io.StringIO:
    """The file up to its last newline: a row a crash cut short is not a row."""
    data = path.read_bytes()
    return io.StringIO(data[: data.rfind(b"\n") + 1].decode("utf-8"), newline="")


def has_experiment(path: Path, experiment_id: str) -> bool:
    """Whether a row for this ID exists (checked only on retries, so O(N) is rare)."""
    if not path.exists():
        return False
    return any(
        r.get("experiment_id") == experiment_id for r in csv.DictReader(_complete_lines(path))
    )


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    # restval: rows written before columns were added read as empty, like any missing cell.
    return list(csv.DictReader(_complete_lines(path), restval=""))
