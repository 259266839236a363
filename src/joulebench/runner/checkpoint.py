"""Per-process checkpoint of finished prompt batches.

Each accelerate process owns one file and rewrites it atomically after every batch,
so a killed or requeued experiment restarts with its finished batches intact. A
checkpoint only resumes the experiment ID, config hash and process count it was made
for: anything else would mix results of two different experiments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joulebench.errors import RunnerError
from joulebench.fsutil import atomic_write_json, read_json

FORMAT = "joulebench-batch-checkpoint/1"


@dataclass
class BatchCheckpoint:
    path: Path
    experiment_id: str
    config_hash: str
    world_size: int
    rank: int
    batch_size: int = 0
    batches: dict[int, dict[str, Any]] = field(default_factory=dict)
    resumed_indices: frozenset[int] = frozenset()

    @classmethod
    def open(cls, path: Path, *, experiment_id: str, config_hash: str, world_size: int,
             rank: int, batch_size: int = 0) -> BatchCheckpoint:
        """Load the file if one exists for this experiment, else start empty.

        A different batch size (an OOM retry with half the batch) means other batch
        boundaries: the old batches cannot be reused, so the checkpoint starts over.
        """
        ckpt = cls(path, experiment_id, config_hash, world_size, rank, batch_size)
        if not path.exists():
            return ckpt
        try:
            data = read_json(path)
        except ValueError:
            raise RunnerError(f"{path}: checkpoint is not valid JSON; delete it to rerun "
                              "this experiment's batches from the start") from None
        expected = {"experiment_id": experiment_id, "config_hash": config_hash,
                    "world_size": world_size}
        for name, value in expected.items():
            if data.get(name) != value:
                raise RunnerError(
                    f"{path}: checkpoint has {name}={data.get(name)!r} but this run has "
                    f"{value!r}; the config changed since the experiment started: revert it, "
                    "or rerun the suite with --fresh")
        if data.get("batch_size", batch_size) != batch_size:
            return ckpt
        ckpt.batches = {int(k): v for k, v in data.get("batches", {}).items()}
        ckpt.resumed_indices = frozenset(ckpt.batches)
        return ckpt

    def done(self, index: int) -> bool:
        return index in self.batches

    def add(self, index: int, record: dict[str, Any]) -> None:
        self.batches[index] = record
        atomic_write_json(self.path, {
            "format": FORMAT, "experiment_id": self.experiment_id,
            "config_hash": self.config_hash, "world_size": self.world_size, "rank": self.rank,
            "batch_size": self.batch_size,
            "batches": {str(k): v for k, v in sorted(self.batches.items())},
        }, indent=None)
