"""core under attack and under load: timeouts, connection limits, garbage, leaks, a full disk.

Run against both event loops.  Timeouts are shortened on the command line so
each test takes about a second; every client here is bounded in count and time.
"""
import os
import random
import resource
import socket
import subprocess
import time

import pytest

from rawhttp import Client, build_request, fd_count, fetch, get, settled_fd_count, wait_until
from test_core import Core, read_head, worker_pids

pytestmark = pytest.mark.servers("core", "core-py")






def served_within(server, seconds=1.0):
    started = time.monotonic()
    assert get(server, "/").status == 200
    return time.monotonic() - started < seconds


def test_slowloris_gets_408_and_does_not_delay_others(server_name, tmp_path):
    with Core(server_name, tmp_path, "--header-timeout", "1") as core:
        with Client(core.server) as slow:
            slow.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            for _ in range(8):                       # a byte every 0.2 s: never finishes
                assert served_within(core.server)
                try:
                    slow.sock.sendall(b"X")
                except OSError:
                    break
                time.sleep(0.2)
            response = slow.read_response()
            assert response.status == 408 and time.monotonic() - started < 3
            assert slow.is_closed_by_server()


def test_body_that_stalls_gets_408_and_leaves_no_file(server_name, tmp_path):
    with Core(server_name, tmp_path, "--body-timeout", "1") as core:
        with Client(core.server) as client:
            client.send(build_request("POST", "/files/stalled.bin", [("Content-Length", "100")], b"x" * 10))
            assert client.read_response().status == 408
    assert os.listdir(tmp_path) == []


def test_idle_keep_alive_closes_but_a_slow_download_is_not_cut(server_name, tmp_path):
    payload = os.urandom(4 << 20)
    (tmp_path / "slow.bin").write_bytes(payload)
    with Core(server_name, tmp_path, "--keepalive-timeout", "0.5") as core:
        with Client(core.server) as idle:
            idle.send(build_request("GET", "/"))
            idle.read_response()
            assert wait_until(idle.is_closed_by_server, timeout=3)
        with Client(core.server) as slow:            # takes ~2 s to read: 4x the idle timeout
            slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            slow.send(build_request("GET", "/files/slow.bin"))
            read_head(slow)
            received = len(slow.buffer)
            while received < len(payload):
                chunk = slow.sock.recv(256 * 1024)
                assert chunk, f"cut off after {received} of {len(payload)} bytes"
                received += len(chunk)
                time.sleep(0.1)


def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(server_name, tmp_path):
    (tmp_path / "big.bin").write_bytes(os.urandom(16 << 20))
    with Core(server_name, tmp_path, "--send-timeout", "1", "--workers", "1") as core:
        worker = worker_pids(core.pid)[0]
        with Client(core.server) as warm:       # the compiled loop keeps the file open once seen
            warm.send(build_request("HEAD", "/files/big.bin"))
            read_head(warm)
        baseline = settled_fd_count(worker)
        stuck = socket.create_connection((core.server.host, core.server.port))
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.sendall(build_request("GET", "/files/big.bin"))
        assert wait_until(lambda: fd_count(worker) > baseline, timeout=5)
        assert served_within(core.server)
        assert wait_until(lambda: fd_count(worker) <= baseline, timeout=8)   # dropped
        stuck.close()


def test_keep_alive_connection_closes_after_max_requests(server_name, tmp_path):
    with Core(server_name, tmp_path, "--max-keepalive-requests", "3") as core:
        with Client(core.server) as client:
            for number in range(1, 4):
                client.send(build_request("GET", "/"))
                response = client.read_response()
                assert response.headers.get("connection") == ("close" if number == 3 else None)
            assert client.is_closed_by_server()


def test_at_max_connections_the_next_client_waits_for_a_free_slot(server_name, tmp_path):
    with Core(server_name, tmp_path, "--max-connections", "3", "--workers", "1") as core:
        idle = [socket.create_connection((core.server.host, core.server.port)) for _ in range(3)]
        time.sleep(0.3)
        with Client(core.server, timeout=0.5) as waiting:
            waiting.send(build_request("GET", "/"))
            with pytest.raises(socket.timeout):
                waiting.read_response()               # held in the kernel's backlog
            idle.pop().close()
            waiting.sock.settimeout(2)
            assert waiting.read_response().status == 200
        for sock in idle:
            sock.close()


def test_1100_idle_connections_do_not_block_a_new_client(server_name, tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    with Core(server_name, tmp_path, "--workers", "1") as core:
        idle = []
        try:
            for _ in range(1100):                      # past select()'s 1,024 descriptors
                idle.append(socket.create_connection((core.server.host, core.server.port)))
            worker = worker_pids(core.pid)[0]
            assert wait_until(lambda: fd_count(worker) > 1100, timeout=5)
            assert served_within(core.server)
        finally:
            for sock in idle:
                sock.close()


def test_2000_connections_opened_and_reset_leak_no_descriptors(server_name, tmp_path):
    with Core(server_name, tmp_path, "--workers", "1") as core:
        worker = worker_pids(core.pid)[0]
        assert served_within(core.server)
        baseline = settled_fd_count(worker)
        rng = random.Random(3)
        for number in range(2000):
            sock = socket.create_connection((core.server.host, core.server.port))
            kind = number % 4
            if kind == 1:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")            # cut mid-head
            elif kind == 2:
                sock.sendall(build_request("POST", f"/files/r{number}", [("Content-Length", "999")], b"abc"))
            elif kind == 3:
                sock.sendall(build_request("GET", "/"))
            if rng.random() < 0.5:                                          # reset, not FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
        assert wait_until(lambda: fd_count(worker) <= baseline, timeout=5), (fd_count(worker), baseline)
        assert worker_pids(core.pid) == [worker]
        assert served_within(core.server)
        assert not [name for name in os.listdir(tmp_path) if name.startswith(".upload-")]


def corrupted(rng, request):
    data = bytearray(request)
    for _ in range(rng.randint(1, 5)):
        i = rng.randrange(len(data))
        choice = rng.random()
        if choice < 0.4:
            data[i] = rng.randrange(256)
        elif choice < 0.7:
            del data[i:]
            break
        else:
            data[i:i] = rng.randbytes(rng.randint(1, 20))
    return bytes(data)


def test_garbage_never_crashes_a_worker(server_name, tmp_path):
    (tmp_path / "f.bin").write_bytes(b"F" * 1000)
    valid = [build_request("GET", "/files/f.bin"), build_request("GET", "/echo/x", [("Accept-Encoding", "gzip")]),
             build_request("POST", "/files/g", [("Content-Length", "5")], b"hello"),
             build_request("POST", "/files/c", [("Transfer-Encoding", "chunked")], b"3\r\nabc\r\n0\r\n\r\n")]
    rng = random.Random(1126)
    with Core(server_name, tmp_path, "--workers", "1", "--header-timeout", "0.5", "--body-timeout", "0.5") as core:
        worker = worker_pids(core.pid)[0]
        for _ in range(300):
            data = rng.randbytes(rng.randrange(1, 400)) if rng.random() < 0.4 else corrupted(rng, rng.choice(valid))
            with socket.create_connection((core.server.host, core.server.port), timeout=2) as sock:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                try:
                    while sock.recv(65536):
                        pass
                except (ConnectionResetError, socket.timeout):
                    pass
        assert worker_pids(core.pid) == [worker], core.process.stderr()
        assert get(core.server, "/files/f.bin").body == b"F" * 1000
        assert "Traceback" not in core.process.stderr()


def test_an_error_response_arrives_even_while_the_client_keeps_sending(server):
    with Client(server) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000)   # over 16 KiB: 431
        response = client.read_response()
        assert response.status == 431
        client.sock.sendall(b"b" * 100000)            # still talking; the server drains it
        assert wait_until(client.is_closed_by_server, timeout=5)


@pytest.fixture
def tiny_disk(tmp_path):
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"this test mounts a 64 KiB tmpfs and needs root: {result.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_answers_507_and_leaves_nothing(server_name, tiny_disk):
    with Core(server_name, tiny_disk) as core:
        body = os.urandom(200_000)                     # three times the disk
        response = fetch(core.server, build_request("POST", "/files/huge.bin", [("Content-Length", str(len(body)))], body))
        assert response.status == 507
        assert os.listdir(tiny_disk) == []
        small = fetch(core.server, build_request("POST", "/files/small.txt", [("Content-Length", "5")], b"fits!"))
        assert small.status == 201 and (tiny_disk / "small.txt").read_bytes() == b"fits!"


def test_a_worker_knows_its_supervisor_died_even_before_its_loop_started(tmp_path):
    """The supervisor's PID is taken at fork, not when the loop starts.

    A worker read os.getppid() when its loop started; a supervisor killed in
    between (a busy machine, a kill right after start-up) left it reading 1
    and serving the port on its own forever (seen under load in
    test_workers_stop_when_the_supervisor_is_killed).
    """
    from core.supervisor import Supervisor, orphaned, supervisor_pid

    report = tmp_path / "orphaned"

    def serve(listener):
        deadline = time.monotonic() + 5
        while os.getppid() == supervisor_pid() and time.monotonic() < deadline:
            time.sleep(0.01)            # until the supervisor below has gone
        report.write_text(str(orphaned(supervisor_pid())))

    pid = os.fork()
    if pid == 0:                        # the supervisor: start one worker, then die at once
        try:
            from core.listeners import tcp
            Supervisor(tcp("127.0.0.1", 0), 1, serve, 1.0).spawn()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert wait_until(report.exists, timeout=10)
    assert report.read_text() == "True"
