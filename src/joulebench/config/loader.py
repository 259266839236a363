"""YAML in, validated config out, or one line saying file, field and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from joulebench.config.models import ExperimentConfig
from joulebench.errors import ConfigError


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """Safe-load a YAML file that must hold a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; check the name or path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc}); check permissions/encoding"
                          ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: YAML syntax error ({problem}); fix the syntax"
                          ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, "
                          f"got {type(data).__name__}")
    return data


def describe_validation_error(exc: ValidationError, model: type[BaseModel], source: str) -> str:
    """First problem of a pydantic error as 'source: field 'a.b': what; fix'."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    more = len(exc.errors()) - 1
    suffix = f" (+{more} more problem{'s' if more > 1 else ''})" if more else ""
    if first["type"] == "extra_forbidden":
        parent = _model_at(model, first["loc"][:-1])
        valid = ", ".join(parent.model_fields) if parent else "see the configs reference"
        return f"{source}: unknown key '{loc}'; valid keys here: {valid}{suffix}"
    msg = first["msg"].removeprefix("Value error, ")
    field = f"field '{loc}'" if loc else "config"
    got = first.get("input")
    shown = f" (got {got!r})" if loc and not isinstance(got, dict) else ""
    return f"{source}: {field}: {msg}{shown}{suffix}"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        field = current.model_fields.get(str(part)) if isinstance(current, type) else None
        if field is None or not (isinstance(field.annotation, type)
                                 and issubclass(field.annotation, BaseModel)):
            return None
        current = field.annotation
    return current


def validate_experiment(data: dict[str, Any], source: str) -> ExperimentConfig:
    """Build an ExperimentConfig or raise ConfigError naming source and field."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, ExperimentConfig, source)) from None
