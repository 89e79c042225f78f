"""`python -m bench` end to end: one short T1 and T5 run against every available server.

wrk is required (CI installs it): without it this test fails, it never skips.  At least
one peer (nginx or Node.js) must be installed too; core joins once core/__main__.py exists,
and so does core-baseline (``--baseline`` pointing at this same checkout).
"""
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import chart
from bench.servers import SPECS

REPO = Path(__file__).resolve().parent.parent
PEERS = ("nginx-tuned", "node-cached")


def servers_to_run():
    names = [name for name in PEERS if SPECS[name].unavailable() is None]
    if (REPO / "core" / "__main__.py").exists():
        names[:0] = ["core", "core-alone", "core-baseline"]
    return names


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    assert shutil.which("wrk"), "wrk is required for the benchmark harness: apt-get install wrk"
    servers = servers_to_run()
    assert set(servers) & set(PEERS), "need nginx or Node.js: apt-get install nginx-light nodejs"
    out = tmp_path_factory.mktemp("bench-results")
    cmd = [sys.executable, "-m", "bench", "--scenarios", "T1,T5", "--servers", ",".join(servers),
           "--duration", "1", "--warmup", "0", "--reps", "1",
           "--set", "T1.clients=4", "--set", "T1.size=4k", "--set", "T5.clients=4", "--set", "T5.size=4k",
           "--out", str(out)]  # fmt: skip
    if "core-baseline" in servers:
        cmd += ["--baseline", str(REPO)]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    return {"servers": servers, "out": out, "proc": proc, "elapsed": elapsed}


def test_harness_runs_in_under_30_seconds(bench_run):
    assert bench_run["elapsed"] < 30


def test_json_has_machine_plan_and_nonzero_rps_for_every_server(bench_run):
    doc = json.loads((bench_run["out"] / "latest.json").read_text())
    assert doc["command"].startswith("python -m bench ")
    assert doc["machine"]["cpu_model"] and doc["machine"]["kernel"] and doc["machine"]["cpus"] >= 1
    assert doc["machine"]["versions"]["wrk"]
    assert doc["plan"]["reps"] == 1
    servers = bench_run["servers"]
    assert [r["server"] for r in doc["runs"]] == servers * 2  # one rep, order as asked, T1 then T5
    assert [r["case"] for r in doc["runs"]] == ["T1"] * len(servers) + ["T5"] * len(servers)
    for run in doc["runs"]:
        assert "error" not in run, run
        assert run["rps"] > 0 and run["ok_2xx"] > 0 and run["bytes"] > 0
        assert run["file"] == "4k.bin" and run["clients"] == 4
        assert run["cpu_s"] >= 0 and run["rss_peak_mib"] > 0
        assert run["cpu_us_per_request"] > 0
        assert run["lat_p99_ms"] is not None
    case = doc["summary"]["T1"]
    assert case["clients"] == 4 and case["file_bytes"] == 4096
    for name in servers:
        assert case["servers"][name]["median"]["rps"] > 0
        assert case["servers"][name]["median"]["cpu_us_per_request"] > 0
    for name in servers:
        for peer, ratios in case["servers"][name]["ratios"].items():
            assert ratios["rps"] > 0 and ratios["cpu_us_per_request"] > 0, (name, peer)
    for run in doc["runs"][len(servers):]:  # T5: every server here gives an ETag and answers 304
        assert run["etag"] and run["status_check"] == [], run
        assert run["status_mismatches"] == 0 and 0.25 < run["share_304"] < 0.42, run
    assert doc["summary"]["T5"]["browser"] and doc["summary"]["T5"]["cpu_metric"] == "cpu_us_per_request"
    if "core-baseline" in servers:
        assert doc["baseline"]["core_file"] == str(REPO / "core" / "__init__.py")
        assert "core-baseline" in case["servers"]["core"]["ratios"]


def test_markdown_table_has_a_row_per_server(bench_run):
    text = (bench_run["out"] / "latest.md").read_text()
    assert text.startswith("# Benchmark results")
    assert "- Machine: " in text and "## T1:" in text
    assert "| server | req/s | CPU µs/req | avg ms | p99 ms |" in text
    assert "## T5:" in text and "| 304 share | wrong status |" in text
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    for name in bench_run["servers"]:
        cells = [c.strip() for c in rows[name].split("|")[1:-1]]
        assert float(cells[1].replace(",", "")) > 0 and float(cells[2].replace(",", "")) > 0, rows[name]
    assert text == bench_run["proc"].stdout.rstrip("\n") + "\n"  # the table is printed too


def test_png_chart_when_matplotlib_is_installed(bench_run):
    png = bench_run["out"] / "latest.png"
    if chart.available():
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 2000
    else:
        assert not png.exists()
        assert "chart skipped: matplotlib is not installed" in bench_run["proc"].stderr


def test_progress_line_per_run_on_stderr(bench_run):
    lines = [line for line in bench_run["proc"].stderr.splitlines() if line.startswith("[")]
    assert len(lines) == 2 * len(bench_run["servers"])
    assert all((" T1 " in line or " T5 " in line) and "elapsed" in line for line in lines)
