"""Wire the pieces together: files, app, the event loop (compiled or not), workers."""
import os
import re
import sys
import time

from .accesslog import AccessLog
from .app import App
from .files import FileRoot
from .implementation import load
from .workers import Supervisor

loop_module, COMPILED = load("_server_c", "_server_py")

# The names files.Upload gives its temporary files: tempfile.mkstemp's, with
# prefix ".upload-" and no suffix -- the prefix, then eight characters of
# tempfile._RandomNameSequence.characters.  Nothing else is ever removed.
TEMPORARY_UPLOAD = re.compile(r"\.upload-[a-z0-9_]{8}")


def remove_stale_uploads(root: str, older_than: float) -> int:
    """Remove the temporary uploads under root that no one can still be writing; return how many.

    A worker killed in the middle of a body leaves its temporary file behind
    (an upload that ends any other way removes or renames it).  Removed:
    regular files (a link or a directory of that name is left alone) named as
    TEMPORARY_UPLOAD, not modified for more than older_than seconds (the body
    timeout: a live upload -- another instance may serve the same directory --
    writes more often than that or is cut off with 408 and removes its file),
    in root and every directory below it; symlinked directories are not
    followed, so nothing outside the served tree is touched.  Unreadable
    directories and files that vanish meanwhile are skipped.
    """
    cutoff = time.time() - older_than
    removed = 0
    pending = [root]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif (TEMPORARY_UPLOAD.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)
                          and entry.stat(follow_symlinks=False).st_mtime < cutoff):
                        os.unlink(entry.path)
                        removed += 1
                except OSError:
                    continue
    return removed


def serve_forever(args):
    app = App(FileRoot(args.directory), args.limits)
    if args.access_log:
        app.access_log = AccessLog(args.access_log)

    def serve(listener):
        loop_module.Worker(listener, app, args.limits, args.graceful_timeout).run()

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
