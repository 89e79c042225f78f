"""The harness's own logic, without load: parsing, overrides, ratios, CPU per request, nginx config,
the baseline checkout, CLI paths."""
import importlib.util
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from bench import baseline, cli, loadgen, report, runner, scenarios, servers, tcpstat

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
    runs = [_run("core", 1, 100), _run("nginx", 1, 200),   # 0.5
            _run("core", 2, 300), _run("nginx", 2, 100),   # 3.0
            _run("core", 3, 90), _run("nginx", 3, 100)]    # 0.9  fmt: skip
    summary = report.summarise(runs, table["T1"].cases(), ["core", "nginx"])
    core = summary["T1"]["servers"]["core"]
    assert core["median"]["rps"] == 100
    assert core["ratios"]["nginx"]["rps"] == pytest.approx(0.9)  # not 100/100 = 1.0
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
    runs = [_run("core", 1, 100, cpu_us=10), _run("nginx", 1, 100, cpu_us=20),  # 0.5
            _run("core", 2, 100, cpu_us=12), _run("nginx", 2, 100, cpu_us=10),  # 1.2
            _run("core", 3, 100, cpu_us=9), _run("nginx", 3, 100, cpu_us=10)]   # 0.9  fmt: skip
    core = report.summarise(runs, table["T1"].cases(), ["core", "nginx"])["T1"]["servers"]["core"]
    assert core["median"]["cpu_us_per_request"] == 10
    assert core["ratios"]["nginx"]["cpu_us_per_request"] == pytest.approx(0.9)
    assert core["ratios_per_rep"]["nginx"]["cpu_us_per_request"] == pytest.approx([0.5, 1.2, 0.9])


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
        assert spec.command(setup)[:3] == [sys.executable, "-m", "core"]
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
    assert cli.with_baseline_servers(["core", "nginx"], True) == ["core", "core-baseline", "nginx"]
    assert cli.with_baseline_servers(["nginx"], True) == ["core-baseline", "nginx"]
    assert cli.with_baseline_servers(["core", "core-py-baseline"], True) == ["core", "core-py-baseline"]
    assert cli.with_baseline_servers(["core", "nginx"], False) == ["core", "nginx"]


def test_baseline_servers_need_a_baseline(capsys):
    assert cli.main(["--servers", "core,core-baseline"]) == 2
    assert "need --baseline PATH or --baseline-ref REF" in capsys.readouterr().err


def test_failed_runs_are_left_out_of_medians_and_noted():
    table = scenarios.default_scenarios()
    scenarios.finish(table)
    runs = [_run("nginx", 1, 200), {"case": "T1", "server": "nginx", "rep": 2, "error": "nginx exited with 1"}]
    summary = report.summarise(runs, table["T1"].cases(), ["nginx"])
    entry = summary["T1"]["servers"]["nginx"]
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
