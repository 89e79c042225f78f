"""Stage 9: persistent connections.

CodeCrafters: "Persistent connections" (tester stage ag9), "Concurrent
     persistent connections" (ul1), "Connection closure" (kh7): the extension.
Task:
  Sends:   on one connection, two requests one after the other, each picked
           at random from GET /, GET /echo/{word} and GET /user-agent (ag9).
  Expects: each answered as in stages 2-4, and the connection still open
           between them.
  Sends:   the same over 2 or 3 connections held open at once: one request
           on each, the last opened first, then a second round in order (ul1).
  Sends:   two requests on one connection, the second with `Connection: close` (kh7).
  Expects: the second answer carries `Connection: close`, and the server then
           closes the connection.
  Try:     python -m stages.s09_keepalive --directory /tmp/
           curl --http1.1 -v localhost:4221/echo/banana --next -A blueberry/apple localhost:4221/user-agent
           curl --http1.1 -v localhost:4221/echo/orange --next -H "Connection: close" localhost:4221/
New: many requests, one after another, on one connection (HTTP/1.1's
     default), answered in the order they came even when a client sends them
     all at once (pipelining); `Connection: close` ends it.
Reused from: s08_gzip (everything a request gets), s07_post (`BodyReader`),
     s03_paths (`ByteStream`, which keeps the bytes of the next request).

Beyond the tester: pipelined requests (sent before the previous answer
arrived) are answered in order; HTTP/1.0 connections close after one answer;
a connection whose request body was not read (a refused upload) closes, with
`Connection: close`, rather than read the body only to skip it.
"""
from stages import s08_gzip
from stages.s03_paths import ByteStream


def wants_to_keep_alive(request):
    """RFC 9112 section 9.3: HTTP/1.1 connections stay open unless a Connection header says "close".

    HTTP/1.0 connections close (its optional keep-alive is not implemented).
    """
    options = {option.strip().lower() for option in request.headers.get("connection", "").split(",")}
    return request.version != "HTTP/1.0" and "close" not in options


class Server(s08_gzip.Server):
    """Stage 9: keep each connection open for request after request."""

    def handle_connection(self, conn):
        # One stream for the whole connection: bytes that arrived with one
        # request (the start of the next, pipelined one) are not lost.
        stream = ByteStream(conn)
        while (request := self.exchange(stream)) is not None and self.keeps_alive(request):
            pass

    def keeps_alive(self, request):
        # A body the handler did not read still sits before the next request;
        # closing is simpler and safer than reading it only to throw it away.
        return wants_to_keep_alive(request) and request.body.remaining == 0

    def respond_to(self, request):
        response = super().respond_to(request)
        if not self.keeps_alive(request):
            response.headers.append(("Connection", "close"))  # RFC 9112 section 9.6
        return response

    def refusal(self, error):
        # After an unreadable request we cannot know where the next one
        # starts, so this answer is the last on the connection (s03 closes).
        response = super().refusal(error)
        response.headers.append(("Connection", "close"))
        return response


if __name__ == "__main__":
    Server.main()
