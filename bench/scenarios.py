"""The benchmark scenarios T1–T4 of the original Rust project, T5, and how the CLI changes them.

T5 is T1 with a browser's requests: a dozen headers on every request and a third of them
revalidating with If-None-Match (bench/browser.py), so 304s are part of the load.

A scenario is a file size, a number of keep-alive clients and run timings.  One scenario
may ask for several client counts (T3 with ``--full`` runs 50 and 500); each count is a
separate *case* with its own id (``T3`` for the first, ``T3-c500`` for the others) so
results stay one row per case.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * 1024 * 1024

# The metrics each scenario reports, in table order.  Server CPU is in every table: above
# ~80k req/s wrk's one thread is the ceiling and req/s stops ranking the fastest servers,
# while their CPU per request still does; for large files the client is the ceiling at any
# rate and CPU seconds per GiB sent ranks them.
REPORTED = {
    "T1": ("rps", "cpu_us_per_request", "lat_mean_ms", "lat_p99_ms"),
    "T2": ("rps", "cpu_us_per_request", "lat_mean_ms", "lat_p99_ms"),
    "T3": ("gib_s", "cpu_s_per_gib", "cpu_us_per_request", "success", "lat_p99_ms", "rss_peak_mib"),
    "T4": ("success", "gib_s", "cpu_s_per_gib", "cpu_us_per_request", "est_peak", "listen_drops", "rss_peak_mib"),
    "T5": ("rps", "cpu_us_per_request", "lat_mean_ms", "lat_p99_ms", "share_304", "status_mismatches"),
}
# The metric that the ratios (vs node-cached, vs nginx) and the chart compare.  T3 compares
# GiB/s, but there the client is the ceiling: read it together with CPU s/GiB.  Every scenario
# also compares CPU per request (report.CPU_METRIC), in the table and in the chart.
RATIO_METRIC = {"T1": "rps", "T2": "rps", "T3": "gib_s", "T4": "gib_s", "T5": "rps"}
# The server's CPU cost that each scenario compares beside it (ratios, the chart's right panel):
# per request for small files, per GiB sent for large ones.
CPU_METRIC = {"T1": "cpu_us_per_request", "T2": "cpu_us_per_request", "T3": "cpu_s_per_gib",
              "T4": "cpu_s_per_gib", "T5": "cpu_us_per_request"}  # fmt: skip
# Scenarios whose requests are a browser's (bench/browser.py, bench/wrk_browser.lua).
BROWSER = {"T5"}


@dataclass
class Scenario:
    id: str
    title: str
    size: int  # bytes of the served file
    clients: list[int]
    duration: float  # seconds of measured load per run
    warmup: float  # seconds of unmeasured load before it (Node's JIT needs ~2 s)
    timeout: float  # wrk --timeout: slower responses count as timeouts, not latency
    reported: tuple[str, ...] = field(default=())
    ratio_metric: str = "rps"
    cpu_metric: str = "cpu_us_per_request"
    browser: bool = False  # a browser's requests, a third of them revalidating (T5)

    @property
    def file_name(self) -> str:
        return file_name_for(self.size)

    def cases(self) -> list["Case"]:
        return [
            Case(
                id=self.id if i == 0 else f"{self.id}-c{n}",
                scenario=self,
                clients=n,
            )
            for i, n in enumerate(self.clients)
        ]


@dataclass(frozen=True)
class Case:
    """One scenario at one client count: the unit that is run against every server."""

    id: str
    scenario: Scenario
    clients: int



def default_scenarios(duration: float = 8.0, warmup: float = 2.0, full: bool = False) -> dict[str, Scenario]:
    """T1–T4 as in PERFORMANCE.md, and T5; ``full`` adds the heavy variants (T3 × 500, T4 × 50 MB)."""
    big_timeout = 60.0  # a 50 MB body shared by hundreds of clients takes seconds
    return {
        "T1": Scenario("T1", "small file, keep-alive clients", 10 * KIB, [100], duration, warmup, 5.0),
        "T2": Scenario("T2", "small file, many keep-alive clients", 10 * KIB, [500], duration, warmup, 5.0),
        "T3": Scenario(
            "T3", "large-file throughput", 50 * MIB, [50, 500] if full else [50], duration, warmup, big_timeout
        ),
        "T4": Scenario(
            "T4",
            "many clients, large file",
            (50 if full else 1) * MIB,
            [4000],
            duration,
            warmup,
            big_timeout if full else 10.0,
        ),
        "T5": Scenario("T5", "small file, browser requests, a third revalidating", 10 * KIB, [100], duration,
                       warmup, 5.0),  # fmt: skip
    }


def finish(scenarios: dict[str, Scenario]) -> None:
    """Fill in what follows from the scenario id: which metrics it reports and compares."""
    for s in scenarios.values():
        s.reported = REPORTED.get(s.id, REPORTED["T1"])
        s.ratio_metric = RATIO_METRIC.get(s.id, "rps")
        s.cpu_metric = CPU_METRIC.get(s.id, "cpu_us_per_request")
        s.browser = s.id in BROWSER


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'10k', '10KB', '1M', '50MiB', '4096' -> bytes (binary units, as the file names)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (try 10k, 1M, 50M)")
    unit = {"": 1, "k": KIB, "m": MIB, "g": GIB}[m.group(2).lower()]
    return int(float(m.group(1)) * unit)


def file_name_for(size: int) -> str:
    """10240 -> '10k.bin', 1048576 -> '1m.bin': the same name for the same size everywhere."""
    for unit, suffix in ((GIB, "g"), (MIB, "m"), (KIB, "k")):
        if size >= unit and size % unit == 0:
            return f"{size // unit}{suffix}.bin"
    return f"{size}b.bin"


def apply_override(scenarios: dict[str, Scenario], text: str) -> None:
    """Apply one ``--set SCENARIO.KEY=VALUE`` (e.g. ``T3.clients=50:500``, ``T4.size=50M``)."""
    try:
        target, value = text.split("=", 1)
        sid, key = target.split(".", 1)
    except ValueError:
        raise ValueError(f"--set wants SCENARIO.KEY=VALUE, got {text!r}") from None
    if sid not in scenarios:
        raise ValueError(f"--set {text!r}: no scenario {sid!r} (have {', '.join(scenarios)})")
    s = scenarios[sid]
    if key == "size":
        s.size = parse_size(value)
    elif key == "clients":
        s.clients = [int(n) for n in value.split(":")]
        if any(n < 1 for n in s.clients):
            raise ValueError(f"--set {text!r}: clients must be >= 1")
    elif key in ("duration", "warmup", "timeout"):
        setattr(s, key, float(value))
    elif key == "title":
        s.title = value
    else:
        names = [f.name for f in dataclasses.fields(Scenario)
                 if f.name not in ("id", "reported", "ratio_metric", "cpu_metric", "browser")]  # fmt: skip
        raise ValueError(f"--set {text!r}: unknown key {key!r} (have {', '.join(names)})")
