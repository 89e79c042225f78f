"""Stage 2: respond with 200.

CodeCrafters: "Respond with 200".
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
