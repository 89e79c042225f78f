"""The event loop and connection lifecycle, written once for both builds.

One loop per worker process over non-blocking sockets (epoll), so an idle
keep-alive client costs a socket and a small object, not a thread.  Cython
compiles this very file in pure-Python mode as ``core.loop_c``:
``loop_c.pxd`` beside it makes Connection and EventLoop ``cdef class``es
with typed fields and C-level methods.  Every system call goes through the
I/O layer (``_io_c.pyx`` compiled, ``_io_py.py`` its twin, same
interface), so this file never touches a socket; the file cache
(``filecache.py``, compiled as ``filecache_c``) is written once the same way.

A connection reads, parses the requests already buffered (pipelining for
free), and queues responses in order.  Backpressure: while a response is
still being sent, no further request is parsed and nothing more is read, so a
client that does not read can never make us buffer without bound -- the
kernel's socket buffers fill and the client is the one who waits.

Fair turns: a connection handles at most EVENTS_PER_TURN parser events
(request heads, body pieces, chunks) before the others get theirs; one that
still has input buffered waits in the ready list and resumes next turn
without waiting for epoll, which would not report bytes already read.  An
upload is committed (fsync, rename) in a helper thread (core/committer.py);
the connection answers when the commit reports back, and reads nothing
meanwhile.

Clocks: each connection has one deadline, set when it enters a phase
(core/timeouts.py) and pushed back only by progress while a body is read or
a response sent; sweep() answers 408 or closes when it runs out, and gives
back the buffers of connections idle for a whole sweep.
"""
import os
import signal

from ._framing import expects_continue
from .committer import Committer
from .errors import HTTPError, ParseError, print_exception
from .events import END_OF_MESSAGE, NEED_DATA
from .files import Upload
from .implementation import load
from .response import CONTINUE, Response, date_field, error_response, response_for, serialize_head
from .timeouts import BODY, HEAD, IDLE, LINGER, SENDING, expiry_status, timeout_for
from .supervisor import orphaned, supervisor_pid, unblock_stop_signals
from . import parser as _parser

# The I/O layer and the file cache matching this build: compiled with the compiled loop.
if __name__.endswith("_c"):
    (_io, _), (_filecache, _) = load("_io_c", "_io_py"), load("filecache_c", "filecache")
else:
    _io, _filecache = load("_io_py", "_io_py")[0], load("filecache", "filecache")[0]

READ = 0x001                    # EPOLLIN
WRITE = 0x004                   # EPOLLOUT
READABLE = 0x001 | 0x008 | 0x010    # EPOLLIN | EPOLLERR | EPOLLHUP: recv tells which
# The listener is shared by every worker: EPOLLEXCLUSIVE wakes one of them
# for a new connection, not all (the thundering herd).
LISTEN_EVENTS = 0x001 | 0x10000000  # EPOLLIN | EPOLLEXCLUSIVE
# Stop parsing pipelined requests once this much is queued for sending.
HIGH_WATER = 256 * 1024
SENDFILE_CHUNK = 1 << 30
# A connection accepted past this worker's part of limits.unbounded_connections
# (server.py) gets TCP_NOTSENT_LOWAT: the kernel holds at most this much of its
# response not yet sent, and says "writable" again below half of it.  Unbounded, a slow reader's send buffer
# autotunes up to tcp_wmem's maximum (4 MiB here); 4,000 such readers of a
# 50 MB file kept the kernel's TCP memory under pressure 56 s of 60 (TcpExt
# TCPMemoryPressuresChrono), where it prunes and collapses queues: with the
# bound 4.67 GiB/s instead of 3.47, at 0.17 CPU s/GiB instead of 0.23.  Not
# for every connection: 50 fast readers cost ~25 % more CPU per GiB with it
# (more wake-ups, smaller sendfile calls).  128 KiB avoided the pressure
# altogether but doubled the wake-ups.  Shorter responses never notice it.
UNSENT_BOUND = 1 << 20
# How often timeouts are checked (ms), and how long accepting pauses when the
# process is out of file descriptors (s).
SWEEP_MS = 250
STOPPING_MS = 100
# A stopping worker (SIGTERM, or replaced by a reload) answers the next
# request on each connection with Connection: close; a connection idle this
# long meanwhile is closed.  Not at once: a request may be on its way.
STOP_IDLE_GRACE = 1.0
EMFILE_PAUSE = 0.1
# Parser events one connection handles before the others get a turn.
EVENTS_PER_TURN = 64
M_GET, M_HEAD, V10, V11 = b"GET", b"HEAD", b"1.0", b"1.1"


class Connection:
    def __init__(self, fd, parser):
        self.fd = fd
        self.parser = parser
        self.out = _io.OutQueue()   # bytes waiting to be sent, in order
        self.file_fd = -1           # a file being sent after `out`...
        self.file_entry = None      # ...lent by this entry, or None when file_fd is ours
        self.file_off = 0
        self.file_left = 0
        self.request = None         # the request whose body is being read
        self.body_sink = None       # Upload, or None to discard the body
        self.pending = None         # response to send once the body is read...
        self.pending_answer = None  # ...or a cached file's answer (its entry acquired)
        self.closing = False        # close once everything queued has been sent
        self.peer_closed = False
        self.events = READ
        self.phase = IDLE
        self.deadline = 0.0
        self.requests = 0           # answered on this connection
        self.linger_after = False   # closing because of an error: linger first
        self.lingering = False
        self.committing = None      # (request, keep_alive) of an upload being committed
        self.yielded = False        # stopped processing for its turn, input may be left
        self.scheduled = False      # in the worker's ready list


class EventLoop:
    """One event loop: accept, read, parse, respond, until told to stop."""

    def __init__(self, listener, app, limits, graceful_timeout=30.0):
        self.listener = listener
        self.app = app
        self.limits = limits
        self.graceful_timeout = graceful_timeout
        self.io = _io.IO(listener)
        self.listen_fd = listener.fileno()
        self.connections = {}
        self.file_cache = _filecache.FileCache(app, self.io)
        self.committer = Committer()
        self.commit_fd = self.committer.fd
        self.timeouts = [timeout_for(phase, limits) for phase in range(LINGER + 1)]    # by phase
        self.ready = []             # connections with input left after their turn
        self.stopping = False
        self.accepting = False
        self.accept_paused_until = 0.0
        self.max_connections = limits.max_connections
        self.unbounded_connections = limits.unbounded_connections
        self.max_keepalive_requests = limits.max_keepalive_requests
        self.date_second = -1
        self.date = b""
        self.now = self.io.now()
        self.parent = supervisor_pid()

    def stop(self, *_):
        self.stopping = True

    def run(self):
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        unblock_stop_signals()      # a stop that came during start-up is delivered now
        self.listener.setblocking(False)
        self.set_accepting(True)
        self.io.watch(self.commit_fd, 0, READ)
        try:
            self.loop()
        finally:
            for conn in list(self.connections.values()):
                self.drop(conn)
            self.committer.close()
            self.file_cache.close()

    def loop(self):
        io = self.io
        stopping_since = False
        deadline = 0.0
        next_sweep = 0.0
        while True:
            if self.stopping and not stopping_since:
                # Stop accepting; let in-flight responses finish, bounded in time.
                stopping_since = True
                deadline = io.now() + self.graceful_timeout
                self.set_accepting(False)
                self.listener.close()   # our copy: the supervisor keeps the socket and its queue
                if self.timeouts[IDLE] > STOP_IDLE_GRACE:
                    self.timeouts[IDLE] = STOP_IDLE_GRACE
                for conn in self.connections.values():
                    if conn.phase == IDLE and conn.deadline > self.now + STOP_IDLE_GRACE:
                        conn.deadline = self.now + STOP_IDLE_GRACE
            if stopping_since and (not self.connections or io.now() > deadline):
                return
            # Turns are owed to the ready list: only look for what else is ready.
            n = io.wait(0 if self.ready else (STOPPING_MS if stopping_since else SWEEP_MS))
            self.now = io.now()
            for i in range(n):
                fd = io.fd_at(i)
                if fd == self.listen_fd:
                    self.accept()
                elif fd == self.commit_fd:
                    self.answer_commits()
                else:
                    conn = self.connections.get(fd)
                    if conn is not None:
                        self.serve(conn, io.mask_at(i) & READABLE)
            if self.ready:
                turn, self.ready = self.ready, []
                for conn in turn:
                    conn.scheduled = False
                    if self.connections.get(conn.fd) is conn:
                        self.serve(conn, 0)
            if self.now >= next_sweep:
                next_sweep = self.now + SWEEP_MS / 1000
                self.sweep()

    def serve(self, conn, readable):
        """Read (or resume processing) for conn, then send and decide what next."""
        try:
            if readable:
                self.on_readable(conn)
            else:
                self.process(conn)
            self.after_io(conn, True)
        except Exception:
            # A bug must cost one connection, never the worker.
            print_exception()
            self.drop(conn)

    def answer_commits(self):
        for conn, response in self.committer.results():
            if self.connections.get(conn.fd) is not conn:
                continue                # the client is gone; the upload is stored all the same
            try:
                self.commit_done(conn, response)
                self.after_io(conn, True)
            except Exception:
                print_exception()
                self.drop(conn)

    def set_accepting(self, accepting):
        if accepting != self.accepting and not (accepting and self.stopping):
            self.io.watch(self.listen_fd, LISTEN_EVENTS if self.accepting else 0,
                          LISTEN_EVENTS if accepting else 0)
            self.accepting = accepting

    def accept(self):
        for _ in range(64):
            if len(self.connections) >= self.max_connections:
                self.set_accepting(False)   # the kernel's backlog holds the rest
                return
            fd = self.io.accept()
            if fd == -1:
                return
            if fd < 0:
                # Out of descriptors or memory: pause rather than spin on a
                # listener that stays readable; the backlog holds the rest.
                self.set_accepting(False)
                self.accept_paused_until = self.now + EMFILE_PAUSE
                return
            conn = Connection(fd, _parser.RequestParser(self.limits))
            self.connections[fd] = conn
            if len(self.connections) > self.unbounded_connections:
                self.io.limit_unsent(fd, UNSENT_BOUND)
            self.io.watch(fd, 0, READ)
            self.enter_phase(conn, IDLE)

    # -- reading and dispatching -------------------------------------------------

    def on_readable(self, conn):
        if conn.lingering:
            if self.io.discard(conn.fd):
                conn.peer_closed = True
            return
        if conn.scheduled or conn.committing is not None:
            return          # input already buffered comes first; read more after it
        n = self.io.recv_into(conn.fd, conn.parser)
        if n == -1:
            return
        if n <= 0:
            conn.peer_closed = True
            return
        self.process(conn)

    def process(self, conn):
        """Handle the requests in the buffer, until output backs up or the turn is used up."""
        parser = conn.parser
        budget = EVENTS_PER_TURN
        conn.yielded = False
        while not conn.closing and conn.file_left == 0 and conn.committing is None \
                and conn.out.size < HIGH_WATER:
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
            elif isinstance(event, bytes):
                if conn.body_sink is not None:
                    try:
                        conn.body_sink.write(event)
                    except HTTPError as error:
                        conn.body_sink = None
                        self.fail(conn, error)
                        return
            else:
                self.start_request(conn, event)

    def start_request(self, conn, request):
        conn.request = request
        answer = self.file_cache.lookup(request, self.now)
        if answer is not None:
            answer.entry.acquire()      # released once answered (or abandoned)
            conn.pending_answer = answer
            return
        try:
            result = self.app.handle(request)
        except HTTPError as error:
            result = response_for(error)
        if isinstance(result, Upload):
            conn.body_sink = result
            # RFC 9110 §10.1.1: tell a client that waits for it to send the body.
            if expects_continue(request):
                conn.out.append(CONTINUE)
        elif expects_continue(request):
            self.refuse_before_body(conn, request, result)
        else:
            conn.pending = result

    def current_date(self):
        """The Date field, from response.date_field() once a second."""
        second = self.io.wall_second()
        if second != self.date_second:
            self.date_second = second
            self.date = date_field()
        return self.date

    def refuse_before_body(self, conn, request, response):
        """RFC 9110 §10.1.1: a client waiting for 100 Continue gets the refusal instead, at once.

        Its body is never read, so the stream is out of step: the connection
        closes after the response, lingering so that the client reads it.
        """
        conn.request = None
        conn.requests += 1
        conn.linger_after = True
        self.log(conn, request, response.status, response.length)
        self.respond(conn, response, False, False)

    def end_of_request(self, conn):
        request, sink, response, answer = conn.request, conn.body_sink, conn.pending, conn.pending_answer
        conn.request = conn.body_sink = conn.pending = conn.pending_answer = None
        conn.requests += 1
        conn.phase = SENDING    # a response is due: the idle clock restarts once it is sent
        keep_alive = request.keep_alive and conn.requests < self.max_keepalive_requests and not self.stopping
        if answer is not None:
            entry = answer.entry
            if keep_alive and request.version == V11:
                out = conn.out
                out.append(answer.prefix)
                out.append(self.current_date())
                out.append(answer.head_rest)
                if request.method == M_GET and answer.fd >= 0 and answer.length > 0:
                    conn.file_fd = answer.fd
                    conn.file_entry = entry         # the reference goes with it
                    conn.file_off = 0
                    conn.file_left = answer.length
                else:
                    if request.method == M_GET and answer.body is not None:
                        out.append(answer.body)
                    entry.release()
                self.log(conn, request, answer.status, answer.length)
                return
            # Closing after this one (or HTTP/1.0): the general path says so in the head.
            response = answer.response(request.method == M_HEAD)
            entry.release()
        if sink is not None:
            # Committed off the loop; commit_done answers.  Nothing more is
            # parsed meanwhile: responses go out in order.
            conn.committing = (request, keep_alive)
            self.committer.submit(conn, sink)
            return
        self.log(conn, request, response.status, response.length)
        self.respond(conn, response, keep_alive and not response.close, request.version == V10)

    def commit_done(self, conn, response):
        """The upload being committed is stored (201) or refused: answer it."""
        request, keep_alive = conn.committing
        conn.committing = None
        conn.phase = SENDING    # as in end_of_request
        self.log(conn, request, response.status, response.length)
        self.respond(conn, response, keep_alive and not response.close, request.version == V10)

    def fail(self, conn, error):
        """Answer an error the stream cannot recover from, then close."""
        request = conn.request
        method = request.method if request is not None else conn.parser.head_method()
        self.abandon(conn)
        conn.linger_after = True
        response = error_response(error.status, error.message, fields=error.fields)
        response.head_only = method == M_HEAD
        self.log(conn, None, response.status, response.length)
        self.respond(conn, response, False, False)

    def abandon(self, conn):
        """Let go of everything the connection holds; a cut-off upload leaves nothing behind."""
        if conn.body_sink is not None:
            conn.body_sink.abort()
            conn.body_sink = None
        self.release_file(conn)
        if conn.pending_answer is not None:
            conn.pending_answer.entry.release()
            conn.pending_answer = None
        pending, conn.pending = conn.pending, None
        if pending is not None and pending.fd >= 0:
            os.close(pending.fd)
        conn.request = None

    def release_file(self, conn):
        """The file being sent is done with: give back the entry's reference, or close our fd."""
        if conn.file_entry is not None:
            conn.file_entry.release()
            conn.file_entry = None
        elif conn.file_fd >= 0:
            os.close(conn.file_fd)
        conn.file_fd = -1
        conn.file_left = 0

    def log(self, conn, request, status, length):
        if self.app.access_log is not None:
            self.app.access_log.write(self.io.peer(conn.fd), request, status, length)

    def respond(self, conn, response, keep_alive, http10):
        conn.out.append(serialize_head(response, keep_alive, http10=http10))
        if response.head_only or (response.fd >= 0 and response.length <= 0):
            if response.fd >= 0:
                os.close(response.fd)
        elif response.fd >= 0:
            conn.file_fd = response.fd
            conn.file_entry = None
            conn.file_off = response.offset
            conn.file_left = response.length
        else:
            conn.out.append(response.body)
        if not keep_alive:
            conn.closing = True

    # -- sending -------------------------------------------------------------------

    def flush(self, conn):
        """Send what is queued: 1 when all is sent, 0 when the socket is full, -1 on error."""
        # MSG_MORE: the head waits for the file's first bytes, one segment out.
        result = self.io.send(conn.fd, conn.out, conn.file_left > 0)
        if result != 1:
            return result
        while conn.file_left > 0:
            want = min(conn.file_left, SENDFILE_CHUNK)
            sent = self.io.sendfile(conn.fd, conn.file_fd, conn.file_off, want)
            if sent < 0:
                return 0 if sent == -1 else -1
            if sent == 0:       # the file shrank under us: the length we promised is a lie
                conn.closing = True
                break
            conn.file_off += sent
            conn.file_left -= sent
            if sent < want:
                # The socket took what it had room for: wait until it is
                # writable rather than ask again only to be told EAGAIN.
                return 0
        if conn.file_fd >= 0:
            self.release_file(conn)
        return 1

    def after_io(self, conn, progressed):
        """Send what can be sent, then decide what to wait for next."""
        while True:
            result = self.flush(conn)
            if result < 0:
                self.drop(conn)         # the peer has gone away (EPIPE, ECONNRESET)
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
            out_before, file_before = conn.out.size, conn.file_left
            self.process(conn)          # requests held back while output was queued
            if conn.out.size == out_before and conn.file_left == file_before and not conn.yielded:
                if conn.committing is None and conn.peer_closed:
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
        if conn.out.size or conn.file_left:
            self.watch(conn, WRITE)
        else:
            self.watch(conn, READ if conn.committing is None else 0)
        if conn.out.size or conn.file_left or conn.committing is not None:
            phase = SENDING             # (a commit is the server's wait: sweep leaves it be)
        elif conn.request is not None:
            phase = BODY
        elif conn.parser.in_progress():
            phase = HEAD
        else:
            phase = IDLE    # the keep-alive clock starts only now that all is sent
        if phase != conn.phase or (progressed and (phase == BODY or phase == SENDING)):
            self.enter_phase(conn, phase)

    def watch(self, conn, events):
        """Wait for these events on conn's socket (0: none, not even a hang-up)."""
        if events != conn.events:
            self.io.watch(conn.fd, conn.events, events)
            conn.events = events

    def enter_phase(self, conn, phase):
        conn.phase = phase
        conn.deadline = self.now + self.timeouts[phase]

    def start_lingering(self, conn):
        """RFC 9112 §9.6: shut our side, then drain the client's before closing."""
        conn.lingering = True
        if not self.io.shutdown_wr(conn.fd):
            self.drop(conn)
            return
        self.watch(conn, READ)
        self.enter_phase(conn, LINGER)

    def sweep(self):
        """Close (or answer 408) every connection whose clock ran out."""
        if orphaned(self.parent):
            self.stopping = True
        if self.app.access_log is not None:
            self.app.access_log.reopen_if_asked()   # SIGUSR1, between two lines
        now = self.now
        self.file_cache.expire(now)
        for conn in self.connections.values():
            # Idle for a whole sweep: give back the buffers, so an idle
            # keep-alive connection costs a few hundred bytes, not pages.
            if conn.phase == IDLE and conn.out.size == 0 and \
                    now - (conn.deadline - self.timeouts[IDLE]) >= SWEEP_MS / 1000:
                conn.out.release()
                conn.parser.release_buffer()
        for conn in [c for c in self.connections.values() if c.deadline <= now and c.committing is None]:
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
            self.after_io(conn, False)
        if not self.accepting and self.now >= self.accept_paused_until \
                and len(self.connections) < self.max_connections:
            self.set_accepting(True)

    def drop(self, conn):
        if self.connections.pop(conn.fd, None) is None:
            return
        self.abandon(conn)
        self.io.close(conn.fd)
