"""The rules of RFC 9112 that decide a request's framing and fate.

Both parsers -- the readable pure-Python one (``_parser_py``) and the compiled
one (``_parser_c.pyx``) -- scan bytes their own way but take every decision
here: which bytes a token or a field value may hold, which version we speak,
what Content-Length and Transfer-Encoding mean together, whether the
connection stays open, and which status each mistake earns.  One source, so
the two cannot drift.
"""
from .errors import ParseError, echo

# RFC 9110 §5.6.2: tchar.  Methods and field names are tokens.
TCHAR = frozenset(
    b"!#$%&'*+-.^_`|~0123456789"
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
# RFC 9110 §5.5: a field value is VCHAR, obs-text, SP and HTAB.  Everything
# else (NUL, CR, LF, the other controls, DEL) is refused.
FIELD_VALUE_CHAR = frozenset(b"\t") | frozenset(range(0x20, 0x7F)) | frozenset(range(0x80, 0x100))
# RFC 9112 §3.2: the request-target is printable ASCII with no spaces.
TARGET_CHAR = frozenset(range(0x21, 0x7F))
# The same sets as bytes, for ``data.translate(None, SET_BYTES)``: what is
# left after deleting the allowed bytes is exactly the disallowed ones.
TCHAR_BYTES = bytes(sorted(TCHAR))
FIELD_VALUE_BYTES = bytes(sorted(FIELD_VALUE_CHAR))
TARGET_BYTES = bytes(sorted(TARGET_CHAR))
# OWS (RFC 9110 §5.6.3).
WHITESPACE = b" \t"


def table(chars) -> bytes:
    """A 256-byte lookup table: 1 where the byte is in chars."""
    return bytes(1 if i in chars else 0 for i in range(256))


# RFC 9112 §2.2 lets a server ignore "at least one empty line" before a
# request line; we ignore a few, and they count as part of the next head, so
# its header timeout runs from the first of them: a client cannot trickle
# CRLFs to keep a connection open forever.
MAX_EMPTY_LINES = 4


def empty_line_before_request(count: int) -> None:
    """Allow the count-th empty line before a request line, or refuse it with 400."""
    if count > MAX_EMPTY_LINES:
        raise ParseError(400, f"more than {MAX_EMPTY_LINES} empty lines before a request line")


def expects_continue(request) -> bool:
    """Whether the client waits for 100 Continue before sending its body (RFC 9110 §10.1.1).

    HTTP/1.0 clients never get a 100: they do not know it.  Expect is a list
    field, so repeated lines are read as one.
    """
    if request.version != b"1.1" or not (request.content_length or request.chunked):
        return False
    values = [value for name, value in request.headers if name.lower() == b"expect"]
    return b"100-continue" in list_items(b", ".join(values))


def check_version(version: bytes) -> int:
    """Return the minor version of HTTP/1.x; 400 if malformed, 505 if not 1.0/1.1."""
    if (len(version) != 8 or not version.startswith(b"HTTP/") or version[6] != 0x2E
            or not (0x30 <= version[5] <= 0x39 and 0x30 <= version[7] <= 0x39)):
        raise ParseError(400, f"malformed HTTP version {echo(version)}")
    if version == b"HTTP/1.1":
        return 1
    if version == b"HTTP/1.0":
        return 0
    raise ParseError(505, f"HTTP version {echo(version)} is not supported (only 1.0 and 1.1)")


# 18 digits cannot overflow a signed 64-bit integer.
MAX_CONTENT_LENGTH_DIGITS = 18


def content_length(value: bytes, previous: int) -> int:
    """Validate one Content-Length field (RFC 9112 §6.3); previous is -1 or the earlier value."""
    if not value or not value.isdigit() or not value.isascii():
        raise ParseError(400, f"Content-Length is not a number: {echo(value)}")
    if len(value) > MAX_CONTENT_LENGTH_DIGITS:
        raise ParseError(400, f"Content-Length overflows: {echo(value)}")
    length = int(value)
    if previous != -1 and previous != length:
        raise ParseError(400, "differing Content-Length fields")
    return length


def list_items(value: bytes):
    """The lower-cased elements of a comma-separated field value (RFC 9110 §5.6.1)."""
    return [item.strip(WHITESPACE).lower() for item in value.split(b",") if item.strip(WHITESPACE)]


def is_chunked(transfer_encoding: bytes) -> bool:
    """RFC 9112 §6.1: chunked must be the final coding; we know no other."""
    codings = list_items(transfer_encoding)
    if not codings:
        raise ParseError(400, "empty Transfer-Encoding")
    for coding in codings[:-1]:
        if coding == b"chunked":
            raise ParseError(400, "chunked is not the final transfer coding")
    for coding in codings:
        if coding != b"chunked":
            raise ParseError(501, f"transfer coding {echo(coding)} is not implemented")
    return True


def finish_head(minor, host_count, length, transfer_encoding, connection, limits):
    """Decide framing and persistence once the whole head is read.

    minor: 0 or 1; host_count: Host fields seen; length: Content-Length or -1;
    transfer_encoding / connection: the fields' values joined by commas, or None.
    Returns (keep_alive, body_length, chunked); body_length is -1 when chunked.
    """
    # RFC 9112 §3.2: exactly one Host on HTTP/1.1, at most one ever.
    if host_count > 1:
        raise ParseError(400, "more than one Host field")
    if minor == 1 and host_count == 0:
        raise ParseError(400, "HTTP/1.1 request without Host")
    chunked = False
    if transfer_encoding is not None:
        # RFC 9112 §6.1/§6.3: both framings at once is how requests get
        # smuggled; HTTP/1.0 has no chunked coding.
        if length != -1:
            raise ParseError(400, "both Content-Length and Transfer-Encoding")
        if minor == 0:
            raise ParseError(400, "Transfer-Encoding in an HTTP/1.0 request")
        chunked = is_chunked(transfer_encoding)
    elif length > limits.max_body_bytes:
        raise ParseError(413, f"body of {length} bytes is over max_body_bytes={limits.max_body_bytes}")
    # RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive".
    keep_alive = minor == 1
    if connection is not None:
        options = list_items(connection)
        if b"close" in options:
            keep_alive = False
        elif b"keep-alive" in options:
            keep_alive = True
    return keep_alive, (-1 if chunked else max(length, 0)), chunked


def chunk_size(line: bytes, total: int, limits) -> int:
    """Parse a chunk-size line without its CRLF (RFC 9112 §7.1); total: body bytes so far."""
    size_hex, _, extension = line.partition(b";")
    if not size_hex or len(size_hex) > 15 or any(c not in HEX_DIGITS for c in size_hex):
        raise ParseError(400, f"invalid chunk size {echo(line)}")
    if any(c not in FIELD_VALUE_CHAR for c in extension):
        raise ParseError(400, f"invalid chunk extension {echo(line)}")
    size = int(size_hex, 16)
    if total + size > limits.max_body_bytes:
        raise ParseError(413, f"chunked body is over max_body_bytes={limits.max_body_bytes}")
    return size


HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
