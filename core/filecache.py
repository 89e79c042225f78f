"""The hot path for GET/HEAD /files/{name}: answers for files already looked up.

Written once for both builds: this file is the pure-Python cache and,
compiled by Cython as ``core.filecache_c`` (typed by ``filecache_c.pxd``),
the compiled loop's.

A plain GET of a file (wrk's request, a browser's reload without
validators) needs no routing decision beyond the first one: the first request
goes through FileRoot (so path safety is decided in one place) and app's
file_fields, and the result -- the path as requested, an open descriptor, the
file's identity (device, inode, size, mtime) and the finished response head
minus its Date line -- is kept.  Later requests stat() the requested path
(``IO.same_file``) and use the entry only if the identity is unchanged; a
replaced, edited or re-linked file is looked up afresh.  One stat serves
every request of the same round of the loop (the same ``now``).  It is made
after the epoll_wait that began the round, so it is newer than the arrival
of every request that wait reported; only bytes that arrive while the round
runs may be answered from a state that much older (microseconds under
load).  A stat per request cost a tenth of the server's CPU (perf, T2).  And
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
from .files import decode_name, read_unchanged
from .response import SERVER, STATUS_LINES, Response, date_field, serialize_head

# Fields that can change how a file is answered (RFC 9110 §12.5.3, §13, §14).
# The first three are what browsers send; an answer that depends on them is
# remembered per entry, keyed on their values.  The others (ranges, the
# preconditions of writes) are rare on this path and go to app.handle.
ACCEPT_ENCODING, IF_NONE_MATCH, IF_MODIFIED_SINCE = b"accept-encoding", b"if-none-match", b"if-modified-since"
OTHER_ANSWER_FIELDS = (b"range", b"if-range", b"if-match", b"if-unmodified-since")
FILES = b"/files/"
M_GET, M_HEAD = b"GET", b"HEAD"
# Resolve a cached name through FileRoot again after this long.
REVALIDATE_SECONDS = 1.0
# Entries per worker; each holds an open descriptor.
MAX_ENTRIES = 1024
# Answers remembered per entry (distinct Accept-Encoding / validator values).
MAX_ANSWERS = 8
# A file this small is read into memory once, and sent with its head in one
# send() instead of send() + sendfile(); the bytes kept so, per worker.
SMALL_FILE_BYTES = 64 * 1024
MAX_KEPT_BYTES = 16 * 1024 * 1024
# A key's answer that app.handle must give every time (kept so it is not worked out again).
UNCACHEABLE = None


def head_after_date(status, fields, length) -> bytes:
    """The keep-alive head of a response, after its status line, Server and Date lines."""
    date = date_field()     # read once: the second may tick between two reads
    head = serialize_head(Response(status, fields, fd=0, length=length), True, date)
    prefix = STATUS_LINES[status] + SERVER + date
    if not head.startswith(prefix):
        raise AssertionError("response head layout changed; update core/filecache.py")
    return head[len(prefix):]


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


def answer_key(headers):
    """What of a request's fields decides a file's answer: None for none, False when app.handle must.

    Else (Accept-Encoding, If-None-Match, If-Modified-Since), each a value
    or None.  Lengths first: compiled, that is a C comparison, and most
    fields (Host, User-Agent, Accept) are ruled out without a call.  A field
    given twice is left to app.handle, which reads list fields as one.
    """
    accept_encoding = if_none_match = if_modified_since = None
    for header in headers:
        name = header[0]
        size = len(name)
        if size == 15 and name.lower() == ACCEPT_ENCODING:
            if accept_encoding is not None:
                return False
            accept_encoding = header[1]
        elif size == 13 and name.lower() == IF_NONE_MATCH:
            if if_none_match is not None:
                return False
            if_none_match = header[1]
        elif size == 17 and name.lower() == IF_MODIFIED_SINCE:
            if if_modified_since is not None:
                return False
            if_modified_since = header[1]
        elif (size == 5 or size == 8 or size == 19) and name.lower() in OTHER_ANSWER_FIELDS:
            return False
    if accept_encoding is None and if_none_match is None and if_modified_since is None:
        return None
    return accept_encoding, if_none_match, if_modified_since


class Answer:
    """One answer of an entry, as app.handle gives it: status, head after Date, and the content.

    The content is the entry's descriptor or one it holds (fd >= 0, sent
    with sendfile), bytes (a gzip copy), or nothing (a 304).  copy: the gzip
    copy of app's GzipCache the answer relies on (its body, or the copy
    whose ETag a 304 confirms), or None.
    """

    def __init__(self, entry, response, copy):
        self.entry = entry
        self.copy = copy
        self.status = response.status
        self.fields = response.fields
        self.fd = response.fd
        self.body = None if response.fd >= 0 else response.body
        self.length = response.length
        if response.fd == entry.fd and entry.content is not None and response.offset == 0 \
                and response.length == len(entry.content):
            # The entry's own file, kept in memory: it leaves with its head in one send.
            self.fd, self.body = -1, entry.content
        self.prefix = STATUS_LINES[response.status] + SERVER
        self.head_rest = head_after_date(response.status, response.fields, response.length)

    def response(self, head_only):
        """This answer as a Response of its own (a connection about to close, HTTP/1.0)."""
        if self.fd >= 0:
            response = Response(self.status, self.fields, fd=os.dup(self.fd), length=self.length)
        else:
            response = Response(self.status, self.fields, self.body)
        response.head_only = head_only
        return response


class FileEntry:
    """One cached file: see the module docstring for who may close its descriptor, and when."""

    def __init__(self, opened, resolved_at, keep_bytes):
        info = opened.info
        self.path = os.fsencode(opened.requested_path)  # as requested (symlinks not resolved): what same_file stats
        self.real_path = opened.path
        self.info = info
        self.fd = opened.fd
        self.dev, self.ino, self.size, self.mtime_ns = info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns
        self.resolved_at = resolved_at
        self.checked_at = resolved_at  # the round (now) of the last stat that found it unchanged
        self.users = 0              # responses sending from fd (or a descriptor in held_fds)
        self.retired = False        # out of the cache: fds close when users falls to 0
        self.held_fds = []          # other descriptors answers send from (a name.gz beside it)
        # A small file's bytes (None if written to while read: then it is sent from the file).
        self.content = read_unchanged(self.fd, info) if keep_bytes else None
        self.kept_bytes = len(self.content) if self.content is not None else 0
        # The answer to a request with none of the fields that change it:
        # the fields app.handle gives this file (ETag, Last-Modified, ...).
        self.plain = Answer(self, Response(200, file_fields(info), fd=self.fd, length=info.st_size), None)
        self.answers = {}           # answer_key -> Answer, or UNCACHEABLE

    def acquire(self):
        self.users += 1
        return self

    def release(self):
        self.users -= 1
        if self.users == 0 and self.retired:
            self.close()

    def retire(self):
        """Out of the cache: close the descriptors now, or when their last user releases them."""
        self.retired = True
        if self.users == 0:
            self.close()

    def close(self):
        os.close(self.fd)
        for fd in self.held_fds:
            os.close(fd)


class FileCache:
    """One worker's entries, keyed by cache_key, oldest first; stats through the worker's IO."""

    def __init__(self, app, io):
        self.app = app
        self.io = io
        self.entries = {}
        self.kept_bytes = 0         # of small files' content, in their entries

    def lookup(self, request, now):
        """The answer to request from a cached file, or None when app.handle must answer it.

        Only a GET or HEAD of /files/{name} with no body and no query takes
        this path, and only while its answer depends on nothing but the file
        and the fields of answer_key.
        """
        method = request.method
        if (method != M_GET and method != M_HEAD) or request.chunked or request.content_length != 0:
            return None
        target = request.target
        if not target.startswith(FILES) or b"?" in target:
            return None
        key = answer_key(request.headers)
        if key is False:
            return None
        entry = self.entry_for(target, now)
        if entry is None:
            return None
        if key is None:
            return entry.plain
        answer = entry.answers.get(key, False)
        if answer is False:
            return self.remember(entry, key, request)
        # An answer made from a gzip copy holds while app's GzipCache keeps
        # that copy (asking also keeps the cache's order of use as it is).
        if answer is not None and answer.copy is not None and \
                self.app.gzip_cache.get(entry.real_path, entry.fd, entry.info) is not answer.copy:
            del entry.answers[key]
            return self.remember(entry, key, request)
        return answer

    def remember(self, entry, key, request):
        """Work out entry's answer for key as app.handle does, and keep it if it can be kept.

        It can while it depends only on the file and the key: app picks the
        representation (the file, a name.gz beside it, a gzip copy) and the
        status (200 or 304) from the same fields every time.  A name.gz or a
        gzip copy is kept for as long as the entry (a second at most, see
        REVALIDATE_SECONDS), so a sibling that appears or changes is seen
        within that second, as nginx's open_file_cache_valid 1s sees it.
        """
        if len(entry.answers) >= MAX_ANSWERS:
            return UNCACHEABLE
        opened, copies = [], []
        try:
            response = self.app.file_answer(request, entry.fd, entry.info, entry.real_path, opened, copies)
        except HTTPError:
            response = None
        answer = UNCACHEABLE
        if response is not None:
            answer = Answer(entry, response, copies[0] if copies else None)
        for fd in opened:
            if answer is not UNCACHEABLE and fd == answer.fd:
                entry.held_fds.append(fd)
            else:
                os.close(fd)
        entry.answers[key] = answer
        return answer

    def entry_for(self, target, now):
        """The entry for /files/{name} if the file is unchanged, else a fresh one, else None."""
        key = target
        entry = self.entries.get(target)        # a plain target is its own key
        if entry is None:
            key = cache_key(target)
            entry = self.entries.get(key)
        if entry is not None:
            if entry.checked_at == now:
                return entry                    # stat()ed in this round already
            if now - entry.resolved_at < REVALIDATE_SECONDS and \
                    self.io.same_file(entry.path, entry.dev, entry.ino, entry.size, entry.mtime_ns):
                entry.checked_at = now
                return entry
            self.drop(key)
        try:
            opened = self.app.files.open_for_reading(target[len(FILES):])
        except HTTPError:
            return None         # app.handle gives the answer (404, 403, ...)
        size = opened.info.st_size
        entry = FileEntry(opened, now, 0 < size <= SMALL_FILE_BYTES and self.kept_bytes + size <= MAX_KEPT_BYTES)
        self.kept_bytes += entry.kept_bytes
        if len(self.entries) >= MAX_ENTRIES:
            self.drop(next(iter(self.entries)))     # the oldest goes
        self.entries[key] = entry
        return entry

    def drop(self, key):
        entry = self.entries.pop(key)
        self.kept_bytes -= entry.kept_bytes
        entry.retire()

    def expire(self, now):
        """Drop the entries due to be resolved again: their descriptors and answers go now."""
        for key in [key for key, entry in self.entries.items()
                    if now - entry.resolved_at >= REVALIDATE_SECONDS]:
            self.drop(key)

    def close(self):
        for key in list(self.entries):
            self.drop(key)
