"""The load generator: wrk with one thread, read back through bench/wrk_json.lua.

T5 uses bench/wrk_browser.lua instead, which sends a browser's requests in turn and adds the
counts of what it sent and what came back to the same summary line.

One wrk thread, pinned to its own core, is not the bottleneck below ~80k req/s (see
PERFORMANCE.md); a second thread on a 2-core machine only steals from the server.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass

from . import launch

LUA_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk_json.lua")
BROWSER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk_browser.lua")
MARKER = "WRK_JSON "
WRK_PACKAGE = "wrk"


class LoadError(RuntimeError):
    """wrk could not run or produced no summary."""


@dataclass
class WrkResult:
    requests: int
    bytes: int
    duration_s: float
    errors: dict[str, int]  # connect, read, write, status (>= 400), timeout
    latency_ms: dict[str, float]  # min, mean, stdev, p50, p90, p99, max; {} without samples
    # wrk_browser.lua only: {"sent": {200: n, 304: n}, "got": {200: n, 304: n, "other": n}}
    browser: dict | None = None

    @property
    def non_2xx(self) -> int:
        return self.errors["status"]

    @property
    def ok_2xx(self) -> int:
        return self.requests - self.errors["status"]

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")


def find_wrk() -> str | None:
    return shutil.which("wrk")


def wrk_command(wrk: str, url: str, clients: int, duration: float, timeout: float, threads: int = 1,
                script: str = LUA_SCRIPT, script_args: list[str] = ()) -> list[str]:  # fmt: skip
    """wrk's command line; ``script_args`` go after ``--`` to the script's init()."""
    return [
        wrk,
        f"-t{threads}",
        f"-c{max(clients, threads)}",  # wrk refuses fewer connections than threads
        f"-d{max(1, round(duration))}s",
        f"--timeout={max(1, round(timeout))}s",
        "-s",
        script,
        url,
        *(["--", *script_args] if script_args else []),
    ]


def parse_output(stdout: str) -> WrkResult:
    """Read the JSON line printed by wrk_json.lua's done() hook."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            break
    else:
        raise LoadError("wrk printed no WRK_JSON summary line")
    lat = data["latency_us"]
    # The Lua script writes 0 for a run without a single timed response.
    latency = {k: v / 1000 for k, v in lat.items()} if lat["max"] > 0 else {}
    return WrkResult(
        requests=int(data["requests"]),
        bytes=int(data["bytes"]),
        duration_s=data["duration_us"] / 1e6,
        errors={k: int(v) for k, v in data["errors"].items()},
        latency_ms=latency,
        browser=_statuses(data["browser"]) if "browser" in data else None,
    )


def _statuses(data: dict) -> dict:
    """wrk_browser.lua's counts with integer status keys ("other" stays a string)."""
    return {part: {(int(k) if k.isdigit() else k): int(v) for k, v in counts.items()}
            for part, counts in data.items()}  # fmt: skip


def start_wrk(cmd: list[str], cpus: set[int] | None) -> subprocess.Popen:
    """Start wrk pinned to ``cpus`` with enough descriptors for thousands of clients."""
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=launch.preexec(cpus),
    )


def finish_wrk(proc: subprocess.Popen, limit_s: float) -> WrkResult:
    """Wait for wrk (at most ``limit_s``; killed after that) and parse its summary."""
    try:
        stdout, stderr = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise LoadError(f"wrk did not finish within {limit_s:.0f} s; killed") from None
    try:
        return parse_output(stdout)
    except LoadError:
        detail = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
        raise LoadError(f"wrk exited {proc.returncode}: {detail[0]}") from None
