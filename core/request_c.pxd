# Types for request.py when Cython compiles it as core.request_c (pure-Python
# mode): Request becomes a cdef class with typed fields, read-only from Python,
# that new_request sets and the compiled loop reads from C; the compiled parser
# cimports new_request.  Named after the compiled module, not the source:
# Cython reads request_c.pxd.
cimport cython


cdef class Request:
    cdef readonly bytes method
    cdef readonly bytes target
    cdef readonly bytes version
    cdef readonly list headers
    cdef readonly bint keep_alive
    cdef readonly long long content_length
    cdef readonly bint chunked


@cython.locals(request=Request)
cpdef Request new_request(bytes method, bytes target, bytes version, list headers,
                          bint keep_alive, long long content_length, bint chunked)
