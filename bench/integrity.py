"""Integrity soak: every byte core serves must be a byte of a file that was really there.

    python -m bench integrity [--duration 30] [--pure] [--json PATH] [--seed N]

Starts ``python -m core --workers 2 --port 0 --directory DIR`` on 127.0.0.1
(--pure: the pure-Python loop, CORE_PURE_PYTHON=1; otherwise the compiled
build is required) and for --duration seconds runs, in threads of this one
process, clients that

- download files of 1 KiB - 8 MiB at different speeds: slow readers have a
  4 KiB SO_RCVBUF and stall 1.2-2.5 s inside a body, past the file cache's
  1 s revalidation, so a response is in flight for seconds;
- mix Range requests, HEAD, ``Accept-Encoding: gzip``, ``Connection: close``
  and aliases of the names (``/files/./NAME``, ``/files/.//NAME``,
  ``/files/%2E/NAME``, ``/files/%68ot0.bin``...; ``/files//NAME`` may be
  refused with 403, as core takes it for an absolute name);
- HEAD the large files on kept-alive connections, so every worker looks up
  (and, once replaced or a second old, reopens) them while readers stall;
- replace files by rename (a temporary file in the directory, os.replace);
- upload with POST /files/NAME, some uploads aborted mid-body (a head with
  Content-Length N, fewer bytes, a pause, close);
- request more than 1,100 distinct names and aliases on each of two
  keep-alive connections, so a worker's cache of 1,024 open files overflows.

The slow readers read the 6-8 MiB files: sendfile() hands up to the socket's
send buffer (~3-4 MiB on loopback) to the kernel at once, so only the rest of
a larger file is still read from the descriptor after a stall.

Why: a worker keeps open descriptors of files it served (core/filecache.py)
and sends plain GETs from them.  If such a descriptor is closed -- on
revalidation, on a replaced file, when the cache overflows -- while a slow
response still sends from it, the number is reused by the next open() and
the rest of the body comes from another file, a newer version, or the
temporary file of an upload that is then aborted.  Such a response has the
right status and length and the wrong bytes; only checking every byte finds it.

How: every version of every file ever written (initial, renamed in, uploaded;
an upload is recorded before its first byte is sent) is recorded with its
size and sha256.  Contents are generated from a label such as "hot1.bin~17"
in 1 KiB blocks that each start with "[label @offset]", so any part of any
version can be generated again for a 206 and a wrong body tells whose bytes
it carries.  Each response is checked:

- 200: the body is one version of the name (sha256), Content-Length its size,
  the size part of ETag "<mtime hex>-<size hex>" that size;
- 206: Content-Range "bytes a-b/size" is the requested range of a version of
  that size, and the body is that version's bytes a..b;
- 416: "bytes */size" names a version the range does not fit;
- HEAD: Content-Length (and the ETag's size) is the size of some version;
- gzip: the decompressed body is one version (weak ETag "...-<size>-gzip");
- a body cut short: its bytes must still be a prefix of a version;
- 404 or any other unexpected status is a mismatch: os.replace is atomic and
  every name exists from the start.

Socket errors (resets, early closes, timeouts) are counted apart: they are
reported but are not mismatches.  At the end it prints the responses checked
by kind, versions written, uploads completed and aborted, socket errors and
mismatches (with whose bytes the wrong bodies carried, and examples); --json
writes the same as JSON.  Exit status 1 when there is any mismatch (or a
client thread crashed), 0 otherwise.
"""
import argparse
import gzip
import hashlib
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass

KiB, MiB = 1024, 1024 * 1024
BLOCK = 1024
SLOW_RCVBUF = 4 * KiB
# sendfile() queues up to the server's send buffer (autotuned to ~3-4 MiB on
# loopback) at once; only a file larger than that still sends from its
# descriptor after a slow reader's stall.
HOT_MIN_SIZE = 6 * MiB
# Longer than core's 1 s cache revalidation (core/filecache.py REVALIDATE_SECONDS).
STALL_SECONDS = (1.2, 2.5)
SOCKET_TIMEOUT = 15.0
# A response taking longer than this is read at full speed from then on.
MAX_SLOW_RESPONSE_SECONDS = 8.0
# Each cache-churn connection cycles through 2 * CHURN_FILES + 2 * CHURN_ALIAS_DEPTH * 7 distinct
# targets (7: the hot and upload names; 1,202 in all): more than a worker's 1,024 cache entries.
CHURN_FILES, CHURN_ALIAS_DEPTH = 300, 43
CHURN_CYCLE_SECONDS = 1.0
# Kept-alive connections of the prober: with 8, both workers have some but for a 1-in-128 chance.
PROBE_CONNECTIONS = 8
SLOW_READERS = 10
MAX_EXAMPLES = 20
HEADER = re.compile(rb"\[([^\[\] @]+) @(\d{10})\]")
ETAG = re.compile(r'(W/)?"([0-9a-f]+)-([0-9a-f]+)(-gzip)?"')
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")


# -- contents: generated from a label, so any slice of any version can be made again --

def version_bytes(label: str, size: int, start: int = 0, stop: int = None) -> bytes:
    """Bytes start..stop of the version labelled label, which is size bytes long.

    1 KiB blocks, each "[label @offset]" then a filler repeated from the
    label's hash (so gzip shrinks it), cut to size.
    """
    stop = size if stop is None else min(stop, size)
    if start >= stop:
        return b""
    tag = label.encode()
    filler = hashlib.sha256(tag).digest() * (BLOCK // 32)
    first, last = start // BLOCK, (stop - 1) // BLOCK
    data = b"".join((b"[%s @%010d]" % (tag, i * BLOCK) + filler)[:BLOCK] for i in range(first, last + 1))
    return data[start - first * BLOCK:stop - first * BLOCK]


def blocks_from(body: bytes, offset: int):
    """(position in body, label, source offset) of each block header in body, which starts at offset."""
    position = -offset % BLOCK
    while position < len(body):
        match = HEADER.match(body, position)
        yield position, (match.group(1).decode() if match else None), (int(match.group(2)) if match else None)
        position += BLOCK


# -- what was written -----------------------------------------------------------------

@dataclass(frozen=True)
class Version:
    name: str
    label: str
    size: int
    sha256: str
    origin: str         # "initial", "renamed" or "uploaded"


class Ledger:
    """Every version of every name ever written, and every aborted upload's body."""

    def __init__(self):
        self.lock = threading.Lock()
        self.versions = {}          # name -> [Version]
        self.by_digest = {}         # (name, sha256) -> Version
        self.aborted = {}           # label -> (name, size promised)
        self.labels = {}            # label -> description, for diagnoses
        self.written = Counter()    # origin -> versions
        self.counter = 0

    def new_version(self, name: str, size: int, origin: str):
        """Record a new version of name and return (Version, its bytes); call before writing it."""
        with self.lock:
            self.counter += 1
            label = f"{name}~{self.counter}"
        data = version_bytes(label, size)
        version = Version(name, label, size, hashlib.sha256(data).hexdigest(), origin)
        with self.lock:
            self.versions.setdefault(name, []).append(version)
            self.by_digest[(name, version.sha256)] = version
            self.labels[label] = f"{name} version {label} ({origin}, {size} bytes)"
            self.written[origin] += 1
        return version, data

    def new_aborted_upload(self, name: str, size: int):
        """A label and body for an upload that will be cut off: never a version of name."""
        with self.lock:
            self.counter += 1
            label = f"{name}~{self.counter}"
            self.aborted[label] = (name, size)
            self.labels[label] = f"ABORTED upload {label} to {name} ({size} bytes promised)"
        return label, version_bytes(label, size)

    def find(self, name: str, body: bytes):
        with self.lock:
            return self.by_digest.get((name, hashlib.sha256(body).hexdigest()))

    def of_size(self, name: str, size: int):
        with self.lock:
            return [v for v in self.versions.get(name, ()) if v.size == size]

    def sizes(self, name: str):
        with self.lock:
            return {v.size for v in self.versions[name]}

    def latest(self, name: str) -> Version:
        with self.lock:
            return self.versions[name][-1]

    def describe(self, label) -> str:
        with self.lock:
            return self.labels.get(label, f"unknown bytes (label {label!r})")

    def diagnose(self, name: str, body: bytes, offset: int = 0):
        """(whose bytes, how) for a wrong body starting at offset of the file, from its block headers."""
        expected = None
        for position, label, source_offset in blocks_from(body, offset):
            if label is None:
                return "bytes the soak never wrote", f"no block header at byte {offset + position}"
            if expected is None:
                if not self.is_version_of(label, name):
                    return self.source(label, name), f"from byte {offset + position}: {self.describe(label)}"
                expected = label
            if label != expected or source_offset != offset + position:
                return self.source(label, name), (
                    f"{self.describe(expected)} up to about byte {offset + position}, "
                    f"then {self.describe(label)} from its byte {source_offset}")
        if expected is None:
            return "an empty body", ""
        return "bytes the soak never wrote", f"headers all of {self.describe(expected)}, other bytes differ"

    def is_version_of(self, label, name):
        with self.lock:
            return label in self.labels and label not in self.aborted and label.rsplit("~", 1)[0] == name

    def source(self, label, name):
        with self.lock:
            if label in self.aborted:
                return "an aborted upload"
            if label not in self.labels:
                return "bytes the soak never wrote"
        return "another version of the file" if label.rsplit("~", 1)[0] == name else "another file"


# -- the running counts ---------------------------------------------------------------------

class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.checked = Counter()        # kind of response -> count
        self.socket_errors = Counter()  # what happened -> count
        self.mismatches = Counter()     # what was wrong -> count
        self.wrong_bytes_from = Counter()   # whose bytes a wrong body carried -> count
        self.examples = []
        self.uploads = Counter()        # completed / aborted
        self.targets = set()
        self.longest_response_s = 0.0
        self.stalled_responses = 0
        self.crashes = []

    def count(self, kind, n=1):
        with self.lock:
            self.checked[kind] += n

    def socket_error(self, what):
        with self.lock:
            self.socket_errors[what] += 1

    def mismatch(self, what, request, detail, source=None):
        with self.lock:
            self.mismatches[what] += 1
            if source:
                self.wrong_bytes_from[source] += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append({"what": what, "request": request, "detail": detail})

    def requested(self, target):
        with self.lock:
            self.targets.add(target)


# -- HTTP over raw sockets -------------------------------------------------------------------

class Truncated(Exception):
    """The connection ended inside a body; .body holds what arrived."""

    def __init__(self, body):
        super().__init__(f"connection closed after {len(body)} body bytes")
        self.body = body


@dataclass
class Pace:
    """How fast a body is read: small reads and pauses, one stall, then full speed."""
    chunk: int = 256 * KiB
    pause: float = 0.0
    stall_after: int = -1           # bytes into the body; -1: never stall
    stall: float = 0.0
    slow_for: float = 0.0           # seconds of paced reading after the stall


FAST = Pace()


class Connection:
    def __init__(self, port, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            # Before connect, so the window the server sees is small from the start.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(SOCKET_TIMEOUT)
        try:
            self.sock.connect(("127.0.0.1", port))
        except OSError:
            self.sock.close()
            raise
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.stalled = 0.0              # seconds the last body read stalled

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def read_head(self):
        """(status, headers with lower-case names) of the next response."""
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            data = self.sock.recv(64 * KiB)
            if not data:
                raise ConnectionError("closed before a response head" if not self.buffer else "closed inside a head")
            self.buffer += data
        head = bytes(self.buffer[:end]).decode("latin-1")
        del self.buffer[:end + 4]
        status_line, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            field, _, value = line.partition(":")
            headers[field.strip().lower()] = value.strip()
        return int(status_line.split(" ")[1]), headers

    def read_body(self, length, pace=FAST, hurry_at=math.inf):
        """length bytes of body, read at pace until hurry_at (a time.monotonic()), then at full speed."""
        body = bytearray(self.buffer[:length])
        del self.buffer[:length]
        started = time.monotonic()
        stalled_at = None
        self.stalled = 0.0
        while len(body) < length:
            now = time.monotonic()
            slow = pace.pause > 0 and (stalled_at is None or now - stalled_at < pace.slow_for)
            if now - started > MAX_SLOW_RESPONSE_SECONDS or now > hurry_at:
                slow = False
            want = min(pace.chunk if slow else 256 * KiB, length - len(body))
            if stalled_at is None and 0 <= pace.stall_after:
                want = min(want, max(pace.stall_after - len(body), 1))
            data = self.sock.recv(want)
            if not data:
                raise Truncated(bytes(body))
            body += data
            if stalled_at is None and 0 <= pace.stall_after <= len(body):
                self.stalled = min(pace.stall, max(hurry_at - time.monotonic(), 0))
                time.sleep(self.stalled)
                stalled_at = time.monotonic()
            elif slow:
                time.sleep(pace.pause)
        return bytes(body)


def request_bytes(method, target, headers=(), body=b""):
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- names, aliases and ranges ------------------------------------------------------------

def alias(name, rng):
    """Another target for the same file (the cache keys entries by target)."""
    form = rng.randrange(6)
    if form == 0:
        return "/files/" + "./" * rng.randint(1, 40) + name     # many distinct aliases
    if form == 1:
        return f"/files/.//{name}"
    if form == 2:
        return f"/files/%2E/{name}"
    if form == 3:
        return f"/files/%2e%2F{name}"
    if form == 4:
        return f"/files/%{ord(name[0]):02X}{name[1:]}"
    return f"/files//{name}"        # an absolute name to core: 403 allowed


def churn_targets(small_names, large_names):
    """(method, target, name): more than 1,100 distinct targets, to overflow a worker's cache.

    Small files under two spellings each, fetched whole, and aliases of the
    large files fetched by HEAD (cheap, and an evicted descriptor is then
    reused by a large file, so a response still sending from it gets wrong
    bytes rather than ending short).
    """
    targets = [("GET", form, name) for name in small_names
               for form in (f"/files/{name}", f"/files/%{ord(name[0]):02X}{name[1:]}")]
    for k in range(1, CHURN_ALIAS_DEPTH + 1):
        for name in large_names:
            targets += [("HEAD", "/files/" + "./" * k + name, name), ("HEAD", "/files/" + "%2E/" * k + name, name)]
    return targets


def range_spec(size_hint, rng):
    """A Range value (bytes=a-b, a- or -n) around a size the file has had."""
    form = rng.randrange(3)
    if form == 2:
        return f"bytes=-{rng.randint(1, size_hint)}"
    first = rng.randrange(size_hint) if rng.random() < 0.8 else rng.randrange(size_hint, 2 * size_hint)
    if form == 1:
        return f"bytes={first}-"
    return f"bytes={first}-{first + rng.randint(0, size_hint)}"


def expected_part(spec, size):
    """(first, last) a satisfiable spec asks of a file of size bytes, or None if nothing fits."""
    first, last = spec[len("bytes="):].split("-")
    if not first:
        n = int(last)
        return (max(size - n, 0), size - 1) if n and size else None
    first = int(first)
    if first >= size:
        return None
    return first, min(int(last), size - 1) if last else size - 1


# -- the files ----------------------------------------------------------------------------

@dataclass
class Plan:
    hot: list           # 6-8 MiB, read slowly, replaced and uploaded to
    varied: list        # 1 KiB - 8 MiB, replaced now and then
    uploaded: list      # upload targets (besides hot)
    churn: list         # small, never changed: there to overflow the cache


def log_uniform(rng, low, high):
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def file_size(name, plan, rng):
    if name in plan.hot:
        return rng.randint(HOT_MIN_SIZE, 8 * MiB)
    if name in plan.churn:
        return rng.randint(1 * KiB, 4 * KiB)
    return log_uniform(rng, 1 * KiB, 8 * MiB)


def write_initial_files(directory, ledger, rng):
    plan = Plan(hot=[f"hot{i}.bin" for i in range(4)], varied=[f"f{i:02d}.bin" for i in range(16)],
                uploaded=[f"up{i}.bin" for i in range(3)], churn=[f"c{i:03d}.bin" for i in range(CHURN_FILES)])
    for name in plan.hot + plan.varied + plan.uploaded + plan.churn:
        _, data = ledger.new_version(name, file_size(name, plan, rng), "initial")
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    return plan


# -- the soak ---------------------------------------------------------------------------

class Soak:
    """Clients against a server already listening on 127.0.0.1:port and serving directory."""

    def __init__(self, port, directory, duration, seed=None):
        self.port = port
        self.directory = directory
        self.duration = duration
        self.seed = random.randrange(1 << 32) if seed is None else seed
        self.ledger = Ledger()
        self.tally = Tally()
        self.plan = write_initial_files(directory, self.ledger, random.Random(self.seed))
        self.deadline = None

    def running(self):
        return time.monotonic() < self.deadline

    def connect(self):
        """A new keep-alive Connection, or None (counted as a socket error) after a short pause."""
        try:
            return Connection(self.port)
        except OSError as error:
            self.tally.socket_error(f"connect: {type(error).__name__}")
            self.nap(0.05)
            return None

    def nap(self, seconds):
        """Sleep, but not past the deadline."""
        time.sleep(max(min(seconds, self.deadline - time.monotonic()), 0))

    def run(self):
        """Run every client until the duration is over; return the summary."""
        clients = ([self.slow_reader] * SLOW_READERS + [self.mixed_reader] * 3 + [self.prober] + [self.replacer]
                   + [self.uploader] * 2 + [self.churner] * 2)
        started = time.monotonic()
        self.deadline = started + self.duration
        threads = [threading.Thread(target=self._guarded, args=(client, self.seed + i), daemon=True,
                                    name=f"{client.__name__}-{i}") for i, client in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:      # every read has a timeout and every loop a deadline
            thread.join(max(self.deadline - time.monotonic(), 0) + MAX_SLOW_RESPONSE_SECONDS + 2 * SOCKET_TIMEOUT)
        for thread in threads:
            if thread.is_alive():
                self.tally.crashes.append(f"{thread.name} still running after the deadline")
        return self.summary(time.monotonic() - started)

    def _guarded(self, client, seed):
        try:
            client(random.Random(seed))
        except Exception as error:    # a bug in the soak itself: reported, and fails the run
            self.tally.crashes.append(f"{client.__name__}: {error!r}")

    # -- clients --

    def slow_reader(self, rng):
        """Plain GETs of large files through a 4 KiB window, stalled past the 1 s revalidation."""
        conn = None
        while self.running():
            name = rng.choice(self.plan.hot)
            target = f"/files/{name}" if rng.random() < 0.8 else alias(name, rng)
            pace = Pace(chunk=rng.choice((4, 8, 16)) * KiB, pause=rng.uniform(0.002, 0.01),
                        stall_after=rng.randint(1, 64 * KiB), stall=rng.uniform(*STALL_SECONDS),
                        slow_for=rng.uniform(0.2, 1.5))
            headers = [("Connection", "close")] if rng.random() < 0.1 else []
            conn = self.exchange(conn, "slow get", "GET", target, name, headers, pace, rcvbuf=SLOW_RCVBUF)
        if conn:
            conn.close()

    def mixed_reader(self, rng):
        """GET, Range, HEAD and gzip of every kind of file, at varying speeds, some with Connection: close."""
        conn = None
        names = self.plan.hot + self.plan.varied + self.plan.uploaded
        while self.running():
            name = rng.choice(names) if rng.random() < 0.9 else rng.choice(self.plan.churn)
            target = f"/files/{name}" if rng.random() < 0.75 else alias(name, rng)
            headers = []
            kind, method = rng.choices([("get", "GET"), ("range", "GET"), ("head", "HEAD"), ("gzip", "GET")],
                                       [35, 20, 20, 25])[0]
            if kind == "range":
                headers.append(("Range", range_spec(min(self.ledger.sizes(name)), rng)))
            elif kind == "gzip":
                headers.append(("Accept-Encoding", rng.choice(("gzip", "gzip, deflate", "br;q=1, gzip;q=0.5"))))
            if rng.random() < 0.15:
                headers.append(("Connection", "close"))
            pace = FAST
            if rng.random() < 0.3:
                pace = Pace(chunk=32 * KiB, pause=rng.uniform(0.0005, 0.003), slow_for=MAX_SLOW_RESPONSE_SECONDS)
            conn = self.exchange(conn, kind, method, target, name, headers, pace)
        if conn:
            conn.close()

    def replacer(self, rng):
        """Replace files by rename: write a temporary file in the directory, then os.replace."""
        while self.running():
            name = rng.choice(self.plan.hot) if rng.random() < 0.5 else rng.choice(self.plan.varied)
            size = self.ledger.latest(name).size if rng.random() < 0.5 else file_size(name, self.plan, rng)
            _, data = self.ledger.new_version(name, size, "renamed")
            fd, temp_path = tempfile.mkstemp(prefix=".replace-", dir=self.directory)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(temp_path, os.path.join(self.directory, name))
            time.sleep(rng.uniform(0.05, 0.15))

    def uploader(self, rng):
        """POST /files/NAME: on each connection one or two complete uploads, then usually one cut off.

        The cut-off upload comes on a connection already open, so the worker's
        next descriptor goes to its temporary file (not to an accepted
        socket); most of its body is sent, then the connection is held a
        while and closed.  Its bytes must never be served.
        """
        while self.running():
            conn = self.connect()
            if conn is None:
                continue
            try:
                for _ in range(rng.randint(1, 2)):
                    self.upload(conn, rng)
                if rng.random() < 0.8 and self.running():
                    name = rng.choice(self.plan.hot + self.plan.uploaded)
                    size = file_size(name, self.plan, rng)
                    _, body = self.ledger.new_aborted_upload(name, size)
                    self.tally.requested(f"/files/{name}")
                    conn.send(request_bytes("POST", f"/files/{name}", [("Content-Length", size)]))
                    conn.send(body[:int(size * rng.uniform(0.3, 0.95))])
                    self.nap(rng.uniform(0.2, 1.5))
                    with self.tally.lock:
                        self.tally.uploads["aborted"] += 1
            except (OSError, ValueError, Truncated) as error:
                self.tally.socket_error(f"upload: {type(error).__name__}")
            finally:
                conn.close()
            time.sleep(rng.uniform(0.0, 0.1))

    def upload(self, conn, rng):
        name = rng.choice(self.plan.hot + self.plan.uploaded)
        size = file_size(name, self.plan, rng)
        target = f"/files/{name}"
        self.tally.requested(target)
        _, body = self.ledger.new_version(name, size, "uploaded")   # before its first byte is sent
        conn.send(request_bytes("POST", target, [("Content-Length", size)], body))
        status, headers = conn.read_head()
        conn.read_body(int(headers.get("content-length", 0)))
        if status == 201:
            with self.tally.lock:
                self.tally.uploads["completed"] += 1
        else:
            self.tally.mismatch(f"upload status {status}", f"POST {target}", f"{size} bytes")

    def churner(self, rng):
        """Cycle through > 1,100 distinct targets on one connection (so one worker), pipelined by 32.

        A cycle takes about CHURN_CYCLE_SECONDS, and a rest of up to twice
        that follows: while churn refills freed descriptor numbers at once,
        nothing else (an upload's temporary file, say) gets one.
        """
        targets = churn_targets(self.plan.churn, self.plan.hot + self.plan.uploaded)
        batch_size = 32
        pause = CHURN_CYCLE_SECONDS / (len(targets) / batch_size)
        while self.running():
            rng.shuffle(targets)
            conn = self.connect()
            if conn is None:
                continue
            try:
                for start in range(0, len(targets), batch_size):
                    if not self.running():
                        break
                    batch = targets[start:start + batch_size]
                    conn.send(b"".join(request_bytes(method, target) for method, target, _ in batch))
                    for method, target, name in batch:
                        self.tally.requested(target)
                        status, headers = conn.read_head()
                        body = conn.read_body(int(headers.get("content-length", 0))) if method == "GET" else b""
                        self.check(f"{method} {target}", "churn", name, status, headers, body)
                    time.sleep(pause)
            except (OSError, ValueError, Truncated) as error:
                self.tally.socket_error(f"churn: {type(error).__name__}")
            finally:
                conn.close()
            self.nap(rng.uniform(0, 2 * CHURN_CYCLE_SECONDS))

    def prober(self, rng):
        """HEADs of the large files under the very targets slow readers use, on PROBE_CONNECTIONS kept-alive
        connections (so on both workers, and without opening descriptors of their own).

        A HEAD takes the cached path, so a worker stat()s the file and, once it
        was replaced or a second has passed, drops its entry and descriptor.
        """
        connections = []
        while self.running():
            try:
                while len(connections) < PROBE_CONNECTIONS:
                    connections.append(Connection(self.port))
            except OSError as error:
                self.tally.socket_error(f"connect: {type(error).__name__}")
                self.nap(0.05)
                continue
            for conn in list(connections):
                batch = [f"/files/{rng.choice(self.plan.hot)}" for _ in range(2)]
                try:
                    conn.send(b"".join(request_bytes("HEAD", target) for target in batch))
                    for target in batch:
                        status, headers = conn.read_head()
                        self.check(f"HEAD {target}", "probe", target[len("/files/"):], status, headers, b"")
                except (OSError, ValueError) as error:
                    self.tally.socket_error(f"probe: {type(error).__name__}")
                    conn.close()
                    connections.remove(conn)
            time.sleep(rng.uniform(0.005, 0.015))
        for conn in connections:
            conn.close()

    # -- one request and its check --

    def exchange(self, conn, kind, method, target, name, headers, pace, rcvbuf=None):
        """Send one request on conn (a new connection if None), read and check the answer.

        Returns the connection to use next, None when it was closed.
        """
        request = f"{method} {target}" + "".join(f" [{k}: {v}]" for k, v in headers)
        self.tally.requested(target)
        if conn is None:
            try:
                conn = Connection(self.port, rcvbuf)
            except OSError as error:
                self.tally.socket_error(f"connect: {type(error).__name__}")
                self.nap(0.05)
                return None
        try:
            conn.send(request_bytes(method, target, headers))
            started = time.monotonic()
            status, response_headers = conn.read_head()
            length = 0 if method == "HEAD" else int(response_headers.get("content-length", -1))
            if length < 0:
                self.tally.mismatch("no Content-Length", request, str(response_headers))
                conn.close()
                return None
            try:
                body = conn.read_body(length, pace, hurry_at=self.deadline)
            except Truncated as cut:
                self.check_truncated(request, name, status, response_headers, cut.body)
                raise
            finally:
                with self.tally.lock:
                    self.tally.longest_response_s = max(self.tally.longest_response_s, time.monotonic() - started)
                    self.tally.stalled_responses += conn.stalled > 1.1
        except (OSError, ValueError, Truncated) as error:
            what = "truncated body" if isinstance(error, Truncated) else type(error).__name__
            self.tally.socket_error(f"{kind}: {what}")
            conn.close()
            return None
        range_value = dict(headers).get("Range")
        self.check(request, kind, name, status, response_headers, body, range_value, target)
        if response_headers.get("connection", "").lower() == "close" or ("Connection", "close") in headers:
            conn.close()
            return None
        return conn

    def check(self, request, kind, name, status, headers, body, range_value=None, target=""):
        """Count the response and record every way it is wrong."""
        ledger, tally = self.ledger, self.tally
        method = request.split(" ", 1)[0]
        if status == 403 and target.startswith("/files//"):
            tally.count("alias refused (403)")
            return
        etag = ETAG.fullmatch(headers.get("etag", ""))
        if method == "HEAD":
            tally.count("head" if kind == "head" else f"{kind} (HEAD)")
            length = int(headers.get("content-length", -1))
            if status != 200:
                tally.mismatch(f"status {status}", request, headers.get("content-length", ""))
            elif length not in ledger.sizes(name):
                tally.mismatch("HEAD length", request, f"Content-Length {length}, sizes {sorted(ledger.sizes(name))}")
            elif etag is None or int(etag.group(3), 16) != length:
                tally.mismatch("ETag", request, f"ETag {headers.get('etag')} with Content-Length {length}")
            return
        if status == 206 and range_value:
            tally.count("range 206")
            self.check_part(request, name, headers, body, range_value, etag)
            return
        if status == 416 and range_value:
            tally.count("range 416")
            match = UNSATISFIED_RANGE.fullmatch(headers.get("content-range", ""))
            if not match or int(match.group(1)) not in ledger.sizes(name) or \
                    expected_part(range_value, int(match.group(1))) is not None:
                tally.mismatch("416", request, f"Content-Range {headers.get('content-range')}")
            return
        if status != 200:
            tally.mismatch(f"status {status}", request, body[:200].decode("latin-1"))
            return
        if headers.get("content-encoding") == "gzip":
            tally.count("gzip")
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error) as error:
                tally.mismatch("gzip body", request, f"does not decompress: {error}")
                return
            if etag is None or not etag.group(1) or not etag.group(4) or int(etag.group(3), 16) != len(body):
                tally.mismatch("ETag", request, f"ETag {headers.get('etag')} for {len(body)} bytes decompressed")
        else:
            tally.count({"gzip": "gzip asked, identity", "range": "range ignored (200)"}.get(kind, kind))
            if etag is None or etag.group(1) or int(etag.group(3), 16) != len(body):
                tally.mismatch("ETag", request, f"ETag {headers.get('etag')} for a {len(body)}-byte body")
        if ledger.find(name, body) is None:
            source, how = ledger.diagnose(name, body)
            tally.mismatch("body", request, f"{len(body)} bytes, {source}: {how}", source)

    def check_part(self, request, name, headers, body, range_value, etag):
        match = CONTENT_RANGE.fullmatch(headers.get("content-range", ""))
        if not match:
            self.tally.mismatch("Content-Range", request, f"{headers.get('content-range')!r}")
            return
        first, last, size = map(int, match.groups())
        if expected_part(range_value, size) != (first, last) or len(body) != last - first + 1:
            self.tally.mismatch("Content-Range", request, f"{match.group(0)} with {len(body)} bytes")
            return
        if etag is None or int(etag.group(3), 16) != size:
            self.tally.mismatch("ETag", request, f"ETag {headers.get('etag')} with {match.group(0)}")
        candidates = self.ledger.of_size(name, size)
        if not candidates:
            self.tally.mismatch("Content-Range", request, f"{match.group(0)}: no version of {size} bytes")
        elif not any(version_bytes(v.label, size, first, last + 1) == body for v in candidates):
            source, how = self.ledger.diagnose(name, body, first)
            self.tally.mismatch("range body", request, f"{match.group(0)}, {source}: {how}", source)

    def check_truncated(self, request, name, status, headers, prefix):
        """A body cut short is a socket error, but the bytes that did arrive must still be right."""
        if status not in (200, 206) or headers.get("content-encoding") or not prefix:
            return
        match = CONTENT_RANGE.fullmatch(headers.get("content-range", ""))
        if status == 206 and match:
            first, _, size = map(int, match.groups())
        else:
            first, size = 0, int(headers.get("content-length", -1))
        if not any(version_bytes(v.label, size, first, first + len(prefix)) == prefix
                   for v in self.ledger.of_size(name, size)):
            source, how = self.ledger.diagnose(name, prefix, first)
            self.tally.mismatch("truncated body", request, f"{len(prefix)} of {size} bytes, {source}: {how}", source)

    def summary(self, elapsed):
        tally, ledger = self.tally, self.ledger
        return {
            "duration_s": round(elapsed, 1),
            "seed": self.seed,
            "responses_checked": dict(sorted(tally.checked.items())),
            "responses_checked_total": sum(tally.checked.values()),
            "distinct_targets": len(tally.targets),
            "stalled_responses": tally.stalled_responses,
            "longest_response_s": round(tally.longest_response_s, 2),
            "versions_written": dict(ledger.written),
            "uploads": {"completed": tally.uploads["completed"], "aborted": tally.uploads["aborted"]},
            "socket_errors": dict(sorted(tally.socket_errors.items())),
            "mismatches": sum(tally.mismatches.values()),
            "mismatches_by_kind": dict(sorted(tally.mismatches.items())),
            "wrong_bytes_from": dict(sorted(tally.wrong_bytes_from.items())),
            "mismatch_examples": tally.examples,
            "client_crashes": tally.crashes,
        }


# -- the server -----------------------------------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compiled_loop_of(supervisor_pid):
    """The path of the compiled loop (core/loop_c*.so) core's first worker has mapped; None: pure Python.

    The path matters: with the package also installed in editable mode from
    another checkout, a missing local build silently loads that checkout's.
    """
    from core.server import LOOP_MODULES
    compiled_loop = LOOP_MODULES[0]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{supervisor_pid}/task/{supervisor_pid}/children") as f:
            workers = f.read().split()
        if workers:
            with open(f"/proc/{workers[0]}/maps") as f:
                paths = {line.split(None, 5)[-1].strip() for line in f if f"/{compiled_loop}." in line}
            return min(paths) if paths else None
        time.sleep(0.05)
    raise RuntimeError("core started no worker")


class CoreServer:
    """python -m core --workers 2 from this checkout, stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self, directory, pure):
        env = dict(os.environ)
        if pure:
            env["CORE_PURE_PYTHON"] = "1"
            env.pop("CORE_REQUIRE_COMPILED", None)
        else:
            env.pop("CORE_PURE_PYTHON", None)
            env["CORE_REQUIRE_COMPILED"] = "1"      # a missing compiled build fails at start
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "core", "--host", "127.0.0.1", "--port", "0", "--directory", directory,
             "--workers", "2", "--graceful-timeout", "5"],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr)
        line = self.process.stdout.readline().decode()
        if not line.startswith("Listening on http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"core did not start: {line!r}\n{self.errors()}")
        self.port = int(line.rsplit(":", 1)[1])

    def errors(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process.stdout.close()


def print_summary(summary, out=sys.stdout):
    def line(label, counts):
        items = ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"
        print(f"{label:<20}{items}", file=out)

    print(f"integrity soak: {summary.get('server', 'core')} ({summary.get('event_loop', '?')}), "
          f"{summary['duration_s']} s, seed {summary['seed']}", file=out)
    line("responses checked", {"total": summary["responses_checked_total"], **summary["responses_checked"]})
    print(f"{'':<20}{summary['distinct_targets']:,} distinct targets; {summary['stalled_responses']:,} "
          f"responses stalled > 1.1 s; longest {summary['longest_response_s']} s", file=out)
    line("versions written", summary["versions_written"])
    line("uploads", summary["uploads"])
    line("socket errors", summary["socket_errors"])
    line("mismatches", {"total": summary["mismatches"], **summary["mismatches_by_kind"]})
    if summary["wrong_bytes_from"]:
        line("  wrong bytes from", summary["wrong_bytes_from"])
    for example in summary["mismatch_examples"]:
        print(f"  {example['what']}: {example['request']}: {example['detail']}", file=out)
    for crash in summary["client_crashes"]:
        print(f"  client crashed: {crash}", file=out)
    if summary.get("server_errors"):
        print(f"server stderr:\n{summary['server_errors']}", file=out)


def failed(summary) -> bool:
    return summary["mismatches"] > 0 or bool(summary["client_crashes"])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench integrity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30, help="seconds of load (default 30)")
    parser.add_argument("--pure", action="store_true", help="run core's pure-Python loop (CORE_PURE_PYTHON=1)")
    parser.add_argument("--json", metavar="PATH", help="also write the summary as JSON to PATH")
    parser.add_argument("--seed", type=int, help="seed for the clients' choices (default: random)")
    args = parser.parse_args(argv)

    directory = tempfile.mkdtemp(prefix="integrity-")
    try:
        soak = Soak(0, directory, args.duration, args.seed)     # writes the initial files
        server = CoreServer(directory, args.pure)
        try:
            soak.port = server.port
            compiled = compiled_loop_of(server.process.pid)
            loop = "compiled" if compiled else "pure-Python"
            if args.pure and compiled:
                raise RuntimeError(f"core runs its compiled loop ({compiled}), not pure Python")
            if not args.pure and not (compiled or "").startswith(os.path.join(REPO, "core", "")):
                raise RuntimeError(f"core runs {compiled or 'pure Python'}, not the compiled loop of {REPO}: "
                                   "build it with `python setup.py build_ext --inplace`")
            print(f"integrity soak: {args.duration:g} s against core ({loop}) on 127.0.0.1:{server.port}",
                  file=sys.stderr)
            summary = soak.run()
        finally:
            server.stop()
        summary = {"server": "core-py" if args.pure else "core", "event_loop": loop, **summary,
                   "server_errors": server.errors().strip()[-4000:]}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print_summary(summary)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 1 if failed(summary) else 0


if __name__ == "__main__":
    sys.exit(main())
