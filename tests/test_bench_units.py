"""The harness's own logic, without long loads: parsing, overrides, ratios, CPU per request and per
GiB, the nginx configs (plain and tuned), --workers, T5's browser requests and their status
accounting (wrk for a second against a tiny local server), the seed-scale client (against a
tiny scripted server) and report, the baseline checkout, CLI paths."""
import http.server
import importlib.util
import shutil
import socket
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

from bench import (baseline, browser, bytes_client, cli, launch, loadgen, report, runner, scenarios, seed_scale,
                   servers, tcpstat)
from bench.scenarios import MIB

WRK_STDOUT = """Running 1s test @ http://127.0.0.1:1/files/10k.bin
  1 threads and 4 connections
WRK_JSON {"requests":120,"bytes":1250000,"duration_us":1000000,"errors":{"connect":0,"read":1,"write":0,"status":20,"timeout":2},"latency_us":{"min":100,"mean":250.5,"stdev":10.0,"p50":200,"p90":400,"p99":900,"max":1200}}
"""


@pytest.mark.parametrize(
    "text, size", [("10k", 10240), ("10KB", 10240), ("1M", 1 << 20), ("50MiB", 50 << 20), ("4096", 4096)]
)
def test_parse_size_uses_binary_units(text, size):
    assert scenarios.parse_size(text) == size


@pytest.mark.parametrize("size, name", [(10240, "10k.bin"), (1 << 20, "1m.bin"), (50 << 20, "50m.bin"), (1000, "1000b.bin")])
def test_file_name_for_size(size, name):
    assert scenarios.file_name_for(size) == name


def test_full_adds_t3_with_500_clients_and_t4_with_50_mb():
    table = scenarios.default_scenarios(full=True)
    assert [c.id for c in table["T3"].cases()] == ["T3", "T3-c500"]
    assert table["T4"].size == 50 << 20 and table["T4"].clients == [4000]
    assert scenarios.default_scenarios()["T4"].size == 1 << 20


def test_set_overrides_size_clients_and_timings():
    table = scenarios.default_scenarios()
    for text in ("T1.clients=8:16", "T4.size=2M", "T2.duration=3", "T3.timeout=90"):
        scenarios.apply_override(table, text)
    assert table["T1"].clients == [8, 16] and table["T4"].file_name == "2m.bin"
    assert table["T2"].duration == 3.0 and table["T3"].timeout == 90.0


@pytest.mark.parametrize("text", ["T9.size=1k", "T1.colour=red", "T1clients=3", "T1.clients=0"])
def test_set_rejects_what_it_does_not_know(text):
    with pytest.raises(ValueError):
        scenarios.apply_override(scenarios.default_scenarios(), text)


def test_wrk_summary_is_read_from_the_json_line():
    result = loadgen.parse_output(WRK_STDOUT)
    assert result.requests == 120 and result.ok_2xx == 100 and result.non_2xx == 20
    assert result.socket_errors == 3
    assert result.latency_ms["p99"] == 0.9 and result.duration_s == 1.0


def test_wrk_without_summary_is_an_error():
    with pytest.raises(loadgen.LoadError):
        loadgen.parse_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_lua_script_prints_one_parsable_line_with_wrk():
    """The Lua done() hook against a real server: wrk's own output parses."""
    wrk = shutil.which("wrk")
    assert wrk, "wrk is required: apt-get install wrk"
    srv = subprocess.Popen([sys.executable, "-m", "http.server", "0", "-b", "127.0.0.1"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        port = int(srv.stdout.readline().split(" port ")[1].split()[0])
        out = subprocess.run(loadgen.wrk_command(wrk, f"http://127.0.0.1:{port}/", 2, 1, 2),
                             capture_output=True, text=True, timeout=20).stdout  # fmt: skip
    finally:
        srv.terminate()
        srv.wait(timeout=10)
    result = loadgen.parse_output(out)
    assert result.requests > 0 and result.bytes > 0 and result.latency_ms["max"] > 0


def test_listen_counters_are_read_from_tcpext(tmp_path):
    netstat = tmp_path / "netstat"
    netstat.write_text(
        "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 7 9\n"
        "IpExt: InNoRoutes\nIpExt: 0\n"
    )
    assert tcpstat.listen_counters(str(netstat)) == {"ListenOverflows": 7, "ListenDrops": 9}
    assert set(tcpstat.listen_counters()) == {"ListenOverflows", "ListenDrops"}


def _run(server, rep, rps, cpu_us=10.0):
    return {"case": "T1", "server": server, "rep": rep, "rps": rps, "gib_s": rps / 1000, "cpu_s_per_gib": 1.0,
            "cpu_us_per_request": cpu_us}  # fmt: skip


def test_ratios_are_medians_of_per_repetition_ratios():
    table = scenarios.default_scenarios()
    scenarios.finish(table)
    runs = [_run("core", 1, 100), _run("nginx-tuned", 1, 200),   # 0.5
            _run("core", 2, 300), _run("nginx-tuned", 2, 100),   # 3.0
            _run("core", 3, 90), _run("nginx-tuned", 3, 100)]    # 0.9  fmt: skip
    summary = report.summarise(runs, table["T1"].cases(), ["core", "nginx-tuned"])
    core = summary["T1"]["servers"]["core"]
    assert core["median"]["rps"] == 100
    assert core["ratios"]["nginx-tuned"]["rps"] == pytest.approx(0.9)  # not 100/100 = 1.0
    assert core["ratios"]["node-cached"]["rps"] is None  # not measured


def test_cpu_per_request_is_server_cpu_over_completed_requests():
    assert runner.cpu_us_per_request(0.5, 50_000) == pytest.approx(10.0)
    assert runner.cpu_us_per_request(0.0, 10) == 0.0
    assert runner.cpu_us_per_request(0.5, 0) is None  # nothing completed: no per-request figure


def test_run_metrics_divide_cpu_by_every_completed_response():
    result = loadgen.parse_output(WRK_STDOUT)  # 120 responses, 20 of them non-2xx
    sampler = types.SimpleNamespace(established_peak=4, rss_peak_mib=12.0)
    counters = {"ListenOverflows": 0, "ListenDrops": 0}
    run = runner.metrics(result, 4, 0.0012, sampler, 10.0, counters, counters)
    assert run["cpu_us_per_request"] == pytest.approx(10.0)  # 1,200 µs / 120 responses
    assert run["rps"] == 100  # req/s counts 2xx only


def test_cpu_per_request_ratios_are_medians_of_per_repetition_ratios():
    table = scenarios.default_scenarios()
    scenarios.finish(table)
    runs = [_run("core", 1, 100, cpu_us=10), _run("nginx-tuned", 1, 100, cpu_us=20),  # 0.5
            _run("core", 2, 100, cpu_us=12), _run("nginx-tuned", 2, 100, cpu_us=10),  # 1.2
            _run("core", 3, 100, cpu_us=9), _run("nginx-tuned", 3, 100, cpu_us=10)]   # 0.9  fmt: skip
    core = report.summarise(runs, table["T1"].cases(), ["core", "nginx-tuned"])["T1"]["servers"]["core"]
    assert core["median"]["cpu_us_per_request"] == 10
    assert core["ratios"]["nginx-tuned"]["cpu_us_per_request"] == pytest.approx(0.9)
    assert core["ratios_per_rep"]["nginx-tuned"]["cpu_us_per_request"] == pytest.approx([0.5, 1.2, 0.9])


def test_every_scenario_reports_cpu_per_request():
    table = scenarios.default_scenarios()
    scenarios.finish(table)
    assert all("cpu_us_per_request" in s.reported for s in table.values())
    assert "cpu_s_per_gib" in table["T3"].reported  # large files keep CPU s/GiB too


def test_a_baseline_checkout_is_a_peer_only_when_it_ran():
    table = scenarios.default_scenarios()
    scenarios.finish(table)
    runs = [_run("core", 1, 110, cpu_us=9), _run("core-baseline", 1, 100, cpu_us=10)]
    with_baseline = report.summarise(runs, table["T1"].cases(), ["core", "core-baseline"])["T1"]["servers"]
    assert with_baseline["core"]["ratios"]["core-baseline"]["rps"] == pytest.approx(1.1)
    assert with_baseline["core"]["ratios"]["core-baseline"]["cpu_us_per_request"] == pytest.approx(0.9)
    without = report.summarise(runs[:1], table["T1"].cases(), ["core"])["T1"]["servers"]["core"]
    assert "core-baseline" not in without["ratios"]


MACHINE = {"cpu_model": "CPU", "cpus": 2, "mem_total_mib": 2048, "kernel": "6", "git": "abc",
           "versions": {"python": "3.11"}}  # fmt: skip
PLAN = {"reps": 2, "wrk_threads": 1, "pinned": True}


def test_markdown_shows_cpu_per_request_next_to_req_s_and_the_baseline_spread(tmp_path):
    table = scenarios.default_scenarios()
    scenarios.finish(table)
    runs = [_run("core", 1, 110, cpu_us=9), _run("core-baseline", 1, 100, cpu_us=10),
            _run("core", 2, 100, cpu_us=11), _run("core-baseline", 2, 100, cpu_us=10)]  # fmt: skip
    specs = [servers.SPECS["core"], baseline.server_specs(tmp_path)["core-baseline"]]
    info = {"servers": ["core-baseline"], "path": str(tmp_path), "ref": "HEAD", "git": "abc",
            "core_file": f"{tmp_path}/core/__init__.py"}  # fmt: skip
    text = report.markdown(report.document(runs, table["T1"].cases(), specs, {}, MACHINE, [], PLAN, info))
    assert "| server | req/s | CPU µs/req | avg ms | p99 ms |" in text
    assert "req/s vs core-baseline | CPU/req vs core-baseline |" in text
    row = next(line for line in text.splitlines() if line.startswith("| core |"))
    assert "| 10.0 |" in row  # median CPU µs/req
    assert "| 1.00 (0.90–1.10) |" in row  # CPU/req ratio: median (per-repetition range)
    assert "Baseline: core-baseline ran `python -m core` from ref `HEAD`" in text


def test_baseline_servers_run_core_from_the_checkout(tmp_path):
    specs = baseline.server_specs(tmp_path)
    setup = servers.ServerSetup(port=18080, directory="/srv/files", workdir=str(tmp_path), max_clients=4)
    compiled, pure = specs["core-baseline"], specs["core-py-baseline"]
    for spec in (compiled, pure):
        assert spec.command(setup) == servers.core_command(setup)  # the same command line as core
        assert spec.command(setup)[:4] == [sys.executable, "-S", "-m", "core"]
        assert spec.cwd == tmp_path.resolve() and spec.env["PYTHONPATH"] == str(tmp_path.resolve())
    assert compiled.env["CORE_PURE_PYTHON"] == "0" and compiled.env["CORE_REQUIRE_COMPILED"] == "1"
    assert pure.env["CORE_PURE_PYTHON"] == "1" and pure.env["CORE_REQUIRE_COMPILED"] == "0"
    assert "core/__main__.py not found" in compiled.unavailable()


def test_verify_accepts_this_checkout_and_reports_what_was_imported():
    specs = baseline.server_specs(servers.REPO_ROOT)
    found = baseline.verify_checkout(specs["core-py-baseline"])
    assert found["core_file"] == str(servers.REPO_ROOT / "core" / "__init__.py")
    if importlib.util.find_spec("core.loop_c") is None:
        pytest.skip("core is not compiled here")
    found = baseline.verify_checkout(specs["core-baseline"])
    assert all(Path(f).is_relative_to(servers.REPO_ROOT) for f in found["compiled"].values())


def _fake_checkout(root: Path, init: bool, pyx: bool) -> Path:
    (root / "core").mkdir(parents=True)
    (root / "core" / "__main__.py").write_text("")
    if init:
        (root / "core" / "__init__.py").write_text("")
    if pyx:
        (root / "core" / "_fast.pyx").write_text("")
    return root


def test_verify_refuses_a_checkout_without_a_compiled_build(tmp_path):
    specs = baseline.server_specs(_fake_checkout(tmp_path, init=True, pyx=True))
    with pytest.raises(baseline.BaselineError, match=r"no compiled build for this Python \(core._fast\)"):
        baseline.verify_checkout(specs["core-baseline"])
    assert baseline.verify_checkout(specs["core-py-baseline"])["compiled"] == {"_fast": None}


def test_verify_refuses_a_core_imported_from_elsewhere(tmp_path):
    spec = baseline.server_specs(_fake_checkout(tmp_path, init=False, pyx=False))["core-py-baseline"]
    with pytest.raises(baseline.BaselineError, match="not from"):
        baseline.verify_checkout(spec)
    with pytest.raises(baseline.BaselineError, match="not a checkout"):
        baseline.verify_checkout(baseline.server_specs(tmp_path / "nowhere")["core-baseline"])


def test_temporary_worktree_checks_out_the_ref_and_is_removed():
    head = subprocess.run(["git", "-C", str(servers.REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()  # fmt: skip
    with baseline.temporary_worktree("HEAD", build=False, log=sys.stderr) as (checkout, commit):
        assert commit == head and (checkout / "core" / "__main__.py").exists()
    listed = subprocess.run(["git", "-C", str(servers.REPO_ROOT), "worktree", "list"], capture_output=True,
                            text=True).stdout  # fmt: skip
    assert not checkout.exists() and str(checkout) not in listed
    with pytest.raises(baseline.BaselineError, match="not a commit"):
        baseline.resolve_ref("no-such-ref-anywhere")


def test_baseline_is_added_after_core_unless_named():
    assert cli.with_baseline_servers(["core", "nginx-tuned"], True) == ["core", "core-baseline", "nginx-tuned"]
    assert cli.with_baseline_servers(["nginx-tuned"], True) == ["core-baseline", "nginx-tuned"]
    assert cli.with_baseline_servers(["core", "core-py-baseline"], True) == ["core", "core-py-baseline"]
    assert cli.with_baseline_servers(["core", "nginx-tuned"], False) == ["core", "nginx-tuned"]


def test_baseline_servers_need_a_baseline(capsys):
    assert cli.main(["--servers", "core,core-baseline"]) == 2
    assert "need --baseline PATH or --baseline-ref REF" in capsys.readouterr().err


def test_failed_runs_are_left_out_of_medians_and_noted():
    table = scenarios.default_scenarios()
    scenarios.finish(table)
    runs = [_run("nginx-tuned", 1, 200),
            {"case": "T1", "server": "nginx-tuned", "rep": 2, "error": "nginx exited with 1"}]  # fmt: skip
    summary = report.summarise(runs, table["T1"].cases(), ["nginx-tuned"])
    entry = summary["T1"]["servers"]["nginx-tuned"]
    assert entry["median"]["rps"] == 200 and entry["ok_runs"] == 1 and entry["errors"] == ["nginx exited with 1"]


def test_nginx_config_is_complete_and_valid(tmp_path):
    setup = servers.ServerSetup(port=18080, directory=str(tmp_path / "files"), workdir=str(tmp_path), max_clients=4000)
    text = servers.render_nginx_conf(setup)
    assert "@" not in text  # every placeholder filled
    for needle in ("daemon off;", "worker_processes 1;", "listen 127.0.0.1:18080", "sendfile on;",
                   "access_log off;", "keepalive_requests 100000;", f"alias {tmp_path}/files/;",
                   f"pid {tmp_path}/nginx.pid;", "worker_connections 8256;"):  # fmt: skip
        assert needle in text
    nginx = servers._nginx_binary()
    if nginx:
        (tmp_path / "files").mkdir()
        (tmp_path / "nginx.conf").write_text(servers.render_nginx_conf(setup, servers._nginx_configure_flags()))
        check = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                                "-e", str(tmp_path / "error.log")], capture_output=True, text=True)  # fmt: skip
        assert check.returncode == 0, check.stderr


def test_missing_wrk_stops_the_run(monkeypatch, capsys):
    monkeypatch.setattr(loadgen, "find_wrk", lambda: None)
    assert cli.main(["--scenarios", "T1"]) == 2
    assert "apt-get install wrk" in capsys.readouterr().err


def test_unknown_server_is_refused(capsys):
    assert cli.main(["--servers", "apache"]) == 2
    assert "unknown scenario or server: apache" in capsys.readouterr().err


def test_missing_subcommand_module_says_so(monkeypatch, capsys):
    monkeypatch.setitem(cli.SUBCOMMANDS, "soak", "no_such_module_here")
    assert cli.main(["soak", "--x"]) == 2
    assert "bench/no_such_module_here.py does not exist yet" in capsys.readouterr().err


def test_subcommand_delegates_its_arguments(monkeypatch):
    seen = []
    fake = types.ModuleType("bench.fake_sub")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "bench.fake_sub", fake)
    monkeypatch.setitem(cli.SUBCOMMANDS, "parser", "fake_sub")
    assert cli.main(["parser", "--n", "5"]) == 0
    assert seen == [["--n", "5"]]


# --- nginx-tuned, --workers ----------------------------------------------------------


def _setup(tmp_path, workers=1, clients=4000):
    return servers.ServerSetup(port=18080, directory=str(tmp_path / "files"), workdir=str(tmp_path),
                               max_clients=clients, workers=workers)  # fmt: skip


FILE_CACHE_LINES = ("open_file_cache max=10000 inactive=60s;", "open_file_cache_valid 1s;",
                    "open_file_cache_errors on;", "gzip_static on;")  # fmt: skip


def test_nginx_tuned_adds_the_file_cache_and_gzip_static_to_the_plain_config(tmp_path):
    tuned = servers.render_nginx_conf(_setup(tmp_path), tuned=True)
    plain = servers.render_nginx_conf(_setup(tmp_path), tuned=False)
    assert all(line in tuned for line in FILE_CACHE_LINES)
    assert not any(line in plain for line in FILE_CACHE_LINES)
    # Otherwise the same configuration.
    assert [x for x in tuned.splitlines() if x.strip() not in FILE_CACHE_LINES] == \
        [x for x in plain.splitlines() if "open_file_cache is left off" not in x]  # fmt: skip
    assert servers.SPECS["nginx-tuned"].prepare is not None and "nginx-tuned" in servers.BASELINES
    assert "nginx-plain" in servers.DEFAULT_SERVERS and "nginx-tuned" in servers.QUICK_SERVERS


def test_nginx_tuned_leaves_gzip_static_out_when_nginx_lacks_the_module(tmp_path):
    text = servers.render_nginx_conf(_setup(tmp_path), "--with-http_ssl_module", tuned=True)
    assert "open_file_cache max=10000" in text and "gzip_static on;" not in text


def test_nginx_tuned_config_is_accepted_by_nginx(tmp_path):
    nginx = servers._nginx_binary()
    if not nginx:
        pytest.skip("nginx is not installed")
    (tmp_path / "files").mkdir()
    setup = _setup(tmp_path, workers=2)
    servers.SPECS["nginx-tuned"].prepare(setup)
    text = (tmp_path / "nginx.conf").read_text()
    assert "worker_processes 2;" in text and "gzip_static on;" in text
    check = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                            "-e", str(tmp_path / "error.log")], capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stderr


def test_workers_reach_core_and_nginx_only(tmp_path):
    setup = _setup(tmp_path, workers=3)
    cmd = servers.core_command(setup)
    assert cmd[cmd.index("--workers") + 1] == "3"
    assert "worker_processes 3;" in servers.render_nginx_conf(setup, tuned=True)
    scaling = {name for name, spec in servers.SPECS.items() if spec.scales_with_workers}
    assert {"core", "core-py", "nginx-tuned", "nginx-plain"} <= scaling
    assert not scaling & {"core-alone", "node-cached", "node-readfile", "uvicorn", "s09"}
    alone = servers.core_alone_command(setup)
    assert "--no-supervisor" in alone and "--workers" not in alone
    assert report.describe(servers.SPECS["core"], 2) == "core, compiled, 2 workers"
    assert report.describe(servers.SPECS["node-cached"], 2).endswith("one process (--workers 2 does not apply)")


@pytest.mark.parametrize("cpus, workers, expected", [
    ([0, 1], 1, ({1}, {0})),
    ([0, 1], 2, (None, None)),  # 2 workers + the load generator do not fit on 2 CPUs: unpinned
    ([0, 1, 2, 3], 2, ({1, 2}, {0})),
    ([0], 1, (None, None)),
])  # fmt: skip
def test_cpu_plan_pins_n_workers_only_when_they_fit(monkeypatch, cpus, workers, expected):
    monkeypatch.setattr(launch.os, "sched_getaffinity", lambda pid: set(cpus))
    assert launch.cpu_plan(True, workers) == expected
    assert launch.cpu_plan(False, workers) == (None, None)


def test_cli_refuses_zero_workers(capsys):
    assert cli.main(["--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


# --- CPU per request and per GiB in every table ---------------------------------------


def test_small_files_compare_cpu_per_request_and_large_files_cpu_per_gib():
    table = scenarios.default_scenarios()
    scenarios.finish(table)
    assert {s: table[s].cpu_metric for s in table} == {
        "T1": "cpu_us_per_request", "T2": "cpu_us_per_request", "T3": "cpu_s_per_gib",
        "T4": "cpu_s_per_gib", "T5": "cpu_us_per_request"}  # fmt: skip
    for s in table.values():
        assert s.cpu_metric in s.reported and "cpu_us_per_request" in s.reported
    assert "cpu_s_per_gib" in table["T4"].reported


def test_markdown_compares_cpu_per_gib_for_large_files():
    table = scenarios.default_scenarios()
    scenarios.finish(table)
    runs = [{**_run("core", 1, 10), "case": "T3", "gib_s": 1.0, "cpu_s_per_gib": 0.2},
            {**_run("nginx-tuned", 1, 10), "case": "T3", "gib_s": 1.0, "cpu_s_per_gib": 0.4}]  # fmt: skip
    specs = [servers.SPECS["core"], servers.SPECS["nginx-tuned"]]
    doc = report.document(runs, table["T3"].cases(), specs, {}, MACHINE, [], PLAN)
    assert doc["summary"]["T3"]["cpu_metric"] == "cpu_s_per_gib"
    text = report.markdown(doc)
    assert "| GiB/s vs nginx-tuned | CPU/GiB vs nginx-tuned |" in text.replace("GiB/s vs node-cached | ", "")
    row = next(line for line in text.splitlines() if line.startswith("| core |"))
    assert "| 0.50 |" in row  # CPU s/GiB ratio vs nginx-tuned


# --- T5: a browser's requests ------------------------------------------------------------


def _headers(raw: bytes) -> list[str]:
    return [line.split(":", 1)[0] for line in raw.decode().split("\r\n")[1:] if line]


def test_t5_is_a_default_scenario_of_t1s_file_and_clients():
    table = scenarios.default_scenarios()
    scenarios.finish(table)
    t5 = table["T5"]
    assert t5.browser and not table["T1"].browser
    assert (t5.size, t5.clients) == (table["T1"].size, table["T1"].clients)
    assert "T5" in cli.QUICK_SCENARIOS
    assert ("share_304", "status_mismatches") == t5.reported[-2:]


def test_browser_request_carries_chromes_headers_in_order():
    raw = browser.request_bytes("/files/10k.bin", browser.navigation_headers("127.0.0.1:8080"))
    text = raw.decode()
    assert text.startswith("GET /files/10k.bin HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n") and text.endswith("\r\n\r\n")
    assert _headers(raw) == ["Host", "Connection", "sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform",
                             "Upgrade-Insecure-Requests", "User-Agent", "Accept", "Sec-Fetch-Site",
                             "Sec-Fetch-Mode", "Sec-Fetch-User", "Sec-Fetch-Dest", "Accept-Encoding",
                             "Accept-Language"]  # fmt: skip
    assert "Accept-Encoding: gzip, deflate, br, zstd\r\n" in text
    assert f"Chrome/{browser.CHROME_MAJOR}.0.0.0 Safari/537.36" in text and "If-None-Match" not in text


def test_a_third_of_browser_requests_revalidate_with_the_servers_etag():
    validators = browser.Validators(200, '"abc-28"', "Tue, 01 Dec 2026 10:00:00 GMT")
    cycle = browser.request_cycle("/files/10k.bin", "h:1", validators)
    assert [status for status, _ in cycle] == [200, 200, 304]
    conditional = cycle[2][1].decode()
    assert 'If-None-Match: "abc-28"\r\n' in conditional
    assert "If-Modified-Since: Tue, 01 Dec 2026 10:00:00 GMT\r\n" in conditional
    assert "Cache-Control: max-age=0\r\n" in conditional
    assert all("If-None-Match" not in raw.decode() for _, raw in cycle[:2])
    # No ETag from the server: nothing to revalidate.
    assert [s for s, _ in browser.request_cycle("/x", "h:1", browser.Validators(200, None, None))] == [200]


@pytest.mark.parametrize("sent, got, wrong", [
    ({200: 200, 304: 100}, {200: 198, 304: 99}, 0),          # two unanswered at the end: unknown, not wrong
    ({200: 200, 304: 100}, {200: 290, 304: 0}, 90),           # revalidations answered 200
    ({200: 200, 304: 100}, {200: 150, 304: 150}, 50),         # first visits answered 304
    ({200: 200, 304: 100}, {200: 200, 304: 95, "other": 5}, 5),
])  # fmt: skip
def test_status_mismatches_are_the_fewest_wrong_answers_the_counts_prove(sent, got, wrong):
    assert browser.status_mismatches(sent, got) == wrong


def test_t5_run_counts_304s_as_right_answers():
    result = loadgen.parse_output(WRK_STDOUT.replace(
        '"max":1200}}', '"max":1200},"browser":{"sent":{"200":82,"304":41},"got":{"200":80,"304":40,"other":0}}}'))
    assert result.browser == {"sent": {200: 82, 304: 41}, "got": {200: 80, 304: 40, "other": 0}}
    result.errors["status"] = 0
    sampler = types.SimpleNamespace(established_peak=4, rss_peak_mib=12.0)
    counters = {"ListenOverflows": 0, "ListenDrops": 0}
    run = runner.metrics(result, 4, 0.0012, sampler, 10.0, counters, counters)
    assert run["rps"] == 120 and run["status_mismatches"] == 0
    assert run["share_304"] == pytest.approx(1 / 3) and run["got_304"] == 40 and run["sent_304"] == 41


def test_t5_markdown_shows_the_304_share_wrong_statuses_and_a_failed_check():
    table = scenarios.default_scenarios()
    scenarios.finish(table)
    runs = [{**_run("core", 1, 100), "case": "T5", "share_304": 0.0, "status_mismatches": 33, "etag": '"a"',
             "status_check": ["request 3 (revalidation) got 200, expected 304"]},
            {**_run("nginx-tuned", 1, 100), "case": "T5", "share_304": 1 / 3, "status_mismatches": 0,
             "etag": '"b"', "status_check": []}]  # fmt: skip
    specs = [servers.SPECS["core"], servers.SPECS["nginx-tuned"]]
    doc = report.document(runs, table["T5"].cases(), specs, {}, MACHINE, [], PLAN)
    text = report.markdown(doc)
    assert "| 304 share | wrong status |" in text and "- T5: every request carries" in text
    core = next(line for line in text.splitlines() if line.startswith("| core |"))
    assert "| 0.0% | 33 |" in core and "WRONG STATUS before the run: request 3 (revalidation) got 200" in core
    assert "| 33.3% | 0 |" in next(line for line in text.splitlines() if line.startswith("| nginx-tuned |"))


class _ConditionalHandler(http.server.BaseHTTPRequestHandler):
    """A 10 KB file with an ETag; answers If-None-Match with 304 unless the server ignores it."""

    protocol_version = "HTTP/1.1"
    wbufsize = -1  # head and body in one write: no Nagle/delayed-ACK stall per response
    disable_nagle_algorithm = True
    body = b"x" * 10240
    etag = '"t5-test"'

    def do_GET(self):  # noqa: N802
        if self.headers.get("If-None-Match") == self.etag and not self.server.ignores_validators:
            self.send_response(304)
            self.send_header("ETag", self.etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", self.etag)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # wrk closing its connections mid-response at the end of its run


@pytest.fixture
def conditional_server():
    started = []

    def start(ignores_validators=False):
        srv = _QuietServer(("127.0.0.1", 0), _ConditionalHandler)
        srv.ignores_validators = ignores_validators
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return srv.server_address[1]

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("ignores_validators", [False, True], ids=["honours", "ignores"])
def test_wrk_browser_script_counts_what_it_sent_and_got(tmp_path, conditional_server, ignores_validators):
    wrk = shutil.which("wrk")
    assert wrk, "wrk is required: apt-get install wrk"
    port = conditional_server(ignores_validators)
    validators = browser.fetch_validators(port, "/f")
    assert validators.etag == '"t5-test"'
    cycle = browser.request_cycle("/f", f"127.0.0.1:{port}", validators)
    wrong = browser.check_cycle(port, cycle, rounds=1)
    assert wrong == (["request 3 (revalidation) got 200, expected 304"] if ignores_validators else [])
    browser.write_cycle(str(tmp_path / "cycle"), cycle)
    cmd = loadgen.wrk_command(wrk, f"http://127.0.0.1:{port}/f", 2, 1, 2, 1, loadgen.BROWSER_SCRIPT,
                              [str(tmp_path / "cycle")])  # fmt: skip
    result = loadgen.parse_output(subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout)
    sent, got = result.browser["sent"], result.browser["got"]
    assert result.requests == got[200] + got[304] + got["other"] > 30
    assert sent[200] - 2 * sent[304] in (0, 1, 2)  # every third, in turn: 200, 200, 304, 200, ...
    assert 0 <= sent[200] + sent[304] - result.requests <= 2  # at most one unanswered per connection
    mismatches = browser.status_mismatches(sent, got)
    if ignores_validators:
        assert got[304] == 0 and mismatches >= sent[304] - 2
    else:
        assert got[304] > 10 and mismatches == 0


# --- seed scale: the byte-counting client -------------------------------------------------


def _scripted_server(reply: bytes, clients: int):
    """A server that answers each connection's first request with ``reply``, then holds it open."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=clients)
    held, stop = [], threading.Event()

    def serve(conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        conn.sendall(reply)
        held.append(conn)

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()

    def close():
        stop.set()
        for conn in held:
            conn.close()
        listener.close()

    return listener.getsockname()[1], close


def test_bytes_client_counts_every_byte_of_complete_responses():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n"
    port, close = _scripted_server(head + b"y" * 300000, 8)
    try:
        result = bytes_client.run(port, "/files/f", 8, 1.0)
    finally:
        close()
    assert result["clients_established"] == 8 and result["socket_errors"] == 0
    assert result["completed"] == 8 and result["statuses"] == {"200": 8}
    assert result["bytes"] == 8 * (len(head) + 300000)
    assert result["bytes_per_client"]["min"] == result["bytes_per_client"]["max"] == len(head) + 300000
    assert result["clients_1mib"] == 0 and result["clients_any_byte"] == 8
    assert result["in_flight_at_end"] == 8  # each waits for its second response


def test_bytes_client_counts_bytes_of_responses_that_never_complete():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 52428800\r\n\r\n"
    port, close = _scripted_server(head + b"z" * (3 * 1024 * 1024 // 2), 5)
    try:
        result = bytes_client.run(port, "/files/f", 5, 1.0)
    finally:
        close()
    assert result["completed"] == 0 and result["clients_1mib"] == 5
    assert result["bytes"] == 5 * (len(head) + 3 * 1024 * 1024 // 2)
    assert result["gib_s"] > 0 and 0 <= result["client_cpu_share"] < 2


def test_bytes_client_counts_refused_connections_as_socket_errors():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = bytes_client.run(port, "/", 3, 0.3)
    assert result["clients_established"] == 0 and result["bytes"] == 0
    assert result["socket_errors"] >= 3 and "ECONNREFUSED" in result["errors"]


def test_bytes_client_loads_only_this_machine():
    with pytest.raises(ValueError, match="only loads this machine"):
        bytes_client.run(80, "/", 1, 0.1, host="192.0.2.1")


@pytest.mark.parametrize("head, parsed", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nETag: x", (200, 12)),
    (b"HTTP/1.1 304 Not Modified\r\ncontent-length:0", (304, 0)),
    (b"HTTP/1.0 404 Not Found", (404, None)),
])  # fmt: skip
def test_bytes_client_reads_status_and_length(head, parsed):
    assert bytes_client.parse_head(head) == parsed


def test_seed_scale_report_has_a_row_per_server_and_the_ratios_vs_nginx_tuned():
    def run(server, gib_s, cpu, ok_clients):
        return {"clients": 4000, "server": server, "rep": 1, "gib_s": gib_s, "cpu_s_per_gib": cpu,
                "clients_established": 4000, "clients_1mib": ok_clients, "clients_any_byte": ok_clients,
                "completed": 12, "socket_errors": 0, "rss_peak_mib": 40.0, "est_peak": 4000, "listen_drops": 0,
                "client_cpu_share": 0.6, "errors": {},
                "bytes_per_client": {"min": 0, "p10": MIB, "median": 2 * MIB, "p90": 3 * MIB,
                                     "max": 9 * MIB}}  # fmt: skip

    runs = [run("core", 2.0, 0.2, 4000), run("nginx-tuned", 1.0, 0.4, 4000), run("node-cached", 3.0, 0.3, 500)]
    doc = {"generated": "now", "command": "python -m bench seed-scale", "machine": MACHINE, "skipped": {},
           "plan": {"reps": 1, "duration_s": 60.0, "file": "50m.bin", "file_bytes": 50 * MIB, "workers": 1,
                    "pinned": True, "server_cpus": [1], "load_cpus": [0]},
           "summary": seed_scale.summarise(runs, [4000], ["core", "nginx-tuned", "node-cached"]),
           "runs": runs}  # fmt: skip
    assert doc["summary"]["c4000"]["servers"]["core"]["ratios"] == {"gib_s": 2.0, "cpu_s_per_gib": 0.5}
    text = seed_scale.markdown(doc)
    assert "## 4,000 clients" in text
    assert "| server | GiB/s | connected | ≥ 1 MiB | completed | socket errors |" in text
    core = next(line for line in text.splitlines() if line.startswith("| core |"))
    assert "| 2.00 | 4,000 / 4,000 | 4,000 / 4,000 | 12 | 0 | 1.0 / 2.0 / 3.0 (0.0–9.0) | 0.20 |" in core
    assert core.endswith("| 60% | 2.00 | 0.50 |  |")
    assert "| 500 / 4,000 |" in next(line for line in text.splitlines() if line.startswith("| node-cached |"))


def test_seed_scale_is_a_subcommand_and_refuses_bad_arguments(capsys):
    assert cli.SUBCOMMANDS["seed-scale"] == "seed_scale"
    assert cli.main(["seed-scale", "--servers", "apache"]) == 2
    assert "unknown server apache" in capsys.readouterr().err
    assert cli.main(["seed-scale", "--duration", "0"]) == 2


def test_browser_check_opens_a_connection_per_request_for_servers_that_close():
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    port, close = _scripted_server(reply, 8)  # answers one request per connection
    raw = browser.request_bytes("/f", browser.navigation_headers(f"127.0.0.1:{port}"))
    try:
        wrong = browser.check_cycle(port, [(200, raw), (304, raw)], rounds=2, keep_alive=False, timeout=5)
    finally:
        close()
    assert wrong == ["request 2 (revalidation) got 200, expected 304"] * 2
