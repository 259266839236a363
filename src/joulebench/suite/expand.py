"""Pure expansion: suite definition x cycles -> ExperimentSpec list.

No file access here: :mod:`joulebench.suite.loader` reads YAML and hands over plain
data, so this module is tested with literals.
"""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from joulebench.config.loader import validate_experiment
from joulebench.config.models import SAFE_NAME
from joulebench.errors import ConfigError
from joulebench.suite.spec import ExperimentSpec


@dataclass(frozen=True)
class SuiteDefinition:
    """A suite with its base config and model entries already resolved to data."""

    name: str
    source: str
    base: Mapping[str, Any]
    models: Mapping[str, Mapping[str, Any]]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    controlled: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, Any] = field(default_factory=dict)
    configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Each cycle runs its configs in its own seeded random order, so slow drift (a
    # warming room, a neighbour's job) does not line up with a controlled variable.
    shuffle: bool = True
    order_seed: int = 0


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Merge overrides into a copy of base; dotted keys address nested fields."""
    merged = copy.deepcopy(dict(base))
    for raw_key, value in overrides.items():
        parts = str(raw_key).split(".")
        target = merged
        for part in parts[:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                target[part] = nxt
            target = nxt
        leaf = parts[-1]
        if isinstance(value, Mapping) and isinstance(target.get(leaf), dict):
            target[leaf] = deep_merge(target[leaf], value)
        else:
            target[leaf] = copy.deepcopy(value)
    return merged


def _value_label(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def controlled_variations(source: str, controlled: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """One config per value of one variable, the others at the base value."""
    out: dict[str, dict[str, Any]] = {}
    for path, values in controlled.items():
        short = str(path).split(".")[-1]
        if isinstance(values, Mapping):
            items = [(f"{short}_{name}", {path: v}) for name, v in values.items()]
        elif isinstance(values, list) and values:
            items = [(f"{short}_{_value_label(v)}", {path: v}) for v in values]
        else:
            raise ConfigError(
                f"{source}: field 'controlled.{path}': give a non-empty list of "
                "values or a mapping of name -> value"
            )
        for name, overrides in items:
            if name in out:  # e.g. batch_size: [1, 1] would silently run one config
                raise ConfigError(
                    f"{source}: field 'controlled.{path}': config name "
                    f"'{name}' appears twice; list each value once"
                )
            out[name] = overrides
    return out


def grid_variations(source: str, grid: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Cartesian product of every listed value; a mapping names its values (for values such
    as paths that cannot be part of a config name)."""
    if not grid:
        return {}
    labelled: dict[str, list[tuple[str, Any]]] = {}
    for path, values in grid.items():
        if isinstance(values, Mapping) and values:
            labelled[path] = [(str(name), v) for name, v in values.items()]
        elif isinstance(values, list) and values:
            labelled[path] = [(_value_label(v), v) for v in values]
        else:
            raise ConfigError(
                f"{source}: field 'grid.{path}': give a non-empty list of values "
                "or a mapping of name -> value"
            )
    paths = list(labelled)
    out: dict[str, dict[str, Any]] = {}
    for combo in itertools.product(*(labelled[p] for p in paths)):
        name = "__".join(
            f"{p.split('.')[-1]}_{label}" for p, (label, _) in zip(paths, combo, strict=True)
        )
        if name in out:  # e.g. batch_size: [1, 1] would silently run one config
            raise ConfigError(
                f"{source}: field 'grid': config name '{name}' appears twice; list each value once"
            )
        out[name] = {p: v for p, (_, v) in zip(paths, combo, strict=True)}
    return out


def suite_variations(suite: SuiteDefinition) -> dict[str, dict[str, Any]]:
    """All named configs of a suite, in file order; names must be unique and safe."""
    parts = [
        controlled_variations(suite.source, suite.controlled),
        grid_variations(suite.source, suite.grid),
        {name: dict(v) for name, v in suite.configs.items()},
    ]
    if not any(parts):
        return {"base": {}}
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        for name, overrides in part.items():
            if not SAFE_NAME.match(name):
                raise ConfigError(
                    f"{suite.source}: config name '{name}' may only hold letters, "
                    "digits, '.', '_' and '-'; rename it"
                )
            if name in out:
                raise ConfigError(
                    f"{suite.source}: config name '{name}' appears twice; rename one of them"
                )
            out[name] = overrides
    return out


def cycle_order(items: list[Any], cycle: int, suite: SuiteDefinition) -> list[Any]:
    """The order of one cycle: file order, or a permutation seeded by (seed, cycle)."""
    if not suite.shuffle:
        return list(items)
    rng = random.Random(f"{suite.order_seed}:{suite.name}:{cycle}")
    return rng.sample(items, len(items))


def expand_suite(suite: SuiteDefinition, cycles: int) -> list[ExperimentSpec]:
    """Every (cycle, model, config) of the suite, cycle-major like the original runner."""
    if cycles < 1:
        raise ConfigError(f"--cycles must be at least 1 (got {cycles})")
    variations = suite_variations(suite)
    resolved: list[tuple[str, str, Any]] = []
    for model_label, model_entry in suite.models.items():
        for config_name, overrides in variations.items():
            data = deep_merge(
                deep_merge(deep_merge(suite.base, model_entry), suite.overrides), overrides
            )
            source = f"{suite.source}: model '{model_label}', config '{config_name}'"
            resolved.append((model_label, config_name, validate_experiment(data, source)))
    specs = [
        ExperimentSpec(
            suite=suite.name,
            config_name=name,
            cycle=cycle,
            config=cfg,
            model_label=label,
            order_seed=suite.order_seed if suite.shuffle else None,
        )
        for cycle in range(1, cycles + 1)
        for label, name, cfg in cycle_order(resolved, cycle, suite)
    ]
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.key in seen:
            raise ConfigError(
                f"{suite.source}: models '{seen[spec.key]}' and "
                f"'{spec.model_label}' give the same key {spec.key}; "
                "list each model once"
            )
        seen[spec.key] = spec.model_label
    return specs
