"""Wire the pieces together: listener, files, app, the event loop (compiled or not), workers."""
import signal
import sys

from . import listeners
from .accesslog import AccessLog
from .app import App
from .files import FileRoot, remove_stale_uploads
from .implementation import load
from .supervisor import Supervisor, run_alone

# The event loop: loop_py.py, compiled as loop_c unless CORE_PURE_PYTHON=1.
LOOP_MODULES = ("loop_c", "loop_py")
loop_module, COMPILED = load(*LOOP_MODULES)


def open_listeners(args):
    """The listening sockets, from the first source that applies (core/listeners.py)."""
    fds = listeners.systemd_fds()
    if fds:
        if len(fds) > 1:
            raise listeners.ListenerError(f"systemd passed {len(fds)} sockets; core serves one "
                                          "(one ListenStream= in the .socket unit)")
        return [listeners.inherited(fds[0])]
    if args.fd is not None:
        return [listeners.inherited(args.fd)]
    if args.uds is not None:
        return [listeners.unix(args.uds, args.uds_mode)]
    return listeners.tcp(args.host, args.port, args.workers)


def serve_forever(args):
    app = App(FileRoot(args.directory, args.cache_control), args.limits)
    if args.access_log:
        try:
            app.access_log = AccessLog(args.access_log, args.forwarded_allow_ips)
        except OSError as error:
            raise listeners.StartupError(f"cannot open --access-log {args.access_log}: {error.strerror or error}") from None
    sockets = open_listeners(args)
    # The kernel's TCP memory is the machine's, not a worker's: the workers
    # share --unbounded-connections, each taking its part (at least one).
    worker_limits = args.limits._replace(
        unbounded_connections=max(1, args.limits.unbounded_connections // args.workers))

    def serve(listener):
        if app.access_log is not None:
            # Each worker opens the file itself, so that one forked after a
            # SIGUSR1 writes to the new file; it reopens between two requests.
            app.access_log.open()
            signal.signal(signal.SIGUSR1, app.access_log.ask_reopen)
        else:
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        loop_module.EventLoop(listener, app, worker_limits, args.graceful_timeout).run()

    # Once, before any worker starts: the workers' own uploads cannot be among them yet.
    removed = remove_stale_uploads(app.files.root, args.limits.body_timeout)
    if removed:
        print(f"removed {removed} temporary upload{'s' if removed > 1 else ''} "
              f"left by a worker that died mid-body", file=sys.stderr, flush=True)

    def announce():
        print(f"Listening on {listeners.describe(sockets[0])}", flush=True)

    if args.no_supervisor:
        return run_alone(sockets[0], serve, announce)
    return Supervisor(sockets, args.workers, serve, args.graceful_timeout).run(announce)
