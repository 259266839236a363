"""The CSV cells of issue 16: serving figures, J/request and the prefill/decode split.

Appended after every older column (``results.row.CSV_COLUMNS`` ends with these); an
offline run leaves the serving cells empty, a serving run the phase cells.
"""

from __future__ import annotations

from typing import Any

from joulebench.results.records import Sections

SCENARIO_COLUMNS: tuple[str, ...] = (
    "scenario_mode",
    "arrival",
    "request_rate",
    "max_concurrency",
    "num_requests",
    "batching_policy",
    "schedule_hash",
    "request_throughput_per_s",
    "goodput_requests_per_s",
    "slo_attainment",
    "queue_delay_mean_s",
    "ttft_p99_s",
    "tpot_mean_s",
    "tpot_p95_s",
    "e2e_p50_s",
    "e2e_p95_s",
    "e2e_p99_s",
    "batch_occupancy_mean",
    "steady_state_s",
    "steady_state_energy_j",
    "steady_state_output_tokens_per_s",
    "energy_per_request_j_mean",
    "energy_per_request_j_p50",
    "energy_per_request_j_p90",
    "energy_per_request_j_p99",
    "dynamic_energy_per_request_j_mean",
    "dynamic_energy_per_request_j_p50",
    "dynamic_energy_per_request_j_p90",
    "dynamic_energy_per_request_j_p99",
    "per_request_energy_method",
    "counter_resolution_s",
    "prefill_energy_j",
    "decode_energy_j",
    "prefill_energy_per_input_token_j",
    "decode_energy_per_output_token_j",
)
SCENARIO_STRING_COLUMNS = frozenset(
    {"scenario_mode", "arrival", "batching_policy", "schedule_hash", "per_request_energy_method"}
)
# Config fields these columns record (column -> dotted field), for the report.
SCENARIO_VARIABLE_COLUMNS: dict[str, str] = {
    "scenario_mode": "scenario.mode",
    "arrival": "scenario.arrival",
    "request_rate": "scenario.request_rate",
    "max_concurrency": "scenario.max_concurrency",
    "num_requests": "scenario.num_requests",
}


def scenario_cells(sections: Sections) -> dict[str, Any]:
    scenario = sections["variables"].get("scenario") or {}
    row: dict[str, Any] = {
        "scenario_mode": scenario.get("mode", "offline"),
        **_serving_cells(sections),
        **_phase_cells(sections),
    }
    return row


def _serving_cells(sections: Sections) -> dict[str, Any]:
    serving = sections["inference"].get("serving")
    if serving is None:
        return {}
    steady = serving["steady_state"] or {}
    cells: dict[str, Any] = {
        "arrival": serving["arrival"],
        "request_rate": serving["request_rate"],
        "max_concurrency": serving["max_concurrency"],
        "num_requests": serving["num_requests"],
        "batching_policy": serving["policy"],
        "schedule_hash": serving["schedule_hash"],
        "request_throughput_per_s": serving["request_throughput_per_s"],
        "goodput_requests_per_s": serving["goodput_requests_per_s"],
        "slo_attainment": serving["slo_attainment"],
        "queue_delay_mean_s": serving["queue_delay"]["mean_s"],
        "ttft_p99_s": serving["ttft"]["p99_s"],
        "tpot_mean_s": serving["tpot"]["mean_s"],
        "tpot_p95_s": serving["tpot"]["p95_s"],
        "e2e_p50_s": serving["e2e"]["p50_s"],
        "e2e_p95_s": serving["e2e"]["p95_s"],
        "e2e_p99_s": serving["e2e"]["p99_s"],
        "batch_occupancy_mean": serving["batch_occupancy_mean"],
        "steady_state_s": steady.get("duration_s"),
        "steady_state_energy_j": steady.get("energy_j"),
        "steady_state_output_tokens_per_s": steady.get("throughput_output_tokens_per_s"),
    }
    per_request = sections["energy"].get("per_request")
    if per_request is not None:
        for kind, summary in (
            ("energy_per_request_j", per_request["energy_per_request"]),
            ("dynamic_energy_per_request_j", per_request["dynamic_energy_per_request"]),
        ):
            for stat in ("mean", "p50", "p90", "p99"):
                cells[f"{kind}_{stat}"] = summary[f"{stat}_j"]
        cells["per_request_energy_method"] = per_request["method"]
        cells["counter_resolution_s"] = per_request["counter_resolution_s"]
    return cells


def _phase_cells(sections: Sections) -> dict[str, Any]:
    phases = sections["inference"].get("energy_by_phase")
    if not phases:
        return {}
    return {
        "prefill_energy_j": phases["prefill_energy_j"],
        "decode_energy_j": phases["decode_energy_j"],
        "prefill_energy_per_input_token_j": phases["prefill_energy_per_input_token_j"],
        "decode_energy_per_output_token_j": phases["decode_energy_per_output_token_j"],
    }
