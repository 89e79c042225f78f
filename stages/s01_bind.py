"""Stage 1: bind to a port and accept connections.

CodeCrafters: "Bind to a port" (tester stage at4).
Task:
  Sends:   nothing.  The tester starts the server and opens a TCP connection
           to localhost:4221, retrying once a second for about 15 seconds.
  Expects: the connection to be accepted, and the server to keep running.
  Try:     python -m stages.s01_bind
           curl -v http://localhost:4221/   # connects; "Empty reply from server" is right for now
New: the command line, a listening socket, an accept loop that hands each
     connection to `Server.handle_connection`, a polite close, and a clean exit
     on SIGTERM/SIGINT.
Reused from: nothing; this is where the course starts.

Every later stage subclasses the previous stage's `Server` and overrides the
one or two methods its idea needs; `python -m stages.sNN_topic` runs it.
"""
import argparse
import os
import signal
import socket
import sys
import time
import traceback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4221
# A client that sends nothing for this long is dropped, so a silent peer
# cannot hold a connection (and, until stage 5, the whole server) forever.
CLIENT_TIMEOUT_SECONDS = 60.0
# How long a closing connection keeps reading what the client still sends.
LINGER_SECONDS = 1.0


class ShutdownRequested(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT.

    A BaseException, like KeyboardInterrupt, so that no `except Exception`
    on the way up can swallow it.
    """


class Server:
    """Stage 1: accept TCP connections on 127.0.0.1:4221 and stay running."""

    def __init__(self, settings):
        self.settings = settings

    def handle_connection(self, conn):
        """Talk to one client.  Stage 1 says nothing: accepting is the whole job."""

    def serve_forever(self, listener):
        # One client at a time: the next is accepted when this one is done.
        while True:
            conn, _address = listener.accept()
            self.serve_connection(conn)

    def serve_connection(self, conn):
        try:
            conn.settimeout(CLIENT_TIMEOUT_SECONDS)
            self.handle_connection(conn)
            close_politely(conn)
        except OSError:
            pass  # the client went away or went silent: nobody to answer
        except Exception:
            traceback.print_exc()  # a bug in a handler: report it, keep serving others
        finally:
            conn.close()

    @classmethod
    def main(cls, argv=None):
        """Run this server from the command line; exits 0 on SIGTERM/SIGINT."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, request_shutdown)
        try:
            settings = parse_settings(argv, description=cls.__doc__)
            with open_listener(settings.host, settings.port) as listener:
                print(f"Listening on http://{format_address(listener)}", flush=True)
                cls(settings).serve_forever(listener)
        except ShutdownRequested:
            pass
        sys.exit(0)


def request_shutdown(signum, _frame):
    raise ShutdownRequested(signal.Signals(signum).name)


def fail(message, exit_code):
    """End the program with one line on stderr instead of a traceback."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(exit_code)


def port_number(text):
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (0-65535)")
    return port


def parse_settings(argv, description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT, help="0 picks a free port (default %(default)s)")
    # Every stage accepts --directory so one command line starts any of them;
    # files are served from stage 6 on.
    parser.add_argument("--directory", help="directory served under /files/ (stage 6 on)")
    settings = parser.parse_args(argv)
    if settings.directory is not None:
        if not os.path.isdir(settings.directory):
            fail(f"--directory {settings.directory}: no such directory", exit_code=2)
        # One canonical spelling (no trailing slash, symlinks resolved) makes
        # the "is this path inside?" check of stage 6 a plain prefix test.
        settings.directory = os.path.realpath(settings.directory)
    return settings


def open_listener(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    # A restart need not wait for the old connections in TIME_WAIT to expire;
    # a port that another process listens on still fails.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(128)
    except OSError as error:
        listener.close()
        fail(f"cannot listen on {host}:{port}: {error.strerror or error}", exit_code=1)
    return listener


def format_address(listener):
    host, port = listener.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def close_politely(conn):
    """Say we are done, then read what the client still sends before closing.

    Closing a socket that has unread input makes the kernel send RST, which
    can destroy the response before the client has read it.  Half-closing
    first and draining for a moment avoids that (RFC 9112 section 9.6).
    """
    conn.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + LINGER_SECONDS
    while (time_left := deadline - time.monotonic()) > 0:
        conn.settimeout(time_left)
        if not conn.recv(65536):
            return


if __name__ == "__main__":
    Server.main()
