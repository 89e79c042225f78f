"""core's availability under clients that trickle, stall, race or hog a worker.

Regression tests for commit cc47e80 ("clocks only the server resets, refusals
before 100 Continue, fair turns, uploads committed atomically off the loop"),
run against both event loops.  Every test decides by the order of events or by
counts -- which response the server queued first (its access log), whether a
connection was closed before a trickle of bytes ended, how many uploads got
201 -- never by how fast a normal request is answered: the machine is shared.
Every wait is bounded.

The module's `server` (overriding conftest's) runs with short clocks and an
access log, one process per event loop.
"""
import fcntl
import os
import random
import select
import signal
import threading
import time
from collections import namedtuple
from contextlib import contextmanager

import pytest

from rawhttp import Client, build_request, fetch, get, read_reply, wait_until
from servers import ServerProcess
from test_core import Core, read_head, worker_pids

pytestmark = pytest.mark.servers("core", "core-py")

HEADER_TIMEOUT, LINGER_TIMEOUT, KEEPALIVE_TIMEOUT = 1, 1, 2
# Long: a test that gets 408 (or nothing) instead of an immediate answer fails.
BODY_TIMEOUT = 30
MAX_BODY_BYTES = 20_000_000
# One byte every TRICKLE_INTERVAL s for TRICKLE_BYTES bytes: about four times
# the linger and header timeouts, twice the keep-alive timeout.
TRICKLE_INTERVAL, TRICKLE_BYTES = 0.3, 14

Tuned = namedtuple("Tuned", "host port directory name pid log")


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    name = request.param
    base = tmp_path_factory.mktemp(name)
    directory = base / "served"
    directory.mkdir()
    log = base / "access.log"
    process = ServerProcess(name, f"{directory}/", extra_args=[
        "--workers", "1", "--header-timeout", str(HEADER_TIMEOUT), "--linger-timeout", str(LINGER_TIMEOUT),
        "--keepalive-timeout", str(KEEPALIVE_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
        "--max-body-bytes", str(MAX_BODY_BYTES), "--access-log", str(log)])
    try:
        port = process.wait_until_listening()
        yield Tuned("127.0.0.1", port, directory, name, process.process.pid, log)
        process.stop_cleanly()
    finally:
        process.stop()
        process.close()


# -- helpers ---------------------------------------------------------------------


def readable(sock, timeout):
    return bool(select.select([sock], [], [], timeout)[0])


def head_response(client):
    """Status and lower-cased fields of a response that has no body (HEAD)."""
    status_line, *lines = read_head(client).split("\r\n")
    fields = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split(" ")[1]), fields


def temporary_files(directory):
    return [name for name in os.listdir(directory) if name.startswith(".upload-")]


def fresh_directory(parent, name):
    path = parent / f"{name}-{random.randrange(1 << 30):x}"
    path.mkdir()
    return path


def log_lines_after(log, offset):
    with open(log, encoding="utf-8") as f:
        f.seek(offset)
        return f.read().splitlines()


def server_socket_entry(server_port, client_sock):
    """(rx_queue, inode) of the server's end of client_sock, from /proc/net/tcp; None if not there."""
    local = f"0100007F:{server_port:04X}"
    remote = f"0100007F:{client_sock.getsockname()[1]:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[2] == remote and fields[3] == "01":   # ESTABLISHED
                return int(fields[4].split(":")[1], 16), int(fields[9])
    return None


def queued_at_server(server_port, client_sock):
    """Bytes the server has not read yet from client_sock (0 if unknown)."""
    entry = server_socket_entry(server_port, client_sock)
    return entry[0] if entry else 0


def worker_of(server_port, client_sock, pids):
    """The worker whose descriptor table holds the server's end of client_sock, or None."""
    entry = server_socket_entry(server_port, client_sock)
    if entry is None or entry[1] == 0:
        return None
    target = f"socket:[{entry[1]}]"
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
                except OSError:
                    pass
        except OSError:
            pass
    return None


def process_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@contextmanager
def worker_stopped(server):
    """The (only) worker SIGSTOPped: what clients send meanwhile waits, all of it, in the kernel."""
    pid, = worker_pids(server.pid)
    os.kill(pid, signal.SIGSTOP)
    try:
        assert wait_until(lambda: process_state(pid) in ("T", "t"), timeout=5)
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def upload_head(target, length, headers=(), version="1.1"):
    lines = [f"POST {target} HTTP/{version}", "Host: x", f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- 1. lingering close --------------------------------------------------------------


def test_lingering_close_has_one_clock_that_trickled_bytes_do_not_restart(server):
    """After an error the server lingers at most --linger-timeout, however the client trickles.

    Before the fix every byte the client sent restarted the linger clock, so a
    byte every 0.3 s (linger timeout 1 s) held the connection open forever.
    """
    with Client(server) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\nNo colon in this line\r\n\r\n")
        response = client.read_response()
        assert response.status == 400 and response.headers.get("connection") == "close"
        accepted = 0
        for _ in range(TRICKLE_BYTES):
            time.sleep(TRICKLE_INTERVAL)
            try:
                client.sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break                       # the server closed; our last byte drew a reset
            accepted += 1
        else:
            pytest.fail(f"still open after {accepted} bytes trickled over "
                        f"~{TRICKLE_BYTES * TRICKLE_INTERVAL:.1f} s (--linger-timeout {LINGER_TIMEOUT})")


# -- 2. empty lines before a request line ------------------------------------------------


def test_cr_and_lf_trickled_alternately_cannot_hold_a_connection(server):
    """CR, LF, CR, LF... every 0.3 s: the connection ends with 408 (or 400) or is closed.

    Before the fix each completed empty line sent the connection back to idle
    (keep-alive clock restarted) and each CR into reading a head (header clock
    restarted), so neither clock ever ran out.
    """
    with Client(server, timeout=3) as client:
        for index in range(TRICKLE_BYTES + 2):
            try:
                client.sock.sendall(b"\n" if index % 2 else b"\r")
            except (BrokenPipeError, ConnectionResetError):
                return                      # closed without an answer: also fine
            if readable(client.sock, TRICKLE_INTERVAL):
                break
        else:
            pytest.fail(f"no answer and still open after {TRICKLE_BYTES + 2} CR/LF bytes over "
                        f"~{(TRICKLE_BYTES + 2) * TRICKLE_INTERVAL:.1f} s "
                        f"(--header-timeout {HEADER_TIMEOUT}, --keepalive-timeout {KEEPALIVE_TIMEOUT})")
        try:
            response = client.read_response()
        except (ConnectionError, ConnectionResetError):
            return                          # closed without an answer
        assert response.status in (400, 408), response.status_line
        assert wait_until(client.is_closed_by_server, timeout=5)


def test_more_than_four_empty_lines_before_a_request_line_get_400(server):
    response = fetch(server, b"\r\n" * 5 + build_request("GET", "/echo/late"))
    assert response.status == 400


@pytest.mark.parametrize("empty_lines", [1, 4])
def test_up_to_four_empty_lines_before_a_request_line_are_ignored(server, empty_lines):
    response = fetch(server, b"\r\n" * empty_lines + build_request("GET", "/echo/ok"))
    assert response.status == 200 and response.body == b"ok"


def test_a_crlf_after_a_post_body_does_not_break_keep_alive(server):
    """Some clients send CRLF after a POST body; the next request on the connection is answered."""
    with Client(server) as client:
        client.send(build_request("POST", "/files/crlf-after.txt", [("Content-Length", "5")], b"hello") + b"\r\n")
        assert client.read_response().status == 201
        client.send(build_request("GET", "/echo/next"))
        response = client.read_response()
        assert response.status == 200 and response.body == b"next"
    assert (server.directory / "crlf-after.txt").read_bytes() == b"hello"


# -- 3. Expect: 100-continue ---------------------------------------------------------------


@pytest.fixture
def expect_setup(server):
    (server.directory / "exists.txt").write_bytes(b"original")
    (server.directory / "adir").mkdir(exist_ok=True)
    return server


REFUSALS = [
    # (target, extra header fields, Content-Length, status)
    ("/files/exists.txt", [("If-None-Match", "*")], 10, 412),
    ("/files/missing-dir/x", [], 10, 404),
    ("/files/adir/", [], 10, 409),
    ("/files/adir", [], 10, 409),
    ("/files/too-big", [], 10 ** 9, 413),            # over --max-body-bytes
    ("/files/../x", [], 10, 403),
]


@pytest.mark.parametrize("target, fields, length, status", REFUSALS,
                         ids=["412-exists", "404-no-dir", "409-slash", "409-dir", "413", "403"])
def test_an_upload_that_will_be_refused_gets_the_refusal_instead_of_100(expect_setup, target, fields,
                                                                          length, status):
    """The client waits for 100 Continue and sends no body: the refusal must come at once.

    Before the fix (except 413, decided by the parser) nothing came until
    --body-timeout (30 s here) ran out, then 408.  We wait at most 5 s.
    """
    server = expect_setup
    before = sorted(os.listdir(server.directory))
    with Client(server, timeout=5) as client:
        client.send(upload_head(target, length, fields + [("Expect", "100-continue")]))
        response = client.read_response()
        assert response.status == status, f"wanted {status} at once, got {response.status_line}"
        assert response.headers.get("connection") == "close"
        assert wait_until(client.is_closed_by_server, timeout=5)
    assert sorted(os.listdir(server.directory)) == before
    assert (server.directory / "exists.txt").read_bytes() == b"original"


def test_a_post_without_content_length_but_with_expect_gets_411_not_100(server):
    """Expect applies only to a request with a body; without Content-Length there is none: 411."""
    with Client(server, timeout=5) as client:
        client.send(b"POST /files/no-length HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n")
        response = client.read_response()
        assert response.status == 411, response.status_line
    assert not (server.directory / "no-length").exists()


def test_an_http10_upload_with_expect_never_gets_100(server):
    """RFC 9110 §10.1.1: an HTTP/1.0 client does not know 100; it sends its body anyway."""
    with Client(server, timeout=5) as client:
        client.send(upload_head("/files/ten.txt", 5, [("Expect", "100-continue")], version="1.0"))
        assert not readable(client.sock, 0.5), f"answered before the body: {client.sock.recv(200)!r}"
        client.send(b"hello")
        response = client.read_response()
        assert response.status == 201, response.status_line   # not "HTTP/1.1 100 Continue"
        assert b"100 Continue" not in client.buffer
    assert (server.directory / "ten.txt").read_bytes() == b"hello"


def test_an_accepted_upload_with_expect_gets_100_then_201(server):
    with Client(server, timeout=5) as client:
        client.send(upload_head("/files/continued.txt", 5, [("Expect", "100-continue")]))
        assert client.read_response().status == 100
        client.send(b"hello")
        assert client.read_response().status == 201
    assert (server.directory / "continued.txt").read_bytes() == b"hello"


# -- 4. fair turns --------------------------------------------------------------------------
#
# Before the fix a connection handled everything one recv() brought (up to
# 256 KiB) in one go: thousands of 1-byte chunks or of pipelined requests, with
# every other client of the worker waiting.  Now it handles at most 64 parser
# events per turn.  To make "in one go" certain, the worker is stopped
# (SIGSTOP) while A's bytes and then B's request are queued in the kernel, so
# its first recv() on A gets all of A's bytes (kept under the ~128 KB a
# loopback socket buffers for a reader that is not reading); order is then
# read from the access log, which records each response when it is queued.


def send_while_stopped(server, a, a_data, b, b_data):
    with worker_stopped(server):
        a.sock.sendall(a_data)
        b.sock.sendall(b_data)
        # Both wait at the server (A's fully, if the buffer holds it), A's first.
        wait_until(lambda: queued_at_server(server.port, a.sock) >= len(a_data), timeout=2)
        assert wait_until(lambda: queued_at_server(server.port, b.sock) == len(b_data), timeout=5)


def warmed_clients(server, count):
    clients = [Client(server, timeout=10) for _ in range(count)]
    for client in clients:      # accepted and registered before the worker stops
        client.send(build_request("GET", "/echo/warm"))
        assert client.read_response().status == 200
    return clients


def test_a_body_of_1_byte_chunks_does_not_hold_the_worker(server):
    chunks = 19_000                          # ~114 KB: one recv() at the server
    body = b"1\r\nx\r\n" * chunks + b"0\r\n\r\n"
    a_data = build_request("POST", "/files/turns.bin", [("Transfer-Encoding", "chunked")], body)
    offset = os.path.getsize(server.log)
    a, b = warmed_clients(server, 2)
    with a, b:
        send_while_stopped(server, a, a_data, b, build_request("GET", "/echo/b"))
        response = b.read_response()
        assert response.status == 200 and response.body == b"b"
        assert a.read_response().status == 201
    assert (server.directory / "turns.bin").read_bytes() == b"x" * chunks
    lines = log_lines_after(server.log, offset)
    b_at = next(i for i, line in enumerate(lines) if '"GET /echo/b ' in line)
    a_at = next(i for i, line in enumerate(lines) if '"POST /files/turns.bin ' in line)
    assert b_at < a_at, "B was answered only after all of A's 19,000 chunks were handled"


def test_a_long_pipeline_does_not_hold_the_worker(server):
    count = 2000                             # ~70 KB of requests: one recv() at the server
    a_data = build_request("GET", "/echo/a") * count
    offset = os.path.getsize(server.log)
    a, b = warmed_clients(server, 2)
    with a, b:
        send_while_stopped(server, a, a_data, b, build_request("GET", "/echo/b"))
        response = b.read_response()         # A reads nothing until B is answered
        assert response.status == 200 and response.body == b"b"
        for _ in range(count):
            response = a.read_response()
            assert response.status == 200 and response.body == b"a"
    lines = log_lines_after(server.log, offset)
    b_at = next(i for i, line in enumerate(lines) if '"GET /echo/b ' in line)
    a_before_b = sum('"GET /echo/a ' in line for line in lines[:b_at])
    assert a_before_b < count, f"B was answered only after all {count} of A's pipelined requests"


# -- 5. racing uploads ---------------------------------------------------------------------


def race(server, directory, name, bodies, fields, clients=None):
    """Upload bodies to directory/name from one connection each, heads first, then all bodies.

    Every head has been handled (each upload has its temporary file, so its
    If-* fields were checked against the file as it was) before any body is
    sent, so the commits overlap.  Returns the statuses, in the order of bodies.
    """
    target = f"/files/{directory.name}/{name}"
    clients = clients or [Client(server, timeout=15) for _ in bodies]
    try:
        for client, body in zip(clients, bodies):
            client.send(upload_head(target, len(body), fields))
        assert wait_until(lambda: len(temporary_files(directory)) == len(bodies), timeout=5), \
            temporary_files(directory)
        senders = [threading.Thread(target=client.sock.sendall, args=(body,))
                   for client, body in zip(clients, bodies)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(15)
        return [client.read_response().status for client in clients]
    finally:
        for client in clients:
            client.sock.close()


def check_create_only_race(server, parent, clients=None):
    directory = fresh_directory(parent, "race")
    rng = random.Random(7)
    bodies = [rng.randbytes(1_000_000 + i) for i in range(8)]
    statuses = race(server, directory, "race", bodies, [("If-None-Match", "*")], clients)
    assert sorted(statuses) == [201] + [412] * 7, statuses
    assert (directory / "race").read_bytes() == bodies[statuses.index(201)]
    assert temporary_files(directory) == []


def check_if_match_race(server, parent, clients=None):
    directory = fresh_directory(parent, "match")
    (directory / "race").write_bytes(b"original")
    with Client(server) as client:
        client.send(build_request("HEAD", f"/files/{directory.name}/race"))
        status, fields = head_response(client)
    assert status == 200
    rng = random.Random(11)
    bodies = [rng.randbytes(1_000_000), rng.randbytes(1_000_001)]
    statuses = race(server, directory, "race", bodies, [("If-Match", fields["etag"])], clients)
    assert sorted(statuses) == [201, 412], statuses
    assert (directory / "race").read_bytes() == bodies[statuses.index(201)]
    assert temporary_files(directory) == []


def test_of_racing_create_only_uploads_exactly_one_gets_201(server):
    check_create_only_race(server, server.directory)


def test_of_racing_if_match_uploads_exactly_one_gets_201(server):
    check_if_match_race(server, server.directory)


def clients_on_both_workers(server, pids, per_worker):
    """per_worker connected clients on each of the two workers (SO_REUSEPORT spreads them by hash)."""
    by_worker, spare = {pid: [] for pid in pids}, []
    for _ in range(64):
        if all(len(found) >= per_worker for found in by_worker.values()):
            break
        client = Client(server, timeout=15)
        owner = wait_until(lambda: worker_of(server.port, client.sock, pids), timeout=5)
        assert owner, "no worker holds the connection"
        (by_worker[owner] if len(by_worker[owner]) < per_worker else spare).append(client)
    for client in spare:
        client.sock.close()
    assert all(len(found) == per_worker for found in by_worker.values()), \
        {pid: len(found) for pid, found in by_worker.items()}
    return [client for found in zip(*by_worker.values()) for client in found]


def test_racing_uploads_in_two_worker_processes(server_name, tmp_path):
    """The same races with two worker processes, each holding half of the uploads."""
    with Core(server_name, tmp_path, "--workers", "2") as core:
        pids = worker_pids(core.pid)
        assert len(pids) == 2
        check_create_only_race(core.server, tmp_path, clients_on_both_workers(core.server, pids, 4))
        check_if_match_race(core.server, tmp_path, clients_on_both_workers(core.server, pids, 1))


# -- 6. commits off the event loop ----------------------------------------------------------


def flock_waiters(directory):
    """Lines of /proc/locks for processes blocked on an flock of directory."""
    inode = os.stat(directory).st_ino
    with open("/proc/locks") as f:
        return [line for line in f if "->" in line and "FLOCK" in line and f":{inode} " in line]


def test_the_worker_serves_others_while_an_upload_is_being_committed(server):
    """Committing an upload (fsync, then link or rename under the directory's flock) runs off the loop.

    How long fsync takes cannot be controlled, but the commit's wait can: the
    test holds the flock that every commit takes on the upload's directory,
    sees the server's commit blocked on it (/proc/locks), and meanwhile other
    clients must be served.  Before the fix the commit ran in the event loop
    (and took no lock: the 201 came at once and no commit is ever seen waiting).
    """
    directory = fresh_directory(server.directory, "commit")
    body = os.urandom(4 << 20)
    lock = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with Client(server, timeout=10) as uploader:
            uploader.send(build_request("POST", f"/files/{directory.name}/held.bin",
                                        [("Content-Length", str(len(body)))], body))
            assert wait_until(lambda: flock_waiters(directory), timeout=5), \
                f"no commit waits for the directory's lock; the uploader got {uploader.sock.recv(200)!r}"
            for number in range(3):
                response = get(server, f"/echo/during{number}")
                assert response.status == 200 and response.body == f"during{number}".encode()
            assert not readable(uploader.sock, 0.2), "201 before the commit could take its lock"
            fcntl.flock(lock, fcntl.LOCK_UN)
            assert uploader.read_response().status == 201
    finally:
        os.close(lock)
    assert (directory / "held.bin").read_bytes() == body
    assert temporary_files(directory) == []


def test_a_connection_whose_upload_is_being_committed_does_not_buffer_without_bound(server_name, tmp_path):
    """While its upload is committed, a connection must not read more than a bounded amount.

    Before cc47e80 the commit ran in the loop, so nothing was read meanwhile;
    now the connection waits for the committer with EPOLLIN still armed and
    every recv() is appended to the parser's buffer, unparsed.  A client that
    pipelines the next request (say a second 100 MB upload) while the first is
    fsynced gets all of it held in the worker's memory: ~80-100 MB measured
    per connection with 100 MB uploads on this disk, with no lock held.  Here
    the commit is held on the directory's flock, so the test is
    deterministic: with the server not reading, the client can hand the
    kernel only its socket buffers' worth (a few MiB), never 64 MiB.
    """
    directory = tmp_path / "hold"
    directory.mkdir()
    with Core(server_name, tmp_path, "--workers", "1") as core:
        lock = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with Client(core.server, timeout=10) as client:
                client.send(build_request("POST", "/files/hold/a", [("Content-Length", "3")], b"abc"))
                assert wait_until(lambda: flock_waiters(directory), timeout=5)
                pipelined = build_request("POST", "/files/hold/b", [("Content-Length", str(100 << 20))])
                filler = b"x" * (1 << 20)
                sent, ceiling = 0, 64 << 20
                client.sock.setblocking(False)
                while sent < ceiling:
                    if not select.select([], [client.sock], [], 1.0)[1]:
                        break           # the server stopped reading: the buffers are full
                    try:
                        sent += client.sock.send(pipelined if sent == 0 else filler)
                    except BlockingIOError:
                        pass
                assert sent < 32 << 20, \
                    f"the worker read {sent >> 20} MiB while the connection's upload was being committed"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            os.close(lock)


# -- 7. HTTP/1.0 keep-alive -----------------------------------------------------------------


def test_an_http10_keep_alive_connection_says_so_and_stays_open(server):
    (server.directory / "ka.txt").write_bytes(b"kept alive")
    with Client(server, timeout=5) as client:
        def request(method, target):
            client.send(f"{method} {target} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())

        request("GET", "/echo/one")
        response = client.read_response()
        assert response.status == 200 and response.body == b"one"
        assert response.headers.get("connection", "").lower() == "keep-alive"
        for _ in range(2):                  # the second takes the file cache's fast path
            request("GET", "/files/ka.txt")
            response = client.read_response()
            assert response.status == 200 and response.body == b"kept alive"
            assert response.headers.get("connection", "").lower() == "keep-alive"
        request("HEAD", "/files/ka.txt")
        status, fields = head_response(client)
        assert status == 200 and fields["content-length"] == "10"
        assert fields.get("connection", "").lower() == "keep-alive"
        request("GET", "/echo/last")
        response = client.read_response()
        assert response.status == 200 and response.body == b"last"
        assert response.headers.get("connection", "").lower() == "keep-alive"


# -- 8. temporary upload names ---------------------------------------------------------------


@pytest.mark.parametrize("name", [".upload-abcdefgh", "%2Eupload-abcdefgh", "sub/.upload-abcdefgh"])
def test_temporary_upload_names_are_never_served_nor_replaced(server, name):
    (server.directory / "sub").mkdir(exist_ok=True)
    path = server.directory / name.replace("%2E", ".")
    path.write_bytes(b"someone's upload in progress")
    assert get(server, f"/files/{name}").status == 404
    with Client(server) as client:
        client.send(build_request("HEAD", f"/files/{name}"))
        assert head_response(client)[0] == 404
    response = fetch(server, build_request("POST", f"/files/{name}", [("Content-Length", "5")], b"taken"))
    assert response.status == 404
    assert path.read_bytes() == b"someone's upload in progress"


def test_a_busy_keep_alive_connection_is_not_closed_by_the_idle_clock(server):
    """The keep-alive clock restarts after every response, even one sent in the same round as its request.

    Found by the integrity soak: a connection whose every response went out at
    once never left the idle phase, so its clock ran from its first idle
    moment and closed it mid-conversation (keep-alive timeout here: 2 s).
    """
    with Client(server, timeout=5) as client:
        for number in range(12):                 # 12 × 0.3 s: well past the 2 s clock
            client.send(build_request("GET", f"/echo/{number}"))
            response = read_reply(client)
            assert (response.status, response.body) == (200, str(number).encode())
            time.sleep(0.3)
