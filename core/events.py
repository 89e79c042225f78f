"""What the parser hands back: a request head, body bytes, or one of two markers.

A parser's ``next_event()`` returns, for each message, one ``Request`` (the
head), then zero or more ``bytes`` (the decoded body, in pieces as they
arrive), then ``END_OF_MESSAGE``; ``NEED_DATA`` whenever it must be fed more.
"""


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


NEED_DATA = _Marker("NEED_DATA")
END_OF_MESSAGE = _Marker("END_OF_MESSAGE")


def find_field(headers, name: bytes, default=None):
    """The first value in headers of the field called name, compared case-insensitively.

    Shared by this Request and the compiled parser's.
    """
    name = name.lower()
    for field, value in headers:
        if field.lower() == name:
            return value
    return default


class Request:
    """A parsed request head.

    method, target: bytes as sent.  version: b"1.0" or b"1.1".
    headers: list of (name, value) byte pairs in arrival order, names as sent.
    keep_alive: whether the connection may carry another request after this.
    content_length: body size, or -1 for a chunked body.  chunked: bool.
    """

    __slots__ = ("method", "target", "version", "headers", "keep_alive", "content_length", "chunked")

    def __init__(self, method, target, version, headers, keep_alive, content_length, chunked):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.content_length = content_length
        self.chunked = chunked

    def get(self, name: bytes, default=None):
        """The first value of the field called name, compared case-insensitively."""
        return find_field(self.headers, name, default)

    def __repr__(self):
        return f"<Request {self.method!r} {self.target!r} HTTP/{self.version.decode()}>"
