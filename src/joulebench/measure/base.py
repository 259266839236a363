"""What every energy meter returns, and the two-call protocol every meter follows.

A meter measures one window: ``start()`` then ``stop()``. Keeping the protocol this
small lets the runner wrap exactly the code it wants measured (e.g. generation only,
not model loading) and lets tests swap in a fake meter without any vendor library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from joulebench.errors import MeasureError

# "counter+polling" exists because one NVML window can mix GPUs with and without
# an energy counter; per-device methods are then in details.
METHODS: frozenset[str] = frozenset({"counter", "polling", "counter+polling", "estimate"})

_REQUIRED_KEYS = ("meter", "method", "duration_s", "energy_j_by_device", "is_estimate")


@dataclass(frozen=True)
class EnergyMeasurement:
    """Energy used during one measured window, split by device.

    ``energy_j_by_device`` keys are stable labels such as ``"gpu:GPU-<uuid>"`` (NVML)
    or ``"cpu"``, ``"ram"``, ``"gpu"`` (codecarbon), so results from different runs
    on the same hardware can be compared device by device.
    """

    meter: str
    method: str
    duration_s: float
    energy_j_by_device: dict[str, float]
    is_estimate: bool
    emissions_kg: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked here so a corrupt results file or a buggy meter fails loudly at the
        # point of creation, not later as a nonsense J/token figure.
        if self.method not in METHODS:
            raise MeasureError(
                f"energy measurement method {self.method!r} is unknown: "
                f"use one of {sorted(METHODS)}"
            )
        if not math.isfinite(self.duration_s) or self.duration_s < 0:
            raise MeasureError(
                f"energy measurement duration_s={self.duration_s!r} is invalid: "
                "it must be a finite number >= 0"
            )
        for label, joules in self.energy_j_by_device.items():
            if not math.isfinite(joules) or joules < 0:
                raise MeasureError(
                    f"energy for {label!r} is {joules!r} J: "
                    "it must be a finite number >= 0; rerun the measurement"
                )

    @property
    def energy_j(self) -> float:
        """Total energy over all devices, in joules."""
        return float(sum(self.energy_j_by_device.values()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``energy_j`` is included for readers but ignored on load."""
        return {
            "meter": self.meter,
            "method": self.method,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "energy_j_by_device": dict(self.energy_j_by_device),
            "is_estimate": self.is_estimate,
            "emissions_kg": self.emissions_kg,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EnergyMeasurement:
        """Inverse of :meth:`to_dict`; raises MeasureError naming a missing key."""
        missing = [key for key in _REQUIRED_KEYS if key not in d]
        if missing:
            raise MeasureError(
                f"energy measurement record lacks {', '.join(missing)}: "
                "the results file is incomplete or from another tool; rerun the experiment"
            )
        emissions = d.get("emissions_kg")
        return cls(
            meter=str(d["meter"]),
            method=str(d["method"]),
            duration_s=float(d["duration_s"]),
            energy_j_by_device={str(k): float(v) for k, v in d["energy_j_by_device"].items()},
            is_estimate=bool(d["is_estimate"]),
            emissions_kg=None if emissions is None else float(emissions),
            details=dict(d.get("details") or {}),
        )


@runtime_checkable
class EnergyMeter(Protocol):
    """Measures one window at a time: ``start()``, run the workload, ``stop()``.

    Implementations raise MeasureError (never a vendor exception) when the sensor is
    missing or fails, and must release vendor resources in ``stop()`` even on error.
    """

    name: str

    def start(self) -> None:
        """Begin a measurement window."""
        ...

    def stop(self) -> EnergyMeasurement:
        """End the window started by :meth:`start` and return its energy."""
        ...
