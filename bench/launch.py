"""How the harness starts child processes: CPU pinning and enough file descriptors.

With 2 or more CPUs the server gets core 1 and wrk core 0, so they do not fight over a
core and the server's CPU time is its own.  4,000 clients need more than the usual 1,024
descriptors in both the server and wrk, so the soft RLIMIT_NOFILE is raised to the hard
limit (capped) in the child before it runs.
"""
from __future__ import annotations

import functools
import os
import resource

NOFILE_WANTED = 65536


@functools.cache
def nofile_limit() -> int:
    """The descriptor limit children will get: the hard limit, capped at NOFILE_WANTED.

    As root we first try to raise our own hard limit (children inherit it); inside a
    container without CAP_SYS_RESOURCE that fails and the hard limit stays as it is.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if os.geteuid() == 0 and hard != resource.RLIM_INFINITY and hard < NOFILE_WANTED:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, min(NOFILE_WANTED, _nr_open())))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return NOFILE_WANTED
    return max(soft, min(hard, NOFILE_WANTED))


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


def cpu_plan(pin: bool, workers: int = 1) -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, load-generator CPUs); (None, None) when not pinning.

    One CPU for the load generator and one per server worker; with fewer CPUs than that
    (``--workers 2`` on 2 CPUs) nothing is pinned: N workers squeezed onto one CPU would
    measure the squeeze, and sharing the load generator's CPU is what unpinned means anyway.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 1 + max(1, workers):
        return None, None
    return set(cpus[1 : 1 + max(1, workers)]), {cpus[0]}


def preexec(cpus: set[int] | None):
    """A preexec_fn for subprocess.Popen: raise RLIMIT_NOFILE, pin to ``cpus``.

    Only os/resource calls here: it runs in the forked child before exec.
    """
    limit = nofile_limit()

    def run() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
        if cpus:
            os.sched_setaffinity(0, cpus)

    return run
