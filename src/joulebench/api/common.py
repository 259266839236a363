"""What every part of the API shares: the suite-name rule and the suite expansion."""

from __future__ import annotations

from joulebench.config.models import SAFE_NAME
from joulebench.errors import ConfigError
from joulebench.paths import Paths
from joulebench.schedulers.slurm_options import SlurmOptions
from joulebench.suite import ExperimentSpec, load_and_expand

NO_SLURM_OPTIONS = SlurmOptions()  # frozen: safe as a shared default


def expand_suite(suite: str, cycles: int = 1, paths: Paths = Paths()) -> list[ExperimentSpec]:
    return load_and_expand(suite, cycles, paths.configs_dir)


def check_suite_name(suite: str) -> None:
    """A suite name becomes part of file names (archive/, reports/): keep it tame."""
    if not SAFE_NAME.match(suite):
        raise ConfigError(
            f"suite name '{suite}' may only hold letters, digits, '.', '_' "
            "and '-'; use the name of a file in configs/suites/"
        )
