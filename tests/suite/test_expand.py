"""Suite expansion is pure: literal definitions in, specs with stable keys out."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulebench.errors import ConfigError
from joulebench.suite import SuiteDefinition, deep_merge, expand_suite, load_and_expand, split_key

BASE = {
    "model": "base-model",
    "batch_size": 8,
    "max_output_tokens": 32,
    "decoder": {"mode": "greedy", "temperature": 1.0},
}
MODELS = {"a": {"model": "org/model-a"}, "b": {"model": "org/model-b", "precision": "bfloat16"}}
REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def suite(**kwargs: object) -> SuiteDefinition:
    kwargs.setdefault("shuffle", False)  # most tests here check file order
    return SuiteDefinition(name="s", source="s.yaml", base=BASE, models=MODELS, **kwargs)


def test_controlled_varies_one_field_at_a_time_across_models_and_cycles() -> None:
    specs = expand_suite(
        suite(controlled={"batch_size": [1, 16], "decoder": {"sampling": {"mode": "sampling"}}}), 2
    )
    assert len(specs) == 2 * 2 * 3  # cycles x models x configs
    assert specs[0].key == "org/model-a::s::batch_size_1::1"
    assert specs[-1].key == "org/model-b::s::decoder_sampling::2"
    sampling = next(s for s in specs if s.config_name == "decoder_sampling")
    assert sampling.config.decoder.mode == "sampling" and sampling.config.batch_size == 8
    assert sampling.config.decoder.temperature == 1.0  # nested merge keeps siblings
    assert {s.config.precision for s in specs if s.model_label == "b"} == {"bfloat16"}


def test_grid_is_a_cartesian_product_with_readable_names() -> None:
    specs = expand_suite(
        suite(grid={"batch_size": [1, 2], "precision": ["float16", "bfloat16"]}), 1
    )
    names = sorted({s.config_name for s in specs})
    assert names == [
        "batch_size_1__precision_bfloat16",
        "batch_size_1__precision_float16",
        "batch_size_2__precision_bfloat16",
        "batch_size_2__precision_float16",
    ]


def test_grid_values_that_cannot_be_in_a_name_are_named_by_a_mapping() -> None:
    grid = {"batch_size": [1, 2], "decoder.mode": {"g": "greedy", "s": "sampling"}}
    specs = expand_suite(suite(grid=grid), 1)
    modes = {s.config_name: s.config.decoder.mode for s in specs}
    assert modes == {
        "batch_size_1__mode_g": "greedy",
        "batch_size_1__mode_s": "sampling",
        "batch_size_2__mode_g": "greedy",
        "batch_size_2__mode_s": "sampling",
    }


def test_a_grid_value_listed_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="appears twice"):
        expand_suite(suite(grid={"batch_size": [2, 2]}), 1)


def test_expansion_is_deterministic_and_hash_tracks_settings() -> None:
    one = expand_suite(suite(controlled={"batch_size": [1, 2]}), 1)
    two = expand_suite(suite(controlled={"batch_size": [1, 2]}), 1)
    assert [(s.key, s.config_hash) for s in one] == [(s.key, s.config_hash) for s in two]
    assert len({s.config_hash for s in one}) == len(one)
    # Cycles share the config hash: same settings, different repetition.
    cycles = expand_suite(suite(), 2)
    assert cycles[0].config_hash == cycles[2].config_hash and cycles[0].key != cycles[2].key


def test_each_cycle_runs_a_seeded_permutation_of_the_same_configs() -> None:
    kinds = {"controlled": {"batch_size": [1, 2, 3, 4, 5, 6]}}
    specs = expand_suite(suite(shuffle=True, order_seed=7, **kinds), 3)
    again = expand_suite(suite(shuffle=True, order_seed=7, **kinds), 3)
    assert [s.key for s in specs] == [s.key for s in again]  # seeded: reproducible
    per_cycle = [[(s.model_label, s.config_name) for s in specs if s.cycle == c] for c in (1, 2, 3)]
    assert sorted(per_cycle[0]) == sorted(per_cycle[1]) == sorted(per_cycle[2])
    assert len({tuple(order) for order in per_cycle}) > 1  # cycles differ in order
    assert [s.cycle for s in specs] == sorted(s.cycle for s in specs)  # cycle-major
    assert {s.order_seed for s in specs} == {7}
    other_seed = expand_suite(suite(shuffle=True, order_seed=8, **kinds), 3)
    assert [s.key for s in other_seed] != [s.key for s in specs]


def test_dotted_override_paths_address_nested_fields() -> None:
    merged = deep_merge({"decoder": {"mode": "greedy", "top_k": 0}}, {"decoder.top_k": 50})
    assert merged == {"decoder": {"mode": "greedy", "top_k": 50}}
    specs = expand_suite(suite(controlled={"decoder.temperature": [0.5]}), 1)
    assert specs[0].config_name == "temperature_0.5"
    assert specs[0].config.decoder.temperature == 0.5


def test_split_key_inverts_the_key_even_with_slashes_in_the_model() -> None:
    assert split_key("org/model-a::s::batch_size_1::3") == ("org/model-a", "s", "batch_size_1", 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"controlled": {"batch_size": []}}, "controlled.batch_size"),
        ({"controlled": {"batch_size": [0]}}, "field 'batch_size'"),
        ({"grid": {"precision": ["float8"]}}, "field 'precision'"),
        ({"configs": {"bad name!": {}}}, "config name 'bad name!'"),
        ({"configs": {"x": {"bogus_key": 1}}}, "unknown key 'bogus_key'"),
        ({"controlled": {"batch_size": [1]}, "configs": {"batch_size_1": {}}}, "appears twice"),
    ],
)
def test_bad_variations_name_the_field(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        expand_suite(suite(**kwargs), 1)


def test_zero_cycles_is_refused() -> None:
    with pytest.raises(ConfigError, match="--cycles"):
        expand_suite(suite(), 0)


@pytest.mark.parametrize(
    "name, count",
    [
        ("demo", 4),
        ("controlled", 30),
        ("models", 5),
        ("scenarios", 10),
        ("grid", 8),
        ("aienergyscore", 1),
        ("mlenergy", 3),
        ("gpu-precision", 3),
        ("tp-sweep", 4),
    ],
)
def test_shipped_suites_expand(name: str, count: int) -> None:
    assert len(load_and_expand(name, 1, REPO_CONFIGS)) == count


def test_a_yaml_grid_over_dataset_paths_names_them(checkout: Path) -> None:
    from tests.conftest import write_suite

    data = checkout / "prompts"
    data.mkdir()
    for name in ("a", "b"):
        (data / f"{name}.jsonl").write_text('{"text": "hello there"}\n' * 4)
    write_suite(
        checkout,
        "paths",
        "models: [tiny-demo]\ngrid:\n  batch_size: [1, 2]\n"
        "  dataset.name: {a: prompts/a.jsonl, b: prompts/b.jsonl}\n",
    )
    specs = load_and_expand("paths", 1, checkout / "configs")
    assert {(s.config_name, s.config.dataset.name) for s in specs} == {
        ("batch_size_1__name_a", "prompts/a.jsonl"),
        ("batch_size_1__name_b", "prompts/b.jsonl"),
        ("batch_size_2__name_a", "prompts/a.jsonl"),
        ("batch_size_2__name_b", "prompts/b.jsonl"),
    }


def test_the_shipped_tp_sweep_compares_tensor_data_and_one_process() -> None:
    specs = {s.config_name: s.config for s in load_and_expand("tp-sweep", 1, REPO_CONFIGS)}
    shapes = {n: (c.parallelism, c.num_processes, c.world_size) for n, c in specs.items()}
    assert shapes == {
        "parallelism_data": ("data", 2, 2),
        "parallelism_tensor": ("tensor", 2, 2),
        "num_processes_1": ("tensor", 1, 1),
        "num_processes_2": ("tensor", 2, 2),
    }
