"""Running core the way servers are run: inherited listeners, unix sockets, reloads, log rotation, proxies.

Against both event loops (`core`, `core-py`).  The wrk tests need wrk
(Debian's package), the proxy test nginx; each is skipped without it.
"""
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.accesslog import AccessLog
from core.cli import parse_allow_ips
from rawhttp import Client, build_request, get, wait_until
from servers import LISTENING_LINE, RunningServer, ServerProcess, command, free_port

pytestmark = pytest.mark.servers("core", "core-py")
DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
LOG_LINE = re.compile(r'\S+ - - \[[^\]]+\] "GET /echo/\d+ HTTP/1\.1" 200 \d+')


def worker_pids(parent_pid):
    with open(f"/proc/{parent_pid}/task/{parent_pid}/children") as f:
        return [int(pid) for pid in f.read().split()]


class UnixClient(Client):
    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buffer = b""


def spawn(server_name, directory, *extra_args, **popen):
    """core started with extra options and Popen arguments; returns (process, first stdout line)."""
    args = command(server_name, directory, extra_args=extra_args)
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, **popen)
    return process, process.stdout.readline().decode()


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None
    finally:
        process.stdout.close()
        process.stderr.close()


# -- where the listener comes from ---------------------------------------------------

def listening_socket():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def test_socket_activation_serves_descriptor_3(server_name, tmp_path):
    """systemd's protocol: the socket at descriptor 3, LISTEN_FDS=1, LISTEN_PID = the server's PID."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    fd = sock.fileno()
    # `exec` keeps the shell's PID, so $$ is the PID the server will have (bash: dash takes no fd above 9).
    args = command(server_name, tmp_path, port=free_port())
    wrapper = ["bash", "-c", f'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@" 3<&{fd} {fd}<&-', "sh", *args]
    process = subprocess.Popen(wrapper, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, pass_fds=[fd])
    sock.close()                # from now on only the server holds it
    try:
        line = process.stdout.readline().decode()
        assert line.strip() == f"Listening on http://127.0.0.1:{port}", line + process.stderr.read1().decode()
        server = RunningServer("127.0.0.1", port, tmp_path, server_name)
        assert get(server, "/").status == 200
    finally:
        assert stop(process) == 0


def test_socket_activation_variables_are_taken_once():
    """sd_listen_fds(3) with unset_environment: a child must not take the descriptors again."""
    from core.listeners import systemd_fds
    environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b", "PATH": "/bin"}
    assert systemd_fds(environ) == [3, 4] and environ == {"PATH": "/bin"}
    environ = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"}
    assert systemd_fds(environ) == [] and environ == {}


def test_socket_activation_for_another_pid_is_ignored(server_name, tmp_path):
    sock = listening_socket()
    fd = sock.fileno()
    args = command(server_name, tmp_path, port=0)
    env = dict(os.environ, LISTEN_PID="1", LISTEN_FDS="1")
    wrapper = ["bash", "-c", f'exec "$@" 3<&{fd} {fd}<&-', "sh", *args]
    process = subprocess.Popen(wrapper, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, pass_fds=[fd], env=env)
    try:
        line = process.stdout.readline().decode()
        match = LISTENING_LINE.fullmatch(line.strip())
        assert match and int(match.group(1)) != sock.getsockname()[1], line
    finally:
        sock.close()
        assert stop(process) == 0


def test_fd_serves_an_inherited_listening_socket(server_name, tmp_path):
    sock = listening_socket()
    port = sock.getsockname()[1]
    process, line = spawn(server_name, tmp_path, "--fd", str(sock.fileno()), pass_fds=[sock.fileno()])
    sock.close()
    try:
        assert line.strip() == f"Listening on http://127.0.0.1:{port}", line
        assert get(RunningServer("127.0.0.1", port, tmp_path, server_name), "/echo/fd").body == b"fd"
    finally:
        assert stop(process) == 0


def test_fd_that_is_not_a_listening_socket_is_one_clear_line(server_name, tmp_path):
    with open(tmp_path / "f", "w") as f:
        process, line = spawn(server_name, tmp_path, "--fd", str(f.fileno()), pass_fds=[f.fileno()])
        assert process.wait(10) == 1
        error = process.stderr.read().decode()
        stop(process)
    assert "is not a socket" in error and "Traceback" not in error, error


def descriptor_of(pid, fd):
    """A copy of process pid's descriptor fd in this process (pidfd_getfd, Linux 5.6)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copy = libc.syscall(438, pidfd, fd, 0)      # SYS_pidfd_getfd, the same on every architecture
        if copy < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
        return copy
    finally:
        os.close(pidfd)


def unsent_bounds(worker):
    """{client's port: TCP_NOTSENT_LOWAT of the worker's side} for the TCP connections worker holds."""
    bounds = {}
    for name in os.listdir(f"/proc/{worker}/fd"):
        if not os.readlink(f"/proc/{worker}/fd/{name}").startswith("socket:"):
            continue
        with socket.socket(fileno=descriptor_of(worker, int(name))) as sock:
            if sock.type == socket.SOCK_STREAM and sock.family == socket.AF_INET:
                try:
                    port = sock.getpeername()[1]
                except OSError:
                    continue            # a listener
                bounds[port] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT)
    return bounds


@pytest.mark.parametrize("workers, connections, unbounded", [(1, 3, 2), (2, 5, 1)])
def test_connections_past_unbounded_connections_bound_their_unsent_bytes(server_name, tmp_path, workers,
                                                                           connections, unbounded):
    """A worker's first connections (its part of --unbounded-connections) may fill a whole send
    buffer; the ones it accepts after them hold at most 1 MiB unsent."""
    process = ServerProcess(server_name, tmp_path, extra_args=["--workers", str(workers),
                                                               "--unbounded-connections", "2"])
    clients = []
    try:
        server = RunningServer("127.0.0.1", process.wait_until_listening(), tmp_path, server_name)
        for index in range(connections):   # one at a time: each worker accepts them in this order
            clients.append(Client(server))
            clients[-1].send(build_request("GET", f"/echo/{index}"))
            assert clients[-1].read_response().status == 200
        ports = [client.sock.getsockname()[1] for client in clients]
        held = 0
        for worker in worker_pids(process.process.pid):
            bounds = unsent_bounds(worker)
            mine = [bounds[port] for port in ports if port in bounds]
            held += len(mine)
            # 0: the system's default (net.ipv4.tcp_notsent_lowat, unbounded unless set).
            assert mine == [0] * min(len(mine), unbounded) + [1 << 20] * (len(mine) - unbounded), bounds
        assert held == connections
    finally:
        for client in clients:
            client.sock.close()
        assert process.stop(signal.SIGTERM) == 0
        process.close()


def test_uds_serves_with_its_mode_and_logs_the_peer_as_unix(server_name, tmp_path):
    path, log = tmp_path / "core.sock", tmp_path / "access.log"
    process, line = spawn(server_name, tmp_path, "--uds", str(path), "--uds-mode", "660",
                          "--access-log", str(log), "--workers", "2")
    try:
        assert line.strip() == f"Listening on unix:{path}", line
        assert oct(path.stat().st_mode & 0o777) == oct(0o660)
        with UnixClient(path) as client:
            for _ in range(3):
                client.send(build_request("GET", "/echo/uds"))
                response = client.read_response()
                assert response.status == 200 and response.body == b"uds"
        assert wait_until(lambda: log.exists() and len(log.read_text().splitlines()) == 3)
    finally:
        assert stop(process) == 0
    assert all(entry.startswith("unix: - - [") for entry in log.read_text().splitlines()), log.read_text()


def test_uds_replaces_a_stale_socket_but_never_a_file_nor_a_live_socket(server_name, tmp_path):
    path = tmp_path / "core.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()                       # the file stays, nobody listens: what a killed server leaves
    process, line = spawn(server_name, tmp_path, "--uds", str(path))
    try:
        assert line.strip() == f"Listening on unix:{path}", line
        # A second server on the same path must not steal it from the live one.
        second, _ = spawn(server_name, tmp_path, "--uds", str(path))
        assert second.wait(10) == 1 and "already" in second.stderr.read().decode()
        stop(second)
        with UnixClient(path) as client:
            client.send(build_request("GET", "/echo/still"))
            assert client.read_response().body == b"still"
    finally:
        assert stop(process) == 0
    regular = tmp_path / "not-a-socket"
    regular.write_text("precious")
    process, _ = spawn(server_name, tmp_path, "--uds", str(regular))
    assert process.wait(10) == 1
    error = process.stderr.read().decode()
    stop(process)
    assert "is not a socket" in error and "Traceback" not in error and regular.read_text() == "precious"


# -- sd_notify ---------------------------------------------------------------------------

def test_notify_socket_gets_ready_reloading_and_stopping(server_name, tmp_path):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = f"@httpcourse-test-{os.getpid()}-{time.monotonic_ns()}"     # the abstract namespace
    notify.bind("\0" + address[1:])
    notify.settimeout(10)
    process, line = spawn(server_name, tmp_path, "--workers", "2", env=dict(os.environ, NOTIFY_SOCKET=address))
    try:
        assert "READY=1" in notify.recv(4096).decode()
        assert len(worker_pids(process.pid)) == 2           # every worker started before READY
        process.send_signal(signal.SIGHUP)
        reloading = notify.recv(4096).decode()
        assert "RELOADING=1" in reloading and "MONOTONIC_USEC=" in reloading
        assert notify.recv(4096).decode() == "READY=1"
        process.send_signal(signal.SIGTERM)
        assert notify.recv(4096).decode() == "STOPPING=1"
    finally:
        assert stop(process) == 0
        notify.close()


# -- SIGHUP: reload without dropping anyone ---------------------------------------------------

def wrk(port, seconds, connections, target="/echo/x"):
    return subprocess.Popen(["wrk", "--latency", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
                             f"http://127.0.0.1:{port}{target}"], stdout=subprocess.PIPE, text=True)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_reloads_under_load_drop_nobody(server_name, tmp_path):
    """wrk with 100 connections while the server is reloaded 5 times: no error, same supervisor."""
    process = ServerProcess(server_name, tmp_path, extra_args=["--workers", "2"])
    try:
        port = process.wait_until_listening()
        supervisor = process.process.pid
        first_workers = set(worker_pids(supervisor))
        load = wrk(port, 6, 100)
        time.sleep(0.5)
        for _ in range(5):
            os.kill(supervisor, signal.SIGHUP)
            time.sleep(1.0)
        out, _ = load.communicate(timeout=30)
        assert "Socket errors" not in out and "Non-2xx" not in out, out
        assert int(re.search(r"(\d+) requests in", out).group(1)) > 100, out
        assert process.exit_code() is None                  # the supervisor's PID is unchanged
        assert wait_until(lambda: len(worker_pids(supervisor)) == 2, timeout=10)
        assert not first_workers & set(worker_pids(supervisor))
        assert get(RunningServer("127.0.0.1", port, tmp_path, server_name), "/").status == 200
    finally:
        assert process.stop(signal.SIGTERM) == 0
        process.close()


def test_a_reloaded_worker_closes_keep_alive_connections_after_their_next_response(server_name, tmp_path):
    process = ServerProcess(server_name, tmp_path, extra_args=["--workers", "1"])
    try:
        server = RunningServer("127.0.0.1", process.wait_until_listening(), tmp_path, server_name)
        with Client(server) as client:
            client.send(build_request("GET", "/echo/a"))
            assert client.read_response().headers.get("connection") != "close"
            old = worker_pids(process.process.pid)
            os.kill(process.process.pid, signal.SIGHUP)
            assert wait_until(lambda: len(set(worker_pids(process.process.pid)) - set(old)) == 1)
            # The old worker is told to stop once the new one serves: until then it answers as usual.
            deadline = time.monotonic() + 10
            while True:
                client.send(build_request("GET", "/echo/b"))     # on the old worker, still open
                response = client.read_response()
                assert response.status == 200 and response.body == b"b"
                if response.headers.get("connection") == "close" or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert response.headers.get("connection") == "close"
            assert client.is_closed_by_server()
    finally:
        assert process.stop(signal.SIGTERM) == 0
        process.close()


# -- SIGUSR1: reopen the access log ------------------------------------------------------------

def test_access_log_rotation_under_load_loses_and_splits_no_line(server_name, tmp_path):
    log = tmp_path / "access.log"
    process = ServerProcess(server_name, tmp_path, extra_args=["--workers", "2", "--access-log", str(log)])
    answered = []
    stop_at = time.monotonic() + 20

    def client(index):
        count = 0
        server = RunningServer("127.0.0.1", port, tmp_path, server_name)
        while not done.is_set() and time.monotonic() < stop_at:
            with Client(server) as connection:
                for _ in range(50):
                    connection.send(build_request("GET", f"/echo/{index}"))
                    assert connection.read_response().status == 200
                    count += 1
        answered.append(count)

    try:
        port = process.wait_until_listening()
        done = threading.Event()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for rotation in range(1, 4):
            time.sleep(0.5)
            log.rename(tmp_path / f"access.log.{rotation}")
            os.kill(process.process.pid, signal.SIGUSR1)
            assert wait_until(log.exists), "no new log file after SIGUSR1"
        time.sleep(0.5)
        done.set()
        for thread in threads:
            thread.join(30)
        assert len(answered) == 4
    finally:
        assert process.stop(signal.SIGTERM) == 0
        process.close()
    files = [log] + [tmp_path / f"access.log.{n}" for n in range(1, 4)]
    lines = [line for path in files for line in path.read_text().split("\n")[:-1]]
    assert all(path.read_text().endswith("\n") for path in files)
    assert len(lines) == sum(answered)
    assert all(LOG_LINE.fullmatch(line) for line in lines), [line for line in lines if not LOG_LINE.fullmatch(line)][:3]
    assert all(len(path.read_text().splitlines()) > 0 for path in files)     # each file got its share


# -- --no-supervisor: one process, for a manager that restarts it ----------------------------

def test_no_supervisor_is_one_process_that_notifies_ignores_sighup_and_drains(server_name, tmp_path):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = f"@httpcourse-test-{os.getpid()}-{time.monotonic_ns()}"
    notify.bind("\0" + address[1:])
    notify.settimeout(10)
    process, line = spawn(server_name, tmp_path, "--no-supervisor", env=dict(os.environ, NOTIFY_SOCKET=address))
    try:
        port = int(LISTENING_LINE.fullmatch(line.rstrip("\n")).group(1))
        assert notify.recv(4096).decode() == f"READY=1\nMAINPID={process.pid}"
        assert worker_pids(process.pid) == []               # no worker: this process serves
        server = RunningServer("127.0.0.1", port, tmp_path, server_name)
        assert get(server, "/echo/one").body == b"one"
        process.send_signal(signal.SIGHUP)                  # would end a process without a handler
        assert get(server, "/echo/two").body == b"two"
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert notify.recv(4096).decode() == "STOPPING=1"
        assert process.wait(10) == 0
        stderr = process.stderr.read().decode()
        assert "SIGHUP: nothing to reload without a supervisor" in stderr and "Traceback" not in stderr
    finally:
        stop(process)
        notify.close()


def test_no_supervisor_outlives_the_process_that_started_it(server_name, tmp_path):
    """Nobody's worker: a launcher that exits (a shell, nohup) must not stop it.

    A worker stops when its supervisor dies; with no supervisor, whoever started
    the process is not one (the loop took its parent for one and stopped).
    """
    out = tmp_path / "core.out"
    # Starts core, waits until it serves (its loop running, its parent still there), then exits.
    launcher = ("import subprocess, sys, time\n"
                "p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=open(sys.argv[0] + '.out', 'w'),"
                " stderr=subprocess.STDOUT)\n"
                "deadline = time.monotonic() + 10\n"
                "while 'Listening on' not in open(sys.argv[0] + '.out').read() and time.monotonic() < deadline:\n"
                "    time.sleep(0.01)\n"
                "time.sleep(0.2)\n"
                "print(p.pid)\n")
    script = tmp_path / "core"
    script.write_text(launcher)
    args = command(server_name, tmp_path, extra_args=["--no-supervisor"])
    pid = int(subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                             timeout=20).stdout)
    try:
        assert wait_until(lambda: "Listening on" in out.read_text(), timeout=10), out.read_text()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", out.read_text()).group(1))
        time.sleep(1.0)                                     # four sweeps of the loop since its parent left
        assert get(RunningServer("127.0.0.1", port, tmp_path, server_name), "/echo/still").body == b"still"
    finally:
        os.kill(pid, signal.SIGTERM)
        assert wait_until(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), timeout=10)


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_no_supervisor_reopens_its_access_log_on_sigusr1(server_name, tmp_path):
    log = tmp_path / "access.log"
    process = ServerProcess(server_name, tmp_path, extra_args=["--no-supervisor", "--access-log", str(log)])
    try:
        server = RunningServer("127.0.0.1", process.wait_until_listening(), tmp_path, server_name)
        assert get(server, "/echo/before").status == 200
        log.rename(tmp_path / "access.log.1")
        os.kill(process.process.pid, signal.SIGUSR1)
        assert wait_until(log.exists), "no new log file after SIGUSR1"
        assert get(server, "/echo/after").status == 200
    finally:
        assert process.stop(signal.SIGTERM) == 0
        process.close()
    assert "/echo/before" in (tmp_path / "access.log.1").read_text()
    assert "/echo/after" in log.read_text() and "/echo/before" not in log.read_text()


# -- behind a proxy ------------------------------------------------------------------------------

class Request:
    method, target, version = b"GET", b"/", b"1.1"

    def __init__(self, forwarded_for):
        self.headers = [(b"X-Forwarded-For", value) for value in forwarded_for]


@pytest.mark.parametrize("allow, peer, forwarded_for, logged", [
    ("127.0.0.1", "127.0.0.1", [b"203.0.113.7"], "203.0.113.7"),
    ("127.0.0.1", "192.0.2.1", [b"203.0.113.7"], "192.0.2.1"),            # untrusted peer: header ignored
    ("127.0.0.1", "127.0.0.1", [b"6.6.6.6, 203.0.113.7"], "203.0.113.7"),  # the left part is the client's own
    ("127.0.0.1,10.0.0.0/8", "127.0.0.1", [b"6.6.6.6, 203.0.113.7, 10.1.2.3"], "203.0.113.7"),
    ("127.0.0.1,10.0.0.0/8", "127.0.0.1", [b"203.0.113.7", b"10.1.2.3"], "203.0.113.7"),  # two header lines
    ("*", "192.0.2.1", [b"203.0.113.7, 10.1.2.3"], "203.0.113.7"),       # every hop trusted: the first
    ("127.0.0.1", "unix:", [b"2001:db8::1"], "2001:db8::1"),                # a unix-socket peer is trusted
    ("127.0.0.1", "127.0.0.1", [b'x" 200 1 "y, 203.0.113.7'], "203.0.113.7"),
    ("127.0.0.1", "127.0.0.1", [b'203.0.113.7, x" 200 1 "y'], "127.0.0.1"),  # garbage is never logged
    ("127.0.0.1", "127.0.0.1", [b'fe80::1%" 200 0 "-'], "127.0.0.1"),      # nor an IPv6 zone, which is any text
    ("*", "192.0.2.1", [b"203.0.113.7, fe80::1%eth0"], "192.0.2.1"),
    ("127.0.0.1", "127.0.0.1", [], "127.0.0.1"),
])
def test_forwarded_for_is_believed_only_from_trusted_proxies(allow, peer, forwarded_for, logged):
    log = AccessLog("-", parse_allow_ips(allow))
    assert log.client(peer, Request(forwarded_for)) == logged


NGINX = "/usr/sbin/nginx"


@pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="nginx is not installed")
def test_a_request_through_nginx_with_the_deploy_server_block(server_name, tmp_path):
    """deploy/nginx.conf, paths substituted, proxies to core's --uds; core logs the real client."""
    served, prefix = tmp_path / "served", tmp_path / "nginx"
    served.mkdir()
    prefix.mkdir()
    (served / "hello.txt").write_text("hello through nginx")
    sock, log = tmp_path / "core.sock", tmp_path / "access.log"
    port = free_port()
    block = (DEPLOY / "nginx.conf").read_text()
    assert "unix:/run/httpcourse.sock" in block and "listen 80;" in block
    block = block.replace("unix:/run/httpcourse.sock", f"unix:{sock}").replace("listen 80;", f"listen 127.0.0.1:{port};")
    user = "user root;\n" if os.getuid() == 0 else ""       # its workers must reach the socket in tmp_path
    (prefix / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\n"
        f"events {{ worker_connections 64; }}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {prefix}/body;\n  proxy_temp_path {prefix}/proxy;\n"
        f"  fastcgi_temp_path {prefix}/fastcgi;\n  uwsgi_temp_path {prefix}/uwsgi;\n  scgi_temp_path {prefix}/scgi;\n"
        f"{block}\n}}\n")
    # The client (127.0.0.1) is not a trusted proxy here; nginx, a unix-socket peer, is.
    core, line = spawn(server_name, served, "--uds", str(sock), "--access-log", str(log),
                       "--forwarded-allow-ips", "192.0.2.1")
    nginx = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log"),
                              "-g", "daemon off;"], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert line.startswith("Listening on unix:"), line
        front = RunningServer("127.0.0.1", port, served, "nginx")
        assert wait_until(lambda: _accepts(port), timeout=10), (prefix / "error.log").read_text()
        response = get(front, "/files/hello.txt", headers=[("X-Forwarded-For", "6.6.6.6")])
        assert response.status == 200 and response.body == b"hello through nginx"
        upload = b"uploaded through nginx"
        with Client(front) as client:
            client.send(build_request("POST", "/files/up.txt", [("Content-Length", str(len(upload)))], upload))
            assert client.read_response().status == 201
        assert (served / "up.txt").read_bytes() == upload
        assert wait_until(lambda: log.exists() and len(log.read_text().splitlines()) == 2)
    finally:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait()
        nginx.stderr.close()
        assert stop(core) == 0
    # nginx appended the address it saw (127.0.0.1) to the client's forged 6.6.6.6: the proxy's word is logged.
    assert all(entry.startswith("127.0.0.1 - - [") for entry in log.read_text().splitlines()), log.read_text()


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
