# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The byte scanner under the compiled request parser: C loops over a buffer it owns.

The request parser (``_parser_py.py``, compiled as ``core._parser_c``) says
which line comes next and what each one means; this scanner finds where a
line ends, splits it into its parts and checks its bytes against the classes
``_framing`` defines (picohttpparser-style, with memchr and 256-byte tables).
It reports what it found -- positions, the parts as bytes, or a fault code
of ``_framing`` with the bytes to quote -- and decides nothing.
``_scan_py.py`` is its pure-Python twin, with the same interface; the parser
tests run the parser over both, and a differential fuzz compares them.
"""
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memchr, memcpy, memmove, memcmp

from core._framing_c cimport (HTTP_1_1, BARE_LF, BARE_CR, BAD_REQUEST_LINE, BAD_METHOD, BAD_TARGET,
                              OBS_FOLD, BAD_FIELD_NAME, BAD_FIELD_VALUE)

from . import _framing_c as rules

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

cdef Py_ssize_t INITIAL_CAPACITY = 1024
# A fault quotes at most this much of the buffer (errors.echo shows less).
cdef Py_ssize_t QUOTE = 200

# Common methods are shared objects instead of a new bytes per request.
cdef bytes M_GET = b"GET", M_POST = b"POST", M_HEAD = b"HEAD"

# So are common field names, in the case clients send them: a name is kept
# as sent, so only a byte-for-byte match may share the object.  Two spellings
# of one name are two entries.  Which names are listed changes no result,
# only how many bytes objects a head costs (one allocation and free a field).
cdef tuple KNOWN_NAMES = (
    # browsers (Firefox, Safari, Chrome over HTTP/1.1), curl, wrk, most libraries
    b"Host", b"User-Agent", b"Accept", b"Accept-Language", b"Accept-Encoding", b"Accept-Charset",
    b"Referer", b"Connection", b"Keep-Alive", b"Cookie", b"Upgrade-Insecure-Requests", b"DNT",
    b"Sec-Fetch-Dest", b"Sec-Fetch-Mode", b"Sec-Fetch-Site", b"Sec-Fetch-User", b"Priority", b"TE",
    b"sec-ch-ua", b"sec-ch-ua-mobile", b"sec-ch-ua-platform", b"Sec-GPC",
    b"If-None-Match", b"If-Modified-Since", b"If-Match", b"If-Unmodified-Since", b"If-Range", b"Range",
    b"Cache-Control", b"Pragma", b"Origin", b"Authorization", b"Expect", b"Upgrade",
    b"Content-Length", b"Content-Type", b"Content-Encoding", b"Transfer-Encoding",
    b"X-Forwarded-For", b"X-Forwarded-Proto", b"X-Forwarded-Host", b"X-Real-IP", b"X-Requested-With",
    b"Forwarded", b"Via",
    # the same in lower case: HTTP/2 front ends and some clients send names so
    b"host", b"user-agent", b"accept", b"accept-language", b"accept-encoding", b"referer",
    b"connection", b"cookie", b"cache-control", b"content-length", b"content-type",
    b"transfer-encoding", b"x-forwarded-for", b"x-forwarded-proto", b"x-real-ip", b"x-request-id",
)
# An index by length: KNOWN[KNOWN_FROM[n]:KNOWN_FROM[n + 1]] are the names n bytes long.
cdef enum:
    KNOWN_LONGEST = 32
    KNOWN_COUNT = 128
cdef const char* KNOWN[KNOWN_COUNT]
cdef PyObject* KNOWN_OBJECT[KNOWN_COUNT]
cdef Py_ssize_t KNOWN_FROM[KNOWN_LONGEST + 2]


cdef int _index_known_names(tuple names) except -1:
    cdef Py_ssize_t n, k = 0
    cdef bytes name
    if len(names) > KNOWN_COUNT or max(map(len, names)) > KNOWN_LONGEST:
        raise ValueError("KNOWN_NAMES is larger than KNOWN_COUNT or KNOWN_LONGEST allow")
    for n in range(KNOWN_LONGEST + 1):
        KNOWN_FROM[n] = k
        for name in names:
            if len(name) == n:
                KNOWN[k] = PyBytes_AS_STRING(name)
                KNOWN_OBJECT[k] = <PyObject*>name     # KNOWN_NAMES, a C global, keeps it alive
                k += 1
    KNOWN_FROM[KNOWN_LONGEST + 1] = k
    return 0


_index_known_names(KNOWN_NAMES)


cdef inline bytes _field_name(const char* name, Py_ssize_t n):
    """The bytes name[:n]: a shared object if it is a known name as spelled, else a new one."""
    cdef Py_ssize_t k
    if n <= KNOWN_LONGEST:
        for k in range(KNOWN_FROM[n], KNOWN_FROM[n + 1]):
            if KNOWN[k][0] == name[0] and _same_bytes(KNOWN[k], name, n):
                return <bytes>KNOWN_OBJECT[k]
    return PyBytes_FromStringAndSize(name, n)


cdef inline bint _same_bytes(const char* a, const char* b, Py_ssize_t n) noexcept:
    """a[:n] == b[:n], for a few bytes: whole words, the last one overlapping (no memcmp call)."""
    cdef uint64_t a8, b8
    cdef uint32_t a4, b4
    cdef Py_ssize_t i = 0
    if n >= 8:
        while i < n - 8:
            memcpy(&a8, a + i, 8)
            memcpy(&b8, b + i, 8)
            if a8 != b8:
                return False
            i += 8
        memcpy(&a8, a + n - 8, 8)
        memcpy(&b8, b + n - 8, 8)
        return a8 == b8
    if n >= 4:
        memcpy(&a4, a, 4)
        memcpy(&b4, b, 4)
        if a4 != b4:
            return False
        memcpy(&a4, a + n - 4, 4)
        memcpy(&b4, b + n - 4, 4)
        return a4 == b4
    for i in range(n):
        if a[i] != b[i]:
            return False
    return True


cdef inline bint _is_ows(char c) noexcept:
    return c == b' ' or c == b'\t'


cdef inline unsigned char _all4(const unsigned char* table, const unsigned char* p) noexcept:
    return table[p[0]] & table[p[1]] & table[p[2]] & table[p[3]]


cdef inline bint _all_in(const unsigned char* table, const char* data, Py_ssize_t n) noexcept:
    """Whether every byte of data[:n] is in the class of table.

    Eight lookups per branch; what is left at the end is checked by looking at
    the last eight (or four) bytes again, overlapping, not byte by byte.
    """
    cdef const unsigned char* p = <const unsigned char*>data
    cdef Py_ssize_t i
    if n >= 8:
        i = 0
        while i < n - 8:
            if not (_all4(table, p + i) & _all4(table, p + i + 4)):
                return False
            i += 8
        return _all4(table, p + n - 8) & _all4(table, p + n - 4)
    if n >= 4:
        return _all4(table, p) & _all4(table, p + n - 4)
    for i in range(n):
        if not table[p[i]]:
            return False
    return True


cdef class Scanner:
    def __cinit__(self):
        self._buf = <char*>malloc(INITIAL_CAPACITY)
        if self._buf == NULL:
            raise MemoryError()
        self._cap = INITIAL_CAPACITY
        self._len = self.pos = self._scanned = 0
        self.fault = 0

    def __dealloc__(self):
        free(self._buf)

    # -- the buffer --------------------------------------------------------

    cdef int feed(self, object data) except -1:
        """Append bytes received from the peer (any object with the buffer protocol)."""
        cdef Py_buffer view
        if PyBytes_CheckExact(data):        # the common case, without a buffer view
            return self.append(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self.append(<const char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        return 0

    cdef int append(self, const char* data, Py_ssize_t n) except -1:
        """Append n bytes from data: the compiled I/O layer's receive buffer."""
        self._reserve(n)
        memcpy(self._buf + self._len, data, n)
        self._len += n
        return 0

    cdef int _reserve(self, Py_ssize_t n) except -1:
        """Make room for n more bytes, first dropping what was consumed."""
        cdef Py_ssize_t pos = self.pos, need
        cdef char* grown
        if pos and pos * 2 >= self._len:
            # Drop what was consumed; amortised linear however data arrives.
            memmove(self._buf, self._buf + pos, self._len - pos)
            self._len -= pos
            self._scanned -= pos
            self.pos = 0
        need = self._len + n
        if need > self._cap:
            grown = <char*>realloc(self._buf, max(need, self._cap * 2))
            if grown == NULL:
                raise MemoryError()
            self._buf = grown
            self._cap = max(need, self._cap * 2)
        return 0

    cdef Py_ssize_t buffered(self) noexcept:
        """How many bytes are buffered and not yet consumed."""
        return self._len - self.pos

    cdef bytes unconsumed(self):
        return PyBytes_FromStringAndSize(self._buf + self.pos, self._len - self.pos)

    cdef void release(self) noexcept:
        """Free the buffer while nothing is buffered (an idle keep-alive connection)."""
        if self.pos == self._len and self._buf != NULL:
            free(self._buf)
            self._buf = NULL
            self._cap = self._len = self.pos = self._scanned = 0

    # -- lines ---------------------------------------------------------------

    cdef Py_ssize_t line_end(self, bint bare_check) except -2:
        """Where the CRLF of the line starting at pos is, moving pos past it; -1 if not buffered.

        Resumable: bytes already searched are not searched again.  With
        bare_check, an unfinished line holding a bare LF, or a CR not followed
        by LF, is reported in fault (BARE_LF, BARE_CR) as soon as it arrives.
        """
        cdef char* buf = self._buf
        cdef Py_ssize_t start = self.pos, n = self._len
        # The first CRLF of the line: look for each LF not yet searched and
        # check the byte before it (an LF at start has no CR in the line).
        cdef Py_ssize_t i = max(start + 1, self._scanned)
        cdef const char* lf
        while i < n:
            lf = <const char*>memchr(buf + i, b'\n', n - i)
            if lf == NULL:
                break
            i = lf - buf
            if buf[i - 1] == b'\r':
                self.pos = self._scanned = i + 1
                return i - 1
            i += 1
        if bare_check:
            self._find_bare(max(start, self._scanned - 1))
        self._scanned = n
        return -1

    cdef int _find_bare(self, Py_ssize_t start) except -1:
        """Note a bare LF or a CR not followed by LF in [start, end of buffer)."""
        cdef char* buf = self._buf
        cdef Py_ssize_t n = self._len, i
        cdef bint lf = False, cr = False
        i = start
        while i < n:
            if buf[i] == b'\n':
                if i > start and buf[i - 1] == b'\r':
                    return 0
                lf = True
            elif buf[i] == b'\r' and i < n - 1:
                cr = True
            i += 1
        if lf:
            self._fail(BARE_LF, self.pos, n)
        elif cr:
            self._fail(BARE_CR, self.pos, n)
        return 0

    cdef Py_ssize_t unfinished_length(self) noexcept:
        """How long the unfinished line at pos will be at least, once its CRLF arrives."""
        cdef Py_ssize_t n = self._len - self.pos
        return n - (1 if n > 0 and self._buf[self._len - 1] == b'\r' else 0)

    cdef bytes bytes_at(self, Py_ssize_t start, Py_ssize_t end):
        """The buffered bytes [start, end), end cut to what is buffered."""
        return PyBytes_FromStringAndSize(self._buf + start, min(end, self._len) - start)

    cdef int _fail(self, int fault, Py_ssize_t start, Py_ssize_t end) except -1:
        self.fault = fault
        self.fault_data = PyBytes_FromStringAndSize(self._buf + start, min(end - start, QUOTE))
        return fault

    cdef int split_request_line(self, Py_ssize_t s, Py_ssize_t e) except -1:
        """Split [s, e) into method, target and version; 0, or a fault code.

        RFC 9112 §3: method SP request-target SP HTTP-version, one space each.
        """
        cdef char* buf = self._buf
        cdef Py_ssize_t sp1, sp2
        cdef const char* p = <const char*>memchr(buf + s, b' ', e - s)
        cdef Py_ssize_t mlen
        sp2 = e - 1
        while sp2 >= s and buf[sp2] != b' ':
            sp2 -= 1
        if p == NULL or sp2 <= p - buf:
            return self._fail(BAD_REQUEST_LINE, s, e)
        sp1 = p - buf
        mlen = sp1 - s
        if mlen == 0 or not _all_in(TCHAR, buf + s, mlen):
            return self._fail(BAD_METHOD, s, sp1)
        if sp2 == sp1 + 1 or not _all_in(TARGET_CHAR, buf + sp1 + 1, sp2 - sp1 - 1):
            return self._fail(BAD_TARGET, sp1 + 1, sp2)
        # The common version is the rules' own object, not a new one:
        # check_version then compares pointers.
        if e - sp2 - 1 == 8 and memcmp(buf + sp2 + 1, b"HTTP/1.1", 8) == 0:
            self.version = HTTP_1_1
        else:
            self.version = PyBytes_FromStringAndSize(buf + sp2 + 1, e - sp2 - 1)
        if mlen == 3 and memcmp(buf + s, b"GET", 3) == 0:
            self.method = M_GET
        elif mlen == 4 and memcmp(buf + s, b"POST", 4) == 0:
            self.method = M_POST
        elif mlen == 4 and memcmp(buf + s, b"HEAD", 4) == 0:
            self.method = M_HEAD
        else:
            self.method = PyBytes_FromStringAndSize(buf + s, mlen)
        self.target = PyBytes_FromStringAndSize(buf + sp1 + 1, sp2 - sp1 - 1)
        return 0

    cdef int split_field_line(self, Py_ssize_t s, Py_ssize_t e) except -1:
        """Split [s, e) into name and value (without surrounding whitespace); 0, or a fault code."""
        cdef char* buf = self._buf
        cdef const char* p
        cdef Py_ssize_t colon, vs, ve
        # RFC 9112 §5.2: a line starting with whitespace is obs-fold.
        if _is_ows(buf[s]):
            return self._fail(OBS_FOLD, s, e)
        # RFC 9112 §5.1: the name is the token before the first colon, with
        # no whitespace between (whitespace is no tchar).
        p = <const char*>memchr(buf + s, b':', e - s)
        if p == NULL or p == buf + s or not _all_in(TCHAR, buf + s, p - (buf + s)):
            return self._fail(BAD_FIELD_NAME, s, e)
        colon = p - buf
        vs = colon + 1
        ve = e
        while vs < ve and _is_ows(buf[vs]):
            vs += 1
        while ve > vs and _is_ows(buf[ve - 1]):
            ve -= 1
        if not _all_in(VALUE_CHAR, buf + vs, ve - vs):
            return self._fail(BAD_FIELD_VALUE, s, colon)
        self.name = _field_name(buf + s, colon - s)
        self.value = PyBytes_FromStringAndSize(buf + vs, ve - vs)
        return 0

    # -- bodies --------------------------------------------------------------

    cdef bytes take(self, long long limit):
        """Consume and return up to limit buffered bytes; None if none is buffered."""
        cdef Py_ssize_t available = self._len - self.pos, n
        if available == 0:
            return None
        n = <Py_ssize_t>min(<long long>available, limit)
        data = PyBytes_FromStringAndSize(self._buf + self.pos, n)
        self.pos += n
        return data

    cdef bytes peek(self, Py_ssize_t n):
        """Up to n buffered bytes at pos, not consumed."""
        return PyBytes_FromStringAndSize(self._buf + self.pos, min(n, self._len - self.pos))

    cdef void skip(self, Py_ssize_t n) noexcept:
        self.pos += n
