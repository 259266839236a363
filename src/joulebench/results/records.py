"""The records that cross a process or layer boundary, by name and type.

A worker process writes one :class:`RankRecord` as ``rank_{r}.json``; the parent reads
them back and :func:`joulebench.results.writer.build_sections` turns them into
:class:`Sections`, from which the eight JSON files and the CSV row are written. The keys
here are the files' keys (a compatibility contract): add, never rename. Readings whose
shape belongs to a meter or sensor (energy, baseline, memory, thermal, FLOPs) stay
``dict[str, Any]`` here; their modules in ``measure/`` define them.

These are ``TypedDict``s rather than dataclasses so that a record *is* its JSON: written
with ``json.dumps`` and read back with ``json.loads`` unchanged, byte for byte.
"""

from __future__ import annotations

from typing import Any, TypedDict

Reading = dict[str, Any]  # a measure/ module's reading, stored as that module returns it


class _BatchCounts(TypedDict):
    num_prompts: int
    input_tokens: int
    output_tokens: int
    latency_s: float


# total=False rather than NotRequired: that needs Python 3.11, and a string annotation
# (this module's `from __future__ import annotations`) hides it from TypedDict there.
class BatchRecord(_BatchCounts, total=False):
    """One ``generate`` call of one process (``ckpt_rank{r}.json`` keeps these too)."""

    # Present when token_timing is on (runner.step_clock.token_timing).
    ttft_s: float
    decode_s: float
    decode_steps: int
    step_clock: str
    # Present when save_outputs is on.
    texts: list[str]
    token_ids: list[list[int]]


class DatasetRecord(TypedDict):
    name: str
    revision: str | None
    prompt_hash: str
    num_prompts: int


class NodeCpu(TypedDict):
    """The node's /proc/stat counters at both ends of the window (measure.host_load)."""

    start: Reading | None
    end: Reading | None


class MeasuredWindow(TypedDict):
    """What one process saw of the timed, metered window; energy only on local rank 0."""

    window_s: float
    energy: Reading | None  # EnergyMeasurement.to_dict()
    extra_energy: dict[str, Reading]  # meter name -> to_dict() or {"unavailable": why}
    own_window_cpu_s: float
    node_cpu: NodeCpu | None


class RankRecord(MeasuredWindow):
    """One process's whole experiment: what ``runner.worker.run`` returns and writes."""

    rank: int
    local_rank: int
    world_size: int
    batch_size: int
    host: str
    device: str
    pid: int
    torch_device: str
    cuda_visible_devices: str | None
    batches: dict[str, BatchRecord]  # batch index (as text, for JSON) -> record
    resumed_batches: list[int]
    outside_window_batches: list[int]
    load_s: float
    warmup_s: float
    model_reused: bool
    phases_s: dict[str, float]
    baseline: Reading | None  # local rank 0 only
    thermal: Reading | None  # local rank 0 only
    gpus: Reading | None  # local rank 0 on CUDA only
    memory: Reading
    flops: Reading
    dataset: DatasetRecord
    architecture: Reading | None  # rank 0 only
    boot_id: str | None  # local rank 0: which machine (kernel boot) the node is


class RunTiming(TypedDict):
    """Wall-clock facts of one run that only the caller of the workers knows."""

    started_at: str
    finished_at: str
    launch_wall_s: float
    workers_launch_s: float
    workers_reused: bool


class SetupTiming(RunTiming):
    load_s_max: float
    warmup_s_max: float
    model_reused: bool
    phases_s_max: dict[str, float]


class SetupSection(TypedDict):
    """File 1, ``{id}_1_experiment_setup.json``."""

    experiment_id: str
    key: str | None
    suite: str | None
    config_name: str | None
    cycle: int | None
    attempt: int
    cycle_order_seed: int | None
    config_hash: str
    model: str
    task_type: str
    device: str
    num_processes: int  # all processes, over every node
    nodes: int
    hosts: list[str]
    dataset: DatasetRecord
    thermal_by_node: dict[str, Reading | None]
    gpus_by_node: dict[str, Reading]
    timing: SetupTiming
    provenance: Reading
    batch_size_used: int
    oom_halved_batch: bool


LatencySummary = dict[str, float | None]  # results.stats.latency_summary


class InferenceSection(TypedDict):
    """File 4, ``{id}_4_inference_metrics.json``."""

    request_latency: LatencySummary
    time_to_first_token: LatencySummary
    inter_token_latency: LatencySummary
    prefill_s: float | None
    decode_s: float | None
    phase_timing_method: str | None
    energy_by_phase: None
    energy_by_phase_note: str
    num_prompts: int
    num_batches: int
    batches_resumed: int
    batches_outside_window: int
    batches_measured: int
    total_input_tokens: int
    total_output_tokens: int
    measured_input_tokens: int
    measured_output_tokens: int
    measured_prompts: int
    window_s: float
    throughput_output_tokens_per_s: float | None
    throughput_total_tokens_per_s: float | None
    throughput_queries_per_s: float | None
    batch_latency: LatencySummary
    throughput_scope: str


class ComputeSection(TypedDict):
    """File 5, ``{id}_5_compute_metrics.json``."""

    flops: Reading
    memory_by_process: dict[str, Reading]
    peak_memory_bytes_max: int
    peak_memory_source: str
    peak_host_rss_bytes_max: int


class ProcessEnergy(TypedDict):
    """Files 6, ``{id}_6_local_energy_results_process_{rank}.json``."""

    process_rank: int
    local_rank: int
    host: str
    energy: Reading | None
    note: str | None
    window_s: float
    input_tokens: int
    output_tokens: int
    memory: Reading


class EnergySection(TypedDict):
    """File 7, ``{id}_7_global_energy_results.json``."""

    energy_j: float | None
    energy_kwh: float | None
    energy_j_by_device: dict[str, float]
    meter: str | None
    method: str | None
    is_estimate: bool | None
    emissions_kg: float | None
    nodes_measured: list[str]
    quality_flags: list[str]
    aggregation: str
    energy_per_output_token_j: float | None
    baseline_power_w: float | None
    dynamic_energy_j: float | None
    dynamic_energy_per_output_token_j: float | None
    baseline_by_node: dict[str, Reading]
    output_tokens_per_j: float | None
    flops_per_j: float | None
    queries_per_kwh: float | None
    gpu_energy_wh_per_1000_queries: float | None
    per_node: dict[str, Reading]
    other_meters: dict[str, Reading]
    host_load_by_node: dict[str, Reading | None]
    others_cpu_share: float | None


class Outputs(TypedDict):
    """Files 8, ``{id}_8_text_output.json`` and ``{id}_8_token_output.json``."""

    texts: list[str]
    token_ids: list[list[int]]


class Sections(TypedDict):
    """Everything one experiment's files and CSV row are made from, by file."""

    setup: SetupSection
    variables: dict[str, Any]  # file 2: ExperimentConfig.model_dump(mode="json")
    architecture: Reading  # file 3
    inference: InferenceSection
    compute: ComputeSection
    per_process: list[ProcessEnergy]
    energy: EnergySection
    outputs: Outputs | None
