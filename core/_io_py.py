"""The system calls of the event loop in plain Python: the twin of ``_io_c.pyx``.

Same interface, same return codes: ``loop_py.py`` runs on either.  Sockets
are known by their file descriptor; this side keeps the socket objects.
"""
import errno
import os
import select
import socket
import time

READ, WRITE = select.EPOLLIN, select.EPOLLOUT
RECV_SIZE = 256 * 1024
IOV_MAX = os.sysconf("SC_IOV_MAX")        # pieces one sendmsg takes (1,024 on Linux)
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class OutQueue:
    """Bytes waiting to be sent on one connection, in order."""
    __slots__ = ("chunks", "size")

    def __init__(self):
        self.chunks = []
        self.size = 0

    def append(self, data):
        if data:                # an empty chunk would never be popped by send
            self.chunks.append(data)
            self.size += len(data)

    def release(self):
        """Give the buffer back while nothing is queued (here: nothing to give)."""

    def clear(self):
        self.chunks.clear()
        self.size = 0


class IO:
    """One worker's epoll instance, around its listener."""

    def __init__(self, listener):
        self.listener = listener
        self.epoll = select.epoll()
        self.events = []
        self.sockets = {listener.fileno(): listener}
        self.peers = {}
        self.tcp = listener.family != socket.AF_UNIX   # a unix socket has no Nagle to turn off

    def wait(self, timeout_ms):
        try:
            self.events = self.epoll.poll(timeout_ms / 1000, 512)
        except InterruptedError:
            self.events = []
        return len(self.events)

    def fd_at(self, i):
        return self.events[i][0]

    def mask_at(self, i):
        return self.events[i][1]

    def watch(self, fd, old, new):
        try:
            if not new:
                self.epoll.unregister(fd)
            elif old:
                self.epoll.modify(fd, new)
            else:
                self.epoll.register(fd, new)
        except OSError:
            pass

    def now(self):
        return time.monotonic()

    def wall_second(self):
        return int(time.time())

    def accept(self):
        try:
            sock, address = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return -1
        except OSError as error:
            if error.errno in _OUT_OF_RESOURCES:
                return -2
            raise
        sock.setblocking(False)
        fd = sock.fileno()
        self.sockets[fd] = sock
        if self.tcp:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.peers[fd] = address[0]
        else:
            self.peers[fd] = "unix:"    # as nginx logs a unix-socket client
        return fd

    def limit_unsent(self, fd, nbytes):
        """At most nbytes of what is sent on fd held unsent in the kernel (TCP_NOTSENT_LOWAT)."""
        if self.tcp:
            self.sockets[fd].setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, nbytes)

    def peer(self, fd):
        return self.peers.get(fd, "-")

    def recv_into(self, fd, parser):
        try:
            data = self.sockets[fd].recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return -1
        except OSError:
            return -2
        if data:
            parser.feed(data)
        return len(data)

    def discard(self, fd):
        sock = self.sockets[fd]
        try:
            while sock.recv(RECV_SIZE):
                pass
            return True
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    def send(self, fd, out, more):
        sock = self.sockets[fd]
        chunks = out.chunks
        while chunks:
            # One sendmsg takes at most IOV_MAX pieces (EMSGSIZE beyond): a
            # long pipeline's answers go out IOV_MAX at a time, MSG_MORE
            # telling the kernel that more follow.
            batch = chunks[:IOV_MAX]
            flags = socket.MSG_MORE if more or len(chunks) > IOV_MAX else 0
            try:
                sent = sock.sendmsg(batch, (), flags) if len(batch) > 1 else sock.send(batch[0], flags)
            except (BlockingIOError, InterruptedError):
                return 0
            except OSError:
                return -1
            out.size -= sent
            done = 0
            for piece in batch:
                if sent < len(piece):
                    break
                sent -= len(piece)
                done += 1
            del chunks[:done]
            if sent:
                chunks[0] = chunks[0][sent:]
        return 1

    def sendfile(self, fd, file_fd, offset, count):
        try:
            return os.sendfile(fd, file_fd, offset, count)
        except (BlockingIOError, InterruptedError):
            return -1
        except OSError:
            return -2

    def shutdown_wr(self, fd):
        try:
            self.sockets[fd].shutdown(socket.SHUT_WR)
            return True
        except OSError:
            return False

    def close(self, fd):
        self.peers.pop(fd, None)
        sock = self.sockets.pop(fd, None)
        if sock is not None:
            try:
                self.epoll.unregister(fd)
            except (OSError, ValueError):
                pass
            sock.close()

    def same_file(self, path, dev, ino, size, mtime_ns):
        try:
            info = os.stat(path)
        except OSError:
            return False
        return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns) == (dev, ino, size, mtime_ns)
