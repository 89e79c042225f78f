"""What machine and which software versions produced the numbers.

Printed with every result: on a shared 2-core VM only ratios measured side by side in one
run mean anything, and even those depend on the CPU, the kernel and the peers' versions.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _first_line(cmd: list[str]) -> str | None:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (p.stdout + p.stderr).strip().splitlines()
    return lines[0].strip() if lines else None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_mib() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def git_revision(root: Path = REPO_ROOT) -> str | None:
    """Short commit of the checkout at ``root``, '+dirty' when tracked files changed; None outside git."""
    rev = _first_line(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    if rev and _first_line(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"]):
        rev += "+dirty"
    return rev


def versions(wrk: str | None) -> dict[str, str | None]:
    """Versions of the tools and peers; None for what is not installed."""
    nginx = _first_line(["nginx", "-v"]) or _first_line(["/usr/sbin/nginx", "-v"])
    wrk_line = _first_line([wrk, "-v"]) if wrk else None
    try:
        from importlib.metadata import version

        uvicorn = version("uvicorn")
    except Exception:
        uvicorn = None
    return {
        "python": platform.python_version(),
        "nginx": nginx.split("/", 1)[-1] if nginx else None,
        "node": _first_line(["node", "--version"]),
        # "wrk debian/4.1.0-3+b2 [epoll] Copyright ..." -> "debian/4.1.0-3+b2 [epoll]"
        "wrk": " ".join(wrk_line.split()[1:3]) if wrk_line else None,
        "uvicorn": uvicorn,
    }


def describe(wrk: str | None) -> dict:
    load1, load5, _ = os.getloadavg()
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "mem_total_mib": round(mem_total_mib()),
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
        "loadavg_at_start": [round(load1, 2), round(load5, 2)],
        "versions": versions(wrk),
        "git": git_revision(),
        "python_executable": sys.executable,
    }


def one_line(info: dict) -> str:
    v = info["versions"]
    peers = ", ".join(f"{k} {v[k]}" for k in ("nginx", "node", "wrk", "uvicorn") if v.get(k))
    return (f"{info['cpu_model']}, {info['cpus']} cores, {info['mem_total_mib'] / 1024:.0f} GiB, "
            f"Linux {info['kernel']}, Python {v['python']}; {peers}")  # fmt: skip
