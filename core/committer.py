"""Uploads are committed off the event loop.

Committing an upload waits on the disk -- fsync of the file and of its
directory, so that 201 means the bytes are durable -- and on other processes'
commits to the same directory (files.Upload takes an flock there).  That is
milliseconds to seconds, and no other client of the worker may wait for it.
A Committer runs Upload.commit in helper threads and reports each result
through an eventfd that the event loop watches alongside its sockets; the
loop then answers the connection, if it is still there.
"""
import collections
import os

from .errors import HTTPError, print_exception
from .response import Response, error_response, response_for

# Commits one worker runs at once; fsync releases the GIL, so they overlap.
THREADS = 4


class Committer:
    def __init__(self):
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)   # readable: results wait
        self._results = collections.deque()     # (connection, Response), appended by threads
        self._pool = None                       # started on the first upload

    def submit(self, connection, upload) -> None:
        if self._pool is None:
            # Imported here: a worker that never takes an upload does not carry the module.
            from concurrent.futures import ThreadPoolExecutor
            self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="commit")
        self._pool.submit(self._commit, connection, upload)

    def _commit(self, connection, upload):
        try:
            upload.commit()
            response = Response(201)
        except HTTPError as error:
            response = response_for(error)
        except Exception:               # a bug costs this upload its 201, never the worker
            print_exception()
            upload.abort()
            response = error_response(500, "cannot store the upload", close=False)
        self._results.append((connection, response))
        os.eventfd_write(self.fd, 1)

    def results(self):
        """The (connection, Response) pairs of the commits finished since the last call."""
        try:
            os.eventfd_read(self.fd)
        except BlockingIOError:
            pass
        results = []
        while self._results:
            results.append(self._results.popleft())
        return results

    def close(self) -> None:
        """Wait for the commits under way (their clients may be gone, their data is not)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        os.close(self.fd)
