"""The HTTP/1.1 request parser in plain Python: the readable reference.

Sans-I/O, in the manner of h11 and picohttpparser: ``feed()`` it bytes as they
arrive and call ``next_event()`` until it says ``NEED_DATA``.  The head is
read line by line as each CRLF arrives, so a request fed one byte at a time
costs linear work; every limit is checked against the bytes buffered so far.
What a request means (versions, framing, persistence, which status each
mistake earns, how long a line may be) is decided in ``_framing``: this
file only scans bytes.  The compiled parser in ``_parser_c.pyx`` takes the
same decisions from the same source and must behave exactly like this file.
"""
from . import _framing as rules
from ._framing import CHUNK_LINE, FIELD_LINE, REQUEST_LINE
from .errors import ParseError
from .events import END_OF_MESSAGE, NEED_DATA
from .limits import DEFAULT_LIMITS
from .request import new_request

# Parser states.
HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILERS, FAILED = range(7)

VERSIONS = (b"1.0", b"1.1")


class RequestParser:
    def __init__(self, limits=DEFAULT_LIMITS):
        self.limits = limits
        self._rules = rules.RequestRules(limits)
        self._buf = bytearray()
        self._pos = 0          # first byte not yet consumed (the current line in HEAD)
        self._scanned = 0      # bytes up to here were already checked for a line end
        self._state = HEAD
        self._error = None
        self._remaining = 0    # body bytes left in the message or the current chunk
        self._reset_head()

    def _reset_head(self):
        self._request_line = None   # (method, target, minor) once read
        self._headers = []

    # -- input -------------------------------------------------------------

    def feed(self, data) -> None:
        """Append bytes received from the peer."""
        pos = self._pos
        if pos and pos * 2 >= len(self._buf):
            # Drop what was consumed; amortised linear however data arrives.
            del self._buf[:pos]
            self._scanned -= pos
            self._pos = 0
        self._buf += data

    def release_buffer(self) -> None:
        """Drop the buffer while nothing is buffered (an idle keep-alive connection)."""
        if self._pos == len(self._buf):
            self._buf = bytearray()
            self._pos = self._scanned = 0

    @property
    def trailing_data(self) -> bytes:
        """Bytes buffered but not yet consumed, e.g. the next pipelined request."""
        return bytes(self._buf[self._pos:])

    def in_progress(self) -> bool:
        """Whether part of a request has been received but not all of it."""
        return (self._state != HEAD or self._request_line is not None or self._rules.empty_lines > 0
                or self._pos < len(self._buf))

    # -- output ------------------------------------------------------------

    def next_event(self):
        """Return the next Request, body bytes, END_OF_MESSAGE or NEED_DATA.

        Raises ParseError (with the status to answer) on a bad request; after
        that every call raises the same error: the stream cannot be trusted.
        """
        if self._state == FAILED:
            raise self._error
        try:
            return self._next_event()
        except ParseError as error:
            self._state = FAILED
            self._error = error
            raise

    def _next_event(self):
        while True:
            state = self._state
            if state == HEAD:
                return self._next_head()
            if state == BODY or state == CHUNK_DATA:
                if self._remaining == 0:          # only reached in BODY
                    self._state = HEAD
                    return END_OF_MESSAGE
                data = self._take_body()
                if data is None:
                    return NEED_DATA
                if self._remaining == 0 and state == CHUNK_DATA:
                    self._state = CHUNK_END
                return data
            if state == CHUNK_SIZE:
                line = self._next_line(CHUNK_LINE)
                if line is None:
                    return NEED_DATA
                size = self._rules.chunk_size(line)
                self._remaining = size
                self._state = CHUNK_DATA if size else TRAILERS
            elif state == CHUNK_END:
                crlf = self._buf[self._pos:self._pos + 2]
                if crlf != b"\r\n"[:len(crlf)]:
                    rules.malformed("chunk data not followed by CRLF:", crlf)
                if len(crlf) < 2:
                    return NEED_DATA
                self._pos += 2
                self._state = CHUNK_SIZE
            else:  # TRAILERS: field lines until an empty one (RFC 9112 §7.1.2)
                line = self._next_line(FIELD_LINE)
                if line is None:
                    return NEED_DATA
                if not line:
                    self._rules.new_head()
                    self._reset_head()
                    self._state = HEAD
                    return END_OF_MESSAGE
                self._rules.trailer_line(len(line))
                self._split_field_line(line)   # validated, then dropped

    def _take_body(self):
        available = len(self._buf) - self._pos
        if available == 0:
            return None
        n = min(available, self._remaining)
        data = bytes(self._buf[self._pos:self._pos + n])
        self._pos += n
        self._remaining -= n
        return data

    def _next_line(self, kind):
        """The next CRLF-terminated line (without CRLF), or None if incomplete.

        kind: REQUEST_LINE, FIELD_LINE or CHUNK_LINE; the rules say how long
        it may be, and refuse it as soon as it cannot end within that.
        """
        buf = self._buf
        start = self._pos
        room = self._rules.room[kind]
        end = buf.find(b"\r\n", max(start, self._scanned - 1))
        if end < 0:
            self._scanned = len(buf)
            # The line will be at least this long once its CRLF arrives.
            if len(buf) - start - (buf[-1:] == b"\r") > room:
                self._rules.line_too_long(kind, buf[start:])
            return None
        if end - start > room:
            self._rules.line_too_long(kind, buf[start:end])
        self._pos = self._scanned = end + 2
        return bytes(buf[start:end])

    # -- the head ------------------------------------------------------------

    def _next_head(self):
        while True:
            self._check_unfinished_line()
            line = self._next_line(REQUEST_LINE if self._request_line is None else FIELD_LINE)
            if line is None:
                return NEED_DATA
            if self._request_line is None:
                # RFC 9112 §2.2: empty lines before the request line are ignored.
                if line:
                    self._request_line = self._split_request_line(line)
                else:
                    self._rules.empty_line()
                continue
            if not line:
                return self._finish_head()
            self._rules.field_line(len(line))
            name, value = self._split_field_line(line)
            self._headers.append((name, value))
            self._rules.add_field(name, value)

    def _check_unfinished_line(self):
        """Refuse a bare LF or a CR not followed by LF as soon as it arrives.

        Only matters while no CRLF is buffered: a complete line holding a
        stray CR or LF is refused by the syntax checks anyway.
        """
        buf = self._buf
        start = max(self._pos, self._scanned - 1)
        if buf.find(b"\n", start) >= 0 and buf.find(b"\r\n", start) < 0:
            rules.malformed("bare LF in the header section:", buf[self._pos:])
        if buf.find(b"\r", start, len(buf) - 1) >= 0 and buf.find(b"\r\n", start) < 0:
            rules.malformed("bare CR in the header section:", buf[self._pos:])

    def _split_request_line(self, line):
        # RFC 9112 §3: method SP request-target SP HTTP-version, one space each.
        method, space1, rest = line.partition(b" ")
        target, space2, version = rest.rpartition(b" ")
        if not (space1 and space2):
            rules.malformed("malformed request line", line)
        if not method or method.translate(None, rules.TCHAR_BYTES):
            rules.malformed("invalid method", method)
        if not target or target.translate(None, rules.TARGET_BYTES):
            rules.malformed("invalid request target", target)
        return method, target, rules.check_version(version)

    def _split_field_line(self, line):
        # RFC 9112 §5.2: a line starting with whitespace is obs-fold, refused.
        if line[0] in rules.WHITESPACE:
            rules.malformed("obsolete line folding:", line)
        name, colon, value = line.partition(b":")
        # RFC 9112 §5.1: no whitespace between name and colon (not a tchar).
        if not colon or not name or name.translate(None, rules.TCHAR_BYTES):
            rules.malformed("invalid field name in", line)
        value = value.strip(rules.WHITESPACE)
        if value.translate(None, rules.FIELD_VALUE_BYTES):
            rules.malformed("invalid character in the value of", name)
        return name, value

    def _finish_head(self):
        method, target, minor = self._request_line
        decided = self._rules
        decided.finish_head(minor)
        request = new_request(method, target, VERSIONS[minor], self._headers,
                              decided.keep_alive, decided.body_length, decided.chunked)
        self._reset_head()
        self._remaining = decided.body_length
        self._state = CHUNK_SIZE if decided.chunked else BODY
        return request
