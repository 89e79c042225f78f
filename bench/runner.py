"""Runs the benchmark matrix: every case × every server × every repetition, interleaved.

For one run: start the server fresh, wait until it answers, warm it up with the same load,
then measure one wrk run while sampling the server, and stop the server (T5 first fetches the
server's ETag and checks each kind of request once, see bench/browser.py).  Servers are
interleaved within a repetition (A B C, then B C A, …) so a noisy minute on this shared
machine hurts every server a little instead of one server a lot.
"""
from __future__ import annotations

import http.client
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field

from . import browser, launch, loadgen, procstat, tcpstat
from .sampler import Sampler
from .scenarios import GIB, Case
from .servers import RunningServer, ServerError, ServerSetup, ServerSpec, free_port

PROBE_FILE = "probe.txt"


@dataclass
class Plan:
    cases: list[Case]
    servers: list[ServerSpec]
    reps: int
    files_dir: str
    wrk: str
    wrk_threads: int = 1
    pin: bool = True
    rss_limit_mib: float = 12 * 1024
    progress: object = sys.stderr
    workers: int = 1  # --workers: core's workers, nginx's worker processes
    runs: list[dict] = field(default_factory=list)


def run_all(plan: Plan) -> list[dict]:
    """Run the whole matrix; return one dict per run (failed runs carry an 'error')."""
    server_cpus, load_cpus = launch.cpu_plan(plan.pin, plan.workers)
    total = len(plan.cases) * plan.reps * len(plan.servers)
    started = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="bench-run-")
    try:
        for case in plan.cases:
            for rep in range(plan.reps):
                # Rotate the order each repetition: nobody always runs right after the heaviest.
                k = rep % len(plan.servers)
                for spec in plan.servers[k:] + plan.servers[:k]:
                    run = run_one(plan, case, spec, rep, scratch, server_cpus, load_cpus)
                    plan.runs.append(run)
                    _progress(plan, run, len(plan.runs), total, time.monotonic() - started)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return plan.runs


def run_one(plan: Plan, case: Case, spec: ServerSpec, rep: int, scratch: str,
            server_cpus: set[int] | None, load_cpus: set[int] | None) -> dict:  # fmt: skip
    s = case.scenario
    run = {"case": case.id, "scenario": s.id, "server": spec.name, "rep": rep + 1, "clients": case.clients,
           "file": s.file_name, "file_bytes": s.size, "duration_s": s.duration, "warmup_s": s.warmup}  # fmt: skip
    workdir = tempfile.mkdtemp(prefix=f"{spec.name}-", dir=scratch)
    port = free_port()
    server = None
    try:
        setup = ServerSetup(port, plan.files_dir, workdir, case.clients, workers=plan.workers,
                            files=(PROBE_FILE, s.file_name))  # fmt: skip
        server = RunningServer(spec, setup, server_cpus)
        server.wait_ready(f"/files/{PROBE_FILE}")
        url = f"http://127.0.0.1:{port}/files/{s.file_name}"
        script_args = prepare_browser(run, port, f"/files/{s.file_name}", workdir, spec.keep_alive) if s.browser else []

        if s.warmup >= 1:
            _, _, sampler = _load(plan, case, server, url, s.warmup, load_cpus, script_args, count_connections=False)
            if sampler.killed_reason or not server.alive():
                raise ServerError(sampler.killed_reason or f"died during warm-up: {server.log_tail()}")
            run["settle_s"] = round(settle(server.pid), 2)

        tree = procstat.process_tree(server.pid)
        cpu_before = procstat.cpu_seconds(tree)
        listen_before = tcpstat.listen_counters()
        cmd, result, sampler = _load(plan, case, server, url, s.duration, load_cpus, script_args,
                                     count_connections=True)  # fmt: skip
        run["wrk_command"] = " ".join(cmd)
        listen_after = tcpstat.listen_counters()
        tree = procstat.process_tree(server.pid)  # workers may have been replaced
        cpu_after = procstat.cpu_seconds(tree)
        hwm = procstat.hwm_mib(tree)
        run.update(metrics(result, case.clients, cpu_after - cpu_before, sampler, hwm, listen_before, listen_after))
        if sampler.killed_reason:
            run["error"] = sampler.killed_reason
        elif not server.alive():
            run["error"] = f"server died: {server.log_tail()}"
    except ServerError as exc:
        run["error"] = str(exc)
    except (loadgen.LoadError, OSError) as exc:
        # wrk failing is usually the server's doing (crashed worker, closed port): say what it said.
        run["error"] = f"{exc}; server output: {server.log_tail() if server else 'none'}"
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return run


def prepare_browser(run: dict, port: int, path: str, workdir: str, keep_alive: bool = True) -> list[str]:
    """T5: the server's validators, the request cycle written for wrk_browser.lua, its arguments.

    Each kind of request is also sent twice, one by one, and every wrong status is kept in
    ``run["status_check"]``: exact, where the counts of the loaded run are only a lower bound.
    """
    try:
        validators = browser.fetch_validators(port, path)
        if validators.status != 200:
            raise ServerError(f"the browser's first request for {path} got {validators.status}, not 200")
        cycle = browser.request_cycle(path, f"127.0.0.1:{port}", validators)
        run["etag"] = validators.etag
        run["status_check"] = browser.check_cycle(port, cycle, keep_alive=keep_alive)
    except (OSError, http.client.HTTPException) as exc:
        raise ServerError(f"the browser's requests before the run failed: {exc!r}") from None
    cycle_file = os.path.join(workdir, "browser-cycle.txt")
    browser.write_cycle(cycle_file, cycle)
    return [cycle_file]


def _load(plan: Plan, case: Case, server: RunningServer, url: str, seconds: float, load_cpus: set[int] | None,
          script_args: list[str], count_connections: bool) -> tuple[list[str], loadgen.WrkResult, Sampler]:  # fmt: skip
    """One wrk run of ``seconds`` against the server while a Sampler watches the server."""
    s = case.scenario
    script = loadgen.BROWSER_SCRIPT if s.browser else loadgen.LUA_SCRIPT
    cmd = loadgen.wrk_command(plan.wrk, url, case.clients, seconds, s.timeout, plan.wrk_threads, script,
                              script_args)  # fmt: skip
    sampler = Sampler(server.pid, server.setup.port, plan.rss_limit_mib, load_cpus, count_connections)
    proc = loadgen.start_wrk(cmd, load_cpus)  # before the sampler thread: preexec_fn and threads don't mix
    sampler.start()
    try:
        # wrk is killed past its run plus one slow response plus slack.
        result = loadgen.finish_wrk(proc, seconds + s.timeout + 30)
    finally:
        sampler.stop()
    return cmd, result, sampler


def settle(pid: int, limit: float = 10.0, step: float = 0.2, idle_cpu: float = 0.1) -> float:
    """Wait (at most ``limit`` s) until the server has stopped working on the warm-up's requests.

    wrk abandons its in-flight requests when the warm-up ends; a server that reads whole
    50 MB files per request can be busy with them for seconds, which would be charged to
    the measured run.  Idle means under ``idle_cpu`` of a core for one ``step``.
    """
    started = time.monotonic()
    before = procstat.cpu_seconds(procstat.process_tree(pid))
    while time.monotonic() - started < limit:
        time.sleep(step)
        now = procstat.cpu_seconds(procstat.process_tree(pid))
        if now - before < idle_cpu * step:
            break
        before = now
    return time.monotonic() - started


def metrics(result: loadgen.WrkResult, clients: int, cpu_s: float, sampler: Sampler, hwm_mib: float,
            listen_before: dict[str, int], listen_after: dict[str, int]) -> dict:  # fmt: skip
    """Everything one run reports, from wrk's summary and the server-side samples."""
    gib = result.bytes / GIB
    dur = result.duration_s or 1e-9
    # Attempts: every request wrk started that ended one way or another.  Clients that never
    # got connected are invisible to wrk; est_peak vs clients and listen_drops show those.
    attempts = result.ok_2xx + result.non_2xx + result.socket_errors
    ok = result.ok_2xx
    browser_metrics = {}
    if result.browser is not None:
        # T5: a 304 to a revalidation is as right as a 200 to a first visit; wrong answers
        # (the fewest the counts prove, see browser.status_mismatches) are what is not ok.
        sent, got = result.browser["sent"], result.browser["got"]
        mismatches = browser.status_mismatches(sent, got)
        ok = max(0, result.requests - mismatches)
        attempts = result.requests + result.socket_errors
        browser_metrics = {
            "sent_200": sent.get(200, 0),
            "sent_304": sent.get(304, 0),
            "got_200": got.get(200, 0),
            "got_304": got.get(304, 0),
            "got_other": got.get("other", 0),
            "share_304": got.get(304, 0) / result.requests if result.requests else None,
            "status_mismatches": mismatches,
        }
    lat = result.latency_ms
    return {
        "requests": result.requests,
        "ok_2xx": result.ok_2xx,
        "non_2xx": result.non_2xx,
        "errors": result.errors,
        "bytes": result.bytes,
        "measured_s": round(result.duration_s, 3),
        "rps": ok / dur,
        "gib_s": gib / dur,
        "lat_mean_ms": lat.get("mean"),
        "lat_p50_ms": lat.get("p50"),
        "lat_p90_ms": lat.get("p90"),
        "lat_p99_ms": lat.get("p99"),
        "lat_max_ms": lat.get("max"),
        "success": ok / attempts if attempts else None,
        "est_peak": sampler.established_peak,
        "est_peak_ratio": (sampler.established_peak / clients) if sampler.established_peak is not None else None,
        "listen_overflows": listen_after["ListenOverflows"] - listen_before["ListenOverflows"],
        "listen_drops": listen_after["ListenDrops"] - listen_before["ListenDrops"],
        "cpu_s": round(cpu_s, 3),
        "cpu_s_per_gib": cpu_s / gib if gib > 0 else None,
        "cpu_us_per_request": cpu_us_per_request(cpu_s, result.requests),
        "rss_peak_mib": round(max(hwm_mib, sampler.rss_peak_mib), 1),
        "rss_sampled_peak_mib": round(sampler.rss_peak_mib, 1),
        **browser_metrics,
    }


def cpu_us_per_request(cpu_s: float, requests: int) -> float | None:
    """Server CPU microseconds per request: its utime + stime over the measured run ÷ requests.

    ``cpu_s`` covers every process of the server (workers included, reaped ones through their
    parent's cutime + cstime, see procstat.cpu_seconds) from just before wrk starts to just after
    it exits; ``requests`` is every response wrk completed in that window, whatever its status.
    None when nothing was completed: there is nothing to divide by.
    """
    return cpu_s * 1e6 / requests if requests > 0 else None


def _progress(plan: Plan, run: dict, done: int, total: int, elapsed: float) -> None:
    eta = elapsed / done * (total - done)
    if "error" in run and "rps" not in run:
        what = f"FAILED: {run['error']}"
    else:
        what = f"{run['rps']:,.0f} req/s, {run['gib_s']:.2f} GiB/s"
        if run.get("cpu_us_per_request") is not None:
            what += f", {run['cpu_us_per_request']:,.1f} CPU µs/req"
        if run.get("lat_p99_ms") is not None:
            what += f", p99 {run['lat_p99_ms']:.1f} ms"
        if run.get("error"):
            what += f" ({run['error']})"
    print(f"[{done:>3}/{total}] {run['case']:<8} {run['server']:<16} rep {run['rep']}/{plan.reps}: {what}"
          f"  [{_clock(elapsed)} elapsed, ~{_clock(eta)} left]", file=plan.progress, flush=True)  # fmt: skip


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"
