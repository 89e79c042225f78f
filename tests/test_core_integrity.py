"""What core must never get wrong about files, whatever happens around a response.

Regression tests for the file hot path and its cache: a cached descriptor is
never closed (nor its number reused) while a response still sends from it;
special files (FIFOs, sockets, directories) never block a worker; every file
error gets an answer; no descriptor leaks; names and upload bodies mean what
they say.  Each server test runs against both event loops (`core`, `core-py`).

Servers that a test must observe closely (descriptor counts, resource limits,
a worker that may block) are started by the test itself; the rest share one
server per module.  Every wait here is bounded; nothing is decided by latency.
"""
import gzip
import hashlib
import os
import resource
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from rawhttp import Client, build_request, fd_count, read_reply, settled_fd_count, wait_until
from servers import ServerProcess, command

pytestmark = pytest.mark.servers("core", "core-py")

MiB = 1024 * 1024
KiB = 1024
# The file cache re-resolves an entry after REVALIDATE_SECONDS (1 s).
PAST_REVALIDATION = 1.1
ANSWER_TIMEOUT = 2.0        # a worker that has not answered by then is blocked
TEXT = b"the quick brown fox jumps over the lazy dog\n" * 200


# -- servers this module starts --------------------------------------------------------

class LimitedServerProcess(ServerProcess):
    """ServerProcess with its resource limit and umask set before exec (inherited by the workers)."""

    def __init__(self, name, directory, extra_args=(), nofile=None, umask=0o022):
        def prepare():
            os.umask(umask)
            if nofile is not None:
                soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                wanted = nofile if hard == resource.RLIM_INFINITY else min(nofile, hard)
                resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard if wanted <= hard else wanted))

        self.name = name
        self.stderr_file = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            command(name, directory, 0, extra_args), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self.stderr_file, preexec_fn=prepare,
        )


@dataclass
class Served:
    """A running server (host, port, directory as rawhttp wants them) and its processes."""
    host: str
    port: int
    directory: Path
    name: str
    process: LimitedServerProcess

    @property
    def pid(self):
        return self.process.process.pid

    def workers(self):
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                return [int(pid) for pid in f.read().split()]
        except FileNotFoundError:
            return []

    @property
    def worker(self):
        workers = self.workers()
        assert len(workers) == 1, f"expected one worker, found {workers}"
        return workers[0]


def start(name, directory, *extra_args, nofile=4096, umask=0o022):
    process = LimitedServerProcess(name, f"{directory}/", ["--graceful-timeout", "2", *extra_args],
                                   nofile=nofile, umask=umask)
    try:
        port = process.wait_until_listening()
    except BaseException:
        process.stop(signal.SIGKILL)
        process.close()
        raise
    return Served("127.0.0.1", port, Path(directory), name, process)


def stop(served):
    """Stop a server this module started, even one whose worker is stuck in a system call."""
    workers = served.workers()
    process = served.process.process
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        while process.poll() is None and time.monotonic() < deadline:
            unblock_fifos(served.directory)      # a worker may open the same FIFO more than once
            time.sleep(0.02)
        if process.poll() is None:
            for pid in workers:                  # ours, by pid: a worker blocked where SIGTERM cannot help
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    served.process.stop(signal.SIGKILL)
    for pid in workers:                          # never leave an orphaned worker behind
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    served.process.close()


def unblock_fifos(directory):
    """Open every FIFO under directory for writing and close it: a reader blocked in open() returns."""
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            try:
                if stat.S_ISFIFO(os.lstat(path).st_mode):
                    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass        # ENXIO: nobody is reading it


@pytest.fixture
def fresh(server_name, tmp_path):
    """A server of its own for one test, with one worker; stopped however the test ends."""
    directory = tmp_path / "served"
    directory.mkdir()
    served = start(server_name, directory, "--workers", "1")
    try:
        yield served
    finally:
        stop(served)


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """One server per loop for the tests that need no server of their own (overrides conftest's)."""
    directory = tmp_path_factory.mktemp(request.param) / "served"
    directory.mkdir()
    served = start(request.param, directory, "--workers", "1")
    try:
        yield served
    finally:
        stop(served)


# -- reading -------------------------------------------------------------------------------



def exchange(server, data, method="GET", timeout=ANSWER_TIMEOUT):
    """Send data on a new connection and read one response, or fail saying it never came."""
    with Client(server, timeout=timeout) as client:
        client.send(data)
        try:
            return read_reply(client, method)
        except socket.timeout:
            pytest.fail(f"no answer within {timeout} s: the worker is blocked")
        except (ConnectionError, AssertionError) as error:
            pytest.fail(f"the connection was dropped without a (whole) answer: {error}")


def ask_and_continue(server, method, target, headers=(), must_keep_alive=False):
    """method target, then GET /echo/next on the same connection: the answer, and the connection usable."""
    with Client(server, timeout=ANSWER_TIMEOUT) as client:
        client.send(build_request(method, target, headers) + build_request("GET", "/echo/next"))
        try:
            response = read_reply(client, method)
            if response.headers.get("connection") == "close" and not must_keep_alive:
                return response
            assert response.headers.get("connection") != "close", "the connection was closed after the error"
            after = read_reply(client)
        except socket.timeout:
            pytest.fail(f"no answer within {ANSWER_TIMEOUT} s: the worker is blocked")
        except (ConnectionError, AssertionError) as error:
            pytest.fail(f"{method} {target[:60]}: no answer, or the connection was dropped: {error}")
        assert (after.status, after.body) == (200, b"next"), "the connection did not stay usable"
        return response






def sha(data):
    return hashlib.sha256(data).hexdigest()


# == 1. a cached descriptor is never closed while a response sends from it =====================

class StalledDownload:
    """GET of a large cached file on a connection that stops reading after 64 KiB.

    Two throwaway connections are opened before the file is first looked up
    and closed once the download has stalled: their descriptor numbers lie
    below the cached file's, so when the cache closes that descriptor and
    opens the same file again, the reopened one takes a lower number and the
    old number is free for whatever the worker opens next.  A server that
    sends from a descriptor it closed then sends another file's bytes (or
    stops short); a correct one sends the file the response began with.
    """

    def __init__(self, served, name, size):
        self.served, self.name, self.size = served, name, size
        worker = served.worker
        first, second = Client(served), Client(served)
        second.send(build_request("GET", f"/files/{name}"))
        warm = read_reply(second)
        assert warm.status == 200 and len(warm.body) == size
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # before connect: a small window
        self.sock.settimeout(10)
        self.sock.connect((served.host, served.port))
        self.sock.sendall(build_request("GET", f"/files/{name}"))
        self.received = b""
        while len(self.received) < 64 * KiB:
            data = self.sock.recv(16 * KiB)
            assert data, "closed before the first 64 KiB"
            self.received += data
        before = fd_count(worker)
        first.sock.close()
        second.sock.close()
        assert wait_until(lambda: fd_count(worker) <= before - 2, timeout=5), "the worker kept closed connections"

    def rest(self):
        """Read the response to its end; return (headers, body)."""
        self.sock.settimeout(20)
        data = self.received
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(256 * KiB)
            assert chunk, "closed before the head"
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        headers = {n.strip().lower(): v.strip()
                   for n, _, v in (line.partition(":") for line in head.decode("latin-1").split("\r\n")[1:])}
        length = int(headers["content-length"])
        parts = [body]
        received = len(body)
        while received < length:
            try:
                chunk = self.sock.recv(1 * MiB)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            parts.append(chunk)
            received += len(chunk)
        self.sock.close()
        return headers, b"".join(parts)[:max(length, received)]


def assert_intact(stalled, expected):
    headers, body = stalled.rest()
    assert headers["content-length"] == str(len(expected))
    assert len(body) == len(expected), f"got {len(body)} of {len(expected)} bytes"
    assert sha(body) == sha(expected), "the body is not the file's bytes: sent from a descriptor closed or reused"


def get_files(served, names, method="GET"):
    with Client(served) as client:
        for name in names:
            client.send(build_request(method, f"/files/{name}"))
            response = read_reply(client, method)
            assert response.status == 200, (name, response.status)


def test_a_revalidated_descriptor_stays_open_for_a_stalled_download(fresh):
    content = os.urandom(8 * MiB)
    (fresh.directory / "big.bin").write_bytes(content)
    others = {f"other{i}.bin": os.urandom(MiB + i) for i in range(4)}
    for name, data in others.items():
        (fresh.directory / name).write_bytes(data)
    stalled = StalledDownload(fresh, "big.bin", len(content))
    time.sleep(PAST_REVALIDATION)                    # the cache resolves big.bin again on next use
    with Client(fresh) as client:
        client.send(build_request("GET", "/files/big.bin"))
        assert read_reply(client).body == content
    get_files(fresh, others)
    with Client(fresh) as client:
        body = os.urandom(100 * KiB)
        client.send(build_request("POST", "/files/other", [("Content-Length", str(len(body)))], body))
        assert read_reply(client).status == 201
    get_files(fresh, others)
    assert_intact(stalled, content)


def test_a_file_replaced_by_rename_keeps_sending_the_old_version(fresh):
    old = os.urandom(8 * MiB)
    (fresh.directory / "big.bin").write_bytes(old)
    others = {f"other{i}.bin": os.urandom(MiB + i) for i in range(4)}
    for name, data in others.items():
        (fresh.directory / name).write_bytes(data)
    stalled = StalledDownload(fresh, "big.bin", len(old))
    new = os.urandom(8 * MiB)
    temporary = fresh.directory / ".new-big.bin"
    temporary.write_bytes(new)
    os.replace(temporary, fresh.directory / "big.bin")
    with Client(fresh) as client:
        client.send(build_request("GET", "/files/big.bin"))
        assert read_reply(client).body == new, "a new request must get the new version"
    get_files(fresh, others)
    assert_intact(stalled, old)


def test_a_cache_flushed_by_aliases_keeps_a_stalled_download_intact(fresh):
    content = os.urandom(8 * MiB)
    (fresh.directory / "big.bin").write_bytes(content)
    (fresh.directory / "x").write_bytes(b"x" * 1000)
    distinct = [f"d{i}.bin" for i in range(40)]
    for i, name in enumerate(distinct):
        (fresh.directory / name).write_bytes(os.urandom(64 * KiB + i))
    stalled = StalledDownload(fresh, "big.bin", len(content))
    aliases = ["./" * k + "x" for k in range(1, 1024)]              # 1,023 names of one file
    more = ["./" * k + "x" for k in range(1024, 1124)]
    names = aliases + distinct + more + distinct                     # 1,123 aliases, 40 real files
    with Client(fresh) as client:
        for start_at in range(0, len(names), 100):                   # bounded pipelining: no deadlock
            batch = names[start_at:start_at + 100]
            client.send(b"".join(build_request("HEAD", f"/files/{name}") for name in batch))
            for name in batch:
                response = read_reply(client, "HEAD")
                assert response.status == 200, (name[:40], response.status)
    assert_intact(stalled, content)


def test_an_aborted_upload_beside_a_stalled_download_leaves_it_intact(fresh):
    content = os.urandom(8 * MiB)
    (fresh.directory / "big.bin").write_bytes(content)
    others = {f"other{i}.bin": os.urandom(MiB + i) for i in range(2)}
    for name, data in others.items():
        (fresh.directory / name).write_bytes(data)
    stalled = StalledDownload(fresh, "big.bin", len(content))
    time.sleep(PAST_REVALIDATION)
    with Client(fresh) as client:
        client.send(build_request("GET", "/files/big.bin"))
        assert read_reply(client).body == content
    temporaries = lambda: [n for n in os.listdir(fresh.directory) if n.startswith(".upload-")]
    with Client(fresh) as uploader:
        uploader.send(build_request("POST", "/files/aborted.bin", [("Content-Length", str(10 * MiB))],
                                    os.urandom(256 * KiB)))
        assert wait_until(temporaries, timeout=5), "the upload never started"
    assert wait_until(lambda: not temporaries(), timeout=5), "the aborted upload left its temporary"
    get_files(fresh, others)
    assert_intact(stalled, content)


# == 2. special files never block a worker =========================================================

def still_serving(served):
    """A plain GET of a file on another connection is answered: the worker is not blocked."""
    (served.directory / "plain.txt").write_bytes(b"plain")
    response = exchange(served, build_request("GET", "/files/plain.txt"))
    assert (response.status, response.body) == (200, b"plain")


def make_unix_socket(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    return sock


@pytest.mark.parametrize("kind, method", [("fifo", "GET"), ("fifo", "HEAD"), ("socket", "GET"),
                                          ("socket", "HEAD"), ("directory", "GET"), ("directory", "HEAD")])
def test_a_special_file_gets_404_without_blocking_the_worker(fresh, kind, method):
    path = fresh.directory / "special"
    holder = None
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        holder = make_unix_socket(path)
    else:
        path.mkdir()
    try:
        response = exchange(fresh, build_request(method, "/files/special"), method)
        assert response.status == 404
        still_serving(fresh)
    finally:
        if holder is not None:
            holder.close()


def test_a_fifo_named_like_a_gz_sibling_is_ignored(fresh):
    (fresh.directory / "page.txt").write_bytes(TEXT)
    os.mkfifo(fresh.directory / "page.txt.gz")
    response = exchange(fresh, build_request("GET", "/files/page.txt", [("Accept-Encoding", "gzip")]))
    assert response.status == 200
    if response.headers.get("content-encoding") == "gzip":
        assert gzip.decompress(response.body) == TEXT
    else:
        assert "content-encoding" not in response.headers and response.body == TEXT
    still_serving(fresh)


# == 3. no descriptor leaks on the general path ====================================================

@pytest.mark.parametrize("how", ["query", "gzip"])
def test_pipelined_empty_files_leak_no_descriptors(fresh, how):
    (fresh.directory / "empty").write_bytes(b"")
    (fresh.directory / "full.bin").write_bytes(b"F" * 3000)
    worker = fresh.worker
    empty = (build_request("GET", "/files/empty?q=1") if how == "query"
             else build_request("GET", "/files/empty", [("Accept-Encoding", "gzip")]))
    pair = empty + build_request("GET", "/files/full.bin")
    with Client(fresh) as client:
        client.send(pair)                                   # warm up: full.bin is cached from here on
        assert [read_reply(client).status for _ in range(2)] == [200, 200]
        baseline = settled_fd_count(worker)
        for _ in range(6):                                  # 300 pairs, 50 per write
            client.send(pair * 50)
            for _ in range(50):
                first, second = read_reply(client), read_reply(client)
                assert (first.status, first.body, second.status, second.body) == (200, b"", 200, b"F" * 3000)
        grown = settled_fd_count(worker) - baseline
    assert grown <= 3, f"the worker holds {grown} more descriptors after 300 empty-file responses"


# == 4. file errors are answered, never a silent drop ================================================

@pytest.mark.parametrize("length", [300, 5000])
def test_a_name_too_long_gets_404_and_the_connection_stays_usable(server, length):
    response = ask_and_continue(server, "GET", "/files/" + "n" * length, must_keep_alive=True)
    assert response.status == 404


@pytest.mark.parametrize("layout", ["self", "pair"])
def test_a_symlink_loop_gets_403(server, layout):
    directory = server.directory
    name = f"loop-{layout}"
    if not os.path.lexists(directory / name):
        if layout == "self":
            os.symlink(name, directory / name)
        else:
            os.symlink(name + "-b", directory / name)
            os.symlink(name, directory / (name + "-b"))
    assert ask_and_continue(server, "GET", f"/files/{name}").status == 403


def test_a_unix_socket_file_gets_404(server):
    holder = make_unix_socket(server.directory / "sock4")
    try:
        assert ask_and_continue(server, "GET", "/files/sock4").status == 404
    finally:
        holder.close()


def test_an_upload_to_a_name_too_long_gets_404(server):
    body = b"never stored"
    response = exchange(server, build_request("POST", "/files/" + "u" * 300,
                                              [("Content-Length", str(len(body)))], body))
    assert response.status == 404
    assert not [n for n in os.listdir(server.directory) if n.startswith(".upload-")]


def test_a_worker_out_of_descriptors_answers_503_with_retry_after(server_name, tmp_path):
    """RLIMIT_NOFILE=64; idle connections take every descriptor; a GET of an uncached file gets 503."""
    (tmp_path / "uncached.bin").write_bytes(b"u" * 1000)
    served = start(server_name, tmp_path, "--workers", "1", nofile=64)
    idle = []
    try:
        worker = served.worker
        with Client(served, timeout=ANSWER_TIMEOUT) as client:
            client.send(build_request("GET", "/echo/in"))
            assert read_reply(client).body == b"in"              # accepted while descriptors were free
            for _ in range(80):                                  # more than the limit: the rest wait in the backlog
                idle.append(socket.create_connection((served.host, served.port)))
            assert wait_until(lambda: fd_count(worker) >= 64, timeout=5), fd_count(worker)
            client.send(build_request("GET", "/files/uncached.bin"))
            try:
                response = read_reply(client)
            except socket.timeout:
                pytest.fail("no answer while out of descriptors")
            except (ConnectionError, AssertionError) as error:
                pytest.fail(f"dropped without an answer while out of descriptors: {error}")
            assert response.status == 503
            assert response.headers.get("retry-after") == "1"
        for sock in idle:
            sock.close()
        idle.clear()
        assert wait_until(lambda: fd_count(worker) < 20, timeout=5)
        assert exchange(served, build_request("GET", "/files/uncached.bin")).body == b"u" * 1000
    finally:
        for sock in idle:
            sock.close()
        stop(served)


# == 5. the cached head survives a second boundary ===================================================

def test_head_after_date_across_a_second_boundary(monkeypatch):
    import core.filecache
    import core.response
    from core.app import file_fields

    clock = iter([1000.9999] + [1001.0 + i * 0.0001 for i in range(1000)])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    monkeypatch.setattr(core.response, "_date_second", -1)
    info = os.stat(__file__)
    head = core.filecache.head_after_date(200, file_fields(info), 1234)
    assert isinstance(head, bytes) and head.endswith(b"\r\n\r\n")
    assert b"Content-Length: 1234\r\n" in head and b"Date:" not in head


# == 6. names and bodies mean what they say ==========================================================

def test_a_gz_file_asked_for_by_name_goes_out_as_it_is(server):
    stored = gzip.compress(TEXT, compresslevel=0, mtime=0)    # compressible: gzip could shrink it again
    (server.directory / "page.txt.gz").write_bytes(stored)
    response = ask_and_continue(server, "GET", "/files/page.txt.gz", [("Accept-Encoding", "gzip")])
    assert response.status == 200
    assert "content-encoding" not in response.headers
    assert response.body == stored


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_regular_file_with_a_trailing_slash_is_not_found(server, method):
    (server.directory / "a.txt").write_bytes(b"a file, not a directory")
    assert ask_and_continue(server, method, "/files/a.txt/").status == 404


def test_an_upload_to_a_name_with_a_trailing_slash_gets_409(server):
    response = exchange(server, build_request("POST", "/files/newdir/", [("Content-Length", "3")], b"abc"))
    assert response.status == 409
    assert not os.path.lexists(server.directory / "newdir")


def test_an_upload_onto_a_symlink_replaces_the_link_not_its_target(server):
    target, link = server.directory / "target.txt", server.directory / "link"
    target.write_bytes(b"target stays")
    link.symlink_to("target.txt")
    body = b"new bytes for the link"
    response = exchange(server, build_request("POST", "/files/link", [("Content-Length", str(len(body)))], body))
    assert response.status == 201
    assert target.read_bytes() == b"target stays"
    assert not link.is_symlink() and link.read_bytes() == body


def test_an_upload_keeps_the_mode_of_the_file_it_replaces(server):
    path = server.directory / "moded.txt"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    response = exchange(server, build_request("POST", "/files/moded.txt", [("Content-Length", "3")], b"new"))
    assert response.status == 201 and path.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_new_upload_gets_0644_less_the_umask(server):
    response = exchange(server, build_request("POST", "/files/fresh.txt", [("Content-Length", "3")], b"new"))
    assert response.status == 201
    assert stat.S_IMODE(os.stat(server.directory / "fresh.txt").st_mode) == 0o644 & ~0o022  # the server's umask


def test_ranges_none_of_which_is_satisfiable_get_416(server):
    (server.directory / "hundred.bin").write_bytes(bytes(range(100)))
    response = ask_and_continue(server, "GET", "/files/hundred.bin", [("Range", "bytes=500-600, 700-800")])
    assert response.status == 416
    assert response.headers["content-range"] == "bytes */100"


@pytest.mark.parametrize("target, plain", [("/echo/abc", b"abc"), ("/files/twice.txt", TEXT)], ids=["echo", "file"])
def test_repeated_accept_encoding_lines_combine(server, target, plain):
    (server.directory / "twice.txt").write_bytes(TEXT)
    response = ask_and_continue(server, "GET", target, [("Accept-Encoding", "identity"), ("Accept-Encoding", "gzip")])
    assert response.status == 200
    assert response.headers.get("content-encoding") == "gzip"
    assert gzip.decompress(response.body) == plain


# "/files//x.txt" is not among them: a name that starts with "/" is absolute,
# and the course refuses absolute names with 403 (test_s06_files).
@pytest.mark.parametrize("alias", ["/files/./x.txt", "/files/sub//../x.txt", "/files/sub/../x.txt",
                                   "/files/sub/.././x.txt", "/files/%78.txt"])
def test_aliases_of_a_name_answer_its_bytes(server, alias):
    (server.directory / "x.txt").write_bytes(b"x's bytes")
    (server.directory / "sub").mkdir(exist_ok=True)
    response = ask_and_continue(server, "GET", alias)
    assert (response.status, response.body) == (200, b"x's bytes")


@pytest.mark.parametrize("target", ["/files/../x.txt", "/files//x.txt", "/files/sub/../../x.txt"])
def test_dot_dot_above_the_root_and_absolute_names_are_still_forbidden(server, target):
    (server.directory / "x.txt").write_bytes(b"x's bytes")
    (server.directory / "sub").mkdir(exist_ok=True)
    assert ask_and_continue(server, "GET", target).status == 403


def test_aliases_share_one_cache_entry(server):
    """200 spellings of one name must not hold 200 descriptors (nor flush the cache for others)."""
    (server.directory / "shared.txt").write_bytes(b"shared")
    worker = server.worker
    with Client(server) as client:
        client.send(build_request("GET", "/files/shared.txt"))
        assert read_reply(client).body == b"shared"
        baseline = settled_fd_count(worker)
        client.send(b"".join(build_request("HEAD", "/files/" + "./" * k + "shared.txt") for k in range(1, 201)))
        assert all(read_reply(client, "HEAD").status == 200 for _ in range(200))
        grown = settled_fd_count(worker) - baseline
    assert grown <= 3, f"the worker holds {grown} more descriptors after 200 aliases of one file"


# == 7. one stat per file per round of the loop ======================================================

BUILDS = {"compiled": ("core.filecache_c", "core._io_c", "core._parser_c"),
          "pure": ("core.filecache", "core._io_py", "core._parser_py")}


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_a_stat_serves_one_round_of_the_loop_only(build, tmp_path):
    """Requests of one round share the round's stat; the next round sees a replaced file."""
    import importlib
    from core.app import App
    from core.files import FileRoot

    filecache, io_module, parser_module = (importlib.import_module(name) for name in BUILDS[build])
    (tmp_path / "f.txt").write_bytes(b"old")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    cache = filecache.FileCache(App(FileRoot(str(tmp_path))), io_module.IO(listener))

    def lookup(now):
        parser = parser_module.RequestParser()
        parser.feed(b"GET /files/f.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        return cache.lookup(parser.next_event(), now)

    try:
        first = lookup(100.0)
        assert first is not None and first.body == b"old"
        assert lookup(100.0) is first
        (tmp_path / "new").write_bytes(b"new!")
        os.replace(tmp_path / "new", tmp_path / "f.txt")
        assert lookup(100.0) is first              # the same round: its stat holds
        later = lookup(100.0001)                   # the next round stats again
        assert later is not first and later.body == b"new!"
    finally:
        cache.close()
        listener.close()


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_the_send_queue_keeps_order_through_a_slow_reader(build):
    """Heads, held bodies and pipelined heads after them arrive as queued, across partial sends."""
    import importlib

    io_module = importlib.import_module(BUILDS[build][1])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    client.settimeout(5)
    io = io_module.IO(listener)
    fd = -1
    try:
        fd = wait_until(lambda: (lambda n: n if n >= 0 else None)(io.accept()), timeout=5)
        os.set_blocking(fd, False)
        # Queued in rounds, as pipelined responses are: a held body with a head after it.
        rounds = [[b"HEAD-1\r\n", os.urandom(40_000), b"HEAD-2\r\n", os.urandom(3000), b"H3"],
                  [os.urandom(200_000)], [b"H4", os.urandom(5000)]]
        expected = b"".join(b"".join(pieces) for pieces in rounds)
        out = io_module.OutQueue()
        received = bytearray()
        for pieces in rounds:
            for piece in pieces:
                before = out.size
                out.append(piece)
                assert out.size == before + len(piece)
            while io.send(fd, out, False) == 0:         # full: read a little, as a slow reader would
                assert out.size > 0
                received += client.recv(8192)
        assert out.size == 0
        while len(received) < len(expected):
            received += client.recv(65536)
        assert bytes(received) == expected
    finally:
        if fd >= 0:
            io.close(fd)
        client.close()
        listener.close()


def test_a_file_written_to_while_read_is_not_kept(tmp_path):
    """read_unchanged (the small-file copy, the gzip source) refuses a version it did not stat."""
    from core.files import read_unchanged

    path = tmp_path / "f.txt"
    path.write_bytes(b"version 1")
    fd = os.open(path, os.O_RDONLY)
    try:
        info = os.fstat(fd)
        assert read_unchanged(fd, info) == b"version 1"
        path.write_bytes(b"version 2")                     # same size, a new mtime
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1))
        assert read_unchanged(fd, info) is None
        assert read_unchanged(fd, os.fstat(fd)) == b"version 2"
    finally:
        os.close(fd)
