"""Model and tokenizer loading with precision and quantisation applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from joulebench.config.models import ExperimentConfig
from joulebench.errors import RunnerError


def resolve_device(requested: str) -> str:
    """'auto' means CUDA when torch sees a GPU, else CPU."""
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _quantization_kwargs(cfg: ExperimentConfig, device: str) -> dict[str, Any]:
    if cfg.quantization == "none":
        return {}
    if device != "cuda":
        raise RunnerError(
            f"quantization: {cfg.quantization} needs a CUDA GPU but this run is on "
            f"{device}; set quantization: none or run on a GPU node"
        )
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise RunnerError(
            "quantization: needs the bitsandbytes package; pip install bitsandbytes"
        ) from None
    bnb = (
        BitsAndBytesConfig(load_in_8bit=True)
        if cfg.quantization == "int8"
        else BitsAndBytesConfig(load_in_4bit=True)
    )
    return {"quantization_config": bnb}


def load_tokenizer(model: str) -> Any:
    """The tokenizer as the worker loads it (the submission check counts prompts with it)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


def load_model_and_tokenizer(
    cfg: ExperimentConfig, device: str, torch_device: Any
) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[
        cfg.precision
    ]
    from joulebench.runner.parallel_load import load_kwargs, places_itself

    quant = _quantization_kwargs(cfg, device)
    placement = load_kwargs(cfg, device) or ({"device_map": {"": torch_device}} if quant else {})
    try:
        tokenizer = load_tokenizer(cfg.model)
        model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=dtype, **quant, **placement)
    except OSError as exc:
        where = "local folder" if Path(cfg.model).exists() else "local folder or cached hub model"
        raise RunnerError(
            f"model: '{cfg.model}' is not a loadable {where} ({str(exc).splitlines()[0][:120]}); "
            "for the demo run `joulebench make-demo-model models/tiny-llama`, otherwise "
            "download the model into the Hugging Face cache first"
        ) from None
    if not quant and not places_itself(cfg):
        model.to(torch_device)
    model.eval()
    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def architecture(model: Any) -> dict[str, Any]:
    """The seed's model-architecture file: what a reader needs to compare models."""
    config = model.config
    fields = (
        "model_type",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "intermediate_size",
        "vocab_size",
        "max_position_embeddings",
    )
    out = {f: getattr(config, f, None) for f in fields}
    out["total_params"] = int(sum(p.numel() for p in model.parameters()))
    out["architectures"] = getattr(config, "architectures", None)
    out["dtype"] = str(next(model.parameters()).dtype).removeprefix("torch.")
    return out


class ModelCache:
    """The loaded model of this worker, kept for the next task of the same model.

    A task of another model, precision, quantisation or parallelism replaces it (a
    tensor-parallel load is sharded over the process group): the old one is freed
    and its memory handed back first, so two never sit in memory together and the next
    experiment's peak-memory figures start from a clean slate.
    """

    def __init__(self) -> None:
        self._key: tuple[str, str, str, str, int] | None = None
        self._value: tuple[Any, Any] | None = None

    def get(
        self, cfg: ExperimentConfig, device: str, torch_device: Any
    ) -> tuple[tuple[Any, Any], bool]:
        """(model, tokenizer) and whether they were already loaded."""
        key = (cfg.model, cfg.precision, cfg.quantization, cfg.parallelism, cfg.num_processes)
        if self._key == key and self._value is not None:
            return self._value, True
        if self._value is not None:
            from joulebench.measure.memory import release_memory

            self._key, self._value = None, None
            release_memory(device)
        self._value = load_model_and_tokenizer(cfg, device, torch_device)
        self._key = key
        return self._value, False
