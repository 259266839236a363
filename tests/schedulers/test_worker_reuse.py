"""Consecutive experiments of one shape share launched workers and a loaded model.

Real accelerate processes and the tiny model; launches are counted on the job's
WorkerPools, and the workers' PIDs in each experiment's results show who ran it.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from joulebench.config.models import ExperimentConfig
from joulebench.paths import Paths
from joulebench.runner.experiment import run_workers
from joulebench.runner.pool import WorkerPools
from joulebench.schedulers import job
from joulebench.suite import load_and_expand
from joulebench.tracker import DONE, FAILED, ProgressTracker
from tests.conftest import write_suite

pytestmark = pytest.mark.e2e

SHARED = """
models: [tiny-demo]
shuffle: false
overrides:
  num_processes: {processes}
  num_prompts: 8
  batch_size: 4
  max_input_tokens: 64
  max_output_tokens: 8
  min_output_tokens: 8
  warmup_iterations: 1
  energy_meter: codecarbon
  idle_baseline_s: 0
  count_flops: false
  max_retries: 0
configs:
{configs}
"""


def specs_of(checkout: Path, processes: int, configs: str) -> list:
    write_suite(checkout, "reuse", SHARED.format(processes=processes, configs=configs))
    return load_and_expand("reuse", 1, checkout / "configs")


def rows(checkout: Path) -> list[dict[str, str]]:
    with (checkout / "results" / "text_generation_results.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def worker_pids(checkout: Path, experiment_id: str) -> list[int]:
    work = checkout / "results" / "raw_results" / experiment_id / ".work"
    return [json.loads(p.read_text())["pid"] for p in sorted(work.glob("rank_*.json"))]


def setup_timing(checkout: Path, experiment_id: str) -> dict:
    path = (
        checkout
        / "results"
        / "raw_results"
        / experiment_id
        / f"{experiment_id}_1_experiment_setup.json"
    )
    return json.loads(path.read_text())["timing"]


def run_job(checkout: Path, specs: list) -> tuple[list[job.TaskOutcome], WorkerPools]:
    paths = Paths(tracker_dir=checkout / "trk", results_dir=checkout / "results")
    ProgressTracker(paths.tracker_dir).register("reuse", [(s.key, s.config_hash) for s in specs])
    with WorkerPools() as pools:
        outcomes = job.run_tasks(specs, paths, pools=pools)
    return outcomes, pools


def test_one_launch_runs_every_experiment_of_a_shape_each_with_its_own_results(
    checkout: Path,
) -> None:
    specs = specs_of(
        checkout,
        1,
        "  a: {}\n  b: {num_prompts: 12}\n  c: {seed: 7}\n  half: {precision: bfloat16}\n",
    )
    outcomes, pools = run_job(checkout, specs)
    assert [o.status for o in outcomes] == ["done"] * 4
    assert pools.launches == 1  # one process group runs them all, bfloat16 too
    got = rows(checkout)
    assert [(r["config_name"], r["experiment_id"]) for r in got] == [
        ("a", "0001"),
        ("b", "0002"),
        ("c", "0003"),
        ("half", "0004"),
    ]
    assert [r["num_prompts"] for r in got] == ["8", "12", "8", "8"]
    assert [r["precision"] for r in got] == ["float32"] * 3 + ["bfloat16"]
    assert (
        worker_pids(checkout, "0001")
        == worker_pids(checkout, "0002")
        == worker_pids(checkout, "0003")
        == worker_pids(checkout, "0004")
    )
    timing = [setup_timing(checkout, f"{i:04d}") for i in range(1, 5)]
    assert [t["workers_reused"] for t in timing] == [False, True, True, True]
    # The bfloat16 experiment reloads the model in the same workers, in its own dtype.
    assert [t["model_reused"] for t in timing] == [False, True, True, False]
    arch = json.loads(
        (
            checkout / "results" / "raw_results" / "0004" / "0004_3_model_architecture.json"
        ).read_text()
    )
    assert arch["dtype"] == "bfloat16"
    assert timing[1]["phases_s_max"]["load"] < timing[0]["phases_s_max"]["load"]
    for i in range(1, 5):  # every experiment still warms up and writes all its files
        folder = checkout / "results" / "raw_results" / f"{i:04d}"
        assert len(list(folder.glob(f"{i:04d}_*.json"))) == 9
        assert timing[i - 1]["warmup_s_max"] > 0
    state = ProgressTracker(checkout / "trk").read()
    assert all(state.keys[s.key].state == DONE for s in specs)


def test_a_failing_experiment_between_two_good_ones_loses_neither(checkout: Path) -> None:
    (checkout / "bad.jsonl").write_text('{"text": "no prompt column here"}\n')
    specs = specs_of(
        checkout, 2, "  a: {}\n  bad: {dataset: {name: bad.jsonl, text_field: prompt}}\n  c: {}\n"
    )
    outcomes, pools = run_job(checkout, specs)
    assert [o.status for o in outcomes] == ["done", "failed", "done"]
    assert outcomes[1].cause == "config_error" and "text_field" in (outcomes[1].message or "")
    assert pools.launches == 2  # the failure ended its workers; c got fresh ones
    assert [(r["config_name"], r["experiment_id"]) for r in rows(checkout)] == [
        ("a", "0001"),
        ("c", "0003"),
    ]
    assert worker_pids(checkout, "0001") != worker_pids(checkout, "0003")
    state = ProgressTracker(checkout / "trk").read()
    assert [state.keys[s.key].state for s in specs] == [DONE, FAILED, DONE]
    with (checkout / "results" / "failed_experiments.csv").open(newline="") as handle:
        failed = list(csv.DictReader(handle))
    assert [(f["experiment_id"], f["cause"]) for f in failed] == [("0002", "config_error")]
    log = checkout / "results" / "raw_results" / "0002" / ".work" / "workers.log"
    assert "text_field" in log.read_text()  # each experiment's worker output stays apart


def test_parent_sleeps_while_reused_workers_run(checkout: Path) -> None:
    config = ExperimentConfig(
        model="models/tiny-llama",
        device="cpu",
        num_processes=1,
        num_prompts=32,
        batch_size=4,
        max_input_tokens=64,
        max_output_tokens=64,
        min_output_tokens=64,
        warmup_iterations=0,
        energy_meter="codecarbon",
        idle_baseline_s=0,
        count_flops=False,
        save_outputs=False,
    )
    with WorkerPools() as pools:
        run_workers(config, "0001", config.config_hash(), checkout / "w1", pools=pools)
        wall, cpu = time.perf_counter(), time.process_time()
        raw = run_workers(config, "0002", config.config_hash(), checkout / "w2", pools=pools)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert raw.workers_launch_s == 0.0 and pools.launches == 1
    assert wall > 0.5, "too short to tell sleeping from polling; raise the workload"
    assert cpu < 0.05 * wall, (cpu, wall)  # blocked in select, not polling


def test_model_cache_frees_the_previous_model_before_loading_another(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import weakref

    import torch

    from joulebench.runner import model as loading

    cache = loading.ModelCache()
    fp32 = ExperimentConfig(model=str(tiny_model), device="cpu")
    (model, _), reused = cache.get(fp32, "cpu", torch.device("cpu"))
    assert reused is False
    old = weakref.ref(model)
    del model
    alive_at_load: list[bool] = []
    real_load = loading.load_model_and_tokenizer
    monkeypatch.setattr(
        loading,
        "load_model_and_tokenizer",
        lambda *a: (alive_at_load.append(old() is not None), real_load(*a))[1],
    )
    (half, _), reused = cache.get(
        fp32.model_copy(update={"precision": "bfloat16"}), "cpu", torch.device("cpu")
    )
    assert reused is False and next(half.parameters()).dtype == torch.bfloat16
    assert alive_at_load == [False]  # gone before the next one was loaded
    assert (
        cache.get(fp32.model_copy(update={"precision": "bfloat16"}), "cpu", torch.device("cpu"))[1]
        is True
    )
