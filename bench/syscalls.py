"""Syscalls: the syscall-by-syscall cost of one T1 request, per server.

    python -m bench syscalls                                  # core, nginx-tuned, floor; ~15 s each
    python -m bench syscalls --servers core,floor --trace-duration 2
    python -m bench syscalls --reps 3                         # interleaved, medians

For each server: start it fresh (pinned to CPU 1, wrk to CPU 0, as ``python -m bench`` does),
warm it up with T1's load (10 KB file, 100 keep-alive clients, wrk -t1), measure its CPU µs per
request untraced for --duration seconds, then run T1's load once more for --trace-duration
seconds under perf, tracing every process of the server (nginx's master and worker, core's
supervisor and worker).  The traced window is exactly wrk's life -- perf starts wrk itself as
its workload and stops when it exits -- so the responses in the window are the ones wrk counted.

By default the trace is recorded (``perf trace record``, buffered like ``perf record``) and then
summarised (``perf trace -i FILE -s``): live ``perf trace -s -p PID`` (--live) wakes perf for every
event, which on this VM made the floor's CPU per request ~9× larger; recording adds ~40 %.
``strace -c -p`` hangs on detach here, so it is not used.

Per syscall: calls per response and the mean time per call -- perf's figure, which is wall
time from entry to exit, tracing overhead included, and for epoll_wait mostly time spent waiting
for wrk.  A thread that makes under one syscall per 100 responses (core's supervisor polling
for its workers, nginx's master) is listed apart and left out of the per-request figures: its
sleeps would otherwise count as seconds of syscall time.  Results:
bench/results/syscalls-latest.{json,md}.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from . import files, launch, loadgen, machine, procstat, report, runner, servers
from .scenarios import file_name_for, parse_size

DEFAULT_SERVERS = ["core", "nginx-tuned", "floor"]
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
PREFIX = "syscalls-"
PROBE_FILE = runner.PROBE_FILE
WRK_TIMEOUT_S = 5.0  # T1's wrk --timeout
# A thread with fewer syscalls than this per response is not serving requests (see the docstring).
SERVING_CALLS_PER_RESPONSE = 0.01
# Where a thread sleeps until there is work: wall time in them is mostly waiting, not work.
WAITING_SYSCALLS = frozenset({"epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect6",
                              "clock_nanosleep", "nanosleep"})  # fmt: skip


# --- perf trace's summary ---------------------------------------------------------------


@dataclass
class SyscallStat:
    """One row of perf trace's summary: times in milliseconds, as perf prints them."""

    calls: int
    errors: int
    total_ms: float
    min_ms: float
    max_ms: float


@dataclass
class ThreadSummary:
    comm: str
    tid: int
    events: int  # perf's count: a sys_enter and a sys_exit per call it saw complete
    syscalls: dict[str, SyscallStat] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.syscalls.values())


# " nginx (26267), 731202 events, 100.0%": comm may hold spaces and parentheses.
_THREAD = re.compile(r"^\s*(?P<comm>.*\S)\s+\((?P<tid>\d+)\), (?P<events>\d+) events, [\d.]+%\s*$")
_NUMBER = r"(\d+(?:\.\d+)?)"
# "   sendto   20181   0   557.748   0.015   0.028   0.175   0.28%"; perf before ~5.6 has no errors column.
_ROW = re.compile(rf"^\s+(?P<name>[\w:\[\]-]+)\s+(?P<nums>\d+(?:\s+{_NUMBER}){{5,6}})%\s*$")


def parse_summary(text: str) -> list[ThreadSummary]:
    """The threads and their syscall rows in the output of ``perf trace -s`` (or ``-i FILE -s``)."""
    threads: list[ThreadSummary] = []
    for line in text.splitlines():
        m = _THREAD.match(line)
        if m:
            threads.append(ThreadSummary(m["comm"], int(m["tid"]), int(m["events"])))
            continue
        m = _ROW.match(line)
        if m and threads:
            nums = m["nums"].split()
            if len(nums) == 6:  # no errors column
                nums.insert(1, "0")
            calls, errors, total, low, _avg, high, _stddev = nums
            threads[-1].syscalls[m["name"]] = SyscallStat(int(calls), int(errors), float(total), float(low),
                                                          float(high))  # fmt: skip
    return threads


def lost_lines(text: str) -> list[str]:
    """perf's own words about events it lost ("LOST 12 events!", "... and lost 3 chunks!")."""
    return [line.strip() for line in text.splitlines() if re.search(r"\blost\b", line, re.IGNORECASE)]


def per_request(threads: list[ThreadSummary], responses: int) -> dict:
    """Calls and wall µs per response, summed over the serving threads; the others listed apart."""
    serving = [t for t in threads if responses and t.calls / responses >= SERVING_CALLS_PER_RESPONSE]
    idle = [t for t in threads if t not in serving]
    merged: dict[str, SyscallStat] = {}
    for t in serving:
        for name, s in t.syscalls.items():
            m = merged.setdefault(name, SyscallStat(0, 0, 0.0, s.min_ms, s.max_ms))
            m.calls += s.calls
            m.errors += s.errors
            m.total_ms += s.total_ms
            m.min_ms, m.max_ms = min(m.min_ms, s.min_ms), max(m.max_ms, s.max_ms)
    rows = []
    for name, s in merged.items():
        rows.append({
            "syscall": name,
            "calls": s.calls,
            "errors": s.errors,
            "total_ms": round(s.total_ms, 3),
            "max_ms": s.max_ms,
            "calls_per_request": s.calls / responses,
            # From the total, not perf's avg column: that one is rounded to 1 µs.
            "us_per_call": s.total_ms * 1000 / s.calls if s.calls else None,
            "us_per_request": s.total_ms * 1000 / responses,
        })  # fmt: skip
    rows.sort(key=lambda r: -r["us_per_request"])
    total = sum(r["us_per_request"] for r in rows)
    waiting = sum(r["us_per_request"] for r in rows if r["syscall"] in WAITING_SYSCALLS)
    return {
        "rows": rows,
        "calls_per_request": sum(r["calls_per_request"] for r in rows),
        "syscall_us_per_request": total if responses else None,
        "syscall_us_per_request_without_waiting": total - waiting if responses else None,
        "serving_threads": [_thread_info(t) for t in serving],
        "other_threads": [_thread_info(t) for t in idle],
        # Each call perf saw complete is two events.  A call already running when the trace began
        # (a blocked epoll_wait) or still running at its end leaves one unpaired event per thread;
        # more than that are entries or exits perf lost.
        "unpaired_events": sum(t.events - 2 * t.calls for t in threads),
        "threads": len(threads),
    }


def tracing_cost(untraced_cpu_us: float | None, traced_cpu_us: float | None, calls_per_request: float) -> float | None:
    """What tracing added to the server's CPU per syscall, in µs: the extra CPU per request ÷ syscalls per request.

    An estimate: it assumes the load was otherwise alike (the traced run is slower, so epoll_wait
    returns fewer events per call and costs differ a little).  Part of it falls inside each
    traced syscall and inflates perf's µs/call.
    """
    if untraced_cpu_us is None or traced_cpu_us is None or not calls_per_request:
        return None
    return (traced_cpu_us - untraced_cpu_us) / calls_per_request


def _thread_info(t: ThreadSummary) -> dict:
    top = sorted(t.syscalls.items(), key=lambda kv: -kv[1].calls)[:3]
    return {"comm": t.comm, "tid": t.tid, "events": t.events, "calls": t.calls,
            "top": {name: s.calls for name, s in top}}  # fmt: skip


# --- one server ------------------------------------------------------------------------


def find_perf() -> str | None:
    return shutil.which("perf") or ("/usr/bin/perf" if os.access("/usr/bin/perf", os.X_OK) else None)


def trace_commands(perf: str, pids: list[int], workdir: str, wrk_cmd: list[str],
                   live: bool) -> tuple[list[str], list[str] | None, str]:  # fmt: skip
    """(the traced run, the summary step or None, the file the summary lands in).

    perf runs wrk as its workload: events are enabled before wrk starts and the trace ends
    when wrk exits, so the window holds exactly the responses wrk counts.
    """
    summary = os.path.join(workdir, "perf-trace-summary.txt")
    targets = ",".join(map(str, pids))
    if live:
        return [perf, "trace", "-s", "-o", summary, "-p", targets, "--", *wrk_cmd], None, summary
    data = os.path.join(workdir, "perf-trace.data")
    return ([perf, "trace", "record", "-o", data, "-p", targets, "--", *wrk_cmd],
            [perf, "trace", "-i", data, "-s", "-o", summary], summary)  # fmt: skip


def _run_bounded(cmd: list[str], cpus: set[int] | None, limit_s: float) -> tuple[int, str, str]:
    """Run ``cmd`` (its own process group) for at most ``limit_s``: then SIGINT, then SIGKILL."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=launch.preexec(cpus))  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        # perf writes what it has on SIGINT; wrk (its child, same group) prints its summary.
        for sig, grace in ((signal.SIGINT, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                stdout, stderr = proc.communicate(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            stdout, stderr = "", ""
        stderr = f"{stderr}\nstopped after {limit_s:.0f} s"
    return proc.returncode, stdout, stderr


def _wrk_figures(result: loadgen.WrkResult, cpu_s: float) -> dict:
    return {
        "requests": result.requests,
        "non_2xx": result.non_2xx,
        "socket_errors": result.socket_errors,
        "measured_s": round(result.duration_s, 3),
        "rps": result.requests / (result.duration_s or 1e-9),
        "cpu_s": round(cpu_s, 3),
        "cpu_us_per_request": runner.cpu_us_per_request(cpu_s, result.requests),
    }


def run_server(spec: servers.ServerSpec, args: argparse.Namespace, perf: str, wrk: str, files_dir: str,
               file_name: str, scratch: str, cpus) -> dict:  # fmt: skip
    """Start one server, warm it up, measure it untraced, then traced; stop it.  The figures."""
    server_cpus, load_cpus = cpus
    out: dict = {"server": spec.name}
    workdir = tempfile.mkdtemp(prefix=f"{spec.name}-", dir=scratch)
    server = None
    try:
        setup = servers.ServerSetup(servers.free_port(), files_dir, workdir, args.clients,
                                    files=(PROBE_FILE, file_name))  # fmt: skip
        server = servers.RunningServer(spec, setup, server_cpus)
        server.wait_ready(f"/files/{PROBE_FILE}")
        url = f"http://127.0.0.1:{setup.port}/files/{file_name}"

        def wrk_cmd(seconds: float) -> list[str]:
            return loadgen.wrk_command(wrk, url, args.clients, seconds, WRK_TIMEOUT_S)

        if args.warmup >= 1:
            loadgen.finish_wrk(loadgen.start_wrk(wrk_cmd(args.warmup), load_cpus), args.warmup + 30)
            runner.settle(server.pid)

        # Untraced: the server's CPU per request, as the matrix measures it.
        cpu_before = procstat.cpu_seconds(procstat.process_tree(server.pid))
        result = loadgen.finish_wrk(loadgen.start_wrk(wrk_cmd(args.duration), load_cpus), args.duration + 30)
        cpu_s = procstat.cpu_seconds(procstat.process_tree(server.pid)) - cpu_before
        out["untraced"] = {"wrk_command": " ".join(wrk_cmd(args.duration)), **_wrk_figures(result, cpu_s)}
        runner.settle(server.pid)

        # Traced: every process of the server, for the life of one more wrk run.
        pids = procstat.process_tree(server.pid)
        traced_cmd, summary_cmd, summary_file = trace_commands(perf, pids, workdir, wrk_cmd(args.trace_duration),
                                                               args.live)  # fmt: skip
        cpu_before = procstat.cpu_seconds(pids)
        code, stdout, stderr = _run_bounded(traced_cmd, load_cpus, args.trace_duration + 30)
        cpu_s = procstat.cpu_seconds(procstat.process_tree(server.pid)) - cpu_before
        try:
            result = loadgen.parse_output(stdout)
        except loadgen.LoadError:
            detail = (stderr.strip().splitlines() or ["no output"])[-1]
            raise loadgen.LoadError(f"perf + wrk exited {code}: {detail}") from None
        warnings = lost_lines(stderr)
        if summary_cmd is not None:
            code, _, replay_err = _run_bounded(summary_cmd, load_cpus, 300)
            warnings += lost_lines(replay_err)
            if code != 0:
                raise RuntimeError(f"{' '.join(summary_cmd[:4])} exited {code}: "
                                   f"{(replay_err.strip().splitlines() or ['no output'])[-1]}")  # fmt: skip
        with open(summary_file, errors="replace") as f:
            summary_text = f.read()
        warnings += lost_lines(summary_text)
        threads = parse_summary(summary_text)
        if not threads:
            raise RuntimeError(f"perf trace printed no summary: {(stderr.strip().splitlines() or ['no output'])[-1]}")
        out["traced"] = {
            "perf_command": " ".join(traced_cmd[:traced_cmd.index("--")]) + " -- wrk ...",
            "summary_command": " ".join(summary_cmd) if summary_cmd else None,
            "pids": pids,
            **_wrk_figures(result, cpu_s),
            **per_request(threads, result.requests),
            "perf_warnings": warnings,
        }
        out["tracing_us_per_syscall"] = tracing_cost(out["untraced"]["cpu_us_per_request"],
                                                     out["traced"]["cpu_us_per_request"],
                                                     out["traced"]["calls_per_request"])  # fmt: skip
        out["perf_summary"] = summary_text
        if not server.alive():
            out["error"] = f"server died: {server.log_tail()}"
    except (servers.ServerError, loadgen.LoadError, RuntimeError, OSError) as exc:
        tail = server is not None and not isinstance(exc, servers.ServerError)
        out["error"] = str(exc) + (f"; server output: {server.log_tail()}" if tail else "")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return out


# --- the report ------------------------------------------------------------------------

# The figures of a server's runs that the report gives as medians over repetitions.
UNTRACED_FIGURES = ("requests", "rps", "cpu_us_per_request")
TRACED_FIGURES = ("requests", "rps", "cpu_us_per_request", "calls_per_request", "syscall_us_per_request",
                  "syscall_us_per_request_without_waiting")  # fmt: skip


def summarise(results: list[dict]) -> list[dict]:
    """Per server (in the order first run), the medians over its good repetitions, shaped like one run.

    A syscall missing from a repetition made no call there: 0 calls and 0 µs per request in it.
    """
    out = []
    for name in dict.fromkeys(r["server"] for r in results):
        good = [r for r in results if r["server"] == name and "traced" in r]
        if not good:
            continue
        per_rep_rows = [{row["syscall"]: row for row in r["traced"]["rows"]} for r in good]
        rows = []
        for syscall in dict.fromkeys(s for reps in per_rep_rows for s in reps):
            present = [reps[syscall] for reps in per_rep_rows if syscall in reps]
            rows.append({
                "syscall": syscall,
                "calls_per_request": report._median([reps[syscall]["calls_per_request"] if syscall in reps else 0.0
                                                     for reps in per_rep_rows]),
                "us_per_call": report._median([row["us_per_call"] for row in present]),
                "us_per_request": report._median([reps[syscall]["us_per_request"] if syscall in reps else 0.0
                                                  for reps in per_rep_rows]),
            })  # fmt: skip
        rows.sort(key=lambda row: -row["us_per_request"])
        out.append({
            "server": name,
            "reps": len(good),
            "untraced": {k: report._median([r["untraced"][k] for r in good]) for k in UNTRACED_FIGURES},
            "traced": {"rows": rows, **{k: report._median([r["traced"][k] for r in good]) for k in TRACED_FIGURES}},
            "tracing_us_per_syscall": report._median([r["tracing_us_per_syscall"] for r in good]),
        })  # fmt: skip
    return out



def _num(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _calls(per_request: float) -> str:
    """Calls per request to 3 decimals; the connection's own calls (accept, close) are rarer than that."""
    return "<0.001" if 0 < per_request < 0.0005 else f"{per_request:.3f}"


def markdown(doc: dict) -> str:
    m, plan = doc["machine"], doc["plan"]
    v = m["versions"]
    peers = ", ".join(f"{k} {v[k]}" for k in ("nginx", "wrk") if v.get(k))
    pin = report.pinning_text(plan["pinned"], 1, plan.get("server_cpus") or [1], plan.get("load_cpus") or [0])
    ok = doc["summary"]
    reps = plan.get("reps", 1)
    method = ("recorded with `perf trace record -p PIDS -- wrk ...` and summarised with `perf trace -i FILE -s`"
              if not plan["live"] else "live `perf trace -s -p PIDS -- wrk ...`")  # fmt: skip
    lines = [
        "# Syscalls: the syscall-by-syscall cost of one T1 request",
        "",
        f"- Command: `{doc['command']}` ({doc['generated']}, git {m.get('git') or '?'})",
        f"- Machine: {m['cpu_model']}, {m['cpus']} cores, {m['mem_total_mib'] / 1024:.0f} GiB, "
        f"Linux {m['kernel']}, Python {v['python']}; {peers}; {doc.get('perf') or 'perf ?'}",
        f"- Load: T1, {plan['file']} to {plan['clients']} keep-alive clients, wrk -t1; {pin} (perf too); one "
        f"worker each; each server started fresh, warmed up {plan['warmup_s']:g} s, then measured untraced for "
        f"{plan['duration_s']:g} s and traced for {plan['trace_duration_s']:g} s (one more wrk run)"
        + (f"; {reps} repetitions, servers interleaved, every figure the median over them." if reps > 1 else "."),
        f"- Trace: every process of the server, {method}; perf starts wrk and stops when it exits, so the "
        "responses in the window are wrk's count of that run.",
        "- calls/req = calls ÷ responses; µs/call = perf's mean **wall** time from entry to exit of the "
        "syscall (tracing overhead included; on loopback a send also runs the receiving side's TCP work); "
        "µs/req = calls/req × µs/call. epoll_wait's time is mostly waiting for wrk, not work: the total "
        "is also given without it. Untraced CPU µs/req = the server's utime + stime ÷ responses of the "
        "untraced run; traced CPU µs/req, the same under perf, shows what tracing costs, and ÷ syscalls "
        "per request, roughly what it adds to each syscall (part of that inside perf's µs/call).",
        f"- Threads with fewer than one syscall per {1 / SERVING_CALLS_PER_RESPONSE:.0f} responses (a supervisor "
        "polling for workers, nginx's master) are listed below the table and not counted per request.",
    ]  # fmt: skip
    if doc["skipped"]:
        lines.append("- Skipped: " + "; ".join(f"{k} ({why})" for k, why in doc["skipped"].items()))
    for r in doc["results"]:
        if "error" in r:
            rep = f" (repetition {r['rep']})" if reps > 1 and "rep" in r else ""
            lines.append(f"- {r['server']}{rep}: FAILED: {r['error']}")
    if ok:
        names = [r["server"] for r in ok]
        header = ["syscall"] + [f"{n} {col}" for n in names for col in ("calls/req", "µs/call", "µs/req")]
        lines += ["", "| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
        by_server = {r["server"]: {row["syscall"]: row for row in r["traced"]["rows"]} for r in ok}
        order = sorted({name for rows in by_server.values() for name in rows},
                       key=lambda s: -sum(rows[s]["us_per_request"] for rows in by_server.values() if s in rows))
        for syscall in order:
            cells = [syscall]
            for n in names:
                row = by_server[n].get(syscall)
                cells += ["", "", ""] if row is None else [
                    _calls(row["calls_per_request"]), _num(row["us_per_call"], ".2f"),
                    _num(row["us_per_request"], ".2f")]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")

        def total_row(label: str, key: str, fmt: str, part: str | None = "traced") -> str:
            cells = [f"**{label}**"]
            for r in ok:
                value = (r[part] if part else r).get(key)
                cells += ["", "", f"**{_num(value, fmt)}**"] if key != "calls_per_request" else \
                    [f"**{_num(value, fmt)}**", "", ""]  # fmt: skip
            return "| " + " | ".join(cells) + " |"

        lines += [
            total_row("syscalls per request", "calls_per_request", ".2f"),
            total_row("syscall wall µs per request", "syscall_us_per_request", ".2f"),
            total_row("… without epoll_wait (waiting)", "syscall_us_per_request_without_waiting", ".2f"),
            total_row("untraced CPU µs per request", "cpu_us_per_request", ".1f", "untraced"),
            total_row("traced CPU µs per request", "cpu_us_per_request", ".1f"),
            total_row("tracing's CPU µs per syscall (estimate)", "tracing_us_per_syscall", ".1f", None),
            total_row("untraced req/s", "rps", ",.0f", "untraced"),
            total_row("traced req/s", "rps", ",.0f"),
            total_row("responses in the traced window", "requests", ",.0f", "traced"),
        ]
        notes = []
        for r in (r for r in doc["results"] if "traced" in r):
            t = r["traced"]
            who = r["server"] + (f" (repetition {r['rep']})" if reps > 1 and "rep" in r else "")
            for other in t["other_threads"]:
                calls = ", ".join(f"{k} ×{c:,}" for k, c in other["top"].items())
                notes.append(f"{who}: thread {other['comm']} ({other['tid']}) not counted: "
                             f"{other['calls']:,} calls in the window ({calls})")  # fmt: skip
            if abs(t["unpaired_events"]) > 2 * t.get("threads", 1):
                notes.append(f"{who}: {t['unpaired_events']:,} unpaired syscall events: perf lost some")
            for w in t["perf_warnings"]:
                notes.append(f"{who}: perf: {w}")
            errors = [f"{row['syscall']} {row['errors']:,}/{row['calls']:,}" for row in t["rows"] if row["errors"]]
            if errors:
                notes.append(f"{who}: calls that returned an error (EAGAIN, mostly): {', '.join(errors)}")
        if notes:
            lines += [""] + [f"- {n}" for n in notes]
    lines.append("")
    return "\n".join(lines)


# --- command line ----------------------------------------------------------------------


def _progress(r: dict, reps: int) -> None:
    if "traced" in r:
        t, u = r["traced"], r["untraced"]
        what = (f"untraced {u['rps']:,.0f} req/s, {u['cpu_us_per_request']:.1f} CPU µs/req; traced "
                f"{t['requests']:,} responses, {t['calls_per_request']:.2f} syscalls and "
                f"{t['syscall_us_per_request']:.1f} wall µs in syscalls per request")  # fmt: skip
    else:
        what = f"FAILED: {r.get('error')}"
    print(f"{r['server']} rep {r['rep']}/{reps}: {what}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench syscalls", description=__doc__.split("\n\n")[2])
    p.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                   help=f"comma-separated servers (default {','.join(DEFAULT_SERVERS)})")  # fmt: skip
    p.add_argument("--duration", type=float, default=6.0, help="seconds of untraced load for CPU µs/req (default 6)")
    p.add_argument("--trace-duration", type=float, default=3.0, help="seconds of traced load (default 3)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up load (default 2; 0 = none)")
    p.add_argument("--clients", type=int, default=100, help="keep-alive clients (default 100, as T1)")
    p.add_argument("--size", default="10k", help="size of the served file (default 10k, as T1)")
    p.add_argument("--reps", type=int, default=1,
                   help="repetitions, servers interleaved; the report gives medians (default 1)")  # fmt: skip
    p.add_argument("--live", action="store_true",
                   help="trace with live 'perf trace -s -p' instead of record + summary (much heavier here)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the server to CPU 1 and wrk + perf to CPU 0")
    p.add_argument("--out", default=DEFAULT_OUT, help="directory for results (default bench/results)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[2:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    err = sys.stderr
    names = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [n for n in names if n not in servers.SPECS]
    try:
        size = parse_size(args.size)
    except ValueError as exc:
        print(f"python -m bench syscalls: {exc}", file=err)
        return 2
    if unknown or not names:
        print(f"python -m bench syscalls: unknown server {', '.join(unknown) or '(none)'} "
              f"(known: {', '.join(servers.SPECS)})", file=err)  # fmt: skip
        return 2
    if min(args.duration, args.trace_duration) < 1 or args.clients < 1 or args.reps < 1:
        print("python -m bench syscalls: --duration and --trace-duration must be at least 1 s, --clients and "
              "--reps positive", file=err)  # fmt: skip
        return 2
    perf, wrk = find_perf(), loadgen.find_wrk()
    if perf is None or wrk is None:
        missing = "perf (apt-get install linux-perf)" if perf is None else "wrk (apt-get install wrk)"
        print(f"python -m bench syscalls: {missing} not found", file=err)
        return 2
    chosen, skipped = servers.available(names, err)
    if not chosen:
        print("python -m bench syscalls: no server available", file=err)
        return 2

    info = machine.describe(wrk)
    perf_version = machine._first_line([perf, "--version"])
    cpus = launch.cpu_plan(not args.no_pin, 1)
    file_name = file_name_for(size)
    print(f"machine: {machine.one_line(info)}; {perf_version}", file=err)
    per_server = args.warmup + args.duration + args.trace_duration + 4
    print(f"syscalls: {file_name} to {args.clients} clients; {', '.join(s.name for s in chosen)}; "
          f"{args.reps} repetition{'s' if args.reps > 1 else ''}; about {per_server * len(chosen) * args.reps:.0f} s",
          file=err)  # fmt: skip

    files_dir = files.make_file_dir({file_name: size, PROBE_FILE: 16})
    scratch = tempfile.mkdtemp(prefix="bench-syscalls-")
    results = []
    try:
        for rep in range(args.reps):
            k = rep % len(chosen)  # rotate the order: nobody always runs right after the same server
            for spec in chosen[k:] + chosen[:k]:
                r = {"rep": rep + 1, **run_server(spec, args, perf, wrk, files_dir, file_name, scratch, cpus)}
                results.append(r)
                _progress(r, args.reps)
    except KeyboardInterrupt:
        print("interrupted: writing the servers so far", file=err)
    finally:
        files.remove_file_dir(files_dir)
        shutil.rmtree(scratch, ignore_errors=True)

    plan = {"file": file_name, "file_bytes": size, "clients": args.clients, "warmup_s": args.warmup,
            "duration_s": args.duration, "trace_duration_s": args.trace_duration, "live": args.live,
            "pinned": cpus[0] is not None, "server_cpus": sorted(cpus[0]) if cpus[0] else None,
            "load_cpus": sorted(cpus[1]) if cpus[1] else None,
            "reps": args.reps, "serving_calls_per_response": SERVING_CALLS_PER_RESPONSE}  # fmt: skip
    doc = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python -m bench syscalls " + " ".join(argv),
        "machine": info,
        "perf": perf_version,
        "plan": plan,
        "servers": {spec.name: report.describe(spec, 1) for spec in chosen},
        "skipped": skipped,
        "summary": summarise(results),
        "results": results,
    }
    text = markdown(doc)
    paths = report.write(doc, args.out, prefix=PREFIX, text_md=text)
    print(text)
    print("wrote " + ", ".join(sorted(paths.values())), file=err)
    return 0 if any("traced" in r for r in results) else 1
