"""CPU time and memory of a server's whole process tree, read from /proc.

Servers differ in shape — nginx is a master plus a worker, ``core --workers N`` forks
children, Node is one process with helper threads — so every number is a sum over the
tree rooted at the process we started.  /proc/PID/stat counts all threads of a process.
"""
from __future__ import annotations

import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:  # the process ended between listing and reading
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    return data[data.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))  # fields[1] = ppid
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of these processes and of their children that have already been reaped.

    utime + stime (stat fields 14, 15) plus cutime + cstime (16, 17): when a worker dies and
    its parent reaps it, its time moves into the parent's cutime, so the sum over a tree
    does not drop when a worker is restarted mid-run.
    """
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += sum(int(f) for f in fields[11:15])
    return ticks / CLOCK_TICKS


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mib(pids: list[int]) -> float:
    """Current resident memory of these processes (VmRSS), summed, in MiB."""
    return sum(_status_kib(pid, "VmRSS:") for pid in pids) / 1024


def hwm_mib(pids: list[int]) -> float:
    """Peak resident memory (VmHWM) summed over processes, in MiB.

    Exact for a single process; for a tree it is an upper bound, since the members need
    not have peaked at the same moment.  The sampled VmRSS sum is the lower bound.
    """
    return sum(_status_kib(pid, "VmHWM:") for pid in pids) / 1024
