"""Crash-safe file writes shared by the tracker, the runner and the results writer.

A crash at any instant must leave either the old or the new file, never a torn one:
write a temp file in the same directory, fsync it, rename over the target, fsync the
directory so the rename itself survives a power cut.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _read_umask() -> int:
    # The only way to read the umask is to set it; do it once, at import, before any
    # thread exists, so no other thread ever creates a file under a zero umask.
    current = os.umask(0)
    os.umask(current)
    return current


_UMASK = _read_umask()


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some file systems do not let a directory be opened; nothing to sync
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _named(exc: OSError, path: Path) -> OSError:
    """write() and fsync() errors carry no file name; a one-line message needs one."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror, str(path))  # same subclass, e.g. PermissionError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes 0600 files; give the result the user's usual umask instead.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)  # a full disk must not keep a half temp file
        named = _named(exc, path) if isinstance(exc, OSError) else exc
        if named is not exc:
            raise named from exc
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    with path.open("r", encoding="utf-8") as handle:
        return json.load(handle)


def drop_partial_last_line(path: Path) -> None:
    """Cut a line a crash left half-written, so the next append starts a fresh line."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with path.open("rb+") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        # Walk back to the previous newline; lines are short so read a bounded tail.
        tail_start = max(0, size - (1 << 20))
        handle.seek(tail_start)
        tail = handle.read()
        cut = tail.rfind(b"\n")
        handle.truncate(tail_start + cut + 1 if cut >= 0 else tail_start)
        handle.flush()
        os.fsync(handle.fileno())


def append_at_end(fd: int, data: bytes, start: int, path: Path) -> None:
    """Write ``data`` to an O_APPEND descriptor whose file is ``start`` bytes long, fsync.

    A full disk may take part of a multi-line append; cut it back so the file never
    holds some of one append's complete lines but not the rest.
    """
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        try:
            os.ftruncate(fd, start)
        except OSError:
            pass  # the torn tail is cut by the next append, and readers skip it
        named = _named(exc, path)
        if named is not exc:
            raise named from exc
        raise


def append_line(path: Path, line: str) -> None:
    """O(1) durable append of one line; callers hold the lock that orders writers."""
    drop_partial_last_line(path)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        append_at_end(fd, data, os.fstat(fd).st_size, path)
    finally:
        os.close(fd)
