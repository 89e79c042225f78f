"""The hot path for GET/HEAD /files/{name}: answers for files already looked up.

A plain GET of a file (wrk's request, a browser's reload without
validators) needs no routing decision beyond the first one: the first request
goes through FileRoot (so path safety is decided in one place) and app's
file_fields, and the result -- the path as requested, an open descriptor, the
file's identity (device, inode, size, mtime) and the finished response head
minus its Date line -- is kept.  Each later request stat()s the requested
path and uses the entry only if the identity is unchanged; a replaced, edited
or re-linked file is looked up afresh, and every entry is resolved again at
least once a second, so a directory that turns into a link pointing out is
noticed within that second.  Entries are keyed by the normalised name
(cache_key), so aliases such as /files/./x and /files//x share one.

Descriptor lifetime, as nginx's open_file_cache keeps it: a response that
sends from an entry's descriptor holds a reference (acquire) until its last
byte is sent or its connection closes (release).  An entry that is replaced,
expired or evicted while in use is only retired, and its descriptor is
closed when the last user lets go -- never under a response, whose bytes
would otherwise come from whatever the kernel next opens on that number.

Requests that could be answered differently (ranges, conditionals, gzip
negotiation, a body, a query) never take this path.  The pure-Python loop
uses FileCache; the compiled loop keeps the same entries in C structures
with the same lifetime rules and takes the rest (cache_key,
FILE_ANSWER_FIELDS, REVALIDATE_SECONDS, MAX_ENTRIES, head_after_date) from
here.
"""
import os

from .app import file_fields
from .errors import HTTPError
from .files import decode_name
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
    date = date_field()     # read once: the second may tick between two reads
    head = serialize_head(Response(200, fields, fd=0, length=size), True, date)
    if not head.startswith(HEAD_PREFIX + date):
        raise AssertionError("response head layout changed; update core/filecache.py")
    return head[len(HEAD_PREFIX) + len(date):]


def cache_key(target: bytes) -> bytes:
    """The key of /files/{name}: the target itself, or the normalised name for an alias.

    Only a target with an escape, an empty or a dot segment can be an alias
    (a "plain" target is its own normal form); an alias's key is FILES + its
    normalised name when that is plain too, else NUL + that, which no target
    can equal.  So a key that equals a target is that target's own key, and a
    loop may look a target up as it is before computing its key (the
    compiled loop does: a hit costs no call).  A name that cannot be
    normalised (it climbs out) keeps its target: the lookup fails and
    app.handle answers it.
    """
    if _plain(target):
        return target
    try:
        key = FILES + decode_name(target[len(FILES):])
    except HTTPError:
        return target
    return key if _plain(key) else b"\x00" + key


def _plain(target: bytes) -> bool:
    return b"%" not in target and b"/." not in target and b"//" not in target


class FileEntry:
    """One cached file: see the module docstring for who may close its descriptor, and when."""

    __slots__ = ("path", "fd", "identity", "size", "fields", "head_rest", "resolved_at",
                 "users", "retired")

    def acquire(self) -> "FileEntry":
        self.users += 1
        return self

    def release(self) -> None:
        self.users -= 1
        if self.users == 0 and self.retired:
            os.close(self.fd)

    def retire(self) -> None:
        """Out of the cache: close the descriptor now, or when its last user releases it."""
        self.retired = True
        if self.users == 0:
            os.close(self.fd)


def identity(info) -> tuple:
    """What must not change for a cached entry to stay valid."""
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


class FileCache:
    def __init__(self, files):
        self.files = files
        self.entries = {}           # cache_key -> FileEntry, oldest first

    def lookup(self, target: bytes, now: float):
        """The entry answering target, or None when app.handle must answer (404, 403, ...)."""
        key = cache_key(target)
        entry = self.entries.get(key)
        if entry is not None:
            if now - entry.resolved_at < REVALIDATE_SECONDS:
                try:
                    if identity(os.stat(entry.path)) == entry.identity:
                        return entry
                except OSError:
                    pass
            del self.entries[key]
            entry.retire()
        try:
            opened = self.files.open_for_reading(target[len(FILES):])
        except HTTPError:
            return None
        info = opened.info
        entry = FileEntry()
        entry.path, entry.fd, entry.size = opened.requested_path, opened.fd, info.st_size
        entry.identity = identity(info)
        entry.fields = file_fields(info)
        entry.head_rest = head_after_date(entry.fields, info.st_size)
        entry.resolved_at = now
        entry.users, entry.retired = 0, False
        if len(self.entries) >= MAX_ENTRIES:
            self.entries.pop(next(iter(self.entries))).retire()      # the oldest goes
        self.entries[key] = entry
        return entry

    def close(self):
        for entry in self.entries.values():
            entry.retire()
        self.entries.clear()
