# Types for request.py when Cython compiles it as core.request_c (pure-Python
# mode): Request becomes a cdef class with typed fields, read-only from Python,
# that the compiled parser sets and the compiled loop reads from C.  Named after
# the compiled module, not the source: Cython reads request_c.pxd.

cdef class Request:
    cdef readonly bytes method
    cdef readonly bytes target
    cdef readonly bytes version
    cdef readonly list headers
    cdef readonly bint keep_alive
    cdef readonly long long content_length
    cdef readonly bint chunked
