"""The parallelism field: its vocabulary, its counting rules and what it leaves alone."""

from __future__ import annotations

import hashlib
import json
from typing import get_args

import pytest
from pydantic import ValidationError

from joulebench.config.models import HASH_OMITTED_AT, ExperimentConfig
from joulebench.config.parallelism import (
    DATA,
    PARALLELISM_MODES,
    PIPELINE,
    TENSOR,
    Parallelism,
    counts_tokens,
    gpus_per_process,
    head_count_problem,
    launched_processes,
    splits_prompts,
    world_size,
)
from joulebench.runner.pool import PoolShape
from joulebench.suite.spec import ExperimentSpec


def test_the_modes_are_defined_once_and_the_config_uses_them() -> None:
    assert PARALLELISM_MODES == ("data", "tensor", "pipeline") == (DATA, TENSOR, PIPELINE)
    field = ExperimentConfig.model_fields["parallelism"]
    assert get_args(field.annotation) == get_args(Parallelism)
    assert field.default == DATA


def test_a_default_parallelism_leaves_existing_hashes_and_keys_alone() -> None:
    cfg = ExperimentConfig(model="m", num_processes=2, precision="float16")
    # The hash as versions before these fields computed it: every older field, sorted.
    fields = cfg.model_dump(mode="json").items()
    before = {k: v for k, v in fields if k not in HASH_OMITTED_AT}
    old_hash = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert cfg.config_hash() == old_hash
    assert ExperimentConfig(model="m", parallelism="data").config_hash() == (
        ExperimentConfig(model="m").config_hash()
    )
    assert cfg.model_copy(update={"parallelism": TENSOR}).config_hash() != old_hash
    spec = ExperimentSpec(suite="s", config_name="c", cycle=1, config=cfg)
    assert spec.key == "m::s::c::1"


@pytest.mark.parametrize(
    "mode, per_node, launched, world, split",
    [(DATA, 4, 4, 4, True), (TENSOR, 4, 4, 4, False), (PIPELINE, 4, 1, 1, True)],
)
def test_processes_and_prompts_per_mode(
    mode: Parallelism, per_node: int, launched: int, world: int, split: bool
) -> None:
    assert launched_processes(mode, per_node) == launched
    # Every mode uses per_node GPUs on a node: one per process, or all in pipeline's one.
    assert launched * gpus_per_process(mode, per_node) == per_node
    assert world_size(mode, per_node) == world
    assert world_size(mode, per_node, nodes=2) == 2 * world  # composes with nodes
    assert splits_prompts(mode) is split
    cfg = ExperimentConfig(model="m", num_processes=per_node, parallelism=mode, device="cuda")
    assert cfg.world_size == world


def test_tokens_count_once_in_tensor_mode() -> None:
    assert counts_tokens(TENSOR, 0) and not counts_tokens(TENSOR, 1)
    assert counts_tokens(DATA, 1) and counts_tokens(PIPELINE, 0)


def test_head_counts_must_divide_over_the_world() -> None:
    assert head_count_problem(32, 8, 8) is None
    assert head_count_problem(4, 2, 2) is None
    assert head_count_problem(32, 8, 3) == "its 32 attention heads do not divide over world size 3"
    assert head_count_problem(4, 2, 4) == "its 2 key/value heads do not divide over world size 4"
    assert head_count_problem(None, None, 3) is None


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"parallelism": "pipeline", "device": "cpu"}, "parallelism: pipeline"),
        ({"parallelism": "tensor", "quantization": "int4", "device": "cuda"}, "quantization"),
        ({"parallelism": "expert"}, "parallelism"),
    ],
)
def test_combinations_the_backend_refuses_are_config_errors(
    fields: dict[str, str], words: str
) -> None:
    with pytest.raises(ValidationError, match=words):
        ExperimentConfig(model="m", **fields)  # type: ignore[arg-type]
    assert ExperimentConfig(model="m", parallelism="pipeline", quantization="int4", device="cuda")


def test_the_worker_pool_shape_includes_parallelism() -> None:
    data = ExperimentConfig(model="m", num_processes=2)
    tensor = data.model_copy(update={"parallelism": TENSOR})
    pipeline = ExperimentConfig(model="m", num_processes=4, parallelism="pipeline", device="cuda")
    assert PoolShape.of(data, "cpu") != PoolShape.of(tensor, "cpu")
    assert PoolShape.of(tensor, "cpu") == PoolShape(2, "cpu", TENSOR)
    assert PoolShape.of(pipeline, "cuda") == PoolShape(1, "cuda", PIPELINE)  # one process
    assert PoolShape.of(data.model_copy(update={"precision": "bfloat16"}), "cpu") == (
        PoolShape.of(data, "cpu")
    )
