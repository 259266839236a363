"""The --max-parallel scheduler's bookkeeping: who ran beside whom, which workers stay."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from joulebench.errors import ConfigError
from joulebench.runner.device_sets import CPU, CUDA, DeviceSet
from joulebench.schedulers.parallel import Overlaps, _Slots, plan_devices
from joulebench.suite import ExperimentSpec, SuiteDefinition, expand_suite
from joulebench.tracker import ProgressTracker


def test_overlaps_are_mutual_and_a_run_that_ended_before_another_began_is_not_one(
    tmp_path: Path,
) -> None:
    tracker = ProgressTracker(tmp_path)
    tracker.register("s", [("a", "h"), ("b", "h"), ("c", "h")])
    ids = {k: tracker.claim(k, "h", suite="s").experiment_id for k in ("a", "b", "c")}
    overlaps = Overlaps(tracker)
    overlaps.begin("a")
    overlaps.begin("b")
    time.sleep(0.01)
    # b is still running: its ID comes from its claim in the tracker
    assert overlaps.concurrent_ids("a", ids["a"]) == [ids["b"]]
    overlaps.end("a")
    time.sleep(0.01)
    overlaps.begin("c")
    time.sleep(0.01)
    assert overlaps.concurrent_ids("b", ids["b"]) == sorted([ids["a"], ids["c"]])
    overlaps.end("b")
    assert overlaps.concurrent_ids("c", ids["c"]) == [ids["b"]]  # a ended before c began


def test_a_device_set_keeps_its_workers_and_an_overlapping_one_replaces_them() -> None:
    slots = _Slots()
    one = slots.for_set(DeviceSet(CPU, ("0",)))
    assert slots.for_set(DeviceSet(CPU, ("0",))) is one  # same set: same workers
    other = slots.for_set(DeviceSet(CPU, ("1",)))
    assert other is not one and len(slots.by_set) == 2
    both = slots.for_set(DeviceSet(CPU, ("0", "1")))
    # idle workers on cores 0 and 1 would compete with the new set's: they are closed
    assert list(slots.by_set.values()) == [both]
    gpu = slots.for_set(DeviceSet(CUDA, ("0",)))  # GPU 0 is not core 0
    assert len(slots.by_set) == 2 and gpu.device_set == DeviceSet(CUDA, ("0",))
    assert slots.preferred(CPU) == [("0", "1")] and slots.preferred(CUDA) == [("0",)]
    slots.close_all()
    assert slots.by_set == {}


def _specs(device: str, processes: list[int]) -> list[ExperimentSpec]:
    suite = SuiteDefinition(
        name="s",
        source="s.yaml",
        base={"model": "m", "device": device},
        models={"m": {"model": "org/m"}},
        controlled={"num_processes": processes},
    )
    return expand_suite(suite, 1)


def test_gpu_plan_sizes_each_key_from_the_visible_gpus_only() -> None:
    specs = _specs("cuda", [1, 2])
    plan = plan_devices(
        specs, 4, "s.yaml", env={"CUDA_VISIBLE_DEVICES": "3,5"}, cores={0}, gpu_count=lambda: 8
    )
    assert plan.node == {CUDA: ["3", "5"]}
    assert sorted(plan.needs.values()) == [(CUDA, 1), (CUDA, 2)]
    with pytest.raises(ConfigError, match=r"s\.yaml: .*needs 2 cuda device\(s\) .*\(3\)"):
        plan_devices(
            specs, 4, "s.yaml", env={"CUDA_VISIBLE_DEVICES": "3"}, cores={0}, gpu_count=lambda: 8
        )


def test_cpu_plan_gives_each_key_an_equal_share_of_the_cores() -> None:
    plan = plan_devices(_specs("cpu", [1, 2]), 2, "s.yaml", env={}, cores={0, 1, 2, 3, 4, 5})
    assert plan.node == {CPU: ["0", "1", "2", "3", "4", "5"]}
    assert sorted(plan.needs.values()) == [(CPU, 3), (CPU, 3)]
