"""`python -m bench syscalls` without perf or wrk: reading perf trace's summary (samples captured
on this VM with perf 6.1), the per-request figures and their report, the perf command lines, the
CLI's refusals; and the floor (bench/peers/floor.c) built and asked a few requests, when a C
compiler is here."""
import http.client
import socket
import subprocess
import time

import pytest

from bench import cli, servers, syscalls

# perf trace -i FILE -s of `python -m core --workers 1` under T1: the supervisor, then the worker.
CORE_SUMMARY = """
 Summary of events:

 python (26529), 116 events, 0.0%

   syscall            calls  errors  total       min       avg       max       stddev
                                     (msec)    (msec)    (msec)    (msec)        (%)
   --------------- --------  ------ -------- --------- --------- ---------     ------
   clock_nanosleep       29      0  2885.129     0.000    99.487   118.346      3.68%
   wait4                 29      0     0.090     0.002     0.003     0.004      2.93%


 python (26530), 428632 events, 100.0%

   syscall            calls  errors  total       min       avg       max       stddev
                                     (msec)    (msec)    (msec)    (msec)        (%)
   --------------- --------  ------ -------- --------- --------- ---------     ------
   sendmsg           104754      0   966.511     0.005     0.009     0.135      0.16%
   epoll_wait          2088      0   636.025     0.000     0.305    46.578     10.25%
   recvfrom          104855     93   200.441     0.001     0.002     0.157      0.25%
   newfstatat          2064      0     8.377     0.002     0.004     0.064      1.54%
   close                104      0     0.700     0.004     0.007     0.037      9.13%
   accept4              129     28     0.450     0.002     0.003     0.010      2.99%
   epoll_ctl            202      0     0.415     0.001     0.002     0.009      2.20%
   setsockopt           101      0     0.112     0.001     0.001     0.002      2.24%
   pread64                3      0     0.048     0.011     0.016     0.019     15.23%
   openat                 3      0     0.031     0.007     0.010     0.013     15.25%
   getppid               13      0     0.027     0.002     0.002     0.002      3.32%


"""
CORE_RESPONSES = 104661  # wrk's count for the traced run

# The same for nginx-tuned (master and worker traced; the master made no syscall in the window).
NGINX_SUMMARY = """
 Summary of events:

 nginx (26267), 731202 events, 100.0%

   syscall            calls  errors  total       min       avg       max       stddev
                                     (msec)    (msec)    (msec)    (msec)        (%)
   --------------- --------  ------ -------- --------- --------- ---------     ------
   setsockopt        145598      0   771.353     0.001     0.005     3.648      0.55%
   epoll_wait          1198      0   410.223     0.000     0.342    11.939      9.03%
   sendfile           72799      0   230.121     0.002     0.003     4.047      3.19%
   writev             72799      0   181.394     0.002     0.002     0.092      0.20%
   recvfrom           72900     76   137.040     0.001     0.002     0.068      0.29%
   accept4              101      0     0.522     0.004     0.005     0.016      4.52%
   close                101      0     0.478     0.004     0.005     0.028      5.92%
   epoll_ctl            101      0     0.262     0.002     0.003     0.006      2.82%
   newfstatat             4      0     0.038     0.006     0.009     0.013     16.41%


"""
NGINX_RESPONSES = 72700

# perf before ~5.6 printed no errors column.
OLD_PERF_SUMMARY = """
 Summary of events:

 a.out (99) with spaces (4242), 6 events, 100.0%

   syscall            calls    total       min       avg       max      stddev
                               (msec)    (msec)    (msec)    (msec)        (%)
   --------------- -------- --------- --------- --------- ---------     ------
   read                   2     0.004     0.001     0.002     0.003     33.33%
   write                  1     0.010     0.010     0.010     0.010      0.00%
"""


def test_perf_summary_is_read_per_thread_with_every_row():
    supervisor, worker = syscalls.parse_summary(CORE_SUMMARY)
    assert (supervisor.comm, supervisor.tid, supervisor.events) == ("python", 26529, 116)
    assert list(supervisor.syscalls) == ["clock_nanosleep", "wait4"]
    assert (worker.tid, worker.events, len(worker.syscalls)) == (26530, 428632, 11)
    recv = worker.syscalls["recvfrom"]
    assert (recv.calls, recv.errors, recv.total_ms, recv.min_ms, recv.max_ms) == (104855, 93, 200.441, 0.001, 0.157)
    assert worker.events == 2 * worker.calls  # an entry and an exit per call


def test_summary_of_older_perf_without_errors_column_and_a_comm_with_parentheses():
    (thread,) = syscalls.parse_summary(OLD_PERF_SUMMARY)
    assert (thread.comm, thread.tid, thread.events) == ("a.out (99) with spaces", 4242, 6)
    assert thread.syscalls["read"] == syscalls.SyscallStat(2, 0, 0.004, 0.001, 0.003)
    assert thread.calls == 3


def test_no_summary_is_no_threads():
    assert syscalls.parse_summary("") == []
    assert syscalls.parse_summary("\n Summary of events:\n\n") == []


def test_a_supervisor_that_sleeps_is_left_out_of_the_per_request_figures():
    figures = syscalls.per_request(syscalls.parse_summary(CORE_SUMMARY), CORE_RESPONSES)
    assert [t["tid"] for t in figures["serving_threads"]] == [26530]
    (supervisor,) = figures["other_threads"]
    assert supervisor["calls"] == 58 and supervisor["top"] == {"clock_nanosleep": 29, "wait4": 29}
    rows = {r["syscall"]: r for r in figures["rows"]}
    assert "clock_nanosleep" not in rows  # its 2.9 s of sleep would be 28 µs per request
    assert rows["sendmsg"]["calls_per_request"] == pytest.approx(104754 / CORE_RESPONSES)
    assert figures["unpaired_events"] == 0


def test_mean_per_call_comes_from_the_total_not_perfs_rounded_avg():
    rows = {r["syscall"]: r for r in syscalls.per_request(syscalls.parse_summary(CORE_SUMMARY), CORE_RESPONSES)["rows"]}
    assert rows["sendmsg"]["us_per_call"] == pytest.approx(966.511 * 1000 / 104754)  # 9.23, perf's avg says 0.009 ms
    assert rows["sendmsg"]["us_per_request"] == pytest.approx(966.511 * 1000 / CORE_RESPONSES)
    assert rows["recvfrom"]["errors"] == 93


def test_totals_per_request_with_and_without_epoll_wait():
    figures = syscalls.per_request(syscalls.parse_summary(NGINX_SUMMARY), NGINX_RESPONSES)
    total_ms = 771.353 + 410.223 + 230.121 + 181.394 + 137.040 + 0.522 + 0.478 + 0.262 + 0.038
    assert figures["syscall_us_per_request"] == pytest.approx(total_ms * 1000 / NGINX_RESPONSES)
    assert figures["syscall_us_per_request_without_waiting"] == pytest.approx((total_ms - 410.223) * 1000
                                                                              / NGINX_RESPONSES)  # fmt: skip
    # ~5 per request: cork, writev, sendfile, uncork, recv.
    assert figures["calls_per_request"] == pytest.approx(365601 / NGINX_RESPONSES)
    assert [r["syscall"] for r in figures["rows"]][:2] == ["setsockopt", "epoll_wait"]  # most µs per request first


def test_threads_of_several_processes_add_up():
    doubled = CORE_SUMMARY.replace("python (26530)", "python (26531)")
    figures = syscalls.per_request(syscalls.parse_summary(CORE_SUMMARY + doubled), CORE_RESPONSES)
    rows = {r["syscall"]: r for r in figures["rows"]}
    assert rows["sendmsg"]["calls"] == 2 * 104754 and rows["recvfrom"]["errors"] == 2 * 93
    assert rows["epoll_wait"]["max_ms"] == 46.578 and len(figures["serving_threads"]) == 2


def test_an_entry_or_exit_perf_missed_shows_as_unpaired_events():
    lossy = CORE_SUMMARY.replace("428632 events", "428629 events")
    assert syscalls.per_request(syscalls.parse_summary(lossy), CORE_RESPONSES)["unpaired_events"] == -3


def test_perfs_lost_event_warnings_are_kept():
    text = ("[ perf record: Woken up 16 times to write data ]\nLOST 12 events!\n"
            "Warning:\nProcessed 306092 events and lost 3 chunks!\n\nCheck IO/CPU overload!\n")  # fmt: skip
    assert syscalls.lost_lines(text) == ["LOST 12 events!", "Processed 306092 events and lost 3 chunks!"]
    assert syscalls.lost_lines("[ perf record: Captured and wrote 31.528 MB perf.data (306092 samples) ]") == []


def test_tracing_cost_is_the_extra_cpu_per_syscall():
    assert syscalls.tracing_cost(10.0, 14.0, 2.0) == pytest.approx(2.0)
    assert syscalls.tracing_cost(None, 14.0, 2.0) is None and syscalls.tracing_cost(10.0, 14.0, 0.0) is None


def test_perf_runs_wrk_as_its_workload_recorded_then_summarised(tmp_path):
    wrk = ["wrk", "-t1", "-c100", "-d3s", "http://127.0.0.1:1/files/10k.bin"]
    traced, summary, out = syscalls.trace_commands("/usr/bin/perf", [10, 11], str(tmp_path), wrk, live=False)
    assert traced[:3] == ["/usr/bin/perf", "trace", "record"] and traced[traced.index("-p") + 1] == "10,11"
    assert traced[traced.index("--") + 1:] == wrk
    data = traced[traced.index("-o") + 1]
    assert summary == ["/usr/bin/perf", "trace", "-i", data, "-s", "-o", out]
    traced, summary, out = syscalls.trace_commands("/usr/bin/perf", [10], str(tmp_path), wrk, live=True)
    assert traced[:3] == ["/usr/bin/perf", "trace", "-s"] and summary is None and traced[traced.index("-o") + 1] == out


MACHINE = {"cpu_model": "CPU", "cpus": 2, "mem_total_mib": 2048, "kernel": "6", "git": "abc",
           "versions": {"python": "3.11", "nginx": "1.22.1", "wrk": "4.1.0"}}  # fmt: skip
PLAN = {"file": "10k.bin", "clients": 100, "warmup_s": 2.0, "duration_s": 6.0, "trace_duration_s": 3.0, "live": False,
        "pinned": True, "server_cpus": [1], "load_cpus": [0]}  # fmt: skip


def _result(name, summary, responses, untraced_cpu, traced_cpu):
    figures = syscalls.per_request(syscalls.parse_summary(summary), responses)
    return {"server": name,
            "untraced": {"requests": 500_000, "rps": 90_000.0, "cpu_us_per_request": untraced_cpu},
            "traced": {"requests": responses, "rps": 35_000.0, "cpu_us_per_request": traced_cpu, "perf_warnings": [],
                       **figures},
            "tracing_us_per_syscall": syscalls.tracing_cost(untraced_cpu, traced_cpu,
                                                            figures["calls_per_request"])}  # fmt: skip


def test_markdown_puts_the_servers_side_by_side_with_the_untraced_cpu():
    doc = {"command": "python -m bench syscalls", "generated": "now", "machine": MACHINE, "perf": "perf version 6.1",
           "plan": PLAN, "skipped": {"floor": "no C compiler"},
           "results": [_result("core", CORE_SUMMARY, CORE_RESPONSES, 10.2, 14.0),
                       _result("nginx-tuned", NGINX_SUMMARY, NGINX_RESPONSES, 10.8, 24.0),
                       {"server": "node-cached", "error": "node exited with 1"}]}  # fmt: skip
    doc["summary"] = syscalls.summarise(doc["results"])
    text = syscalls.markdown(doc)
    assert ("| syscall | core calls/req | core µs/call | core µs/req | nginx-tuned calls/req | nginx-tuned µs/call "
            "| nginx-tuned µs/req |") in text  # fmt: skip
    sendmsg = next(line for line in text.splitlines() if line.startswith("| sendmsg |"))
    assert sendmsg == "| sendmsg | 1.001 | 9.23 | 9.23 |  |  |  |"
    setsockopt = next(line for line in text.splitlines() if line.startswith("| setsockopt |"))
    assert "| 2.003 | 5.30 | 10.61 |" in setsockopt
    assert "| **untraced CPU µs per request** |  |  | **10.2** |  |  | **10.8** |" in text
    assert "| **syscalls per request** | **2.05** |  |  | **5.03** |  |  |" in text
    assert "| <0.001 |" in next(line for line in text.splitlines() if line.startswith("| openat |"))
    assert "core: thread python (26529) not counted: 58 calls in the window (clock_nanosleep ×29, wait4 ×29)" in text
    assert "- node-cached: FAILED: node exited with 1" in text and "Skipped: floor (no C compiler)" in text
    assert "**wall** time" in text and "`python -m bench syscalls`" in text and "perf version 6.1" in text


def test_repetitions_are_summarised_as_medians_and_a_missing_syscall_made_no_calls():
    openat = "   openat                 3      0     0.031     0.007     0.010     0.013     15.25%\n"
    assert openat in CORE_SUMMARY
    quiet = CORE_SUMMARY.replace(openat, "")
    results = [_result("core", CORE_SUMMARY, CORE_RESPONSES, 10.0, 14.0),
               _result("core", quiet, CORE_RESPONSES, 11.0, 15.0),
               _result("core", quiet, CORE_RESPONSES, 12.0, 13.0),
               {"server": "core", "error": "died"}]  # fmt: skip
    (core,) = syscalls.summarise(results)
    assert core["reps"] == 3 and core["untraced"]["cpu_us_per_request"] == 11.0
    assert core["traced"]["cpu_us_per_request"] == 14.0
    rows = {r["syscall"]: r for r in core["traced"]["rows"]}
    assert rows["openat"]["calls_per_request"] == 0.0  # in one repetition of three
    assert rows["openat"]["us_per_call"] == pytest.approx(31 / 3)  # from the one that had it
    assert syscalls.summarise([{"server": "floor", "error": "no"}]) == []


def test_cli_knows_the_subcommand_and_refuses_unknown_servers(capsys):
    assert cli.SUBCOMMANDS["syscalls"] == "syscalls"
    assert cli.main(["syscalls", "--servers", "apache"]) == 2
    assert "unknown server apache" in capsys.readouterr().err
    assert cli.main(["syscalls", "--trace-duration", "0.5"]) == 2


def test_missing_perf_stops_the_run(monkeypatch, capsys):
    monkeypatch.setattr(syscalls, "find_perf", lambda: None)
    assert syscalls.main(["--servers", "floor"]) == 2
    assert "perf (apt-get install linux-perf) not found" in capsys.readouterr().err


# --- the floor -----------------------------------------------------------------------------


def test_floor_is_a_server_but_not_a_default_one(monkeypatch):
    spec = servers.SPECS["floor"]
    assert "floor" not in servers.DEFAULT_SERVERS and "floor" not in servers.QUICK_SERVERS
    assert not spec.scales_with_workers and spec.ready_line is servers.LISTENING
    assert syscalls.DEFAULT_SERVERS == ["core", "nginx-tuned", "floor"]
    monkeypatch.setattr(servers.shutil, "which", lambda name: None)
    assert "no C compiler" in spec.unavailable()


def _floor(tmp_path):
    if servers._c_compiler() is None:
        pytest.skip("no C compiler (cc, gcc or clang) to build bench/peers/floor.c")
    files = tmp_path / "files"
    files.mkdir()
    (files / "10k.bin").write_bytes(bytes(range(256)) * 40)
    (files / "probe.txt").write_bytes(b"probe")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    setup = servers.ServerSetup(port, str(files), str(tmp_path), 4, files=("probe.txt", "10k.bin"))
    command = servers.SPECS["floor"].command(setup)
    assert command[1:] == [str(port), str(files), "probe.txt", "10k.bin"]
    return port, subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def test_floor_answers_its_files_with_200_anything_else_with_404(tmp_path):
    port, proc = _floor(tmp_path)
    try:
        assert servers.LISTENING.search(proc.stdout.readline())  # printed once it accepts
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for path, status, body in [("/files/10k.bin", 200, bytes(range(256)) * 40), ("/files/probe.txt", 200, b"probe"),
                                   ("/files/other.bin", 404, b""), ("/files/10k.bin?x", 404, b"")]:  # fmt: skip
            conn.request("GET", path)
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (status, body), path
        conn.request("HEAD", "/files/probe.txt")  # not GET: 404, on the same connection
        assert conn.getresponse().status == 404
        conn.close()
    finally:
        proc.kill()
        proc.wait(timeout=5)


def test_floor_answers_pipelined_requests_in_order_and_heads_split_byte_by_byte(tmp_path):
    port, proc = _floor(tmp_path)
    try:
        proc.stdout.readline()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /files/probe.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\n\r\n")
            for byte in b"GET /files/probe.txt HTTP/1.1\r\n\r\n":
                s.send(bytes([byte]))
                time.sleep(0.001)
            ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nprobe"
            expected = ok + b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" + ok
            got = b""
            while len(got) < len(expected):
                chunk = s.recv(65536)
                assert chunk, got
                got += chunk
            assert got == expected
    finally:
        proc.kill()
        proc.wait(timeout=5)


def test_floor_is_built_once_per_version_of_its_source():
    if servers._c_compiler() is None:
        pytest.skip("no C compiler (cc, gcc or clang) to build bench/peers/floor.c")
    first = servers.floor_binary()
    assert servers.floor_binary() == first and first.stat().st_mode & 0o100
    assert first.parent.stat().st_mode & 0o077 == 0  # private: nobody else can put a binary there
