"""Stage 10: one thread, an event loop.

CodeCrafters: none; beyond the course, the step from the stages to `core`.
Task:
  Sends:   every earlier stage's requests (python -m pytest tests --server s10_eventloop
           runs them all), over many connections at once, most of them idle or slow.
  Expects: the answers of stage 9, from one thread: an idle keep-alive
           connection, a silent client or one that reads slowly costs a few
           buffers, not a thread, and holds up nobody.
  Try:     python -m stages.s10_eventloop --directory /tmp/ & pid=$!
           for i in $(seq 300); do curl -s localhost:4221/echo/$i -o /dev/null & done; wait
           grep Threads /proc/$pid/status   # 1, however many clients
New: a `selectors` loop over non-blocking sockets: per connection, a buffer
     of bytes received and one of bytes to send; a request is handed to
     stage 9's `exchange` only once all of it has arrived; an answer the
     socket cannot take at once is sent as the socket becomes writable, and
     nothing more is read meanwhile; keep-alive, pipelining, idle and linger
     deadlines kept by the loop instead of blocking calls.
Reused from: s09_keepalive (`exchange`, `keeps_alive`, Connection: close),
     s07_post (`body_length`, `expects_continue`, `BodyReader`), s04_headers
     (`parse_request`), s03_paths (`ByteStream`, MAX_HEAD_BYTES), s01_bind
     (the command line, CLIENT_TIMEOUT_SECONDS, LINGER_SECONDS).

What threads cost: stages 5-9 give each connection a thread that spends its
life blocked in recv().  An idle keep-alive client keeps its thread (a stack,
and a turn at the GIL whenever it wakes), a hundred busy clients make a
hundred threads take turns at one interpreter lock, and the thread that
accepts waits its turn too.  What the loop buys: one thread that touches a
connection only when its socket is ready, so a connection costs its buffers.
Measured on 2 vCPUs (AMD EPYC, shared; Python 3.11.7) with `python -m bench
--scenarios T1 --servers s09,s10 --reps 3 --duration 4` (a 10 KB file, wrk
keep-alive clients; medians): with 100 clients s10 answers 10,440 requests/s
to s09's 8,930, at 93 CPU microseconds a request to 112.  With 1,000 clients
(add `--set T1.clients=1000`) s10 holds all 1,000 connections in 17 MiB with
a p99 latency of 150 ms; s09 had at most ~680 established (the kernel counted
2,742 dropped connection attempts its accepting thread did not take in
time), grew to 47 MiB, and answered its slowest 1 % after 1.4 s.

What the loop costs: a handler that blocks (reading a large file whole, the
fsync of an upload) now stalls every connection, and a request body is
buffered in memory (up to MAX_BODY_BYTES) before the handler runs.  `core`
keeps the loop and removes both: it parses as bytes arrive
(core/_parser_py.py), streams uploads to disk and commits them in a helper
thread (core/committer.py), and sends files with sendfile(2).

Beyond the tester: `Expect: 100-continue` is answered by the loop when the
client waits for it (the handlers' own 100 is turned off).
"""
import selectors
import socket
import time
import traceback

from stages import s09_keepalive
from stages.s01_bind import CLIENT_TIMEOUT_SECONDS, LINGER_SECONDS
from stages.s03_paths import MAX_HEAD_BYTES, RECEIVE_SIZE, ByteStream, HTTPError
from stages.s07_post import CONTINUE_RESPONSE, body_length, expects_continue


class Outbox:
    """Stands in for the socket while stage 9's `exchange` answers one request.

    The loop hands a request over only once all its bytes have arrived, so
    there is never more to `recv`; what the handlers send is queued here and
    the loop writes it out as the socket accepts it.
    """

    def __init__(self):
        self.queued = bytearray()

    def recv(self, _size):
        return b""  # everything this request has was received before it was handed over

    def sendall(self, data):
        self.queued += data


class Connection:
    """One client: its socket, what it sent that is not answered yet, and what waits to be sent."""

    def __init__(self, sock):
        self.sock = sock
        self.outbox = Outbox()
        # `pending` of this stream is the receive buffer: stage 3's readers take
        # one request from its front and leave the next one (pipelining).
        self.stream = ByteStream(self.outbox)
        self.request_size = None  # head + body of the next request, once its head is in
        self.events = selectors.EVENT_READ
        self.peer_closed = False  # the client sent EOF: nothing more will come
        self.closing = False  # answer what is queued, then close
        self.lingering = False  # our side is shut; reading what the client still sends
        self.deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS


class Server(s09_keepalive.Server):
    """Stage 10: serve every connection from one thread with an event loop."""

    def serve_forever(self, listener):
        listener.setblocking(False)
        self.selector = selectors.DefaultSelector()  # epoll on Linux, kqueue on BSD and macOS
        self.selector.register(listener, selectors.EVENT_READ)
        self.connections = set()
        next_sweep = time.monotonic() + 1
        while True:
            for key, events in self.selector.select(timeout=1):
                if key.fileobj is listener:
                    self.accept(listener)
                else:
                    self.serve_ready(key.data, events)
            if time.monotonic() >= next_sweep:  # deadlines are checked once a second, not per event
                self.drop_expired()
                next_sweep = time.monotonic() + 1

    def accept(self, listener):
        try:
            sock, _address = listener.accept()
        except OSError:
            return  # gone before we took it (or no descriptor left): the loop tries again
        sock.setblocking(False)
        conn = Connection(sock)
        self.connections.add(conn)
        self.selector.register(sock, conn.events, conn)

    def serve_ready(self, conn, events):
        try:
            if events & selectors.EVENT_READ:
                self.receive(conn)
            self.advance(conn)
        except OSError:
            self.close(conn)  # reset or gone: nobody left to answer
        except Exception:
            traceback.print_exc()  # a bug in a handler costs this connection, not the server
            self.close(conn)

    def receive(self, conn):
        try:
            data = conn.sock.recv(RECEIVE_SIZE)
        except BlockingIOError:
            return
        if not data:
            conn.peer_closed = True
        elif not conn.lingering:  # while lingering, what arrives is read only to be dropped
            conn.stream.pending += data
            conn.deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS

    def advance(self, conn):
        """Send what is queued, answer every whole request buffered, then wait for the socket again."""
        while True:
            if conn.outbox.queued:
                self.send_queued(conn)
                if conn.outbox.queued:
                    break  # the client is not reading: wait until it does, and read nothing more meanwhile
            if conn.closing or not self.request_is_whole(conn):
                break
            request = self.exchange(conn.stream)  # stage 9's: parse, route, respond (into the outbox)
            conn.request_size = None
            if request is None or not self.keeps_alive(request):
                conn.closing = True
        if not conn.outbox.queued:
            if conn.peer_closed:
                return self.close(conn)  # nothing more will come and nothing is left to send
            if conn.closing and not conn.lingering:
                self.start_lingering(conn)
        self.watch(conn, selectors.EVENT_WRITE if conn.outbox.queued else selectors.EVENT_READ)

    def request_is_whole(self, conn):
        """Whether the receive buffer holds a whole request, or one to refuse: then `exchange` never waits."""
        pending = conn.stream.pending
        if conn.request_size is None:
            end = pending.find(b"\r\n\r\n")
            if end < 0 or end > MAX_HEAD_BYTES:
                return len(pending) > MAX_HEAD_BYTES  # over the limit: exchange answers 431
            try:
                request = self.parse_request(bytes(pending[:end]))  # read again by exchange
                length = body_length(request.headers)
            except HTTPError:
                return True  # exchange refuses it the same way
            conn.request_size = end + 4 + length
            if length and expects_continue(request) and len(pending) < conn.request_size:
                # The client waits for this before it sends the body (RFC 9110 section 10.1.1).
                conn.outbox.sendall(CONTINUE_RESPONSE)
        return len(pending) >= conn.request_size

    def read_request(self, stream):
        request = super().read_request(stream)
        if request is not None:
            request.body.expects_continue = False  # the loop sent 100 Continue if the client was waiting
        return request

    def send_queued(self, conn):
        try:
            sent = conn.sock.send(conn.outbox.queued)
        except BlockingIOError:
            return
        del conn.outbox.queued[:sent]
        conn.deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS

    def start_lingering(self, conn):
        # Stage 1's polite close, without blocking: shut our side, then drop
        # what the client still sends until it closes or LINGER_SECONDS pass.
        conn.sock.shutdown(socket.SHUT_WR)
        conn.lingering = True
        conn.stream.pending.clear()
        conn.deadline = time.monotonic() + LINGER_SECONDS

    def watch(self, conn, events):
        if events != conn.events:
            self.selector.modify(conn.sock, events, conn)
            conn.events = events

    def drop_expired(self):
        now = time.monotonic()
        for conn in [conn for conn in self.connections if conn.deadline < now]:
            self.close(conn)

    def close(self, conn):
        if conn not in self.connections:
            return  # already closed
        self.selector.unregister(conn.sock)
        conn.sock.close()
        self.connections.discard(conn)


if __name__ == "__main__":
    Server.main()
