"""What tensor and pipeline parallelism change in loading a model, and what they need.

``load_kwargs`` gives ``from_pretrained`` the mode's placement: transformers' tensor-
parallel plan (``DistributedConfig(tp_plan="auto")``, the same as ``tp_plan="auto"``:
it shards every planned layer over the process group accelerate launch already set up)
or accelerate's big-model split over the node's GPUs (``device_map="auto"``). Data
parallelism adds nothing. ``plan_problems`` says, from a model's config alone, why it
cannot be sharded over a world size; the submission check and the worker both ask it.
"""

from __future__ import annotations

from typing import Any

from joulebench.config.models import ExperimentConfig
from joulebench.config.parallelism import PIPELINE, TENSOR, head_count_problem
from joulebench.errors import RunnerError


def load_kwargs(cfg: ExperimentConfig, device: str) -> dict[str, Any]:
    """Extra ``from_pretrained`` arguments of the config's parallelism (none for data).

    Tensor parallelism over one process is the whole model in that process: loaded as
    data parallelism loads it (a one-process launch has no process group to shard over).
    """
    if cfg.parallelism == TENSOR and cfg.world_size > 1:
        from transformers import DistributedConfig

        problems = model_plan_problems(cfg)
        if problems:  # refused at submission too; a direct `joulebench run` lands here
            raise RunnerError(problems[0])

        return {"distributed_config": DistributedConfig(tp_plan="auto")}
    if cfg.parallelism == PIPELINE:
        return {"device_map": "auto", "max_memory": pipeline_max_memory(cfg.num_processes)}
    return {}


def pipeline_max_memory(gpus: int) -> dict[int, int]:
    """The first ``gpus`` visible GPUs, each up to its full memory: accelerate fills them
    in order and uses no other device (so the job's own GPUs are exactly those metered)."""
    import torch

    return {i: torch.cuda.get_device_properties(i).total_memory for i in range(gpus)}


def places_itself(cfg: ExperimentConfig) -> bool:
    """Whether loading already put the weights where they run (no ``model.to`` after)."""
    return cfg.parallelism == PIPELINE or (cfg.parallelism == TENSOR and cfg.world_size > 1)


def has_tp_plan(model_config: Any) -> bool:
    """Whether transformers knows how to shard this architecture."""
    return bool(getattr(model_config, "base_model_tp_plan", None))


def plan_problems(model_config: Any, model: str, world: int) -> list[str]:
    """Why ``model`` (its transformers config) cannot run tensor-parallel over ``world``."""
    if not has_tp_plan(model_config):
        kind = getattr(model_config, "model_type", "this")
        return [
            f"parallelism: tensor but model '{model}' ({kind} architecture) has no "
            "tensor-parallel plan in transformers; use parallelism: pipeline (GPUs) or data"
        ]
    heads = getattr(model_config, "num_attention_heads", None)
    kv_heads = getattr(model_config, "num_key_value_heads", None)
    why = head_count_problem(heads, kv_heads, world)
    if why is None:
        return []
    return [
        f"parallelism: tensor over {world} processes but model '{model}': {why}; set "
        "num_processes so that the world size divides both head counts"
    ]


def model_plan_problems(cfg: ExperimentConfig) -> list[str]:
    """``plan_problems`` for a config whose model is here (a local folder or cached)."""
    if cfg.parallelism != TENSOR:
        return []
    from transformers import AutoConfig

    try:
        model_config = AutoConfig.from_pretrained(cfg.model)
    except (OSError, ValueError):
        return []  # not readable here: the model check or the worker names what is missing
    return plan_problems(model_config, cfg.model, cfg.world_size)
