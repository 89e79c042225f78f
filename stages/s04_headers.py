"""Stage 4: respond with a body; read a header.

CodeCrafters: "Respond with body", "Read header".
New: header lines parsed into `request.headers` (names lower-cased, so
     lookups are case-insensitive), responses with a body framed by
     Content-Length, the `respond` helper, and the routes /echo/{text} and
     /user-agent.
Reused from: s03_paths (reading the head, request line, routing, HTTPError),
     s01_bind (command line, accept loop).
"""
import re
from dataclasses import replace

from stages import s03_paths
from stages.s03_paths import HTTPError, Response

# RFC 9112 section 5: field-name ":" OWS field-value OWS.  No space is allowed
# before the colon (5.1), and values may not hold control characters other
# than HTAB (RFC 9110 section 5.5).
FIELD_LINE = re.compile(rb"(%s):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*" % s03_paths.TOKEN)


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
        request = super().parse_request(head)
        request.headers = parse_field_lines(head.split(b"\r\n")[1:])
        if request.version == "HTTP/1.1" and "host" not in request.headers:
            raise HTTPError(400, "HTTP/1.1 request without Host")  # RFC 9112 section 3.2
        return request

    def send_response(self, sock, response):
        # The client learns where the body ends from Content-Length (RFC 9112
        # section 6.3), so every response states it, 0 included.
        framed = replace(response, headers=[*response.headers, ("Content-Length", str(len(response.body)))])
        super().send_response(sock, framed)


if __name__ == "__main__":
    Server.main()
