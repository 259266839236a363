"""How one experiment spreads over its processes: the parallelism modes, defined once.

A leaf module (no imports from the project), so the config, the runner, the pool and the
results all name the modes from here. Every function is pure.

- ``data``: each process holds the whole model and takes a share of the prompts.
- ``tensor``: one model sharded over every process (transformers' ``tp_plan``); every
  process runs the same batches, so tokens are counted once, on global rank 0.
- ``pipeline``: one process per node holding the model split over that node's GPUs
  (``device_map="auto"``); ``num_processes`` is how many GPUs it spreads over.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Parallelism = Literal["data", "tensor", "pipeline"]
DATA: Final = "data"
TENSOR: Final = "tensor"
PIPELINE: Final = "pipeline"
PARALLELISM_MODES: tuple[Parallelism, ...] = get_args(Parallelism)


def launched_processes(parallelism: Parallelism, num_processes: int) -> int:
    """Worker processes launched per node: one for pipeline, else ``num_processes``."""
    return 1 if parallelism == PIPELINE else num_processes


def gpus_per_process(parallelism: Parallelism, num_processes: int) -> int:
    """GPUs one process uses: all ``num_processes`` of them for pipeline, else one."""
    return num_processes if parallelism == PIPELINE else 1


def world_size(parallelism: Parallelism, num_processes: int, nodes: int = 1) -> int:
    """Processes of one experiment across all its nodes (the torch.distributed world)."""
    return launched_processes(parallelism, num_processes) * nodes


def splits_prompts(parallelism: Parallelism) -> bool:
    """Whether each process takes its own share of the prompts (else all run them all)."""
    return parallelism != TENSOR


def counts_tokens(parallelism: str, rank: int) -> bool:
    """Whether this global rank's batches count towards tokens, latency and outputs.

    In tensor mode every rank runs the same batches; counting all of them would count
    each token world-size times, so only global rank 0's count.
    """
    return rank == 0 or parallelism != TENSOR


def head_count_problem(
    num_attention_heads: int | None, num_key_value_heads: int | None, world: int
) -> str | None:
    """Why a model's heads cannot be split evenly over ``world`` tensor ranks, or None."""
    for name, count in (
        ("attention heads", num_attention_heads),
        ("key/value heads", num_key_value_heads),
    ):
        if count is not None and count % world:
            return f"its {count} {name} do not divide over world size {world}"
    return None
