"""The ``scenario`` block: how requests reach the model (the vocabulary of issue 16).

``offline`` is today's fixed batches, every prompt present at t=0. ``serving`` draws a
seeded arrival schedule and feeds an engine that batches whatever has arrived.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

ScenarioMode = Literal["offline", "serving"]
OFFLINE: ScenarioMode = "offline"
SERVING: ScenarioMode = "serving"
SCENARIO_MODES: tuple[ScenarioMode, ...] = get_args(ScenarioMode)

ArrivalProcess = Literal["poisson", "constant", "burst"]
POISSON: ArrivalProcess = "poisson"
CONSTANT: ArrivalProcess = "constant"
BURST: ArrivalProcess = "burst"  # every request at t=0
ARRIVAL_PROCESSES: tuple[ArrivalProcess, ...] = get_args(ArrivalProcess)

_Int = Annotated[int, Strict()]
_Float = Annotated[float, Strict()]


class ScenarioConfig(BaseModel):
    """Offline batches, or requests arriving over time at ``request_rate`` per second."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: ScenarioMode = OFFLINE
    arrival: ArrivalProcess = POISSON
    request_rate: _Float = Field(4.0, gt=0, description="requests per second")
    max_concurrency: _Int = Field(32, ge=1, description="requests in flight at most")
    num_requests: _Int = Field(256, ge=1)
    slo_ttft_ms: _Float | None = Field(None, gt=0)
    slo_tpot_ms: _Float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _slos_need_serving(self) -> ScenarioConfig:
        if self.mode != SERVING and (self.slo_ttft_ms is not None or self.slo_tpot_ms is not None):
            raise ValueError(
                "scenario.slo_ttft_ms / slo_tpot_ms apply to served requests only but "
                f"scenario.mode is {self.mode}; set scenario.mode: serving or remove the SLOs"
            )
        return self

    @property
    def serving(self) -> bool:
        return self.mode == SERVING
