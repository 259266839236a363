"""What a suite expands into: one spec per (model, config, cycle)."""

from __future__ import annotations

from dataclasses import dataclass, field

from joulebench.config.models import ExperimentConfig

KEY_SEPARATOR = "::"


def make_key(model: str, suite: str, config_name: str, cycle: int) -> str:
    """The original system's progress key: ``model::suite::config::cycle``."""
    return KEY_SEPARATOR.join([model, suite, config_name, str(cycle)])


def split_key(key: str) -> tuple[str, str, str, int]:
    """Inverse of make_key; model ids may contain '/', never '::'."""
    model, suite, config_name, cycle = key.rsplit(KEY_SEPARATOR, 3)
    return model, suite, config_name, int(cycle)


@dataclass(frozen=True)
class ExperimentSpec:
    """One runnable experiment of a suite, with its stable key and config hash."""

    suite: str
    config_name: str
    cycle: int
    config: ExperimentConfig
    model_label: str = ""
    order_seed: int | None = None  # set when the cycle's order was shuffled
    key: str = field(init=False)
    config_hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "key", make_key(self.config.model, self.suite, self.config_name, self.cycle)
        )
        object.__setattr__(self, "config_hash", self.config.config_hash())

    @property
    def resource_shape(self) -> tuple[str, int, int]:
        """Specs with the same shape can share one Slurm array: device, processes per
        node, nodes (an array asks every task for the same --nodes)."""
        return (self.config.device, self.config.num_processes, self.config.nodes)
