"""Wire the pieces together: files, app, the event loop (compiled or not), workers."""
from .accesslog import AccessLog
from .app import App
from .files import FileRoot
from .implementation import load
from .workers import Supervisor

loop_module, COMPILED = load("_server_c", "_server_py")


def serve_forever(args):
    app = App(FileRoot(args.directory), args.limits)
    if args.access_log:
        app.access_log = AccessLog(args.access_log)

    def serve(listener):
        loop_module.Worker(listener, app, args.limits, args.graceful_timeout).run()

    supervisor = Supervisor(args.host, args.port, args.workers, serve, args.graceful_timeout)

    def announce(port):
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"Listening on http://{host}:{port}", flush=True)

    return supervisor.run(announce)
