# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The system calls of the event loop, in C: the twin of ``_io_py.py``, same interface.

Everything that decides lives in ``loop_py.py`` (compiled as ``loop_c``);
this layer only moves bytes: epoll_wait into a C array, recv into one
scratch buffer appended straight to the compiled parser, send with
MSG_MORE from one growable buffer (sendmsg with a large last piece held by
reference), sendfile, accept4, and the stat identity of a cached file.
Return codes instead of exceptions, so that the per-request path raises
nothing.
"""
from libc.errno cimport errno, EAGAIN, EINTR
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy, memset
from posix.stat cimport struct_stat, stat
from posix.types cimport off_t
from posix.unistd cimport close as c_close
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_CheckSignals

from core._parser_c cimport RequestParser

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clock, timespec* ts)
    enum:
        CLOCK_MONOTONIC, CLOCK_REALTIME

cdef extern from "<sys/epoll.h>" nogil:
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event* event)
    int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout)
    enum:
        EPOLL_CTL_ADD, EPOLL_CTL_MOD, EPOLL_CTL_DEL, EPOLL_CLOEXEC

cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void* iov_base
        size_t iov_len

cdef extern from "<sys/socket.h>" nogil:
    struct msghdr:
        void* msg_name
        unsigned int msg_namelen
        iovec* msg_iov
        size_t msg_iovlen
        void* msg_control
        size_t msg_controllen
        int msg_flags
    ssize_t send(int fd, const void* buf, size_t n, int flags)
    ssize_t sendmsg(int fd, const msghdr* msg, int flags)
    ssize_t recv(int fd, void* buf, size_t n, int flags)
    int accept4(int fd, void* addr, void* addrlen, int flags)
    int setsockopt(int fd, int level, int optname, const void* optval, unsigned int optlen)
    int shutdown(int fd, int how)
    struct sockaddr:
        unsigned short sa_family
    int getpeername(int fd, sockaddr* addr, unsigned int* addrlen)
    enum:
        MSG_NOSIGNAL, MSG_MORE, SOCK_NONBLOCK, SOCK_CLOEXEC, SHUT_WR, AF_UNIX

cdef extern from "<netinet/in.h>" nogil:
    enum:
        IPPROTO_TCP, AF_INET, AF_INET6
    struct in_addr:
        pass
    struct in6_addr:
        pass
    struct sockaddr_in:
        in_addr sin_addr
    struct sockaddr_in6:
        in6_addr sin6_addr

cdef extern from "<arpa/inet.h>" nogil:
    const char* inet_ntop(int af, const void* src, char* dst, unsigned int size)

cdef extern from "<netinet/tcp.h>" nogil:
    enum:
        TCP_NODELAY
        TCP_NOTSENT_LOWAT

cdef extern from "<sys/sendfile.h>" nogil:
    ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count)

cdef enum:
    MAX_EVENTS = 512
    SCRATCH_SIZE = 262144
    KEEP_CAP = 262144          # a buffer grown past this is given back once empty
    HOLD_BYTES = 2048          # a piece this large is sent from its own bytes, not copied


cdef class OutQueue:
    """Bytes waiting to be sent on one connection, in order.

    Small pieces (a head, its Date line) are copied into one buffer; a large
    last piece (a small file's content kept in memory) is held by reference
    and sent with the buffer in one sendmsg, never copied in user space.  A
    piece appended after it (a pipelined response's head) copies it into the
    buffer first, so the order stays what append was told.
    """

    def __dealloc__(self):
        free(self.buf)

    cpdef int append(self, bytes data) except -1:
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        if self.held is not None:
            self._copy(PyBytes_AS_STRING(self.held) + self.held_sent, PyBytes_GET_SIZE(self.held) - self.held_sent)
            self.held = None
        if n >= HOLD_BYTES:
            self.held, self.held_sent = data, 0
        else:
            self._copy(PyBytes_AS_STRING(data), n)
        self.size += n
        return 0

    cdef int _copy(self, const char* data, Py_ssize_t n) except -1:
        """Append n bytes to the buffer (size is the caller's to count)."""
        cdef Py_ssize_t need = self.sent + self.buffered + n, cap
        cdef char* grown
        if need > self.cap:
            cap = max(need, self.cap * 2, 1024)
            grown = <char*>realloc(self.buf, cap)
            if grown == NULL:
                raise MemoryError()
            self.buf, self.cap = grown, cap
        memcpy(self.buf + self.sent + self.buffered, data, n)
        self.buffered += n
        return 0

    cdef void _advance(self, Py_ssize_t n):
        """n bytes were sent: from the buffer first, then from the held piece."""
        cdef Py_ssize_t from_buffer = min(n, self.buffered)
        self.sent += from_buffer
        self.buffered -= from_buffer
        self.held_sent += n - from_buffer
        self.size -= n

    cpdef void release(self):
        """Give the buffer back while nothing is queued (an idle keep-alive connection)."""
        if self.size == 0:
            free(self.buf)
            self.buf = NULL
            self.cap = self.sent = 0

    cpdef void clear(self):
        self.size = self.sent = self.buffered = 0
        self.held = None
        if self.cap > KEEP_CAP:
            free(self.buf)
            self.buf = NULL
            self.cap = 0


cdef class IO:
    """One worker's epoll instance and scratch buffer, around its listener."""

    def __cinit__(self, listener):
        self.scratch = <char*>malloc(SCRATCH_SIZE)
        self.events = <epoll_event*>malloc(MAX_EVENTS * sizeof(epoll_event))
        if self.scratch == NULL or self.events == NULL:
            raise MemoryError()
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        if self.epfd < 0:
            raise OSError(errno, "epoll_create1 failed")
        self.listen_fd = listener.fileno()

    def __dealloc__(self):
        free(self.scratch)
        free(self.events)
        if self.epfd >= 0:
            c_close(self.epfd)

    cpdef int wait(self, int timeout_ms) except -2:
        """Wait for events; return how many (fd_at, mask_at read them), 0 on a signal."""
        cdef int n
        with nogil:
            n = epoll_wait(self.epfd, self.events, MAX_EVENTS, timeout_ms)
        if n < 0:
            if errno == EINTR:
                PyErr_CheckSignals()        # run the SIGTERM handler
                return 0
            raise OSError(errno, "epoll_wait failed")
        self.n = n
        return n

    cpdef int fd_at(self, int i):
        return self.events[i].data.fd

    cpdef unsigned int mask_at(self, int i):
        return self.events[i].events

    cpdef void watch(self, int fd, unsigned int old, unsigned int new):
        """Wait for `new` events on fd instead of `old` (0: not registered)."""
        cdef epoll_event ev
        ev.events = new
        ev.data.fd = fd
        if not new:
            epoll_ctl(self.epfd, EPOLL_CTL_DEL, fd, &ev)
        else:
            epoll_ctl(self.epfd, EPOLL_CTL_MOD if old else EPOLL_CTL_ADD, fd, &ev)

    cpdef double now(self):
        cdef timespec ts
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec + ts.tv_nsec * 1e-9

    cpdef long wall_second(self):
        cdef timespec ts
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts.tv_sec

    cpdef int accept(self):
        """A new non-blocking TCP_NODELAY connection's fd; -1: none waiting; -2: out of resources."""
        cdef int fd, one = 1
        fd = accept4(self.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)
        if fd < 0:
            return -1 if errno == EAGAIN or errno == EINTR else -2
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))   # fails, harmlessly, on AF_UNIX
        return fd

    cpdef void limit_unsent(self, int fd, int nbytes):
        """At most nbytes of what is sent on fd held unsent in the kernel (TCP_NOTSENT_LOWAT)."""
        setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &nbytes, sizeof(nbytes))   # not on AF_UNIX: harmless

    cpdef str peer(self, int fd):
        """The client's IP address as text, for the access log ("unix:" on a unix socket)."""
        cdef char addr[128]
        cdef char text[64]
        cdef unsigned int size = sizeof(addr)
        if getpeername(fd, <sockaddr*>addr, &size) != 0:
            return "-"
        if (<sockaddr*>addr).sa_family == AF_INET:
            inet_ntop(AF_INET, &(<sockaddr_in*>addr).sin_addr, text, sizeof(text))
        elif (<sockaddr*>addr).sa_family == AF_INET6:
            inet_ntop(AF_INET6, &(<sockaddr_in6*>addr).sin6_addr, text, sizeof(text))
        elif (<sockaddr*>addr).sa_family == AF_UNIX:
            return "unix:"          # as nginx logs a unix-socket client
        else:
            return "-"
        return text.decode("ascii")

    cpdef Py_ssize_t recv_into(self, int fd, RequestParser parser) except -3:
        """Read into the parser: bytes read, 0 at end of stream, -1 would block, -2 error."""
        cdef ssize_t n = recv(fd, self.scratch, SCRATCH_SIZE, 0)
        if n < 0:
            return -1 if errno == EAGAIN or errno == EINTR else -2
        if n > 0:
            parser._append(self.scratch, n)
        return n

    cpdef bint discard(self, int fd):
        """Read and drop what is there; True when the peer has closed (or failed)."""
        cdef ssize_t n
        while True:
            n = recv(fd, self.scratch, SCRATCH_SIZE, 0)
            if n > 0:
                continue
            return not (n < 0 and (errno == EAGAIN or errno == EINTR))

    cpdef int send(self, int fd, OutQueue out, bint more):
        """Send what out holds: 1 all sent, 0 the socket is full, -1 error."""
        cdef ssize_t n
        cdef int flags = MSG_NOSIGNAL | (MSG_MORE if more else 0)
        cdef iovec iov[2]
        cdef msghdr msg
        cdef int count
        while out.size:
            if out.held is None:
                n = send(fd, out.buf + out.sent, out.buffered, flags)
            else:
                count = 0
                if out.buffered:
                    iov[0].iov_base = out.buf + out.sent
                    iov[0].iov_len = out.buffered
                    count = 1
                iov[count].iov_base = PyBytes_AS_STRING(out.held) + out.held_sent
                iov[count].iov_len = PyBytes_GET_SIZE(out.held) - out.held_sent
                memset(&msg, 0, sizeof(msg))
                msg.msg_iov = iov
                msg.msg_iovlen = count + 1
                n = sendmsg(fd, &msg, flags)
            if n < 0:
                if errno == EAGAIN:
                    return 0
                if errno == EINTR:
                    continue
                return -1
            out._advance(n)
        out.clear()
        return 1

    cpdef long long sendfile(self, int fd, int file_fd, long long offset, long long count):
        """Bytes sent from file_fd at offset (0: the file ended), -1 would block, -2 error."""
        cdef off_t off = offset
        cdef ssize_t n
        while True:
            n = sendfile(fd, file_fd, &off, <size_t>count)
            if n >= 0:
                return n
            if errno == EAGAIN:
                return -1
            if errno != EINTR:
                return -2

    cpdef bint shutdown_wr(self, int fd):
        return shutdown(fd, SHUT_WR) == 0

    cpdef void close(self, int fd):
        epoll_ctl(self.epfd, EPOLL_CTL_DEL, fd, NULL)
        c_close(fd)

    cpdef bint same_file(self, bytes path, unsigned long long dev, unsigned long long ino,
                         long long size, long long mtime_ns):
        """Whether path still names the file with this identity (filecache.identity)."""
        cdef struct_stat st
        return (stat(path, &st) == 0 and <unsigned long long>st.st_ino == ino
                and <unsigned long long>st.st_dev == dev and st.st_size == size
                and st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec == mtime_ns)
