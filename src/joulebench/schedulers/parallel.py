"""Several experiments at once on one node, each on its own devices (--max-parallel N).

A scheduler of device sets above the one-key entry point: the main thread hands each
key, in suite order, the first free device set of its size (``runner.device_sets``) and
runs it in one of N threads through ``job.run_task``, so every experiment keeps its own
claim, ID, warm-up, window, checkpoint, files and CSV row under the tracker lock. A key
that needs more devices than are free waits (later keys that fit go ahead); each device
set keeps its launched workers for the next key that gets the same set. A failure ends
only its own key. Ctrl-C (or TERM) stops every running experiment's workers, each key's
attempt is recorded as interrupted, and a rerun resumes them under their IDs.

Who ran beside whom is recorded for the energy results (``measure.host_share``): the
experiments whose runs overlapped (from claim to last batch, so warm-up and load count)
share the node's host energy.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import FrameType

from joulebench.errors import ConfigError
from joulebench.measure.host_share import HostSharing, node_sharing
from joulebench.paths import Paths
from joulebench.runner.device_sets import (
    CPU,
    CUDA,
    DeviceKind,
    DevicePool,
    DeviceSet,
    devices_needed,
    node_devices,
    refuse_oversized,
)
from joulebench.runner.launch import note_stop_signal
from joulebench.runner.pool import WorkerPools
from joulebench.schedulers.job import TaskOutcome, job_id_from_env, run_task
from joulebench.suite.spec import ExperimentSpec
from joulebench.tracker import ProgressTracker

log = logging.getLogger(__name__)


class Stopped(BaseException):
    """Raised in a slot thread instead of a retry's back-off sleep once a stop began."""


def _gpu_count() -> int:
    from joulebench.measure.nvml_devices import visible_gpu_count

    count = visible_gpu_count()
    if count is None:
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return count


@dataclass(frozen=True)
class DevicePlan:
    """Each key's device kind and how many devices it gets; the node's devices by kind."""

    needs: dict[str, tuple[DeviceKind, int]]
    node: dict[DeviceKind, list[str]]


def plan_devices(
    specs: list[ExperimentSpec],
    max_parallel: int,
    where: str,
    env: dict[str, str] | None = None,
    cores: set[int] | None = None,
    gpu_count: Callable[[], int] = _gpu_count,
) -> DevicePlan:
    """Size every key's device set; refuse (ConfigError) a key that could never fit."""
    from joulebench.runner.model import resolve_device

    env = dict(os.environ) if env is None else env
    cores = os.sched_getaffinity(0) if cores is None else cores
    kinds: dict[str, DeviceKind] = {}
    node: dict[DeviceKind, list[str]] = {}
    needs: dict[str, tuple[DeviceKind, int]] = {}
    for spec in specs:
        if spec.config.device not in kinds:
            kinds[spec.config.device] = CUDA if resolve_device(spec.config.device) == CUDA else CPU
        kind = kinds[spec.config.device]
        if kind not in node:
            node[kind] = node_devices(kind, env, gpu_count() if kind == CUDA else 0, cores)
        needs[spec.key] = (
            kind,
            devices_needed(kind, spec.config.num_processes, len(node[kind]), max_parallel),
        )
    for kind, devices in node.items():
        refuse_oversized({k: n for k, (c, n) in needs.items() if c == kind}, kind, devices, where)
    return DevicePlan(needs, node)


class Overlaps:
    """When each key of this run started and ended, to tell who ran beside whom."""

    def __init__(self, tracker: ProgressTracker) -> None:
        self._tracker = tracker
        self._guard = threading.Lock()
        self._spans: dict[str, list[float | None]] = {}
        self._ids: dict[str, str] = {}

    def begin(self, key: str) -> None:
        with self._guard:
            self._spans[key] = [time.monotonic(), None]

    def end(self, key: str) -> None:
        with self._guard:
            if self._spans[key][1] is None:
                self._spans[key][1] = time.monotonic()

    def concurrent_ids(self, key: str, experiment_id: str) -> list[str]:
        """IDs of the other experiments whose runs overlapped ``key``'s, which ends now
        (its workers are done: writing its files draws no energy it reports)."""
        now = time.monotonic()
        with self._guard:
            self._ids[key] = experiment_id
            self._spans[key][1] = now
            start = self._spans[key][0] or now
            others = [
                k
                for k, (s, e) in self._spans.items()
                if k != key and s is not None and s < now and (e is None or e > start)
            ]
            missing = [k for k in others if k not in self._ids]
        if missing:  # still running: their IDs are in the tracker since their claim
            state = self._tracker.read()
            with self._guard:
                for k in missing:
                    rec = state.keys.get(k)
                    if rec is not None and rec.experiment_id:
                        self._ids[k] = rec.experiment_id
        with self._guard:
            return sorted({self._ids[k] for k in others if k in self._ids})


class _Slots:
    """The live worker groups, one ``WorkerPools`` per device set."""

    def __init__(self) -> None:
        self.by_set: dict[DeviceSet, WorkerPools] = {}

    def for_set(self, device_set: DeviceSet) -> WorkerPools:
        # Idle workers on any of these devices (another set) would hold their memory.
        for other in [s for s in self.by_set if s != device_set]:
            if other.kind == device_set.kind and set(other.ids) & set(device_set.ids):
                self.by_set.pop(other).close()
        if device_set not in self.by_set:
            self.by_set[device_set] = WorkerPools(device_set=device_set)
        return self.by_set[device_set]

    def preferred(self, kind: DeviceKind) -> list[tuple[str, ...]]:
        """Device sets of this kind whose workers are alive (a key there skips a launch)."""
        return [s.ids for s in self.by_set if s.kind == kind]

    def stop_all(self) -> None:
        for pools in self.by_set.values():
            pools.stop()

    def close_all(self) -> None:
        for pools in self.by_set.values():
            pools.close()
        self.by_set.clear()


def _stop_signals() -> Callable[[], None]:
    """TERM ends the run like Ctrl-C (a clean stop), not by the default instant exit."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    return lambda: signal.signal(signal.SIGTERM, previous)


class _SideBySide:
    """One --max-parallel run: the main thread dispatches, N slot threads run keys."""

    def __init__(self, paths: Paths, max_parallel: int, plan: DevicePlan) -> None:
        self.paths, self.max_parallel, self.plan = paths, max_parallel, plan
        self.tracker = ProgressTracker(paths.tracker_dir)
        self.job_id = job_id_from_env()
        self.overlaps = Overlaps(self.tracker)
        self.devices = {kind: DevicePool(kind, ids) for kind, ids in plan.node.items()}
        self.slots = _Slots()
        self.stopping = threading.Event()
        self.running: dict[Future[TaskOutcome], DeviceSet] = {}

    def back_off(self, seconds: float) -> None:
        """A retry's wait; once a stop began the slot ends instead of retrying."""
        if self.stopping.wait(seconds):
            raise Stopped

    def run_one(
        self, spec: ExperimentSpec, device_set: DeviceSet, pools: WorkerPools
    ) -> TaskOutcome:
        """In a slot thread: the key's claim, run and record, as a Slurm task does them."""
        self.overlaps.begin(spec.key)
        try:
            return run_task(
                spec,
                self.paths,
                self.tracker,
                self.job_id,
                sleep=self.back_off,
                pools=pools,
                sharing=lambda eid: _sharing(self.overlaps, spec.key, eid, device_set),
            )
        finally:
            self.overlaps.end(spec.key)

    def start_what_fits(
        self,
        pending: list[ExperimentSpec],
        executor: ThreadPoolExecutor,
        on_start: Callable[[ExperimentSpec], None] | None,
    ) -> None:
        """Start pending keys in order while slots and devices last; a key that does not
        fit waits, and a later, smaller one may go ahead."""
        for spec in list(pending):
            if len(self.running) >= self.max_parallel:
                return
            kind, needed = self.plan.needs[spec.key]
            device_set = self.devices[kind].take(needed, self.slots.preferred(kind))
            if device_set is None:
                continue
            pending.remove(spec)
            log.info("%s on %s", spec.key, device_set.label)
            if on_start is not None:
                on_start(spec)
            pools = self.slots.for_set(device_set)
            self.running[executor.submit(self.run_one, spec, device_set, pools)] = device_set

    def collect(self) -> list[TaskOutcome]:
        """Wait for at least one running key to end; free its devices."""
        finished, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
        outcomes = []
        for future in finished:
            device_set = self.running.pop(future)
            self.devices[device_set.kind].give_back(device_set)
            outcomes.append(future.result())
        return outcomes

    def stop(self, exc: BaseException) -> None:
        """Stop every running experiment's workers, then wait while each records its key
        (as interrupted: the workers exit under it, and it does not retry)."""
        if isinstance(exc, KeyboardInterrupt):
            note_stop_signal(signal.SIGINT)
        elif isinstance(exc, SystemExit):
            note_stop_signal(signal.SIGTERM)
        self.stopping.set()
        self.slots.stop_all()
        wait(list(self.running))
        for future in self.running:
            if not future.cancelled() and isinstance(future.exception(), Exception):
                log.warning("while stopping: %s", future.exception())


def run_parallel(
    specs: list[ExperimentSpec],
    paths: Paths,
    max_parallel: int,
    plan: DevicePlan,
    on_start: Callable[[ExperimentSpec], None] | None = None,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
) -> list[TaskOutcome]:
    """Run ``specs`` with up to ``max_parallel`` at once on disjoint device sets."""
    run = _SideBySide(paths, max_parallel, plan)
    pending, outcomes = list(specs), []
    restore = _stop_signals()
    executor = ThreadPoolExecutor(max_parallel, thread_name_prefix="jb-slot")
    try:
        while pending or run.running:
            run.start_what_fits(pending, executor, on_start)
            for outcome in run.collect():
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
    except BaseException as exc:
        run.stop(exc)
        raise
    finally:
        restore()
        executor.shutdown(wait=True)
        run.slots.close_all()
        run.tracker.sync(suites={spec.suite for spec in specs})
    return outcomes


def _sharing(
    overlaps: Overlaps, key: str, experiment_id: str, device_set: DeviceSet
) -> HostSharing:
    return node_sharing(
        os.environ,
        os.cpu_count(),
        overlaps.concurrent_ids(key, experiment_id),
        device_set.label,
    )


def check_parallel(specs: list[ExperimentSpec], max_parallel: int, where: str) -> DevicePlan:
    """The refusals of a --max-parallel run, before anything is written."""
    if max_parallel < 1:
        raise ConfigError(f"--max-parallel must be 1 or more (got {max_parallel})")
    return plan_devices(specs, max_parallel, where)
