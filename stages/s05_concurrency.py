"""Stage 5: concurrent connections.

CodeCrafters: "Concurrent connections".
New: a thread per connection, so a slow or silent client no longer makes
     everyone else wait.
Reused from: s04_headers (everything a single connection does),
     s01_bind (command line, `serve_connection`).
"""
import threading

from stages import s04_headers


class Server(s04_headers.Server):
    """Stage 5: serve many clients at once, one thread each."""

    def serve_forever(self, listener):
        while True:
            conn, _address = listener.accept()
            # Daemon threads: a client that never hangs up must not keep the
            # process alive after SIGTERM.
            threading.Thread(target=self.serve_connection, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    Server.main()
