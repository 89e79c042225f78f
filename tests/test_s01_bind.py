"""Stage 1: the server listens, keeps running, and its command line behaves."""
import signal
import socket
import subprocess

import pytest

from servers import ServerProcess, command, servers_from

pytestmark = pytest.mark.servers(*servers_from("s01_bind"))


def test_accepts_connection_after_connection(server):
    for _ in range(3):
        with socket.create_connection((server.host, server.port), timeout=5):
            pass


@pytest.mark.cli
def test_port_in_use_fails_with_one_error_line(server):
    result = subprocess.run(command(server.name, server.directory, port=server.port),
                            capture_output=True, text=True, timeout=15)
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "in use" in result.stderr


@pytest.mark.cli
def test_missing_directory_exits_2_with_one_error_line(server_name, tmp_path):
    missing = tmp_path / "no-such-directory"
    result = subprocess.run(command(server_name, missing), capture_output=True, text=True, timeout=15)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert str(missing) in result.stderr


@pytest.mark.cli
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_server_with_exit_code_0(server_name, tmp_path, signum):
    process = ServerProcess(server_name, tmp_path)
    try:
        process.wait_until_listening()
        assert process.stop(signum) == 0
        assert process.stderr() == ""
    finally:
        process.stop()
        process.close()
