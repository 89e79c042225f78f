# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The HTTP/1.1 request parser compiled to C: same contract as ``_parser_py``.

This file is a transcription of ``_parser_py.py`` into C-level loops over a
buffer it owns (picohttpparser-style scanning with memchr and 256-byte class
tables).  It only scans: every decision -- how long a line may be, how many
fields, versions, framing, persistence, the status of each mistake -- is
taken by ``_framing``, the very source the Python parser imports, compiled as
``core._framing_c`` and called here as C functions.  The requests it returns
are ``core/request.py``'s Request, compiled as ``core.request_c``.  The shared
test suite runs against both parsers.
"""
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memchr, memcpy, memmove, memcmp

from ._framing_c cimport (REQUEST_LINE, FIELD_LINE, CHUNK_LINE, HTTP_1_1, RequestRules,
                          check_version, malformed)
from .request_c cimport Request, new_request

from . import _framing_c as rules
from .errors import ParseError
from .events import END_OF_MESSAGE, NEED_DATA
from .limits import DEFAULT_LIMITS

cdef enum:
    HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILERS, FAILED

# Byte-class tables built from the shared sets in _framing.
cdef unsigned char TCHAR[256]
cdef unsigned char TARGET_CHAR[256]
cdef unsigned char VALUE_CHAR[256]


cdef void _fill(unsigned char* table, bytes source):
    cdef int i
    for i in range(256):
        table[i] = source[i]


_fill(TCHAR, rules.table(rules.TCHAR))
_fill(TARGET_CHAR, rules.table(rules.TARGET_CHAR))
_fill(VALUE_CHAR, rules.table(rules.FIELD_VALUE_CHAR))

cdef bytes V10 = b"1.0", V11 = b"1.1"
# Common methods are shared objects instead of a new bytes per request.
cdef bytes M_GET = b"GET", M_POST = b"POST", M_HEAD = b"HEAD"
cdef Py_ssize_t INITIAL_CAPACITY = 1024


cdef inline bint _is_ows(char c):
    return c == b' ' or c == b'\t'


cdef class RequestParser:
    def __cinit__(self, limits=DEFAULT_LIMITS):
        self._buf = <char*>malloc(INITIAL_CAPACITY)
        if self._buf == NULL:
            raise MemoryError()
        self._cap = INITIAL_CAPACITY
        self._len = self._pos = self._scanned = 0

    def __init__(self, limits=DEFAULT_LIMITS):
        self.limits = limits
        self._rules = RequestRules(limits)
        self._state = HEAD
        self._error = None
        self._remaining = 0
        self._reset_head()

    def __dealloc__(self):
        free(self._buf)

    cdef void _reset_head(self):
        self._have_request_line = False
        self._method = self._target = None
        self._minor = 0
        self._headers = []

    # -- input -------------------------------------------------------------

    def feed(self, data):
        """Append bytes received from the peer."""
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self._append(<const char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef int _append(self, const char* data, Py_ssize_t n) except -1:
        self._reserve(n)
        memcpy(self._buf + self._len, data, n)
        self._len += n
        return 0

    cdef int _reserve(self, Py_ssize_t n) except -1:
        """Make room for n more bytes, first dropping what was consumed."""
        cdef Py_ssize_t pos = self._pos, need
        cdef char* grown
        if pos and pos * 2 >= self._len:
            # Drop what was consumed; amortised linear however data arrives.
            memmove(self._buf, self._buf + pos, self._len - pos)
            self._len -= pos
            self._scanned -= pos
            self._pos = 0
        need = self._len + n
        if need > self._cap:
            grown = <char*>realloc(self._buf, max(need, self._cap * 2))
            if grown == NULL:
                raise MemoryError()
            self._buf = grown
            self._cap = max(need, self._cap * 2)
        return 0

    @property
    def trailing_data(self):
        """Bytes buffered but not yet consumed, e.g. the next pipelined request."""
        return PyBytes_FromStringAndSize(self._buf + self._pos, self._len - self._pos)

    cdef void release_buffer(self):
        """Free the buffer while nothing is buffered (an idle keep-alive connection)."""
        if self._pos == self._len and self._buf != NULL:
            free(self._buf)
            self._buf = NULL
            self._cap = self._len = self._pos = self._scanned = 0

    cpdef bint in_progress(self):
        """Whether part of a request has been received but not all of it."""
        return (self._state != HEAD or self._have_request_line or self._rules.empty_lines > 0
                or self._pos < self._len)

    # -- output ------------------------------------------------------------

    cpdef object next_event(self):
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

    cdef object _next_event(self):
        cdef int state
        cdef Py_ssize_t start, end
        cdef long long size
        cdef object data
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
                start = self._pos
                end = self._next_line(CHUNK_LINE, False)
                if end < 0:
                    return NEED_DATA
                size = self._rules.chunk_size(PyBytes_FromStringAndSize(self._buf + start, end - start))
                self._remaining = size
                self._state = CHUNK_DATA if size else TRAILERS
            elif state == CHUNK_END:
                start = self._pos
                if self._len - start >= 1 and self._buf[start] != b'\r' or \
                        self._len - start >= 2 and self._buf[start + 1] != b'\n':
                    malformed("chunk data not followed by CRLF:",
                              PyBytes_FromStringAndSize(self._buf + start, min(2, self._len - start)))
                if self._len - start < 2:
                    return NEED_DATA
                self._pos += 2
                self._state = CHUNK_SIZE
            else:  # TRAILERS: field lines until an empty one (RFC 9112 §7.1.2)
                start = self._pos
                end = self._next_line(FIELD_LINE, False)
                if end < 0:
                    return NEED_DATA
                if end == start:
                    self._rules.new_head()
                    self._reset_head()
                    self._state = HEAD
                    return END_OF_MESSAGE
                self._rules.trailer_line(end - start)
                self._split_field_line(start, end)   # validated, then dropped

    cdef object _take_body(self):
        cdef Py_ssize_t available = self._len - self._pos, n
        if available == 0:
            return None
        n = <Py_ssize_t>min(<long long>available, self._remaining)
        data = PyBytes_FromStringAndSize(self._buf + self._pos, n)
        self._pos += n
        self._remaining -= n
        return data

    cdef Py_ssize_t _next_line(self, int kind, bint in_head) except -2:
        """End index of the next CRLF-terminated line starting at _pos, or -1.

        On success _pos moves past the CRLF; the line is [old _pos, end).
        kind: REQUEST_LINE, FIELD_LINE or CHUNK_LINE; the rules say how long
        it may be, and refuse it as soon as it cannot end within that.  In the head,
        an unfinished line is first checked for a bare CR or LF (the Python
        parser does that check before each line; it only acts when no CRLF
        is buffered, which is exactly when we get here).
        """
        cdef char* buf = self._buf
        cdef Py_ssize_t start = self._pos, n = self._len
        cdef Py_ssize_t i = max(start, self._scanned - 1)
        cdef Py_ssize_t end = -1
        cdef const char* lf
        cdef Py_ssize_t room = self._rules.room[kind]
        # The first CRLF at or after i: look for each LF and check the byte before.
        if i < start + 1:
            i = start + 1 if start + 1 <= n else n
        else:
            i = i + 1
        while i < n:
            lf = <const char*>memchr(buf + i, b'\n', n - i)
            if lf == NULL:
                break
            i = lf - buf
            if buf[i - 1] == b'\r':
                end = i - 1
                break
            i += 1
        if end < 0:
            if in_head:
                self._check_unfinished_line()
            self._scanned = n
            # The line will be at least this long once its CRLF arrives.
            if n - start - (1 if n > start and buf[n - 1] == b'\r' else 0) > room:
                self._rules.line_too_long(kind, PyBytes_FromStringAndSize(buf + start, min(n - start, 200)))
            return -1
        if end - start > room:
            self._rules.line_too_long(kind, PyBytes_FromStringAndSize(buf + start, min(end - start, 200)))
        self._pos = self._scanned = end + 2
        return end

    # -- the head ------------------------------------------------------------

    cdef object _next_head(self):
        cdef Py_ssize_t start, end
        cdef tuple field
        while True:
            start = self._pos
            end = self._next_line(FIELD_LINE if self._have_request_line else REQUEST_LINE, True)
            if end < 0:
                return NEED_DATA
            if not self._have_request_line:
                # RFC 9112 §2.2: empty lines before the request line are ignored.
                if end > start:
                    self._split_request_line(start, end)
                else:
                    self._rules.empty_line()
                continue
            if end == start:
                return self._finish_head()
            self._rules.field_line(end - start)
            field = self._split_field_line(start, end)
            self._headers.append(field)
            self._rules.add_field(<bytes>field[0], <bytes>field[1])

    cdef int _check_unfinished_line(self) except -1:
        """Refuse a bare LF or a CR not followed by LF as soon as it arrives."""
        cdef char* buf = self._buf
        cdef Py_ssize_t n = self._len, i, start = max(self._pos, self._scanned - 1)
        cdef bint crlf = False, lf = False, cr = False
        i = start
        while i < n:
            if buf[i] == b'\n':
                if i > start and buf[i - 1] == b'\r':
                    crlf = True
                    break
                lf = True
            elif buf[i] == b'\r' and i < n - 1:
                cr = True
            i += 1
        if crlf:
            return 0
        if lf:
            malformed("bare LF in the header section:",
                      PyBytes_FromStringAndSize(buf + self._pos, min(n - self._pos, 200)))
        if cr:
            malformed("bare CR in the header section:",
                      PyBytes_FromStringAndSize(buf + self._pos, min(n - self._pos, 200)))
        return 0

    cdef int _split_request_line(self, Py_ssize_t s, Py_ssize_t e) except -1:
        # RFC 9112 §3: method SP request-target SP HTTP-version, one space each.
        cdef char* buf = self._buf
        cdef Py_ssize_t sp1, sp2, i
        cdef const char* p = <const char*>memchr(buf + s, b' ', e - s)
        cdef Py_ssize_t mlen
        cdef bytes version
        sp2 = e - 1
        while sp2 >= s and buf[sp2] != b' ':
            sp2 -= 1
        if p == NULL or sp2 <= p - buf:
            malformed("malformed request line", PyBytes_FromStringAndSize(buf + s, e - s))
        sp1 = p - buf
        mlen = sp1 - s
        if mlen == 0:
            malformed("invalid method", b"")
        for i in range(s, sp1):
            if not TCHAR[<unsigned char>buf[i]]:
                malformed("invalid method", PyBytes_FromStringAndSize(buf + s, mlen))
        if sp2 == sp1 + 1:
            malformed("invalid request target", b"")
        for i in range(sp1 + 1, sp2):
            if not TARGET_CHAR[<unsigned char>buf[i]]:
                malformed("invalid request target", PyBytes_FromStringAndSize(buf + sp1 + 1, sp2 - sp1 - 1))
        # The common version is passed as the rules' own object, not a new
        # one; which versions are spoken is for check_version to say.
        if e - sp2 - 1 == 8 and memcmp(buf + sp2 + 1, b"HTTP/1.1", 8) == 0:
            version = HTTP_1_1
        else:
            version = PyBytes_FromStringAndSize(buf + sp2 + 1, e - sp2 - 1)
        self._minor = check_version(version)
        if mlen == 3 and memcmp(buf + s, b"GET", 3) == 0:
            self._method = M_GET
        elif mlen == 4 and memcmp(buf + s, b"POST", 4) == 0:
            self._method = M_POST
        elif mlen == 4 and memcmp(buf + s, b"HEAD", 4) == 0:
            self._method = M_HEAD
        else:
            self._method = PyBytes_FromStringAndSize(buf + s, mlen)
        self._target = PyBytes_FromStringAndSize(buf + sp1 + 1, sp2 - sp1 - 1)
        self._have_request_line = True
        return 0

    cdef tuple _split_field_line(self, Py_ssize_t s, Py_ssize_t e):
        cdef char* buf = self._buf
        cdef Py_ssize_t colon = s, vs, ve, i
        # RFC 9112 §5.2: a line starting with whitespace is obs-fold, refused.
        if _is_ows(buf[s]):
            malformed("obsolete line folding:", PyBytes_FromStringAndSize(buf + s, e - s))
        # RFC 9112 §5.1: no whitespace between name and colon (not a tchar).
        while colon < e and TCHAR[<unsigned char>buf[colon]]:
            colon += 1
        if colon == s or colon == e or buf[colon] != b':':
            malformed("invalid field name in", PyBytes_FromStringAndSize(buf + s, e - s))
        vs = colon + 1
        ve = e
        while vs < ve and _is_ows(buf[vs]):
            vs += 1
        while ve > vs and _is_ows(buf[ve - 1]):
            ve -= 1
        for i in range(vs, ve):
            if not VALUE_CHAR[<unsigned char>buf[i]]:
                malformed("invalid character in the value of", PyBytes_FromStringAndSize(buf + s, colon - s))
        return (PyBytes_FromStringAndSize(buf + s, colon - s),
                PyBytes_FromStringAndSize(buf + vs, ve - vs))

    cdef Request _finish_head(self):
        self._rules.finish_head(self._minor)
        request = new_request(self._method, self._target, V11 if self._minor else V10, self._headers,
                              self._rules.keep_alive, self._rules.body_length, self._rules.chunked)
        self._reset_head()
        self._remaining = self._rules.body_length
        self._state = CHUNK_SIZE if self._rules.chunked else BODY
        return request
