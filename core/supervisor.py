"""Pre-forked workers around listening sockets the supervisor owns, and their supervisor.

The supervisor opens (or inherits) the listener before anything forks, so a
bad address or a port in use is reported once, clearly, and keeps it for
its whole life: every worker inherits it across fork(), and a worker that
stops -- a reload, a crash -- closes only its own copy.  Connections queued
in the backlog meanwhile wait for the next worker instead of being reset.

Signals (as nginx, gunicorn and uvicorn take them):
  SIGTERM, SIGINT  every worker drains (finishes what is in flight); exit 0
  SIGHUP           reload: start a new set of workers, then let the old ones
                   drain; nobody is refused and nothing is cut off
  SIGUSR1          reopen the access log (after logrotate renamed it): passed
                   on to every worker, which reopens between two requests
  SIGCHLD          a worker that dies is replaced
With NOTIFY_SOCKET set (systemd, Type=notify) the supervisor reports READY=1
once every worker serves, RELOADING=1 around a reload and STOPPING=1.
With --no-supervisor (run_alone) the one process is the worker: the same
signals, except that SIGHUP reloads nothing.
"""
import os
import select
import signal
import sys
import time

from . import sdnotify

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
# Blocked across fork() so that no signal reaches a new worker before it has
# installed its own handlers (SIGHUP and SIGUSR1 would kill it by default);
# the worker unblocks them once they are in place (see unblock_stop_signals).
WORKER_SIGNALS = STOP_SIGNALS | {signal.SIGHUP, signal.SIGUSR1}


# The supervisor's PID, recorded in a worker right after fork: os.getppid()
# read later would already be 1 if the supervisor died in between.
_supervisor_pid = 0


def supervisor_pid() -> int:
    """The PID of the supervisor that forked this worker; 0 outside a worker (--no-supervisor)."""
    return _supervisor_pid


def orphaned(parent_pid: int) -> bool:
    """True once the supervisor is gone (a worker is re-parented), so the worker stops too.

    Checked by the loops every sweep: a parent killed with SIGKILL cannot tell
    its workers, and they must not keep serving the port on their own.  A loop
    with no supervisor (parent_pid 0) is nobody's worker: whoever started it may
    come and go.
    """
    return parent_pid != 0 and os.getppid() != parent_pid


def unblock_stop_signals():
    """Called by a worker's loop once its signal handlers are in place."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, WORKER_SIGNALS)


def run_alone(listener, serve, announce):
    """--no-supervisor: this process is the one worker, for a manager that restarts it itself.

    The same worker as under a supervisor, minus what only a supervisor does: a
    worker that dies is not replaced (systemd's Restart=, a container's restart
    policy do that) and SIGHUP reloads nothing (restart instead; with socket
    activation, connections queue meanwhile).  One Python process, not two:
    about half the memory.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)   # the loop unblocks them, as in a worker
    signal.signal(signal.SIGHUP, _no_reload)
    announce()
    sdnotify.notify("READY=1", f"MAINPID={os.getpid()}")
    try:
        serve(listener)
    except Exception as error:
        print(f"worker {os.getpid()}: {error!r}", file=sys.stderr, flush=True)
        return 1
    finally:
        sdnotify.notify("STOPPING=1")
    return 0


def _no_reload(*_):
    os.write(2, b"SIGHUP: nothing to reload without a supervisor (--no-supervisor); restart the server\n")


class Supervisor:
    def __init__(self, listeners, workers, serve, graceful_timeout):
        """listeners: the listening sockets, kept open here; worker i serves listeners[i % len]."""
        self.listeners = list(listeners)
        self.workers = workers
        self.serve = serve                  # serve(listener) runs one worker's loop
        self.graceful_timeout = graceful_timeout
        self.children = {}                  # pid -> (slot, started): the current workers
        self.retiring = {}                  # pid -> kill-after time: old workers draining
        self.stopping = False
        self.reload_asked = False
        self.reopen_asked = False
        self._wake_r = self._wake_w = -1     # signals write here (signal.set_wakeup_fd)

    def spawn(self, slot=0):
        global _supervisor_pid
        ready_r, ready_w = os.pipe()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _supervisor_pid = parent
            os.close(ready_r)
            code = 0
            try:
                if self._wake_w >= 0:       # the supervisor's, not ours to be woken through
                    signal.set_wakeup_fd(-1)
                    os.close(self._wake_r)
                    os.close(self._wake_w)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)    # the supervisor reloads, not us
                listener = self.listeners[slot % len(self.listeners)]
                for other in self.listeners:
                    if other is not listener:
                        other.close()       # our copy only: the supervisor keeps its own
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
        self.children[pid] = (slot, time.monotonic())
        return ok

    def run(self, announce):
        # The loop sleeps until something happens: a signal (a worker's exit is
        # SIGCHLD), whose arrival the interpreter writes to a pipe, or the
        # deadline of a draining worker -- no polling of an idle server.
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, _wake_only)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._ask_reload)
        signal.signal(signal.SIGUSR1, self._ask_reopen)
        for slot in range(self.workers):
            if not self.spawn(slot):
                self._terminate_all()
                raise OSError("a worker could not start")
        announce()
        sdnotify.notify("READY=1", f"MAINPID={os.getpid()}")
        while not self.stopping:
            if self.reload_asked:
                self.reload_asked = False
                self.reload()
            if self.reopen_asked:
                self.reopen_asked = False
                for pid in list(self.children) + list(self.retiring):
                    _kill(pid, signal.SIGUSR1)
            if not self._reap():
                break                       # no worker left at all
            self._kill_overdue()
            if self.stopping or self.reload_asked or self.reopen_asked:
                continue
            # A signal that came since the checks above has written to the pipe:
            # select returns at once.
            select.select([self._wake_r], [], [], self._until_next_deadline())
            _drain(self._wake_r)
        sdnotify.notify("STOPPING=1")
        for listener in self.listeners:
            listener.close()                # new connections are refused from now on
        self._terminate_all()
        return 0

    def _reap(self):
        """Collect the workers that have exited, replacing current ones; False when none is left."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if not pid:
                return True
            if pid in self.retiring:
                del self.retiring[pid]
            elif pid in self.children and not self.stopping:
                slot, started = self.children.pop(pid)
                print(f"worker {pid} exited ({_describe(status)}); starting a new one",
                      file=sys.stderr, flush=True)
                if time.monotonic() - started < 1.0:
                    time.sleep(1.0)         # a worker that dies at once must not spin us
                self.spawn(slot)

    def _until_next_deadline(self):
        """Seconds until a draining worker is overdue (None: no deadline to wake for)."""
        if not self.retiring:
            return None
        return max(0.0, min(self.retiring.values()) - time.monotonic())

    def reload(self):
        """New workers first, then the old ones drain: the listener never stops being served."""
        sdnotify.reloading()
        old, self.children = self.children, {}
        for slot in range(self.workers):
            self.spawn(slot)
        deadline = time.monotonic() + self.graceful_timeout + 5
        for pid in old:
            _kill(pid, signal.SIGTERM)
            self.retiring[pid] = deadline
        sdnotify.notify("READY=1")

    def _kill_overdue(self):
        now = time.monotonic()
        for pid, deadline in list(self.retiring.items()):
            if now > deadline:
                _kill(pid, signal.SIGKILL)
                self.retiring[pid] = now + 5       # reaped by waitpid like any other

    def _stop(self, *_):
        self.stopping = True

    def _ask_reload(self, *_):
        self.reload_asked = True

    def _ask_reopen(self, *_):
        self.reopen_asked = True

    def _terminate_all(self):
        pending = set(self.children) | set(self.retiring)
        for pid in pending:
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.graceful_timeout + 5
        while pending and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pending.clear()
                break
            except InterruptedError:
                continue
            if pid:
                pending.discard(pid)
            else:
                time.sleep(0.02)
        for pid in pending:
            _kill(pid, signal.SIGKILL)
        self.children.clear()
        self.retiring.clear()


def _wake_only(*_):
    """SIGCHLD's handler: its arrival, written to the wake-up pipe, is all the loop needs."""


def _drain(fd):
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _describe(status):
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
