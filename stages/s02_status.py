r"""Stage 2: respond with 200.

CodeCrafters: "Respond with 200" (tester stage ia4).
Task:
  Sends:   GET / HTTP/1.1\r\nHost: localhost:4221\r\n\r\n
  Expects: the status line `HTTP/1.1 200 OK` (code and reason are compared;
           header fields and body are not).  The tester's anti-cheat check
           also refuses a `Date` or `Server` field in the answer to GET /.
  Try:     python -m stages.s02_status
           curl -i http://localhost:4221/
New: the first HTTP response: a status line, then the empty line that ends
     the (empty) header section (RFC 9112 section 2.1 and 4).
Reused from: s01_bind (command line, accept loop, polite close).
"""
from stages import s01_bind

OK_RESPONSE = b"HTTP/1.1 200 OK\r\n\r\n"


class Server(s01_bind.Server):
    """Stage 2: answer every connection with 200 OK."""

    def handle_connection(self, conn):
        # The request is not even read: whatever was asked, the answer is 200.
        # The polite close of stage 1 drains it, so the client still gets this.
        conn.sendall(OK_RESPONSE)


if __name__ == "__main__":
    Server.main()
