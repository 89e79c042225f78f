"""Turns raw runs into medians, ratios, a JSON document and a Markdown table.

Medians over repetitions, because one noisy neighbour on this shared machine can ruin a
single run.  Ratios are the median of per-repetition ratios (server ÷ peer in the same
repetition, measured seconds apart), not a ratio of medians: that cancels slow drifts of
the machine better.  Every case compares two metrics: its throughput (req/s or GiB/s) and
the server's CPU per request, which still ranks servers once wrk is the ceiling.
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
           "rss_peak_mib")  # fmt: skip
RATIO_METRICS = ("rps", "gib_s", "cpu_s_per_gib", "cpu_us_per_request")
# Compared in every case next to the case's own ratio metric; lower is better.
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
}
# Short names of the compared metrics in ratio column headers.
RATIO_HEADERS = {"rps": "req/s", "gib_s": "GiB/s", "cpu_us_per_request": "CPU/req"}


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
            "servers": per_server,
        }
    return out


def document(runs, cases, specs: list[ServerSpec], skipped, machine_info, argv, plan_info,
             baseline: dict | None = None) -> dict:  # fmt: skip
    """The whole result: ``baseline`` describes the checkout core-baseline ran from, if any."""
    names = [spec.name for spec in specs]
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python -m bench " + " ".join(argv),
        "machine": machine_info,
        "plan": plan_info,
        "servers": {spec.name: spec.description for spec in specs},
        "closes_after_each_response": [spec.name for spec in specs if not spec.keep_alive],
        "baseline": baseline,
        "skipped": skipped,
        "summary": summarise(runs, cases, names),
        "runs": runs,
    }


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
    pin = "server pinned to CPU 1, wrk to CPU 0" if plan["pinned"] else "no CPU pinning"
    lines = [
        "# Benchmark results",
        "",
        f"- Command: `{doc['command']}` ({doc['generated']}, git {m.get('git') or '?'})",
        f"- Machine: {m['cpu_model']}, {m['cpus']} cores, {m['mem_total_mib'] / 1024:.0f} GiB, "
        f"Linux {m['kernel']}, Python {v['python']}; {peers}",
        f"- Method: {plan['reps']} interleaved repetition{'s' if plan['reps'] != 1 else ''}, medians; wrk -t{plan['wrk_threads']}; {pin}; "
        "each run starts the server fresh, warms it up, then measures. Ratios are medians of "
        "per-repetition ratios (server ÷ peer) of the first metric column and of CPU per request.",
        "- CPU µs/req = the server's own CPU time (utime + stime of all its processes, reaped workers "
        "included) over the measured run ÷ responses wrk completed in it; a CPU/req ratio below 1 "
        "means the server spends less CPU per request than the peer.",
        "- success = 2xx ÷ (2xx + non-2xx + socket errors seen by wrk); est. peak = most server-side "
        "established connections seen during the run ÷ clients asked for; listen drops = kernel "
        "TcpExt ListenDrops during the run (system-wide).",
    ]
    if doc.get("baseline"):
        lines.append("- " + baseline_line(doc["baseline"]))
    if doc["skipped"]:
        lines.append("- Skipped: " + "; ".join(f"{k} ({why})" for k, why in doc["skipped"].items()))
    for case_id, case in doc["summary"].items():
        lines += ["", f"## {case_id}: {case['title']} ({case['file']}, {case['clients']:,} clients, "
                      f"{case['duration_s']:g} s after {case['warmup_s']:g} s warm-up)", ""]  # fmt: skip
        metrics = case["reported"]
        peers = [p for p in ratio_peers(list(case["servers"])) if p in case["servers"]]
        compared = [case["ratio_metric"], CPU_METRIC]
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
            cells.append("; ".join(notes).replace("|", "/"))
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def write(doc: dict, out_dir: str) -> dict[str, str]:
    """Write <stamp>.json/.md and latest.json/.md into ``out_dir``; return the paths."""
    os.makedirs(out_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text_json = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    text_md = markdown(doc)
    paths = {}
    for name, text in ((f"{stamp}.json", text_json), ("latest.json", text_json),
                       (f"{stamp}.md", text_md), ("latest.md", text_md)):  # fmt: skip
        path = os.path.join(out_dir, name)
        # Write then rename, so a reader never sees half a file.
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        paths[name] = path
    return paths
