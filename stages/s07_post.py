"""Stage 7: read the request body.

CodeCrafters: "Read request body" (tester stage qv8).
Task:
  Sends:   POST /files/{name} HTTP/1.1 with `Content-Length: N`,
           `Content-Type: application/octet-stream` and eight random words as
           the body (the server runs with --directory as in stage 6).
  Expects: `HTTP/1.1 201 Created`, and then the file {directory}/{name} on
           disk holding exactly the body.
  Try:     python -m stages.s07_post --directory /tmp/
           curl -i --data-binary 'some words' http://localhost:4221/files/words
           cat /tmp/words
New: the body, read by Content-Length as it arrives (`BodyReader`, which
     every request now carries as `request.body`), and POST /files/{name},
     which streams it into a temporary file next to the target and renames it
     into place only when every byte is there.  With two methods on one path,
     a method no route takes on a known path gets 405 and the Allow field.
Reused from: s06_files (`Server.file_path`, the safe name check), s04_headers
     (`Request`, `Response`, `respond`), s03_paths (`ByteStream`, HTTPError,
     routing), and all of s01-s05 through them.

Beyond the tester: a body over MAX_BODY_BYTES is refused with 413 before any
of it is read; a POST to /files without Content-Length gets 411; a
Content-Length that is not a number gets 400; Transfer-Encoding (chunked) is
not implemented: 501; `Expect: 100-continue` gets its interim 100 response.
"""
import os
import re
import tempfile
from dataclasses import dataclass

from stages import s04_headers, s06_files
from stages.s03_paths import ClientDisconnected, HTTPError
from stages.s04_headers import Response, respond

MAX_BODY_BYTES = 64 * 1024 * 1024
CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass
class Request(s04_headers.Request):
    body: "BodyReader" = None


def body_length(headers):
    """How many body bytes follow the head (RFC 9112 section 6.3)."""
    if "transfer-encoding" in headers:
        # A server answers 501 to a transfer coding it does not implement (RFC 9112 section 6.1).
        raise HTTPError(501, "Transfer-Encoding is not supported; send Content-Length")
    if "content-length" not in headers:
        return 0  # a request with neither header has no body
    # RFC 9110 section 8.6: only digits, and a repeated header must repeat the same value.
    values = {value.strip() for value in headers["content-length"].split(",")}
    if len(values) != 1 or not re.fullmatch(r"[0-9]+", value := values.pop()):
        raise HTTPError(400, f"bad Content-Length {headers['content-length'][:100]!r}")
    if int(value) > MAX_BODY_BYTES:
        raise HTTPError(413, f"body of {value} bytes is over MAX_BODY_BYTES={MAX_BODY_BYTES}")
    return int(value)


def expects_continue(request):
    """Whether the client waits for 100 Continue before it sends the body (RFC 9110 section 10.1.1)."""
    return request.version == "HTTP/1.1" and request.headers.get("expect", "").lower() == "100-continue"


class BodyReader:
    """Exactly `length` bytes of body from the stream, handed out as they arrive."""

    def __init__(self, stream, length, expects_continue=False):
        self.stream = stream
        self.remaining = length
        self.expects_continue = expects_continue

    def chunks(self):
        if self.expects_continue and self.remaining:
            # The client waits for this before sending the body (RFC 9110 section 10.1.1);
            # it is sent only once a handler actually wants the body.
            self.stream.sock.sendall(CONTINUE_RESPONSE)
            self.expects_continue = False
        pending = self.stream.pending  # whatever came with the head comes first
        while self.remaining:
            if not pending and not self.stream.receive_more():
                raise ClientDisconnected(f"connection closed with {self.remaining} body bytes still to come")
            chunk = bytes(pending[: self.remaining])
            del pending[: len(chunk)]
            self.remaining -= len(chunk)
            yield chunk


def write_atomically(path, chunks):
    """Write the chunks to `path` so that it only ever holds the complete content.

    The bytes go to a temporary file in the same directory (so the rename
    cannot cross file systems), which replaces `path` in one step once it is
    complete.  If anything fails, including the client going away, the
    temporary file is removed and `path` is untouched.
    """
    descriptor, temporary_path = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".upload-", suffix=".part")
    try:
        with open(descriptor, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
            os.fchmod(file.fileno(), 0o644)  # mkstemp makes it private; an upload is an ordinary file
            file.flush()
            os.fsync(file.fileno())  # on disk before the 201 says so
        os.replace(temporary_path, path)
    except BaseException:
        os.unlink(temporary_path)
        raise


def post_file(server, request, name):
    if "content-length" not in request.headers:
        raise HTTPError(411, "POST /files needs a Content-Length")
    path = server.file_path(name)
    try:
        write_atomically(path, request.body.chunks())
    except (FileNotFoundError, NotADirectoryError):
        raise HTTPError(404, f"no directory for {name[:100]!r}") from None
    except (IsADirectoryError, PermissionError):
        raise HTTPError(403, f"cannot write {name[:100]!r}") from None
    return Response(201)


class Server(s06_files.Server):
    """Stage 7: POST /files/{name} stores the request body as that file."""

    reasons = {**s06_files.Server.reasons, 201: "Created", 405: "Method Not Allowed", 411: "Length Required",
               413: "Content Too Large", 501: "Not Implemented"}
    routes = [*s06_files.Server.routes, ("POST", r"/files/(.+)", post_file)]

    def read_request(self, stream):
        request = super().read_request(stream)
        if request is None:
            return None
        body = BodyReader(stream, body_length(request.headers), expects_continue(request))
        return Request(**vars(request), body=body)

    def route(self, request):
        allowed = [method for method, pattern, _ in self.routes if re.fullmatch(pattern, request.path)]
        if allowed and request.method not in allowed:
            # RFC 9110 section 15.5.6: the path exists, not for this method; say which methods work.
            response = respond(f"{request.method} is not allowed on {request.path[:100]}\n", status=405)
            response.headers.append(("Allow", ", ".join(allowed)))
            return response
        return super().route(request)


if __name__ == "__main__":
    Server.main()
