"""YAML in, validated config out, or one line saying file, field and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from joulebench.config.models import ExperimentConfig
from joulebench.errors import ConfigError


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice: YAML keeps the last one silently, so a
    second ``controlled:`` block would drop the first without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Checked before merge keys ('<<: *base') are flattened in: overriding a merged
        # key is the point of a merge, not a duplicate.
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            if key_node.value in seen:
                raise _DuplicateKey(
                    None,
                    None,
                    f"key '{key_node.value}' appears twice in one mapping; keep one of them",
                    key_node.start_mark,
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(path: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}: line {mark.line + 1} column {mark.column + 1}" if mark else f"{path}"
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, _DuplicateKey):
        return f"{where}: {problem}"
    if "python/" in problem and "constructor for the tag" in problem:
        tag = problem.rsplit("'", 2)[-2].replace("tag:yaml.org,2002:", "!!")
        return (
            f"{where}: tag {tag} is refused (YAML is loaded as plain data, never as "
            "Python objects); remove the tag"
        )
    return f"{where}: YAML syntax error ({problem}); fix the syntax"


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """Safe-load a YAML file that must hold a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; check the name or path") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a YAML file; pass the file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror}); check its permissions") from None
    # Safe loading only (what yaml.safe_load does, with the duplicate-key check): a
    # suite is data, and a !!python/* tag must never build an object or run code.
    try:
        loader = _UniqueKeyLoader(text)  # its reader refuses control characters here
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_problem(path, exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of keys to values, got a "
            f"{type(data).__name__}; write it as 'key: value' lines"
        )
    return data


_PLAIN_TYPE_MESSAGES = {
    "int_type": "must be a whole number like 8 (no quotes, not true/false)",
    "float_type": "must be a number like 0.5 (no quotes, not true/false)",
    "bool_type": "must be true or false",
}


# Problems listed in one error line; the rest are counted. Enough to fix a suite in one
# pass without the line running off a terminal.
MAX_PROBLEMS_SHOWN = 5


def describe_validation_error(exc: ValidationError, model: type[BaseModel], source: str) -> str:
    """Every problem of a pydantic error (up to a handful) as
    'source: field 'a.b': what; fix; field 'c': ...'."""
    problems = list(dict.fromkeys(_describe_one(e, model) for e in exc.errors()))
    shown = problems[:MAX_PROBLEMS_SHOWN]
    rest = len(problems) - len(shown)
    tail = f" (and {rest} more problem{'s' if rest > 1 else ''})" if rest else ""
    return f"{source}: {'; '.join(shown)}{tail}"


def _describe_one(error: Any, model: type[BaseModel]) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        parent = _model_at(model, error["loc"][:-1])
        valid = ", ".join(parent.model_fields) if parent else "see the configs reference"
        return f"unknown key '{loc}'; valid keys here: {valid}"
    if error["type"] == "missing":
        return f"field '{loc}' is required; add it"
    msg = _PLAIN_TYPE_MESSAGES.get(error["type"]) or error["msg"].removeprefix("Value error, ")
    if not loc:  # a cross-field check: its message names the fields itself
        return msg
    got = error.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict) else ""
    return f"field '{loc}': {msg}{shown}"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        field = current.model_fields.get(str(part)) if isinstance(current, type) else None
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return None
        current = field.annotation
    return current


def validate_experiment(data: dict[str, Any], source: str) -> ExperimentConfig:
    """Build an ExperimentConfig or raise ConfigError naming source and field."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, ExperimentConfig, source)) from None
