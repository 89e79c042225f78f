"""The HTTP/1.1 request parser, written once for both builds.

Sans-I/O, in the manner of h11 and picohttpparser: ``feed()`` it bytes as they
arrive and call ``next_event()`` until it says ``NEED_DATA``.  The head is
read line by line as each CRLF arrives, so a request fed one byte at a time
costs linear work; every limit is checked against the bytes buffered so far.

Three parts, each written once:

- this file says which line or body piece comes next and what it is (the
  state machine of RFC 9112 §6-7: head, body by length, chunks, trailers);
- ``_framing`` decides what a request means: versions, framing, persistence,
  how long a line may be, which status each mistake earns;
- a byte scanner finds line ends, splits lines into their parts and checks
  their bytes: ``_scan_py.py``, or its C twin ``_scan_c.pyx``.

Cython compiles this very file in pure-Python mode as ``core._parser_c``:
``_parser_c.pxd`` types its fields and locals, and cimports ``_framing_c``,
``_scan_c`` and ``request_c`` under the names this file imports
``_framing``, ``_scan_py`` and ``request`` by, so that compiled, ``rules.X``,
``scanning.X`` and ``requests.X`` are C calls into the compiled modules.
"""
from . import _framing as rules
from . import _scan_py as scanning
from . import request as requests
from .errors import ECHO_LIMIT, ParseError
from .events import END_OF_MESSAGE, NEED_DATA
from .limits import DEFAULT_LIMITS

# Parser states.
HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILERS, FAILED = range(7)

VERSIONS = (b"1.0", b"1.1")
# An error quotes this much of a line at most: enough for echo() to show that it was cut.
QUOTE = ECHO_LIMIT + 1


class RequestParser:
    def __init__(self, limits=DEFAULT_LIMITS):
        self.limits = limits
        self._rules = rules.RequestRules(limits)
        self._scan = scanning.Scanner()
        self._state = HEAD
        self._error = None
        self._remaining = 0    # body bytes left in the message or the current chunk
        self._reset_head()

    def _reset_head(self):
        self._have_request_line = False
        self._method = self._target = None
        self._minor = 0
        self._headers = []

    def head_method(self):
        """The method of the head being read, None before its request line (or between heads).

        A refusal of a HEAD request's head gets no body (RFC 9110 §9.3.2): the
        loop asks this when a ParseError is raised before the request exists.
        """
        return self._method

    # -- input -------------------------------------------------------------

    def feed(self, data) -> None:
        """Append bytes received from the peer."""
        self._scan.feed(data)

    def _append(self, data, n):
        """Append the first n bytes of data: how the compiled I/O layer hands over its receive buffer."""
        self._scan.append(data, n)
        return 0

    def release_buffer(self):
        """Drop the buffer while nothing is buffered (an idle keep-alive connection)."""
        self._scan.release()

    @property
    def trailing_data(self) -> bytes:
        """Bytes buffered but not yet consumed, e.g. the next pipelined request."""
        return self._scan.unconsumed()

    def in_progress(self):
        """Whether part of a request has been received but not all of it."""
        return (self._state != HEAD or self._have_request_line or self._rules.empty_lines > 0
                or self._scan.buffered() > 0)

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
        scan = self._scan
        while True:
            state = self._state
            if state == HEAD:
                return self._next_head()
            if state == BODY or state == CHUNK_DATA:
                if self._remaining == 0:          # only reached in BODY
                    self._state = HEAD
                    return END_OF_MESSAGE
                data = scan.take(self._remaining)
                if data is None:
                    return NEED_DATA
                self._remaining -= len(data)
                if self._remaining == 0 and state == CHUNK_DATA:
                    self._state = CHUNK_END
                return data
            if state == CHUNK_SIZE:
                start = scan.pos
                end = self._next_line(rules.CHUNK_LINE, False)
                if end < 0:
                    return NEED_DATA
                size = self._rules.chunk_size(scan.bytes_at(start, end))
                self._remaining = size
                self._state = CHUNK_DATA if size else TRAILERS
            elif state == CHUNK_END:
                # RFC 9112 §7.1: each chunk's data ends with CRLF.
                crlf = scan.peek(2)
                if crlf != b"\r\n"[:len(crlf)]:
                    rules.malformed("chunk data not followed by CRLF:", crlf)
                if len(crlf) < 2:
                    return NEED_DATA
                scan.skip(2)
                self._state = CHUNK_SIZE
            else:  # TRAILERS: field lines until an empty one (RFC 9112 §7.1.2)
                start = scan.pos
                end = self._next_line(rules.FIELD_LINE, False)
                if end < 0:
                    return NEED_DATA
                if end == start:
                    self._rules.new_head()
                    self._reset_head()
                    self._state = HEAD
                    return END_OF_MESSAGE
                self._rules.trailer_line(end - start)
                fault = scan.split_field_line(start, end)   # validated, then dropped
                if fault:
                    rules.refuse(fault, scan.fault_data)

    def _next_line(self, kind, in_head):
        """End of the next CRLF-terminated line, or -1 while it is incomplete.

        The line starts at the scanner's pos, which moves past its CRLF.  kind:
        REQUEST_LINE, FIELD_LINE or CHUNK_LINE; the rules say how long it may
        be, and refuse it as soon as it cannot end within that.  In the head,
        an unfinished line holding a bare CR or LF is refused as soon as it
        arrives: RFC 9112 §2.2 lets a server take a bare LF as a line end; we
        do not, as parsers that disagree on line ends let requests be smuggled.
        """
        scan = self._scan
        start = scan.pos
        room = self._rules.room[kind]
        end = scan.line_end(in_head)
        if end < 0:
            if scan.fault:
                rules.refuse(scan.fault, scan.fault_data)
            if scan.unfinished_length() > room:
                self._rules.line_too_long(kind, scan.bytes_at(start, start + QUOTE))
            return -1
        if end - start > room:
            self._rules.line_too_long(kind, scan.bytes_at(start, min(end, start + QUOTE)))
        return end

    # -- the head ------------------------------------------------------------

    def _next_head(self):
        scan = self._scan
        while True:
            start = scan.pos
            end = self._next_line(rules.FIELD_LINE if self._have_request_line else rules.REQUEST_LINE, True)
            if end < 0:
                return NEED_DATA
            if not self._have_request_line:
                # RFC 9112 §2.2: empty lines before the request line are ignored.
                if end > start:
                    self._request_line(start, end)
                else:
                    self._rules.empty_line()
                continue
            if end == start:
                return self._finish_head()
            self._rules.field_line(end - start)
            fault = scan.split_field_line(start, end)
            if fault:
                rules.refuse(fault, scan.fault_data)
            name = scan.name
            value = scan.value
            self._headers.append((name, value))
            self._rules.add_field(name, value)

    def _request_line(self, start, end):
        scan = self._scan
        fault = scan.split_request_line(start, end)
        if fault:
            rules.refuse(fault, scan.fault_data)
        self._minor = rules.check_version(scan.version)
        self._method = scan.method
        self._target = scan.target
        self._have_request_line = True
        return 0

    def _finish_head(self):
        decided = self._rules
        decided.finish_head(self._minor)
        request = requests.new_request(self._method, self._target, VERSIONS[self._minor], self._headers,
                                       decided.keep_alive, decided.body_length, decided.chunked)
        self._reset_head()
        self._remaining = decided.body_length
        self._state = CHUNK_SIZE if decided.chunked else BODY
        return request
