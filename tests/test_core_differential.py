"""The two event loops must answer byte for byte alike.

`core` (compiled loop, cached file heads) and `core-py` (the pure-Python
reference) serve identical directories -- same names, bytes and mtimes, so
ETags and Last-Modified agree -- and each scripted conversation below is sent
on one connection to a fresh server of each kind.  After the last write the
client half-closes and reads until the server closes; the two transcripts
must be identical once the Date value is blanked.  Conversations run in
order (uploads first, their GETs in a later conversation), mtimes are reset
after each, and a request that may end a connection is always the last of
its conversation, so nothing depends on timing.
"""
import gzip
import os
import random
import re
import socket
import time
from email.utils import formatdate

import pytest

from rawhttp import build_request as R
from servers import ServerProcess

MTIME_NS = 1_700_000_000_123_456_789          # every file's mtime, so both servers' ETags agree
MiB = 1024 * 1024
TEXT = b"the quick brown fox jumps over the lazy dog\n" * 200
OTHER_TEXT = b"pack my box with five dozen liquor jugs\n" * 150
BIG = random.Random(1126).randbytes(600 * 1024)          # past the loops' 256 KiB high-water mark

FILES = {
    "a.txt": b"hello, file\n" * 3,
    "hundred.bin": bytes(range(100)),
    "text.txt": TEXT,
    "page.txt": OTHER_TEXT,
    "page.txt.gz": gzip.compress(OTHER_TEXT, mtime=0),
    "stored.txt.gz": gzip.compress(TEXT, compresslevel=0, mtime=0),
    "big.bin": BIG,
    "empty": b"",
    "existing.txt": b"old contents",
    "target.txt": b"the link's target",
    "sub/inner.txt": b"inner",
}
LINKS = {"link": "target.txt", "loop": "loop"}


def etag(name):
    return '"%x-%x"' % (MTIME_NS, len(FILES[name]))


LAST_MODIFIED = formatdate(MTIME_NS // 10**9, usegmt=True)
EARLY = "Sun, 06 Nov 1994 08:49:37 GMT"
LATE = "Fri, 01 Jan 2100 00:00:00 GMT"


def upload(name, body, headers=()):
    return R("POST", f"/files/{name}", [("Content-Length", str(len(body))), *headers], body)


def chunked(name, body):
    return R("POST", f"/files/{name}", [("Transfer-Encoding", "chunked")], body)


# (id, the writes on one connection).  A request after which a server may close
# is the last of its conversation.
CONVERSATIONS = [
    ("root", [R("GET", "/") + R("HEAD", "/") + R("GET", "/", [("Connection", "close")])]),
    ("echo-and-user-agent", [R("GET", "/echo/abc") + R("GET", "/echo/%41%20b") + R("GET", "/user-agent", [("User-Agent", "agent/7")])
                             + R("GET", "/user-agent") + R("GET", "/nowhere") + R("GET", "/echo/")]),
    ("files-fast-path-pipelined", [R("GET", "/files/a.txt") * 3 + R("HEAD", "/files/a.txt") + R("GET", "/files/hundred.bin")
                                   + R("GET", "/files/a.txt") + R("GET", "/echo/after")]),
    ("files-connection-close", [R("GET", "/files/a.txt") + R("GET", "/files/a.txt", [("Connection", "close")])]),
    ("head-connection-close", [R("HEAD", "/files/a.txt", [("Connection", "close")])]),
    ("http10", [b"GET /files/a.txt HTTP/1.0\r\n\r\n"]),
    ("http10-keep-alive", [b"GET /echo/ten HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                           b"GET /files/hundred.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n"]),
    ("absolute-form-and-query", [R("GET", "http://localhost/echo/abs") + R("GET", "/files/a.txt?x=1")
                                 + R("GET", "/echo/q?x=1") + R("HEAD", "/files/a.txt?v")]),
    ("ranges", [b"".join(R("GET", "/files/hundred.bin", [("Range", spec)]) for spec in [
        "bytes=10-19", "bytes=-5", "bytes=90-", "bytes=95-1000", "bytes=100-", "bytes=5-3", "bytes=0-1,5-6",
        "bytes=0-1,200-300", "bytes=500-600, 700-800", "items=0-1", "BYTES=3-4, "])
        + R("GET", "/files/empty", [("Range", "bytes=0-")]) + R("HEAD", "/files/hundred.bin", [("Range", "bytes=0-9")])]),
    ("conditionals", [R("GET", "/files/a.txt", [("If-None-Match", etag("a.txt"))])
                      + R("HEAD", "/files/a.txt", [("If-None-Match", "W/" + etag("a.txt"))])
                      + R("GET", "/files/a.txt", [("If-None-Match", '"other"')])
                      + R("GET", "/files/a.txt", [("If-Modified-Since", LAST_MODIFIED)])
                      + R("GET", "/files/a.txt", [("If-Modified-Since", EARLY)])
                      + R("GET", "/files/a.txt", [("If-Match", '"other"')])
                      + R("GET", "/files/a.txt", [("If-Unmodified-Since", EARLY)])
                      + R("GET", "/files/hundred.bin", [("Range", "bytes=1-2"), ("If-Range", etag("hundred.bin"))])
                      + R("GET", "/files/hundred.bin", [("Range", "bytes=1-2"), ("If-Range", LATE)])
                      + R("GET", "/files/a.txt", [("IF-NONE-MATCH", etag("a.txt"))])]),
    ("gzip", [R("GET", "/files/text.txt", [("Accept-Encoding", "gzip")])
              + R("GET", "/files/text.txt", [("Accept-Encoding", "gzip;q=0")])
              + R("GET", "/files/page.txt", [("Accept-Encoding", "br, gzip")])
              + R("GET", "/files/page.txt", [("Accept-Encoding", "identity")])
              + R("GET", "/files/stored.txt.gz", [("Accept-Encoding", "gzip")])
              + R("GET", "/files/big.bin", [("Accept-Encoding", "*")])
              + R("GET", "/echo/abc", [("Accept-Encoding", "gzip")])
              + R("HEAD", "/files/text.txt", [("Accept-Encoding", "gzip")])
              + R("GET", "/files/text.txt", [("Accept-Encoding", "gzip"), ("Range", "bytes=4-8")])]),
    ("repeated-accept-encoding", [R("GET", "/echo/abc", [("Accept-Encoding", "identity"), ("Accept-Encoding", "gzip")])
                                  + R("GET", "/files/text.txt", [("Accept-Encoding", "identity"), ("Accept-Encoding", "gzip")])]),
    ("head-everywhere", [R("HEAD", "/echo/x") + R("HEAD", "/user-agent") + R("HEAD", "/files/missing")
                         + R("HEAD", "/nowhere") + R("HEAD", "/files/page.txt", [("Accept-Encoding", "gzip")])]),
    ("not-found-and-forbidden", [R("GET", "/files/missing") + R("GET", "/files/../secret") + R("GET", "/files/%2e%2e/x")
                                 + R("GET", "/files/a%00b") + R("GET", "/files/sub") + R("GET", "/files/")
                                 + R("GET", "/files/sub/inner.txt") + R("GET", "/files/echo")]),
    ("aliases", [R("GET", "/files/./a.txt") + R("GET", "/files/sub/../a.txt") + R("GET", "/files/sub/./inner.txt")
                 + R("GET", "/files/../a.txt") + R("GET", "/files//a.txt")]),
    ("trailing-slash", [R("GET", "/files/a.txt/") + R("HEAD", "/files/a.txt/") + R("GET", "/echo/after")]),
    ("method-not-allowed", [R("DELETE", "/files/a.txt") + R("PUT", "/echo/x", [("Content-Length", "3")], b"abc")
                            + R("POST", "/echo/x", [("Content-Length", "3")], b"abc") + R("OPTIONS", "/")
                            + R("GET", "/echo/after")]),
    ("length-required", [R("POST", "/files/nolength.txt") + R("GET", "/echo/after")]),
    ("content-too-large", [R("POST", "/files/huge.bin", [("Content-Length", str(200 * MiB))])]),
    ("bad-request-line", [b"GARBAGE\r\n\r\n"]),
    ("bad-request-spaces", [b"GET /a b c\r\n\r\n"]),
    ("bad-version", [b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"]),
    ("both-lengths", [b"POST /files/both.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"]),
    ("obsolete-fold", [b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n"]),
    ("unknown-coding", [R("POST", "/files/coded.txt", [("Transfer-Encoding", "gzip")], b"abc")]),
    ("uri-too-long", [R("GET", "/echo/" + "a" * 9000)]),
    ("header-too-large", [R("GET", "/", [("X-Big", "b" * 20000)])]),
    ("uploads", [upload("up1.txt", b"hello") + upload("existing.txt", b"replaced contents")
                 + upload("sub/deep.txt", b"deep") + upload("missingdir/x.txt", b"x")
                 + upload("up1.txt", b"again", [("If-None-Match", "*")])
                 + upload("existing.txt", b"nope", [("If-Match", '"other"')])
                 + R("GET", "/echo/after")]),
    ("chunked-upload", [R("POST", "/files/ch.txt", [("Transfer-Encoding", "chunked")])[:-2],
                        b"\r\n5\r\nhel", b"lo\r\n6;ext=1\r\n world\r\n", b"0\r\n\r\n" + R("GET", "/echo/after")]),
    ("expect-continue", [upload("exp.txt", b"data", [("Expect", "100-continue")])[:-4], b"data" + R("GET", "/echo/after")]),
    ("after-uploads", [R("GET", "/files/up1.txt") + R("GET", "/files/existing.txt") + R("GET", "/files/sub/deep.txt")
                       + R("GET", "/files/ch.txt") + R("GET", "/files/exp.txt") + R("HEAD", "/files/up1.txt")
                       + R("GET", "/files/nolength.txt")]),
    ("split-head", [b"GET /ec", b"ho/split HT", b"TP/1.1\r\nHo", b"st: x\r\n", b"\r\n"]),
    ("big-pipelined", [R("GET", "/files/big.bin") * 2 + R("GET", "/files/big.bin", [("Range", "bytes=300000-300100")])
                       + R("GET", "/echo/end")]),
    ("empty-file", [R("GET", "/files/empty?q=1") + R("GET", "/files/a.txt") + R("GET", "/files/empty", [("Accept-Encoding", "gzip")])
                    + R("GET", "/files/a.txt") + R("GET", "/files/empty") + R("HEAD", "/files/empty") + R("GET", "/files/empty")
                    + R("GET", "/echo/after")]),
    ("symlink-followed", [R("GET", "/files/link") + R("GET", "/echo/after")]),
    ("symlink-loop", [R("GET", "/files/loop")]),
    ("name-too-long", [R("GET", "/files/" + "n" * 300)]),
    ("upload-name-too-long", [upload("u" * 300, b"never")]),
    ("upload-trailing-slash", [upload("newdir/", b"abc")]),
    ("upload-onto-symlink", [upload("link", b"through the link?")]),
    ("after-symlink-upload", [R("GET", "/files/link") + R("GET", "/files/target.txt") + R("GET", "/files/newdir")]),
    # Issue 11: refusals instead of 100 Continue, HTTP/1.0 and Expect, empty lines, chunks, temporaries.
    ("expect-refused-412", [b"POST /files/a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                            b"If-None-Match: *\r\nExpect: 100-continue\r\n\r\n"]),
    ("expect-refused-404", [b"POST /files/missingdir/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                            b"Expect: 100-continue\r\n\r\n"]),
    ("expect-http10", [b"POST /files/ten.txt HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", b"ten"]),
    ("empty-lines", [b"\r\n\r\n" + R("GET", "/echo/after-two") + b"\r\n" * 5 + R("GET", "/echo/never")]),
    ("one-byte-chunks", [b"POST /files/chunks.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"1\r\nc\r\n" * 300 + b"0\r\n\r\n" + R("GET", "/echo/after-chunks")]),
    ("after-one-byte-chunks", [R("GET", "/files/chunks.txt")]),
    ("temporary-names", [R("GET", "/files/.upload-abcdefgh") + R("GET", "/files/sub/.upload-x")]),
]
NAMES = [name for name, _ in CONVERSATIONS]
assert len(set(NAMES)) == len(NAMES)

DATE = re.compile(rb"\r\nDate: [^\r\n]*\r\n")
READ_TIMEOUT = 3.0


def populate(directory):
    for name, data in FILES.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for name, target in LINKS.items():
        os.symlink(target, directory / name)
    fix_mtimes(directory)


def fix_mtimes(directory):
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            os.utime(os.path.join(root, name), ns=(MTIME_NS, MTIME_NS), follow_symlinks=False)


def converse(port, writes):
    """Send the writes (a short gap between them), half-close, and read until the server closes."""
    received = []
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for number, data in enumerate(writes):
                if number:
                    time.sleep(0.02)            # its own segment: the server must reassemble
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError as error:
            received.append(f"<send failed: {error.errno}>".encode())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                data = sock.recv(1 << 20)
            except socket.timeout:
                received.append(b"<no close within the read timeout>")
                break
            except ConnectionResetError:
                received.append(b"<reset>")
                break
            if not data:
                break
            received.append(data)
    return DATE.sub(b"\r\nDate: -\r\n", b"".join(received))


@pytest.fixture(scope="module")
def transcripts(tmp_path_factory):
    """Every conversation against a fresh core and a fresh core-py: {name: (core bytes, core-py bytes)}."""
    results = {name: [] for name in NAMES}
    for loop in ("core", "core-py"):
        directory = tmp_path_factory.mktemp(f"differential-{loop}") / "served"
        directory.mkdir()
        populate(directory)
        process = ServerProcess(loop, f"{directory}/", extra_args=["--workers", "1"])
        try:
            port = process.wait_until_listening()
            for name, writes in CONVERSATIONS:
                results[name].append(converse(port, writes))
                fix_mtimes(directory)
        finally:
            process.stop()
            process.close()
    return results


def first_difference(a, b):
    index = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return index, a[max(0, index - 200):index + 200], b[max(0, index - 200):index + 200]


@pytest.mark.parametrize("name", NAMES)
def test_both_loops_answer_alike(transcripts, name):
    compiled, pure = transcripts[name]
    if compiled != pure:
        index, a, b = first_difference(compiled, pure)
        pytest.fail(f"{name}: transcripts differ at byte {index} (core {len(compiled)} bytes, core-py {len(pure)})\n"
                    f"core:    {a!r}\ncore-py: {b!r}")
    assert compiled, f"{name}: no answer at all from either loop"
