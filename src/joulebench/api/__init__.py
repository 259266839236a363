"""The Python API the CLI is a thin layer over; notebook users call it directly.

>>> from joulebench import api
>>> specs = api.expand_suite("demo", cycles=2)
>>> summary = api.submit_suite("demo", cycles=2, executor="local")
>>> rows = api.status_rows("demo")
>>> frame = api.load_results("demo")

Split by what a call is about: ``submit`` (checks, local runs, Slurm arrays,
resume-failed, ``run``), ``status`` (the tracker joined with sacct/squeue), ``results``
(one experiment's files, the report, the results as a DataFrame) and ``common``.
"""

from joulebench.api.common import NO_SLURM_OPTIONS, check_suite_name, expand_suite
from joulebench.api.results import (
    current_experiment_ids,
    load_results,
    report_suite,
    report_variables,
    show_experiment,
)
from joulebench.api.status import (
    StatusReport,
    StatusRow,
    _live_keys,
    flagged_counts,
    key_labels,
    resumable_keys,
    rows_by_cycle,
    status_report,
    status_rows,
)
from joulebench.api.submit import (
    BACKUPS_KEPT,
    SUITE_ONLY_KEYS,
    CheckedSuite,
    SubmitSummary,
    _resume_executor,
    check_submission,
    check_suite,
    ignored_slurm_flags,
    plan_slurm,
    resume_failed,
    run_config,
    submit_suite,
    submit_to_slurm,
)
from joulebench.errors import ConfigError
from joulebench.paths import Paths
from joulebench.schedulers.executors import EXECUTOR_CHOICES, choose_executor, last_executor

__all__ = [
    "BACKUPS_KEPT",
    "EXECUTOR_CHOICES",
    "NO_SLURM_OPTIONS",
    "SUITE_ONLY_KEYS",
    "CheckedSuite",
    "ConfigError",
    "Paths",
    "StatusReport",
    "StatusRow",
    "SubmitSummary",
    "_live_keys",
    "_resume_executor",
    "check_submission",
    "check_suite",
    "check_suite_name",
    "choose_executor",
    "current_experiment_ids",
    "expand_suite",
    "flagged_counts",
    "ignored_slurm_flags",
    "key_labels",
    "last_executor",
    "load_results",
    "plan_slurm",
    "report_suite",
    "report_variables",
    "resumable_keys",
    "resume_failed",
    "rows_by_cycle",
    "run_config",
    "show_experiment",
    "status_report",
    "status_rows",
    "submit_suite",
    "submit_to_slurm",
]
