r"""Stage 4: respond with a body; read a header.

CodeCrafters: "Respond with body" (tester stage cn2), "Read header" (fs3).
Task:
  Sends:   GET /echo/{word} HTTP/1.1\r\nHost: localhost:4221\r\n\r\n
  Expects: `HTTP/1.1 200 OK`, `Content-Type: text/plain`, `Content-Length`
           equal to the length of {word}, and the body {word}, exactly.
  Sends:   GET /user-agent with `User-Agent: {word}/{word}-{word}`
  Expects: the same, with the User-Agent value as the body.
  Try:     python -m stages.s04_headers
           curl -i http://localhost:4221/echo/abc
           curl -i --header "User-Agent: foobar/1.2.3" http://localhost:4221/user-agent
New: responses with header fields and a body framed by Content-Length (the
     `respond` helper), header lines parsed into `request.headers` (names
     lower-cased, so lookups are case-insensitive), the routes /echo/{text}
     and /user-agent, and error answers that say why: the detail of an
     `HTTPError` is sent as a text/plain body.
Reused from: s03_paths (reading the head, request line, routing, HTTPError),
     s01_bind (command line, accept loop).

Beyond the tester: a malformed header line gets 400, and so does an HTTP/1.1
request without Host (RFC 9112 section 3.2); an absolute-form target
("GET http://host/path", which servers must accept, RFC 9112 section 3.2.2)
is routed by its path.
"""
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from stages import s03_paths
from stages.s03_paths import HTTPError

# RFC 9112 section 5: field-name ":" OWS field-value OWS.  No space is allowed
# before the colon (5.1), and values may not hold control characters other
# than HTAB (RFC 9110 section 5.5).
FIELD_LINE = re.compile(rb"(%s):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*" % s03_paths.TOKEN)


@dataclass
class Request(s03_paths.Request):
    headers: dict = field(default_factory=dict)  # lower-cased names -> values


@dataclass
class Response(s03_paths.Response):
    headers: list = field(default_factory=list)  # [(name, value), ...]
    body: bytes = b""


def parse_field_lines(lines):
    """Header lines -> {lower-cased name: value}; repeated names are joined with ", "."""
    headers = {}
    for line in lines:
        match = FIELD_LINE.fullmatch(line)
        if match is None:
            # Includes obs-fold (a line starting with a space), which RFC 9112
            # section 5.2 lets a server reject with 400.
            raise HTTPError(400, f"malformed header line {line[:100]!r}")
        name, value = (part.decode("latin-1") for part in match.groups())
        name = name.lower()  # field names are case-insensitive (RFC 9110 section 5.1)
        # RFC 9110 section 5.3: repeated fields mean one comma-separated list.
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def respond(body, content_type="text/plain", status=200):
    """A response carrying `body` (bytes, or str sent as Latin-1)."""
    if isinstance(body, str):
        body = body.encode("latin-1")
    return Response(status, [("Content-Type", content_type)], body)


def serialize_response(status_line, response):
    # The client learns where the body ends from Content-Length (RFC 9112
    # section 6.3), so every response states it, 0 included.
    lines = [status_line, *(f"{name}: {value}" for name, value in response.headers),
             f"Content-Length: {len(response.body)}"]
    # Latin-1 maps str back to the exact bytes read (header values are decoded
    # the same way), so echoed values survive unchanged.
    return "".join(line + "\r\n" for line in lines).encode("latin-1") + b"\r\n" + response.body


def get_echo(server, request, text):
    return respond(text)


def get_user_agent(server, request):
    return respond(request.headers.get("user-agent", ""))


class Server(s03_paths.Server):
    """Stage 4: /echo/{text} and /user-agent answer with a body."""

    routes = [
        *s03_paths.Server.routes,
        ("GET", r"/echo/(.*)", get_echo),
        ("GET", r"/user-agent", get_user_agent),
    ]

    def parse_request(self, head):
        headers = parse_field_lines(head.split(b"\r\n")[1:])
        request = Request(**vars(super().parse_request(head)), headers=headers)
        if request.version == "HTTP/1.1" and "host" not in request.headers:
            raise HTTPError(400, "HTTP/1.1 request without Host")  # RFC 9112 section 3.2
        return request

    def target_path(self, target):
        if target.startswith(("http://", "https://")):  # absolute-form (RFC 9112 section 3.2.2)
            return urlsplit(target).path or "/"
        return super().target_path(target)

    def respond_to(self, request):
        response = super().respond_to(request)
        # Stage 3's handlers (GET /) answer with a bare status; from here on
        # every response has header fields and a body, if empty ones.
        return response if isinstance(response, Response) else Response(response.status)

    def error_response(self, error):
        # Say why: a learner (or curl -i) sees the reason instead of a bare status.
        return respond(f"{error.detail or self.reasons[error.status]}\n", status=error.status)

    def send_response(self, sock, response):
        sock.sendall(serialize_response(self.status_line(response.status), response))


if __name__ == "__main__":
    Server.main()
