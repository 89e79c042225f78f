"""A load client that counts the bytes every connection receives (for ``python -m bench seed-scale``).

    python -m bench.bytes_client --port P --path /files/50m.bin --clients 4000 --duration 60

Each of ``clients`` keep-alive connections asks for ``path``, reads the response, and asks
again, until ``duration`` seconds after the first connect; a connection that fails is opened
again (after BACKOFF_S) under the same client number.  wrk counts only completed responses,
and 4,000 clients × 50 MB cannot complete in a minute: here every byte is counted for the
client that received it, so "how many clients were actually served, and how evenly" has an
answer.  Prints one JSON object (see ``run``).

One process, one thread, level-triggered epoll, every read into one reused buffer: the
per-read cost is a few µs of Python against tens of µs of kernel copy for a full read, so
the client's own CPU share (``client_cpu_share``, 1.0 = one core) says whether it was the
ceiling.  Only 127.0.0.1 / ::1 are accepted.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import resource
import select
import socket
import statistics
import sys
import time

MIB = 1024 * 1024
READ_SIZE = 1024 * 1024
MAX_HEAD = 64 * 1024
BACKOFF_S = 0.05  # before opening a failed client's connection again
LOOPBACK = ("127.0.0.1", "::1", "localhost")

CONNECTING, HEAD, BODY = 0, 1, 2


class Client:
    """One client number: its current socket and what it has received over all its sockets."""

    __slots__ = ("index", "sock", "state", "head", "left", "status", "bytes", "responses", "established")

    def __init__(self, index: int):
        self.index = index
        self.sock: socket.socket | None = None
        self.state = CONNECTING
        self.head = bytearray()
        self.left = 0
        self.status = 0
        self.bytes = 0
        self.responses = 0
        self.established = False


def raise_nofile(wanted: int) -> int:
    """Raise the soft descriptor limit to ``wanted`` (capped at the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def parse_head(head: bytes) -> tuple[int, int | None]:
    """(status, Content-Length or None) of a response head (without the blank line)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return int(parts[1]), length


def _percentiles(values: list[int]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"min": ordered[0], "p10": pick(0.10), "median": statistics.median(ordered), "p90": pick(0.90),
            "max": ordered[-1]}  # fmt: skip


def run(port: int, path: str, clients: int, duration: float, host: str = "127.0.0.1",
        read_size: int = READ_SIZE) -> dict:  # fmt: skip
    """Run the load; the counts (per client and in total) as a JSON-ready dict."""
    if host not in LOOPBACK:
        raise ValueError(f"bytes_client only loads this machine (127.0.0.1 or ::1), not {host!r}")
    nofile = raise_nofile(clients + 64)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address = (host, port)
    host_field = f"[{host}]" if family == socket.AF_INET6 else host
    request = f"GET {path} HTTP/1.1\r\nHost: {host_field}:{port}\r\n\r\n".encode()
    buffer = bytearray(read_size)
    view = memoryview(buffer)
    poller = select.epoll(sizehint=clients)
    by_fd: dict[int, Client] = {}
    errors: dict[str, int] = {}
    statuses: dict[int, int] = {}
    counts = {"connects": 0, "established": 0, "completed": 0, "closed_idle": 0}
    retry: list[tuple[float, Client]] = []  # (when, client) to open again

    def note_error(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    def open_connection(c: Client) -> None:
        c.state, c.head, c.left = CONNECTING, bytearray(), 0
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:  # out of descriptors, most likely
            note_error(errno.errorcode.get(exc.errno, str(exc.errno)))
            retry.append((time.monotonic() + BACKOFF_S, c))
            return
        sock.setblocking(False)
        counts["connects"] += 1
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            note_error(errno.errorcode.get(code, str(code)))
            retry.append((time.monotonic() + BACKOFF_S, c))
            return
        c.sock = sock
        by_fd[sock.fileno()] = c
        poller.register(sock.fileno(), select.EPOLLOUT)

    def drop(c: Client, kind: str | None, again_after: float = BACKOFF_S) -> None:
        if kind:
            note_error(kind)
        sock = c.sock
        c.sock = None
        if sock is not None:
            fd = sock.fileno()
            poller.unregister(fd)
            del by_fd[fd]
            sock.close()
        if again_after <= 0:
            open_connection(c)
        else:
            retry.append((time.monotonic() + again_after, c))

    def send_request(c: Client) -> bool:
        try:
            c.sock.send(request)  # a few dozen bytes into an empty send buffer: all or an error
        except OSError as exc:
            drop(c, errno.errorcode.get(exc.errno, str(exc.errno)))
            return False
        c.state = HEAD
        return True

    def complete(c: Client) -> None:
        c.responses += 1
        counts["completed"] += 1
        statuses[c.status] = statuses.get(c.status, 0) + 1
        c.state = HEAD
        send_request(c)

    table = [Client(i) for i in range(clients)]
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    deadline = started + duration
    for c in table:
        open_connection(c)

    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if retry:
            due = [c for when, c in retry if when <= now]
            if due:
                retry[:] = [(when, c) for when, c in retry if when > now]
                for c in due:
                    open_connection(c)
        for fd, events in poller.poll(min(deadline - now, 0.1), 1024):
            c = by_fd.get(fd)
            if c is None:
                continue
            if c.state == CONNECTING:
                code = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    drop(c, errno.errorcode.get(code, str(code)))
                    continue
                if not c.established:
                    c.established = True
                    counts["established"] += 1
                poller.modify(fd, select.EPOLLIN)
                send_request(c)
                continue
            try:
                n = c.sock.recv_into(view)
            except BlockingIOError:
                continue
            except OSError as exc:
                drop(c, errno.errorcode.get(exc.errno, str(exc.errno)))
                continue
            if n == 0:
                if c.state == HEAD and not c.head:
                    counts["closed_idle"] += 1  # the server ended a keep-alive connection between responses
                    drop(c, None, again_after=0)
                else:
                    drop(c, "closed mid-response")
                continue
            c.bytes += n
            if c.state == BODY:
                c.left -= n
                if c.left <= 0:
                    if c.left < 0:
                        drop(c, "more bytes than Content-Length")
                    else:
                        complete(c)
                continue
            c.head += view[:n]
            end = c.head.find(b"\r\n\r\n")
            if end < 0:
                if len(c.head) > MAX_HEAD:
                    drop(c, "response head too long")
                continue
            try:
                c.status, length = parse_head(bytes(c.head[:end]))
            except ValueError:
                drop(c, "bad response head")
                continue
            if length is None:
                drop(c, "no Content-Length")
                continue
            c.left = length - (len(c.head) - end - 4)
            c.head = bytearray()
            if c.left < 0:
                drop(c, "more bytes than Content-Length")
            elif c.left == 0:
                complete(c)
            else:
                c.state = BODY

    elapsed = time.monotonic() - started
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    in_flight = sum(1 for c in table if c.sock is not None and c.state != CONNECTING)
    connecting = sum(1 for c in table if c.sock is not None and c.state == CONNECTING)
    for c in table:
        if c.sock is not None:
            c.sock.close()
    poller.close()
    per_client = [c.bytes for c in table]
    total = sum(per_client)
    cpu = (usage_after.ru_utime - usage_before.ru_utime) + (usage_after.ru_stime - usage_before.ru_stime)
    return {
        "clients": clients,
        "duration_s": round(elapsed, 3),
        "bytes": total,
        "gib_s": total / elapsed / (1024**3) if elapsed > 0 else 0.0,
        "clients_established": counts["established"],
        "clients_1mib": sum(1 for b in per_client if b >= MIB),
        "clients_any_byte": sum(1 for b in per_client if b > 0),
        "connects": counts["connects"],
        "connecting_at_end": connecting,
        "in_flight_at_end": in_flight,
        "completed": counts["completed"],
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "closed_idle": counts["closed_idle"],
        "socket_errors": sum(errors.values()),
        "errors": errors,
        "bytes_per_client": _percentiles(per_client),
        "client_cpu_s": round(cpu, 3),
        "client_cpu_share": cpu / elapsed if elapsed > 0 else None,
        "nofile": nofile,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bytes_client", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", choices=LOOPBACK)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--duration", type=float, required=True, help="seconds from the first connect")
    p.add_argument("--read-size", type=int, default=READ_SIZE, help="bytes per recv (default 1 MiB)")
    args = p.parse_args(argv)
    result = run(args.port, args.path, args.clients, args.duration, args.host, args.read_size)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
