"""Response heads: status lines, the Date field, and one-buffer serialisation.

A head is assembled into one bytes object so head and a small body leave in
one send (or one writev), as the fast peers do.
"""
import time
from .conditional import http_date
from .errors import REASONS

STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, reason.encode()) for code, reason in REASONS.items()}
SERVER = b"Server: httpcourse\r\n"


class Response:
    """What a handler answers: status, extra fields, and a body.

    The body is either bytes, or an open file (fd, offset, length) that the
    send loop transmits with sendfile(2) and then closes.  head_only marks a
    response to HEAD: fields as for GET, no body.
    """

    __slots__ = ("status", "fields", "body", "fd", "offset", "length", "close", "head_only")

    def __init__(self, status, fields=(), body=b"", fd=-1, offset=0, length=-1, close=False):
        self.status = status
        self.fields = fields
        self.body = body
        self.fd = fd
        self.offset = offset
        self.length = len(body) if fd < 0 else length
        self.close = close
        self.head_only = False


_date_second = -1
_date_field = b""


def date_field() -> bytes:
    """The Date field (RFC 9110 §6.6.1), formatted once a second, not per request."""
    global _date_second, _date_field
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_field = b"Date: " + http_date(now) + b"\r\n"
    return _date_field


def serialize_head(response: Response, keep_alive: bool, date=None, http10=False) -> bytes:
    """Status line and fields, ending with the blank line.

    date: the Date field to use (default: now).  http10: the request was
    HTTP/1.0, whose connections persist only when the response says so
    (RFC 9112 §9.3).
    """
    parts = [STATUS_LINES[response.status], SERVER, date or date_field()]
    for name, value in response.fields:
        parts.append(name + b": " + value + b"\r\n")
    # RFC 9110 §8.6, §15.4.5: a 304 has no content, and a Content-Length on
    # it could only repeat the 200's; like nginx we send none.
    if response.status != 304:
        parts.append(b"Content-Length: %d\r\n" % response.length)
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    elif http10:
        parts.append(b"Connection: keep-alive\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def error_response(status: int, message: str, close: bool = True, fields=()) -> Response:
    body = (message + "\n").encode("utf-8", "replace")
    return Response(status, [(b"Content-Type", b"text/plain; charset=utf-8"), *fields], body, close=close)


def response_for(error) -> Response:
    """The response that answers an HTTPError: its status, message and extra fields."""
    return error_response(error.status, error.message, error.close, error.fields)


CONTINUE = STATUS_LINES[100] + b"\r\n"
