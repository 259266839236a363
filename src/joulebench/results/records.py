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

from typing import Any, Literal, TypedDict

Reading = dict[str, Any]  # a measure/ module's reading, stored as that module returns it
LatencySummary = dict[str, float | None]  # results.stats.latency_summary


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


StepKind = Literal["prefill", "decode"]
PREFILL: StepKind = "prefill"
DECODE: StepKind = "decode"


class StepRecord(TypedDict):
    """One serving engine step (runner.serving), times from the window start."""

    kind: StepKind
    start_s: float
    end_s: float
    tokens: dict[str, int]  # request index (text, for JSON) -> tokens it processed
    energy_j: float | None  # the meter's cumulative energy after the step, where read


class ServedRequest(TypedDict):
    """One served request's life, in seconds from the window start."""

    index: int
    arrival_s: float
    admitted_s: float
    first_token_s: float
    finished_s: float
    input_tokens: int
    output_tokens: int
    token_s: list[float]  # when each output token was ready
    token_ids: list[int]


class ArrivalSchedule(TypedDict):
    """The seeded arrivals a serving run followed (runner.arrivals), as recorded."""

    arrival: str
    request_rate: float
    num_requests: int
    seed: int
    arrival_s: list[float]  # seconds after the window opens, non-decreasing
    schedule_hash: str


class ServingRecord(TypedDict):
    """What the serving engine did in the window (scenario.mode: serving)."""

    policy: str
    max_concurrency: int
    schedule: ArrivalSchedule
    requests: list[ServedRequest]
    steps: list[StepRecord]
    energy_read_per_step: bool
    meter_reads_s: float  # time the per-step meter reads took, inside the window


class PrefillWindow(TypedDict):
    """Offline mode's second window: the same batches with one output token."""

    window_s: float
    energy: Reading | None
    input_tokens: int
    num_prompts: int


class ServedRequestMetrics(TypedDict):
    """One request's figures in the result (seconds; joules)."""

    index: int
    arrival_s: float
    queue_delay_s: float  # arrival -> admitted into the batch
    ttft_s: float  # arrival -> first token
    tpot_s: float | None  # (last token - first token) / (output tokens - 1)
    itl_mean_s: float | None  # mean gap between consecutive tokens
    e2e_s: float  # arrival -> last token
    input_tokens: int
    output_tokens: int
    energy_j: float | None
    dynamic_energy_j: float | None


class SteadyState(TypedDict):
    """ML.ENERGY's steady-state window: from the moment max_concurrency requests have
    their first token to when num_requests - max_concurrency have finished."""

    start_s: float
    end_s: float
    duration_s: float
    output_tokens: int
    requests_finished: int
    throughput_output_tokens_per_s: float | None
    request_throughput_per_s: float | None
    energy_j: float | None
    energy_method: str  # counter reads at the window's ends, or its time share
    energy_per_output_token_j: float | None


class ServingSection(TypedDict):
    """The inference section's ``serving`` part (scenario.mode: serving)."""

    policy: str
    arrival: str
    request_rate: float
    max_concurrency: int
    num_requests: int
    seed: int
    schedule_hash: str
    arrival_s: list[float]
    slo_ttft_ms: float | None
    slo_tpot_ms: float | None
    queue_delay: LatencySummary
    ttft: LatencySummary
    tpot: LatencySummary
    itl: LatencySummary
    e2e: LatencySummary
    request_throughput_per_s: float | None
    output_token_throughput_per_s: float | None
    total_token_throughput_per_s: float | None
    goodput_requests_per_s: float | None
    slo_attainment: float | None
    batch_occupancy_mean: float | None  # requests per decode step
    batch_occupancy_fraction: float | None  # of max_concurrency
    engine_steps: int
    prefill_steps: int
    meter_reads_s: float
    steady_state: SteadyState | None
    steady_state_note: str | None
    requests: list[ServedRequestMetrics]


EnergySummary = dict[str, float | None]  # mean_j, p50_j, p90_j, p99_j


class PerRequestEnergy(TypedDict):
    """The energy section's ``per_request`` part (measure.apportion)."""

    method: str  # per_step_counter | window_share
    counter_resolution_s: float | None
    counter_reads_grouped_into: int
    quality_flags: list[str]
    energy_per_request: EnergySummary
    dynamic_energy_per_request: EnergySummary
    sum_energy_j: float
    note: str


class PhaseEnergy(TypedDict):
    """Offline mode's prefill vs decode split (count_prefill_energy)."""

    method: str
    prefill_energy_j: float | None
    decode_energy_j: float | None
    prefill_window_s: float
    prefill_energy_per_input_token_j: float | None
    decode_energy_per_output_token_j: float | None
    quality_flags: list[str]


class _RankExtras(TypedDict, total=False):
    serving: ServingRecord  # serving mode only
    prefill: PrefillWindow  # offline mode with count_prefill_energy on


class RankRecord(MeasuredWindow, _RankExtras):
    """One process's whole experiment: what ``runner.worker.run`` returns and writes."""

    rank: int
    local_rank: int
    world_size: int
    parallelism: str  # config.parallelism.Parallelism; absent in records of older versions
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
    num_processes: int  # the config's: per node (pipeline: its GPUs, in one process)
    parallelism: str  # config.parallelism.Parallelism
    world_size: int  # processes of the experiment across all its nodes
    nodes: int
    hosts: list[str]
    dataset: DatasetRecord
    thermal_by_node: dict[str, Reading | None]
    gpus_by_node: dict[str, Reading]
    timing: SetupTiming
    provenance: Reading
    batch_size_used: int
    oom_halved_batch: bool


class _InferenceExtras(TypedDict, total=False):
    serving: ServingSection  # scenario.mode: serving


class InferenceSection(_InferenceExtras):
    """File 4, ``{id}_4_inference_metrics.json``."""

    request_latency: LatencySummary
    time_to_first_token: LatencySummary
    inter_token_latency: LatencySummary
    prefill_s: float | None
    decode_s: float | None
    phase_timing_method: str | None
    energy_by_phase: PhaseEnergy | None
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
    peak_memory_bytes_sum: int
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


class _EnergyExtras(TypedDict, total=False):
    per_request: PerRequestEnergy  # scenario.mode: serving


class EnergySection(_EnergyExtras):
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
    # results.host_energy: the host part apart from the GPU part, apportioned when shared
    host_energy_j: float | None  # what the host meters read for the whole node
    gpu_energy_j: float | None
    host_energy_apportioned_j: float | None  # this experiment's share (shared node only)
    host_share: float | None
    host_share_method: str | None  # measure.host_share.ShareMethod
    energy_scope: str | None  # results.host_energy.EnergyScope: what energy_j adds up
    host_sharing: Reading | None  # measure.host_share.HostSharing


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
