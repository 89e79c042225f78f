"""A PNG chart of the results: one panel per case, one bar per server (median, min–max whiskers).

matplotlib is optional (the ``bench`` extra); without it the chart is skipped with a note.
"""
from __future__ import annotations

import importlib.util
import os

from .report import COLUMNS


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def write(doc: dict, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    cases = doc["summary"]
    cols = min(len(cases), 2)
    rows = -(-len(cases) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols + 0.5, 3.9 * rows + 0.4), squeeze=False)
    for ax in axes.flat[len(cases):]:
        ax.set_visible(False)  # an odd number of cases leaves one panel empty
    for ax, (case_id, case) in zip(axes.flat, cases.items()):
        metric = case["ratio_metric"]
        names = list(case["servers"])
        medians, low, high = [], [], []
        for name in names:
            values = [r[metric] for r in doc["runs"]
                      if r["case"] == case_id and r["server"] == name and "error" not in r and r.get(metric)]  # fmt: skip
            med = case["servers"][name]["median"].get(metric) or 0.0
            medians.append(med)
            low.append(med - min(values) if values else 0.0)
            high.append(max(values) - med if values else 0.0)
        colors = ["#888888" if n in ("nginx", "node-cached", "node-readfile", "uvicorn") else "#1f77b4" for n in names]
        bars = ax.bar(range(len(names)), medians, yerr=[low, high], capsize=3, color=colors)
        fmt = COLUMNS[metric][1]
        for bar, value, above in zip(bars, medians, high):
            if value:  # above the whisker, where it cannot collide with it
                ax.annotate(fmt(value), (bar.get_x() + bar.get_width() / 2, value + above),
                            ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")  # fmt: skip
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
        ax.set_title(f"{case_id}: {case['file']}, {case['clients']:,} clients", fontsize=9)
        ax.set_ylabel(COLUMNS[metric][0])
        ax.grid(axis="y", alpha=0.3)
    m = doc["machine"]
    fig.suptitle(f"python -m bench — {m['cpu_model']}, {m['cpus']} cores, Linux {m['kernel']}\n"
                 f"median of {doc['plan']['reps']} runs, whiskers min–max; grey = peers", fontsize=9)  # fmt: skip
    fig.tight_layout()
    tmp = path + ".tmp"
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path
