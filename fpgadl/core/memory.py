"""Peak memory of this process, for the memory benchmark and test."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_bytes() -> int:
    """This process's peak resident set size since it started its program.

    ``getrusage``'s ru_maxrss survives execve: a child started by a large parent (a pytest worker, a
    benchmark that has trained models) reports the parent's size when that is larger. Linux's VmHWM
    belongs to the process's own address space, which exec replaces; elsewhere ru_maxrss is the fallback.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
