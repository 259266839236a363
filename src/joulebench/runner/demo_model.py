"""A tiny Llama and byte-level BPE tokenizer built offline in seconds.

The Hugging Face Hub is often unreachable on compute nodes and always in CI; the demo
and the tests need a real ``AutoModelForCausalLM`` that loads through the same code as
a hub model, so we build one from the bundled prompts.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from joulebench.errors import RunnerError

DEMO_VOCAB_SIZE = 512
# Shapes `make-demo-model --size` offers. "1b" is TinyLlama-1.1B's shape with the demo's
# 512-token vocabulary (0.97B parameters, 3.7 GB in float32): random weights, but the
# compute of a real 1B decoder, for GPU runs and benchmarks with no hub access.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {},
    "1b": {
        "hidden_size": 2048,
        "layers": 22,
        "intermediate_size": 5632,
        "heads": 16,
        "kv_heads": 4,
    },
}


def bundled_prompt_texts() -> list[str]:
    raw = resources.files("joulebench.data").joinpath("prompts.jsonl").read_text("utf-8")
    return [json.loads(line)["text"] for line in raw.splitlines() if line.strip()]


def build_demo_model(
    directory: Path,
    *,
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
    intermediate_size: int | None = None,
    heads: int = 4,
    kv_heads: int = 2,
) -> Path:
    """Write a random Llama + tokenizer to ``directory`` (save_pretrained format).

    The defaults give the tiny demo model; larger sizes (benchmarks) use the same code.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not (directory / "config.json").exists():
        raise RunnerError(f"{directory}: exists and is not a model folder; pick an empty path")
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=DEMO_VOCAB_SIZE,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(bundled_prompt_texts(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="left",
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=1024,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory
