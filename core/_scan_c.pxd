# The compiled byte scanner's C declarations: the compiled request parser
# (core/_parser_py.py built as core._parser_c) cimports this module and calls
# these methods from C.  _scan_py.py is the pure-Python twin, same interface.
cimport cython


@cython.final
cdef class Scanner:
    cdef char* _buf
    cdef Py_ssize_t _cap, _len, _scanned
    cdef readonly Py_ssize_t pos            # the first byte not yet consumed
    # What the last split found, or what was wrong (fault, a code of _framing).
    cdef readonly bytes method, target, version, name, value
    cdef readonly int fault
    cdef readonly bytes fault_data

    cdef int feed(self, object data) except -1
    cdef int append(self, const char* data, Py_ssize_t n) except -1
    cdef int _reserve(self, Py_ssize_t n) except -1
    cdef Py_ssize_t buffered(self) noexcept
    cdef bytes unconsumed(self)
    cdef void release(self) noexcept
    cdef Py_ssize_t line_end(self, bint bare_check) except -2
    cdef int _find_bare(self, Py_ssize_t start) except -1
    cdef Py_ssize_t unfinished_length(self) noexcept
    cdef bytes bytes_at(self, Py_ssize_t start, Py_ssize_t end)
    cdef int split_request_line(self, Py_ssize_t start, Py_ssize_t end) except -1
    cdef int split_field_line(self, Py_ssize_t start, Py_ssize_t end) except -1
    cdef int _fail(self, int fault, Py_ssize_t start, Py_ssize_t end) except -1
    cdef bytes take(self, long long limit)
    cdef bytes peek(self, Py_ssize_t n)
    cdef void skip(self, Py_ssize_t n) noexcept
