"""Suites: YAML -> validated, expanded ExperimentSpec lists (pure where it can be)."""

from joulebench.suite.expand import SuiteDefinition, deep_merge, expand_suite
from joulebench.suite.loader import load_and_expand, load_suite, resolve_suite_path
from joulebench.suite.spec import ExperimentSpec, make_key, split_key

__all__ = [
    "ExperimentSpec",
    "SuiteDefinition",
    "deep_merge",
    "expand_suite",
    "load_and_expand",
    "load_suite",
    "make_key",
    "resolve_suite_path",
    "split_key",
]
