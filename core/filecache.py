"""The hot path for GET/HEAD /files/{name}: answers for files already looked up.

Written once for both builds: this file is the pure-Python cache and,
compiled by Cython as ``core.filecache_c`` (typed by ``filecache_c.pxd``),
the compiled loop's.

A plain GET of a file (wrk's request, a browser's reload without
validators) needs no routing decision beyond the first one: the first request
goes through FileRoot (so path safety is decided in one place) and app's
file_fields, and the result -- the path as requested, an open descriptor, the
file's identity (device, inode, size, mtime) and the finished response head
minus its Date line -- is kept.  Each later request stat()s the requested
path (``IO.same_file``) and uses the entry only if the identity is
unchanged; a replaced, edited or re-linked file is looked up afresh, and
every entry is resolved again at least once a second, so a directory that
turns into a link pointing out is noticed within that second.  Entries are
keyed by the normalised name (cache_key), so aliases such as /files/./x and
/files/a//x share one.

Descriptor lifetime, as nginx's open_file_cache keeps it: a response that
sends from an entry's descriptor holds a reference (acquire) until its last
byte is sent or its connection closes (release).  An entry that is replaced,
expired or evicted while in use is only retired, and its descriptor is
closed when the last user lets go -- never under a response, whose bytes
would otherwise come from whatever the kernel next opens on that number.

Requests that could be answered differently (ranges, conditionals, gzip
negotiation, a body, a query) never take this path: ``FileCache.lookup``
decides, and app.handle answers them.
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
M_GET, M_HEAD = b"GET", b"HEAD"
# Resolve a cached name through FileRoot again after this long.
REVALIDATE_SECONDS = 1.0
# Entries per worker; each holds an open descriptor.
MAX_ENTRIES = 1024
HEAD_PREFIX = STATUS_LINES[200] + SERVER


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
    can equal.  So a key that equals a target is that target's own key, and
    lookup tries a target as it is before computing its key: a hit costs no
    call.  A name that cannot be normalised (it climbs out) keeps its
    target: the lookup fails and app.handle answers it.
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


def may_change_file_answer(headers) -> bool:
    """Whether a request carries a field that can change how a file is answered.

    Lengths first: compiled, that is a C comparison, and most fields (Host,
    User-Agent, Accept) are ruled out without a call.
    """
    for header in headers:
        name = header[0]
        for wanted in FILE_ANSWER_FIELDS:
            if len(name) == len(wanted) and name.lower() == wanted:
                return True
    return False


class FileEntry:
    """One cached file: see the module docstring for who may close its descriptor, and when."""

    def __init__(self, path, fd, info, resolved_at):
        self.path = path            # bytes, as requested (symlinks not resolved): what same_file stats
        self.fd = fd
        self.dev, self.ino, self.size, self.mtime_ns = info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns
        # The fields app.handle gives this file (ETag, Last-Modified, ...):
        # they change only with size and mtime, and then the entry is replaced.
        self.fields = file_fields(info)
        self.head_rest = head_after_date(self.fields, info.st_size)
        self.resolved_at = resolved_at
        self.users = 0              # responses sending from fd
        self.retired = False        # out of the cache: fd closes when users falls to 0

    def acquire(self):
        self.users += 1
        return self

    def release(self):
        self.users -= 1
        if self.users == 0 and self.retired:
            os.close(self.fd)

    def retire(self):
        """Out of the cache: close the descriptor now, or when its last user releases it."""
        self.retired = True
        if self.users == 0:
            os.close(self.fd)


class FileCache:
    """One worker's entries, keyed by cache_key, oldest first; stats through the worker's IO."""

    def __init__(self, files, io):
        self.files = files
        self.io = io
        self.entries = {}

    def lookup(self, request, now):
        """The entry answering request, or None when app.handle must answer it.

        Only a GET or HEAD of /files/{name} with no body, no query and no
        field that changes the answer takes this path.
        """
        method = request.method
        if (method != M_GET and method != M_HEAD) or request.chunked or request.content_length != 0:
            return None
        target = request.target
        if not target.startswith(FILES) or b"?" in target or may_change_file_answer(request.headers):
            return None
        return self.entry_for(target, now)

    def entry_for(self, target, now):
        """The entry for /files/{name} if the file is unchanged, else a fresh one, else None."""
        key = target
        entry = self.entries.get(target)        # a plain target is its own key
        if entry is None:
            key = cache_key(target)
            entry = self.entries.get(key)
        if entry is not None:
            if now - entry.resolved_at < REVALIDATE_SECONDS and \
                    self.io.same_file(entry.path, entry.dev, entry.ino, entry.size, entry.mtime_ns):
                return entry
            del self.entries[key]
            entry.retire()
        try:
            opened = self.files.open_for_reading(target[len(FILES):])
        except HTTPError:
            return None         # app.handle gives the answer (404, 403, ...)
        entry = FileEntry(os.fsencode(opened.requested_path), opened.fd, opened.info, now)
        if len(self.entries) >= MAX_ENTRIES:
            self.entries.pop(next(iter(self.entries))).retire()     # the oldest goes
        self.entries[key] = entry
        return entry

    def close(self):
        for entry in self.entries.values():
            entry.retire()
        self.entries.clear()
