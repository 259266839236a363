"""The varied fields come from the suite (or the CSV), never from a fixed list."""

from __future__ import annotations

from pathlib import Path

from joulebench.results.variables import row_variables, suite_variables
from joulebench.suite import SuiteDefinition, expand_suite, load_suite
from tests.results.test_report import row

BASE = {
    "model": "base-model",
    "batch_size": 8,
    "max_output_tokens": 32,
    "decoder": {"mode": "greedy", "temperature": 1.0},
}
MODELS = {"a": {"model": "org/a"}}
REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def variables_of(definition: SuiteDefinition) -> dict[str, dict[str, object]]:
    """path -> {config name: x} through the real expansion, for model org/a."""
    resolved = {
        (s.config.model, s.config_name): s.config.model_dump(mode="json")
        for s in expand_suite(definition, 1)
    }
    found = suite_variables(definition.controlled, definition.grid, definition.configs, resolved)
    return {v.path: {c: x for (_, c), x in v.values.items()} for v in found}


def suite(**kwargs: object) -> SuiteDefinition:
    return SuiteDefinition(name="s", source="s.yaml", base=BASE, models=MODELS, **kwargs)


def test_controlled_fields_of_any_name_and_dotted_keys_are_found() -> None:
    found = variables_of(
        suite(
            controlled={
                "max_output_tokens": [16, 64],
                "quantization": ["none", "int8"],
                "decoder.temperature": [0.5, 1.5],
                "num_processes": [1, 2],
                "decoder": {"greedy": {"mode": "greedy"}, "sampling_t0.7": {"mode": "sampling"}},
            }
        )
    )
    assert found == {
        "max_output_tokens": {"max_output_tokens_16": 16, "max_output_tokens_64": 64},
        "quantization": {"quantization_none": "none", "quantization_int8": "int8"},
        "decoder.temperature": {"temperature_0.5": 0.5, "temperature_1.5": 1.5},
        "num_processes": {"num_processes_1": 1, "num_processes_2": 2},
        "decoder": {"decoder_greedy": "greedy", "decoder_sampling_t0.7": "sampling_t0.7"},
    }


def test_grid_named_values_and_named_configs_give_their_fields() -> None:
    found = variables_of(
        suite(
            grid={"batch_size": [8, 32], "dataset.name": {"alpaca": "a.jsonl", "chat": "c.jsonl"}},
            configs={
                "chatbot": {"batch_size": 1, "decoder": {"mode": "sampling", "top_p": 0.9}},
                "bulk": {"batch_size": 64},
            },
        )
    )
    assert found["dataset.name"]["batch_size_8__name_alpaca"] == "alpaca"
    assert found["dataset.name"]["batch_size_32__name_chat"] == "chat"
    assert found["batch_size"] == {
        "batch_size_8__name_alpaca": 8,
        "batch_size_8__name_chat": 8,
        "batch_size_32__name_alpaca": 32,
        "batch_size_32__name_chat": 32,
        "chatbot": 1,
        "bulk": 64,
    }
    # a named config that leaves a field alone shows its resolved (base) value
    assert found["decoder.mode"] == {"chatbot": "sampling", "bulk": "greedy"}
    assert found["decoder.top_p"] == {"chatbot": 0.9, "bulk": 1.0}


def test_a_field_with_one_value_is_not_a_variable() -> None:
    assert variables_of(suite(configs={"x": {"batch_size": 4}, "y": {"batch_size": 4}})) == {}


def test_the_shipped_demo_suite_varies_batch_size_and_decoder() -> None:
    definition = load_suite("demo", REPO_CONFIGS)
    found = variables_of(definition)
    assert list(found) == ["batch_size", "decoder"]
    assert set(found["batch_size"].values()) == {2, 8}


def test_csv_fallback_reads_every_config_column_and_picks_configs_by_name() -> None:
    rows = [
        row("1", "m", "max_output_tokens_16", 1, 1.0, max_output_tokens="16"),
        row("2", "m", "max_output_tokens_64", 1, 1.0, max_output_tokens="64"),
        row("3", "m", "temperature_0.5", 1, 1.0, temperature="0.5", max_output_tokens="32"),
        row("4", "m", "temperature_1.5", 1, 1.0, temperature="1.5", max_output_tokens="32"),
    ]
    found = {v.path: v for v in row_variables(rows)}
    assert set(found) == {"max_output_tokens", "decoder.temperature"}
    # temperature_* configs keep the base output length: not on the output-length plot
    assert found["max_output_tokens"].values == {
        ("m", "max_output_tokens_16"): 16,
        ("m", "max_output_tokens_64"): 64,
    }
    assert found["decoder.temperature"].values == {
        ("m", "temperature_0.5"): 0.5,
        ("m", "temperature_1.5"): 1.5,
    }
    assert found["decoder.temperature"].stem == "decoder_temperature"  # file-name safe


def test_parallelism_and_num_processes_are_controlled_variables() -> None:
    found = variables_of(
        suite(controlled={"parallelism": ["data", "tensor"], "num_processes": [1, 2]})
    )
    assert found == {
        "parallelism": {"parallelism_data": "data", "parallelism_tensor": "tensor"},
        "num_processes": {"num_processes_1": 1, "num_processes_2": 2},
    }


def test_csv_fallback_finds_parallelism_by_its_column() -> None:
    rows = [
        row("1", "m", "parallelism_data", 1, 1.0, parallelism="data"),
        row("2", "m", "parallelism_tensor", 1, 1.0, parallelism="tensor"),
    ]
    found = {v.path: v for v in row_variables(rows)}
    assert set(found) == {"parallelism"}
    assert found["parallelism"].values == {
        ("m", "parallelism_data"): "data",
        ("m", "parallelism_tensor"): "tensor",
    }
    assert not found["parallelism"].numeric


def test_nodes_is_a_variable_from_the_csv_alone() -> None:
    rows = [
        {"model": "m", "config_name": "one", "nodes": "1", "num_processes": "2"},
        {"model": "m", "config_name": "two", "nodes": "2", "num_processes": "2"},
    ]
    found = {v.path: v for v in row_variables(rows)}
    assert set(found) == {"nodes"}
    assert found["nodes"].values == {("m", "one"): 1, ("m", "two"): 2}
