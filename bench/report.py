"""Turns raw runs into medians, ratios, a JSON document and a Markdown table.

Medians over repetitions, because one noisy neighbour on this shared machine can ruin a
single run.  Ratios are the median of per-repetition ratios (server ÷ peer in the same
repetition, measured seconds apart), not a ratio of medians: that cancels slow drifts of
the machine better.  Every case compares two metrics: its throughput (req/s or GiB/s) and
the server's CPU cost -- per request for small files, per GiB sent for large ones -- which
still ranks servers once the client is the ceiling.
"""
from __future__ import annotations

import json
import os
import statistics
import time

from .baseline import CHECKOUT_SERVERS
from .scenarios import Case
from .servers import BASELINES, ServerSpec

# Metrics whose medians and per-repetition ratios are computed.
METRICS = ("rps", "gib_s", "lat_mean_ms", "lat_p50_ms", "lat_p90_ms", "lat_p99_ms", "lat_max_ms", "success",
           "est_peak", "est_peak_ratio", "listen_drops", "cpu_s_per_gib", "cpu_us_per_request",
           "rss_peak_mib", "share_304", "status_mismatches")  # fmt: skip
RATIO_METRICS = ("rps", "gib_s", "cpu_s_per_gib", "cpu_us_per_request")
# The CPU metric of a case made before cases named theirs (scenarios.CPU_METRIC); lower is better.
CPU_METRIC = "cpu_us_per_request"


def _cpu_us(v: float) -> str:
    return f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"


# Markdown column per metric: header and formatter.
COLUMNS = {
    "rps": ("req/s", lambda v: f"{v:,.0f}"),
    "gib_s": ("GiB/s", lambda v: f"{v:.2f}"),
    "lat_mean_ms": ("avg ms", lambda v: f"{v:.2f}"),
    "lat_p99_ms": ("p99 ms", lambda v: f"{v:.1f}"),
    "success": ("success", lambda v: f"{v * 100:.1f}%"),
    "est_peak": ("est. peak", None),  # formatted with the client count, see _cell
    "listen_drops": ("listen drops", lambda v: f"{v:,.0f}"),
    "cpu_s_per_gib": ("CPU s/GiB", lambda v: f"{v:.2f}"),
    "cpu_us_per_request": ("CPU µs/req", _cpu_us),
    "rss_peak_mib": ("peak RSS MiB", lambda v: f"{v:,.0f}"),
    "share_304": ("304 share", lambda v: f"{v * 100:.1f}%"),
    "status_mismatches": ("wrong status", lambda v: f"{v:,.0f}"),
}
# Short names of the compared metrics in ratio column headers.
RATIO_HEADERS = {"rps": "req/s", "gib_s": "GiB/s", "cpu_us_per_request": "CPU/req", "cpu_s_per_gib": "CPU/GiB"}


def cpu_metric(case: dict) -> str:
    """The CPU metric a summarised case compares (older result files name none)."""
    return case.get("cpu_metric", CPU_METRIC)


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio_peers(servers: list[str]) -> list[str]:
    """The servers every other one is compared with: the peers, and a baseline checkout if it ran."""
    return BASELINES + [name for name in CHECKOUT_SERVERS if name in servers]


def summarise(runs: list[dict], cases: list[Case], servers: list[str]) -> dict:
    """Per case and server: medians of each metric, and ratios vs each peer (median and per repetition)."""
    out: dict[str, dict] = {}
    for case in cases:
        per_server: dict[str, dict] = {}
        for name in servers:
            mine = [r for r in runs if r["case"] == case.id and r["server"] == name]
            good = [r for r in mine if "error" not in r]
            entry = {
                "runs": len(mine),
                "ok_runs": len(good),
                "errors": sorted({r["error"] for r in mine if "error" in r}),
                "median": {m: _median([r.get(m) for r in good]) for m in METRICS},
                "ratios": {},
                "ratios_per_rep": {},
            }
            if case.scenario.browser:
                # T5: every wrong status of the exact check before each run, and whether the
                # server gave an ETag at all (without one there is nothing to revalidate).
                entry["status_check"] = sorted({line for r in mine for line in r.get("status_check", ())})
                entry["no_etag"] = any("etag" in r and r["etag"] is None for r in mine)
            for peer in ratio_peers(servers):
                if peer == name:
                    continue
                ratios, ratios_per_rep = {}, {}
                for metric in RATIO_METRICS:
                    per_rep = []
                    for r in good:
                        other = next((o for o in runs if o["case"] == case.id and o["server"] == peer
                                      and o["rep"] == r["rep"] and "error" not in o), None)  # fmt: skip
                        if other and r.get(metric) is not None and other.get(metric):
                            per_rep.append(r[metric] / other[metric])
                    ratios[metric] = _median(per_rep)
                    ratios_per_rep[metric] = per_rep
                entry["ratios"][peer] = ratios
                entry["ratios_per_rep"][peer] = ratios_per_rep
            per_server[name] = entry
        out[case.id] = {
            "scenario": case.scenario.id,
            "title": case.scenario.title,
            "file": case.scenario.file_name,
            "file_bytes": case.scenario.size,
            "clients": case.clients,
            "duration_s": case.scenario.duration,
            "warmup_s": case.scenario.warmup,
            "timeout_s": case.scenario.timeout,
            "reported": list(case.scenario.reported),
            "ratio_metric": case.scenario.ratio_metric,
            "cpu_metric": case.scenario.cpu_metric,
            "browser": case.scenario.browser,
            "servers": per_server,
        }
    return out


def document(runs, cases, specs: list[ServerSpec], skipped, machine_info, argv, plan_info,
             baseline: dict | None = None) -> dict:  # fmt: skip
    """The whole result: ``baseline`` describes the checkout core-baseline ran from, if any."""
    names = [spec.name for spec in specs]
    workers = plan_info.get("workers", 1)
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python -m bench " + " ".join(argv),
        "machine": machine_info,
        "plan": plan_info,
        "servers": {spec.name: describe(spec, workers) for spec in specs},
        "closes_after_each_response": [spec.name for spec in specs if not spec.keep_alive],
        "baseline": baseline,
        "skipped": skipped,
        "summary": summarise(runs, cases, names),
        "runs": runs,
    }


def describe(spec: ServerSpec, workers: int) -> str:
    """The server's description with how many processes serve: --workers reaches only some."""
    if spec.scales_with_workers:
        return f"{spec.description}, {workers} worker{'s' if workers != 1 else ''}"
    return f"{spec.description}, one process" + (f" (--workers {workers} does not apply)" if workers > 1 else "")


def pinning_text(pinned: bool, workers: int, server_cpus, load_cpus) -> str:
    if pinned:
        cpus = ",".join(str(c) for c in sorted(server_cpus))
        return f"server pinned to CPU{'s' if len(server_cpus) > 1 else ''} {cpus}, wrk to CPU {min(load_cpus)}"
    if workers > 1:
        return f"no CPU pinning (--workers {workers} and the load generator need {workers + 1} CPUs)"
    return "no CPU pinning"


def _cell(metric: str, value, clients: int) -> str:
    if value is None:
        return "–"
    if metric == "est_peak":
        return f"{value:,.0f} / {clients:,}"
    return COLUMNS[metric][1](value)


def _ratio_cell(value, per_rep: list[float] | None = None) -> str:
    """'0.98', or '0.98 (0.95–1.02)' with the per-repetition range when ``per_rep`` is given."""
    if value is None:
        return "–"
    if per_rep and len(per_rep) > 1:
        return f"{value:.2f} ({min(per_rep):.2f}–{max(per_rep):.2f})"
    return f"{value:.2f}"


def baseline_line(baseline: dict) -> str:
    """One sentence on where core-baseline came from."""
    origin = f"ref `{baseline['ref']}`, built in a temporary worktree" if baseline.get("ref") else baseline["path"]
    return (f"Baseline: {', '.join(baseline['servers'])} ran `python -m core` from {origin} "
            f"(git {baseline.get('git') or '?'}; core imported from {baseline['core_file']}). "
            "Ratios vs a baseline show the per-repetition range in brackets.")


def markdown(doc: dict) -> str:
    m, plan = doc["machine"], doc["plan"]
    v = m["versions"]
    peers = ", ".join(f"{k} {v[k]}" for k in ("nginx", "node", "wrk", "uvicorn") if v.get(k))
    workers = plan.get("workers", 1)
    pin = pinning_text(plan["pinned"], workers, plan.get("server_cpus") or [1], plan.get("load_cpus") or [0])
    lines = [
        "# Benchmark results",
        "",
        f"- Command: `{doc['command']}` ({doc['generated']}, git {m.get('git') or '?'})",
        f"- Machine: {m['cpu_model']}, {m['cpus']} cores, {m['mem_total_mib'] / 1024:.0f} GiB, "
        f"Linux {m['kernel']}, Python {v['python']}; {peers}",
        f"- Method: {plan['reps']} interleaved repetition{'s' if plan['reps'] != 1 else ''}, medians; wrk -t{plan['wrk_threads']}; {pin}; "
        "each run starts the server fresh, warms it up, then measures. Ratios are medians of "
        "per-repetition ratios (server ÷ peer) of the first metric column and of the server's CPU cost.",
        f"- Workers: {workers} for core and nginx (--workers {workers}); Node.js, uvicorn and the stages "
        "always run as one process.",
        "- CPU µs/req = the server's own CPU time (utime + stime of all its processes, reaped workers "
        "included) over the measured run ÷ responses wrk completed in it; a CPU/req ratio below 1 "
        "means the server spends less CPU per request than the peer. CPU s/GiB = the same CPU time ÷ GiB "
        "wrk received: large files (T3, T4) compare that, since there the client is the ceiling.",
        "- success = right answers (2xx; in T5 also the 304s to revalidations) ÷ (every response + socket "
        "errors seen by wrk); est. peak = most server-side "
        "established connections seen during the run ÷ clients asked for; listen drops = kernel "
        "TcpExt ListenDrops during the run (system-wide).",
    ]
    if any(case.get("browser") for case in doc["summary"].values()):
        lines.append(
            "- T5: every request carries a current Chrome's navigation headers (Accept-Encoding "
            "gzip, deflate, br, zstd; Sec-Fetch-*; client hints); every third revalidates with "
            "If-None-Match (and If-Modified-Since) naming the validators the server gave before the run, "
            "and must get 304. req/s counts right answers (200 or 304); wrong status = the fewest "
            "wrong answers the counts prove (requests unanswered at the end, at most one per client, "
            "are of unknown kind); each kind of request is also checked one by one before every run."
        )  # fmt: skip
    if doc.get("baseline"):
        lines.append("- " + baseline_line(doc["baseline"]))
    if doc["skipped"]:
        lines.append("- Skipped: " + "; ".join(f"{k} ({why})" for k, why in doc["skipped"].items()))
    for case_id, case in doc["summary"].items():
        lines += ["", f"## {case_id}: {case['title']} ({case['file']}, {case['clients']:,} clients, "
                      f"{case['duration_s']:g} s after {case['warmup_s']:g} s warm-up)", ""]  # fmt: skip
        metrics = case["reported"]
        peers = [p for p in ratio_peers(list(case["servers"])) if p in case["servers"]]
        compared = [case["ratio_metric"], cpu_metric(case)]
        ratio_columns = [(metric, peer) for metric in compared for peer in peers]
        header = (["server"] + [COLUMNS[k][0] for k in metrics]
                  + [f"{RATIO_HEADERS[metric]} vs {peer}" for metric, peer in ratio_columns] + ["notes"])  # fmt: skip
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|---" + "|---:" * (len(header) - 2) + "|---|")
        for name, entry in case["servers"].items():
            cells = [name] + [_cell(k, entry["median"].get(k), case["clients"]) for k in metrics]
            for metric, peer in ratio_columns:
                if peer == name:
                    cells.append("1.00")
                    continue
                # Against another checkout of core the question is "is the change real?": show the spread.
                spread = entry["ratios_per_rep"][peer][metric] if peer in CHECKOUT_SERVERS else None
                cells.append(_ratio_cell(entry["ratios"][peer][metric], spread))
            notes = []
            if entry["ok_runs"] < entry["runs"]:
                notes.append(f"{entry['runs'] - entry['ok_runs']}/{entry['runs']} runs failed: "
                             + "; ".join(e[:80] for e in entry["errors"]))  # fmt: skip
            success = entry["median"].get("success")
            if "success" not in metrics and success is not None and success < 0.999:
                notes.append(f"success {success * 100:.1f}%")
            if name in doc.get("closes_after_each_response", ()):
                notes.append("closes after each response")
            if entry.get("no_etag"):
                notes.append("no ETag: nothing to revalidate, first visits only")
            if entry.get("status_check"):
                notes.append("WRONG STATUS before the run: " + "; ".join(entry["status_check"][:3]))
            mismatches = entry["median"].get("status_mismatches")
            if "status_mismatches" not in metrics and mismatches:
                notes.append(f"{mismatches:,.0f} wrong statuses")
            cells.append("; ".join(notes).replace("|", "/"))
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def write(doc: dict, out_dir: str, prefix: str = "", text_md: str | None = None) -> dict[str, str]:
    """Write <prefix><stamp>.json/.md and <prefix>latest.json/.md into ``out_dir``; return the paths.

    ``text_md`` is the Markdown to write; by default ``markdown(doc)``.
    """
    os.makedirs(out_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text_json = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    text_md = markdown(doc) if text_md is None else text_md
    paths = {}
    for name, text in ((f"{prefix}{stamp}.json", text_json), (f"{prefix}latest.json", text_json),
                       (f"{prefix}{stamp}.md", text_md), (f"{prefix}latest.md", text_md)):  # fmt: skip
        path = os.path.join(out_dir, name)
        # Write then rename, so a reader never sees half a file.
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        paths[name] = path
    return paths
