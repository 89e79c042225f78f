"""`python -m core`'s command line: bad arguments get one clear line, never a traceback."""
import socket
import subprocess
import sys

import pytest


def run_core(*args):
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, timeout=20)


def test_missing_directory_is_one_clear_line(tmp_path):
    result = run_core("--port", "0", "--directory", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "is not a directory" in result.stderr and "Traceback" not in result.stderr


def test_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_core("--port", str(taken.getsockname()[1]), "--directory", str(tmp_path))
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_numbers_are_refused(tmp_path):
    for args in (["--workers", "0"], ["--port", "70000"], ["--port", "x"]):
        result = run_core(*args, "--directory", str(tmp_path))
        assert result.returncode == 2 and "Traceback" not in result.stderr


def test_every_limit_is_an_option_and_must_be_positive(tmp_path, capsys):
    from core.cli import parse_args
    from core.limits import DEFAULT_LIMITS
    for name, default in DEFAULT_LIMITS._asdict().items():
        option = "--" + name.replace("_", "-")
        doubled = type(default)(default * 2)
        assert getattr(parse_args([option, str(doubled), "--directory", str(tmp_path)]).limits, name) == doubled
        for bad in ("0", "-1"):
            with pytest.raises(SystemExit) as exit:
                parse_args([option, bad, "--directory", str(tmp_path)])
            assert exit.value.code == 2
            assert capsys.readouterr().err.splitlines()[-1] == f"python -m core: error: {option} must be positive"


def test_no_supervisor_serves_one_worker_and_refuses_more(tmp_path):
    from core.cli import parse_args
    assert parse_args(["--no-supervisor", "--directory", str(tmp_path)]).workers == 1
    assert parse_args(["--no-supervisor", "--workers", "1", "--directory", str(tmp_path)]).workers == 1
    result = run_core("--no-supervisor", "--workers", "2", "--directory", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "python -m core: error: --no-supervisor serves in one process: --workers 2 needs the supervisor"]


def test_an_access_log_that_cannot_be_opened_is_one_clear_line(tmp_path):
    """Not "cannot listen on 127.0.0.1:0: No such file or directory", as it said."""
    for mode in (["--workers", "1"], ["--no-supervisor"]):
        result = run_core("--port", "0", *mode, "--directory", str(tmp_path),
                          "--access-log", str(tmp_path / "missing" / "access.log"))
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines() == [
            f"python -m core: cannot open --access-log {tmp_path / 'missing' / 'access.log'}: No such file or directory"]


def test_unbounded_connections_default_fits_the_kernels_tcp_memory(tmp_path):
    """64 where the kernel has room for 64 whole send buffers in a quarter of its TCP memory, fewer where not."""
    from core.cli import parse_args
    from core.limits import DEFAULT_LIMITS, kernel_unbounded_share
    page = __import__("os").sysconf("SC_PAGE_SIZE")

    def machine(tcp_mem, tcp_wmem):
        sysctl = tmp_path / f"sysctl-{len(list(tmp_path.iterdir()))}"
        sysctl.mkdir()
        (sysctl / "tcp_mem").write_text(tcp_mem + "\n")
        (sysctl / "tcp_wmem").write_text(tcp_wmem + "\n")
        return kernel_unbounded_share(str(sysctl))

    gib = 1 << 30
    # The kernel's defaults: pressure at 1/16 of the memory; tcp_wmem's maximum 4 MiB.
    assert machine(f"{gib // 16 // page * 3 // 4} {gib // 16 // page} 1", "4096 16384 4194304") == 4
    assert machine(f"1 {2 * gib // 16 // page} 1", "4096 16384 4194304") == 8
    assert machine(f"1 {24 * gib // 16 // page} 1", "4096 16384 4194304") == 64       # 96 would fit
    assert machine(f"1 {2 * gib // 16 // page} 1", "4096 16384 1048576") == 32        # smaller buffers, more of them
    assert machine("1 1 1", "4096 16384 4194304") == 1                                 # never none
    assert kernel_unbounded_share(str(tmp_path / "no-such-dir")) == 64                 # no /proc: the ceiling
    assert machine("garbage", "4096 16384 4194304") == 64
    # The default, and the option's, is this machine's.
    assert DEFAULT_LIMITS.unbounded_connections == kernel_unbounded_share()
    assert parse_args(["--directory", str(tmp_path)]).limits.unbounded_connections == kernel_unbounded_share()
