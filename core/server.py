"""Wire the pieces together: files, app, the event loop (compiled or not), workers."""
import sys

from .accesslog import AccessLog
from .app import App
from .files import FileRoot, remove_stale_uploads
from .implementation import load
from .supervisor import Supervisor

# The event loop: loop_py.py, compiled as loop_c unless CORE_PURE_PYTHON=1.
LOOP_MODULES = ("loop_c", "loop_py")
loop_module, COMPILED = load(*LOOP_MODULES)

def serve_forever(args):
    app = App(FileRoot(args.directory, args.cache_control), args.limits)
    if args.access_log:
        app.access_log = AccessLog(args.access_log)

    def serve(listener):
        loop_module.EventLoop(listener, app, args.limits, args.graceful_timeout).run()

    supervisor = Supervisor(args.host, args.port, args.workers, serve, args.graceful_timeout)
    # Once, in the parent, before any worker forks: the workers' own uploads
    # cannot be among them yet.
    removed = remove_stale_uploads(app.files.root, args.limits.body_timeout)
    if removed:
        print(f"removed {removed} temporary upload{'s' if removed > 1 else ''} "
              f"left by a worker that died mid-body", file=sys.stderr, flush=True)

    def announce(port):
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"Listening on http://{host}:{port}", flush=True)

    return supervisor.run(announce)
