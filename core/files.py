"""Files under --directory: safe path resolution, opening for sendfile, compressed copies, atomic uploads."""
import errno
import fcntl
import gzip
import os
import re
import stat
import time
from collections import OrderedDict, namedtuple
from urllib.parse import unquote_to_bytes

from .errors import HTTPError
from .mediatypes import media_type


class FileRoot:
    """The directory that /files/{name} maps onto."""

    def __init__(self, directory, cache_control=None):
        self.root = os.path.realpath(directory)
        # --cache-control: the Cache-Control of every file response, or None.
        self.cache_control = None if cache_control is None else cache_control.encode("latin-1")
        if not os.path.isdir(self.root):
            raise NotADirectoryError(directory)
        self._root_prefix = self.root.rstrip(os.sep) + os.sep
        # A new upload gets the mode open(2) would give it: 0666 less the umask.
        umask = os.umask(0o022)
        os.umask(umask)
        self.new_file_mode = 0o666 & ~umask

    def path(self, name: bytes) -> str:
        """The path of a normalised name under the root, symlinks not resolved."""
        return os.path.join(self.root, os.fsdecode(name))

    def real_path(self, name: bytes, root_allowed=False) -> str:
        """The real path of a normalised name (symlinks followed); 403 unless it lies inside the root."""
        real = os.path.realpath(self.path(name))
        if not (real.startswith(self._root_prefix) or (root_allowed and real == self.root)):
            raise HTTPError(403, "outside the served directory", close=False)
        return real

    def resolve(self, raw_name: bytes) -> str:
        """The real path for a percent-encoded name, or HTTPError.

        Decoding happens once and dot segments are removed as a URI's are,
        then the resolved real path (symlinks followed) must lie inside the
        root: "..", "%2e%2e", "%2f", absolute names and links pointing out all
        end up outside and get 403 Forbidden, as in stage s06; so does a NUL
        byte, which no file name can hold.
        """
        return self.real_path(decode_name(raw_name))

    def open_for_reading(self, raw_name: bytes) -> "OpenFile":
        """The regular file a name leads to, open; HTTPError with the status for anything else."""
        name = decode_name(raw_name)
        if name.endswith(b"/"):
            raise HTTPError(404, "a name ending in / is not a file", close=False)
        real = self.real_path(name)
        fd, info = open_regular(real)
        # Typed by the name as requested, as nginx types a URI: a link
        # index.html -> blob is HTML.
        return OpenFile(fd, FileInfo(info, media_type(name).encode(), self.cache_control),
                        real, self.path(name))

    def open_sibling(self, path: str, suffix: str):
        """(fd, stat result) of the regular file path + suffix (".gz", ".br"), or None.

        Its real path is checked like any other, so a name.gz that links out
        of the directory is never served; nor is anything but a regular file.
        """
        sibling = os.path.realpath(path + suffix)
        if not sibling.startswith(self._root_prefix):
            return None
        try:
            return open_regular(sibling)
        except HTTPError:
            return None

    def stat_existing(self, raw_name: bytes):
        """The stat result of the regular file a name resolves to, None if there is none."""
        try:
            info = os.stat(self.resolve(raw_name))
        except OSError as error:
            if error.errno in MISSING:
                return None
            raise file_error(error, "read the file") from None
        return info if stat.S_ISREG(info.st_mode) else None

    def upload_target(self, raw_name: bytes):
        """(path, mode) of the directory entry an upload to a name replaces, and its new mode.

        The directory holding the entry is resolved like any path and must lie
        inside the root; the entry itself is replaced by rename, so a symlink
        there is replaced, never written through.
        """
        name = decode_name(raw_name)
        if name.endswith(b"/"):
            raise HTTPError(409, "a name ending in / is a collection, not a file", close=False)
        parent_name, _, base = name.rpartition(b"/")
        if base in (b".", b".."):
            raise HTTPError(409, "a directory has that name", close=False)
        parent = self.real_path(parent_name, root_allowed=True)
        path = os.path.join(parent, os.fsdecode(base))
        try:
            if not stat.S_ISDIR(os.stat(parent).st_mode):
                raise HTTPError(404, "no such directory", close=False)
            existing = os.lstat(path)
        except FileNotFoundError:
            mode = self.new_file_mode
        except OSError as error:
            raise file_error(error, "store the upload") from None
        else:
            if stat.S_ISDIR(existing.st_mode):
                raise HTTPError(409, "a directory has that name", close=False)
            # A replaced file keeps its mode; anything else gets a new file's.
            mode = stat.S_IMODE(existing.st_mode) if stat.S_ISREG(existing.st_mode) else self.new_file_mode
        return path, mode


OpenFile = namedtuple("OpenFile", "fd info path requested_path")
OpenFile.__doc__ = """A regular file open for reading: descriptor, FileInfo, real path, and
the path as requested (symlinks not resolved), which the file cache stat()s."""


class FileInfo:
    """An open file's fstat fields that its answers depend on, and how it is labelled.

    The answer's fields are built from this alone (app.file_fields), by
    app.handle and by the file cache, which keeps it with its entry: so its
    Content-Type (by the name as requested, core/mediatypes.py) and the
    root's Cache-Control travel with it, and the two paths cannot differ.
    """
    __slots__ = ("st_mode", "st_dev", "st_ino", "st_size", "st_mtime", "st_mtime_ns",
                 "content_type", "cache_control")

    def __init__(self, info, content_type: bytes, cache_control=None):
        self.st_mode, self.st_dev, self.st_ino = info.st_mode, info.st_dev, info.st_ino
        self.st_size, self.st_mtime, self.st_mtime_ns = info.st_size, info.st_mtime, info.st_mtime_ns
        self.content_type = content_type
        self.cache_control = cache_control


def decode_name(raw_name: bytes) -> bytes:
    """The decoded, normalised name of a percent-encoded one (see normalize_name), or HTTPError.

    The one reading of a name under /files/: FileRoot opens and stores by
    it, and the file cache keys on it.
    """
    name = unquote_to_bytes(raw_name)
    if b"\x00" in name:
        raise HTTPError(403, "a file name cannot hold a NUL byte", close=False)
    if name.startswith(b"/"):
        raise HTTPError(403, "an absolute name is outside the served directory", close=False)
    name = normalize_name(name)
    if not name:
        raise HTTPError(404, "no file name", close=False)
    if name.rpartition(b"/")[2].startswith(TEMPORARY_PREFIX.encode()):
        # Another client's upload in progress: never read, never replaced.
        raise HTTPError(404, "no such file", close=False)
    return name


def normalize_name(name: bytes) -> bytes:
    """A decoded name with empty and dot segments removed, as RFC 3986 §5.2.4 removes them.

    "a//b", "./a/b" and "a/x/../b" all become "a/b" (a name that starts with
    "/" is absolute, and decode_name refuses it before this), so aliases of one file
    are one name (the file cache keys on it) and ".." is decided lexically,
    as in a URI, before any symlink is followed.  A name that climbs above
    the root gets 403.  A trailing "/" is kept: such a name is not a file.
    """
    segments = []
    parts = name.split(b"/")
    for part in parts:
        if part == b"..":
            if not segments:
                raise HTTPError(403, "outside the served directory", close=False)
            segments.pop()
        elif part and part != b".":
            segments.append(part)
    normal = b"/".join(segments)
    if normal and parts[-1] in (b"", b".", b".."):
        normal += b"/"
    return normal


def open_regular(path: str):
    """(fd, stat result) of the regular file at a resolved path; HTTPError for anything else.

    Opened non-blocking, so a FIFO cannot block the worker, and without
    following a final symlink (the path is already resolved: a link there now
    was put there since); fstat then decides, as nginx's open_file_cache
    does: only a regular file is ever read or sent.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        raise file_error(error, "open the file") from None
    try:
        info = os.fstat(fd)
    except OSError as error:
        os.close(fd)
        raise file_error(error, "open the file") from None
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise HTTPError(404, "no such file", close=False)
    return fd, info


# errno -> status, for every file operation (GET, HEAD, POST, gzip siblings),
# as nginx's static and dav modules answer them.
MISSING = (errno.ENOENT, errno.ENOTDIR)
_FILE_ERROR_STATUS = {
    errno.ENOENT: 404, errno.ENOTDIR: 404, errno.ENAMETOOLONG: 404, errno.ENXIO: 404,
    errno.ENODEV: 404, errno.EISDIR: 404,
    errno.EACCES: 403, errno.EPERM: 403, errno.ELOOP: 403,
    # Out of descriptors: the next try may well succeed (RFC 9110 §15.6.4).
    errno.EMFILE: 503, errno.ENFILE: 503,
    # RFC 4918 §11.5: the server cannot store the representation.
    errno.ENOSPC: 507, errno.EDQUOT: 507,
}
RETRY_AFTER = (b"Retry-After", b"1")


def file_error(error: OSError, doing: str, close: bool = False) -> HTTPError:
    """The HTTPError that answers an OSError of a file operation; 500 when nothing better fits.

    close: whether the connection must close after it (an upload cut off
    mid-body); a read error leaves the stream in sync, so it stays open.
    """
    status = _FILE_ERROR_STATUS.get(error.errno, 500)
    fields = (RETRY_AFTER,) if status == 503 else ()
    reason = {404: "no such file", 403: "forbidden"}.get(status, f"cannot {doing}")
    return HTTPError(status, f"{reason}: {error.strerror}", close=close, fields=fields)


class GzipCache:
    """gzip copies of small files, each compressed once and kept while it is used.

    Keyed by real path and checked against (size, mtime_ns), so a changed
    file is compressed afresh and its old copy dropped at once.  The total
    (compressed bytes plus a fixed overhead per entry) stays within
    max_total_bytes, least recently used out first.  A file whose gzip form
    would not be smaller is remembered as such and sent as it is.

    Compressing runs inside the event loop, so two rules bound it (get
    returns None, and the file is sent as it is, whenever either says no):

    - A budget: a token bucket of input bytes, refilled at bytes_per_second
      and holding at most max(bytes_per_second, max_file_bytes).  Over any T
      seconds a worker compresses at most that much plus bytes_per_second * T,
      and one compression is at most max_file_bytes.  Hits cost nothing.
    - Admission: a copy dropped to make room (not one dropped because its
      file changed) marks its path for READMIT_SECONDS; meanwhile that file is
      not compressed again.  Files whose copies together exceed the cache,
      asked for in turn, would otherwise each be compressed on every request
      and evicted before the next (LRU's worst case): instead the copies that
      fit stay and are hit, the rest go out as they are, and the budget is
      not spent on copies that cannot stay.
    """

    ENTRY_OVERHEAD = 256
    LEVEL = 6       # zlib's default: most of level 9's gain at a fraction of its time
    READMIT_SECONDS = 60.0
    MAX_EVICTED = 4096      # paths remembered as evicted; the oldest are forgotten first

    def __init__(self, max_file_bytes: int, max_total_bytes: int, bytes_per_second: int,
                 clock=time.monotonic):
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self.bytes_per_second = bytes_per_second
        self.burst = max(bytes_per_second, max_file_bytes)
        self._clock = clock
        self._tokens = float(self.burst)
        self._refilled = clock()
        self._entries = OrderedDict()       # path -> (size, mtime_ns, gzip bytes or None)
        self._evicted = OrderedDict()       # path -> when its copy was dropped for room, oldest first
        self._total = 0

    def compressible(self, info) -> bool:
        size = info.st_size
        return 0 < size <= self.max_file_bytes and size + self.ENTRY_OVERHEAD <= self.max_total_bytes

    def get(self, path: str, fd: int, info):
        """The gzip form of the file open as fd, or None when it is to be sent as it is."""
        if not self.compressible(info):
            return None
        entry = self._entries.get(path)
        if entry is not None:
            if entry[0] == info.st_size and entry[1] == info.st_mtime_ns:
                self._entries.move_to_end(path)
                return entry[2]
            self._drop(path)
        now = self._clock()
        if self._recently_evicted(path, now) or not self._afford(info.st_size, now):
            return None
        data = read_unchanged(fd, info)
        if data is None:
            return None             # written to while we read: send it as it is, cache nothing
        self._tokens -= len(data)
        compressed = gzip.compress(data, compresslevel=self.LEVEL, mtime=0)
        if len(compressed) >= len(data):
            compressed = None
        self._entries[path] = (info.st_size, info.st_mtime_ns, compressed)
        self._total += self._cost(compressed)
        while self._total > self.max_total_bytes:
            victim = next(iter(self._entries))
            self._drop(victim)
            self._evicted[victim] = now
            self._evicted.move_to_end(victim)
            if len(self._evicted) > self.MAX_EVICTED:
                self._evicted.popitem(last=False)
        return compressed

    def _recently_evicted(self, path: str, now: float) -> bool:
        """Whether path's copy was dropped for room less than READMIT_SECONDS ago."""
        evicted = self._evicted
        while evicted:                      # forget the marks that have run out, oldest first
            oldest, when = next(iter(evicted.items()))
            if now - when < self.READMIT_SECONDS:
                break
            del evicted[oldest]
        return path in evicted

    def _afford(self, size: int, now: float) -> bool:
        """Whether the budget holds size bytes now (refilled for the time since the last look)."""
        self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.bytes_per_second)
        self._refilled = now
        return self._tokens >= size

    def _cost(self, compressed) -> int:
        return self.ENTRY_OVERHEAD + (len(compressed) if compressed else 0)

    def _drop(self, path):
        self._total -= self._cost(self._entries.pop(path)[2])


def read_whole(fd: int, size: int):
    """The first size bytes of the file open as fd (pread: its offset is left alone), None if shorter."""
    parts, offset = [], 0
    while offset < size:
        data = os.pread(fd, size - offset, offset)
        if not data:
            return None
        parts.append(data)
        offset += len(data)
    return b"".join(parts)


def read_unchanged(fd: int, info):
    """The whole file open as fd, if it is still the version info (its fstat) describes; else None."""
    data = read_whole(fd, info.st_size)
    after = os.fstat(fd)
    if data is None or (after.st_size, after.st_mtime_ns) != (info.st_size, info.st_mtime_ns):
        return None
    return data


class Upload:
    """A body streamed to a temporary file beside its target, committed when complete.

    Readers of the final name see the old file or the new one, never a part:
    the temporary file is renamed into place, atomic within a directory.
    abort() leaves nothing behind.  commit() blocks on the disk (fsync) and on
    other processes' commits: the loops run it in a helper thread (see
    core/committer.py), never in the event loop.

    precondition(info) -> status: the request's If-* fields, evaluated against
    the file as it is when the upload is committed (stat result, or None when
    there is none); 0 when they hold.  They are evaluated and the rename done
    while holding an flock on the directory, which every worker of every
    instance takes for its commits, so a condition cannot change between the
    check and the rename; a create-only upload (If-None-Match: *) is linked
    into place, which fails when the name exists, whoever made it.
    """

    def __init__(self, path: str, mode: int, precondition=None, create_only=False):
        self.path = path
        self.precondition = precondition
        self.create_only = create_only
        try:
            fd, self.temp_path = create_temporary(os.path.dirname(path))
        except OSError as error:
            raise file_error(error, "store the upload") from None
        self._file = os.fdopen(fd, "wb")
        try:
            os.fchmod(fd, mode)
        except OSError as error:
            self.abort()
            raise file_error(error, "store the upload") from None

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as error:
            self.abort()
            # The rest of the body is still on its way: the connection closes.
            raise file_error(error, "write the upload", close=True) from None

    def commit(self) -> None:
        """Make the upload durable and put it in place; HTTPError (412, 507, ...) if it cannot be."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            directory = os.open(os.path.dirname(self.path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                fcntl.flock(directory, fcntl.LOCK_EX)
                self._check_precondition()
                if not (self.create_only and self._link_into_place()):
                    os.replace(self.temp_path, self.path)
                os.fsync(directory)         # the new name is durable too, before 201
            finally:
                os.close(directory)         # and with it the lock
        except FileExistsError:
            self.abort()
            raise HTTPError(412, "precondition failed: the file was created meanwhile", close=False) from None
        except OSError as error:
            self.abort()
            raise file_error(error, "store the upload") from None
        except HTTPError:
            self.abort()
            raise

    def _link_into_place(self) -> bool:
        """Create the name only if nobody has (EEXIST otherwise); False where links are unsupported.

        There the lock and the check just made still exclude every other
        commit of ours; only an outside writer could slip in.
        """
        try:
            os.link(self.temp_path, self.path)
        except OSError as error:
            if error.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
                return False
            raise
        os.unlink(self.temp_path)
        return True

    def _check_precondition(self):
        if self.precondition is None:
            return
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISREG(info.st_mode):
            info = None
        if self.precondition(info):
            raise HTTPError(412, "precondition failed: the file is not in the state the request expects",
                            close=False)

    def abort(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass


# Temporary uploads are named TEMPORARY_PREFIX + eight random characters (as
# tempfile.mkstemp names them); they are never served nor overwritten by name.
TEMPORARY_PREFIX = ".upload-"
_NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_NAME_LENGTH = 8

# The names of files.Upload's temporary files.  Nothing else is ever removed.
TEMPORARY_UPLOAD = re.compile(re.escape(TEMPORARY_PREFIX) + f"[{re.escape(_NAME_CHARACTERS)}]{{{_NAME_LENGTH}}}")


def create_temporary(directory: str):
    """(fd, path) of a new empty file in directory named as TEMPORARY_UPLOAD, mode 0600.

    What tempfile.mkstemp does, written out: importing tempfile takes shutil,
    random, bz2 and lzma along, 1.4 MiB resident in every server process.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        name = "".join(_NAME_CHARACTERS[byte % len(_NAME_CHARACTERS)] for byte in os.urandom(_NAME_LENGTH))
        path = os.path.join(directory, TEMPORARY_PREFIX + name)
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name", directory)


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
