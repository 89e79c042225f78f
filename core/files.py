"""Files under --directory: safe path resolution, opening for sendfile, atomic uploads."""
import os
import stat
import tempfile
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

    def upload(self, raw_name: bytes) -> "Upload":
        path = self.resolve(raw_name)
        if not os.path.isdir(os.path.dirname(path)):
            raise HTTPError(404, "no such directory", close=False)
        if os.path.isdir(path):
            raise HTTPError(409, "a directory has that name", close=False)
        return Upload(path)


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
            raise HTTPError(507 if error.errno == 28 else 500, f"cannot write the upload: {error.strerror}") from None

    def finish(self) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.temp_path, self.path)
        except OSError as error:
            self.abort()
            raise HTTPError(507 if error.errno == 28 else 500, f"cannot store the upload: {error.strerror}") from None

    def abort(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass
