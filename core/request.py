"""A parsed request head: the one ``Request`` class both parsers return.

Plain Python for the pure parser, and the same file compiled as
``core.request_c`` for the compiled parser: ``request_c.pxd`` makes it a
``cdef class`` whose typed fields ``new_request`` fills from C and the
compiled loop reads from C.  ``core.parser.Request`` is the class in use.
"""


def find_field(headers, name, default=None):
    """The first value in headers of the field called name, compared case-insensitively."""
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

    def get(self, name, default=None):
        """The first value of the field called name, compared case-insensitively."""
        return find_field(self.headers, name, default)

    def __repr__(self):
        return f"<Request {self.method!r} {self.target!r} HTTP/{self.version.decode()}>"


def new_request(method, target, version, headers, keep_alive, content_length, chunked):
    """The Request a parser has read: the one way to make one.

    A function, not ``__init__``: compiled, the parser calls it as a C function
    (cimported from ``request_c.pxd``) and it sets the read-only fields from C,
    with no argument tuple to build and parse.
    """
    request = Request.__new__(Request)
    request.method = method
    request.target = target
    request.version = version
    request.headers = headers
    request.keep_alive = keep_alive
    request.content_length = content_length
    request.chunked = chunked
    return request
