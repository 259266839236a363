"""The script ``accelerate launch`` starts once per process: experiments' workloads.

Run as ``python -m joulebench.runner.worker --serve SOCKET DEVICE``. Each process connects
to the parent's socket, then runs one task file per line it receives, writing
``rank_{r}.json`` (a ``results.records.RankRecord``; or ``error_rank{r}.json``) into that
task's work folder; the parent aggregates them. The model stays loaded while the next
task asks for the same one (:class:`ModelCache`). Energy is sampled by local rank 0
only, around a window that spans every process's batches.
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
from joulebench.config.parallelism import TENSOR, counts_tokens, gpus_per_process, splits_prompts
from joulebench.errors import JoulebenchError
from joulebench.fsutil import atomic_write_json
from joulebench.results.records import BatchRecord, MeasuredWindow, RankRecord
from joulebench.runner.checkpoint import BatchCheckpoint, agree_on_shared_checkpoint
from joulebench.runner.experiment import cause_of
from joulebench.runner.launch import die_with_parent
from joulebench.runner.model import ModelCache, architecture
from joulebench.runner.node_readings import (
    boot_id,
    cool_down_reading,
    gpu_inventory,
    idle_baseline_reading,
    start_extra_meters,
    stop_extra_meters,
)
from joulebench.runner.prefill_window import prefill_window, wants_prefill_split
from joulebench.runner.prompts import (
    batches,
    load_prompt_texts,
    prompt_hash,
    prompt_token_counts,
    select_prompts,
    shard,
)
from joulebench.runner.step_clock import step_clock, token_timing
from joulebench.tracker.state import OOM


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def generation_kwargs(cfg: ExperimentConfig, pad_token_id: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "max_new_tokens": cfg.max_output_tokens,
        "min_new_tokens": cfg.min_output_tokens,
        "pad_token_id": pad_token_id,
    }
    if cfg.decoder.mode == "sampling":
        kwargs.update(
            do_sample=True,
            temperature=cfg.decoder.temperature,
            top_k=cfg.decoder.top_k,
            top_p=cfg.decoder.top_p,
        )
    else:
        kwargs["do_sample"] = False
    return kwargs


class Workload:
    """Model, tokenizer and this process's prompt batches, ready to generate."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        device: str,
        accelerator: Any,
        batch_size: int,
        model_and_tokenizer: tuple[Any, Any],
    ) -> None:
        self.cfg, self.device, self.acc = cfg, device, accelerator
        self.model, self.tok = model_and_tokenizer
        texts = load_prompt_texts(cfg.dataset)
        counts = prompt_token_counts(self.tok, texts)
        self.prompts = select_prompts(
            texts, counts, cfg.num_prompts, cfg.max_input_tokens, cfg.dataset.name
        )
        mine = (
            shard(self.prompts, accelerator.process_index, accelerator.num_processes)
            if splits_prompts(cfg.parallelism)
            else self.prompts  # tensor: every rank runs every batch on its shard
        )
        self.batches = batches(mine, batch_size)
        self.keeps_outputs = cfg.save_outputs and counts_tokens(
            cfg.parallelism, accelerator.process_index
        )
        self.gen_kwargs = generation_kwargs(cfg, self.tok.pad_token_id)

    def encode(self, prompts: list[str]) -> Any:
        enc = self.tok(
            prompts,
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.cfg.max_input_tokens,
        )
        return enc.to(self.acc.device)

    def generate(self, prompts: list[str], enc: Any = None) -> BatchRecord:
        import torch
        from transformers import StoppingCriteriaList

        enc = self.encode(prompts) if enc is None else enc
        clock = (
            step_clock(self.device, self.cfg.max_output_tokens) if self.cfg.token_timing else None
        )
        extra = {"stopping_criteria": StoppingCriteriaList([clock])} if clock is not None else {}
        _sync(self.device)
        start = time.perf_counter()
        if clock is not None:
            clock.start()
        with torch.no_grad():
            out = self.model.generate(**enc, **self.gen_kwargs, **extra)
        _sync(self.device)
        latency_s = time.perf_counter() - start
        new = out[:, enc["input_ids"].shape[1] :]
        record: BatchRecord = {
            "num_prompts": len(prompts),
            "input_tokens": int(enc["attention_mask"].sum()),
            "output_tokens": int((new != self.tok.pad_token_id).sum()),
            "latency_s": latency_s,
            **(token_timing(clock.times(start), start, clock.kind) if clock is not None else {}),
        }
        if self.keeps_outputs:
            record["texts"] = self.tok.batch_decode(new, skip_special_tokens=True)
            record["token_ids"] = new.tolist()
        return record


class _Phases:
    """Seconds spent in each fixed-cost step of an experiment, for the setup file."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now


def run(task: dict[str, Any], acc: Any, device: str, models: ModelCache) -> RankRecord:
    import torch

    from joulebench.measure.flops import counted_prefill_flops
    from joulebench.measure.memory import peak_memory, reset_peak_memory

    cfg = ExperimentConfig.model_validate(task["config"])
    if cfg.scenario.serving:  # requests arriving over time: runner.serving_run
        from joulebench.runner.serving_run import run_serving

        return run_serving(task, acc, device, models)
    rank, world, local_rank = acc.process_index, acc.num_processes, acc.local_process_index
    # Tensor ranks must draw the same samples: they decode one sequence together.
    torch.manual_seed(cfg.seed + (rank if splits_prompts(cfg.parallelism) else 0))
    gpus = gpus_per_process(cfg.parallelism, cfg.num_processes)  # pipeline: all of them
    reset_peak_memory(device, gpus)  # this experiment's peak, not an earlier one's here
    work = Path(task["work_dir"])
    phases = _Phases()
    batch_size = int(task.get("batch_size") or cfg.batch_size)
    loaded, reused = models.get(cfg, device, acc.device)
    phases.mark("load")
    wl = Workload(cfg, device, acc, batch_size, loaded)
    phases.mark("prompts")
    ckpt_rank = 0 if cfg.parallelism == TENSOR else rank  # tensor: rank 0's file, shared
    ckpt = BatchCheckpoint.open(
        work / f"ckpt_rank{ckpt_rank}.json",
        experiment_id=task["experiment_id"],
        config_hash=task["config_hash"],
        world_size=world,
        rank=ckpt_rank,
        batch_size=batch_size,
        parallelism=cfg.parallelism,
        writes=ckpt_rank == rank,
    )
    if cfg.parallelism == TENSOR:
        agree_on_shared_checkpoint(ckpt, world)
    thermal = cool_down_reading(cfg, device) if local_rank == 0 else None
    node_baseline = idle_baseline_reading(cfg, device, task) if local_rank == 0 else None
    acc.wait_for_everyone()  # the other processes stay idle while the node's baseline runs
    phases.mark("baseline")
    for _ in range(cfg.warmup_iterations if wl.batches else 0):
        wl.generate(wl.batches[0])
    phases.mark("warmup")
    # A tensor-parallel forward is collective: every rank runs the counted pass, rank 0's
    # count (its shard) is kept. Otherwise rank 0 counts alone.
    counting = cfg.count_flops and wl.batches and (rank == 0 or cfg.parallelism == TENSOR)
    flops = counted_prefill_flops(wl.model, dict(wl.encode(wl.batches[0]))) if counting else None
    flops = flops if rank == 0 else None
    phases.mark("flops")
    # Steady state (ML.ENERGY style): only full batches run inside the window; a short
    # last batch would measure a half-empty device, so it runs after the window closes.
    outside = [i for i, b in enumerate(wl.batches) if cfg.steady_state and len(b) < batch_size]
    measured = [i for i in range(len(wl.batches)) if i not in outside and not ckpt.done(i)]
    window = _measured_window(wl, ckpt, outside, phases, _timeline_file(task, acc), node_baseline)
    extras: dict[str, Any] = {}
    if measured and wants_prefill_split(cfg, device):
        extras["prefill"] = prefill_window(wl, measured)
        phases.mark("prefill_window")
    for index in outside:
        if not ckpt.done(index):
            ckpt.add(index, wl.generate(wl.batches[index]))
    phases.mark("outside_window")
    return {
        "rank": rank,
        "local_rank": local_rank,
        "world_size": world,
        "parallelism": cfg.parallelism,
        "batch_size": batch_size,
        "host": socket.gethostname(),
        "device": device,
        "pid": os.getpid(),
        "torch_device": str(acc.device),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "batches": {str(k): v for k, v in sorted(ckpt.batches.items())},
        "resumed_batches": sorted(ckpt.resumed_indices),
        "outside_window_batches": outside,
        **window,
        "load_s": phases.seconds["load"],
        "warmup_s": phases.seconds["warmup"],
        "model_reused": reused,
        "phases_s": {k: round(v, 4) for k, v in phases.seconds.items() if k != "window"},
        "baseline": node_baseline,
        "thermal": thermal,
        "gpus": gpu_inventory(device) if local_rank == 0 else None,
        "memory": peak_memory(device, gpus),
        "flops": _flops(wl, ckpt, flops),
        "dataset": {
            "name": cfg.dataset.name,
            "revision": cfg.dataset.revision,
            "prompt_hash": prompt_hash(wl.prompts),
            "num_prompts": len(wl.prompts),
        },
        "architecture": architecture(wl.model) if rank == 0 else None,
        **extras,  # type: ignore[typeddict-item]
        "boot_id": boot_id() if local_rank == 0 else None,
    }


def _measured_window(
    wl: Workload,
    ckpt: BatchCheckpoint,
    outside: list[int],
    phases: _Phases,
    timeline_file: Path | None = None,
    baseline: dict[str, Any] | None = None,
) -> MeasuredWindow:
    """Generate every batch not yet done inside one timed, metered window (all processes
    of the node between two barriers); window_s and local rank 0's energy readings."""
    from joulebench.measure.factory import make_meter
    from joulebench.measure.host_load import node_snapshot, own_cpu_s

    cfg, device, acc = wl.cfg, wl.device, wl.acc
    todo = [i for i in range(len(wl.batches)) if i not in outside and not ckpt.done(i)]
    # Tokenized before the meters start (as in the bare loop it is compared with), so the
    # window and the energy cover generation; each is freed once its batch has run.
    encoded = {i: wl.encode(wl.batches[i]) for i in todo}
    first_on_node = acc.local_process_index == 0
    meter = make_meter(cfg.energy_meter, device=device) if first_on_node else None
    extras = start_extra_meters(cfg, device) if first_on_node else {}
    if meter is not None:
        meter.start()  # before the barrier: a slow meter start must not skew the window
    recorder = _start_timeline(meter)
    acc.wait_for_everyone()
    phases.mark("meter_start")
    # Who else used the node's CPUs in the window: its counters at both ends (rank 0 of
    # the node) and each process's own CPU time, read just outside the timed span.
    node_start = node_snapshot() if first_on_node else None
    own_start = own_cpu_s()
    window_start = time.perf_counter()
    with ckpt.behind():  # checkpoint fsyncs off the timed path
        for index in todo:
            ckpt.add(index, wl.generate(wl.batches[index], encoded.pop(index)))
        _sync(device)
        acc.wait_for_everyone()  # the node's window closes when its last process finishes
        window_s = time.perf_counter() - window_start
        own_window_cpu_s = own_cpu_s() - own_start
        node_end = node_snapshot() if first_on_node else None
        phases.mark("window")
        # Meters stop before the last checkpoint write is flushed: its fsyncs are not
        # part of what the window measures.
        samples = recorder.stop() if recorder is not None else None
        energy = meter.stop().to_dict() if meter is not None else None
        extra_energy = stop_extra_meters(extras)
    phases.mark("meter_stop")
    if samples is not None and timeline_file is not None:
        from joulebench.measure.timeline import timeline_rows, write_timeline

        write_timeline(
            timeline_file, timeline_rows(samples, window_start, window_s, energy, baseline)
        )
    return {
        "window_s": window_s,
        "energy": energy,
        "extra_energy": extra_energy,
        "own_window_cpu_s": own_window_cpu_s,
        "node_cpu": {"start": node_start, "end": node_end} if first_on_node else None,
    }


def _start_timeline(meter: Any) -> Any:
    """A recorder polling the meter's probe(), for meters that can be read mid-window."""
    from joulebench.measure.timeline import TimelineRecorder

    if meter is None or not hasattr(meter, "probe"):
        return None
    recorder = TimelineRecorder(meter.probe)
    recorder.start()
    return recorder


def _timeline_file(task: dict[str, Any], acc: Any) -> Path | None:
    """Where this node's power timeline goes: beside the result files (the work folder's
    parent); the first node's is ``{id}_9_power_timeline.csv``, any other node's carries
    its host name, so nodes sharing a file system never write the same file."""
    from joulebench.measure.timeline import TIMELINE_SUFFIX, timeline_path

    if acc.local_process_index != 0:
        return None
    folder, experiment_id = Path(task["work_dir"]).parent, task["experiment_id"]
    if acc.process_index == 0:
        return timeline_path(folder, experiment_id)
    stem = TIMELINE_SUFFIX.removesuffix(".csv")
    return folder / f"{experiment_id}_{stem}_{socket.gethostname()}.csv"


def _flops(wl: Workload, ckpt: BatchCheckpoint, counted: dict[str, Any] | None) -> dict[str, Any]:
    from joulebench.measure.flops import analytic_flops, linear_params

    tokens = sum(b["input_tokens"] + b["output_tokens"] for b in ckpt.batches.values())
    return {
        "analytic_total_flops": analytic_flops(wl.model, tokens),
        "linear_params": linear_params(wl.model),
        "analytic_method": "2 x linear weights x (input + output tokens)",
        **(counted or {}),
    }


def _failure(exc: BaseException) -> dict[str, Any]:
    text = f"{type(exc).__name__}: {exc}"
    oom = "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"
    return {
        "type": type(exc).__name__,
        "message": str(exc).splitlines()[0][:500] if str(exc) else text,
        "cause": OOM if oom else cause_of(exc),
        "user_error": isinstance(exc, JoulebenchError),
        "traceback": traceback.format_exc(),
    }


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _output_to(path: Path) -> tuple[int, int]:
    """Point this process's stdout/stderr at ``path``; returns the old fds to restore."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return saved


def _restore_output(saved: tuple[int, int]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    for target, fd in zip((1, 2), saved, strict=True):
        os.dup2(fd, target)
        os.close(fd)


def run_one(task_path: Path, acc: Any, device: str, models: ModelCache) -> None:
    """One experiment in this process; its output goes to the task's ``workers.log``.

    A failure is written for the parent and then re-raised, so the whole worker group
    ends: the other processes may be waiting in a collective this one will never join.
    """
    task = json.loads(task_path.read_text(encoding="utf-8"))
    work = Path(task["work_dir"])
    saved = _output_to(work / "workers.log")
    try:
        result = run(task, acc, device, models)
    except BaseException as exc:
        atomic_write_json(work / f"error_rank{acc.process_index}.json", _failure(exc))
        traceback.print_exc()  # into this experiment's log, not only the launcher's
        raise
    finally:
        _restore_output(saved)
    atomic_write_json(work / f"rank_{result['rank']}.json", result)


def serve(address: str, device: str) -> int:
    """Run the tasks the parent sends, one at a time, until it says stop or goes away."""
    from accelerate import Accelerator

    acc = Accelerator(cpu=device == "cpu")
    models = ModelCache()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(address)
        _send(conn, {"rank": acc.process_index, "pid": os.getpid()})
        for line in conn.makefile("rb"):  # blocks in the kernel between tasks
            message = json.loads(line)
            if message.get("stop"):
                break
            run_one(Path(message["task"]), acc, device, models)
            _send(conn, {"done": message["task"]})
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    die_with_parent()
    if len(args) != 3 or args[0] != "--serve":
        print("usage: python -m joulebench.runner.worker --serve SOCKET DEVICE", file=sys.stderr)
        return 2
    return serve(args[1], args[2])


if __name__ == "__main__":
    sys.exit(main())
