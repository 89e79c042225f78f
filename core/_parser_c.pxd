# Types for _parser_py.py when Cython compiles it as core._parser_c (pure-Python
# mode).  The compiled loop and I/O layer cimport RequestParser and call it
# through its vtable.  The modules the parser uses are cimported under the names
# _parser_py.py imports their pure-Python sources by (rules, scanning,
# requests): compiled, rules.RequestRules, scanning.Scanner, requests.new_request
# and every call on them are C.  Named after the compiled module, not the
# source: Cython reads _parser_c.pxd.
cimport cython
from libc.stdint cimport int64_t
cimport core._framing_c as rules
cimport core._scan_c as scanning
cimport core.request_c as requests

cdef int HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILERS, FAILED
cdef tuple VERSIONS
cdef object NEED_DATA, END_OF_MESSAGE
cdef Py_ssize_t QUOTE


@cython.final
cdef class RequestParser:
    cdef readonly object limits
    cdef rules.RequestRules _rules          # every decision: limits, framing, statuses
    cdef scanning.Scanner _scan             # the bytes: line ends, parts, byte classes
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
    cdef void release_buffer(self)
    cpdef bint in_progress(self)
    cpdef object next_event(self)
    @cython.locals(scan=scanning.Scanner, state=int, start=Py_ssize_t, end=Py_ssize_t, fault=int,
                   size=int64_t, data=bytes, crlf=bytes)
    cdef object _next_event(self)
    @cython.locals(scan=scanning.Scanner, start=Py_ssize_t, end=Py_ssize_t, room=Py_ssize_t)
    cdef Py_ssize_t _next_line(self, int kind, bint in_head) except -2
    @cython.locals(scan=scanning.Scanner, start=Py_ssize_t, end=Py_ssize_t, fault=int, name=bytes, value=bytes)
    cdef object _next_head(self)
    @cython.locals(scan=scanning.Scanner, fault=int)
    cdef int _request_line(self, Py_ssize_t start, Py_ssize_t end) except -1
    @cython.locals(decided=rules.RequestRules)
    cdef requests.Request _finish_head(self)
