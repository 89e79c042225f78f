"""Every limit of core in one place, each with its default.

The parser and the server read these; neither hard-codes a number.  A limit is
enforced while bytes are being buffered, so a peer can never make us hold more
than the limit before we answer.
"""
import os
from collections import namedtuple

KiB = 1024
MiB = 1024 * KiB


# The most connections with whole send buffers, whatever the machine (--unbounded-connections).
UNBOUNDED_CEILING = 64


def unbounded_share(pressure_bytes: int, wmem_max: int) -> int:
    """How many connections may fill whole send buffers on this machine: at most UNBOUNDED_CEILING.

    Their buffers at the largest (tcp_wmem's maximum) take at most a quarter of
    the TCP memory past which the kernel is under pressure (tcp_mem's second
    value); the rest is left to receive buffers, the bounded connections and the
    machine's other sockets.  64 on this 24 GiB machine (93 would fit), about 7 on
    a 2 GiB one (its kernel puts pressure at ~1/16 of the memory).
    """
    return max(1, min(UNBOUNDED_CEILING, pressure_bytes // 4 // max(wmem_max, 1)))


def kernel_unbounded_share(sysctl_dir: str = "/proc/sys/net/ipv4") -> int:
    """unbounded_share() of this machine's kernel; UNBOUNDED_CEILING where it does not say."""
    try:
        with open(os.path.join(sysctl_dir, "tcp_mem")) as tcp_mem, \
                open(os.path.join(sysctl_dir, "tcp_wmem")) as tcp_wmem:
            pressure_pages = int(tcp_mem.read().split()[1])
            wmem_max = int(tcp_wmem.read().split()[2])
    except (OSError, ValueError, IndexError):
        return UNBOUNDED_CEILING
    return unbounded_share(pressure_pages * os.sysconf("SC_PAGE_SIZE"), wmem_max)


# Each limit's name and default, in the order --help lists them.
_DEFAULTS = {
    # RFC 9112 §3: a request line longer than this gets 414 URI Too Long.
    "max_request_line": 8 * KiB,
    # RFC 6585 §5: a header section over this size (field lines plus the final
    # CRLF) or with more fields than this gets 431.
    "max_header_bytes": 16 * KiB,
    "max_header_count": 100,
    # A body over this size gets 413 Content Too Large, decided from
    # Content-Length before reading, or per chunk for chunked bodies.
    "max_body_bytes": 100 * MiB,
    # A chunk-size line (size plus extensions) longer than this is malformed.
    "max_chunk_line": 4 * KiB,
    # Files up to this size are gzip-compressed once, when a client accepts
    # gzip and no name.gz lies beside them, and kept in memory; larger ones
    # are always sent as they are (never compressed per request).
    "gzip_max_file_bytes": 1 * MiB,
    # The compressed copies of one worker take at most this much memory;
    # the least recently used are dropped first.
    "gzip_cache_bytes": 32 * MiB,
    # Compressing runs in the event loop, so one worker compresses at most
    # this many bytes of files per second (a token bucket that holds up to
    # max(this, gzip_max_file_bytes)); a file not yet in the cache asked for
    # beyond that is sent as it is.  Text compresses at ~35 MiB/s at level 6
    # (README, "File semantics"), so the default bounds compression to about
    # 11% of a worker's time, and one compression to gzip_max_file_bytes.
    "gzip_bytes_per_second": 4 * MiB,

    # Timeouts, in seconds (nginx's client_header/body, keepalive and send
    # timeouts are the model; ours are shorter, as uvicorn's and Node's are).
    # A request head must arrive whole within header_timeout of its first
    # byte (a slowloris client sending a byte a second gets 408).
    "header_timeout": 10.0,
    # The body may pause at most this long between reads (then 408).
    "body_timeout": 30.0,
    # An idle keep-alive connection is closed after this long.  The clock
    # starts only once the last response has been sent in full.
    "keepalive_timeout": 15.0,
    # A client that accepts no byte of its response for this long is dropped.
    "send_timeout": 30.0,
    # After an error response we keep reading (and discarding) for this long
    # before closing, so the client gets the response rather than a reset.
    "linger_timeout": 2.0,

    # Connections one worker serves at once; at the limit it stops accepting
    # until one closes, and the kernel's backlog holds the rest.
    "max_connections": 16384,
    # Connections whose responses may fill a whole send buffer (the kernel
    # autotunes it up to tcp_wmem's maximum, 4 MiB by default): few wake-ups
    # for a client that reads fast.  For the whole server, since the kernel's
    # TCP memory is the machine's: each of N workers takes 1/N of it.  A
    # connection a worker accepts beyond its part keeps at most 1 MiB of its
    # response not yet sent (TCP_NOTSENT_LOWAT), so thousands of slow readers
    # of large files cannot hold that memory under pressure (README, "Responses").
    # 64, or fewer on a machine with little TCP memory (unbounded_share).
    "unbounded_connections": kernel_unbounded_share(),
    # Requests on one keep-alive connection before we answer with close.
    "max_keepalive_requests": 100_000,
}


class Limits(namedtuple("Limits", _DEFAULTS, defaults=_DEFAULTS.values())):
    """One server's limits, immutable: Limits(max_body_bytes=...) changes some, keeps the rest."""
    __slots__ = ()


DEFAULT_LIMITS = Limits()
