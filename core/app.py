"""Routing and handlers: what each route of the course answers.

Both send loops call this module; it never touches a socket.  ``handle``
returns a Response, or for an upload an ``Upload`` that the connection feeds
with the body and then ``finish``es.

Files are answered as nginx answers them: a Content-Type by extension
(mediatypes.py), ETag and Last-Modified, the conditional requests of RFC 9110
§13, one byte range (§14), and compression -- a name.br or name.gz lying
beside the file, whichever Accept-Encoding prefers (br on a tie), else a gzip
copy cached in memory.  The rules are in conditional.py and encoding.py; this
module picks the representation and the status.
"""
import gzip
import os

from .conditional import (UNSATISFIABLE, byte_range, field, http_date, if_range_holds,
                          precondition_status, validators)
from .encoding import accepts_gzip, preferred_codings
from .errors import HTTPError
from .files import GzipCache, Upload
from .mediatypes import already_compressed
from .limits import DEFAULT_LIMITS
from .response import Response, error_response, response_for

TEXT = (b"Content-Type", b"text/plain")
OCTETS = b"application/octet-stream"
# A browser must not guess another type than the one given (a text file
# sniffed as HTML runs its scripts): https://fetch.spec.whatwg.org/#x-content-type-options-header
NOSNIFF = (b"X-Content-Type-Options", b"nosniff")
VARY = (b"Vary", b"Accept-Encoding")
GZIP = b"gzip"
# The codings a file may lie beside the file in, preferred first on a tie:
# brotli's output is the smaller (RFC 7932).
SIBLING_SUFFIXES = {b"br": ".br", b"gzip": ".gz"}
ACCEPT_RANGES = (b"Accept-Ranges", b"bytes")
READ_METHODS = (b"GET", b"HEAD")
# The preconditions that apply to an upload (If-Modified-Since is for GET/HEAD only).
WRITE_PRECONDITIONS = (b"if-match", b"if-none-match", b"if-unmodified-since")


def file_fields(info, tag=None, coding=None, sent=None) -> list:
    """The fields of a 200 for a file (info: its files.FileInfo).

    app.handle and the compiled loop's cached heads both build their fields
    here, from info alone, so the two paths cannot answer differently: the
    Content-Type it carries (also when a compressed form is sent: that is
    still the same representation, §8.4), nosniff, and the root's
    Cache-Control.  coding: the Content-Encoding when a compressed form is
    sent; sent: the stat of the sibling (name.br, name.gz) sent instead,
    whose own validators go out.  Vary is on every file response: whether a
    file is sent compressed always depends on Accept-Encoding, as a sibling
    may lie beside any file.  Accept-Ranges only where ranges of these very
    bytes are served: a Range request gets the file as it is, never a part
    of its compressed form.  A plain stat result (no FileInfo) is labelled
    application/octet-stream.
    """
    file_etag, modified = validators(info if sent is None else sent)
    fields = [(b"Content-Type", getattr(info, "content_type", OCTETS)), NOSNIFF]
    if coding is not None:
        fields.append((b"Content-Encoding", coding))
    fields += [(b"ETag", tag or file_etag), (b"Last-Modified", http_date(modified))]
    cache_control = getattr(info, "cache_control", None)
    if cache_control is not None:
        fields.append((b"Cache-Control", cache_control))
    if coding is None:
        fields.append(ACCEPT_RANGES)
    fields.append(VARY)
    return fields


class App:
    def __init__(self, files, limits=DEFAULT_LIMITS):
        self.files = files
        self.gzip_cache = GzipCache(limits.gzip_max_file_bytes, limits.gzip_cache_bytes,
                                    limits.gzip_bytes_per_second)
        self.access_log = None      # an AccessLog when --access-log is given

    def handle(self, request):
        try:
            return self.route(request)
        except HTTPError as error:
            if request.method != b"HEAD":
                raise
            # Answered here rather than by the loop so that HEAD gets the head
            # of the error and no body (RFC 9110 §9.3.2).
            response = response_for(error)
            response.head_only = True
            return response

    def route(self, request):
        method = request.method
        if method == b"CONNECT" or (method == b"OPTIONS" and request.target == b"*"):
            # RFC 9112 §3.2.3-4: a tunnel, or the server as a whole; a file server
            # implements neither (RFC 9110 §15.6.2), and the request is well formed.
            raise HTTPError(501, f"{method.decode()} {request.target.decode()} is not implemented", close=False)
        path = request_path(request.target)
        if path.startswith(b"/files/"):
            if method == b"POST":
                # RFC 9110 §15.5.12: an upload must say how long it is.
                if request.content_length == 0 and not request.chunked and request.get(b"content-length") is None:
                    raise HTTPError(411, "POST needs a Content-Length", close=False)
                return self.upload(request, path[7:])
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
            response = self.file_response(request, path[7:])
        if method == b"HEAD":
            response.head_only = True
        return response

    def upload(self, request, raw_name: bytes):
        """The Upload for POST /files/{name}, once its preconditions hold (RFC 9110 §13.2.2).

        They are checked now, so that a refusal comes before the body (and
        instead of 100 Continue), and again when the upload is committed,
        against the file as it is then (files.Upload).
        """
        path, mode = self.files.upload_target(raw_name)
        if not any(field(request, name) is not None for name in WRITE_PRECONDITIONS):
            return Upload(path, mode)

        def precondition(info):
            current, modified = (None, None) if info is None else validators(info)
            return precondition_status(request, current, modified, safe=False)

        if precondition(self.files.stat_existing(raw_name)):
            raise HTTPError(412, "precondition failed: the file is not in the state the request expects",
                            close=False)
        if_none_match = field(request, b"if-none-match")
        create_only = if_none_match is not None and if_none_match.strip(b" \t") == b"*"
        return Upload(path, mode, precondition, create_only)

    def file_response(self, request, raw_name: bytes) -> Response:
        """GET or HEAD of a file: 200, 206, 304, 412 or 416."""
        fd, info, path, _ = self.files.open_for_reading(raw_name)
        opened = [fd]           # every descriptor but the one the response sends is closed here
        response = None
        try:
            response = self.file_answer(request, fd, info, path, opened)
            return response
        finally:
            for descriptor in opened:
                if response is None or descriptor != response.fd:
                    os.close(descriptor)

    def file_answer(self, request, fd, info, path, opened, copies=None) -> Response:
        """The answer to GET or HEAD of the file open as fd (info: its fstat, path: its real path).

        Descriptors it opens (a name.br or name.gz beside the file) are appended to
        opened, and the gzip copy it relied on, if any, to copies.
        core/filecache.py remembers these answers, keyed on the fields they
        depend on, so this is the one place that decides them.
        """
        size = info.st_size
        # RFC 9110 §14.2: Range is defined for GET only; HEAD ignores it.
        range_value = field(request, b"range") if request.method == b"GET" else None
        tag, modified = validators(info)
        fields, body, body_fd, length = None, None, fd, size
        # RFC 9110 §12.5.3: compressed when accepted, but a Range request gets
        # the file as it is: a part of a compressed form is of no use to
        # anyone; nor is compressing a format that is compressed already (a
        # .gz or .br included).  A sibling in the coding the client prefers
        # goes out as it lies; else, for gzip, a copy compressed in memory.
        if range_value is None and not already_compressed(path):
            for coding in preferred_codings(field(request, b"accept-encoding"), SIBLING_SUFFIXES):
                sibling = self.files.open_sibling(path, SIBLING_SUFFIXES[coding])
                if sibling is not None:
                    body_fd, sent = sibling
                    opened.append(body_fd)
                    (tag, modified), length = validators(sent), sent.st_size
                    fields = file_fields(info, tag, coding, sent)
                    break
                if coding == GZIP:
                    body = self.gzip_cache.get(path, fd, info)
                    if body is not None:
                        if copies is not None:
                            copies.append(body)
                        # Weak: the bytes depend on the zlib version and level, not
                        # only on the file, so only their meaning is promised (§8.8.1).
                        tag = b'W/"%x-%x-gzip"' % (info.st_mtime_ns, size)
                        fields = file_fields(info, tag, GZIP)
                        break
        if fields is None:
            fields = file_fields(info, tag)
        status = precondition_status(request, tag, modified, safe=True)
        if status == 304:
            # RFC 9110 §15.4.5: the validators, Cache-Control and Vary of the 200, no content.
            fields = [(b"ETag", tag), (b"Last-Modified", http_date(modified))]
            cache_control = getattr(info, "cache_control", None)
            if cache_control is not None:
                fields.append((b"Cache-Control", cache_control))
            fields.append(VARY)
            return Response(304, fields)
        if status == 412:
            raise HTTPError(412, "precondition failed: the file is not in the state the request expects",
                            close=False)
        if body is not None:
            return Response(200, fields, body)
        if range_value is not None:
            if_range = field(request, b"if-range")
            # §13.1.5: a Range whose If-Range does not hold is ignored: all of the new file.
            if if_range is None or if_range_holds(if_range, tag, modified):
                part = byte_range(range_value, size)
                if part is UNSATISFIABLE:
                    return error_response(416, f"no byte of the range is within the file's {size} bytes",
                                          False, [(b"Content-Range", b"bytes */%d" % size)])
                if part is not None:
                    offset, length = part
                    content_range = b"bytes %d-%d/%d" % (offset, offset + length - 1, size)
                    return Response(206, fields + [(b"Content-Range", content_range)],
                                    fd=fd, offset=offset, length=length)
        return Response(200, fields, fd=body_fd, length=length)


def request_path(target: bytes) -> bytes:
    """The path of an origin-form or absolute-form target (RFC 9112 §3.2), query dropped."""
    if not target.startswith(b"/"):
        scheme, sep, rest = target.partition(b"://")
        if not sep or scheme.lower() not in (b"http", b"https"):
            raise HTTPError(400, "request target must be a path or an absolute URI", close=False)
        # RFC 3986 §3.2: the authority ends at the first "/" or "?" ("#" never gets here).
        end = min([i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0], default=len(rest))
        target = rest[end:] if rest[end:end + 1] == b"/" else b"/" + rest[end:]
    query = target.find(b"?")
    return target if query < 0 else target[:query]


def text_response(request, text: bytes) -> Response:
    """text/plain, gzip-compressed when the client accepts it (stage s08)."""
    if accepts_gzip(field(request, b"accept-encoding")):
        return Response(200, [TEXT, (b"Content-Encoding", b"gzip"), VARY], gzip.compress(text, mtime=0))
    return Response(200, [TEXT, VARY], text)
