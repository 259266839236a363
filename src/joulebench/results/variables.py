"""Which config fields a suite varies, and each config's value of them. Pure.

The report plots and tabulates exactly these, so it answers the suite's own question:
whatever the YAML varies (``max_output_tokens``, ``quantization``, a dotted
``decoder.temperature``, ``num_processes``, a field added next year) gets a column and plots,
with no list of "known" variables to keep up to date.

Two sources, best first:

* the suite definition (:func:`suite_variables`): its ``controlled`` and ``grid`` fields and
  every leaf its named ``configs`` set, with each config's resolved value. It also knows
  which configs vary a field: in a controlled suite only the ``batch_size_*`` configs make
  the batch-size plot, not ``decoder_greedy`` that keeps the base batch size.
* the results CSV alone (:func:`row_variables`), when the suite's YAML is gone: every config
  column whose value differs between configs (``VARIABLE_COLUMNS``), configs chosen by
  name the same way where their names say so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from joulebench.results.row import VARIABLE_COLUMNS

ConfigId = tuple[str, str]  # (model as the CSV records it, config name)


@dataclass(frozen=True)
class Variable:
    """One varied config field."""

    path: str  # dotted config field, e.g. "decoder.temperature"
    values: dict[ConfigId, Any]  # x of each config that varies it (numbers stay numbers)
    resolved: dict[ConfigId, str] = field(default_factory=dict)  # every config's value, text
    named: bool = False  # values are the suite's names of structured values ("greedy")

    @property
    def stem(self) -> str:
        """A file-name-safe form of the path: decoder.temperature -> decoder_temperature."""
        return self.path.replace(".", "_")

    @property
    def numeric(self) -> bool:
        return bool(self.values) and all(_is_number(v) for v in self.values.values())

    def text(self, config: ConfigId) -> str:
        if config in self.values:
            return _text(self.values[config])
        return self.resolved.get(config, "")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def lookup(config: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a resolved config, or None."""
    value: Any = config
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def leaves(overrides: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    """Dotted paths of the scalar fields an override sets: {decoder: {mode: x}} ->
    decoder.mode; a dotted key stays as written."""
    for key, value in overrides.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from leaves(value, path + ".")
        else:
            yield path


def _value_label(value: Any) -> str:
    # The label the suite expansion gives a listed value in a config name.
    return str(value).lower() if isinstance(value, bool) else str(value)


def _controlled(controlled: Mapping[str, Any]) -> dict[str, tuple[dict[str, Any], bool]]:
    """path -> ({config name: x or None (take the resolved value)}, named)."""
    out: dict[str, tuple[dict[str, Any], bool]] = {}
    for path, values in controlled.items():
        short = str(path).split(".")[-1]
        if isinstance(values, Mapping):
            out[str(path)] = ({f"{short}_{name}": str(name) for name in values}, True)
        else:
            out[str(path)] = ({f"{short}_{_value_label(v)}": None for v in values}, False)
    return out


def _grid(grid: Mapping[str, Any]) -> dict[str, tuple[dict[str, Any], bool]]:
    paths = [str(p) for p in grid]
    labels = {
        p: [str(n) for n in v] if isinstance(v, Mapping) else [_value_label(x) for x in v]
        for p, v in zip(paths, grid.values(), strict=True)
    }
    names = [""]
    for p in paths:  # same order and joining as the suite expansion's cartesian product
        short = p.split(".")[-1]
        names = [
            f"{n}__{short}_{label}" if n else f"{short}_{label}"
            for n in names
            for label in labels[p]
        ]
    out: dict[str, tuple[dict[str, Any], bool]] = {}
    for i, p in enumerate(paths):
        named = isinstance(grid[p], Mapping)
        prefix = f"{p.split('.')[-1]}_"
        out[p] = ({n: n.split("__")[i][len(prefix) :] if named else None for n in names}, named)
    return out


def suite_variables(
    controlled: Mapping[str, Any],
    grid: Mapping[str, Any],
    configs: Mapping[str, Mapping[str, Any]],
    resolved: Mapping[ConfigId, Mapping[str, Any]],
) -> list[Variable]:
    """The fields a suite varies, from its definition and each config's resolved fields
    (``model_dump`` of the expanded configs, keyed by (model, config name)).

    A field counts when its configs hold at least two different values. Named configs
    vary every leaf any of them sets, each config at its resolved value.
    """
    found: dict[str, tuple[dict[str, Any], bool]] = {}
    for part in (_controlled(controlled), _grid(grid) if grid else {}):
        for path, (members, named) in part.items():
            old = found.get(path, ({}, named))[0]
            found[path] = ({**old, **members}, named)
    for path in dict.fromkeys(p for o in configs.values() for p in leaves(o)):
        old, named = found.get(path, ({}, False))
        found[path] = ({**old, **dict.fromkeys(configs)}, named)
    out = []
    for path, (members, named) in found.items():
        values: dict[ConfigId, Any] = {}
        for (model, name), config in resolved.items():
            if name in members:
                x = members[name]
                values[(model, name)] = x if x is not None else lookup(config, path)
        text = {
            cid: _text(v)
            for cid, config in resolved.items()
            if not isinstance(v := lookup(config, path), Mapping)
        }
        if len({_text(v) for v in values.values()}) >= 2:
            out.append(Variable(path, values, text, named))
    return out


def _number(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def _by_name(config_name: str, column: str, path: str) -> bool:
    """Whether a config's name says it varies this field (batch_size_8, decoder_greedy)."""
    prefixes = {column, path.split(".")[0], path.split(".")[-1]}
    return any(part.startswith(f"{p}_") for part in config_name.split("__") for p in prefixes)


def row_variables(rows: Iterable[Mapping[str, str]]) -> list[Variable]:
    """The varied fields as the results CSV alone shows them (the suite's YAML is gone)."""
    first: dict[ConfigId, Mapping[str, str]] = {}
    for row in rows:
        first.setdefault((row.get("model") or "", row.get("config_name") or ""), row)
    out = []
    for column, path in VARIABLE_COLUMNS.items():
        text = {cid: (r.get(column) or "").strip() for cid, r in first.items()}
        if len(set(text.values()) - {""}) < 2:
            continue
        marked = {cid: t for cid, t in text.items() if _by_name(cid[1], column, path)}
        chosen = marked if len(set(marked.values()) - {""}) >= 2 else text
        values = {cid: _number(t) for cid, t in chosen.items() if t}
        out.append(Variable(path, values, text))
    return out
