"""The script ``accelerate launch`` starts once per process: one experiment's workload.

Run as ``python -m joulebench.runner.worker TASK.json``. Each process writes
``rank_{r}.json`` into the task's work folder; the parent aggregates them. Energy is
sampled by local rank 0 only, around a window that spans every process's batches.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from joulebench.config.models import ExperimentConfig
from joulebench.errors import JoulebenchError
from joulebench.fsutil import atomic_write_json
from joulebench.runner.checkpoint import BatchCheckpoint
from joulebench.runner.launch import die_with_parent
from joulebench.runner.model import architecture, load_model_and_tokenizer, resolve_device
from joulebench.runner.prompts import batches, load_prompt_texts, prompt_hash, select_prompts, shard


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _step_clock() -> Any:
    """A streamer that only timestamps each generation step (prompt, then each token)."""
    from transformers.generation.streamers import BaseStreamer

    class StepClock(BaseStreamer):
        def __init__(self) -> None:
            self.times: list[float] = []

        def put(self, value: Any) -> None:
            self.times.append(time.perf_counter())

        def end(self) -> None:
            pass

    return StepClock()


def token_timing(times: list[float], start: float) -> dict[str, Any]:
    """TTFT, decode time and steps from the clock's timestamps (first one = the prompt)."""
    if len(times) < 2:
        return {}
    return {"ttft_s": times[1] - start, "decode_s": times[-1] - times[1],
            "decode_steps": len(times) - 2}


def generation_kwargs(cfg: ExperimentConfig, pad_token_id: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"max_new_tokens": cfg.max_output_tokens,
                              "min_new_tokens": cfg.min_output_tokens,
                              "pad_token_id": pad_token_id}
    if cfg.decoder.mode == "sampling":
        kwargs.update(do_sample=True, temperature=cfg.decoder.temperature,
                      top_k=cfg.decoder.top_k, top_p=cfg.decoder.top_p)
    else:
        kwargs["do_sample"] = False
    return kwargs


class Workload:
    """Model, tokenizer and this process's prompt batches, ready to generate."""

    def __init__(self, cfg: ExperimentConfig, device: str, accelerator: Any,
                 batch_size: int) -> None:
        self.cfg, self.device, self.acc = cfg, device, accelerator
        self.model, self.tok = load_model_and_tokenizer(cfg, device, accelerator.device)
        texts = load_prompt_texts(cfg.dataset)
        counts = [len(ids) for ids in self.tok(texts, add_special_tokens=True)["input_ids"]]
        self.prompts = select_prompts(texts, counts, cfg.num_prompts, cfg.max_input_tokens,
                                      cfg.dataset.name)
        mine = shard(self.prompts, accelerator.process_index, accelerator.num_processes)
        self.batches = batches(mine, batch_size)
        self.gen_kwargs = generation_kwargs(cfg, self.tok.pad_token_id)

    def encode(self, prompts: list[str]) -> Any:
        enc = self.tok(prompts, return_tensors="pt", padding=True, truncation=True,
                       max_length=self.cfg.max_input_tokens)
        return enc.to(self.acc.device)

    def generate(self, prompts: list[str]) -> dict[str, Any]:
        import torch

        enc = self.encode(prompts)
        clock = _step_clock() if self.cfg.token_timing else None
        _sync(self.device)
        start = time.perf_counter()
        with torch.no_grad():
            out = self.model.generate(**enc, **self.gen_kwargs, streamer=clock)
        _sync(self.device)
        latency_s = time.perf_counter() - start
        new = out[:, enc["input_ids"].shape[1]:]
        record: dict[str, Any] = {
            "num_prompts": len(prompts),
            "input_tokens": int(enc["attention_mask"].sum()),
            "output_tokens": int((new != self.tok.pad_token_id).sum()),
            "latency_s": latency_s,
            **(token_timing(clock.times, start) if clock is not None else {}),
        }
        if self.cfg.save_outputs:
            record["texts"] = self.tok.batch_decode(new, skip_special_tokens=True)
            record["token_ids"] = new.tolist()
        return record


def _baseline(cfg: ExperimentConfig, device: str, task: dict[str, Any]) -> dict[str, Any] | None:
    from joulebench.measure.baseline import idle_baseline
    from joulebench.measure.factory import make_meter

    if cfg.idle_baseline_s <= 0 or not task.get("baseline_cache_dir"):
        return None
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "all") if device == "cuda" else "cpu"
    meter_name = make_meter(cfg.energy_meter, device=device).name
    return idle_baseline(lambda: make_meter(cfg.energy_meter, device=device), meter_name,
                         devices, Path(task["baseline_cache_dir"]), cfg.idle_baseline_s,
                         cfg.idle_baseline_max_age_s)


def _start_extra_meters(cfg: ExperimentConfig, device: str) -> dict[str, Any]:
    """Extra meters share the window; one that cannot start is reported, not fatal."""
    from joulebench.errors import MeasureError
    from joulebench.measure.factory import make_meter

    started: dict[str, Any] = {}
    for name in cfg.extra_meters:
        try:
            extra = make_meter(name, device=device)
            extra.start()
            started[name] = extra
        except MeasureError as exc:
            started[name] = str(exc)
    return started


def _stop_extra_meters(extras: dict[str, Any]) -> dict[str, Any]:
    from joulebench.errors import MeasureError

    out: dict[str, Any] = {}
    for name, extra in extras.items():
        if isinstance(extra, str):
            out[name] = {"unavailable": extra}
            continue
        try:
            out[name] = extra.stop().to_dict()
        except MeasureError as exc:
            out[name] = {"unavailable": str(exc)}
    return out


def _gpu_inventory(device: str) -> dict[str, Any] | None:
    """Provenance of the node's GPUs, whichever meter runs; None off CUDA or without NVML."""
    if device != "cuda":
        return None
    from joulebench.errors import MeasureError
    from joulebench.measure.nvml_devices import visible_gpu_inventory

    try:
        return visible_gpu_inventory()
    except MeasureError as exc:
        return {"unavailable": str(exc)}


def _cool_down(cfg: ExperimentConfig, device: str) -> dict[str, Any]:
    """Start temperature always; the wait only when cooldown_temp_c is set."""
    from joulebench.measure.thermal import cool_down, cpu_temperatures_c, gpu_temperatures_c

    read = gpu_temperatures_c if device == "cuda" else cpu_temperatures_c
    return {"sensor": "nvml" if device == "cuda" else "thermal_zone",
            **cool_down(read, cfg.cooldown_temp_c, cfg.cooldown_max_wait_s)}


def run(task: dict[str, Any]) -> dict[str, Any]:
    import torch
    from accelerate import Accelerator

    from joulebench.measure.factory import make_meter
    from joulebench.measure.flops import analytic_flops, counted_prefill_flops, linear_params
    from joulebench.measure.memory import peak_memory

    cfg = ExperimentConfig.model_validate(task["config"])
    device = resolve_device(cfg.device)
    acc = Accelerator(cpu=device == "cpu")
    rank, world, local_rank = acc.process_index, acc.num_processes, acc.local_process_index
    torch.manual_seed(cfg.seed + rank)
    work = Path(task["work_dir"])
    load_start = time.perf_counter()
    batch_size = int(task.get("batch_size") or cfg.batch_size)
    wl = Workload(cfg, device, acc, batch_size)
    load_s = time.perf_counter() - load_start
    ckpt = BatchCheckpoint.open(work / f"ckpt_rank{rank}.json", experiment_id=task["experiment_id"],
                                config_hash=task["config_hash"], world_size=world, rank=rank,
                                batch_size=batch_size)
    thermal = _cool_down(cfg, device) if local_rank == 0 else None
    node_baseline = _baseline(cfg, device, task) if local_rank == 0 else None
    acc.wait_for_everyone()  # the other processes stay idle while the node's baseline runs
    warm_start = time.perf_counter()
    for _ in range(cfg.warmup_iterations if wl.batches else 0):
        wl.generate(wl.batches[0])
    warmup_s = time.perf_counter() - warm_start
    flops = (counted_prefill_flops(wl.model, dict(wl.encode(wl.batches[0])))
             if cfg.count_flops and rank == 0 and wl.batches else None)
    meter = make_meter(cfg.energy_meter, device=device) if local_rank == 0 else None
    extras = _start_extra_meters(cfg, device) if local_rank == 0 else {}
    if meter is not None:
        meter.start()  # before the barrier: a slow meter start must not skew the window
    acc.wait_for_everyone()
    # Steady state (ML.ENERGY style): only full batches run inside the window; a short
    # last batch would measure a half-empty device, so it runs after the window closes.
    outside = [i for i, b in enumerate(wl.batches)
               if cfg.steady_state and len(b) < batch_size]
    window_start = time.perf_counter()
    for index, prompts in enumerate(wl.batches):
        if index not in outside and not ckpt.done(index):
            ckpt.add(index, wl.generate(prompts))
    _sync(device)
    acc.wait_for_everyone()  # the node's window closes when its last process finishes
    window_s = time.perf_counter() - window_start
    energy = meter.stop().to_dict() if meter is not None else None
    extra_energy = _stop_extra_meters(extras)
    for index in outside:
        if not ckpt.done(index):
            ckpt.add(index, wl.generate(wl.batches[index]))
    tokens = sum(b["input_tokens"] + b["output_tokens"] for b in ckpt.batches.values())
    return {
        "rank": rank, "local_rank": local_rank, "world_size": world, "batch_size": batch_size,
        "host": socket.gethostname(), "device": device, "pid": os.getpid(),
        "torch_device": str(acc.device),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "batches": {str(k): v for k, v in sorted(ckpt.batches.items())},
        "resumed_batches": sorted(ckpt.resumed_indices),
        "outside_window_batches": outside,
        "window_s": window_s, "load_s": load_s, "warmup_s": warmup_s,
        "energy": energy,
        "extra_energy": extra_energy,
        "baseline": node_baseline,
        "thermal": thermal,
        "gpus": _gpu_inventory(device) if local_rank == 0 else None,
        "memory": peak_memory(device),
        "flops": {"analytic_total_flops": analytic_flops(wl.model, tokens),
                  "linear_params": linear_params(wl.model),
                  "analytic_method": "2 x linear weights x (input + output tokens)",
                  **(flops or {})},
        "dataset": {"name": cfg.dataset.name, "revision": cfg.dataset.revision,
                    "prompt_hash": prompt_hash(wl.prompts), "num_prompts": len(wl.prompts)},
        "architecture": architecture(wl.model) if rank == 0 else None,
    }


def _failure(exc: BaseException) -> dict[str, Any]:
    text = f"{type(exc).__name__}: {exc}"
    oom = "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"
    return {"type": type(exc).__name__, "message": str(exc).splitlines()[0][:500] if str(exc)
            else text, "cause": "oom" if oom else "code_error",
            "user_error": isinstance(exc, JoulebenchError), "traceback": traceback.format_exc()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    die_with_parent()
    task = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    work = Path(task["work_dir"])
    rank = int(os.environ.get("RANK", "0"))
    try:
        result = run(task)
    except BaseException as exc:  # report why to the parent, then fail loudly
        atomic_write_json(work / f"error_rank{rank}.json", _failure(exc))
        raise
    atomic_write_json(work / f"rank_{result['rank']}.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
