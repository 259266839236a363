"""Other work on the node's CPUs during a window: /proc/stat minus our own CPU time."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from joulebench.measure.host_load import node_cpu_s, node_snapshot, own_cpu_s, window_load

STAT = """cpu  1000 50 250 9000 100 20 30 40 0 0
cpu0 500 25 125 4500 50 10 15 20 0 0
intr 12345
"""


def test_proc_stat_busy_and_steal_in_seconds() -> None:
    # busy = user + nice + system + irq + softirq = 1000+50+250+20+30; idle/iowait are not
    assert node_cpu_s(STAT, 100.0) == {"busy_s": 13.5, "steal_s": 0.4}
    assert node_cpu_s("intr 1\n", 100.0) is None


def test_others_share_is_node_busy_minus_ours_over_the_window() -> None:
    start = {"busy_s": 100.0, "steal_s": 1.0, "cpus": 4, "load_avg_1m": 0.5}
    end = {"busy_s": 106.0, "steal_s": 1.5, "cpus": 4, "load_avg_1m": 2.5}
    load = window_load(start, end, 2.0, [1.5, 1.5])
    assert load is not None
    # 6 s busy - 3 s ours + 0.5 s stolen = 3.5 s of 8 CPU-seconds
    assert load["others_cpu_share"] == pytest.approx(3.5 / 8)
    assert (load["own_cpu_s"], load["load_avg_1m_end"]) == (3.0, 2.5)
    alone = window_load(start, {**end, "steal_s": 1.0}, 2.0, [4.0, 3.0])
    assert alone is not None and alone["others_cpu_share"] == 0.0  # never below zero
    assert window_load(None, end, 2.0, [1.0]) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_spinning_neighbour_shows_up_and_our_own_sleep_does_not() -> None:
    spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass"
    spinner = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.5)  # let it start
        start, own, t0 = node_snapshot(), own_cpu_s(), time.perf_counter()
        time.sleep(1.0)
        window_s = time.perf_counter() - t0
        load = window_load(start, node_snapshot(), window_s, [own_cpu_s() - own])
    finally:
        spinner.kill()
        spinner.wait()
    assert load is not None and load["cpus"] >= 1
    # one CPU of the node spun for the whole window, none of it ours
    assert load["others_cpu_share"] >= 0.8 / load["cpus"]
    assert load["own_cpu_s"] < 0.2
