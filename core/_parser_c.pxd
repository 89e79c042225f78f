# Declarations of the compiled parser, so the compiled server loop can call
# it without going through Python attribute lookups.  The Request it returns
# is declared in request_c.pxd.
from core.request_c cimport Request


cdef class RequestParser:
    cdef readonly object limits
    cdef char* _buf
    cdef Py_ssize_t _cap, _len, _pos, _scanned
    cdef int _state
    cdef object _error
    cdef long long _remaining, _body_total
    # head being read
    cdef bint _have_request_line
    cdef bytes _method, _target
    cdef int _minor
    cdef list _headers
    cdef Py_ssize_t _block
    cdef int _host_count
    cdef long long _length
    cdef object _transfer_encoding, _connection
    cdef int _empty_lines                   # before the request line
    # limits, unpacked once
    cdef Py_ssize_t _max_request_line, _max_header_bytes, _max_header_count, _max_chunk_line
    cdef long long _max_body_bytes

    cdef void _reset_head(self)
    cdef int _append(self, const char* data, Py_ssize_t n) except -1
    cdef int _reserve(self, Py_ssize_t n) except -1
    cdef object _next_event(self)
    cdef object _next_head(self)
    cdef Py_ssize_t _next_line(self, Py_ssize_t limit, int status, str limit_name, bint in_head=*) except -2
    cdef int _check_unfinished_line(self) except -1
    cdef int _split_request_line(self, Py_ssize_t s, Py_ssize_t e) except -1
    cdef tuple _split_field_line(self, Py_ssize_t s, Py_ssize_t e)
    cdef int _add_field(self, Py_ssize_t s, Py_ssize_t e) except -1
    cdef Request _finish_head(self)
    cdef object _take_body(self)
    cpdef object next_event(self)
    cpdef bint in_progress(self)
    cdef void release_buffer(self)
