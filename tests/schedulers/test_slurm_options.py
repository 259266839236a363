from __future__ import annotations

from pathlib import Path

import pytest

from joulebench.errors import ConfigError
from joulebench.schedulers.slurm import parse_max_array_size, plan_arrays, sbatch_script
from joulebench.schedulers.slurm_options import (
    SlurmOptions,
    executor_parameters,
    load_profile,
    options_from_mapping,
    time_to_minutes,
)
from joulebench.suite import SuiteDefinition, expand_suite


@pytest.mark.parametrize(
    "text, minutes",
    [
        ("90", 90),
        ("10:30", 11),
        ("02:00:00", 120),
        ("1-00", 1440),
        ("1-02:30", 1590),
        ("0-00:11:00", 11),
    ],
)
def test_slurm_time_formats(text: str, minutes: int) -> None:
    assert time_to_minutes(text) == minutes


@pytest.mark.parametrize("text", ["", "2h", "1:2:3:4", "-5"])
def test_bad_times_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="not a Slurm time"):
        time_to_minutes(text)


def test_command_line_wins_over_the_site_profile(tmp_path: Path) -> None:
    profile = tmp_path / "site.yaml"
    profile.write_text("partition: gpu\naccount: proj\ntime: '04:00:00'\n")
    merged = SlurmOptions(partition="urgent").merged_over(load_profile(profile))
    assert (merged.partition, merged.account, merged.time) == ("urgent", "proj", "04:00:00")


@pytest.mark.parametrize(
    "data, match",
    [
        ({"partiton": "gpu"}, "unknown key 'partiton'"),
        ({"gpus_per_node": 0}, "positive whole number"),
        ({"account": "a b"}, "one word"),
        ({"time": "soon"}, "not a Slurm time"),
        ({"time": 7200}, "must be quoted"),
    ],
)
def test_bad_profiles_name_the_field(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        options_from_mapping(data, "site.yaml")


def test_parameters_default_gpus_to_processes_and_refuse_short_times() -> None:
    params = executor_parameters(
        SlurmOptions(partition="gpu", qos="high"), device="cuda", num_processes=4, job_name="jb"
    )
    assert params["gpus_per_node"] == 4 and params["cpus_per_task"] == 4
    assert params["partition"] == "gpu" and params["qos"] == "high" and params["time"] == 60
    assert "gpus_per_node" not in executor_parameters(
        SlurmOptions(), device="cpu", num_processes=2, job_name="jb"
    )
    with pytest.raises(ConfigError, match="at least 00:11:00"):
        executor_parameters(SlurmOptions(time="10"), device="cpu", num_processes=1, job_name="jb")
    with pytest.raises(ConfigError, match="fewer than num_processes"):
        executor_parameters(
            SlurmOptions(gpus_per_node=1), device="cuda", num_processes=2, job_name="jb"
        )


def test_arrays_group_by_shape_and_split_at_max_array_size() -> None:
    suite = SuiteDefinition(
        name="s",
        source="s.yaml",
        base={"model": "m", "device": "cpu"},
        models={"m": {"model": "org/m"}},
        controlled={"num_processes": [1, 2], "batch_size": [1, 2, 3]},
    )
    specs = expand_suite(suite, 3)  # 5 configs x 3 cycles
    plans = plan_arrays(specs, SlurmOptions(), max_size=4, job_name="jb")
    sizes = {(p.shape, len(p.specs)) for p in plans}
    assert sum(len(p.specs) for p in plans) == 15
    # shape (cpu, 1): batch_size x3 + num_processes_1 = 4 configs x 3 cycles = 12 -> 4+4+4
    assert sorted(n for shape, n in sizes if shape == ("cpu", 1, 1)) == [4]
    assert len([p for p in plans if p.shape == ("cpu", 1, 1)]) == 3
    assert [len(p.specs) for p in plans if p.shape == ("cpu", 2, 1)] == [3]


def test_keys_per_task_packs_keys_into_fewer_array_tasks_in_order() -> None:
    suite = SuiteDefinition(
        name="s",
        source="s.yaml",
        base={"model": "m", "device": "cpu"},
        models={"m": {"model": "org/m"}},
        controlled={"batch_size": list(range(1, 11))},
    )
    specs = expand_suite(suite, 5)  # 10 configs x 5 cycles = 50 keys of one shape
    plans = plan_arrays(specs, SlurmOptions(keys_per_task=4), max_size=6, job_name="jb")
    # 50 keys -> 13 tasks of up to 4 keys -> arrays of at most 6 tasks: 6 + 6 + 1
    assert [len(p.tasks) for p in plans] == [6, 6, 1]
    assert [len(t) for p in plans for t in p.tasks] == [4] * 12 + [2]
    assert [s.key for p in plans for t in p.tasks for s in t] == [s.key for s in specs]
    script = sbatch_script(plans[0], Path("logs"))
    assert "#SBATCH --array=0-5%" in script
    assert plan_arrays(specs, SlurmOptions(), max_size=6, job_name="jb")[0].tasks[0] == [specs[0]]


def test_keys_per_task_must_be_a_positive_whole_number() -> None:
    assert options_from_mapping({"keys_per_task": 8}, "site.yaml").keys_per_task == 8
    with pytest.raises(ConfigError, match="keys_per_task"):
        options_from_mapping({"keys_per_task": 0}, "site.yaml")


def test_max_array_size_from_scontrol() -> None:
    assert parse_max_array_size("MaxArraySize            = 1001\nMaxJobCount = 10000\n") == 1001
    assert parse_max_array_size("nothing") == 1001


def test_the_sbatch_script_matches_the_recorded_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sbatch_script calls submitit's private _make_sbatch_string: a submitit release that
    changes it shows up here (as submitit's own test_make_batch_string does), not on a
    cluster. Regenerate the file only after reading the difference."""
    import sys

    monkeypatch.chdir(tmp_path)
    suite = SuiteDefinition(
        name="s",
        source="s.yaml",
        base={"model": "m", "device": "cuda", "num_processes": 2},
        models={"m": {"model": "org/m"}},
        controlled={"batch_size": [1, 2, 3]},
    )
    opts = SlurmOptions(
        partition="gpu",
        time="04:00:00",
        mem="64G",
        account="proj-42",
        qos="high",
        constraint="a100|h100",
        array_parallelism=2,
        cpus_per_task=8,
    )
    (plan,) = plan_arrays(expand_suite(suite, 2), opts, max_size=1001, job_name="jb-s")
    recorded = (Path(__file__).parent / "data" / "sbatch_cuda_array.txt").read_text()
    expected = recorded.replace("{python}", sys.executable).replace("{cwd}", str(tmp_path))
    assert sbatch_script(plan, Path("logs/submitit")) == expected


def test_exclusive_adds_one_sbatch_line_to_the_recorded_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--exclusive (whole nodes, so host energy is the task's alone) is sbatch's own flag;
    the golden file is the CPU script with that one line more."""
    import sys

    monkeypatch.chdir(tmp_path)
    suite = SuiteDefinition(
        name="s",
        source="s.yaml",
        base={"model": "m", "device": "cpu", "num_processes": 1},
        models={"m": {"model": "org/m"}},
        controlled={"batch_size": [1, 2]},
    )
    opts = SlurmOptions(partition="cpu", time="02:00:00", exclusive=True)
    (plan,) = plan_arrays(expand_suite(suite, 1), opts, max_size=1001, job_name="jb-s")
    recorded = (Path(__file__).parent / "data" / "sbatch_cpu_exclusive.txt").read_text()
    expected = recorded.replace("{python}", sys.executable).replace("{cwd}", str(tmp_path))
    script = sbatch_script(plan, Path("logs/submitit"))
    assert script == expected
    without = sbatch_script(
        plan_arrays(
            expand_suite(suite, 1), SlurmOptions(partition="cpu", time="02:00:00"), 1001, "jb-s"
        )[0],
        Path("logs/submitit"),
    )
    assert [line for line in script.splitlines() if line not in without.splitlines()] == [
        "#SBATCH --exclusive"
    ]


def test_exclusive_from_a_profile_must_be_a_boolean(tmp_path: Path) -> None:
    assert options_from_mapping({"exclusive": True}, "p.yaml").exclusive is True
    with pytest.raises(ConfigError, match=r"p\.yaml: field 'exclusive' must be true or false"):
        options_from_mapping({"exclusive": "yes please"}, "p.yaml")
