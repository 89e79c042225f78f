# Types for filecache.py when Cython compiles it as core.filecache_c
# (pure-Python mode): FileEntry and FileCache become cdef classes the
# compiled loop calls through their vtables, and the cache stats through
# the compiled I/O layer.  Named after the compiled module: Cython reads
# filecache_c.pxd, not filecache.pxd.
cimport cython
from core._io_c cimport IO
from core._parser_c cimport Request

cdef tuple FILE_ANSWER_FIELDS
cdef bytes FILES, M_GET, M_HEAD, HEAD_PREFIX
cdef double REVALIDATE_SECONDS
cdef Py_ssize_t MAX_ENTRIES


@cython.locals(header=tuple, name=bytes, wanted=bytes)
cpdef bint may_change_file_answer(list headers) except -1


@cython.final
cdef class FileEntry:
    cdef public bytes path
    cdef public int fd
    cdef public unsigned long long dev, ino
    cdef public long long size, mtime_ns
    cdef public object fields
    cdef public bytes head_rest     # the head after the Date field
    cdef public double resolved_at
    cdef public int users
    cdef public bint retired
    cpdef FileEntry acquire(self)
    cpdef release(self)
    cpdef retire(self)


@cython.final
cdef class FileCache:
    cdef public object files
    cdef public IO io
    cdef public dict entries
    @cython.locals(method=bytes, target=bytes)
    cpdef FileEntry lookup(self, Request request, double now)
    @cython.locals(key=bytes, entry=FileEntry)
    cpdef FileEntry entry_for(self, bytes target, double now)
    cpdef close(self)
