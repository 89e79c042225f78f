"""Stage 3: extract the URL path.

CodeCrafters: "Extract URL path".
New: reading the request head up to its empty line whatever the TCP
     segmentation (`ByteStream`), parsing the request line into a `Request`,
     a route table, and `HTTPError`: raised anywhere, answered in one place
     with its status (404, 405, 400, ...).
Reused from: s02_status / s01_bind (command line, accept loop, polite close).
"""
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from stages import s02_status

# The request line and header fields together may not exceed this (431 if
# they do); checked while bytes arrive, so a client cannot make us buffer more.
MAX_HEAD_BYTES = 16 * 1024
RECEIVE_SIZE = 64 * 1024

# RFC 9110 section 15: the standard reason phrases of the statuses we send.
REASONS = {
    100: "Continue", 200: "OK", 201: "Created",
    400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    411: "Length Required", 413: "Content Too Large", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 505: "HTTP Version Not Supported",
}

# RFC 9110 section 5.6.2: methods and header names are tokens.
TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# RFC 9112 section 3: method SP request-target SP HTTP-version, where the
# target is visible ASCII and the version is HTTP/DIGIT.DIGIT (section 2.3).
REQUEST_LINE = re.compile(rb"(%s) ([!-~]+) (HTTP/([0-9])\.[0-9])" % TOKEN)


class ClientDisconnected(ConnectionError):
    """The client closed its side in the middle of a request."""


class HTTPError(Exception):
    """A request we refuse; carries the status (and headers) to answer with."""

    def __init__(self, status, detail="", headers=()):
        super().__init__(f"{status} {REASONS[status]}: {detail}" if detail else f"{status} {REASONS[status]}")
        self.status = status
        self.headers = list(headers)

    def response(self):
        return Response(self.status, list(self.headers))


@dataclass
class Request:
    method: str
    target: str  # as sent, e.g. "/echo/abc?x=1"
    path: str  # the target without its query, e.g. "/echo/abc"; what routes match
    version: str  # "HTTP/1.1"
    headers: dict = field(default_factory=dict)  # lower-cased names; read from stage 4 on
    body: object = None  # a BodyReader from stage 7 on


@dataclass
class Response:
    status: int
    headers: list = field(default_factory=list)  # [(name, value), ...]
    body: bytes = b""


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
    match = REQUEST_LINE.fullmatch(line)
    if match is None:
        raise HTTPError(400, f"malformed request line {line[:100]!r}")
    method, target, version, major = (part.decode("ascii") for part in match.groups())
    if major != "1":
        raise HTTPError(505, f"{version} is not supported")
    if target.startswith("/"):  # origin-form, the usual one (RFC 9112 section 3.2.1)
        path = target.partition("?")[0]
    elif target.startswith(("http://", "https://")):  # absolute-form, which servers must accept (3.2.2)
        path = urlsplit(target).path or "/"
    else:
        raise HTTPError(400, f"unsupported request target {target[:100]!r}")
    return Request(method, target, path, version)


def get_root(server, request):
    return Response(200)


class Server(s02_status.Server):
    """Stage 3: 200 for /, 404 for any other path."""

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
            self.send_response(stream.sock, error.response())
            return None
        if request is not None:
            self.send_response(stream.sock, self.respond_to(request))
        return request

    def read_request(self, stream):
        head = stream.read_head()
        return None if head is None else self.parse_request(head)

    def parse_request(self, head):
        return parse_request_line(head.partition(b"\r\n")[0])

    def respond_to(self, request):
        try:
            return self.route(request)
        except HTTPError as error:
            return error.response()

    def route(self, request):
        allowed = []
        for method, pattern, handler in self.routes:
            match = re.fullmatch(pattern, request.path)
            if match and method == request.method:
                return handler(self, request, *match.groups())
            if match:
                allowed.append(method)
        if allowed:  # RFC 9110 section 15.5.6: a 405 lists the methods that would work
            raise HTTPError(405, f"{request.method} {request.path}", headers=[("Allow", ", ".join(allowed))])
        raise HTTPError(404, request.path[:100])

    def send_response(self, sock, response):
        sock.sendall(serialize_response(response))


def serialize_response(response):
    lines = [f"HTTP/1.1 {response.status} {REASONS[response.status]}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    # Latin-1 maps str back to the exact bytes read (header values are decoded
    # the same way in stage 4), so echoed values survive unchanged.
    return "".join(line + "\r\n" for line in lines).encode("latin-1") + b"\r\n" + response.body


if __name__ == "__main__":
    Server.main()
