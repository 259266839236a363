"""Typed experiment configuration.

Every field has a unit or an enumerated meaning; unknown keys are errors so a typo in
a suite never silently runs the default.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from joulebench.config.parallelism import DATA, PIPELINE, TENSOR, Parallelism, world_size
from joulebench.config.scenario import ScenarioConfig
from joulebench.measure.names import ExtraMeterName, MeterName

Precision = Literal["float32", "float16", "bfloat16"]
Quantization = Literal["none", "int8", "int4"]
Device = Literal["auto", "cpu", "cuda"]

# Strict scalars: YAML's `true` must not become batch_size 1, nor "8" a number.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]  # strict floats still take whole numbers
Bool = Annotated[bool, Strict()]

# Fields added after suites were already tracked, with the value that means "as before":
# at that value they stay out of the config hash, so the hash (and with it the tracker's
# record of every existing suite's keys and their checkpoints) does not change.
HASH_OMITTED_AT: dict[str, object] = {
    "parallelism": DATA,
    "scenario": ScenarioConfig().model_dump(mode="json"),
    "count_prefill_energy": None,
    "nodes": 1,
}

# Names end up in tracker keys ("::"-separated) and file names, so keep them tame.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DecoderConfig(_Strict):
    """How tokens are chosen. Greedy ignores the sampling knobs."""

    mode: Literal["greedy", "sampling"] = "greedy"
    temperature: Float = Field(1.0, gt=0)
    top_k: Int = Field(0, ge=0, description="0 disables top-k")
    top_p: Float = Field(1.0, gt=0, le=1)


class DatasetConfig(_Strict):
    """Where prompts come from: the bundled JSONL, a JSONL path or a HF dataset name."""

    name: str = "bundled"
    split: str = "train"
    text_field: str = "text"
    revision: str | None = None


class ExperimentConfig(_Strict):
    """One experiment: a model under one set of inference settings."""

    model: str = Field(..., min_length=1, description="hub id or local path")
    device: Device = "auto"
    precision: Precision = "float32"
    quantization: Quantization = "none"
    batch_size: Int = Field(8, gt=0)
    num_prompts: Int = Field(32, gt=0)
    max_input_tokens: Int = Field(128, gt=0)
    max_output_tokens: Int = Field(32, gt=0)
    min_output_tokens: Int = Field(0, ge=0)
    decoder: DecoderConfig = DecoderConfig()
    num_processes: Int = Field(1, gt=0)
    parallelism: Parallelism = DATA
    nodes: Int = Field(1, gt=0, description="Slurm nodes per experiment; above 1 needs Slurm")
    warmup_iterations: Int = Field(2, ge=0)
    dataset: DatasetConfig = DatasetConfig()
    energy_meter: MeterName = "auto"
    extra_meters: tuple[ExtraMeterName, ...] = ()  # run in the same window, reported apart
    task_type: str = "text_generation"
    save_outputs: Bool = True
    count_flops: Bool = True
    seed: Int = 1234
    max_retries: Int = Field(2, ge=0)
    backoff_base_s: Float = Field(2.0, ge=0)
    oom_halve_batch: Bool = False
    steady_state: Bool = False
    min_window_s: Float = Field(0.0, ge=0, description="refuse results measured over less")
    idle_baseline_s: Float = Field(5.0, ge=0, description="0 turns the idle baseline off")
    idle_baseline_max_age_s: Float = Field(3600.0, ge=0)
    token_timing: Bool = True
    cooldown_temp_c: Float | None = Field(None, gt=0, description="wait until below; None = off")
    cooldown_max_wait_s: Float = Field(300.0, ge=0)
    scenario: ScenarioConfig = ScenarioConfig()
    # Offline mode: also run the batches with one output token in a window of their own
    # (prefill energy); None = on for counter meters (NVML, RAPL), off for estimates.
    count_prefill_energy: Bool | None = None

    @field_validator("model")
    @classmethod
    def _model_has_no_separator(cls, value: str) -> str:
        if "::" in value:
            raise ValueError("must not contain '::' (it separates parts of a tracker key)")
        return value

    @field_validator("task_type")
    @classmethod
    def _task_type_is_file_safe(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9_]+", value):
            raise ValueError("use lower-case letters, digits and '_' (it names the CSV file)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        if self.min_output_tokens > self.max_output_tokens:
            raise ValueError(
                f"min_output_tokens ({self.min_output_tokens}) exceeds max_output_tokens "
                f"({self.max_output_tokens}): lower min_output_tokens or raise max_output_tokens"
            )
        if self.device == "cpu" and self.quantization != "none":
            raise ValueError(
                f"quantization: {self.quantization} needs a CUDA GPU but device is "
                "cpu; set quantization: none, or device: cuda on a GPU node"
            )
        if self.device == "cpu" and self.energy_meter == "nvml":
            raise ValueError(
                "energy_meter: nvml needs a GPU but device is cpu; use "
                "energy_meter: codecarbon or auto on CPU"
            )
        if self.scenario.serving and self.num_processes != 1:
            raise ValueError(
                f"scenario.mode: serving runs one engine in one process but num_processes "
                f"is {self.num_processes}; set num_processes: 1"
            )
        if self.scenario.serving and self.nodes > 1:
            raise ValueError(
                f"scenario.mode: serving runs one engine in one process but nodes is "
                f"{self.nodes}; set nodes: 1"
            )
        if self.device == "cpu" and self.parallelism == PIPELINE:
            raise ValueError(
                "parallelism: pipeline splits the model over several GPUs but device is "
                "cpu; use parallelism: tensor or data on CPU, or device: cuda on a GPU node"
            )
        if self.parallelism == PIPELINE and self.nodes > 1:
            raise ValueError(
                f"parallelism: pipeline splits the model over one node's GPUs but nodes is "
                f"{self.nodes}; set nodes: 1, or use parallelism: tensor across nodes"
            )
        if self.quantization != "none" and self.parallelism == TENSOR:
            raise ValueError(
                f"parallelism: tensor cannot shard quantization: {self.quantization} "
                "weights (bitsandbytes layers have no tensor-parallel plan); set "
                "quantization: none, or use parallelism: pipeline"
            )
        return self

    @property
    def world_size(self) -> int:
        """Processes of this experiment across all its nodes."""
        return world_size(self.parallelism, self.num_processes, self.nodes)

    def config_hash(self) -> str:
        """Stable short hash of every setting; a checkpoint only resumes a matching one."""
        fields = self.model_dump(mode="json")
        for name, value in HASH_OMITTED_AT.items():
            if fields.get(name) == value:
                del fields[name]
        canonical = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def config_fields() -> dict[str, Any]:
    """Field name -> default, for the README's configs reference and error hints."""
    return {name: f.default for name, f in ExperimentConfig.model_fields.items()}
