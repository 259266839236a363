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
from typing import Any

from joulebench.config.models import ExperimentConfig
from joulebench.measure.apportion import COUNTER_RESOLUTION_S
from joulebench.results.records import BatchRecord, RankRecord, ServedRequest, ServingRecord
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


def request_batches(requests: list[ServedRequest], texts: list[str] | None) -> dict[str, Any]:
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
        if texts is not None:
            record["texts"] = [texts[r["index"]]]
            record["token_ids"] = [r["token_ids"]]
        out[str(r["index"])] = record
    return out


def run_serving(task: dict[str, Any], acc: Any, device: str, models: ModelCache) -> RankRecord:
    import torch

    from joulebench.measure.factory import make_meter
    from joulebench.measure.flops import analytic_flops, linear_params
    from joulebench.measure.host_load import node_snapshot, own_cpu_s
    from joulebench.measure.memory import peak_memory, reset_peak_memory

    cfg = ExperimentConfig.model_validate(task["config"])
    sc = cfg.scenario
    torch.manual_seed(cfg.seed)
    reset_peak_memory(device)
    phases: dict[str, float] = {}
    mark = time.perf_counter()
    (model, tok), reused = models.get(cfg, device, acc.device)
    phases["load"] = time.perf_counter() - mark
    texts = load_prompt_texts(cfg.dataset)
    prompts = select_prompts(
        texts,
        prompt_token_counts(tok, texts),
        sc.num_requests,
        cfg.max_input_tokens,
        cfg.dataset.name,
    )
    input_ids = [
        tok(p, truncation=True, max_length=cfg.max_input_tokens)["input_ids"] for p in prompts
    ]
    schedule = arrival_schedule(
        sc.arrival, sc.request_rate, sc.num_requests, cfg.seed, prompt_hash(prompts)
    )
    thermal = cool_down_reading(cfg, device)
    baseline = idle_baseline_reading(cfg, device, task)
    mark = time.perf_counter()
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    how = sampling(cfg, tok.eos_token_id)
    sync: Callable[[], None] = lambda: _sync(device)  # noqa: E731
    for _ in range(cfg.warmup_iterations):
        few = input_ids[: min(2, len(input_ids))]
        ServeLoop(DynamicBatcher(model, pad, how), few, [0.0] * len(few), 2, sync=sync).run()
    phases["warmup"] = time.perf_counter() - mark
    meter = make_meter(cfg.energy_meter, device=device)
    extras = start_extra_meters(cfg, device)
    meter.start()
    recorder = _start_timeline(meter)
    reader = _TimedReader(step_energy_reader(meter))
    loop = ServeLoop(
        DynamicBatcher(model, pad, how),
        input_ids,
        schedule["arrival_s"],
        sc.max_concurrency,
        on_step=reader,
        sync=sync,
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

        write_timeline(
            timeline_file, timeline_rows(samples, window_start, window_s, energy, baseline)
        )
    serving: ServingRecord = {
        "policy": DynamicBatcher.policy,
        "max_concurrency": sc.max_concurrency,
        "schedule": schedule,
        "requests": served,
        "steps": loop.steps,
        "energy_read_per_step": reader.read is not None,
        "meter_reads_s": reader.seconds,
    }
    tokens = sum(r["input_tokens"] + r["output_tokens"] for r in served)
    return {
        "rank": 0,
        "local_rank": 0,
        "world_size": 1,
        "batch_size": sc.max_concurrency,
        "host": socket.gethostname(),
        "device": device,
        "pid": os.getpid(),
        "torch_device": str(acc.device),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "batches": request_batches(served, prompts if cfg.save_outputs else None),
        "resumed_batches": [],
        "outside_window_batches": [],
        "window_s": window_s,
        "energy": energy,
        "extra_energy": extra_energy,
        "own_window_cpu_s": own_window_cpu_s,
        "node_cpu": {"start": node_start, "end": node_end},
        "load_s": phases["load"],
        "warmup_s": phases["warmup"],
        "model_reused": reused,
        "phases_s": {k: round(v, 4) for k, v in phases.items()},
        "baseline": baseline,
        "thermal": thermal,
        "gpus": gpu_inventory(device),
        "memory": peak_memory(device),
        "flops": {
            "analytic_total_flops": analytic_flops(model, tokens),
            "linear_params": linear_params(model),
            "analytic_method": "2 x linear weights x (input + output tokens)",
        },
        "dataset": {
            "name": cfg.dataset.name,
            "revision": cfg.dataset.revision,
            "prompt_hash": prompt_hash(prompts),
            "num_prompts": len(prompts),
        },
        "architecture": architecture(model),
        "serving": serving,
    }
