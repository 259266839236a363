"""The energy meters' names: the one list the config, the factory and the docs share.

A leaf module (no imports from the project) so ``config.models`` can type its
``energy_meter`` and ``extra_meters`` fields with it without pulling in any meter.
"""

from __future__ import annotations

from typing import Literal, get_args

# A meter that can run beside the main one; "auto" is only a choice of main meter.
ExtraMeterName = Literal["codecarbon", "nvml", "rapl"]
MeterName = Literal["auto", ExtraMeterName]  # Literal of a Literal flattens

METER_NAMES: tuple[MeterName, ...] = get_args(MeterName)
EXTRA_METER_NAMES: tuple[ExtraMeterName, ...] = get_args(ExtraMeterName)
