"""A PNG chart of the results: one row per case, one bar per server (median, min–max whiskers).

Left panel: the case's throughput metric (req/s or GiB/s); right panel: the server's CPU cost,
microseconds per request for small files and seconds per GiB for large ones, which still ranks
servers once the load generator is the ceiling.
matplotlib is optional (the ``bench`` extra); without it the chart is skipped with a note.
"""
from __future__ import annotations

import importlib.util
import os

from .baseline import CHECKOUT_SERVERS
from .report import COLUMNS, cpu_metric

PEER_COLOR = "#888888"
CORE_COLOR = "#1f77b4"
BASELINE_COLOR = "#ff7f0e"
PEERS = ("nginx-tuned", "nginx-plain", "nginx", "node-cached", "node-readfile", "uvicorn")


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _color(name: str) -> str:
    if name in CHECKOUT_SERVERS:
        return BASELINE_COLOR
    return PEER_COLOR if name in PEERS else CORE_COLOR


def _panel(ax, doc: dict, case_id: str, metric: str, title: str) -> None:
    """Bars of ``metric`` for every server of the case: medians, min–max whiskers, values on top."""
    case = doc["summary"][case_id]
    names = list(case["servers"])
    medians, low, high = [], [], []
    for name in names:
        values = [r[metric] for r in doc["runs"]
                  if r["case"] == case_id and r["server"] == name and "error" not in r and r.get(metric)]  # fmt: skip
        med = case["servers"][name]["median"].get(metric) or 0.0
        medians.append(med)
        low.append(med - min(values) if values else 0.0)
        high.append(max(values) - med if values else 0.0)
    bars = ax.bar(range(len(names)), medians, yerr=[low, high], capsize=3, color=[_color(n) for n in names])
    fmt = COLUMNS[metric][1]
    for bar, value, above in zip(bars, medians, high):
        if value:  # above the whisker, where it cannot collide with it
            ax.annotate(fmt(value), (bar.get_x() + bar.get_width() / 2, value + above),
                        ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")  # fmt: skip
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(COLUMNS[metric][0])
    ax.grid(axis="y", alpha=0.3)


def write(doc: dict, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    cases = doc["summary"]
    fig, axes = plt.subplots(len(cases), 2, figsize=(10.9, 3.9 * len(cases) + 0.5), squeeze=False)
    for row, (case_id, case) in zip(axes, cases.items()):
        where = f"{case_id}: {case['file']}, {case['clients']:,} clients"
        _panel(row[0], doc, case_id, case["ratio_metric"], where)
        metric = cpu_metric(case)
        per = "per request" if metric == "cpu_us_per_request" else "per GiB sent"
        _panel(row[1], doc, case_id, metric, f"{where}: server CPU {per} (lower is better)")
    m = doc["machine"]
    fig.suptitle(f"python -m bench — {m['cpu_model']}, {m['cpus']} cores, Linux {m['kernel']}\n"
                 f"median of {doc['plan']['reps']} runs, whiskers min–max; grey = peers, orange = baseline checkout",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    tmp = path + ".tmp"
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path
