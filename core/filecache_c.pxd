# Types for filecache.py when Cython compiles it as core.filecache_c
# (pure-Python mode): Answer, FileEntry and FileCache become cdef classes the
# compiled loop calls through their vtables, and the cache stats through
# the compiled I/O layer.  Named after the compiled module: Cython reads
# filecache_c.pxd, not filecache.pxd.
cimport cython
from core._io_c cimport IO
from core.request_c cimport Request

cdef class FileEntry

cdef bytes ACCEPT_ENCODING, IF_NONE_MATCH, IF_MODIFIED_SINCE, FILES, M_GET, M_HEAD
cdef tuple OTHER_ANSWER_FIELDS
cdef double REVALIDATE_SECONDS
cdef Py_ssize_t MAX_ENTRIES, MAX_ANSWERS, SMALL_FILE_BYTES, MAX_KEPT_BYTES


@cython.locals(header=tuple, name=bytes, size=Py_ssize_t,
               accept_encoding=bytes, if_none_match=bytes, if_modified_since=bytes)
cpdef object answer_key(list headers)


@cython.final
cdef class Answer:
    cdef public FileEntry entry
    cdef public bytes copy
    cdef public int status
    cdef public object fields
    cdef public int fd               # sent with sendfile, or -1
    cdef public bytes body           # a gzip copy, b"" (a 304), or None
    cdef public long long length
    cdef public bytes prefix         # status line and Server
    cdef public bytes head_rest      # the head after the Date field
    cpdef object response(self, bint head_only)


@cython.final
cdef class FileEntry:
    cdef public bytes path
    cdef public str real_path
    cdef public object info
    cdef public int fd
    cdef public unsigned long long dev, ino
    cdef public long long size, mtime_ns
    cdef public double resolved_at, checked_at
    cdef public int users
    cdef public bint retired
    cdef public list held_fds
    cdef public bytes content            # the file itself, for a small one, else None
    cdef public Py_ssize_t kept_bytes
    cdef public Answer plain
    cdef public dict answers
    cpdef FileEntry acquire(self)
    cpdef release(self)
    cpdef retire(self)
    cpdef close(self)


@cython.final
cdef class FileCache:
    cdef public object app
    cdef public IO io
    cdef public dict entries
    cdef public Py_ssize_t kept_bytes
    @cython.locals(method=bytes, target=bytes, key=object, entry=FileEntry, answer=object)
    cpdef Answer lookup(self, Request request, double now)
    cpdef object remember(self, FileEntry entry, object key, object request)
    @cython.locals(key=bytes, entry=FileEntry)
    cpdef FileEntry entry_for(self, bytes target, double now)
    @cython.locals(entry=FileEntry)
    cpdef drop(self, bytes key)
    @cython.locals(entry=FileEntry)
    cpdef expire(self, double now)
    cpdef close(self)
