"""Where each key's Slurm job stands: sacct for history and causes, squeue for what lives.

The tracker says what a key's process last recorded; this joins it with Slurm's view,
which may lag (sacct) or be unreachable (slurmdbd or slurmctld down). A key whose job
cannot be placed is "unknown", and nothing resubmits it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from joulebench.errors import SchedulerError
from joulebench.schedulers import monitor, slurm
from joulebench.schedulers.sacct import SacctJob
from joulebench.tracker import DONE, KeyRecord, TrackerState
from joulebench.wording import plural


@dataclass(frozen=True)
class KeyLabels:
    labels: dict[str, str]  # key -> label (see monitor.LABELS, or failed:<cause>)
    sacct_problem: str | None = None  # one line: what status could not ask, and what it shows
    unknown: frozenset[str] = frozenset()  # keys whose Slurm job may still be alive


@dataclass(frozen=True)
class SlurmView:
    jobs: dict[str, SacctJob] | None  # None: the tracker alone
    unknown: frozenset[str] = frozenset()  # job IDs neither sacct nor squeue could place
    problem: str | None = None


def slurm_view(
    state: TrackerState, records: list[KeyRecord], runner: slurm.CommandRunner
) -> SlurmView:
    """sacct for history and causes; squeue (slurmctld) for the jobs sacct cannot place.

    sacct lags: slurmctld reports jobs to slurmdbd asynchronously, and not at all while
    slurmdbd is down. A job sacct does not know may be running, and one sacct shows ended
    (NODE_FAIL, PREEMPTED) may already be requeued, its new run not yet recorded. Neither
    is taken for gone unless squeue, which lists every live job, does not list it either.
    """
    ids = [str(r.job_id) for r in records if r.state != DONE and monitor.is_slurm_job(r.job_id)]
    if not ids:
        return SlurmView({})
    starts = [info.get("first_submitted_at") for info in state.suites.values()]
    start = min((s for s in starts if s), default=None)
    result = slurm.query_sacct(ids, monitor.sacct_starttime(start), runner)
    known = result.jobs or {}
    missing = [i for i in ids if i not in known]
    ended = [i for i in ids if i in known and known[i].category != "active"]
    active = [i for i in ids if i in known and known[i].category == "active"]
    if not missing and not ended and not active:
        return SlurmView(result.jobs)
    live = slurm.query_squeue(runner)
    if live.jobs is None:
        if result.jobs is None:
            return SlurmView(
                None, frozenset(ids), f"{result.problem}; {live.problem}; showing the tracker alone"
            )
        if not missing and not ended:  # sacct's (maybe lagging) view of live jobs stands
            return SlurmView(result.jobs)
        return SlurmView(
            result.jobs,
            frozenset(missing + ended),
            f"{len(missing) + len(ended)} jobs sacct cannot place for sure and {live.problem}",
        )
    jobs = dict(known)
    for i in missing:
        if i in live.jobs:
            jobs[i] = live.jobs[i]
    for i in active:
        if i in live.jobs:  # squeue is slurmctld's state now; sacct's may be seconds old
            jobs[i] = _live_over_recorded(live.jobs[i], known[i])
    for i in ended:
        if i in live.jobs:  # requeued: the ended run becomes history of the live one
            old = known[i]
            jobs[i] = replace(live.jobs[i], history=[*old.history, old.state])
    note = (
        None
        if result.jobs is not None
        else f"{result.problem}; live jobs from squeue, failure causes from the tracker"
    )
    return SlurmView(jobs, frozenset(), note)


def _live_over_recorded(live: SacctJob, recorded: SacctJob) -> SacctJob:
    """squeue's state with sacct's history; a job sacct saw run that squeue shows pending
    again was requeued (preempted, or ``scontrol requeue``) before sacct heard of it."""
    history = list(recorded.history)
    if live.state == "PENDING" and recorded.state in ("RUNNING", "COMPLETING"):
        history.append("REQUEUED")
    return replace(live, history=history)


def label_keys(
    state: TrackerState, suite: str | None, runner: slurm.CommandRunner, use_sacct: bool = True
) -> KeyLabels:
    """Label every key of ``suite`` (or all) from the tracker and one sacct call."""
    records = [r for r in state.keys.values() if suite is None or r.suite == suite]
    # Without sacct a Slurm job's fate is unknown (None), not "gone" ({}): an empty
    # answer would label every running Slurm key stale.
    view = slurm_view(state, records, runner) if use_sacct else SlurmView(None)
    unknown = frozenset(r.key for r in records if str(r.job_id) in view.unknown)
    labels = {r.key: monitor.classify(r, view.jobs) for r in records}
    monitor.mark_starting(records, labels, view.jobs)
    return KeyLabels(labels, view.problem, unknown)


def latest_failures(
    records: list[KeyRecord], labels: KeyLabels, per_suite: int | None = None
) -> list[KeyRecord]:
    """Failed keys, newest first, each carrying the cause its label shows: the tracker may
    say only ``interrupted`` where Slurm knows ``cancelled``, and the status table and the
    failure lines under it must name one failure with one word. ``per_suite`` keeps that
    many of each suite, so one busy suite cannot hide another's failures."""
    failed = [
        replace(r, cause=monitor.resumable(labels.labels[r.key]))
        for r in records
        if monitor.is_failed(labels.labels.get(r.key, ""))
    ]
    failed.sort(key=lambda r: r.updated_at or "", reverse=True)
    if per_suite is None:
        return failed
    kept: dict[str | None, int] = {}
    out = []
    for rec in failed:
        if kept.get(rec.suite, 0) < per_suite:
            kept[rec.suite] = kept.get(rec.suite, 0) + 1
            out.append(rec)
    return out


def refuse_unknown(keys: list[str], labels: KeyLabels, action: str) -> None:
    """Never (re)submit a key whose Slurm job might still be queued or running."""
    blocked = [k for k in keys if k in labels.unknown]
    if blocked:
        raise SchedulerError(
            f"{plural(len(blocked), 'key')} (first: {blocked[0]}) with Slurm jobs whose state is "
            f"unknown ({labels.sacct_problem}); {action} nothing so none runs twice. "
            "Retry when sacct or squeue answers"
        )
