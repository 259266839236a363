"""Peak memory per process: CUDA's allocator on GPU, the OS high-water mark on CPU.

``torch.cuda.max_memory_allocated()`` is 0 on CPU builds, so CPU runs read VmHWM.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any


def peak_rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def peak_memory(device: str, gpus: int = 1) -> dict[str, Any]:
    """This process's peaks; ``gpus`` > 1 for a process that spreads its model over the
    first ``gpus`` visible GPUs (pipeline): their peaks are added, and kept apart too."""
    out: dict[str, Any] = {"peak_rss_bytes": peak_rss_bytes()}
    if device == "cuda":
        import torch

        if gpus == 1:
            out["cuda_max_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
            out["cuda_max_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
            return out
        by_gpu = [int(torch.cuda.max_memory_allocated(i)) for i in range(gpus)]
        out["cuda_max_allocated_bytes"] = sum(by_gpu)
        out["cuda_max_reserved_bytes"] = sum(
            int(torch.cuda.max_memory_reserved(i)) for i in range(gpus)
        )
        out["cuda_max_allocated_bytes_by_gpu"] = by_gpu
    return out


def reset_peak_memory(device: str, gpus: int = 1) -> None:
    """Start a new high-water mark, so a reused process reports this experiment's peak.

    On Linux, writing "5" to clear_refs resets VmHWM to the current RSS; where that is
    refused, the peak stays the process's lifetime peak (a reused worker then reports
    at least as much as a fresh one would).
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    if device == "cuda":
        import torch

        if gpus == 1:
            torch.cuda.reset_peak_memory_stats()
        for i in range(gpus if gpus > 1 else 0):
            torch.cuda.reset_peak_memory_stats(i)


def release_memory(device: str) -> None:
    """Hand freed memory back after dropping a model: collect reference cycles, trim the C
    heap (glibc keeps freed arenas, which would count in the next experiment's RSS peak)
    and empty CUDA's cache (which would otherwise hold the old model's blocks)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the peak is then an over-estimate, never an under-estimate
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()
