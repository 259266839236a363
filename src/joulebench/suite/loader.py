"""Read a suite YAML (plus its base config and models list) into a SuiteDefinition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from joulebench.config.loader import describe_validation_error, load_yaml_mapping
from joulebench.config.models import SAFE_NAME, Bool, Int
from joulebench.errors import ConfigError
from joulebench.suite.expand import SuiteDefinition, expand_suite
from joulebench.suite.spec import ExperimentSpec


class SuiteFile(BaseModel):
    """The keys a suite YAML may hold."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str = ""
    base: str = "../base.yaml"
    models_file: str = "../models.yaml"
    models: list[str] = Field(..., min_length=1)
    overrides: dict[str, Any] = {}
    controlled: dict[str, Any] = {}
    grid: dict[str, list[Any] | dict[str, Any]] = {}
    configs: dict[str, dict[str, Any]] = {}
    shuffle: Bool = True
    order_seed: Int = 0


def resolve_suite_path(suite: str, configs_dir: Path) -> Path:
    """A suite name means configs/suites/NAME.yaml; a .yaml path is taken as given."""
    if suite.endswith((".yaml", ".yml")):
        path = Path(suite)
        if not path.is_file():
            raise ConfigError(f"{path}: suite file not found; check the path")
        return path
    if configs_dir.exists() and not configs_dir.is_dir():
        raise ConfigError(
            f"--configs-dir {configs_dir}: is a file, not a folder; pass the "
            "folder holding base.yaml, models.yaml and suites/"
        )
    if not SAFE_NAME.match(suite):
        raise ConfigError(
            f"suite name '{suite}' may only hold letters, digits, '.', '_' and "
            "'-'; pass a name from configs/suites/ or a path ending in .yaml"
        )
    path = configs_dir / "suites" / f"{suite}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in (configs_dir / "suites").glob("*.yaml"))
        hint = f"available: {', '.join(available)}" if available else f"no suites in {path.parent}"
        raise ConfigError(f"{path}: suite '{suite}' not found; {hint}")
    return path


def _load_models(path: Path, wanted: list[str], suite_path: Path) -> dict[str, dict[str, Any]]:
    data = load_yaml_mapping(path)
    entries = data.get("models", data)
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: 'models' must map a model name to its settings")
    out: dict[str, dict[str, Any]] = {}
    for name in wanted:
        entry = entries.get(name)
        if entry is None:
            known = ", ".join(sorted(map(str, entries))) or "none"
            raise ConfigError(
                f"{suite_path}: field 'models': '{name}' is not in {path} "
                f"(known: {known}); add it there or fix the name"
            )
        if not isinstance(entry, dict) or "model" not in entry:
            raise ConfigError(
                f"{path}: model '{name}' needs a mapping with a 'model' key (hub id or local path)"
            )
        out[name] = entry
    return out


def load_suite(suite: str, configs_dir: Path = Path("configs")) -> SuiteDefinition:
    """Read and check a suite file; nothing is expanded or written yet."""
    path = resolve_suite_path(suite, configs_dir)
    raw = load_yaml_mapping(path)
    try:
        parsed = SuiteFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, SuiteFile, str(path))) from None
    name = parsed.name or path.stem
    if not SAFE_NAME.match(name):
        raise ConfigError(
            f"{path}: field 'name': '{name}' may only hold letters, digits, '.', '_' and '-'"
        )
    base_path = (path.parent / parsed.base).resolve()
    base = load_yaml_mapping(base_path) if parsed.base else {}
    models = _load_models((path.parent / parsed.models_file).resolve(), parsed.models, path)
    return SuiteDefinition(
        name=name,
        source=str(path),
        base=base,
        models=models,
        overrides=parsed.overrides,
        controlled=parsed.controlled,
        grid=parsed.grid,
        configs=parsed.configs,
        shuffle=parsed.shuffle,
        order_seed=parsed.order_seed,
    )


def load_and_expand(
    suite: str, cycles: int, configs_dir: Path = Path("configs")
) -> list[ExperimentSpec]:
    """Convenience for notebooks: suite name -> validated specs."""
    return expand_suite(load_suite(suite, configs_dir), cycles)
