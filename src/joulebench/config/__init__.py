"""Typed configs and the YAML loader that turns mistakes into one-line errors."""

from joulebench.config.loader import load_yaml_mapping, validate_experiment
from joulebench.config.models import (
    SAFE_NAME,
    DatasetConfig,
    DecoderConfig,
    ExperimentConfig,
)

__all__ = [
    "SAFE_NAME",
    "DatasetConfig",
    "DecoderConfig",
    "ExperimentConfig",
    "load_yaml_mapping",
    "validate_experiment",
]
