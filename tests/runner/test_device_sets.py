"""Device sets for --max-parallel: picking and sizing against fake device lists (pure)."""

from __future__ import annotations

import pytest

from joulebench.errors import ConfigError
from joulebench.runner.device_sets import (
    CPU,
    CUDA,
    DevicePool,
    DeviceSet,
    devices_needed,
    node_devices,
    pick,
    refuse_oversized,
    visible_gpus,
)


def test_visible_gpus_come_from_cuda_visible_devices_never_beyond_it() -> None:
    assert visible_gpus({}, 4) == ["0", "1", "2", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,5"}, 8) == ["2", "5"]
    uuids = "GPU-aaaa,GPU-bbbb"
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": uuids}, 8) == ["GPU-aaaa", "GPU-bbbb"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, 8) == []


def test_a_subset_of_a_visible_subset_is_handed_out_as_named() -> None:
    pool = DevicePool(CUDA, node_devices(CUDA, {"CUDA_VISIBLE_DEVICES": "4,5,6"}, 8, set()))
    first = pool.take(2)
    assert first == DeviceSet(CUDA, ("4", "5"))
    assert first.env(2) == {"CUDA_VISIBLE_DEVICES": "4,5"}
    assert pool.take(2) is None  # one left: the 2-GPU key waits
    second = pool.take(1)
    assert second == DeviceSet(CUDA, ("6",)) and pool.free == []
    pool.give_back(first)
    assert pool.free == ["4", "5"]


def test_too_few_free_waits_and_an_exact_fit_takes_everything() -> None:
    assert pick(["0", "1"], 3) is None
    assert pick(["0", "1", "2"], 3) == ("0", "1", "2")
    assert pick([], 1) is None


def test_a_set_with_live_workers_is_preferred_when_free_and_the_right_size() -> None:
    assert pick(["0", "1", "2", "3"], 2, prefer=[("2", "3")]) == ("2", "3")
    assert pick(["0", "1", "2"], 2, prefer=[("2", "3")]) == ("0", "1")  # 3 is busy
    assert pick(["0", "1", "2", "3"], 1, prefer=[("2", "3")]) == ("0",)  # wrong size


def test_cpu_sets_are_an_equal_share_of_the_cores_at_least_one_per_process() -> None:
    assert devices_needed(CPU, 1, node_size=2, max_parallel=2) == 1
    assert devices_needed(CPU, 1, node_size=16, max_parallel=4) == 4
    assert devices_needed(CPU, 2, node_size=2, max_parallel=2) == 2  # waits for both
    assert devices_needed(CUDA, 2, node_size=8, max_parallel=4) == 2
    cores = DevicePool(CPU, node_devices(CPU, {}, 0, {3, 1, 2, 0})).take(2)
    assert cores == DeviceSet(CPU, ("0", "1"))
    assert cores.cores() == {0, 1} and cores.label == "cpu:0,1"
    assert cores.env(1) == {"OMP_NUM_THREADS": "2"}
    assert cores.env(2) == {"OMP_NUM_THREADS": "1"}


def test_a_key_bigger_than_the_node_is_refused_naming_file_key_and_fix() -> None:
    refuse_oversized({"k1": 2}, CUDA, ["0", "1"], "s.yaml")  # exact fit passes
    with pytest.raises(ConfigError, match=r"s.yaml: k2: num_processes needs 3 cuda .*lower"):
        refuse_oversized({"k1": 2, "k2": 3}, CUDA, ["0", "1"], "s.yaml")
    with pytest.raises(ConfigError, match="2 CPU core"):
        refuse_oversized({"k": 4}, CPU, ["0", "1"], "s.yaml")
