"""Resident memory of this process and of its children, in MiB (for ``memory/*`` metrics).

Reads ``/proc/<pid>/statm`` (Linux); elsewhere falls back to psutil when it is installed, and for
the current process to ``resource`` (which only knows the peak, not the current, resident size).
"""

from __future__ import annotations

import os
from typing import Iterable

MIB = 2**20


def _statm_rss_bytes(pid: int | str) -> int | None:
    """Resident bytes of ``pid`` (or ``"self"``) from ``/proc``; None if unreadable (gone, not Linux)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            resident_pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _psutil_rss_bytes(pid: int | None) -> int | None:
    """Resident bytes through psutil (None if psutil is missing or the process is gone)."""
    try:
        import psutil
    except ImportError:
        return None
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.Error, OSError):
        return None


def rss_mb(pid: int | None = None) -> float:
    """Resident set size of ``pid`` (default: the current process) in MiB; 0.0 if it is gone."""
    rss = _statm_rss_bytes("self" if pid is None else pid)
    if rss is None:
        rss = _psutil_rss_bytes(pid)
    if rss is None and pid is None:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # peak, KiB on Linux
    return (rss or 0) / MIB


def child_pids() -> list[int]:
    """Process ids of every descendant of the current process (empty if they cannot be listed)."""
    try:
        import psutil
    except ImportError:
        return _proc_child_pids(os.getpid())
    try:
        return [child.pid for child in psutil.Process().children(recursive=True)]
    except psutil.Error:
        return []


def _proc_child_pids(root: int) -> list[int]:
    """Descendants of ``root`` from the ppid field of ``/proc/*/stat`` (no psutil)."""
    parents: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])  # the comm field may hold spaces
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        kids = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(kids)
        frontier.extend(kids)
    return found


def children_rss_mb(pids: Iterable[int] | None = None) -> float:
    """Summed resident set size, in MiB, of ``pids`` (default: every descendant of this process).

    Processes that have exited are counted as 0. Shared pages are counted once per process, so the
    sum can exceed the memory actually used (as ``ps`` would show it).
    """
    return sum(rss_mb(pid) for pid in (child_pids() if pids is None else pids))
