"""Seed scale: one 50 MB file to 500 and to 4,000 clients at once, counted per client.

    python -m bench seed-scale                      # core, nginx-tuned, node-cached; 500 and 4,000 clients; 60 s
    python -m bench seed-scale --clients 20 --duration 5 --servers core,nginx-tuned   # a smoke run

A release day: everyone fetches the same big file at once.  4,000 × 50 MB cannot complete in
a minute, so counting completed responses (all wrk can do) says little; bench/bytes_client.py
counts every byte for the client that received it.  Per server and client count: GiB/s,
clients that got connected, clients that received at least 1 MiB (a server that serves a
few clients fast and starves the rest shows here, and in the per-client spread), completed
responses, socket errors, the server's CPU seconds per GiB and its peak memory.

Each run starts the server fresh (pinned to CPU 1, the client to CPU 0, as ``python -m bench``
does; --workers N as there), loads it for --duration seconds from the first connect, with no
warm-up: the first seconds -- 4,000 connections arriving -- are part of what is measured.
Results: bench/results/seed-scale-latest.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from . import files, launch, machine, procstat, report, servers, tcpstat
from .sampler import Sampler
from .scenarios import GIB, MIB, file_name_for, parse_size

DEFAULT_SERVERS = ["core", "nginx-tuned", "node-cached"]
PEER = "nginx-tuned"  # the ratios compare with it
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
PREFIX = "seed-scale-"
PROBE_FILE = "probe.txt"
# Medians over repetitions of these run fields.
METRICS = ("gib_s", "clients_established", "clients_1mib", "clients_any_byte", "completed", "socket_errors",
           "cpu_s_per_gib", "rss_peak_mib", "est_peak", "listen_drops", "client_cpu_share")  # fmt: skip
RATIO_METRICS = ("gib_s", "cpu_s_per_gib")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench seed-scale", description=__doc__.split("\n\n")[1])
    p.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                   help=f"comma-separated servers (default {','.join(DEFAULT_SERVERS)})")  # fmt: skip
    p.add_argument("--clients", default="500,4000", help="comma-separated client counts (default 500,4000)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per run from the first connect (default 60)")
    p.add_argument("--size", default="50M", help="size of the served file (default 50M)")
    p.add_argument("--reps", type=int, default=1, help="interleaved repetitions (default 1)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="core and nginx with N workers (default 1); Node.js runs as it is")  # fmt: skip
    p.add_argument("--no-pin", action="store_true", help="do not pin the server and the client to CPUs")
    p.add_argument("--rss-limit", type=float, metavar="MIB", help="kill a server whose memory passes this "
                   "(default: half of RAM)")  # fmt: skip
    p.add_argument("--out", default=DEFAULT_OUT, help="directory for results (default bench/results)")
    return p


def client_command(port: int, path: str, clients: int, duration: float) -> list[str]:
    return [sys.executable, "-m", "bench.bytes_client", "--port", str(port), "--path", path,
            "--clients", str(clients), "--duration", f"{duration:g}"]  # fmt: skip


def run_one(spec: servers.ServerSpec, clients: int, rep: int, duration: float, file_name: str, size: int,
            files_dir: str, scratch: str, workers: int, cpus, rss_limit: float) -> dict:  # fmt: skip
    """One server, one client count: start it, load it, stop it; the run's figures."""
    server_cpus, load_cpus = cpus
    run = {"case": f"c{clients}", "server": spec.name, "rep": rep + 1, "clients": clients, "file": file_name,
           "file_bytes": size, "duration_s": duration}  # fmt: skip
    workdir = tempfile.mkdtemp(prefix=f"{spec.name}-", dir=scratch)
    server = None
    try:
        setup = servers.ServerSetup(servers.free_port(), files_dir, workdir, clients, workers=workers)
        server = servers.RunningServer(spec, setup, server_cpus)
        server.wait_ready(f"/files/{PROBE_FILE}")
        tree = procstat.process_tree(server.pid)
        cpu_before = procstat.cpu_seconds(tree)
        listen_before = tcpstat.listen_counters()
        cmd = client_command(setup.port, f"/files/{file_name}", clients, duration)
        run["client_command"] = " ".join(cmd[1:])
        # The client before the sampler thread: preexec_fn and threads don't mix.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=servers.REPO_ROOT, preexec_fn=launch.preexec(load_cpus))  # fmt: skip
        sampler = Sampler(server.pid, setup.port, rss_limit, load_cpus, count_connections=True, interval=1.0)
        sampler.start()
        try:
            stdout, stderr = proc.communicate(timeout=duration + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise RuntimeError(f"the client did not finish within {duration + 60:.0f} s; killed") from None
        finally:
            sampler.stop()
        listen_after = tcpstat.listen_counters()
        tree = procstat.process_tree(server.pid)
        cpu_s = procstat.cpu_seconds(tree) - cpu_before
        hwm = procstat.hwm_mib(tree)
        lines = stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"client exited {proc.returncode}: {(stderr.strip().splitlines() or ['no output'])[-1]}")
        result = json.loads(lines[-1])
        run.update(result)
        gib = result["bytes"] / GIB
        run.update({
            "cpu_s": round(cpu_s, 3),
            "cpu_s_per_gib": cpu_s / gib if gib > 0 else None,
            "rss_peak_mib": round(max(hwm, sampler.rss_peak_mib), 1),
            "rss_sampled_peak_mib": round(sampler.rss_peak_mib, 1),
            "est_peak": sampler.established_peak,
            "listen_overflows": listen_after["ListenOverflows"] - listen_before["ListenOverflows"],
            "listen_drops": listen_after["ListenDrops"] - listen_before["ListenDrops"],
        })  # fmt: skip
        if sampler.killed_reason:
            run["error"] = sampler.killed_reason
        elif not server.alive():
            run["error"] = f"server died: {server.log_tail()}"
    except (servers.ServerError, RuntimeError, OSError, ValueError) as exc:
        tail = server is not None and not isinstance(exc, servers.ServerError)
        run["error"] = str(exc) + (f"; server output: {server.log_tail()}" if tail else "")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return run


def summarise(runs: list[dict], client_counts: list[int], names: list[str]) -> dict:
    """Per client count and server: medians over repetitions, and ratios vs nginx-tuned per repetition."""
    out = {}
    for clients in client_counts:
        per_server = {}
        for name in names:
            mine = [r for r in runs if r["clients"] == clients and r["server"] == name]
            good = [r for r in mine if "error" not in r]
            entry = {
                "runs": len(mine),
                "ok_runs": len(good),
                "errors": sorted({r["error"] for r in mine if "error" in r}),
                "median": {m: report._median([r.get(m) for r in good]) for m in METRICS},
                "ratios": {},
            }
            if PEER in names and name != PEER:
                for metric in RATIO_METRICS:
                    per_rep = []
                    for r in good:
                        other = next((o for o in runs if o["clients"] == clients and o["server"] == PEER
                                      and o["rep"] == r["rep"] and "error" not in o), None)  # fmt: skip
                        if other and r.get(metric) is not None and other.get(metric):
                            per_rep.append(r[metric] / other[metric])
                    entry["ratios"][metric] = report._median(per_rep)
            per_server[name] = entry
        out[f"c{clients}"] = {"clients": clients, "servers": per_server}
    return out


def _mib(value) -> str:
    return "–" if value is None else f"{value / MIB:,.1f}"


def _spread(runs: list[dict], clients: int, name: str) -> str:
    """MiB per client, p10 / median / p90 (min–max), of the first good repetition."""
    run = next((r for r in runs if r["clients"] == clients and r["server"] == name and "error" not in r), None)
    if run is None or not run.get("bytes_per_client"):
        return "–"
    b = run["bytes_per_client"]
    return f"{_mib(b['p10'])} / {_mib(b['median'])} / {_mib(b['p90'])} ({_mib(b['min'])}–{_mib(b['max'])})"


def markdown(doc: dict) -> str:
    m, plan = doc["machine"], doc["plan"]
    v = m["versions"]
    peers = ", ".join(f"{k} {v[k]}" for k in ("nginx", "node") if v.get(k))
    pin = report.pinning_text(plan["pinned"], plan["workers"], plan.get("server_cpus") or [1],
                              plan.get("load_cpus") or [0]).replace("wrk", "the client")  # fmt: skip
    lines = [
        "# Seed scale: one large file to many clients at once",
        "",
        f"- Command: `{doc['command']}` ({doc['generated']}, git {m.get('git') or '?'})",
        f"- Machine: {m['cpu_model']}, {m['cpus']} cores, {m['mem_total_mib'] / 1024:.0f} GiB, "
        f"Linux {m['kernel']}, Python {v['python']}; {peers}",
        f"- Method: {plan['file']} ({plan['file_bytes'] / MIB:,.0f} MiB), {plan['duration_s']:g} s per run from the "
        f"first connect, no warm-up; {plan['reps']} repetition{'s' if plan['reps'] != 1 else ''}, medians; "
        f"{pin}; each run starts the server fresh. Client: bench/bytes_client.py (one process, epoll), "
        "every client asks again as soon as a response is complete and reconnects after an error.",
        f"- Workers: {plan['workers']} for core and nginx; Node.js runs as one process.",
        "- GiB/s = bytes every client received ÷ run time; connected = clients whose connection was "
        "established (client side); ≥ 1 MiB = clients that received at least 1 MiB; completed = whole "
        "responses; MiB per client = p10 / median / p90 (min–max) over the clients; CPU s/GiB = the "
        "server's CPU time (all its processes) ÷ GiB received; est. peak = most established connections "
        "the server side held (ss, sampled each second); client CPU = the client's CPU time ÷ run time "
        "(near 100 % means the client was the ceiling).",
    ]
    if doc["skipped"]:
        lines.append("- Skipped: " + "; ".join(f"{k} ({why})" for k, why in doc["skipped"].items()))
    for case in doc["summary"].values():
        n = case["clients"]
        lines += ["", f"## {n:,} clients", ""]
        header = ["server", "GiB/s", "connected", "≥ 1 MiB", "completed", "socket errors", "MiB per client",
                  "CPU s/GiB", "peak RSS MiB", "est. peak", "listen drops", "client CPU",
                  f"GiB/s vs {PEER}", f"CPU/GiB vs {PEER}", "notes"]  # fmt: skip
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|---" + "|---:" * (len(header) - 2) + "|---|")
        for name, entry in case["servers"].items():
            med = entry["median"]

            def cell(key, fmt):
                return "–" if med.get(key) is None else fmt(med[key])

            ratios = entry["ratios"]
            cells = [
                name,
                cell("gib_s", lambda x: f"{x:.2f}"),
                cell("clients_established", lambda x: f"{x:,.0f} / {n:,}"),
                cell("clients_1mib", lambda x: f"{x:,.0f} / {n:,}"),
                cell("completed", lambda x: f"{x:,.0f}"),
                cell("socket_errors", lambda x: f"{x:,.0f}"),
                _spread(doc["runs"], n, name),
                cell("cpu_s_per_gib", lambda x: f"{x:.2f}"),
                cell("rss_peak_mib", lambda x: f"{x:,.0f}"),
                cell("est_peak", lambda x: f"{x:,.0f}"),
                cell("listen_drops", lambda x: f"{x:,.0f}"),
                cell("client_cpu_share", lambda x: f"{x * 100:.0f}%"),
                "1.00" if name == PEER else report._ratio_cell(ratios.get("gib_s")),
                "1.00" if name == PEER else report._ratio_cell(ratios.get("cpu_s_per_gib")),
            ]
            notes = []
            if entry["ok_runs"] < entry["runs"]:
                notes.append(f"{entry['runs'] - entry['ok_runs']}/{entry['runs']} runs failed: "
                             + "; ".join(e[:80] for e in entry["errors"]))  # fmt: skip
            run = next((r for r in doc["runs"] if r["clients"] == n and r["server"] == name and "error" not in r), None)
            if run and run.get("errors"):
                notes.append(", ".join(f"{k} {v:,}" for k, v in sorted(run["errors"].items())))
            cells.append("; ".join(notes).replace("|", "/"))
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    err = sys.stderr
    try:
        names = [s.strip() for s in args.servers.split(",") if s.strip()]
        client_counts = [int(n) for n in args.clients.split(",") if n.strip()]
        size = parse_size(args.size)
    except ValueError as exc:
        print(f"python -m bench seed-scale: {exc}", file=err)
        return 2
    unknown = [n for n in names if n not in servers.SPECS]
    if unknown or not client_counts or min(client_counts) < 1 or args.duration <= 0 or args.workers < 1:
        print(f"python -m bench seed-scale: unknown server {', '.join(unknown)} (known: {', '.join(servers.SPECS)})"
              if unknown else "python -m bench seed-scale: clients, duration and workers must be positive",
              file=err)  # fmt: skip
        return 2
    chosen, skipped = servers.available(names, err)
    if not chosen:
        print("python -m bench seed-scale: no server available", file=err)
        return 2

    info = machine.describe(None)
    rss_limit = args.rss_limit or info["mem_total_mib"] / 2 or 8192
    cpus = launch.cpu_plan(not args.no_pin, args.workers)
    nofile = launch.nofile_limit()
    if max(client_counts) + 256 > nofile:
        print(f"warning: only {nofile} file descriptors per process for {max(client_counts):,} clients", file=err)
    file_name = file_name_for(size)
    total = len(client_counts) * args.reps * len(chosen)
    print(f"machine: {machine.one_line(info)}", file=err)
    print(f"seed scale: {file_name} to {', '.join(f'{n:,}' for n in client_counts)} clients, {args.duration:g} s "
          f"per run, {', '.join(s.name for s in chosen)}; {total} runs, about "
          f"{total * (args.duration + 3) / 60:.0f} min", file=err)  # fmt: skip

    files_dir = files.make_file_dir({file_name: size, PROBE_FILE: 16})
    scratch = tempfile.mkdtemp(prefix="bench-seed-")
    runs: list[dict] = []
    started = time.monotonic()
    try:
        for clients in client_counts:
            for rep in range(args.reps):
                k = rep % len(chosen)
                for spec in chosen[k:] + chosen[:k]:
                    run = run_one(spec, clients, rep, args.duration, file_name, size, files_dir, scratch,
                                  args.workers, cpus, rss_limit)  # fmt: skip
                    runs.append(run)
                    what = run.get("error") or (
                        f"{run['gib_s']:.2f} GiB/s, {run['clients_1mib']:,}/{clients:,} clients got ≥ 1 MiB, "
                        f"{run['completed']:,} completed, {run['socket_errors']:,} socket errors, "
                        f"peak RSS {run['rss_peak_mib']:,.0f} MiB, client CPU {run['client_cpu_share'] * 100:.0f}%")
                    print(f"[{len(runs)}/{total}] {clients:>5} clients {spec.name:<12} rep {rep + 1}: {what}  "
                          f"[{time.monotonic() - started:.0f} s]", file=err, flush=True)  # fmt: skip
    except KeyboardInterrupt:
        print("interrupted: writing the runs so far", file=err)
    finally:
        files.remove_file_dir(files_dir)
        shutil.rmtree(scratch, ignore_errors=True)

    plan = {"reps": args.reps, "duration_s": args.duration, "file": file_name, "file_bytes": size,
            "clients": client_counts, "workers": args.workers, "pinned": cpus[0] is not None,
            "server_cpus": sorted(cpus[0]) if cpus[0] else None, "load_cpus": sorted(cpus[1]) if cpus[1] else None,
            "rss_limit_mib": rss_limit}  # fmt: skip
    doc = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python -m bench seed-scale " + " ".join(sys.argv[2:] if argv is None else argv),
        "machine": info,
        "plan": plan,
        "servers": {spec.name: report.describe(spec, args.workers) for spec in chosen},
        "skipped": skipped,
        "summary": summarise(runs, client_counts, [s.name for s in chosen]),
        "runs": runs,
    }
    text = markdown(doc)
    paths = report.write(doc, args.out, prefix=PREFIX, text_md=text)
    print(text)
    print("wrote " + ", ".join(sorted(paths.values())), file=err)
    return 0 if any("error" not in r for r in runs) else 1
