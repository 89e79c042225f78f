"""T5's requests: what a current Chrome sends for a page, and the check of what comes back.

Every request carries the headers Chrome (143, Linux, over HTTP/1.1) sends when the user opens
a URL -- client hints, Sec-Fetch-*, Accept, Accept-Encoding with br and zstd, Accept-Language,
in Chrome's order.  Every third request is Chrome's revalidation of a page it has cached (a
reload): ``Cache-Control: max-age=0`` with ``If-None-Match`` (and ``If-Modified-Since``, as
Chrome sends both) naming the validators the server gave before the run.  Each server makes
its own ETag, so they are fetched per server, with the same headers, once it is ready.

A 304 answers a revalidation; a 200 answers the others.  wrk's per-response hook cannot tell
which request a response belongs to, so the load run counts what was sent and what came back
(bench/wrk_browser.lua) and ``status_mismatches`` gives the fewest wrong answers those counts
prove; ``check_cycle`` checks every kind of request one by one, exactly, before the run.
"""
from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass

CHROME_MAJOR = 143
USER_AGENT = (f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              f"Chrome/{CHROME_MAJOR}.0.0.0 Safari/537.36")  # fmt: skip
SEC_CH_UA = f'"Google Chrome";v="{CHROME_MAJOR}", "Chromium";v="{CHROME_MAJOR}", "Not A(Brand";v="24"'
ACCEPT_DOCUMENT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,"
                   "*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")  # fmt: skip
ACCEPT_ENCODING = "gzip, deflate, br, zstd"
ACCEPT_LANGUAGE = "en-US,en;q=0.9"
# One request in CONDITIONAL_EVERY revalidates (If-None-Match); the others are first visits.
CONDITIONAL_EVERY = 3


@dataclass
class Validators:
    """What the server answered the browser's first request with."""

    status: int
    etag: str | None
    last_modified: str | None


def navigation_headers(host: str, validators: Validators | None = None) -> list[tuple[str, str]]:
    """Chrome's headers for opening a page, in its order; a reload's with ``validators``."""
    revalidate = validators is not None and validators.etag is not None
    headers = [("Host", host), ("Connection", "keep-alive")]
    if revalidate:
        headers.append(("Cache-Control", "max-age=0"))
    headers += [
        ("sec-ch-ua", SEC_CH_UA),
        ("sec-ch-ua-mobile", "?0"),
        ("sec-ch-ua-platform", '"Linux"'),
        ("Upgrade-Insecure-Requests", "1"),
        ("User-Agent", USER_AGENT),
        ("Accept", ACCEPT_DOCUMENT),
        ("Sec-Fetch-Site", "none"),
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-User", "?1"),
        ("Sec-Fetch-Dest", "document"),
        ("Accept-Encoding", ACCEPT_ENCODING),
        ("Accept-Language", ACCEPT_LANGUAGE),
    ]
    if revalidate:
        headers.append(("If-None-Match", validators.etag))
        if validators.last_modified:
            headers.append(("If-Modified-Since", validators.last_modified))
    return headers


def request_bytes(path: str, headers: list[tuple[str, str]]) -> bytes:
    return (f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("latin-1")


def request_cycle(path: str, host: str, validators: Validators | None) -> list[tuple[int, bytes]]:
    """The requests wrk sends in turn, each with the status it must get.

    Two first visits and one revalidation; a server that gave no ETag cannot be revalidated,
    so it gets first visits only (its 304 share is 0 and the report says so).
    """
    plain = (200, request_bytes(path, navigation_headers(host)))
    if validators is None or validators.etag is None:
        return [plain]
    conditional = (304, request_bytes(path, navigation_headers(host, validators)))
    return [plain] * (CONDITIONAL_EVERY - 1) + [conditional]


def write_cycle(filename: str, cycle: list[tuple[int, bytes]]) -> None:
    """The file bench/wrk_browser.lua reads: per request '<status> <length>\\n' and the bytes."""
    with open(filename, "wb") as f:
        for status, raw in cycle:
            f.write(b"%d %d\n" % (status, len(raw)) + raw)


def _exchange(sock: socket.socket, raw: bytes) -> tuple[int, dict[str, str]]:
    sock.sendall(raw)
    response = http.client.HTTPResponse(sock, method="GET")
    response.begin()
    response.read()
    headers = {k.lower(): v for k, v in response.getheaders()}
    # HTTPResponse closes its own file object, not the socket: the next request reuses it.
    return response.status, headers


def fetch_validators(port: int, path: str, host: str = "127.0.0.1", timeout: float = 10.0) -> Validators:
    """The ETag and Last-Modified the server sends to the browser's first request for ``path``."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        status, headers = _exchange(sock, request_bytes(path, navigation_headers(f"{host}:{port}")))
    return Validators(status, headers.get("etag"), headers.get("last-modified"))


def check_cycle(port: int, cycle: list[tuple[int, bytes]], rounds: int = 2, host: str = "127.0.0.1",
                timeout: float = 10.0, keep_alive: bool = True) -> list[str]:  # fmt: skip
    """Send the cycle ``rounds`` times, one request at a time; one line per wrong status.

    On one keep-alive connection, or a connection per request for a server that closes
    after each response (``keep_alive`` False).
    """
    wrong = []
    sock = None
    try:
        for _ in range(rounds):
            for i, (expected, raw) in enumerate(cycle):
                if sock is None:
                    sock = socket.create_connection((host, port), timeout=timeout)
                status, _ = _exchange(sock, raw)
                if not keep_alive:
                    sock.close()
                    sock = None
                if status != expected:
                    kind = "revalidation" if expected == 304 else "first visit"
                    wrong.append(f"request {i + 1} ({kind}) got {status}, expected {expected}")
    finally:
        if sock is not None:
            sock.close()
    return wrong


def status_mismatches(sent: dict[int, int], got: dict[int, int]) -> int:
    """The fewest wrong answers that the counts prove.

    ``sent``: requests sent per expected status (200, 304); ``got``: responses per status.
    Requests still unanswered when wrk stopped (at most one per connection) are of unknown
    kind, so only answers beyond what was asked for are certain: more 304s than revalidations
    sent, more 200s than first visits sent; any other status is wrong too.
    """
    other = sum(n for status, n in got.items() if status not in (200, 304))
    return (max(0, got.get(304, 0) - sent.get(304, 0)) + max(0, got.get(200, 0) - sent.get(200, 0)) + other)
