"""Stage 6: return a file.

CodeCrafters: "Return a file" (tester stage ap6).
Task:
  Sends:   the server is started with --directory /tmp/data/codecrafters.io/http-server-tester/;
           the tester writes a file named like `apple_grape_mango_pear` holding
           eight random words there, then sends GET /files/{that name}.
  Expects: `HTTP/1.1 200 OK`, `Content-Type: application/octet-stream`,
           `Content-Length` equal to the file's size, and its bytes as the body.
  Sends:   GET /files/non-existent{random name}
  Expects: `HTTP/1.1 404 Not Found`.
  Try:     echo -n 'Hello, World!' > /tmp/foo && python -m stages.s06_files --directory /tmp/
           curl -i http://localhost:4221/files/foo
           curl -i http://localhost:4221/files/non_existent_file
New: GET /files/{name} answers with the bytes of a file from --directory,
     and `resolve_inside`, which makes sure no name ("..", "%2e%2e", "%2f",
     an absolute path, %00, a symlink) reaches a file outside it.
Reused from: s05_concurrency (threads), s04_headers (`respond`),
     s03_paths (routing, HTTPError), s01_bind (--directory).

Beyond the tester: a name that would leave the directory is refused with 403
Forbidden; a name inside it with no regular file behind it gets 404.  (A raw
NUL byte in the URL never gets this far: the request line is 400.)
"""
import os
from urllib.parse import unquote

from stages import s05_concurrency
from stages.s03_paths import HTTPError
from stages.s04_headers import respond


def resolve_inside(directory, name):
    """The real path that `name` (percent-encoded, from the URL) names inside `directory`.

    `directory` is already a real path (see s01_bind.parse_settings).  The
    check is done on the fully resolved path, after decoding and after
    following symlinks, so every trick to step outside ends up in the same
    place: a path that does not start with the directory.
    """
    try:
        decoded = unquote(name, errors="strict")  # "%2e%2e%2f" is "../" once decoded
    except UnicodeDecodeError:
        raise HTTPError(400, f"file name {name[:100]!r} is not UTF-8") from None
    if "\0" in decoded:  # the OS would cut the name short at the NUL
        raise HTTPError(403, f"NUL byte in file name {name[:100]!r}")
    # join() drops `directory` if `decoded` is absolute; realpath() resolves
    # "..", "." and symlinks.  Either way the result is checked below.
    path = os.path.realpath(os.path.join(directory, decoded))
    if os.path.commonpath([directory, path]) != directory or path == directory:
        raise HTTPError(403, f"file name {name[:100]!r} leads outside --directory")
    return path


def get_file(server, request, name):
    path = server.file_path(name)
    if not os.path.isfile(path):  # also keeps directories and FIFOs out
        raise HTTPError(404, f"no file {name[:100]!r}")
    try:
        with open(path, "rb") as file:
            content = file.read()
    except FileNotFoundError:  # deleted since isfile()
        raise HTTPError(404, f"no file {name[:100]!r}") from None
    except PermissionError:
        raise HTTPError(403, f"file {name[:100]!r} is not readable") from None
    return respond(content, "application/octet-stream")


class Server(s05_concurrency.Server):
    """Stage 6: serve the files of --directory under /files/."""

    reasons = {**s05_concurrency.Server.reasons, 403: "Forbidden"}
    routes = [*s05_concurrency.Server.routes, ("GET", r"/files/(.+)", get_file)]

    def file_path(self, name):
        if self.settings.directory is None:
            raise HTTPError(404, "no --directory given")
        return resolve_inside(self.settings.directory, name)


if __name__ == "__main__":
    Server.main()
