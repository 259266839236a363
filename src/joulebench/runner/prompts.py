"""Prompt loading: bundled JSONL, a JSONL path or a Hugging Face dataset name."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Any

from joulebench.config.models import DatasetConfig
from joulebench.errors import RunnerError


def bundled_prompts() -> Any:
    """The prompt set shipped with joulebench (``dataset.name: bundled``)."""
    return resources.files("joulebench.data").joinpath("prompts.jsonl")


def _dataset_source(cfg: DatasetConfig) -> tuple[str, dict[str, Any]]:
    if cfg.name == "bundled":
        return "json", {"data_files": str(bundled_prompts()), "split": "train"}
    if cfg.name.endswith((".jsonl", ".json")):
        if not Path(cfg.name).is_file():
            raise RunnerError(
                f"dataset.name: file {cfg.name} not found (paths are relative to "
                "the directory you run joulebench from)"
            )
        return "json", {"data_files": cfg.name, "split": "train"}
    return cfg.name, {"split": cfg.split, "revision": cfg.revision}


def load_prompt_texts(cfg: DatasetConfig) -> list[str]:
    from datasets import load_dataset

    name, kwargs = _dataset_source(cfg)
    try:
        data = load_dataset(name, **kwargs)
    except Exception as exc:  # datasets raises many types for "not found/offline"
        raise RunnerError(
            f"dataset.name: cannot load '{cfg.name}' ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160]}); use a local .jsonl path or a "
            "dataset in the local cache"
        ) from None
    if cfg.text_field not in data.column_names:
        raise RunnerError(
            f"dataset.text_field: '{cfg.text_field}' is not a column of "
            f"'{cfg.name}'; columns: {', '.join(data.column_names)}"
        )
    return [str(t) for t in data[cfg.text_field] if t and str(t).strip()]


def prompt_token_counts(tokenizer: Any, texts: list[str]) -> list[int]:
    """Each prompt's length in tokens: the one call both the worker and the submission
    check make, so they cannot disagree about what fits."""
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]


def fits(token_count: int, max_input_tokens: int) -> bool:
    return token_count <= max_input_tokens


def count_fitting(token_counts: list[int], max_input_tokens: int) -> int:
    return sum(fits(n, max_input_tokens) for n in token_counts)


def select_prompts(
    texts: list[str],
    token_counts: list[int],
    num_prompts: int,
    max_input_tokens: int,
    source: str,
    field: str = "num_prompts",
) -> list[str]:
    """The first ``num_prompts`` prompts that fit, in dataset order (deterministic);
    ``field`` is the config field that asked for them (named in the refusal)."""
    fitting = [t for t, n in zip(texts, token_counts, strict=False) if fits(n, max_input_tokens)]
    if len(fitting) < num_prompts:
        raise RunnerError(
            f"{field}: only {len(fitting)} prompts of '{source}' fit in "
            f"max_input_tokens={max_input_tokens}; lower {field} or raise "
            "max_input_tokens"
        )
    return fitting[:num_prompts]


def prompt_hash(prompts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in prompts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def shard(items: list[Any], rank: int, world_size: int) -> list[Any]:
    """Contiguous, balanced split: rank r gets a fixed slice whatever the batch size."""
    per, extra = divmod(len(items), world_size)
    start = rank * per + min(rank, extra)
    return items[start : start + per + (1 if rank < extra else 0)]


def batches(items: list[Any], batch_size: int) -> list[list[Any]]:
    return [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
