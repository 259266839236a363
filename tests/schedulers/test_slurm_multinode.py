"""Experiments over two nodes on a real 2-node Slurm (`slurm/dev-cluster/up --nodes 2`).

Each node is a slurmd in its own network and UTS namespace (hosts jbn1 and jbn2 on a
bridge), so a 2-node job really spans two network stacks and the accelerate rendezvous
goes over the bridge. The 2-node cluster has its own state dir, ports and cluster name and
runs beside the single-node one: this module points SLURM_CONF at it for its own tests
only and leaves the default cluster (/etc/slurm) alone. With JB_SLURM set (CI) the module
starts it itself and stops it afterwards; without, it uses a running one or skips.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from joulebench import api
from joulebench.config.models import ExperimentConfig
from joulebench.runner.experiment import run_workers
from joulebench.schedulers.slurm import query_sacct
from joulebench.tracker import ProgressTracker
from tests.conftest import REPO, finished_batches, write_suite
from tests.conftest import wait_for as shared_wait_for

pytestmark = [pytest.mark.slurm]

DEV = REPO / "slurm" / "dev-cluster"
CONF = Path(os.environ.get("JB_SLURM_2N_STATE", "/tmp/joulebench-slurm-2n")) / "etc" / "slurm.conf"
TRACKER = "persistent_progress_trackers"


def _answers() -> bool:
    env = {**os.environ, "SLURM_CONF": str(CONF)}
    try:
        done = subprocess.run(
            ["sinfo", "-h", "-t", "idle,mixed,allocated", "-N", "-o", "%N"],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and len(set(done.stdout.split())) >= 2


@pytest.fixture(scope="module", autouse=True)
def two_node_cluster() -> Iterator[None]:
    """The 2-node cluster for this module; SLURM_CONF points at it meanwhile."""
    started = False
    if not _answers():
        if not os.environ.get("JB_SLURM"):
            pytest.skip("no 2-node Slurm: slurm/dev-cluster/up --nodes 2 as root, or JB_SLURM=1")
        up = subprocess.run(
            [str(DEV / "up"), "--nodes", "2"], capture_output=True, text=True, timeout=900
        )
        assert up.returncode == 0, f"up --nodes 2 failed:\n{up.stderr[-3000:]}"
        started = True
    assert _answers(), "the 2-node cluster does not show two usable nodes"
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(CONF)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        if started:
            subprocess.run([str(DEV / "down"), "--nodes", "2"], capture_output=True, timeout=300)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    # Each dev node reports the VM's 2 CPUs; one torch thread per process keeps the two
    # nodes' processes from fighting over them.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "joulebench", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def squeue() -> str:
    return "; squeue:\n" + subprocess.run(["squeue"], capture_output=True, text=True).stdout


def wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 1.0
) -> None:
    shared_wait_for(predicate, timeout_s, what, poll_s, diagnose=squeue)


def labels(suite: str) -> dict[str, str]:
    return api.key_labels(suite).labels


def rows(checkout: Path) -> list[dict[str, str]]:
    path = checkout / "results" / "text_generation_results.csv"
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def job_ids(checkout: Path) -> dict[str, str]:
    state = ProgressTracker(checkout / TRACKER).read()
    return {k: str(r.job_id) for k, r in state.keys.items()}


def suite_text(
    num_prompts: int,
    max_output_tokens: int,
    nodes: int = 2,
    parallelism: str = "data",
    count_flops: bool = False,
) -> str:
    return f"""
models: [tiny-demo]
overrides:
  num_processes: 1
  nodes: {nodes}
  parallelism: {parallelism}
  warmup_iterations: 0
  energy_meter: codecarbon
  idle_baseline_s: 0
  max_input_tokens: 64
  count_flops: {str(count_flops).lower()}
configs:
  wide: {{num_prompts: {num_prompts}, batch_size: 2, max_output_tokens: {max_output_tokens},
          min_output_tokens: {max_output_tokens}}}
"""


FLAGS = ["--partition", "gpu", "--time", "00:20:00"]


def assert_nodes_summed(energy: dict) -> None:
    """The nodes' readings add up to what the host (and GPU) meters read; energy_j is that
    sum, or its apportioned share where the task held part of a node (1 of its 2 CPUs
    here: ``host_energy_shared``)."""
    total_j = sum(n["energy_j"] for n in energy["per_node"].values())
    assert energy["host_energy_j"] + energy["gpu_energy_j"] == pytest.approx(total_j)
    share = energy["host_share"] if energy["host_energy_apportioned_j"] is not None else 1.0
    expected_j = energy["gpu_energy_j"] + energy["host_energy_j"] * share
    assert energy["energy_j"] == pytest.approx(expected_j) and energy["energy_j"] > 0


def test_two_node_experiment_meters_each_node_and_sums_them(checkout: Path) -> None:
    write_suite(checkout, "two", suite_text(8, 16))
    dry = cli("submit-suite", "two", *FLAGS, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "#SBATCH --nodes=2" in dry.stdout and "(cpu, 1 process, 2 nodes)" in dry.stdout
    assert "srun --overlap --mem=0 --nodes=2" in dry.stdout  # the per-node launch step
    assert not (checkout / TRACKER).exists()

    sub = cli("submit-suite", "two", *FLAGS)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    wait_for(lambda: list(labels("two").values()) == ["done"], 400, "the 2-node key", poll_s=2)

    folder = checkout / "results" / "raw_results" / "0001"
    ranks = [json.loads(p.read_text()) for p in sorted((folder / ".work").glob("rank_*.json"))]
    assert [(r["rank"], r["local_rank"], r["world_size"]) for r in ranks] == [
        (0, 0, 2),
        (1, 0, 2),
    ]
    assert sorted(r["host"] for r in ranks) == ["jbn1", "jbn2"]  # two network stacks
    # Both nodes' windows open and close on the same global barriers.
    windows = [r["window_s"] for r in ranks]
    assert max(windows) - min(windows) < 0.5, windows
    energy = json.loads((folder / "0001_7_global_energy_results.json").read_text())
    per_node = energy["per_node"]
    assert sorted(per_node) == ["jbn1", "jbn2"]
    assert all(per_node[h]["host"] == h and per_node[h]["energy_j"] > 0 for h in per_node)
    assert all({"method", "quality_flags", "gpus"} <= set(per_node[h]) for h in per_node)
    # Both dev "nodes" are this one VM: its codecarbon estimate counted on each is said so.
    assert all("nodes_share_a_machine" in per_node[h]["quality_flags"] for h in per_node)
    assert "nodes_share_a_machine" in energy["quality_flags"]
    assert_nodes_summed(energy)
    setup = json.loads((folder / "0001_1_experiment_setup.json").read_text())
    assert setup["nodes"] == 2 and setup["hosts"] == ["jbn1", "jbn2"]
    assert setup["timing"]["workers_launch_s"] > 0
    (row,) = rows(checkout)
    assert row["nodes"] == "2" and row["hosts"] == "jbn1 jbn2" and row["num_processes"] == "1"
    assert row["world_size"] == "2" and setup["world_size"] == 2  # every node's processes
    # Both nodes' copies of the task ran (node 1 returned at once); sacct saw two nodes.
    job = job_ids(checkout)["models/tiny-llama::two::wide::1"]
    wait_for(
        lambda: query_sacct([job], "now-1hour").jobs[job].state == "COMPLETED",
        60,
        "sacct to show the task COMPLETED",
    )


def one_process_token_ids(work: Path, tmp_path: Path) -> list[list[int]]:
    """Greedy token ids of the same experiment as one data-parallel process, run here (no
    Slurm): the config the multi-node task ran, with nodes 1."""
    task = json.loads((work / "task.json").read_text())
    cfg = ExperimentConfig.model_validate(task["config"])
    ref = cfg.model_copy(update={"parallelism": "data", "nodes": 1, "num_processes": 1})
    raw = run_workers(ref, "ref", ref.config_hash(), tmp_path / "ref")
    (rank,) = raw.ranks
    return [
        ids
        for _, b in sorted(rank["batches"].items(), key=lambda kv: int(kv[0]))
        for ids in b["token_ids"]
    ]


def test_tensor_over_two_nodes_gives_one_process_tokens_counted_once(
    checkout: Path, tmp_path: Path
) -> None:
    write_suite(checkout, "tp", suite_text(4, 8, parallelism="tensor", count_flops=True))
    dry = cli("submit-suite", "tp", *FLAGS, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "parallelism=tensor world_size=2" in dry.stdout
    assert "#SBATCH --nodes=2" in dry.stdout
    assert "srun --overlap --mem=0 --nodes=2" in dry.stdout
    assert "--num_machines 2 --machine_rank $SLURM_NODEID" in dry.stdout
    assert "--num_processes 2" in dry.stdout  # the world size, both nodes
    assert not (checkout / TRACKER).exists()

    sub = cli("submit-suite", "tp", *FLAGS)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    wait_for(lambda: list(labels("tp").values()) == ["done"], 400, "the tensor key", poll_s=2)

    folder = checkout / "results" / "raw_results" / "0001"
    ranks = [json.loads(p.read_text()) for p in sorted((folder / ".work").glob("rank_*.json"))]
    assert [(r["rank"], r["world_size"], r["parallelism"]) for r in ranks] == [
        (0, 2, "tensor"),
        (1, 2, "tensor"),
    ]
    assert sorted(r["host"] for r in ranks) == ["jbn1", "jbn2"]
    # One model over both nodes: both ranks ran every batch, one checkpoint (rank 0's).
    assert [sorted(r["batches"]) for r in ranks] == [["0", "1"], ["0", "1"]]
    assert [p.name for p in (folder / ".work").glob("ckpt_rank*.json")] == ["ckpt_rank0.json"]
    setup = json.loads((folder / "0001_1_experiment_setup.json").read_text())
    assert (setup["parallelism"], setup["world_size"], setup["nodes"]) == ("tensor", 2, 2)
    assert setup["hosts"] == ["jbn1", "jbn2"]
    inference = json.loads((folder / "0001_4_inference_metrics.json").read_text())
    assert inference["num_prompts"] == 4 and inference["total_output_tokens"] == 4 * 8
    energy = json.loads((folder / "0001_7_global_energy_results.json").read_text())
    assert sorted(energy["per_node"]) == ["jbn1", "jbn2"]
    assert_nodes_summed(energy)
    assert energy["energy_per_output_token_j"] == pytest.approx(energy["energy_j"] / (4 * 8))
    flops = json.loads((folder / "0001_5_compute_metrics.json").read_text())["flops"]
    assert flops["counted_method"] and "global rank 0 only" in flops["counted_method"]
    (row,) = rows(checkout)
    assert (row["parallelism"], row["world_size"], row["nodes"]) == ("tensor", "2", "2")
    assert row["hosts"] == "jbn1 jbn2" and row["total_output_tokens"] == str(4 * 8)

    # The same greedy tokens as one process holding the whole model.
    tokens = json.loads((folder / "0001_8_token_output.json").read_text())
    reference = one_process_token_ids(folder / ".work", tmp_path)
    assert tokens == reference and sum(len(ids) for ids in reference) == 4 * 8


REFUSED = [
    (suite_text(8, 16, nodes=3), "nodes: 3 but partition 'gpu' has 2 node(s)"),
    # 2 processes on each of 2 nodes: the tiny model's 2 key/value heads over world size 4.
    (
        suite_text(8, 16, parallelism="tensor").replace("num_processes: 1", "num_processes: 2"),
        "tensor over 4 processes but model 'models/tiny-llama': its 2 key/value heads",
    ),
]


@pytest.mark.parametrize(("text", "why"), REFUSED, ids=["nodes-above-partition", "tensor-world"])
def test_what_two_nodes_cannot_run_is_refused_before_submission(
    checkout: Path, text: str, why: str
) -> None:
    write_suite(checkout, "three", text)
    for extra in ([], ["--dry-run"]):
        got = cli("submit-suite", "three", *FLAGS, *extra)
        assert got.returncode == 2, got.stdout + got.stderr
        lines = [ln for ln in got.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in got.stderr, got.stderr
        assert "three.yaml: " in lines[0] and why in lines[0]
    assert not (checkout / TRACKER).exists() and not (checkout / "results").exists()


# (parallelism, prompts, output tokens): long enough that the preemption lands mid-run. A
# tensor step waits on collectives over the bridge (~12 ms a token here), so it has fewer.
PREEMPTED_RUNS = [("data", 32, 192), ("tensor", 24, 128)]


@pytest.mark.parametrize(("parallelism", "num_prompts", "max_output_tokens"), PREEMPTED_RUNS)
def test_preempted_two_node_task_resumes_under_its_experiment_id(
    checkout: Path, parallelism: str, num_prompts: int, max_output_tokens: int
) -> None:
    write_suite(
        checkout, "pre", suite_text(num_prompts, max_output_tokens, parallelism=parallelism)
    )
    sub = cli("submit-suite", "pre", *FLAGS)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    work = checkout / "results" / "raw_results" / "0001" / ".work"
    wait_for(lambda: finished_batches(work) >= 2, 300, "two checkpointed batches", poll_s=0.2)
    urgent = subprocess.run(
        ["sbatch", "-p", "urgent", "-N", "2", "--exclusive", "--parsable", "--wrap", "sleep 3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert urgent.stdout.strip()
    wait_for(lambda: list(labels("pre").values()) == ["done"], 600, "the preempted key", 2)
    (row,) = rows(checkout)
    assert row["experiment_id"] == "0001" and int(row["attempt"]) >= 2
    metrics = json.loads((work.parent / "0001_4_inference_metrics.json").read_text())
    assert metrics["batches_resumed"] >= 2 and metrics["num_prompts"] == num_prompts
    # Counted once (not per tensor rank), the resumed batches' tokens included.
    assert metrics["total_output_tokens"] == num_prompts * max_output_tokens
    energy = json.loads((work.parent / "0001_7_global_energy_results.json").read_text())
    assert sorted(energy["per_node"]) == ["jbn1", "jbn2"]
    if parallelism == "tensor":
        # One checkpoint, global rank 0's, read by both nodes: both skipped the same
        # finished batches (else their collectives would not have matched) and ran the rest.
        assert [p.name for p in work.glob("ckpt_rank*.json")] == ["ckpt_rank0.json"]
        ranks = [json.loads(p.read_text()) for p in sorted(work.glob("rank_*.json"))]
        resumed = [r["resumed_batches"] for r in ranks]
        assert len(resumed) == 2 and resumed[0] == resumed[1] and len(resumed[0]) >= 2
        assert [len(r["batches"]) for r in ranks] == [num_prompts // 2] * 2  # batch_size 2
        assert sorted(r["host"] for r in ranks) == ["jbn1", "jbn2"]
    job = job_ids(checkout)["models/tiny-llama::pre::wide::1"]
    history = query_sacct([job], "now-1hour").jobs[job].history
    assert "PREEMPTED" in history or "REQUEUED" in history
    assert ProgressTracker(checkout / TRACKER).read().last_id == 1


def test_second_node_crash_is_node_fail_and_resume_failed_reruns_it(checkout: Path) -> None:
    write_suite(checkout, "crash", suite_text(32, 192))
    sub = cli("submit-suite", "crash", *FLAGS)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    key = "models/tiny-llama::crash::wide::1"
    job = job_ids(checkout)[key]
    # Not requeueable (as with sbatch --no-requeue): the failure stays for resume-failed.
    subprocess.run(["scontrol", "update", f"jobid={job}", "requeue=0"], check=True)
    work = checkout / "results" / "raw_results" / "0001" / ".work"
    wait_for(lambda: finished_batches(work) >= 2, 300, "two checkpointed batches", poll_s=0.2)
    crash = subprocess.run(
        [str(DEV / "fault"), "--nodes", "2", "crash-node", "jbn2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crash.returncode == 0, crash.stderr
    up = subprocess.run(
        [str(DEV / "up"), "--nodes", "2"], capture_output=True, text=True, timeout=300
    )
    assert up.returncode == 0, up.stderr[-2000:]
    wait_for(lambda: labels("crash")[key] == "failed:node_fail", 120, "NODE_FAIL", 2)
    resumed = cli("resume-failed", "crash", *FLAGS)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "submitted 1 task" in resumed.stdout
    wait_for(lambda: labels("crash")[key] == "done", 600, "the rerun to finish", 2)
    (row,) = rows(checkout)
    assert row["experiment_id"] == "0001"
    metrics = json.loads((work.parent / "0001_4_inference_metrics.json").read_text())
    assert metrics["batches_resumed"] >= 2
