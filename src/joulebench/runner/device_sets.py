"""Disjoint device sets for experiments that run at once on one node. Pure.

``submit-suite --executor local --max-parallel N`` runs up to N experiments together,
each on its own devices: on CUDA a subset of the visible GPUs (the entries of
``CUDA_VISIBLE_DEVICES`` when it is set, never a GPU outside it) sized by the config's
``num_processes``; on CPU a set of cores (the workers' affinity, with a matching thread
count) sized as an equal share of the node. Picking, sizing and the up-front refusal are
plain functions of device lists, so they are tested against fake lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from joulebench.errors import ConfigError

DeviceKind = Literal["cuda", "cpu"]
CUDA: DeviceKind = "cuda"
CPU: DeviceKind = "cpu"


@dataclass(frozen=True)
class DeviceSet:
    """The devices one experiment runs on: GPU entries (as CUDA_VISIBLE_DEVICES names
    them: "0" or a UUID) or CPU core numbers (as text, "3")."""

    kind: DeviceKind
    ids: tuple[str, ...]

    @property
    def label(self) -> str:
        """How status, show and the results name it: ``cuda:0,1`` or ``cpu:2,3``."""
        return f"{self.kind}:{','.join(self.ids)}"

    def cores(self) -> set[int]:
        return {int(i) for i in self.ids}

    def env(self, num_processes: int) -> dict[str, str]:
        """What the workers' environment gets: the GPUs, or a thread count per process
        that fills the cores without oversubscribing them."""
        if self.kind == CUDA:
            return {"CUDA_VISIBLE_DEVICES": ",".join(self.ids)}
        return {"OMP_NUM_THREADS": str(max(1, len(self.ids) // max(1, num_processes)))}


def visible_gpus(env: Mapping[str, str], gpu_count: int) -> list[str]:
    """GPUs this process may use: CUDA_VISIBLE_DEVICES' entries in order when set (an
    empty value hides every GPU), else indices 0..gpu_count-1."""
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return [str(i) for i in range(gpu_count)]
    return [token.strip() for token in value.split(",") if token.strip()]


def node_devices(
    kind: DeviceKind, env: Mapping[str, str], gpu_count: int, cores: set[int]
) -> list[str]:
    """Every device of one kind the scheduler may hand out on this node."""
    if kind == CUDA:
        return visible_gpus(env, gpu_count)
    return [str(c) for c in sorted(cores)]


def devices_needed(kind: DeviceKind, num_processes: int, node_size: int, max_parallel: int) -> int:
    """How many devices an experiment gets: one GPU per process; on CPU an equal share of
    the node's cores (never fewer than one per process)."""
    if kind == CUDA:
        return num_processes
    return max(num_processes, node_size // max(1, max_parallel))


def pick(
    free: Sequence[str], needed: int, prefer: Sequence[tuple[str, ...]] = ()
) -> tuple[str, ...] | None:
    """``needed`` devices out of ``free`` (in node order), or None when too few are free.

    A preferred set (one whose workers are still alive, so reusing it skips a launch) wins
    when all of it is free and it has the right size; otherwise the first free devices.
    """
    if needed > len(free):
        return None
    free_set = set(free)
    for ids in prefer:
        if len(ids) == needed and free_set.issuperset(ids):
            return tuple(ids)
    return tuple(free[:needed])


def refuse_oversized(
    needs: Mapping[str, int], kind: DeviceKind, node: Sequence[str], where: str
) -> None:
    """Refuse, before anything runs, an experiment that could never get its devices.

    ``needs`` maps a key to the devices it needs; ``where`` names the suite file.
    """
    for key, needed in needs.items():
        if needed > len(node):
            if kind == CUDA:
                have = f"{len(node)} visible GPU(s) ({','.join(node) or 'none'})"
                fix = "lower num_processes or make more GPUs visible (CUDA_VISIBLE_DEVICES)"
            else:
                have = f"{len(node)} CPU core(s) in this process's affinity"
                fix = "lower num_processes or run on a node with more cores"
            raise ConfigError(
                f"{where}: {key}: num_processes needs {needed} {kind} device(s) but this "
                f"node has {have}; {fix}"
            )


class DevicePool:
    """Which devices of the node are free; handed out and given back as whole sets."""

    def __init__(self, kind: DeviceKind, devices: Sequence[str]) -> None:
        self.kind = kind
        self.devices = list(devices)
        self._busy: set[str] = set()

    @property
    def free(self) -> list[str]:
        return [d for d in self.devices if d not in self._busy]

    def take(self, needed: int, prefer: Sequence[tuple[str, ...]] = ()) -> DeviceSet | None:
        ids = pick(self.free, needed, prefer)
        if ids is None:
            return None
        self._busy.update(ids)
        return DeviceSet(self.kind, ids)

    def give_back(self, device_set: DeviceSet) -> None:
        self._busy.difference_update(device_set.ids)
