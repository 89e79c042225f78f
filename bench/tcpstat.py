"""Kernel-side view of the clients: established connections and listen-queue drops.

wrk only counts clients it heard back from.  A client whose SYN or final ACK the kernel
dropped because the server's accept queue was full never shows up as an error — wrk just
waits on it.  So we count what the server side holds (``ss``) and read the kernel's
TcpExt ListenOverflows / ListenDrops counters before and after the run.
"""
from __future__ import annotations

import shutil
import subprocess

LISTEN_COUNTERS = ("ListenOverflows", "ListenDrops")


def listen_counters(path: str = "/proc/net/netstat") -> dict[str, int]:
    """The TcpExt listen counters (system-wide; nothing else here should be overflowing)."""
    with open(path) as f:
        lines = f.read().splitlines()
    # The file alternates a header line and a value line per group: "TcpExt: A B ..." / "TcpExt: 1 2 ...".
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], (int(v) for v in values.split()[1:])))
            return {k: table.get(k, 0) for k in LISTEN_COUNTERS}
    return {k: 0 for k in LISTEN_COUNTERS}


def have_ss() -> bool:
    return shutil.which("ss") is not None


def established_count(port: int) -> int | None:
    """Established TCP connections whose local port is ``port`` (server side), or None without ss."""
    try:
        out = subprocess.run(
            ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return sum(1 for line in out.splitlines() if line.strip())
