# The I/O layer's C declarations: the compiled loop (loop_c, from loop_py.py)
# calls these methods through the vtable, not through Python attribute lookups.
cimport cython
from core._parser_c cimport RequestParser

cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void* ptr
        int fd
        unsigned int u32
        unsigned long u64
    struct epoll_event:
        unsigned int events
        epoll_data_t data


@cython.final
cdef class OutQueue:
    cdef char* buf
    cdef readonly Py_ssize_t size        # bytes queued and not yet sent (buffered + held)
    cdef Py_ssize_t sent, buffered, cap
    cdef bytes held                      # a large last piece, sent from its own bytes
    cdef Py_ssize_t held_sent
    cpdef int append(self, bytes data) except -1
    cdef int _copy(self, const char* data, Py_ssize_t n) except -1
    cdef void _advance(self, Py_ssize_t n)
    cpdef void release(self)
    cpdef void clear(self)


@cython.final
cdef class IO:
    cdef int epfd, listen_fd
    cdef char* scratch
    cdef epoll_event* events
    cdef int n
    cpdef int wait(self, int timeout_ms) except -2
    cpdef int fd_at(self, int i)
    cpdef unsigned int mask_at(self, int i)
    cpdef void watch(self, int fd, unsigned int old, unsigned int new)
    cpdef double now(self)
    cpdef long wall_second(self)
    cpdef int accept(self)
    cpdef void limit_unsent(self, int fd, int nbytes)
    cpdef str peer(self, int fd)
    cpdef Py_ssize_t recv_into(self, int fd, RequestParser parser) except -3
    cpdef bint discard(self, int fd)
    cpdef int send(self, int fd, OutQueue out, bint more)
    cpdef long long sendfile(self, int fd, int file_fd, long long offset, long long count)
    cpdef bint shutdown_wr(self, int fd)
    cpdef void close(self, int fd)
    cpdef bint same_file(self, bytes path, unsigned long long dev, unsigned long long ino,
                         long long size, long long mtime_ns)
