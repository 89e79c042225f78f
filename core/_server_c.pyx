# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The event loop and connection lifecycle compiled to C: same design as ``_server_py``.

Read ``_server_py.py`` first: this file is its transcription onto raw system
calls -- epoll_wait into a C array, recv into one scratch buffer per worker,
the compiled parser called without Python dispatch, send/sendfile from C --
so the common request costs no Python-level call on the way in or out.

One hot path is taken in C, not through ``app.handle``: GET/HEAD of
/files/{name} for a file already looked up, by the rules of
``core/filecache.py`` -- keys, revalidation, and descriptor lifetime: a
response holds a reference to its entry until its last byte is sent, and an
entry retired meanwhile closes its descriptor only when the last user lets
go.  Everything else (other routes, errors, uploads) goes through the same
Python modules as the pure-Python loop.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.errno cimport errno, EAGAIN, EINTR
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy, memmove, memcmp
from posix.stat cimport struct_stat, stat
from posix.time cimport time_t
from posix.types cimport off_t
from posix.unistd cimport close
from cpython.exc cimport PyErr_CheckSignals

from ._parser_c cimport RequestParser
from .request_c cimport Request

import os
import signal
import traceback
import time as _time

from ._framing import expects_continue
from .committer import Committer
from .errors import HTTPError, ParseError
from .events import END_OF_MESSAGE, NEED_DATA
from .files import Upload
from .workers import orphaned, supervisor_pid, unblock_stop_signals
from .response import CONTINUE, Response, date_field, error_response, response_for, serialize_head, STATUS_LINES, SERVER
from . import filecache
from .app import file_fields
from .filecache import cache_key, head_after_date
from .timeouts import IDLE, HEAD, BODY, SENDING, LINGER, expiry_status, timeout_for


cdef extern from "<time.h>" nogil:
    time_t time(time_t* t)
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clock, timespec* ts)
    enum:
        CLOCK_MONOTONIC

cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void* ptr
        int fd
        unsigned int u32
        unsigned long u64
    struct epoll_event:
        unsigned int events
        epoll_data_t data
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event* event)
    int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout)
    enum:
        EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP, EPOLL_CTL_ADD, EPOLL_CTL_MOD,
        EPOLL_CTL_DEL, EPOLL_CLOEXEC

cdef extern from "<sys/socket.h>" nogil:
    ssize_t send(int fd, const void* buf, size_t n, int flags)
    ssize_t recv(int fd, void* buf, size_t n, int flags)
    int accept4(int fd, void* addr, void* addrlen, int flags)
    int setsockopt(int fd, int level, int optname, const void* optval, unsigned int optlen)
    int shutdown(int fd, int how)
    struct sockaddr:
        pass
    int getpeername(int fd, sockaddr* addr, unsigned int* addrlen)
    enum:
        MSG_NOSIGNAL, MSG_MORE, SOCK_NONBLOCK, SOCK_CLOEXEC, SHUT_WR

cdef extern from "<netinet/in.h>" nogil:
    enum:
        IPPROTO_TCP, AF_INET, AF_INET6
    struct in_addr:
        pass
    struct in6_addr:
        pass
    struct sockaddr_in:
        unsigned short sin_family
        in_addr sin_addr
    struct sockaddr_in6:
        unsigned short sin6_family
        in6_addr sin6_addr

cdef extern from "<arpa/inet.h>" nogil:
    const char* inet_ntop(int af, const void* src, char* dst, unsigned int size)

cdef extern from "<netinet/tcp.h>" nogil:
    enum:
        TCP_NODELAY

cdef extern from "<sys/sendfile.h>" nogil:
    ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count)

cdef enum:
    MAX_EVENTS = 512
    SCRATCH_SIZE = 262144
    # Stop parsing pipelined requests once this much is queued for sending.
    HIGH_WATER = 262144
    SENDFILE_CHUNK = 1073741824
    # Parser events one connection handles before the others get a turn.
    EVENTS_PER_TURN = 64

# How often timeouts are checked, and how long accepting pauses when the
# process is out of file descriptors (seconds).
cdef double SWEEP_INTERVAL = 0.25
cdef double EMFILE_PAUSE = 0.1

cdef bytes M_GET = b"GET", M_HEAD = b"HEAD", FILES = b"/files/", V10 = b"1.0", V11 = b"1.1"
cdef bytes HEAD_PREFIX = filecache.HEAD_PREFIX
cdef double REVALIDATE_SECONDS = filecache.REVALIDATE_SECONDS

# The Date field, refreshed once a second from response.date_field().
cdef time_t _date_second = -1
cdef bytes _date = b""


cdef inline bytes current_date():
    global _date_second, _date
    cdef time_t now = time(NULL)
    if now != _date_second:
        _date_second = now
        _date = date_field()
    return _date


cdef class FileEntry:
    """A file already resolved by FileRoot, and the head that answers it (filecache.FileEntry)."""
    cdef bytes path            # as requested, symlinks not resolved: what stat() checks
    cdef int fd
    cdef unsigned long dev, ino
    cdef long long size
    cdef long mtime_sec, mtime_nsec
    cdef bytes head_rest       # the head after the Date field
    cdef list fields           # app.file_fields of the file, for a head built afresh
    cdef double resolved_at    # when FileRoot last resolved it (see core/filecache.py)
    cdef int users             # responses sending from fd
    cdef bint retired          # out of the cache: fd closes when users falls to 0

    cdef inline FileEntry acquire(self):
        self.users += 1
        return self

    cdef inline void release(self):
        self.users -= 1
        if self.users == 0 and self.retired:
            close(self.fd)

    cdef void retire(self):
        self.retired = True
        if self.users == 0:
            close(self.fd)


cdef class Conn:
    cdef int fd
    cdef RequestParser parser
    cdef char* out
    cdef Py_ssize_t out_len, out_sent, out_cap
    cdef int file_fd
    cdef FileEntry file_entry  # the cache entry lending file_fd, or None when file_fd is ours
    cdef off_t file_off
    cdef long long file_left
    cdef object request, body_sink, pending
    cdef bint closing, peer_closed
    cdef unsigned int events
    cdef int phase                  # see core/timeouts.py
    cdef double deadline            # when the phase's clock runs out
    cdef long long requests         # answered on this connection
    cdef bint linger_after          # closing because of an error: linger first
    cdef bint lingering
    cdef object committing          # (request, keep_alive) of an upload being committed
    cdef bint yielded               # stopped processing for its turn, input may be left
    cdef bint scheduled             # in the worker's ready list

    def __cinit__(self):
        self.out = NULL
        self.file_fd = -1

    def __dealloc__(self):
        free(self.out)

    cdef int queue(self, const char* data, Py_ssize_t n) except -1:
        cdef Py_ssize_t need = self.out_len + n, cap
        cdef char* grown
        if need > self.out_cap:
            cap = max(need, self.out_cap * 2, 1024)
            grown = <char*>realloc(self.out, cap)
            if grown == NULL:
                raise MemoryError()
            self.out = grown
            self.out_cap = cap
        memcpy(self.out + self.out_len, data, n)
        self.out_len = need
        return 0

    cdef inline int queue_bytes(self, bytes data) except -1:
        return self.queue(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))

    cdef int flush(self):
        """Send what is queued: 1 when all is sent, 0 when the socket is full, -1 on error."""
        cdef ssize_t n
        cdef int flags
        while self.out_sent < self.out_len:
            # MSG_MORE: the head waits for the file's first bytes, one segment out.
            flags = MSG_NOSIGNAL | (MSG_MORE if self.file_left > 0 else 0)
            n = send(self.fd, self.out + self.out_sent, self.out_len - self.out_sent, flags)
            if n < 0:
                if errno == EAGAIN:
                    return 0
                if errno == EINTR:
                    continue
                return -1
            self.out_sent += n
        self.out_sent = self.out_len = 0
        if self.out_cap > HIGH_WATER:      # give back a buffer a big response grew
            free(self.out)
            self.out = NULL
            self.out_cap = 0
        while self.file_left > 0:
            n = sendfile(self.fd, self.file_fd, &self.file_off,
                         <size_t>min(self.file_left, <long long>SENDFILE_CHUNK))
            if n < 0:
                if errno == EAGAIN:
                    return 0
                if errno == EINTR:
                    continue
                return -1
            if n == 0:       # the file shrank under us: the length we promised is a lie
                self.closing = True
                self.file_left = 0
                break
            self.file_left -= n
        self.release_file()
        return 1

    cdef void release_file(self):
        """The file being sent is done with: give back the entry's reference, or close our fd."""
        if self.file_entry is not None:
            self.file_entry.release()
            self.file_entry = None
        elif self.file_fd >= 0:
            close(self.file_fd)
        self.file_fd = -1
        self.file_left = 0

    cdef void abandon(self):
        """Let go of everything the connection holds; a cut-off upload leaves nothing behind."""
        if self.body_sink is not None:
            self.body_sink.abort()
            self.body_sink = None
        self.release_file()
        pending, self.pending = self.pending, None
        if type(pending) is FileEntry:
            (<FileEntry>pending).release()
        elif isinstance(pending, Response) and pending.fd >= 0:
            os.close(pending.fd)
        self.request = None


cdef inline double monotonic() nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef extern from "<strings.h>" nogil:
    int strncasecmp(const char* a, const char* b, size_t n)


cdef tuple FILE_ANSWER_FIELDS = filecache.FILE_ANSWER_FIELDS


cdef bint may_change_file_answer(list headers):
    """Whether a request carries one of filecache.FILE_ANSWER_FIELDS (as takes_fast_path checks).

    Names compare case-insensitively in C, by length first; no Python call
    per field.
    """
    cdef tuple header
    cdef bytes name, wanted
    cdef Py_ssize_t n
    for header in headers:
        name = <bytes>header[0]
        n = PyBytes_GET_SIZE(name)
        for wanted in FILE_ANSWER_FIELDS:
            if n == PyBytes_GET_SIZE(wanted) and \
                    strncasecmp(PyBytes_AS_STRING(name), PyBytes_AS_STRING(wanted), n) == 0:
                return True
    return False


cdef str peer_address(int fd):
    """The client's IP address as text, for the access log (only called when logging)."""
    cdef char addr[128]
    cdef char text[64]
    cdef unsigned int size = sizeof(addr)
    if getpeername(fd, <sockaddr*>addr, &size) != 0:
        return "-"
    if (<sockaddr_in*>addr).sin_family == AF_INET:
        inet_ntop(AF_INET, &(<sockaddr_in*>addr).sin_addr, text, sizeof(text))
    elif (<sockaddr_in6*>addr).sin6_family == AF_INET6:
        inet_ntop(AF_INET6, &(<sockaddr_in6*>addr).sin6_addr, text, sizeof(text))
    else:
        return "-"
    return text.decode("ascii")


cdef class Worker:
    cdef int epfd, listen_fd
    cdef object listener, app, limits, committer
    cdef int commit_fd              # the committer's eventfd
    cdef list ready                 # connections with input left after their turn
    cdef double graceful_timeout
    cdef dict conns
    cdef dict file_cache
    cdef bint stopping, accepting
    cdef double now, accept_paused_until
    cdef double timeouts[5]         # by phase, from Limits via timeouts.timeout_for
    cdef Py_ssize_t max_connections
    cdef long long max_keepalive_requests
    cdef char* scratch
    cdef int parent

    def __cinit__(self):
        self.scratch = <char*>malloc(SCRATCH_SIZE)
        if self.scratch == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.scratch)

    def __init__(self, listener, app, limits, graceful_timeout=30.0):
        self.listener = listener
        self.listen_fd = listener.fileno()
        self.app = app
        self.limits = limits
        self.graceful_timeout = graceful_timeout
        self.conns = {}
        self.file_cache = {}
        self.committer = Committer()
        self.commit_fd = self.committer.fd
        self.ready = []
        self.stopping = False
        self.accepting = False
        self.accept_paused_until = 0
        for phase in (IDLE, HEAD, BODY, SENDING, LINGER):
            self.timeouts[phase] = timeout_for(phase, limits)
        self.max_connections = limits.max_connections
        self.max_keepalive_requests = limits.max_keepalive_requests
        self.now = monotonic()
        self.parent = supervisor_pid()

    def stop(self, *_):
        self.stopping = True

    def run(self):
        cdef epoll_event events[MAX_EVENTS]
        cdef epoll_event ev
        cdef int n, i, fd, timeout
        cdef unsigned int mask
        cdef list turn
        cdef Conn conn
        cdef object deadline = None
        cdef double next_sweep = 0
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        unblock_stop_signals()      # a stop that came during start-up is delivered now
        self.listener.setblocking(False)
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        if self.epfd < 0:
            raise OSError(errno, "epoll_create1 failed")
        self.set_accepting(True)
        ev.events = EPOLLIN
        ev.data.fd = self.commit_fd
        epoll_ctl(self.epfd, EPOLL_CTL_ADD, self.commit_fd, &ev)
        try:
            while True:
                if self.stopping and deadline is None:
                    # Stop accepting; let in-flight responses finish, bounded in time.
                    deadline = _time.monotonic() + self.graceful_timeout
                    self.set_accepting(False)
                    self.listener.close()
                    self.listen_fd = -1
                    for conn in list(self.conns.values()):
                        if conn.phase == IDLE:
                            self.drop(conn)
                if deadline is not None and (not self.conns or _time.monotonic() > deadline):
                    break
                # Turns are owed to the ready list: only look for what else is ready.
                timeout = 0 if self.ready else (250 if deadline is None else 100)
                with nogil:
                    n = epoll_wait(self.epfd, events, MAX_EVENTS, timeout)
                if n < 0:
                    if errno == EINTR:
                        PyErr_CheckSignals()      # run the SIGTERM handler
                        continue
                    raise OSError(errno, "epoll_wait failed")
                self.now = monotonic()
                for i in range(n):
                    fd = events[i].data.fd
                    if fd == self.listen_fd:
                        self.accept()
                        continue
                    if fd == self.commit_fd:
                        self.answer_commits()
                        continue
                    conn = self.conns.get(fd)
                    if conn is None:
                        continue
                    mask = events[i].events
                    try:
                        if mask & (EPOLLIN | EPOLLERR | EPOLLHUP):
                            self.on_readable(conn)
                        self.after_io(conn, True)
                    except Exception:
                        # A bug must cost one connection, never the worker.
                        traceback.print_exc()
                        self.drop(conn)
                if self.ready:
                    turn, self.ready = self.ready, []
                    for conn in turn:
                        conn.scheduled = False
                        if self.conns.get(conn.fd) is not conn:
                            continue
                        try:
                            self.process(conn)
                            self.after_io(conn, True)
                        except Exception:
                            traceback.print_exc()
                            self.drop(conn)
                if self.now >= next_sweep:
                    next_sweep = self.now + SWEEP_INTERVAL
                    self.sweep()
        finally:
            for conn in list(self.conns.values()):
                self.drop(conn)
            self.committer.close()
            for entry in self.file_cache.values():
                (<FileEntry>entry).retire()
            self.file_cache.clear()
            close(self.epfd)

    cdef answer_commits(self):
        cdef Conn conn
        for conn, response in self.committer.results():
            if self.conns.get(conn.fd) is not conn:
                continue                # the client is gone; the upload is stored all the same
            try:
                self.commit_done(conn, response)
                self.after_io(conn, True)
            except Exception:
                traceback.print_exc()
                self.drop(conn)

    cdef set_accepting(self, bint accepting):
        cdef epoll_event ev
        if accepting == self.accepting or (accepting and self.stopping):
            return
        ev.events = EPOLLIN
        ev.data.fd = self.listen_fd
        epoll_ctl(self.epfd, EPOLL_CTL_ADD if accepting else EPOLL_CTL_DEL, self.listen_fd, &ev)
        self.accepting = accepting

    cdef accept(self):
        cdef int fd, one = 1, i
        cdef epoll_event ev
        cdef Conn conn
        for i in range(64):
            if len(self.conns) >= self.max_connections:
                self.set_accepting(False)   # the kernel's backlog holds the rest
                return
            fd = accept4(self.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)
            if fd < 0:
                if errno != EAGAIN and errno != EINTR:
                    # EMFILE, ENFILE, ENOBUFS, ENOMEM: pause rather than spin on
                    # a listener that stays readable; the backlog holds the rest.
                    self.set_accepting(False)
                    self.accept_paused_until = self.now + EMFILE_PAUSE
                return
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
            conn = Conn.__new__(Conn)
            conn.fd = fd
            conn.parser = RequestParser(self.limits)
            conn.events = EPOLLIN
            self.conns[fd] = conn
            ev.events = EPOLLIN
            ev.data.fd = fd
            epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, &ev)
            self.enter_phase(conn, IDLE)

    cdef on_readable(self, Conn conn):
        cdef ssize_t n
        if conn.lingering:
            self.discard_input(conn)
            return
        if conn.scheduled or conn.committing is not None:
            return          # input already buffered comes first; read more after it
        n = recv(conn.fd, self.scratch, SCRATCH_SIZE, 0)
        if n < 0:
            if errno == EAGAIN or errno == EINTR:
                return
            conn.peer_closed = True
            return
        if n == 0:
            conn.peer_closed = True
            return
        conn.parser._append(self.scratch, n)
        self.process(conn)

    cdef discard_input(self, Conn conn):
        """While lingering: read and drop what the client still sends, until it closes."""
        cdef ssize_t n
        while True:
            n = recv(conn.fd, self.scratch, SCRATCH_SIZE, 0)
            if n > 0:
                continue
            if n < 0 and (errno == EAGAIN or errno == EINTR):
                return
            conn.peer_closed = True
            return

    cdef process(self, Conn conn):
        """Handle the requests in the buffer, until output backs up or the turn is used up."""
        cdef RequestParser parser = conn.parser
        cdef object event
        cdef int budget = EVENTS_PER_TURN
        conn.yielded = False
        while not conn.closing and conn.file_left == 0 and conn.committing is None \
                and conn.out_len < HIGH_WATER:
            if budget == 0:
                conn.yielded = True
                return
            budget -= 1
            try:
                event = parser.next_event()
            except ParseError as error:
                self.fail(conn, error)
                return
            if event is NEED_DATA:
                return
            if event is END_OF_MESSAGE:
                self.end_of_request(conn)
            elif type(event) is bytes:
                if conn.body_sink is not None:
                    try:
                        conn.body_sink.write(event)
                    except HTTPError as error:
                        conn.body_sink = None
                        self.fail(conn, error)
                        return
            else:
                self.start_request(conn, <Request>event)

    cdef start_request(self, Conn conn, Request request):
        conn.request = request
        if (request.method == M_GET or request.method == M_HEAD) and not request.chunked \
                and request.content_length == 0 and request.target.startswith(FILES) \
                and b"?" not in request.target and not may_change_file_answer(request.headers):
            entry = self.cached_file(request.target)
            if entry is not None:
                conn.pending = entry.acquire()     # released once answered (or abandoned)
                return
        try:
            result = self.app.handle(request)
        except HTTPError as error:
            result = response_for(error)
        if isinstance(result, Upload):
            conn.body_sink = result
            # RFC 9110 §10.1.1: tell a client that waits for it to send the body.
            if expects_continue(request):
                conn.queue_bytes(CONTINUE)
        elif expects_continue(request):
            self.refuse_before_body(conn, request, result)
        else:
            conn.pending = result

    cdef refuse_before_body(self, Conn conn, Request request, response):
        """RFC 9110 §10.1.1: a client waiting for 100 Continue gets the refusal instead, at once.

        Its body is never read, so the stream is out of step: the connection
        closes after the response, lingering so that the client reads it.
        """
        conn.request = None
        conn.requests += 1
        conn.linger_after = True
        if self.app.access_log is not None:
            self.log(conn, request, response.status, response.length)
        self.respond(conn, response, False)

    cdef FileEntry cached_file(self, bytes target):
        """The FileEntry for target if the file is unchanged, else a fresh one, else None."""
        cdef bytes key = target
        # A key equal to the target is the target's own (filecache.cache_key).
        cdef FileEntry entry = self.file_cache.get(target)
        cdef struct_stat st
        if entry is None:
            key = cache_key(target)
            entry = self.file_cache.get(key)
        if entry is not None:
            if (self.now - entry.resolved_at < REVALIDATE_SECONDS and stat(entry.path, &st) == 0
                    and <unsigned long>st.st_ino == entry.ino and <unsigned long>st.st_dev == entry.dev
                    and st.st_size == entry.size and st.st_mtim.tv_sec == entry.mtime_sec
                    and st.st_mtim.tv_nsec == entry.mtime_nsec):
                return entry
            del self.file_cache[key]
            entry.retire()
        try:
            fd, info, _, requested_path = self.app.files.open_for_reading(target[7:])
        except HTTPError:
            return None         # let app.handle give the answer
        entry = FileEntry.__new__(FileEntry)
        entry.path = os.fsencode(requested_path)
        entry.fd = fd
        entry.dev = info.st_dev
        entry.ino = info.st_ino
        entry.size = info.st_size
        entry.mtime_sec = info.st_mtime_ns // 1000000000
        entry.mtime_nsec = info.st_mtime_ns % 1000000000
        # The same fields app.handle gives this file (ETag, Last-Modified, ...):
        # they change only with size and mtime, and then the entry is replaced.
        entry.fields = file_fields(info)
        entry.head_rest = head_after_date(entry.fields, info.st_size)
        entry.resolved_at = self.now
        entry.users = 0
        entry.retired = False
        if len(self.file_cache) >= filecache.MAX_ENTRIES:
            (<FileEntry>self.file_cache.pop(next(iter(self.file_cache)))).retire()   # the oldest goes
        self.file_cache[key] = entry
        return entry

    cdef end_of_request(self, Conn conn):
        cdef Request request = conn.request
        cdef FileEntry entry
        cdef bint keep_alive
        sink, response = conn.body_sink, conn.pending
        conn.request = conn.body_sink = conn.pending = None
        conn.requests += 1
        conn.phase = SENDING    # a response is due: the idle clock restarts once it is sent
        keep_alive = request.keep_alive and conn.requests < self.max_keepalive_requests
        if type(response) is FileEntry:
            entry = response
            if keep_alive and request.version == V11:
                conn.queue_bytes(HEAD_PREFIX)
                conn.queue_bytes(current_date())
                conn.queue_bytes(entry.head_rest)
                if request.method == M_GET and entry.size > 0:
                    conn.file_fd = entry.fd
                    conn.file_entry = entry         # the reference goes with it
                    conn.file_off = 0
                    conn.file_left = entry.size
                else:
                    entry.release()
                if self.app.access_log is not None:
                    self.log(conn, request, 200, entry.size)
                return
            # Closing after this one (or HTTP/1.0): the general path says so in the head.
            response = Response(200, entry.fields, fd=os.dup(entry.fd), length=entry.size)
            response.head_only = request.method == M_HEAD
            entry.release()
        if sink is not None:
            # Committed off the loop; commit_done answers.  Nothing more is
            # parsed meanwhile: responses go out in order.
            conn.committing = (request, keep_alive)
            self.committer.submit(conn, sink)
            return
        if self.app.access_log is not None:
            self.log(conn, request, response.status, response.length)
        self.respond(conn, response, keep_alive and not response.close, request.version == V10)

    cdef commit_done(self, Conn conn, response):
        """The upload being committed is stored (201) or refused: answer it."""
        request, keep_alive = conn.committing
        conn.committing = None
        conn.phase = SENDING    # as in end_of_request
        if self.app.access_log is not None:
            self.log(conn, request, response.status, response.length)
        self.respond(conn, response, keep_alive and not response.close, request.version == V10)

    cdef fail(self, Conn conn, error):
        """Answer an error the stream cannot recover from, then close."""
        conn.abandon()
        conn.linger_after = True
        response = error_response(error.status, error.message, fields=error.fields)
        if self.app.access_log is not None:
            self.log(conn, None, response.status, response.length)
        self.respond(conn, response, False)

    cdef log(self, Conn conn, request, int status, long long length):
        self.app.access_log.write(peer_address(conn.fd), request, status, length)

    cdef respond(self, Conn conn, response, bint keep_alive, bint http10=False):
        conn.queue_bytes(serialize_head(response, keep_alive, http10=http10))
        if response.head_only or (response.fd >= 0 and response.length <= 0):
            if response.fd >= 0:
                os.close(response.fd)
        elif response.fd >= 0:
            conn.file_fd = response.fd
            conn.file_entry = None
            conn.file_off = response.offset
            conn.file_left = response.length
        else:
            conn.queue_bytes(response.body)
        if not keep_alive:
            conn.closing = True

    cdef after_io(self, Conn conn, bint progressed=False):
        """Send what can be sent, then decide what to wait for next."""
        cdef int result, phase
        cdef Py_ssize_t out_before
        cdef long long file_before
        cdef unsigned int events
        cdef epoll_event ev
        while True:
            result = conn.flush()
            if result < 0:
                self.drop(conn)
                return
            if result == 0:
                break                   # the socket is full: wait until writable
            if conn.closing:
                if conn.lingering:
                    return              # its clock runs from the start, whatever arrives
                if conn.linger_after and not conn.peer_closed:
                    self.start_lingering(conn)
                else:
                    self.drop(conn)
                return
            if conn.yielded:
                break                   # its turn is over; the ready list resumes it
            out_before, file_before = conn.out_len, conn.file_left
            self.process(conn)          # requests held back while output was queued
            if conn.out_len == out_before and conn.file_left == file_before and not conn.yielded:
                if conn.committing is None and (conn.peer_closed or (self.stopping and conn.request is None)):
                    # Everything the peer sent is answered (an upload being
                    # committed is answered first, even to a peer that has
                    # half-closed); a request cut off mid-body is dropped,
                    # and abandon() aborts its upload.
                    self.drop(conn)
                    return
                break
        if conn.yielded and not conn.scheduled:
            conn.scheduled = True
            self.ready.append(conn)
        # Backpressure: while output is queued, wait only for writability;
        # while an upload is committed, for nothing (what the client sends
        # next stays in the kernel's buffers, not ours).
        if conn.out_len or conn.file_left:
            self.watch(conn, EPOLLOUT)
        else:
            self.watch(conn, EPOLLIN if conn.committing is None else 0)
        if conn.out_len or conn.file_left or conn.committing is not None:
            phase = SENDING             # (a commit is the server's wait: sweep leaves it be)
        elif conn.request is not None:
            phase = BODY
        elif conn.parser.in_progress():
            phase = HEAD
        else:
            phase = IDLE    # the keep-alive clock starts only now that all is sent
        if phase != conn.phase or (progressed and (phase == BODY or phase == SENDING)):
            self.enter_phase(conn, phase)

    cdef inline void watch(self, Conn conn, unsigned int events):
        """Wait for these events on conn's socket (0: none, not even a hang-up)."""
        cdef epoll_event ev
        if events == conn.events:
            return
        ev.events = events
        ev.data.fd = conn.fd
        if not events:
            epoll_ctl(self.epfd, EPOLL_CTL_DEL, conn.fd, &ev)
        else:
            epoll_ctl(self.epfd, EPOLL_CTL_ADD if not conn.events else EPOLL_CTL_MOD, conn.fd, &ev)
        conn.events = events

    cdef inline void enter_phase(self, Conn conn, int phase):
        conn.phase = phase
        conn.deadline = self.now + self.timeouts[phase]

    cdef start_lingering(self, Conn conn):
        """RFC 9112 §9.6: shut our side, then drain the client's before closing."""
        cdef epoll_event ev
        conn.lingering = True
        if shutdown(conn.fd, SHUT_WR) != 0:
            self.drop(conn)
            return
        self.watch(conn, EPOLLIN)
        self.enter_phase(conn, LINGER)

    cdef sweep(self):
        """Close (or answer 408) every connection whose clock ran out."""
        cdef Conn conn
        cdef double now = self.now
        if orphaned(self.parent):
            self.stopping = True
        cdef double idle_since
        for conn in self.conns.values():
            # Idle for a whole sweep: give back the buffers, so an idle
            # keep-alive connection costs a few hundred bytes, not pages.
            if conn.phase == IDLE and conn.out_len == 0 and \
                    now - (conn.deadline - self.timeouts[IDLE]) >= SWEEP_INTERVAL:
                if conn.out != NULL:
                    free(conn.out)
                    conn.out = NULL
                    conn.out_cap = 0
                conn.parser.release_buffer()
        expired = [c for c in self.conns.values()
                   if (<Conn>c).deadline <= now and (<Conn>c).committing is None]
        for conn in expired:
            if conn.lingering or conn.peer_closed:
                self.drop(conn)
                continue
            status = expiry_status(conn.phase)
            if status is None:
                self.drop(conn)
                continue
            which = "header" if conn.phase == HEAD else "body"
            self.fail(conn, HTTPError(status, f"request {which} not received within "
                                              f"{which}_timeout={self.timeouts[conn.phase]} s"))
            self.after_io(conn)
        if not self.accepting and self.now >= self.accept_paused_until \
                and len(self.conns) < self.max_connections:
            self.set_accepting(True)

    cdef drop(self, Conn conn):
        if self.conns.pop(conn.fd, None) is None:
            return
        epoll_ctl(self.epfd, EPOLL_CTL_DEL, conn.fd, NULL)
        conn.abandon()
        close(conn.fd)
