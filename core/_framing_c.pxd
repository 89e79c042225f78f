# Types for _framing.py when Cython compiles it as core._framing_c (pure-Python
# mode), so that the compiled parser takes its decisions through C calls:
# cimport what is declared here.  Named after the compiled module, not the
# source: Cython reads _framing_c.pxd.  The pure parser imports core._framing.
cimport cython
# int64_t, not long long: Cython 3.3 writes a broken constant (-1LLLL) for the
# except value of a long long method of RequestRules.
from libc.stdint cimport int64_t

cdef int REQUEST_LINE, FIELD_LINE, CHUNK_LINE
cdef int BARE_LF, BARE_CR, BAD_REQUEST_LINE, BAD_METHOD, BAD_TARGET, OBS_FOLD, BAD_FIELD_NAME, BAD_FIELD_VALUE
cdef bytes HTTP_1_1, HTTP_1_0
cdef int MAX_EMPTY_LINES
cdef Py_ssize_t MAX_CONTENT_LENGTH_DIGITS

cpdef int malformed(str what, object data) except -1
cpdef int refuse(int fault, object data) except -1
cpdef int check_version(bytes version) except -1
@cython.locals(digit=cython.uchar, length=int64_t)
cpdef int64_t content_length(bytes value, int64_t previous) except -1
@cython.locals(i=Py_ssize_t)
cdef inline bint same_name(bytes name, bytes lower) except -1
cdef object join(object previous, bytes value)
cpdef list list_items(bytes value)
cpdef bint is_chunked(bytes transfer_encoding) except -1
cdef bytes REG_NAME_TABLE, IP_LITERAL_TABLE
@cython.locals(i=Py_ssize_t, n=Py_ssize_t)
cpdef bint valid_host(bytes value) except -1


@cython.final
cdef class RequestRules:
    cdef readonly Py_ssize_t max_request_line, max_header_bytes, max_header_count, max_chunk_line
    cdef readonly int64_t max_body_bytes
    cdef public Py_ssize_t room[3]          # by line kind
    # decided by finish_head
    cdef readonly bint keep_alive, chunked
    cdef readonly int64_t body_length, body_total
    # the section being read
    cdef readonly int empty_lines
    cdef readonly Py_ssize_t fields
    cdef readonly int host_count
    cdef readonly int64_t length
    cdef readonly object transfer_encoding, connection

    cpdef void new_head(self) noexcept
    cpdef int line_too_long(self, int kind, object data) except -1
    cpdef int empty_line(self) except -1
    cpdef int field_line(self, Py_ssize_t length) except -1
    cpdef void trailer_line(self, Py_ssize_t length) noexcept
    @cython.locals(size=Py_ssize_t)
    cpdef int add_field(self, bytes name, bytes value) except -1
    @cython.locals(chunked=bint, keep_alive=bint, connection=bytes, options=list)
    cpdef int finish_head(self, int minor) except -1
    cpdef int64_t chunk_size(self, bytes line) except -1
