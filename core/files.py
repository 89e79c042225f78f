"""Files under --directory: safe path resolution, opening for sendfile, compressed copies, atomic uploads."""
import errno
import gzip
import os
import stat
import tempfile
from collections import OrderedDict
from urllib.parse import unquote_to_bytes

from .errors import HTTPError


class FileRoot:
    """The directory that /files/{name} maps onto."""

    def __init__(self, directory):
        self.root = os.path.realpath(directory)
        if not os.path.isdir(self.root):
            raise NotADirectoryError(directory)
        self._root_prefix = self.root.rstrip(os.sep) + os.sep

    def resolve(self, raw_name: bytes) -> str:
        """The real path for a percent-encoded name, or HTTPError.

        Decoding happens once, then the resolved real path (symlinks followed)
        must lie inside the root: "..", "%2e%2e", "%2f", absolute names and
        links pointing out all end up outside and get 403 Forbidden, as in
        stage s06; so does a NUL byte, which no file name can hold.
        """
        name = unquote_to_bytes(raw_name)
        if not name:
            raise HTTPError(404, "no file name", close=False)
        if b"\x00" in name:
            raise HTTPError(403, "a file name cannot hold a NUL byte", close=False)
        path = os.path.realpath(os.path.join(self.root, os.fsdecode(name)))
        if not path.startswith(self._root_prefix):
            raise HTTPError(403, "outside the served directory", close=False)
        return path

    def open_for_reading(self, raw_name: bytes):
        """(fd, stat result, real path) of a regular file, or HTTPError 404."""
        path = self.resolve(raw_name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
            raise HTTPError(404, "no such file", close=False) from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise HTTPError(404, "no such file", close=False)
        return fd, info, path

    def open_gzip_sibling(self, path: str):
        """(fd, stat result) of the regular file path + ".gz", or None.

        Its real path is checked like any other, so a name.gz that links out
        of the directory is never served.
        """
        sibling = os.path.realpath(path + ".gz")
        if not sibling.startswith(self._root_prefix):
            return None
        try:
            fd = os.open(sibling, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            return None
        return fd, info

    def stat_existing(self, raw_name: bytes):
        """The stat result of the regular file a name resolves to, None if there is none."""
        try:
            info = os.stat(self.resolve(raw_name))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return info if stat.S_ISREG(info.st_mode) else None

    def upload(self, raw_name: bytes) -> "Upload":
        path = self.resolve(raw_name)
        if not os.path.isdir(os.path.dirname(path)):
            raise HTTPError(404, "no such directory", close=False)
        if os.path.isdir(path):
            raise HTTPError(409, "a directory has that name", close=False)
        return Upload(path)


class GzipCache:
    """gzip copies of small files, each compressed once and kept while it is used.

    Keyed by real path and checked against (size, mtime_ns), so a changed
    file is compressed afresh and its old copy dropped at once.  The total
    (compressed bytes plus a fixed overhead per entry) stays within
    max_total_bytes, least recently used out first.  A file whose gzip form
    would not be smaller is remembered as such and sent as it is.
    """

    ENTRY_OVERHEAD = 256
    LEVEL = 6       # zlib's default: most of level 9's gain at a fraction of its time

    def __init__(self, max_file_bytes: int, max_total_bytes: int):
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self._entries = OrderedDict()       # path -> (size, mtime_ns, gzip bytes or None)
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
        data = _read_whole(fd, info.st_size)
        after = os.fstat(fd)
        if data is None or (after.st_size, after.st_mtime_ns) != (info.st_size, info.st_mtime_ns):
            return None             # written to while we read: send it as it is, cache nothing
        compressed = gzip.compress(data, compresslevel=self.LEVEL, mtime=0)
        if len(compressed) >= len(data):
            compressed = None
        self._entries[path] = (info.st_size, info.st_mtime_ns, compressed)
        self._total += self._cost(compressed)
        while self._total > self.max_total_bytes:
            self._drop(next(iter(self._entries)))
        return compressed

    def _cost(self, compressed) -> int:
        return self.ENTRY_OVERHEAD + (len(compressed) if compressed else 0)

    def _drop(self, path):
        self._total -= self._cost(self._entries.pop(path)[2])


def _read_whole(fd: int, size: int):
    parts, offset = [], 0
    while offset < size:
        data = os.pread(fd, size - offset, offset)
        if not data:
            return None
        parts.append(data)
        offset += len(data)
    return b"".join(parts)


class Upload:
    """A body streamed to a temporary file beside its target, renamed into place when complete.

    Readers of the final name see the old file or the new one, never a part:
    os.replace is atomic within a directory.  abort() leaves nothing behind.
    """

    def __init__(self, path: str):
        self.path = path
        fd, self.temp_path = tempfile.mkstemp(prefix=".upload-", dir=os.path.dirname(path))
        self._file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as error:
            self.abort()
            raise _storage_error(error, "write") from None

    def finish(self) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.temp_path, self.path)
        except OSError as error:
            self.abort()
            raise _storage_error(error, "store") from None

    def abort(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass


def _storage_error(error: OSError, verb: str) -> HTTPError:
    """507 Insufficient Storage (RFC 4918 §11.5) for a full disk or quota, 500 otherwise."""
    status = 507 if error.errno in (errno.ENOSPC, errno.EDQUOT) else 500
    return HTTPError(status, f"cannot {verb} the upload: {error.strerror}")
