"""The event loop and connection lifecycle in plain Python: the readable reference.

One loop per worker process over non-blocking sockets (``selectors``: epoll
on Linux), so an idle keep-alive client costs a socket and a small object,
not a thread.  ``_server_c.pyx`` is the same design with the per-request work
(recv, parse, route the hot paths, writev, sendfile) in C; the same tests run
against both.

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
the connection answers when the commit reports back.
"""
import errno
import os
import selectors
import signal
import socket
import time
import traceback

from ._framing import expects_continue
from .committer import Committer
from .errors import HTTPError
from .events import END_OF_MESSAGE, NEED_DATA
from .files import Upload
from .workers import orphaned, supervisor_pid, unblock_stop_signals
from .parser import ParseError, RequestParser
from .filecache import HEAD_PREFIX, FileCache, FileEntry, takes_fast_path
from .response import CONTINUE, Response, date_field, error_response, response_for, serialize_head
from .timeouts import BODY, HEAD, IDLE, LINGER, REFRESHED_ON_PROGRESS, SENDING, expiry_status, timeout_for

RECV_SIZE = 256 * 1024
# Stop parsing pipelined requests once this much is queued for sending.
HIGH_WATER = 256 * 1024
# How often timeouts are checked, and how long accepting pauses when the
# process is out of file descriptors.
SWEEP_INTERVAL = 0.25
EMFILE_PAUSE = 0.1
# Parser events one connection handles before the others get a turn.
EVENTS_PER_TURN = 64
EVENT_READ, EVENT_WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Connection:
    __slots__ = ("sock", "fd", "app", "parser", "out", "out_bytes", "file", "request", "body_sink",
                 "pending", "closing", "peer_closed", "events", "phase", "deadline", "requests",
                 "linger_after", "lingering", "file_cache", "committer", "committing", "yielded",
                 "scheduled", "peer")

    def __init__(self, sock, app, limits, file_cache, committer, peer="-"):
        self.sock = sock
        self.peer = peer         # the client's address, for the access log
        self.file_cache = file_cache
        self.committer = committer
        self.fd = sock.fileno()
        self.app = app
        self.parser = RequestParser(limits)
        self.out = []            # bytes waiting to be sent, in order
        self.out_bytes = 0
        self.file = None         # [fd, offset, remaining, entry] being sent after `out`;
                                 # entry: the FileEntry lending fd, or None when fd is ours
        self.request = None      # the request whose body is being read
        self.body_sink = None    # Upload, or None to discard the body
        self.pending = None      # response to send once the body is read
        self.closing = False     # close once everything queued has been sent
        self.peer_closed = False
        self.events = EVENT_READ
        self.phase = IDLE
        self.deadline = 0.0      # set by Worker.after_io
        self.requests = 0        # answered on this connection
        self.linger_after = False   # closing because of an error: linger first
        self.lingering = False
        self.committing = None      # (request, keep_alive) of an upload being committed
        self.yielded = False        # stopped processing for its turn, input may be left
        self.scheduled = False      # in the worker's ready list

    # -- reading and dispatching -------------------------------------------------

    def on_readable(self):
        if self.lingering:
            self.discard_input()
            return
        if self.scheduled or self.committing is not None:
            return          # input already buffered comes first; read more after it
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.peer_closed = True
            return
        if not data:
            self.peer_closed = True
            return
        self.parser.feed(data)
        self.process()

    def discard_input(self):
        """While lingering: read and drop what the client still sends, until it closes."""
        try:
            while self.sock.recv(RECV_SIZE):
                pass
            self.peer_closed = True
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.peer_closed = True

    def process(self):
        """Handle the requests in the buffer, until output backs up or the turn is used up."""
        parser = self.parser
        budget = EVENTS_PER_TURN
        self.yielded = False
        while not self.closing and self.file is None and self.committing is None \
                and self.out_bytes < HIGH_WATER:
            if budget == 0:
                self.yielded = True
                return
            budget -= 1
            try:
                event = parser.next_event()
            except ParseError as error:
                self.fail(error)
                return
            if event is NEED_DATA:
                return
            if event is END_OF_MESSAGE:
                self.end_of_request()
            elif isinstance(event, bytes):
                if self.body_sink is not None:
                    try:
                        self.body_sink.write(event)
                    except HTTPError as error:
                        self.body_sink = None
                        self.fail(error)
                        return
            else:
                self.start_request(event)

    def start_request(self, request):
        self.request = request
        if takes_fast_path(request):
            entry = self.file_cache.lookup(request.target, time.monotonic())
            if entry is not None:
                self.pending = entry.acquire()     # released once answered (or abandoned)
                return
        try:
            result = self.app.handle(request)
        except HTTPError as error:
            result = response_for(error)
        if isinstance(result, Upload):
            self.body_sink = result
            # RFC 9110 §10.1.1: tell a client that waits for it to send the body.
            if expects_continue(request):
                self.queue(CONTINUE)
        elif expects_continue(request):
            self.refuse_before_body(request, result)
        else:
            self.pending = result

    def refuse_before_body(self, request, response):
        """RFC 9110 §10.1.1: a client waiting for 100 Continue gets the refusal instead, at once.

        Its body is never read, so the stream is out of step: the connection
        closes after the response, lingering so that the client reads it.
        """
        self.request = None
        self.requests += 1
        self.linger_after = True
        self.log(request, response.status, response.length)
        self.respond(response, False)

    def end_of_request(self):
        request, sink, response = self.request, self.body_sink, self.pending
        self.request = self.body_sink = self.pending = None
        self.requests += 1
        self.phase = SENDING    # a response is due: the idle clock restarts once it is sent
        keep_alive = request.keep_alive and self.requests < self.parser.limits.max_keepalive_requests
        if type(response) is FileEntry:
            entry = response
            if keep_alive and request.version == b"1.1":
                self.queue(HEAD_PREFIX + date_field() + entry.head_rest)
                if request.method == b"GET" and entry.size:
                    self.file = [entry.fd, 0, entry.size, entry]    # the reference goes with it
                else:
                    entry.release()
                self.log(request, 200, entry.size)
                return
            # Closing after this one (or HTTP/1.0): the general path says so in the head.
            response = Response(200, entry.fields, fd=os.dup(entry.fd), length=entry.size)
            response.head_only = request.method == b"HEAD"
            entry.release()
        if sink is not None:
            # Committed off the loop; commit_done answers.  Nothing more is
            # parsed meanwhile: responses go out in order.
            self.committing = request, keep_alive
            self.committer.submit(self, sink)
            return
        self.log(request, response.status, response.length)
        self.respond(response, keep_alive and not response.close, request.version == b"1.0")

    def commit_done(self, response):
        """The upload being committed is stored (201) or refused: answer it."""
        (request, keep_alive), self.committing = self.committing, None
        self.phase = SENDING    # as in end_of_request
        self.log(request, response.status, response.length)
        self.respond(response, keep_alive and not response.close, request.version == b"1.0")

    def fail(self, error):
        """Answer an error the stream cannot recover from, then close."""
        self.request = None
        self.abandon_pending()
        self.linger_after = True
        response = error_response(error.status, error.message, fields=error.fields)
        self.log(None, response.status, response.length)
        self.respond(response, False)

    def abandon_pending(self):
        """Let go of the request being read: abort its upload, give back its file."""
        if self.body_sink is not None:
            self.body_sink.abort()      # a cut-off upload leaves nothing behind
            self.body_sink = None
        pending, self.pending = self.pending, None
        if type(pending) is FileEntry:
            pending.release()
        elif isinstance(pending, Response) and pending.fd >= 0:
            os.close(pending.fd)

    def release_file(self):
        """The file being sent is done with: give back the entry's reference, or close our fd."""
        fd, _, _, entry = self.file
        self.file = None
        if entry is not None:
            entry.release()
        else:
            os.close(fd)

    def log(self, request, status, length):
        if self.app.access_log is not None:
            self.app.access_log.write(self.peer, request, status, length)

    def respond(self, response, keep_alive, http10=False):
        head = serialize_head(response, keep_alive, http10=http10)
        if response.head_only or (response.fd >= 0 and response.length <= 0):
            if response.fd >= 0:
                os.close(response.fd)
            self.queue(head)
        elif response.fd >= 0:
            self.queue(head)
            self.file = [response.fd, response.offset, response.length, None]
        else:
            self.queue(head + response.body if len(response.body) < 65536 else head)
            if len(response.body) >= 65536:
                self.queue(response.body)
        if not keep_alive:
            self.closing = True

    def queue(self, data):
        self.out.append(data)
        self.out_bytes += len(data)

    # -- sending -------------------------------------------------------------------

    def flush(self):
        """Send what is queued; return True when everything has been sent.

        A peer that has gone away (EPIPE, ECONNRESET) counts as done, with the
        connection marked to close.
        """
        try:
            return self._send_queued()
        except OSError:
            self.out.clear()
            self.out_bytes = 0
            self.peer_closed = self.closing = True
            self.linger_after = False
            return True

    def _send_queued(self):
        sock = self.sock
        while self.out:
            try:
                # MSG_MORE: the head waits for the file's first bytes, one segment out.
                flags = socket.MSG_MORE if self.file is not None else 0
                sent = sock.sendmsg(self.out, (), flags) if len(self.out) > 1 else sock.send(self.out[0], flags)
            except (BlockingIOError, InterruptedError):
                return False
            self.out_bytes -= sent
            while sent:
                first = self.out[0]
                if sent >= len(first):
                    sent -= len(first)
                    self.out.pop(0)
                else:
                    self.out[0] = first[sent:]
                    sent = 0
        if self.file is not None:
            fd, offset, remaining, _ = self.file
            while remaining:
                try:
                    sent = os.sendfile(self.fd, fd, offset, min(remaining, 1 << 30))
                except (BlockingIOError, InterruptedError):
                    self.file[1:3] = offset, remaining
                    return False
                if sent == 0:       # the file shrank under us: the length we promised is a lie
                    self.closing = True
                    remaining = 0
                    break
                offset += sent
                remaining -= sent
            self.release_file()
        return True

    def close(self):
        self.abandon_pending()
        if self.file is not None:
            self.release_file()
        self.sock.close()


class Worker:
    """One event loop: accept, read, parse, respond, until told to stop."""

    def __init__(self, listener, app, limits, graceful_timeout=30.0):
        self.listener = listener
        self.app = app
        self.limits = limits
        self.graceful_timeout = graceful_timeout
        self.selector = selectors.DefaultSelector()
        self.connections = {}
        self.file_cache = FileCache(app.files)
        self.committer = Committer()
        self.timeouts = [timeout_for(phase, limits) for phase in range(LINGER + 1)]    # by phase
        self.ready = []             # connections with input left after their turn
        self.stopping = False
        self.accepting = False
        self.accept_paused_until = 0.0
        self.now = time.monotonic()
        self.parent = supervisor_pid()

    def stop(self, *_):
        self.stopping = True

    def run(self):
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        unblock_stop_signals()      # a stop that came during start-up is delivered now
        self.listener.setblocking(False)
        self.set_accepting(True)
        self.selector.register(self.committer.fd, EVENT_READ, self.committer)
        deadline = None
        next_sweep = 0.0
        while True:
            if self.stopping and deadline is None:
                # Stop accepting; let in-flight responses finish, bounded in time.
                deadline = time.monotonic() + self.graceful_timeout
                self.set_accepting(False)
                self.listener.close()
                for conn in list(self.connections.values()):
                    if conn.phase == IDLE:
                        self.drop(conn)
            if deadline is not None and (not self.connections or time.monotonic() > deadline):
                break
            if self.ready:
                timeout = 0         # turns are owed: only look for what else is ready
            else:
                timeout = SWEEP_INTERVAL if deadline is None else 0.1
            events = self.selector.select(timeout)
            self.now = time.monotonic()
            for key, mask in events:
                conn = key.data
                if conn is None:
                    self.accept()
                elif conn is self.committer:
                    self.answer_commits()
                else:
                    self.serve(conn, conn.on_readable if mask & EVENT_READ else None)
            turn, self.ready = self.ready, []
            for conn in turn:
                conn.scheduled = False
                if self.connections.get(conn.fd) is conn:
                    self.serve(conn, conn.process)
            if self.now >= next_sweep:
                next_sweep = self.now + SWEEP_INTERVAL
                self.sweep()
        for conn in list(self.connections.values()):
            self.drop(conn)
        self.committer.close()
        self.file_cache.close()
        self.selector.close()

    def serve(self, conn, step):
        """Run step (read, or resume processing) for conn, then send and decide what next."""
        try:
            if step is not None:
                step()
            self.after_io(conn, progressed=True)
        except Exception:
            # A bug must cost one connection, never the worker.
            traceback.print_exc()
            self.drop(conn)

    def answer_commits(self):
        for conn, response in self.committer.results():
            if self.connections.get(conn.fd) is conn:       # else the client is gone
                self.serve(conn, lambda: conn.commit_done(response))

    def set_accepting(self, accepting):
        if accepting != self.accepting and not (accepting and self.stopping):
            if accepting:
                self.selector.register(self.listener, EVENT_READ, None)
            else:
                self.selector.unregister(self.listener)
            self.accepting = accepting

    def accept(self):
        for _ in range(64):
            if len(self.connections) >= self.limits.max_connections:
                self.set_accepting(False)   # the kernel's backlog holds the rest
                return
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors or memory: pause rather than spin on a
                    # listener that stays readable; the backlog holds the rest.
                    self.set_accepting(False)
                    self.accept_paused_until = self.now + EMFILE_PAUSE
                    return
                raise
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, self.app, self.limits, self.file_cache, self.committer, address[0])
            self.connections[conn.fd] = conn
            self.selector.register(sock, EVENT_READ, conn)
            self.enter_phase(conn, IDLE)

    def after_io(self, conn, progressed=False):
        """Send what can be sent, then decide what to wait for next."""
        while True:
            if not conn.flush():
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
            before = conn.out_bytes, conn.file
            conn.process()              # requests held back while output was queued
            if (conn.out_bytes, conn.file) == before and not conn.yielded:
                if conn.committing is None and (conn.peer_closed or (self.stopping and conn.request is None)):
                    # Everything the peer sent is answered (an upload being
                    # committed is answered first, even to a peer that has
                    # half-closed); a request cut off mid-body is dropped,
                    # and close() aborts its upload.
                    self.drop(conn)
                    return
                break
        if conn.yielded and not conn.scheduled:
            conn.scheduled = True
            self.ready.append(conn)
        # Backpressure: while output is queued, wait only for writability;
        # while an upload is committed, for nothing (what the client sends
        # next stays in the kernel's buffers, not ours).
        if conn.out or conn.file is not None:
            self.watch(conn, EVENT_WRITE)
        else:
            self.watch(conn, EVENT_READ if conn.committing is None else 0)
        if conn.out or conn.file is not None or conn.committing is not None:
            phase = SENDING             # (a commit is the server's wait: sweep leaves it be)
        elif conn.request is not None:
            phase = BODY
        elif conn.parser.in_progress():
            phase = HEAD
        else:
            phase = IDLE    # the keep-alive clock starts only now that all is sent
        if phase != conn.phase or (progressed and phase in REFRESHED_ON_PROGRESS):
            self.enter_phase(conn, phase)

    def watch(self, conn, events):
        """Wait for these events on conn's socket (0: none)."""
        if events == conn.events:
            return
        if not events:
            self.selector.unregister(conn.sock)
        elif not conn.events:
            self.selector.register(conn.sock, events, conn)
        else:
            self.selector.modify(conn.sock, events, conn)
        conn.events = events

    def enter_phase(self, conn, phase):
        conn.phase = phase
        conn.deadline = self.now + self.timeouts[phase]

    def start_lingering(self, conn):
        """RFC 9112 §9.6: shut our side, then drain the client's before closing."""
        conn.lingering = True
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.drop(conn)
            return
        self.watch(conn, EVENT_READ)
        self.enter_phase(conn, LINGER)

    def sweep(self):
        """Close (or answer 408) every connection whose clock ran out."""
        if orphaned(self.parent):
            self.stopping = True
        now = self.now
        for conn in [c for c in self.connections.values() if c.deadline <= now and c.committing is None]:
            if conn.lingering or conn.peer_closed:
                self.drop(conn)
                continue
            status = expiry_status(conn.phase)
            if status is None:
                self.drop(conn)
                continue
            which = "header" if conn.phase == HEAD else "body"
            conn.fail(HTTPError(status, f"request {which} not received within "
                                        f"{which}_timeout={timeout_for(conn.phase, self.limits)} s"))
            self.after_io(conn)
        if not self.accepting and self.now >= self.accept_paused_until \
                and len(self.connections) < self.limits.max_connections:
            self.set_accepting(True)

    def drop(self, conn):
        self.connections.pop(conn.fd, None)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.close()
