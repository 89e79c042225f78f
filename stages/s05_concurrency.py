"""Stage 5: concurrent connections.

CodeCrafters: "Concurrent connections" (tester stage ej5).
Task:
  Sends:   first opens 2 or 3 connections, then sends GET / on each, the
           last opened first, and closes it once answered; then opens as many
           again and does the same in order.
  Expects: `HTTP/1.1 200 OK` on every connection.  A server that serves one
           connection at a time waits on the first, silent connection while
           the tester waits on the last: it fails (the tester reads for 2 s).
  Try:     python -m stages.s05_concurrency
           python3 -c 'import socket, time; c = socket.create_connection(("localhost", 4221)); time.sleep(30)' &
           curl -i http://localhost:4221/   # answered at once; stage 4 makes it wait
New: a thread per connection, so a slow or silent client no longer makes
     everyone else wait.
Reused from: s04_headers (everything a single connection does),
     s01_bind (command line, `serve_connection`).
"""
import signal
import threading

from stages import s04_headers

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class Server(s04_headers.Server):
    """Stage 5: serve many clients at once, one thread each."""

    def serve_forever(self, listener):
        while True:
            conn, _address = listener.accept()
            # Daemon threads: a client that never hangs up must not keep the
            # process alive after SIGTERM.
            thread = threading.Thread(target=self.serve_connection, args=(conn,), daemon=True)
            # The kernel hands a signal to any thread that does not block it.
            # Python runs handlers in the main thread only, and only once that
            # thread wakes: if a connection thread took SIGTERM, the main
            # thread would sleep on in accept().  So connection threads start
            # with the stop signals blocked (a new thread inherits the mask).
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                thread.start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)


if __name__ == "__main__":
    Server.main()
