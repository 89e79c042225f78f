"""Soak: hold thousands of idle keep-alive connections open while serving load.

    python -m bench soak [--idle 10000] [--duration 30] [--server core|core-py]

Starts core with one worker, opens --idle keep-alive connections that each
make one request and then stay idle, runs wrk against the 10 KB file for
--duration seconds next to them, then checks that every idle connection
still answers.  Reports errors, the worker's peak RSS, RSS per idle
connection, and its open descriptors at start and after everything closed.
Bars (issue 7): zero errors, <= 10 KiB per idle connection, descriptors back
to the start value.
"""
import argparse
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time

from . import loadgen, procstat

REQUEST = b"GET / HTTP/1.1\r\nHost: soak\r\n\r\n"


def worker_pid(parent):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{parent}/task/{parent}/children") as f:
            children = f.read().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError("core started no worker")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    return procstat._status_kib(pid, "VmRSS:")


def start_core(variant, directory, idle, duration):
    env = dict(os.environ)
    env.pop("CORE_REQUIRE_COMPILED", None)
    if variant == "core-py":
        env["CORE_PURE_PYTHON"] = "1"
    cmd = [sys.executable, "-m", "core", "--port", "0", "--directory", directory, "--workers", "1",
           "--keepalive-timeout", str(duration + 120), "--max-connections", str(idle + 1000)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if not line.startswith("Listening on http://"):
        proc.kill()
        raise SystemExit(f"core did not start: {line!r} {proc.stderr.read()}")
    return proc, int(line.rsplit(":", 1)[1])


def open_idle(port, count):
    """count connections that each complete one request; returns (sockets, failures)."""
    sockets, failures = [], 0
    selector = selectors.DefaultSelector()
    for start in range(0, count, 500):        # in batches, so the listen backlog keeps up
        batch = []
        for _ in range(min(500, count - start)):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(REQUEST)
                batch.append(sock)
            except OSError:
                failures += 1
        for sock in batch:
            if read_response(sock):
                sockets.append(sock)
            else:
                failures += 1
                sock.close()
    selector.close()
    return sockets, failures


def read_response(sock):
    """Read one small response (headers and the empty body of GET /); True if 200."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return False
            data += chunk
    except OSError:
        return False
    return data.startswith(b"HTTP/1.1 200 ")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=10_000, help="idle keep-alive connections (default 10000)")
    parser.add_argument("--duration", type=float, default=30, help="seconds of load next to them (default 30)")
    parser.add_argument("--clients", type=int, default=100, help="wrk connections (default 100)")
    parser.add_argument("--server", choices=["core", "core-py"], default="core")
    parser.add_argument("--out", default=None, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)

    wrk = loadgen.find_wrk()
    if wrk is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.idle + 1000
    if hard < need:
        raise SystemExit(f"--idle {args.idle} needs {need} descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))   # inherited by core and wrk

    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, "10k.bin"), "wb") as f:
            f.write(os.urandom(10 * 1024))
        proc, port = start_core(args.server, directory, args.idle, args.duration)
        try:
            worker = worker_pid(proc.pid)
            url = f"http://127.0.0.1:{port}/files/10k.bin"
            # Warm up, so the baseline includes what serving itself costs.
            loadgen.finish_wrk(loadgen.start_wrk(loadgen.wrk_command(wrk, url, args.clients, 2, 5), None), 30)
            deadline = time.monotonic() + 10        # until the warm-up's connections are gone
            while fd_count(worker) > 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            fds_start, rss_start = fd_count(worker), rss_kib(worker)
            print(f"soak: opening {args.idle} idle keep-alive connections...", file=sys.stderr)
            idle, open_failures = open_idle(port, args.idle)
            time.sleep(1.0)     # steady state: core frees an idle connection's buffers after 0.25 s
            rss_idle = rss_kib(worker)
            print(f"soak: {len(idle)} open; {args.duration:.0f} s of load with {args.clients} clients...",
                  file=sys.stderr)
            result = loadgen.finish_wrk(loadgen.start_wrk(
                loadgen.wrk_command(wrk, url, args.clients, args.duration, 10), None), args.duration + 60)
            alive_failures = 0
            for sock in idle:                   # every idle connection must still answer
                try:
                    sock.sendall(REQUEST)
                    alive_failures += not read_response(sock)
                except OSError:
                    alive_failures += 1
            peak_rss = procstat._status_kib(worker, "VmHWM:")
            for sock in idle:
                sock.close()
            deadline = time.monotonic() + 10
            while fd_count(worker) > fds_start and time.monotonic() < deadline:
                time.sleep(0.1)
            fds_end = fd_count(worker)
        finally:
            proc.terminate()
            proc.wait(30)

    report = {
        "server": args.server, "idle_connections": args.idle, "duration_s": args.duration,
        "load_requests": result.requests, "load_rps": round(result.requests / result.duration_s),
        "errors": {"open_idle": open_failures, "idle_lost": alive_failures,
                   "load_socket": result.socket_errors, "load_non_2xx": result.non_2xx},
        "rss_start_kib": rss_start, "rss_with_idle_kib": rss_idle, "peak_rss_kib": peak_rss,
        "rss_per_idle_connection_kib": round((rss_idle - rss_start) / max(len(idle), 1), 2),
        "fds_start": fds_start, "fds_end": fds_end,
    }
    total_errors = sum(report["errors"].values())
    report["bars"] = {
        "zero_errors": total_errors == 0,
        "rss_per_idle_le_10_kib": report["rss_per_idle_connection_kib"] <= 10,
        "fds_back_to_start": fds_end <= fds_start,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
    return 0 if all(report["bars"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
