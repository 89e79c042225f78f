"""Routing and handlers: what each route of the course answers.

Both send loops call this module; it never touches a socket.  ``handle``
returns a Response, or for an upload an ``Upload`` that the connection feeds
with the body and then ``finish``es.
"""
import gzip

from .encoding import accepts_gzip
from .errors import HTTPError
from .response import Response, error_response

TEXT = (b"Content-Type", b"text/plain")
OCTETS = (b"Content-Type", b"application/octet-stream")
VARY = (b"Vary", b"Accept-Encoding")
READ_METHODS = (b"GET", b"HEAD")


class App:
    def __init__(self, files):
        self.files = files

    def handle(self, request):
        path = request_path(request.target)
        method = request.method
        if path.startswith(b"/files/"):
            if method == b"POST":
                # RFC 9110 §15.5.12: an upload must say how long it is.
                if request.content_length == 0 and not request.chunked and request.get(b"content-length") is None:
                    raise HTTPError(411, "POST needs a Content-Length", close=False)
                return self.files.upload(path[7:])
            allowed = b"GET, HEAD, POST"
        else:
            allowed = b"GET, HEAD"
        if path == b"/":
            response = Response(200)
        elif path.startswith(b"/echo/"):
            response = text_response(request, path[6:])
        elif path == b"/user-agent":
            response = text_response(request, request.get(b"user-agent", b""))
        elif path.startswith(b"/files/"):
            response = None
        else:
            raise HTTPError(404, "not found", close=False)
        if method not in READ_METHODS:
            return error_response(405, f"method not allowed; allowed: {allowed.decode()}", False,
                                  [(b"Allow", allowed)])
        if response is None:
            fd, info, _ = self.files.open_for_reading(path[7:])
            response = Response(200, [OCTETS], fd=fd, length=info.st_size)
        if method == b"HEAD":
            response.head_only = True
        return response


def request_path(target: bytes) -> bytes:
    """The path of an origin-form or absolute-form target (RFC 9112 §3.2), query dropped."""
    if not target.startswith(b"/"):
        scheme, sep, rest = target.partition(b"://")
        if not sep or scheme.lower() not in (b"http", b"https"):
            raise HTTPError(400, "request target must be a path or an absolute URI", close=False)
        slash = rest.find(b"/")
        target = rest[slash:] if slash >= 0 else b"/"
    query = target.find(b"?")
    return target if query < 0 else target[:query]


def text_response(request, text: bytes) -> Response:
    """text/plain, gzip-compressed when the client accepts it (stage s08)."""
    if accepts_gzip(request.get(b"accept-encoding")):
        return Response(200, [TEXT, (b"Content-Encoding", b"gzip"), VARY], gzip.compress(text, mtime=0))
    return Response(200, [TEXT, VARY], text)
