"""Per-process checkpoint of finished prompt batches.

Each accelerate process owns one file and rewrites it atomically after every batch,
so a killed or requeued experiment restarts with its finished batches intact. A
checkpoint only resumes the experiment ID, parallelism, config hash and process count it
was made for: anything else would mix results of two different experiments. In tensor
mode every process runs the same batches, so there is one checkpoint, written by global
rank 0 and read (never written) by the others, so all skip the same finished batches;
what each read is compared across ranks before any batch runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from joulebench.config.parallelism import DATA, Parallelism
from joulebench.errors import RunnerError
from joulebench.fsutil import atomic_write_json, read_json
from joulebench.results.records import BatchRecord

FORMAT = "joulebench-batch-checkpoint/1"


@dataclass
class BatchCheckpoint:
    path: Path
    experiment_id: str
    config_hash: str
    world_size: int
    rank: int
    batch_size: int = 0
    parallelism: Parallelism = DATA
    writes: bool = True  # False: a tensor rank other than 0 reads rank 0's file only
    batches: dict[int, BatchRecord] = field(default_factory=dict)
    resumed_indices: frozenset[int] = frozenset()
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )
    _behind: _WriteBehind | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        experiment_id: str,
        config_hash: str,
        world_size: int,
        rank: int,
        batch_size: int = 0,
        parallelism: Parallelism = DATA,
        writes: bool = True,
    ) -> BatchCheckpoint:
        """Load the file if one exists for this experiment, else start empty.

        A different batch size (an OOM retry with half the batch) means other batch
        boundaries: the old batches cannot be reused, so the checkpoint starts over.
        """
        ckpt = cls(
            path, experiment_id, config_hash, world_size, rank, batch_size, parallelism, writes
        )
        if not path.exists():
            return ckpt
        try:
            data = read_json(path)
        except ValueError:
            raise RunnerError(
                f"{path}: checkpoint is not valid JSON; delete it to rerun "
                "this experiment's batches from the start"
            ) from None
        if data.get("parallelism", DATA) != parallelism:
            raise RunnerError(
                f"{path}: checkpoint was written under parallelism={data.get('parallelism', DATA)}"
                f" but this run has parallelism={parallelism}; its batches cannot be reused: "
                "revert parallelism, or rerun the suite with --fresh"
            )
        expected = {
            "experiment_id": experiment_id,
            "config_hash": config_hash,
            "world_size": world_size,
        }
        for name, value in expected.items():
            if data.get(name) != value:
                raise RunnerError(
                    f"{path}: checkpoint has {name}={data.get(name)!r} but this run has "
                    f"{value!r}; the config changed since the experiment started: revert it, "
                    "or rerun the suite with --fresh"
                )
        if data.get("batch_size", batch_size) != batch_size:
            return ckpt
        ckpt.batches = {int(k): v for k, v in data.get("batches", {}).items()}
        ckpt.resumed_indices = frozenset(ckpt.batches)
        return ckpt

    def done(self, index: int) -> bool:
        return index in self.batches

    def add(self, index: int, record: BatchRecord) -> None:
        """Record a finished batch: durable on return, or soon after inside ``behind()``."""
        with self._lock:
            self.batches[index] = record
        if not self.writes:
            return
        if self._behind is not None:
            self._behind.request()
        else:
            self._write()

    def _write(self) -> None:
        if not self.writes:
            return
        with self._lock:
            batches = {str(k): v for k, v in sorted(self.batches.items())}
        atomic_write_json(
            self.path,
            {
                "format": FORMAT,
                "experiment_id": self.experiment_id,
                "config_hash": self.config_hash,
                "world_size": self.world_size,
                "parallelism": self.parallelism,
                "rank": self.rank,
                "batch_size": self.batch_size,
                "batches": batches,
            },
            indent=None,
        )

    @contextmanager
    def behind(self) -> Iterator[None]:
        """Write from a background thread while the timed window runs.

        A synchronous write costs two fsyncs per batch inside the window (a few percent of
        a short batch's time); behind it the file trails the newest batch by one write, so
        a kill loses at most the batches of that write, which then simply run again.
        Everything is on disk when the block ends.
        """
        self._behind = _WriteBehind(self._write)
        try:
            yield
        finally:
            writer, self._behind = self._behind, None
            writer.close()


class _WriteBehind:
    """One thread that writes the newest state whenever asked, coalescing requests."""

    def __init__(self, write: Callable[[], None]) -> None:
        self._write = write
        self._wake = threading.Event()
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, daemon=True, name="joulebench-checkpoint-writer"
        )
        self._thread.start()

    def request(self) -> None:
        if self._error is not None:
            raise self._error
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self._write()
            except BaseException as exc:  # re-raised in the worker's own thread
                self._error = exc
                return
            if self._closing and not self._wake.is_set():
                return

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._thread.join()
        if self._error is not None:
            raise self._error


def shared_checkpoint_problem(path: Path, finished_by_rank: list[list[int]]) -> str | None:
    """Why tensor ranks cannot go on from one shared checkpoint, or None (pure): each read
    ``path`` for itself, and a rank that saw other finished batches (a work folder that is
    not one shared file system across nodes, or a stale cached copy) would decode other
    prompts than its peers in the same collectives."""
    first = finished_by_rank[0]
    for rank, seen in enumerate(finished_by_rank):
        if seen != first:
            return (
                f"{path}: global rank {rank} read finished batches {seen} from the tensor "
                f"checkpoint but global rank 0 read {first}; every node must see the same "
                "results folder (a shared file system, not node-local storage)"
            )
    return None


def agree_on_shared_checkpoint(ckpt: BatchCheckpoint, world: int) -> None:
    """Every tensor rank skips exactly the batches global rank 0 finished, or all of them
    stop with the same error (one all-gather of the finished indices, before any batch)."""
    if world <= 1:
        return
    import torch.distributed as dist

    gathered: list[list[int] | None] = [None] * world
    dist.all_gather_object(gathered, sorted(ckpt.batches))
    problem = shared_checkpoint_problem(ckpt.path, [g or [] for g in gathered])
    if problem:
        raise RunnerError(problem)
