"""Turns raw runs into medians, ratios, a JSON document and a Markdown table.

Medians over repetitions, because one noisy neighbour on this shared machine can ruin a
single run.  Ratios are the median of per-repetition ratios (server ÷ peer in the same
repetition, measured seconds apart), not a ratio of medians: that cancels slow drifts of
the machine better.
"""
from __future__ import annotations

import json
import os
import statistics
import time

from .scenarios import Case
from .servers import BASELINES, SPECS

# Metrics whose medians and per-repetition ratios are computed.
METRICS = ("rps", "gib_s", "lat_mean_ms", "lat_p50_ms", "lat_p90_ms", "lat_p99_ms", "lat_max_ms", "success",
           "est_peak", "est_peak_ratio", "listen_drops", "cpu_s_per_gib", "rss_peak_mib")  # fmt: skip
RATIO_METRICS = ("rps", "gib_s", "cpu_s_per_gib")

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
    "rss_peak_mib": ("peak RSS MiB", lambda v: f"{v:,.0f}"),
}


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[dict], cases: list[Case], servers: list[str]) -> dict:
    """Per case and server: medians of each metric, and ratios vs each baseline peer."""
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
            }
            for peer in BASELINES:
                if peer == name:
                    continue
                ratios = {}
                for metric in RATIO_METRICS:
                    per_rep = []
                    for r in good:
                        other = next((o for o in runs if o["case"] == case.id and o["server"] == peer
                                      and o["rep"] == r["rep"] and "error" not in o), None)  # fmt: skip
                        if other and r.get(metric) is not None and other.get(metric):
                            per_rep.append(r[metric] / other[metric])
                    ratios[metric] = _median(per_rep)
                entry["ratios"][peer] = ratios
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


def document(runs, cases, servers, skipped, machine_info, argv, plan_info) -> dict:
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python -m bench " + " ".join(argv),
        "machine": machine_info,
        "plan": plan_info,
        "servers": {name: SPECS[name].description for name in servers},
        "skipped": skipped,
        "summary": summarise(runs, cases, servers),
        "runs": runs,
    }


def _cell(metric: str, value, clients: int) -> str:
    if value is None:
        return "–"
    if metric == "est_peak":
        return f"{value:,.0f} / {clients:,}"
    return COLUMNS[metric][1](value)


def _ratio_cell(value) -> str:
    return "–" if value is None else f"{value:.2f}"


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
        "per-repetition ratios of the first metric column (server ÷ peer).",
        "- success = 2xx ÷ (2xx + non-2xx + socket errors seen by wrk); est. peak = most server-side "
        "established connections seen during the run ÷ clients asked for; listen drops = kernel "
        "TcpExt ListenDrops during the run (system-wide).",
    ]
    if doc["skipped"]:
        lines.append("- Skipped: " + "; ".join(f"{k} ({why})" for k, why in doc["skipped"].items()))
    for case_id, case in doc["summary"].items():
        lines += ["", f"## {case_id}: {case['title']} ({case['file']}, {case['clients']:,} clients, "
                      f"{case['duration_s']:g} s after {case['warmup_s']:g} s warm-up)", ""]  # fmt: skip
        metrics = case["reported"]
        peers = [p for p in BASELINES if p in case["servers"]]
        ratio_name = COLUMNS[case["ratio_metric"]][0]
        header = ["server"] + [COLUMNS[k][0] for k in metrics] + [f"{ratio_name} vs {p}" for p in peers] + ["notes"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|---" + "|---:" * (len(header) - 2) + "|---|")
        for name, entry in case["servers"].items():
            cells = [name] + [_cell(k, entry["median"].get(k), case["clients"]) for k in metrics]
            cells += ["1.00" if p == name else _ratio_cell(entry["ratios"][p].get(case["ratio_metric"])) for p in peers]
            notes = []
            if entry["ok_runs"] < entry["runs"]:
                notes.append(f"{entry['runs'] - entry['ok_runs']}/{entry['runs']} runs failed: "
                             + "; ".join(e[:80] for e in entry["errors"]))  # fmt: skip
            success = entry["median"].get("success")
            if "success" not in metrics and success is not None and success < 0.999:
                notes.append(f"success {success * 100:.1f}%")
            if not SPECS[name].keep_alive:
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
