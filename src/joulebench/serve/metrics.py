"""`/metrics` in Prometheus' text exposition format (version 0.0.4), from one snapshot.

Written by hand rather than through prometheus_client's registry: the values are a view
of files, recomputed per change, not counters this process increments; the format is a
few lines per family, and the tests parse it with prometheus_client's own parser.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from joulebench.results.report import is_current
from joulebench.results.stats import to_float
from joulebench.schedulers.monitor import FAILED_PREFIX, is_failed
from joulebench.serve.state import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{_labels(labels)} {value!r}" for labels, value in samples]
    return lines


def latest_energy_per_token(snap: Snapshot) -> dict[tuple[str, str, str], float]:
    """(suite, model, config) -> J/token of its most recently finished current run
    (current by the suite's own rule, as `report` decides it)."""
    latest: dict[tuple[str, str, str], tuple[str, float]] = {}
    for row in snap.rows:
        if not is_current(row, snap.current_for(row.get("suite") or "")):
            continue
        value = to_float(row.get("energy_per_output_token_j"))
        if value is None:
            continue
        group = (row.get("suite") or "", row.get("model") or "", row.get("config_name") or "")
        finished = row.get("finished_at") or ""
        if group not in latest or finished >= latest[group][0]:
            latest[group] = (finished, value)
    return {group: value for group, (_, value) in latest.items()}


def render(snap: Snapshot) -> str:
    suites: list[dict[str, Any]] = snap.suites["suites"]
    lines = _family(
        "joulebench_tracker_readable",
        "gauge",
        "1 when the progress tracker loads, 0 when it is damaged "
        "(joulebench tracker check says why).",
        [({}, 1.0 if snap.tracker_ok else 0.0)],
    )
    lines += _family(
        "joulebench_keys",
        "gauge",
        "Keys per suite and state, as status shows.",
        [
            ({"suite": s["name"], "state": state}, float(n))
            for s in suites
            for state, n in s["counts"].items()
        ],
    )
    lines += _family(
        "joulebench_experiments_finished",
        "gauge",
        "Keys of the suite that are done.",
        [({"suite": s["name"]}, float(s["done"])) for s in suites],
    )
    lines += _family(
        "joulebench_flagged_results",
        "gauge",
        "Done results whose quality flags exclude them from the report.",
        [({"suite": s["name"]}, float(s["flagged"])) for s in suites],
    )
    causes: Counter[tuple[str, str]] = Counter()
    for s in suites:
        for state, n in s["counts"].items():
            if is_failed(state):
                causes[(s["name"], state.removeprefix(FAILED_PREFIX) or "unknown")] += n
    lines += _family(
        "joulebench_failures",
        "gauge",
        "Keys whose last attempt failed, by cause.",
        [
            ({"suite": suite, "cause": cause}, float(n))
            for (suite, cause), n in sorted(causes.items())
        ],
    )
    energy = latest_energy_per_token(snap)
    lines += _family(
        "joulebench_energy_per_output_token_joules",
        "gauge",
        "Energy per output token of the latest finished run of each config.",
        [({"suite": s, "model": m, "config": c}, v) for (s, m, c), v in sorted(energy.items())],
    )
    return "\n".join(lines) + "\n"
