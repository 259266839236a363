"""One serving experiment inside a worker process (``scenario.mode: serving``).

The worker dispatches here instead of running fixed batches: prompts are taken one per
request, the arrival schedule is drawn from the seed, and the engine
(:mod:`joulebench.runner.serving`) serves the schedule in real time inside one metered
window. Counter meters (NVML, RAPL) are read after every engine step so the parent can
split the energy per request (:mod:`joulebench.measure.apportion`).

No checkpoint: a half-served schedule is not a measurement, so a preempted or requeued
serving experiment reruns its whole schedule under the same ID and reports that run's
window only (never two runs' energy).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from joulebench.config.models import ExperimentConfig
from joulebench.measure.apportion import COUNTER_RESOLUTION_S
from joulebench.results.records import (
    ArrivalSchedule,
    BatchRecord,
    MeasuredWindow,
    RankRecord,
    ServedRequest,
    ServingRecord,
)
from joulebench.runner.arrivals import arrival_schedule
from joulebench.runner.model import architecture
from joulebench.runner.node_readings import (
    cool_down_reading,
    gpu_inventory,
    idle_baseline_reading,
    start_extra_meters,
    stop_extra_meters,
)
from joulebench.runner.prompts import (
    load_prompt_texts,
    prompt_hash,
    prompt_token_counts,
    select_prompts,
)
from joulebench.runner.serving import DynamicBatcher, Sampling, ServeLoop
from joulebench.runner.worker import ModelCache, _start_timeline, _sync, _timeline_file


def sampling(cfg: ExperimentConfig, eos_token_id: int | None) -> Sampling:
    d = cfg.decoder
    return Sampling(
        max_new_tokens=cfg.max_output_tokens,
        min_new_tokens=cfg.min_output_tokens,
        do_sample=d.mode == "sampling",
        temperature=d.temperature,
        top_k=d.top_k,
        top_p=d.top_p,
        eos_token_id=eos_token_id,
    )


def step_energy_reader(meter: Any) -> Callable[[], float | None] | None:
    """Cumulative energy (J, all devices) now, for meters with a counter; else None.

    A device without a counter (NVML power polling) makes the reading None, so the
    split falls back to window shares rather than mixing counted and missing devices.
    """
    if meter is None or meter.name not in COUNTER_RESOLUTION_S or not hasattr(meter, "probe"):
        return None

    def read() -> float | None:
        values = [r.energy_j for r in meter.probe()]
        if not values or any(v is None for v in values):
            return None
        return float(sum(v for v in values if v is not None))

    return read


class _TimedReader:
    """Wraps the per-step reader to add up the time the reads take in the window."""

    def __init__(self, read: Callable[[], float | None] | None) -> None:
        self.read, self.seconds = read, 0.0

    def __call__(self) -> float | None:
        if self.read is None:
            return None
        start = time.perf_counter()
        value = self.read()
        self.seconds += time.perf_counter() - start
        return value


def request_batches(requests: list[ServedRequest], outputs: list[str] | None) -> dict[str, Any]:
    """Each request as a one-prompt batch record, so the offline aggregation (token
    totals, throughput, latency percentiles) reads serving runs too. Latency counts
    from arrival: queueing is part of what a user waits."""
    out: dict[str, BatchRecord] = {}
    for r in requests:
        record: BatchRecord = {
            "num_prompts": 1,
            "input_tokens": r["input_tokens"],
            "output_tokens": r["output_tokens"],
            "latency_s": r["finished_s"] - r["arrival_s"],
            "ttft_s": r["first_token_s"] - r["arrival_s"],
            "decode_s": r["finished_s"] - r["first_token_s"],
            "decode_steps": r["output_tokens"] - 1,
            "step_clock": "host",
        }
        if outputs is not None:  # the generated text, as offline batches record it
            record["texts"] = [outputs[r["index"]]]
            record["token_ids"] = [r["token_ids"]]
        out[str(r["index"])] = record
    return out


@dataclass
class _Prepared:
    """What the window needs, made before it opens."""

    model: Any
    tok: Any
    prompts: list[str]
    input_ids: list[list[int]]
    schedule: ArrivalSchedule
    reused: bool
    phases_s: dict[str, float] = field(default_factory=dict)


def _prepare(cfg: ExperimentConfig, device: str, acc: Any, models: ModelCache) -> _Prepared:
    """Model, one prompt per request, and the seeded schedule."""
    sc = cfg.scenario
    mark = time.perf_counter()
    (model, tok), reused = models.get(cfg, device, acc.device)
    load_s = time.perf_counter() - mark
    texts = load_prompt_texts(cfg.dataset)
    counts = prompt_token_counts(tok, texts)
    prompts = select_prompts(
        texts,
        counts,
        sc.num_requests,
        cfg.max_input_tokens,
        cfg.dataset.name,
        field="scenario.num_requests",
    )
    ids = [tok(p, truncation=True, max_length=cfg.max_input_tokens)["input_ids"] for p in prompts]
    schedule = arrival_schedule(
        sc.arrival, sc.request_rate, sc.num_requests, cfg.seed, prompt_hash(prompts)
    )
    return _Prepared(model, tok, prompts, ids, schedule, reused, {"load": load_s})


def _engine(cfg: ExperimentConfig, p: _Prepared) -> DynamicBatcher:
    pad = p.tok.pad_token_id if p.tok.pad_token_id is not None else 0
    return DynamicBatcher(p.model, pad, sampling(cfg, p.tok.eos_token_id))


def _warm_up(cfg: ExperimentConfig, device: str, p: _Prepared) -> None:
    """A couple of requests through a fresh engine, outside the window."""
    mark = time.perf_counter()
    few = p.input_ids[: min(2, len(p.input_ids))]
    for _ in range(cfg.warmup_iterations):
        ServeLoop(_engine(cfg, p), few, [0.0] * len(few), 2, sync=lambda: _sync(device)).run()
    p.phases_s["warmup"] = time.perf_counter() - mark


def _serve_in_window(
    cfg: ExperimentConfig,
    device: str,
    task: dict[str, Any],
    acc: Any,
    p: _Prepared,
    baseline: dict[str, Any] | None,
) -> tuple[MeasuredWindow, ServingRecord]:
    """Serve the schedule inside one metered window; counter meters read per step."""
    from joulebench.measure.factory import make_meter
    from joulebench.measure.host_load import node_snapshot, own_cpu_s

    meter = make_meter(cfg.energy_meter, device=device)
    extras = start_extra_meters(cfg, device)
    meter.start()
    recorder = _start_timeline(meter)
    reader = _TimedReader(step_energy_reader(meter))
    loop = ServeLoop(
        _engine(cfg, p),
        p.input_ids,
        p.schedule["arrival_s"],
        cfg.scenario.max_concurrency,
        on_step=reader,
        sync=lambda: _sync(device),
    )
    node_start, own_start = node_snapshot(), own_cpu_s()
    window_start = time.perf_counter()
    served = loop.run()
    window_s = time.perf_counter() - window_start
    own_window_cpu_s = own_cpu_s() - own_start
    node_end = node_snapshot()
    samples = recorder.stop() if recorder is not None else None
    energy = meter.stop().to_dict()
    extra_energy = stop_extra_meters(extras)
    timeline_file = _timeline_file(task, acc)
    if samples is not None and timeline_file is not None:
        from joulebench.measure.timeline import timeline_rows, write_timeline

        rows = timeline_rows(samples, window_start, window_s, energy, baseline)
        write_timeline(timeline_file, rows)
    window: MeasuredWindow = {
        "window_s": window_s,
        "energy": energy,
        "extra_energy": extra_energy,
        "own_window_cpu_s": own_window_cpu_s,
        "node_cpu": {"start": node_start, "end": node_end},
    }
    record: ServingRecord = {
        "policy": DynamicBatcher.policy,
        "max_concurrency": cfg.scenario.max_concurrency,
        "schedule": p.schedule,
        "requests": served,
        "steps": loop.steps,
        "energy_read_per_step": reader.read is not None,
        "meter_reads_s": reader.seconds,
    }
    return window, record


def _decoded(tok: Any, served: list[ServedRequest]) -> list[str]:
    ordered = sorted(served, key=lambda r: r["index"])
    return list(tok.batch_decode([r["token_ids"] for r in ordered], skip_special_tokens=True))


def run_serving(task: dict[str, Any], acc: Any, device: str, models: ModelCache) -> RankRecord:
    """The worker's ``run`` for ``scenario.mode: serving`` (one process)."""
    import torch

    from joulebench.measure.flops import analytic_flops, linear_params
    from joulebench.measure.memory import peak_memory, reset_peak_memory

    cfg = ExperimentConfig.model_validate(task["config"])
    torch.manual_seed(cfg.seed)
    reset_peak_memory(device)
    p = _prepare(cfg, device, acc, models)
    thermal = cool_down_reading(cfg, device)
    baseline = idle_baseline_reading(cfg, device, task)
    _warm_up(cfg, device, p)
    window, serving = _serve_in_window(cfg, device, task, acc, p, baseline)
    served = serving["requests"]
    tokens = sum(r["input_tokens"] + r["output_tokens"] for r in served)
    return {
        "rank": 0,
        "local_rank": 0,
        "world_size": 1,
        "batch_size": cfg.scenario.max_concurrency,
        "host": socket.gethostname(),
        "device": device,
        "pid": os.getpid(),
        "torch_device": str(acc.device),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "batches": request_batches(served, _decoded(p.tok, served) if cfg.save_outputs else None),
        "resumed_batches": [],
        "outside_window_batches": [],
        **window,
        "load_s": p.phases_s["load"],
        "warmup_s": p.phases_s["warmup"],
        "model_reused": p.reused,
        "phases_s": {k: round(v, 4) for k, v in p.phases_s.items()},
        "baseline": baseline,
        "thermal": thermal,
        "gpus": gpu_inventory(device),
        "memory": peak_memory(device),
        "flops": {
            "analytic_total_flops": analytic_flops(p.model, tokens),
            "linear_params": linear_params(p.model),
            "analytic_method": "2 x linear weights x (input + output tokens)",
        },
        "dataset": {
            "name": cfg.dataset.name,
            "revision": cfg.dataset.revision,
            "prompt_hash": prompt_hash(p.prompts),
            "num_prompts": len(p.prompts),
        },
        "architecture": architecture(p.model),
        "serving": serving,
    }
