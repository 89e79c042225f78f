r"""Stage 3: extract the URL path.

CodeCrafters: "Extract URL path" (tester stage ih0).
Task:
  Sends:   GET /{a random word} HTTP/1.1\r\nHost: localhost:4221\r\n\r\n
  Expects: `HTTP/1.1 404 Not Found`; and GET / still gets `HTTP/1.1 200 OK`
           (the tester runs every earlier stage's check again).
  Try:     python -m stages.s03_paths
           curl -i http://localhost:4221/abcdefg
           curl -i http://localhost:4221/
New: reading the request head up to its empty line whatever the TCP
     segmentation (`ByteStream`), splitting the request line into method,
     target and version, a route table that picks 200 or 404 by path, and
     `HTTPError`: raised anywhere, answered in one place with its status.
Reused from: s02_status / s01_bind (command line, accept loop, polite close).

Beyond the tester: a request line that is not `METHOD SP /target SP HTTP/x.y`
gets 400 Bad Request, a version other than HTTP/1.x gets 505, and a head over
MAX_HEAD_BYTES gets 431, so that a client cannot make the server buffer
without end.  Answers are still bare status lines, as the tester expects;
header fields and bodies come in stage 4.
"""
import re
from dataclasses import dataclass

from stages import s02_status

# The request line and header fields together may not exceed this (431 if
# they do); checked while bytes arrive, so a client cannot make us buffer more.
MAX_HEAD_BYTES = 16 * 1024
RECEIVE_SIZE = 64 * 1024

# RFC 9110 section 15: the reason phrases of the statuses this stage sends.
# Later stages add theirs: Server.reasons = {**previous, ...}.
REASONS = {
    200: "OK", 400: "Bad Request", 404: "Not Found",
    431: "Request Header Fields Too Large", 505: "HTTP Version Not Supported",
}

# RFC 9110 section 5.6.2: methods (and, from stage 4, header names) are tokens.
TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# RFC 9112 section 3: method SP request-target SP HTTP-version, where the
# target is visible ASCII and the version is HTTP/DIGIT.DIGIT (section 2.3).
REQUEST_LINE = re.compile(rb"(%s) ([!-~]+) (HTTP/([0-9])\.[0-9])" % TOKEN)


class ClientDisconnected(ConnectionError):
    """The client closed its side in the middle of a request."""


class HTTPError(Exception):
    """A request we refuse: the status to answer with, and why (for the client, from stage 4 on)."""

    def __init__(self, status, detail=""):
        super().__init__(f"{status} {detail}".rstrip())
        self.status = status
        self.detail = detail


@dataclass
class Request:
    method: str
    target: str  # as sent, e.g. "/echo/abc?x=1"
    path: str  # the target without its query, e.g. "/echo/abc"; what routes match
    version: str  # "HTTP/1.1"


@dataclass
class Response:
    status: int


class ByteStream:
    """A socket plus the bytes received from it but not yet used.

    TCP delivers a byte stream, not messages: one recv may return half a
    request line or two whole requests.  Whatever is read past the current
    request stays in `pending` for the next reader.
    """

    def __init__(self, sock):
        self.sock = sock
        self.pending = bytearray()

    def receive_more(self):
        """Append the next piece from the socket; False when the client has closed."""
        data = self.sock.recv(RECEIVE_SIZE)
        self.pending += data
        return bool(data)

    def read_head(self):
        """The request line and header lines, without the empty line that ends them.

        None if the client closed before starting a request.
        """
        scanned = 0  # the terminator cannot start before here: each byte is scanned once
        while (end := self.pending.find(b"\r\n\r\n", max(scanned - 3, 0))) < 0:
            if len(self.pending) > MAX_HEAD_BYTES:
                raise HTTPError(431, f"request head exceeds MAX_HEAD_BYTES={MAX_HEAD_BYTES}")
            scanned = len(self.pending)
            if not self.receive_more():
                if self.pending:
                    raise ClientDisconnected("connection closed inside the request head")
                return None
        if end > MAX_HEAD_BYTES:
            raise HTTPError(431, f"request head exceeds MAX_HEAD_BYTES={MAX_HEAD_BYTES}")
        head = bytes(self.pending[:end])
        del self.pending[: end + 4]
        return head


def parse_request_line(line):
    """b"GET /echo/abc HTTP/1.1" -> ("GET", "/echo/abc", "HTTP/1.1")."""
    match = REQUEST_LINE.fullmatch(line)
    if match is None:
        raise HTTPError(400, f"malformed request line {line[:100]!r}")
    method, target, version, major = (part.decode("ascii") for part in match.groups())
    if major != "1":
        raise HTTPError(505, f"{version} is not supported")
    return method, target, version


def get_root(server, request):
    return Response(200)


class Server(s02_status.Server):
    """Stage 3: 200 for /, 404 for any other path."""

    reasons = REASONS
    # (method, path regex, handler): a handler gets the server, the request and
    # the regex groups, and returns a Response or raises HTTPError.  Later
    # stages extend this list: routes = [*Previous.routes, (...)].
    routes = [("GET", r"/", get_root)]

    def handle_connection(self, conn):
        self.exchange(ByteStream(conn))

    def exchange(self, stream):
        """Answer one request from the stream; return it (None if there was none to answer)."""
        try:
            request = self.read_request(stream)
        except HTTPError as error:
            # Unreadable request: answer it, and since we no longer know where
            # the next request would start, the connection ends here.
            self.send_response(stream.sock, self.refusal(error))
            return None
        if request is not None:
            self.send_response(stream.sock, self.respond_to(request))
        return request

    def read_request(self, stream):
        head = stream.read_head()
        return None if head is None else self.parse_request(head)

    def parse_request(self, head):
        method, target, version = parse_request_line(head.partition(b"\r\n")[0])
        return Request(method, target, self.target_path(target), version)

    def target_path(self, target):
        """The path that routes match: the target up to its query (RFC 9112 section 3.2.1)."""
        if not target.startswith("/"):
            raise HTTPError(400, f"unsupported request target {target[:100]!r}")
        return target.partition("?")[0]

    def respond_to(self, request):
        try:
            return self.route(request)
        except HTTPError as error:
            return self.error_response(error)

    def route(self, request):
        for method, pattern, handler in self.routes:
            match = re.fullmatch(pattern, request.path)
            if match and method == request.method:
                return handler(self, request, *match.groups())
        raise HTTPError(404, f"no route for {request.method} {request.path[:100]}")

    def error_response(self, error):
        return Response(error.status)

    def refusal(self, error):
        """The answer to a request that could not be read: the last on its connection."""
        return self.error_response(error)

    def status_line(self, status):
        return f"HTTP/1.1 {status} {self.reasons[status]}"

    def send_response(self, sock, response):
        # A status line, then the empty line that ends an empty header section.
        sock.sendall(f"{self.status_line(response.status)}\r\n\r\n".encode("ascii"))


if __name__ == "__main__":
    Server.main()
