"""A process's own peak memory, for the benchmarks that run each step in a process of its own.

``getrusage(RUSAGE_SELF).ru_maxrss`` is not that on Linux: it keeps the parent's peak across fork and exec,
so a step started by a parent that had built a large delivery reported the parent's memory. ``VmHWM`` in
``/proc/self/status`` is the high-water mark of this process's own memory.
"""

import re
from pathlib import Path


def own_peak_rss_kib() -> int:
    return int(re.search(r"VmHWM:\s*(\d+) kB", Path("/proc/self/status").read_text()).group(1))
