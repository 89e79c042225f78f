"""Pre-forked workers sharing one port with SO_REUSEPORT, and their supervisor.

The parent binds the port first (without listening) so that a bad address or
a port in use is reported once, clearly, before anything forks; it then
forks N workers that each bind and listen on the same port, and the kernel
spreads new connections across them.  The parent restarts a worker that
dies and, on SIGTERM/SIGINT, asks every worker to drain and exits 0.
"""
import os
import signal
import socket
import sys
import time

BACKLOG = 4096
# Blocked across fork() so a stop request cannot reach a new worker before it
# has installed its own handlers; the worker unblocks them (see unblock_stop_signals).
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


# The supervisor's PID, recorded in a worker right after fork: os.getppid()
# read later would already be 1 if the supervisor died in between.
_supervisor_pid = None


def supervisor_pid() -> int:
    """The PID of the supervisor that forked this worker (os.getppid() outside a worker)."""
    return _supervisor_pid if _supervisor_pid is not None else os.getppid()


def orphaned(parent_pid: int) -> bool:
    """True once the supervisor is gone (a worker is re-parented), so the worker stops too.

    Checked by the loops every sweep: a parent killed with SIGKILL cannot tell
    its workers, and they must not keep serving the port on their own.
    """
    return os.getppid() != parent_pid


def unblock_stop_signals():
    """Called by a worker's loop once its SIGTERM/SIGINT handlers are in place."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def bind(host: str, port: int, listen: bool) -> socket.socket:
    """A TCP socket bound to (host, port); a listening one shares the port with SO_REUSEPORT.

    The parent's probe (listen=False) binds without SO_REUSEPORT: that is what
    makes it fail when anyone already listens on the port -- including another
    core, whose workers would otherwise silently share it with ours.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if listen:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        if listen:
            sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


class Supervisor:
    def __init__(self, host, port, workers, serve, graceful_timeout):
        self.host = host
        self.workers = workers
        self.serve = serve                  # serve(listener) runs one worker's loop
        self.graceful_timeout = graceful_timeout
        probe = bind(host, port, listen=False)   # raises OSError: the caller reports it
        self.port = probe.getsockname()[1]
        probe.close()                            # the workers bind it with SO_REUSEPORT
        self.children = {}
        self.stopping = False

    def spawn(self):
        global _supervisor_pid
        ready_r, ready_w = os.pipe()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _supervisor_pid = parent
            os.close(ready_r)
            code = 0
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                listener = bind(self.host, self.port, listen=True)
                os.write(ready_w, b"1")
                os.close(ready_w)
                self.serve(listener)
            except BaseException as error:  # a worker must never return into the parent's code
                print(f"worker {os.getpid()}: {error!r}", file=sys.stderr, flush=True)
                code = 1
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(ready_w)
        ok = os.read(ready_r, 1) == b"1"
        os.close(ready_r)
        self.children[pid] = time.monotonic()
        return ok

    def run(self, announce):
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for _ in range(self.workers):
            if not self.spawn():
                self._terminate_all()
                raise OSError(f"a worker could not listen on {self.host}:{self.port}")
        announce(self.port)
        while not self.stopping:
            # Poll rather than block: a blocking waitpid is resumed after a
            # signal handler runs (PEP 475), so SIGTERM would go unnoticed.
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not pid:
                time.sleep(0.1)
                continue
            if pid in self.children and not self.stopping:
                started = self.children.pop(pid)
                print(f"worker {pid} exited ({_describe(status)}); starting a new one",
                      file=sys.stderr, flush=True)
                if time.monotonic() - started < 1.0:
                    time.sleep(1.0)         # a worker that dies at once must not spin us
                self.spawn()
        self._terminate_all()
        return 0

    def _stop(self, *_):
        self.stopping = True

    def _terminate_all(self):
        for pid in self.children:
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.graceful_timeout + 5
        while self.children and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                break
            except InterruptedError:
                continue
            if pid:
                self.children.pop(pid, None)
            else:
                time.sleep(0.02)
        for pid in self.children:
            _kill(pid, signal.SIGKILL)


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _describe(status):
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
