"""The rules of RFC 9112 that decide a request's framing and fate.

The request parser (``_parser_py.py``, also compiled as ``core._parser_c``)
reads lines through a byte scanner (``_scan_c.pyx``, or its twin
``_scan_py.py``) that finds line ends, splits lines into their parts and
checks bytes against the classes defined here; the parser tells these rules
what it read.  Every decision is taken here: how long each line may be, how
many fields a head may have, which version we speak, what Content-Length and
Transfer-Encoding mean together, whether the connection stays open, and which
status each mistake earns.  The pure parser imports this file; the compiled
parser cimports this same file compiled as ``core._framing_c``, typed by
``_framing_c.pxd``, so its decisions are C calls.
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
# RFC 9112 §3.2: the request-target is printable ASCII with no spaces, and no
# "#": none of its forms has a fragment (a client never sends one).
TARGET_CHAR = frozenset(range(0x21, 0x7F)) - {ord("#")}
# The same sets as bytes, for ``data.translate(None, SET_BYTES)``: what is
# left after deleting the allowed bytes is exactly the disallowed ones.
TCHAR_BYTES = bytes(sorted(TCHAR))
FIELD_VALUE_BYTES = bytes(sorted(FIELD_VALUE_CHAR))
TARGET_BYTES = bytes(sorted(TARGET_CHAR))
HEX_DIGITS = b"0123456789abcdefABCDEF"
# RFC 3986 §3.2.2: a reg-name is unreserved, pct-encoded and sub-delims
# bytes; an IP-literal's inside ([v6] or [vF.x]) these and ":".  Tables.
REG_NAME_CHAR = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=")
# OWS (RFC 9110 §5.6.3).
WHITESPACE = b" \t"


def table(chars) -> bytes:
    """A 256-byte lookup table: 1 where the byte is in chars."""
    return bytes(1 if i in chars else 0 for i in range(256))


REG_NAME_TABLE = table(REG_NAME_CHAR)
IP_LITERAL_TABLE = table(REG_NAME_CHAR | {ord(":")})


def malformed(what, data):
    """Refuse bytes that break the message syntax of RFC 9112: always 400.

    Where the RFC lets a server repair instead -- a bare LF as a line end
    (§2.2), obs-fold (§5.2) -- we refuse too: repairs are where two parsers
    of one stream disagree, and requests get smuggled.
    """
    raise ParseError(400, f"{what} {echo(data)}")


# What a scanner can find wrong in the bytes of a head line (or a trailer
# line).  Both scanners report these codes; ``refuse`` words the error.
BARE_LF, BARE_CR, BAD_REQUEST_LINE, BAD_METHOD, BAD_TARGET, OBS_FOLD, BAD_FIELD_NAME, BAD_FIELD_VALUE = range(1, 9)
FAULTS = {
    BARE_LF: "bare LF in the header section:",          # RFC 9112 §2.2: lines end with CRLF
    BARE_CR: "bare CR in the header section:",
    BAD_REQUEST_LINE: "malformed request line",         # §3: method SP request-target SP HTTP-version
    BAD_METHOD: "invalid method",                       # a token (RFC 9110 §9.1)
    BAD_TARGET: "invalid request target",               # §3.2
    OBS_FOLD: "obsolete line folding:",                 # §5.2
    BAD_FIELD_NAME: "invalid field name in",            # §5.1: no whitespace before the colon
    BAD_FIELD_VALUE: "invalid character in the value of",   # RFC 9110 §5.5
}


def refuse(fault, data):
    """Refuse what a scanner found wrong, one of the codes above; data: the bytes to quote."""
    malformed(FAULTS[fault], data)


# The lines of a request, each bounded by its own limit (RFC 9112 §2.3 lets a
# server refuse what it will not buffer).  Trailer lines are field lines.
REQUEST_LINE, FIELD_LINE, CHUNK_LINE = 0, 1, 2

# RFC 9112 §2.2 lets a server ignore "at least one empty line" before a
# request line; we ignore a few, and they count as part of the next head, so
# its header timeout runs from the first of them: a client cannot trickle
# CRLFs to keep a connection open forever.
MAX_EMPTY_LINES = 4

# 18 digits cannot overflow a signed 64-bit integer.
MAX_CONTENT_LENGTH_DIGITS = 18


# The versions we speak.  A parser may pass these very objects for the
# common tokens: compiled, the comparison is then one pointer comparison.
HTTP_1_1, HTTP_1_0 = b"HTTP/1.1", b"HTTP/1.0"


def check_version(version: bytes) -> int:
    """Return the minor version of HTTP/1.x; 400 if malformed, 505 if not 1.0/1.1."""
    if version == HTTP_1_1:
        return 1
    if version == HTTP_1_0:
        return 0
    if (len(version) != 8 or not version.startswith(b"HTTP/") or version[6] != 0x2E
            or not (0x30 <= version[5] <= 0x39 and 0x30 <= version[7] <= 0x39)):
        raise ParseError(400, f"malformed HTTP version {echo(version)}")
    raise ParseError(505, f"HTTP version {echo(version)} is not supported (only 1.0 and 1.1)")


def content_length(value: bytes, previous: int) -> int:
    """Validate one Content-Length field (RFC 9112 §6.3); previous is -1 or the earlier value.

    Digits are read one by one (compiled, a C loop): only ASCII digits count,
    not a sign, a space, an underscore or another script's digits, as
    ``int()`` would allow.
    """
    if not value:
        raise ParseError(400, f"Content-Length is not a number: {echo(value)}")
    for digit in value:
        if not 0x30 <= digit <= 0x39:
            raise ParseError(400, f"Content-Length is not a number: {echo(value)}")
    if len(value) > MAX_CONTENT_LENGTH_DIGITS:
        raise ParseError(400, f"Content-Length overflows: {echo(value)}")
    length = 0
    for digit in value:
        length = length * 10 + (digit - 0x30)
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


def expects_continue(request) -> bool:
    """Whether the client waits for 100 Continue before sending its body (RFC 9110 §10.1.1).

    HTTP/1.0 clients never get a 100: they do not know it.  Expect is a list
    field, so repeated lines are read as one.
    """
    if request.version != b"1.1" or not (request.content_length or request.chunked):
        return False
    values = [value for name, value in request.headers if name.lower() == b"expect"]
    return b"100-continue" in list_items(b", ".join(values))


def valid_host(value: bytes) -> bool:
    """A Host field value: uri-host [":" port], or empty (RFC 9112 §3.2, RFC 3986 §3.2.2-3).

    Byte by byte against tables, so that compiled it is a C loop.
    """
    n = len(value)
    i = 0
    if n and value[0] == 0x5B:                      # "[": an IP-literal, up to "]"
        i = 1
        while i < n and value[i] != 0x5D:
            if not IP_LITERAL_TABLE[value[i]]:
                return False
            i += 1
        if i == 1 or i == n:
            return False                            # "[]", or no "]"
        i += 1
    else:                                           # a reg-name (or IPv4), up to ":"
        while i < n and value[i] != 0x3A:
            if not REG_NAME_TABLE[value[i]]:
                return False
            i += 1
    if i == n:
        return True
    if value[i] != 0x3A:
        return False                                # "[::1]x"
    i += 1
    while i < n:                                    # the port: digits, maybe none
        if not 0x30 <= value[i] <= 0x39:
            return False
        i += 1
    return True


def same_name(name: bytes, lower: bytes) -> bool:
    """Whether a field name (or a one-token value) is the lower-case token given, ignoring case.

    Byte by byte, so that compiled it allocates nothing.  ``| 0x20`` lower-cases
    a letter; the only other byte it maps onto a letter or "-" of a token we
    look for is CR, which no field name or value holds.
    """
    if len(name) != len(lower):
        return False
    for i in range(len(lower)):
        if name[i] | 0x20 != lower[i]:
            return False
    return True


def join(previous, value):
    """Several fields of one name combine into one comma-separated list (RFC 9110 §5.3)."""
    return value if previous is None else previous + b", " + value


class RequestRules:
    """The decisions for the requests on one connection, under its limits.

    A parser keeps one, reads in ``room`` how long the next line of each kind
    may be, and tells it what it scans: each field line (``field_line``), each
    field (``add_field``); ``finish_head`` then decides the framing and
    persistence of the request, and ``chunk_size`` each chunk of a chunked
    body.  Whatever breaks a rule raises ParseError with its status.
    """

    def __init__(self, limits):
        self.max_request_line = limits.max_request_line
        self.max_header_bytes = limits.max_header_bytes
        self.max_header_count = limits.max_header_count
        self.max_body_bytes = limits.max_body_bytes
        self.max_chunk_line = limits.max_chunk_line
        # By line kind: how many bytes the next line may hold before its CRLF.
        # A field line also leaves room for the empty line that ends its section.
        self.room = [self.max_request_line, self.max_header_bytes - 2, self.max_chunk_line]
        # What finish_head decided for the current request.
        self.keep_alive = False
        self.body_length = 0        # -1 when chunked
        self.chunked = False
        self.body_total = 0         # chunked: body bytes so far, against max_body_bytes
        self.new_head()

    def new_head(self):
        """Forget the head just read: the next section (a head or trailers) starts."""
        self.empty_lines = 0        # before the request line
        self.room[FIELD_LINE] = self.max_header_bytes - 2
        self.fields = 0
        self.host_count = 0
        self.length = -1            # Content-Length, or -1
        self.transfer_encoding = None   # the fields' values joined by commas, or None
        self.connection = None

    # -- lines -------------------------------------------------------------

    def line_too_long(self, kind, data):
        """Refuse a line that cannot end within room[kind]; data: its start as received.

        RFC 9112 §3: a request line too long gets 414; RFC 6585 §5: a header
        section too large, 431; a chunk-size line that long is malformed.
        """
        if kind == REQUEST_LINE:
            status, limit = 414, "max_request_line"
        elif kind == FIELD_LINE:
            status, limit = 431, "max_header_bytes"
        else:
            status, limit = 400, "max_chunk_line"
        raise ParseError(status, f"line over {limit}: {echo(data)}")

    def empty_line(self):
        """Allow one more empty line before a request line, or refuse it with 400."""
        self.empty_lines += 1
        if self.empty_lines > MAX_EMPTY_LINES:
            raise ParseError(400, f"more than {MAX_EMPTY_LINES} empty lines before a request line")

    def field_line(self, length):
        """Count a field line of the head (431 past max_header_count), before it is split."""
        self.fields += 1
        self.room[FIELD_LINE] -= length + 2
        if self.fields > self.max_header_count:
            raise ParseError(431, f"more than max_header_count={self.max_header_count} fields")

    def trailer_line(self, length):
        """Count a field line of a trailer section: its bytes count against max_header_bytes."""
        self.room[FIELD_LINE] -= length + 2

    # -- the head ----------------------------------------------------------

    def add_field(self, name, value):
        """Note a field of the head; those that frame the message are checked as they come."""
        # Lengths first: most fields are ruled out without a call.
        size = len(name)
        if size == 4 and same_name(name, b"host"):
            self.host_count += 1
            # RFC 9112 §3.2: a Host that is not a host (and port) gets 400.
            if not valid_host(value):
                malformed("invalid Host", value)
        elif size == 14 and same_name(name, b"content-length"):
            self.length = content_length(value, self.length)
        elif size == 17 and same_name(name, b"transfer-encoding"):
            self.transfer_encoding = join(self.transfer_encoding, value)
        elif size == 10 and same_name(name, b"connection"):
            self.connection = join(self.connection, value)

    def finish_head(self, minor):
        """Decide framing and persistence once the whole head is read; minor: 0 or 1.

        Sets keep_alive, body_length (-1 when chunked) and chunked, which stay
        while the body is read; then the next section (the trailers of a
        chunked body, or the next head) starts.
        """
        # RFC 9112 §3.2: exactly one Host on HTTP/1.1, at most one ever.
        if self.host_count > 1:
            raise ParseError(400, "more than one Host field")
        if minor == 1 and self.host_count == 0:
            raise ParseError(400, "HTTP/1.1 request without Host")
        chunked = False
        if self.transfer_encoding is not None:
            # RFC 9112 §6.1/§6.3: both framings at once is how requests get
            # smuggled; HTTP/1.0 has no chunked coding.
            if self.length != -1:
                raise ParseError(400, "both Content-Length and Transfer-Encoding")
            if minor == 0:
                raise ParseError(400, "Transfer-Encoding in an HTTP/1.0 request")
            chunked = is_chunked(self.transfer_encoding)
        elif self.length > self.max_body_bytes:
            raise ParseError(413, f"body of {self.length} bytes is over max_body_bytes={self.max_body_bytes}")
        # RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive".
        keep_alive = minor == 1
        connection = self.connection
        if connection is not None:
            # Most clients send a single option: compared as it is, with no list to build.
            if same_name(connection, b"keep-alive"):
                keep_alive = True
            elif same_name(connection, b"close"):
                keep_alive = False
            else:
                options = list_items(connection)
                if b"close" in options:
                    keep_alive = False
                elif b"keep-alive" in options:
                    keep_alive = True
        self.keep_alive = keep_alive
        self.chunked = chunked
        self.body_length = -1 if chunked else max(self.length, 0)
        self.body_total = 0
        self.new_head()

    # -- a chunked body ------------------------------------------------------

    def chunk_size(self, line):
        """Parse a chunk-size line without its CRLF (RFC 9112 §7.1), counting the body so far."""
        size_hex, _, extension = line.partition(b";")
        if not size_hex or len(size_hex) > 15 or size_hex.translate(None, HEX_DIGITS):
            raise ParseError(400, f"invalid chunk size {echo(line)}")
        if extension.translate(None, FIELD_VALUE_BYTES):
            raise ParseError(400, f"invalid chunk extension {echo(line)}")
        size = int(size_hex, 16)
        if self.body_total + size > self.max_body_bytes:
            raise ParseError(413, f"chunked body is over max_body_bytes={self.max_body_bytes}")
        self.body_total += size
        return size
