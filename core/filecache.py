"""The hot path for GET/HEAD /files/{name}: answers for files already looked up.

A plain GET of a file (wrk's request, a browser's reload without
validators) needs no routing decision beyond the first one: the first request
goes through FileRoot (so path safety is decided in one place) and app's
file_fields, and the result -- real path, open descriptor, identity (inode,
size, mtime) and the finished response head minus its Date line -- is kept.
Each later request stat()s the real path and uses the entry only if the
identity is unchanged; a replaced or edited file is looked up afresh, and
every entry is resolved again at least once a second, so a directory that
turns into a link pointing out is noticed within that second.

Requests that could be answered differently (ranges, conditionals, gzip
negotiation, a body, a query) never take this path.  The pure-Python loop
uses FileCache; the compiled loop keeps the same entries in C structures
and takes these rules (FILE_ANSWER_FIELDS, REVALIDATE_SECONDS, head_after_date)
from here.
"""
import os

from .app import file_fields
from .errors import HTTPError
from .response import SERVER, STATUS_LINES, Response, date_field, serialize_head

# Fields that can change how a file is answered (RFC 9110 §12.5.3, §13, §14).
FILE_ANSWER_FIELDS = (b"range", b"if-range", b"if-match", b"if-none-match",
                      b"if-modified-since", b"if-unmodified-since", b"accept-encoding")
FILES = b"/files/"
# Resolve a cached name through FileRoot again after this long.
REVALIDATE_SECONDS = 1.0
# Entries per worker; each holds an open descriptor.
MAX_ENTRIES = 1024
HEAD_PREFIX = STATUS_LINES[200] + SERVER


def takes_fast_path(request) -> bool:
    """A GET or HEAD of /files/{name} with no body, no query and nothing that changes the answer."""
    if request.method not in (b"GET", b"HEAD") or request.content_length or request.chunked:
        return False
    target = request.target
    if not target.startswith(FILES) or b"?" in target:
        return False
    return not any(name.lower() in FILE_ANSWER_FIELDS for name, _ in request.headers)


def head_after_date(fields, size) -> bytes:
    """The keep-alive head of a 200 with these fields, after HEAD_PREFIX and the Date line."""
    date = date_field()
    head = serialize_head(Response(200, fields, fd=0, length=size), True)
    if not head.startswith(HEAD_PREFIX + date):
        raise AssertionError("response head layout changed; update core/filecache.py")
    return head[len(HEAD_PREFIX) + len(date):]


class FileEntry:
    __slots__ = ("path", "fd", "identity", "size", "fields", "head_rest", "resolved_at")


class FileCache:
    def __init__(self, files):
        self.files = files
        self.entries = {}

    def lookup(self, target: bytes, now: float):
        """The entry answering target, or None when app.handle must answer (404, 403, ...)."""
        entry = self.entries.get(target)
        if entry is not None:
            if now - entry.resolved_at < REVALIDATE_SECONDS:
                try:
                    info = os.stat(entry.path)
                    if (info.st_ino, info.st_size, info.st_mtime_ns) == entry.identity:
                        return entry
                except OSError:
                    pass
            del self.entries[target]
            os.close(entry.fd)
        try:
            fd, info, path = self.files.open_for_reading(target[len(FILES):])
        except HTTPError:
            return None
        entry = FileEntry()
        entry.path, entry.fd, entry.size = path, fd, info.st_size
        entry.identity = (info.st_ino, info.st_size, info.st_mtime_ns)
        entry.fields = file_fields(info)
        entry.head_rest = head_after_date(entry.fields, info.st_size)
        entry.resolved_at = now
        if len(self.entries) >= MAX_ENTRIES:
            self.close()
        self.entries[target] = entry
        return entry

    def close(self):
        for entry in self.entries.values():
            os.close(entry.fd)
        self.entries.clear()
