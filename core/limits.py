"""Every limit of core in one place, each with its default.

The parser and the server read these; neither hard-codes a number.  A limit is
enforced while bytes are being buffered, so a peer can never make us hold more
than the limit before we answer.
"""
from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Limits:
    # RFC 9112 §3: a request line longer than this gets 414 URI Too Long.
    max_request_line: int = 8 * KiB
    # RFC 6585 §5: a header section over this size (field lines plus the final
    # CRLF) or with more fields than this gets 431.
    max_header_bytes: int = 16 * KiB
    max_header_count: int = 100
    # A body over this size gets 413 Content Too Large, decided from
    # Content-Length before reading, or per chunk for chunked bodies.
    max_body_bytes: int = 100 * MiB
    # A chunk-size line (size plus extensions) longer than this is malformed.
    max_chunk_line: int = 4 * KiB


DEFAULT_LIMITS = Limits()
