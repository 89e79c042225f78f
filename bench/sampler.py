"""A background sampler that watches the server while wrk runs.

Every ``interval`` seconds it records the server's established connections (``ss``) and
the resident memory of its process tree, and kills the server if that memory passes
``rss_limit_mib`` — a server that buffers whole 50 MB bodies per client could otherwise
take the machine down with it.
"""
from __future__ import annotations

import os
import signal
import threading

from . import procstat, tcpstat


class Sampler:
    def __init__(self, server_pid: int, port: int, rss_limit_mib: float, cpus: set[int] | None,
                 count_connections: bool = True, interval: float = 0.25):  # fmt: skip
        self.server_pid = server_pid
        self.port = port
        self.rss_limit_mib = rss_limit_mib
        self.cpus = cpus
        self.count_connections = count_connections and tcpstat.have_ss()
        self.interval = interval
        self.established_peak: int | None = 0 if self.count_connections else None
        self.rss_peak_mib = 0.0
        self.killed_reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        if self.cpus:
            # Sample from the load generator's core, not the server's.
            os.sched_setaffinity(threading.get_native_id(), self.cpus)
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                break

    def sample(self) -> None:
        tree = procstat.process_tree(self.server_pid)
        rss = procstat.rss_mib(tree)
        self.rss_peak_mib = max(self.rss_peak_mib, rss)
        if rss > self.rss_limit_mib and self.killed_reason is None:
            self.killed_reason = f"killed: RSS {rss:.0f} MiB over the {self.rss_limit_mib:.0f} MiB limit"
            try:
                os.killpg(self.server_pid, signal.SIGKILL)  # the server's own process group
            except (ProcessLookupError, PermissionError):
                pass
        if self.count_connections:
            n = tcpstat.established_count(self.port)
            if n is not None:
                self.established_peak = max(self.established_peak or 0, n)
