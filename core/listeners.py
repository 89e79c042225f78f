"""Where the listening socket comes from: a TCP port, a unix socket, an inherited descriptor.

The supervisor opens (or inherits) the listening socket once and keeps it for
the life of the process; every worker inherits it across fork().  So a worker
that stops -- a reload, a crash -- never closes the listener: connections
queued in its backlog wait for the next worker instead of being reset (the
kernel frees a socket when its last descriptor closes, not its first).

Sources, in the order server.py tries them:
  * systemd socket activation: LISTEN_PID == our PID and LISTEN_FDS sockets
    from descriptor 3 (sd_listen_fds(3)); the variables are removed so that
    no child reads them again;
  * --fd N: a listening socket the parent process left open for us;
  * --uds PATH: a unix socket, for running behind nginx or caddy;
  * --host/--port: TCP, one SO_REUSEPORT socket per worker (see tcp()).
A single socket (the first three) is shared by all workers, each watching
it with EPOLLEXCLUSIVE so that a connection wakes one worker, not all.
"""
import os
import socket
import stat

BACKLOG = 4096
SD_LISTEN_FDS_START = 3


class StartupError(Exception):
    """Something the server needs at start cannot be had; the message is the one line the CLI prints."""


class ListenerError(StartupError):
    """A listener that cannot be had."""


def tcp(host: str, port: int, count: int = 1) -> list:
    """count listening TCP sockets on (host, port) sharing it with SO_REUSEPORT: one per worker.

    The kernel spreads new connections over them by hash, evenly.  (One
    socket shared by every worker, registered with EPOLLEXCLUSIVE, measured
    as cheap per request, but an idle worker that is woken first takes every
    connection made while the others are idle: all keep-alive clients can end
    up on one worker.)  The supervisor keeps them all, and worker i inherits
    socket i, its replacement too: a worker that exits never closes one.

    A probe bound first without SO_REUSEPORT makes the bind fail when anyone
    already listens on the port -- including another core, whose workers
    would otherwise silently share it with ours.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def unix(path: str, mode=None) -> socket.socket:
    """A listening unix socket at path; a stale socket file left by a dead server is replaced.

    Only a socket is ever removed: a regular file (a typo in --uds) is
    refused, and so is a socket some live server still accepts on.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        if not stat.S_ISSOCK(info.st_mode):
            raise ListenerError(f"--uds {path}: exists and is not a socket; not replacing it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            raise ListenerError(f"--uds {path}: a server is listening on it already")
        except (ConnectionRefusedError, FileNotFoundError):
            pass                        # stale: nobody accepts on it any more
        finally:
            probe.close()
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        if mode is not None:
            os.chmod(path, mode)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def inherited(fd: int) -> socket.socket:
    """The listening stream socket at descriptor fd (--fd, or systemd's)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as error:
        raise ListenerError(f"descriptor {fd} is not a socket ({error.strerror})") from None
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise ListenerError(f"descriptor {fd} is not a listening stream socket")
    os.set_inheritable(fd, False)       # workers get it by fork, not programs they might exec
    return sock


def systemd_fds(environ=os.environ) -> list:
    """The descriptors systemd passed us (sd_listen_fds), [] when not socket-activated.

    LISTEN_PID names the process the sockets are for: a child that inherited
    the variables by accident must not take them.  They are unset either way.
    """
    pid, count = environ.pop("LISTEN_PID", None), environ.pop("LISTEN_FDS", None)
    environ.pop("LISTEN_FDNAMES", None)
    if pid is None or count is None:
        return []
    try:
        if int(pid) != os.getpid():
            return []
        count = int(count)
    except ValueError:
        return []
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))


def describe(sock: socket.socket) -> str:
    """Where sock listens, as the start line prints it."""
    if sock.family == socket.AF_UNIX:
        return f"unix:{sock.getsockname()}"
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"
