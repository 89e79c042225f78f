"""The event loop and connection lifecycle in plain Python: the readable reference.

One loop per worker process over non-blocking sockets (``selectors``: epoll
on Linux), so an idle keep-alive client costs a socket and a small object,
not a thread.  ``_server_c.pyx`` is the same design with the per-request work
(recv, parse, route the hot paths, writev, sendfile) in C; the same tests run
against both.

A connection reads, parses every request already buffered (pipelining for
free), and queues responses in order.  Backpressure: while a response is
still being sent, no further request is parsed and nothing more is read, so a
client that does not read can never make us buffer without bound -- the
kernel's socket buffers fill and the client is the one who waits.
"""
import errno
import os
import selectors
import signal
import socket
import time

from .errors import HTTPError
from .events import END_OF_MESSAGE, NEED_DATA
from .files import Upload
from .workers import unblock_stop_signals
from .parser import ParseError, RequestParser
from .response import CONTINUE, Response, error_response, serialize_head

RECV_SIZE = 256 * 1024
# Stop parsing pipelined requests once this much is queued for sending.
HIGH_WATER = 256 * 1024
EVENT_READ, EVENT_WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Connection:
    __slots__ = ("sock", "fd", "app", "parser", "out", "out_bytes", "file", "request", "body_sink",
                 "pending", "closing", "peer_closed", "events")

    def __init__(self, sock, app, limits):
        self.sock = sock
        self.fd = sock.fileno()
        self.app = app
        self.parser = RequestParser(limits)
        self.out = []            # bytes waiting to be sent, in order
        self.out_bytes = 0
        self.file = None         # [fd, offset, remaining] being sent after `out`
        self.request = None      # the request whose body is being read
        self.body_sink = None    # Upload, or None to discard the body
        self.pending = None      # response to send once the body is read
        self.closing = False     # close once everything queued has been sent
        self.peer_closed = False
        self.events = EVENT_READ

    # -- reading and dispatching -------------------------------------------------

    def on_readable(self):
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

    def process(self):
        """Handle every complete request in the buffer, until output backs up."""
        parser = self.parser
        while not self.closing and self.file is None and self.out_bytes < HIGH_WATER:
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
        try:
            result = self.app.handle(request)
        except HTTPError as error:
            result = error_response(error.status, error.message, error.close)
        if isinstance(result, Upload):
            self.body_sink = result
            # RFC 9110 §10.1.1: tell a client that waits for it to send the body.
            if request.get(b"expect", b"").lower() == b"100-continue":
                self.queue(CONTINUE)
        else:
            self.pending = result

    def end_of_request(self):
        request, sink, response = self.request, self.body_sink, self.pending
        self.request = self.body_sink = self.pending = None
        if sink is not None:
            try:
                sink.finish()
                response = Response(201)
            except HTTPError as error:
                response = error_response(error.status, error.message, error.close)
        self.respond(response, request.keep_alive and not response.close)

    def fail(self, error):
        """Answer an error the stream cannot recover from, then close."""
        if self.body_sink is not None:
            self.body_sink.abort()
            self.body_sink = None
        if self.pending is not None and self.pending.fd >= 0:
            os.close(self.pending.fd)
        self.pending = None
        self.respond(error_response(error.status, error.message), False)

    def respond(self, response, keep_alive):
        head = serialize_head(response, keep_alive)
        if response.head_only:
            if response.fd >= 0:
                os.close(response.fd)
            self.queue(head)
        elif response.fd >= 0:
            self.queue(head)
            self.file = [response.fd, response.offset, response.length]
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
        """Send what is queued; return True when everything has been sent."""
        sock = self.sock
        while self.out:
            try:
                sent = sock.sendmsg(self.out) if len(self.out) > 1 else sock.send(self.out[0])
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
            fd, offset, remaining = self.file
            while remaining:
                try:
                    sent = os.sendfile(self.fd, fd, offset, min(remaining, 1 << 30))
                except (BlockingIOError, InterruptedError):
                    self.file[1:] = offset, remaining
                    return False
                if sent == 0:       # the file shrank under us: the length we promised is a lie
                    self.closing = True
                    remaining = 0
                    break
                offset += sent
                remaining -= sent
            os.close(fd)
            self.file = None
        return True

    def close(self):
        if self.body_sink is not None:
            self.body_sink.abort()      # a cut-off upload leaves nothing behind
            self.body_sink = None
        if self.file is not None:
            os.close(self.file[0])
            self.file = None
        if self.pending is not None and self.pending.fd >= 0:
            os.close(self.pending.fd)
            self.pending = None
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
        self.stopping = False

    def stop(self, *_):
        self.stopping = True

    def run(self):
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        unblock_stop_signals()      # a stop that came during start-up is delivered now
        self.listener.setblocking(False)
        self.selector.register(self.listener, EVENT_READ, None)
        deadline = None
        while True:
            if self.stopping and deadline is None:
                # Stop accepting; let in-flight responses finish, bounded in time.
                deadline = time.monotonic() + self.graceful_timeout
                self.selector.unregister(self.listener)
                self.listener.close()
                for conn in list(self.connections.values()):
                    if conn.request is None and not conn.out and conn.file is None:
                        self.drop(conn)
            if deadline is not None and (not self.connections or time.monotonic() > deadline):
                break
            for key, mask in self.selector.select(1.0 if deadline is None else 0.1):
                conn = key.data
                if conn is None:
                    self.accept()
                    continue
                if mask & EVENT_READ:
                    conn.on_readable()
                self.after_io(conn)
        for conn in list(self.connections.values()):
            self.drop(conn)
        self.selector.close()

    def accept(self):
        for _ in range(64):
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    return      # out of descriptors: leave the rest in the backlog
                raise
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, self.app, self.limits)
            self.connections[conn.fd] = conn
            self.selector.register(sock, EVENT_READ, conn)

    def after_io(self, conn):
        """Send what can be sent, then decide what to wait for next."""
        while True:
            if not conn.flush():
                break                   # the socket is full: wait until writable
            if conn.closing:
                self.drop(conn)
                return
            before = conn.out_bytes, conn.file
            conn.process()              # requests held back while output was queued
            if (conn.out_bytes, conn.file) == before:
                if conn.peer_closed or (self.stopping and conn.request is None):
                    # Everything the peer sent is answered; a request cut off
                    # mid-body is dropped, and close() aborts its upload.
                    self.drop(conn)
                    return
                break
        # Backpressure: while output is queued, wait only for writability.
        events = EVENT_WRITE if (conn.out or conn.file is not None) else EVENT_READ
        if events != conn.events:
            conn.events = events
            self.selector.modify(conn.sock, events, conn)

    def drop(self, conn):
        self.connections.pop(conn.fd, None)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.close()
