# Declarations of the compiled parser, so the compiled server loop can call
# it without going through Python attribute lookups.  The Request it returns
# is declared in request_c.pxd, the rules it asks in _framing_c.pxd.
from core._framing_c cimport RequestRules
from core.request_c cimport Request


cdef class RequestParser:
    cdef readonly object limits
    cdef RequestRules _rules                # every decision: limits, framing, statuses
    cdef char* _buf
    cdef Py_ssize_t _cap, _len, _pos, _scanned
    cdef int _state
    cdef object _error
    cdef long long _remaining
    # head being read
    cdef bint _have_request_line
    cdef bytes _method, _target
    cdef int _minor
    cdef list _headers

    cdef void _reset_head(self)
    cdef int _append(self, const char* data, Py_ssize_t n) except -1
    cdef int _reserve(self, Py_ssize_t n) except -1
    cdef object _next_event(self)
    cdef object _next_head(self)
    cdef Py_ssize_t _next_line(self, int kind, bint in_head) except -2
    cdef int _check_unfinished_line(self) except -1
    cdef int _split_request_line(self, Py_ssize_t s, Py_ssize_t e) except -1
    cdef tuple _split_field_line(self, Py_ssize_t s, Py_ssize_t e)
    cdef Request _finish_head(self)
    cdef object _take_body(self)
    cpdef object next_event(self)
    cpdef bint in_progress(self)
    cdef void release_buffer(self)
