"""CPU package and DRAM energy from RAPL counters, read through Linux powercap sysfs.

Each RAPL zone exposes a cumulative ``energy_uj`` counter (microjoules) that wraps to
zero after ``max_energy_range_uj``. A window is the difference between two readings;
a background thread also reads the counters every ``poll_interval_s`` so that a long
window in which a counter wraps more than once is still counted correctly.

Only sysfs files are read, so there is no vendor library to import. Every OS error is
turned into a MeasureError here, with the fix in the message.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joulebench.errors import MeasureError
from joulebench.measure.base import EnergyMeasurement
from joulebench.measure.timeline import Reading

DEFAULT_ROOT = Path("/sys/class/powercap")
UJ_PER_J = 1_000_000

# AMD CPUs (family 17h+) are served by the same kernel driver and show up under the
# same "intel-rapl:N" names. "intel-rapl-mmio:N" is a second view of the same package
# counter on some Intel laptops and must not match, or the package would count twice.
_PACKAGE_DIR = re.compile(r"intel-rapl:(\d+)")
# Multi-die parts (e.g. Cascade Lake-AP) name their zones "package-0-die-1". Other
# top-level zones such as "psys" (whole platform) include the packages: skip them.
_PACKAGE_NAME = re.compile(r"package-\d+(-die-\d+)?")
# The "core" and "uncore" subzones are parts of their package, whose counter already
# includes them; only "dram" is outside the package and adds energy.
_KEPT_SUBZONES = frozenset({"dram"})


def _not_available(root: Path) -> str:
    return (
        f"RAPL not available: {root} has no intel-rapl zones (not an Intel/AMD CPU "
        "with RAPL, or a VM); use energy_meter: codecarbon"
    )


def _read_uj(path: Path) -> str:
    """Raw text of one sysfs counter file; the seam tests use to inject OS errors."""
    return path.read_text()


def _read_counter_uj(path: Path, root: Path) -> int:
    """Read a microjoule counter (energy_uj, max_energy_range_uj) as an int."""
    try:
        text = _read_uj(path)
    except PermissionError as err:
        raise MeasureError(
            f"cannot read {path}: permission denied (since Linux 5.10 energy_uj is "
            f"readable by root only): run `sudo chmod a+r {root}/intel-rapl:*/energy_uj` "
            "(or a udev rule doing the same at boot), run as root, "
            "or use energy_meter: codecarbon"
        ) from err
    except OSError as err:
        raise MeasureError(
            f"cannot read RAPL counter {path}: {err.strerror or err}: check the powercap "
            f"tree with `ls {root}`, or use energy_meter: codecarbon"
        ) from err
    try:
        return int(text.strip())
    except ValueError as err:
        raise MeasureError(
            f"RAPL counter {path} holds {text.strip()!r}, not a number of microjoules: "
            "the powercap driver misbehaves; use energy_meter: codecarbon"
        ) from err


def _read_name(zone_dir: Path) -> str:
    try:
        return (zone_dir / "name").read_text().strip()
    except OSError as err:
        raise MeasureError(
            f"cannot read RAPL zone name {zone_dir / 'name'}: {err.strerror or err}: "
            "check the powercap tree, or use energy_meter: codecarbon"
        ) from err


def counter_delta_uj(start_uj: int, end_uj: int, max_energy_range_uj: int) -> int:
    """Energy between two readings of a counter that wraps to 0 after its maximum.

    A reading lower than the previous one means exactly one wrap; more than one wrap
    between readings cannot be seen, which is what the poller is for.
    """
    if end_uj >= start_uj:
        return end_uj - start_uj
    return (end_uj - start_uj) % (max_energy_range_uj + 1)


@dataclass
class _Zone:
    label: str
    path: Path  # the zone's directory
    name: str
    max_uj: int
    last_uj: int = 0
    total_uj: int = 0
    wraps: int = 0


def _numbered_dirs(parent: Path, pattern: re.Pattern[str]) -> list[Path]:
    """Entries of ``parent`` whose name matches ``pattern``, by their last number."""
    try:
        entries = list(parent.iterdir()) if parent.is_dir() else []
    except OSError:
        entries = []  # an unlistable directory has no zones we could read anyway
    found = [p for p in entries if pattern.fullmatch(p.name)]
    return sorted(found, key=lambda p: int(p.name.rsplit(":", 1)[1]))


def _subzone_dirs(root: Path, package_dir: Path) -> list[Path]:
    # The kernel nests subzones in their package directory and also links them at the
    # top of /sys/class/powercap; take each once, preferring the nested one.
    pattern = re.compile(re.escape(package_dir.name) + r":\d+")
    by_name: dict[str, Path] = {}
    for parent in (package_dir, root):
        for sub in _numbered_dirs(parent, pattern):
            by_name.setdefault(sub.name, sub)
    return sorted(by_name.values(), key=lambda p: int(p.name.rsplit(":", 1)[1]))


def _make_zone(label: str, zone_dir: Path, name: str, root: Path) -> _Zone:
    max_uj = _read_counter_uj(zone_dir / "max_energy_range_uj", root)
    if max_uj <= 0:
        raise MeasureError(
            f"RAPL zone {zone_dir} reports max_energy_range_uj={max_uj}, so counter "
            "wrap-around cannot be corrected: use energy_meter: codecarbon"
        )
    return _Zone(label=label, path=zone_dir, name=name, max_uj=max_uj)


def _discover_zones(root: Path) -> tuple[list[_Zone], dict[str, str]]:
    """Package and DRAM zones under ``root``, and the ignored zones (path -> name)."""
    zones: list[_Zone] = []
    ignored: dict[str, str] = {}
    for package_dir in _numbered_dirs(root, _PACKAGE_DIR):
        package = _read_name(package_dir)
        if not _PACKAGE_NAME.fullmatch(package):
            ignored[str(package_dir)] = package
            continue
        zones.append(_make_zone(f"cpu:{package}", package_dir, package, root))
        for sub_dir in _subzone_dirs(root, package_dir):
            sub = _read_name(sub_dir)
            if sub in _KEPT_SUBZONES:
                zones.append(_make_zone(f"{sub}:{package}", sub_dir, sub, root))
            else:
                ignored[str(sub_dir)] = sub
    if not zones:
        raise MeasureError(_not_available(root))
    return zones, ignored


@dataclass
class _Window:
    """One open start()/stop() window: the zones and the thread that polls them."""

    root: Path
    zones: list[_Zone]
    ignored: dict[str, str]
    interval_s: float
    t0: float = 0.0
    polls: int = 0
    error: BaseException | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def read_all(self) -> dict[str, int]:
        return {z.label: _read_counter_uj(z.path / "energy_uj", self.root) for z in self.zones}

    def sample(self) -> None:
        """Add each counter's advance since the last reading to its total."""
        readings = self.read_all()
        for zone in self.zones:
            now_uj = readings[zone.label]
            if now_uj < zone.last_uj:
                zone.wraps += 1
            zone.total_uj += counter_delta_uj(zone.last_uj, now_uj, zone.max_uj)
            zone.last_uj = now_uj
        self.polls += 1

    def _loop(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            try:
                self.sample()
            except Exception as err:  # re-raised by stop(), on the caller's thread
                self.error = err
                return

    def open(self) -> None:
        readings = self.read_all()
        for zone in self.zones:
            zone.last_uj = readings[zone.label]
        self.t0 = time.perf_counter()
        self.thread = threading.Thread(
            target=self._loop, name="joulebench-rapl-poller", daemon=True
        )
        self.thread.start()

    def halt(self) -> None:
        """Stop the poller thread; idempotent, so cleanup paths may call it again."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None


class RaplMeter:
    """Energy of every CPU package and its DRAM, from RAPL counters in powercap sysfs.

    ``poll_interval_s`` must be shorter than the time a counter takes to wrap once
    (max_energy_range_uj at full power: typically minutes), or wraps are missed.
    """

    name = "rapl"

    def __init__(self, root: Path = DEFAULT_ROOT, poll_interval_s: float = 10.0) -> None:
        if not poll_interval_s > 0:
            raise MeasureError(
                f"RaplMeter poll_interval_s={poll_interval_s!r} is invalid: "
                "use a positive number of seconds such as 10.0"
            )
        self.root = Path(root)
        self.poll_interval_s = float(poll_interval_s)
        self._window: _Window | None = None

    def start(self) -> None:
        if self._window is not None:
            raise MeasureError(
                "RaplMeter.start() called twice: call stop() before starting a new window"
            )
        # Discovered per window, not in __init__, so the factory can build the meter
        # on any machine and the error comes when measuring is actually attempted.
        zones, ignored = _discover_zones(self.root)
        window = _Window(self.root, zones, ignored, self.poll_interval_s)
        window.open()
        self._window = window

    def probe(self) -> list[Reading]:
        """Each zone's energy since start(), read now without touching the poller's sums."""
        window = self._window
        if window is None:
            return []
        readings = window.read_all()
        return [
            Reading(
                "rapl",
                z.label,
                energy_j=(z.total_uj + counter_delta_uj(z.last_uj, readings[z.label], z.max_uj))
                / UJ_PER_J,
            )
            for z in window.zones
        ]

    def stop(self) -> EnergyMeasurement:
        window, self._window = self._window, None
        if window is None:
            raise MeasureError("RaplMeter.stop() called without start(): call start() first")
        window.halt()
        if window.error is not None:
            raise window.error
        window.sample()
        duration_s = time.perf_counter() - window.t0
        return EnergyMeasurement(
            meter=self.name,
            method="counter",
            duration_s=duration_s,
            energy_j_by_device={z.label: z.total_uj / UJ_PER_J for z in window.zones},
            is_estimate=False,
            details=_details(window),
        )


def _details(window: _Window) -> dict[str, Any]:
    return {
        "root": str(window.root),
        "poll_interval_s": window.interval_s,
        "polls": window.polls,
        "zones": {
            zone.label: {
                "path": str(zone.path),
                "name": zone.name,
                "max_energy_range_uj": zone.max_uj,
                "wraps": zone.wraps,
            }
            for zone in window.zones
        },
        "ignored_zones": dict(window.ignored),
    }
