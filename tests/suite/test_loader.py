"""Suite files on disk: every mistake is one ConfigError naming the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulebench.errors import ConfigError
from joulebench.suite import load_and_expand

GOOD_MODELS = "models:\n  tiny: {model: models/tiny}\n"


def make(
    tmp_path: Path, suite: str, base: str = "batch_size: 4\n", models: str = GOOD_MODELS
) -> Path:
    (tmp_path / "suites").mkdir(exist_ok=True)
    (tmp_path / "base.yaml").write_text(base)
    (tmp_path / "models.yaml").write_text(models)
    (tmp_path / "suites" / "s.yaml").write_text(suite)
    return tmp_path


def test_good_suite_loads(tmp_path: Path) -> None:
    configs = make(tmp_path, "models: [tiny]\ncontrolled:\n  batch_size: [1, 2]\n")
    specs = load_and_expand("s", 2, configs)
    assert [s.key for s in specs][:2] == [
        "models/tiny::s::batch_size_1::1",
        "models/tiny::s::batch_size_2::1",
    ]


@pytest.mark.parametrize(
    "suite, base, models, match",
    [
        ("models: [tiny\n", None, None, r"s.yaml: line \d+ column \d+: YAML syntax error"),
        ("models: [tiny]\nbogus: 1\n", None, None, "unknown key 'bogus'"),
        ("models: []\n", None, None, "field 'models'"),
        ("models: [nope]\n", None, None, "'nope' is not in"),
        ("- a\n- b\n", None, None, "expected a mapping"),
        ("models: [tiny]\n", "precision: float8\n", None, "field 'precision'"),
        (
            "models: [tiny]\n",
            "max_output_tokens: 4\nmin_output_tokens: 8\n",
            None,
            "min_output_tokens .* exceeds",
        ),
        (
            "models: [tiny]\n",
            "device: cpu\nquantization: int8\n",
            None,
            "quantization: int8 needs a CUDA",
        ),
        ("models: [tiny]\n", "batch_size: -1\n", None, "field 'batch_size'"),
        ("models: [tiny]\n", "decoder: {temperature: 0}\n", None, "field 'decoder.temperature'"),
        ("models: [tiny]\n", "decoder: {typo: 1}\n", None, "unknown key 'decoder.typo'"),
        ("models: [tiny]\n", "task_type: ../../etc\n", None, "field 'task_type'"),
        ("models: [tiny]\n", None, "models:\n  tiny: {model: 'a::b'}\n", "must not contain '::'"),
        (
            "models: [tiny]\n",
            None,
            "models:\n  tiny: {precision: float16}\n",
            "needs a mapping with",
        ),
        ("models: [tiny]\nname: ../evil\n", None, None, "field 'name'"),
    ],
)
def test_bad_suites_name_file_and_field(
    tmp_path: Path, suite: str, base: str | None, models: str | None, match: str
) -> None:
    configs = make(tmp_path, suite, base or "batch_size: 4\n", models or GOOD_MODELS)
    with pytest.raises(ConfigError, match=match) as info:
        load_and_expand("s", 1, configs)
    assert "\n" not in str(info.value)
    assert ".yaml" in str(info.value)


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "x::y", "missing"])
def test_bad_suite_names_are_refused(tmp_path: Path, name: str) -> None:
    make(tmp_path, "models: [tiny]\n")
    with pytest.raises(ConfigError):
        load_and_expand(name, 1, tmp_path)
