"""What `python -m core` adds to the course: run against both event loops (`core`, `core-py`).

The course's own checks run against core through servers.py (every stage's
tests list core among their servers); these are the production behaviours.
"""
import gzip
import os
import signal
import socket
import threading
import time

import pytest

from rawhttp import Client, build_request, fetch, get, random_text, wait_until
from servers import COMPILED_EXPECTED, RunningServer, ServerProcess

VARIANTS = ["core", "core-py"]
pytestmark = pytest.mark.servers(*VARIANTS)


def worker_pids(parent_pid):
    with open(f"/proc/{parent_pid}/task/{parent_pid}/children") as f:
        return [int(pid) for pid in f.read().split()]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


class Core:
    """A core server started by a test, with extra options."""

    def __init__(self, name, directory, *extra_args):
        self.process = ServerProcess(name, directory, extra_args=list(extra_args))
        port = self.process.wait_until_listening()
        self.server = RunningServer("127.0.0.1", port, directory, name)
        self.pid = self.process.process.pid

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.process.stop(signal.SIGKILL if exc_info[0] else signal.SIGTERM)
        self.process.close()


def read_head(client):
    while b"\r\n\r\n" not in client.buffer:
        assert client._receive(), "closed before a full head"
    head, client.buffer = client.buffer.split(b"\r\n\r\n", 1)
    return head.decode("latin-1")


def test_the_expected_event_loop_is_running(server_name, tmp_path):
    """`core` must really run the compiled loop and parser, `core-py` neither."""
    with Core(server_name, tmp_path) as core:
        assert get(core.server, "/").status == 200
        with open(f"/proc/{worker_pids(core.pid)[0]}/maps") as f:
            maps = f.read()
    compiled = server_name == "core" and COMPILED_EXPECTED
    from core.server import LOOP_MODULES
    loop = f"{LOOP_MODULES[0]}."           # the compiled loop selected (CORE_LOOP)
    assert (loop in maps) == compiled and ("_parser_c." in maps) == compiled


def test_responses_carry_date_and_server(server):
    response = get(server, "/")
    assert response.status == 200
    assert response.headers["date"].endswith(" GMT") and "server" in response.headers


def test_pipelined_requests_are_answered_in_order(server):
    (server.directory / "p.bin").write_bytes(b"P" * 5000)
    agent = random_text()
    requests = (build_request("GET", "/echo/one") + build_request("POST", "/files/pipe.txt", [("Content-Length", "3")], b"abc")
                + build_request("GET", "/files/p.bin") + build_request("GET", "/user-agent", [("User-Agent", agent)])
                + build_request("GET", "/missing"))
    with Client(server) as client:
        client.send(requests)
        got = [client.read_response() for _ in range(5)]
    assert [r.status for r in got] == [200, 201, 200, 200, 404]
    assert got[0].body == b"one" and got[2].body == b"P" * 5000 and got[3].body == agent.encode()
    assert (server.directory / "pipe.txt").read_bytes() == b"abc"


def test_a_pipeline_queued_for_a_slow_reader_is_answered_whole(server):
    """More answers queued than one sendmsg takes (IOV_MAX pieces, 1,024 here) go out in turns.

    The pure loop passed every queued piece to one sendmsg: past 1,024 the
    kernel refused it (EMSGSIZE) and the connection was dropped as if the peer
    had gone, after 384 of these answers.
    """
    (server.directory / "tiny.txt").write_bytes(b"t")
    count = 20_000                          # ~6 MB of answers: more than the kernel's buffers hold
    with Client(server, timeout=20, receive_buffer=4096) as client:
        sender = threading.Thread(target=client.send, args=(build_request("GET", "/files/tiny.txt") * count,))
        sender.start()
        time.sleep(0.5)                     # the server queues what the client does not read
        got = [client.read_response() for _ in range(count)]
        sender.join(10)
    assert [r.status for r in got] == [200] * count and {r.body for r in got} == {b"t"}


def test_head_gives_the_get_headers_without_a_body(server):
    (server.directory / "h.bin").write_bytes(b"x" * 1234)
    with Client(server) as client:
        client.send(build_request("HEAD", "/files/h.bin") + build_request("GET", "/echo/after"))
        head = read_head(client)
        assert "Content-Length: 1234" in head and head.startswith("HTTP/1.1 200 OK")
        assert client.read_response().body == b"after"     # no body bytes were sent in between


@pytest.mark.parametrize("head, status", [
    (b"HEAD / HTTP/1.1\r\n\r\n", 400),                                            # no Host
    (b"HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\n", 413),
    (b"HEAD / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"HEAD / HTTP/1.1\r\nHost: x\r\nBad: a\x01b\r\n\r\n", 400),
])
def test_a_refused_head_request_gets_no_body(server, head, status):
    """RFC 9110 §9.3.2: no content in a response to HEAD, refusals of its head included."""
    with Client(server) as client:
        client.send(head)
        received = b""
        while chunk := client.sock.recv(65536):
            received += chunk                   # the server closes after a refusal
    assert received.startswith(b"HTTP/1.1 %d " % status), received
    assert received.endswith(b"\r\n\r\n") and received.count(b"\r\n\r\n") == 1, received
    assert b"\r\nContent-Length: " in received     # as the GET's refusal would say


def test_a_refused_head_request_keeps_the_get_fields():
    """HEAD of a file that cannot be opened for want of descriptors: 503 with Retry-After, as GET."""
    from core.app import App
    from core.errors import HTTPError
    from core.files import RETRY_AFTER
    from core.request import new_request

    class OutOfDescriptors(App):
        def route(self, request):
            raise HTTPError(503, "cannot open: Too many open files", close=False, fields=(RETRY_AFTER,))

    app = OutOfDescriptors.__new__(OutOfDescriptors)
    response = app.handle(new_request(b"HEAD", b"/files/a", b"1.1", [(b"Host", b"x")], True, 0, False))
    assert response.status == 503 and response.head_only and RETRY_AFTER in response.fields


@pytest.mark.parametrize("target", [b"http://x?/files/door.txt", b"http://x", b"HTTP://x?a=/files/door.txt"])
def test_an_absolute_target_s_path_starts_after_its_authority(server, target):
    """RFC 3986 §3.2: the authority ends at "/" or "?"; here the path is "/", not the file."""
    (server.directory / "door.txt").write_bytes(b"behind the door")
    response = fetch(server, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.status == 200 and response.body == b""


@pytest.mark.parametrize("line, status", [
    (b"OPTIONS * HTTP/1.1", 501), (b"CONNECT example.com:443 HTTP/1.1", 501), (b"GET * HTTP/1.1", 400)])
def test_asterisk_and_authority_forms_get_501_when_well_formed(server, line, status):
    """RFC 9112 §3.2.3-4: OPTIONS * and CONNECT are valid requests a file server does not implement."""
    with Client(server) as client:
        client.send(line + b"\r\nHost: example.com\r\n\r\n" + build_request("GET", "/echo/after"))
        assert client.read_response().status == status
        assert client.read_response().body == b"after"          # the connection stays usable


def test_unknown_method_on_a_file_gets_405(server):
    assert fetch(server, build_request("DELETE", "/files/x")).status == 405


@pytest.mark.parametrize("target", [
    "/files/../secret.txt", "/files/%2e%2e/secret.txt", "/files/%2E%2E%2Fsecret.txt",
    "/files/..%2fsecret.txt", "/files//etc/passwd", "/files/%2fetc%2fpasswd", "/files/link-out",
])
def test_traversal_never_reaches_outside_the_directory(server, target):
    (server.directory.parent / "secret.txt").write_text("secret")
    link = server.directory / "link-out"
    if not link.is_symlink():
        link.symlink_to(server.directory.parent / "secret.txt")
    response = get(server, target)
    assert response.status in (400, 403, 404)
    assert b"secret" not in response.body and b"root:" not in response.body


def test_nul_in_a_file_name_is_refused(server):
    assert get(server, "/files/a%00b").status in (400, 403)


def test_gzip_echo_varies_on_accept_encoding(server):
    text = random_text()
    response = get(server, f"/echo/{text}", [("Accept-Encoding", "br, GZIP;q=0.5")])
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(response.body) == text.encode()
    assert response.headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in get(server, f"/echo/{text}", [("Accept-Encoding", "gzip;q=0")]).headers


def test_expect_100_continue_gets_an_interim_response(server):
    with Client(server) as client:
        client.send(build_request("POST", "/files/expect.txt", [("Content-Length", "4"), ("Expect", "100-continue")]))
        assert client.read_response().status == 100
        client.send(b"data")
        assert client.read_response().status == 201
    assert (server.directory / "expect.txt").read_bytes() == b"data"


def test_malformed_request_gets_400_and_the_connection_closes(server):
    with Client(server) as client:
        client.send(b"GET /a b c\r\n\r\n")
        response = client.read_response()
        assert response.status == 400 and response.headers.get("connection") == "close"
        assert client.is_closed_by_server()
    assert get(server, "/").status == 200


def test_chunked_upload_is_decoded(server):
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    response = fetch(server, build_request("POST", "/files/chunked.txt", [("Transfer-Encoding", "chunked")], body))
    assert response.status == 201
    assert (server.directory / "chunked.txt").read_bytes() == b"hello world"


def test_upload_over_the_body_limit_gets_413_and_writes_nothing(server_name, tmp_path):
    with Core(server_name, tmp_path, "--max-body-bytes", "1000") as core:
        response = fetch(core.server, build_request("POST", "/files/big.bin", [("Content-Length", "1001")], b"x" * 1001))
        assert response.status == 413
        assert fetch(core.server, build_request("POST", "/files/ok.bin", [("Content-Length", "1000")], b"x" * 1000)).status == 201
    assert sorted(os.listdir(tmp_path)) == ["ok.bin"]


def test_cut_off_upload_leaves_no_file_and_no_temporary(server):
    with Client(server) as client:
        client.send(build_request("POST", "/files/cut.bin", [("Content-Length", "100000")], b"x" * 5000))
        time.sleep(0.2)
    assert wait_until(lambda: not [n for n in os.listdir(server.directory) if n.startswith(".upload-")])
    assert not (server.directory / "cut.bin").exists()


def test_concurrent_uploads_to_one_name_leave_one_complete_body(server):
    bodies = [bytes([65 + i]) * 300_000 for i in range(6)]
    statuses = []

    def upload(body):
        statuses.append(fetch(server, build_request("POST", "/files/race.bin", [("Content-Length", str(len(body)))], body)).status)

    threads = [threading.Thread(target=upload, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    seen = set()
    while any(t.is_alive() for t in threads):
        response = get(server, "/files/race.bin")
        if response.status == 200:
            seen.add(response.body)
    for thread in threads:
        thread.join()
    seen.add((server.directory / "race.bin").read_bytes())
    assert statuses == [201] * 6
    assert seen <= set(bodies)          # readers only ever see a complete body


def test_a_client_that_does_not_read_is_held_back_not_buffered(server_name, tmp_path):
    (tmp_path / "1m.bin").write_bytes(os.urandom(1 << 20))
    with Core(server_name, tmp_path, "--workers", "1") as core:
        worker = worker_pids(core.pid)[0]
        before = rss_kib(worker)
        sock = socket.create_connection((core.server.host, core.server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(build_request("GET", "/files/1m.bin") * 200)     # 200 MB asked, nothing read
        time.sleep(0.5)
        started = time.monotonic()
        assert get(core.server, "/").status == 200          # others are still served at once
        assert time.monotonic() - started < 1.0
        assert rss_kib(worker) - before < 20 * 1024         # not the 200 MB it was asked for
        sock.close()


def test_a_killed_worker_is_replaced(server_name, tmp_path):
    with Core(server_name, tmp_path, "--workers", "2") as core:
        victim = worker_pids(core.pid)[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: len(worker_pids(core.pid)) == 2 and victim not in worker_pids(core.pid))
        for _ in range(20):
            assert get(core.server, "/").status == 200


def context_switches(pid):
    with open(f"/proc/{pid}/status") as f:
        return sum(int(line.split()[1]) for line in f if line.startswith(("voluntary_ctxt", "nonvoluntary_ctxt")))


def test_an_idle_supervisor_sleeps_until_something_happens(server_name, tmp_path):
    """No polling: it wakes for a signal or a draining worker's deadline (it polled 10 times a second)."""
    with Core(server_name, tmp_path, "--workers", "1") as core:
        time.sleep(0.5)
        before = context_switches(core.pid)
        time.sleep(2)
        assert context_switches(core.pid) - before <= 2
        worker = worker_pids(core.pid)[0]
        os.kill(worker, signal.SIGKILL)                 # and a worker's exit still wakes it
        assert wait_until(lambda: worker_pids(core.pid) and worker not in worker_pids(core.pid), timeout=5)
        assert get(core.server, "/").status == 200


def test_a_draining_worker_that_hangs_is_killed_at_its_deadline(server_name, tmp_path):
    """The supervisor wakes by itself when a reloaded worker outlives graceful-timeout + 5 s."""
    with Core(server_name, tmp_path, "--workers", "1", "--graceful-timeout", "0.5") as core:
        old = worker_pids(core.pid)[0]
        os.kill(old, signal.SIGSTOP)                    # it will never drain by itself
        os.kill(core.pid, signal.SIGHUP)
        assert wait_until(lambda: len(worker_pids(core.pid)) == 2, timeout=5)
        assert get(core.server, "/").status == 200      # the new worker serves meanwhile
        started = time.monotonic()
        assert wait_until(lambda: worker_pids(core.pid) and old not in worker_pids(core.pid), timeout=15)
        assert 3 < time.monotonic() - started < 10      # killed at 0.5 + 5 s, not at once, not never


# The worker under a supervisor, and alone (--no-supervisor): the same drain.
ONE_WORKER = pytest.mark.parametrize("one_worker", [["--workers", "1"], ["--no-supervisor"]], ids=["supervised", "alone"])


@ONE_WORKER
def test_sigterm_lets_an_in_flight_download_finish(server_name, tmp_path, one_worker):
    payload = os.urandom(20 << 20)
    (tmp_path / "big.bin").write_bytes(payload)
    core = Core(server_name, tmp_path, *one_worker)
    try:
        with Client(core.server) as client:
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            client.send(build_request("GET", "/files/big.bin"))
            read_head(client)
            os.kill(core.pid, signal.SIGTERM)               # mid-download
            received = len(client.buffer)
            while received < len(payload):
                chunk = client.sock.recv(1 << 16)
                assert chunk, f"cut off after {received} bytes"
                received += len(chunk)
        assert core.process.process.wait(10) == 0
    finally:
        core.process.stop(signal.SIGKILL)
        core.process.close()


@ONE_WORKER
def test_new_connections_are_refused_after_sigterm(server_name, tmp_path, one_worker):
    core = Core(server_name, tmp_path, *one_worker)
    try:
        os.kill(core.pid, signal.SIGTERM)
        assert core.process.process.wait(10) == 0
        with pytest.raises(OSError):
            socket.create_connection((core.server.host, core.server.port), timeout=1).recv(1)
    finally:
        core.process.stop(signal.SIGKILL)
        core.process.close()


def test_a_file_changed_between_requests_is_served_fresh(server):
    path = server.directory / "changing.bin"
    path.write_bytes(b"old contents")
    assert get(server, "/files/changing.bin").body == b"old contents"
    path.write_bytes(b"new, longer contents")            # same inode, new size and mtime
    assert get(server, "/files/changing.bin").body == b"new, longer contents"
    replacement = server.directory / "replacement.tmp"
    replacement.write_bytes(b"replaced by rename!!")     # same size, new inode
    os.replace(replacement, path)
    assert get(server, "/files/changing.bin").body == b"replaced by rename!!"
    path.unlink()
    assert get(server, "/files/changing.bin").status == 404


def test_access_log_has_one_line_per_response(server_name, tmp_path):
    (tmp_path / "a.bin").write_bytes(b"a" * 10)
    log = tmp_path / "access.log"
    with Core(server_name, tmp_path, "--access-log", str(log), "--workers", "1") as core:
        with Client(core.server) as client:
            for target in ("/files/a.bin", "/files/a.bin", "/missing"):
                client.send(build_request("GET", target))
                client.read_response()
        assert fetch(core.server, b"BAD REQUEST LINE\r\n\r\n").status == 400
        assert wait_until(lambda: len(log.read_text().splitlines()) == 4)
    lines = log.read_text().splitlines()
    assert lines[0].startswith("127.0.0.1 - - [") and lines[0].endswith('"GET /files/a.bin HTTP/1.1" 200 10')
    assert lines[1] == lines[1][:lines[1].index("[")] + lines[1][lines[1].index("["):]   # same shape
    assert lines[2].endswith('"GET /missing HTTP/1.1" 404 10')
    assert lines[3].endswith('"-" 400 ' + lines[3].rsplit(" ", 1)[1])


def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_stop_when_the_supervisor_is_killed(server_name, tmp_path):
    core = Core(server_name, tmp_path, "--workers", "2")
    try:
        workers = worker_pids(core.pid)
        os.kill(core.pid, signal.SIGKILL)           # no chance to tell its workers
        core.process.process.wait(5)
        assert wait_until(lambda: not any(running(pid) for pid in workers), timeout=5)
    finally:
        core.process.stop(signal.SIGKILL)
        core.process.close()
