"""What the benchmark ran on, and how much of the machine other processes took meanwhile.

The machine may be shared: every core-second that another process (or the hypervisor, as steal) takes
during the run inflates the timings, so the run reports it beside the numbers.
"""

from __future__ import annotations

import os
import platform
import resource

from ..utils.portable import library_versions


def machine_info(threads: int) -> dict:
    import faiss

    with open("/proc/cpuinfo") as fh:
        cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), None)
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "nice": os.nice(0),  # a raised priority (negative) keeps a shared machine's other jobs out
        "memory_gib": round(pages * page_size / (1 << 30), 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **library_versions(),
        "faiss": faiss.__version__,
    }


def _cpu_seconds() -> tuple[float, float, float]:
    """(busy core-seconds of the whole machine, hypervisor steal, this process's CPU seconds)."""
    with open("/proc/stat") as fh:
        ticks = [int(x) for x in fh.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    hz = os.sysconf("SC_CLK_TCK")
    busy = (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / hz
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return busy, ticks[7] / hz, usage.ru_utime + usage.ru_stime


class CpuMeter:
    """Core-seconds other processes used between construction and `report(wall_s)`."""

    def __init__(self) -> None:
        self.start = _cpu_seconds()

    def report(self, wall_s: float) -> dict:
        busy, steal, own = (b - a for a, b in zip(self.start, _cpu_seconds(), strict=True))
        others = max(busy - own, 0.0)
        return {
            "other_processes_cpu_s": others,
            "steal_s": steal,
            "mean_cores_taken_by_others": (others + steal) / wall_s,
            "load_avg_end": os.getloadavg(),
        }
