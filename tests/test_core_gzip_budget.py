"""gzip cannot be used to make a worker compress without end (GzipCache's budget and admission rule).

Compression runs in the event loop.  Files whose compressed copies together
exceed --gzip-cache-bytes, asked for in turn with Accept-Encoding: gzip,
used to be compressed afresh on every request (each copy evicted before its
next use), and any number of distinct files could be compressed as fast as
requests came.  Now a copy dropped for room is not made again for a while
(the file is sent as it is), and a worker compresses at most
--gzip-bytes-per-second.  Both are checked by what the responses are, not
by timing: a response is gzip only if it is a hit or the rules allowed a
compression.
"""
import base64
import gzip
import os
import random
import signal

import pytest

from core.files import GzipCache
from core.mediatypes import already_compressed
from rawhttp import Client, build_request
from servers import RunningServer, ServerProcess

pytestmark = pytest.mark.servers("core", "core-py")

SIZE = 16384


def text(seed):
    """SIZE bytes of text that gzip shrinks to under a third."""
    rng = random.Random(seed)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9))) for _ in range(60)]
    lines = b"".join(b"%06d %s %s %s\n" % (n, rng.choice(words), rng.choice(words), rng.choice(words))
                     for n in range(SIZE // 16))
    return lines[:SIZE]


def cost(data):
    """What a file's copy takes in the cache: as GzipCache counts it."""
    return len(gzip.compress(data, compresslevel=GzipCache.LEVEL, mtime=0)) + GzipCache.ENTRY_OVERHEAD


def etag_of(path):
    info = os.stat(path)
    return '"%x-%x"' % (info.st_mtime_ns, info.st_size)


class Core:
    def __init__(self, name, directory, *extra_args):
        self.process = ServerProcess(name, directory, extra_args=list(extra_args))
        self.server = RunningServer("127.0.0.1", self.process.wait_until_listening(), directory, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        code = self.process.stop(signal.SIGKILL if exc_info[0] else signal.SIGTERM)
        stderr = self.process.stderr()
        self.process.close()
        if exc_info[0] is None:
            assert code == 0 and "Traceback" not in stderr, stderr


def gzip_get(client, target):
    client.send(build_request("GET", target, [("Accept-Encoding", "gzip")]))
    return client.read_response()


def check(response, directory, name):
    """The response is the file, gzip or identity, with the fields file_fields gives each; True if gzip."""
    data = (directory / name).read_bytes()
    assert response.status == 200 and response.headers["vary"] == "Accept-Encoding"
    if response.headers.get("content-encoding") == "gzip":
        assert gzip.decompress(response.body) == data and "accept-ranges" not in response.headers
        assert response.headers["etag"].startswith('W/"')
        return True
    assert "content-encoding" not in response.headers and response.body == data
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == etag_of(directory / name)
    return False


def test_files_that_cannot_all_stay_cached_are_not_compressed_on_every_request(server_name, tmp_path):
    names = [f"page{i}.txt" for i in range(7)]
    costs = {}
    for seed, name in enumerate(names):
        data = text(seed)
        (tmp_path / name).write_bytes(data)
        costs[name] = cost(data)
    # Room for any four copies, never for five: seven asked for in turn thrash an LRU cache.
    cache_bytes = sum(sorted(costs.values())[-4:])
    assert sum(sorted(costs.values())[:5]) > cache_bytes and cache_bytes >= SIZE + GzipCache.ENTRY_OVERHEAD
    with Core(server_name, tmp_path, "--gzip-cache-bytes", str(cache_bytes)) as core, Client(core.server) as client:
        rounds = [[check(gzip_get(client, f"/files/{name}"), tmp_path, name) for name in names]
                  for _ in range(10)]
        echo = gzip_get(client, "/echo/still-compressed")
    assert rounds[0] == [True] * len(names)          # each compressed once
    steady = rounds[1]
    gzipped = [name for name, zipped in zip(names, steady) if zipped]
    # From then on the copies that fit are hits, and the others are sent as they are
    # (before, every request of every round was compressed afresh).
    assert False in steady and sum(costs[name] for name in gzipped) <= cache_bytes
    assert all(answers == steady for answers in rounds[2:]), rounds
    assert echo.headers["content-encoding"] == "gzip" and gzip.decompress(echo.body) == b"still-compressed"


def open_get(cache, path):
    """cache.get for the file at path: its gzip form, or None."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return cache.get(str(path), fd, os.fstat(fd))
    finally:
        os.close(fd)


def test_an_evicted_file_is_compressed_again_after_a_while(tmp_path):
    now = [0.0]
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(base64.b64encode(os.urandom(SIZE))[:SIZE])     # gzip saves only a quarter
    b.write_bytes(base64.b64encode(os.urandom(SIZE))[:SIZE])
    cache = GzipCache(max_file_bytes=SIZE, max_total_bytes=SIZE + GzipCache.ENTRY_OVERHEAD,
                      bytes_per_second=1 << 30, clock=lambda: now[0])       # room for one copy
    assert open_get(cache, a) and open_get(cache, b)        # b's copy pushed a's out
    assert open_get(cache, a) is None and open_get(cache, b)
    now[0] += GzipCache.READMIT_SECONDS - 1
    assert open_get(cache, a) is None
    now[0] += 1
    assert open_get(cache, a) and open_get(cache, b) is None


def test_a_worker_compresses_no_more_than_its_budget(server_name, tmp_path):
    names = [f"doc{i}.txt" for i in range(10)]
    for seed, name in enumerate(names):
        (tmp_path / name).write_bytes(text(100 + seed))
    # The bucket holds max(rate, max file) = 64 KiB: four files of 16 KiB; it
    # then refills at 1 KiB/s, 16 s per file, far longer than this test.
    with Core(server_name, tmp_path, "--gzip-max-file-bytes", str(4 * SIZE),
              "--gzip-bytes-per-second", "1024") as core, Client(core.server) as client:
        first = [check(gzip_get(client, f"/files/{name}"), tmp_path, name) for name in names]
        again = [check(gzip_get(client, f"/files/{name}"), tmp_path, name) for name in names]
        echo = gzip_get(client, "/echo/text")
    assert first == [True] * 4 + [False] * 6
    assert again == first                   # the four are cached: hits cost no budget
    assert echo.headers["content-encoding"] == "gzip" and gzip.decompress(echo.body) == b"text"


def test_the_budget_refills_with_time(tmp_path):
    now = [0.0]
    cache = GzipCache(max_file_bytes=1000, max_total_bytes=1 << 30, bytes_per_second=1000,
                      clock=lambda: now[0])       # holds and refills 1000 bytes a second
    files = [tmp_path / f"f{i}" for i in range(4)]
    for path in files:
        path.write_bytes(b"abc" * 333)           # 999 bytes each

    def compressed(i):
        return open_get(cache, files[i]) is not None

    assert compressed(0) and not compressed(1)
    now[0] += 0.5
    assert not compressed(1)
    now[0] += 0.5
    assert compressed(1) and compressed(0)          # a hit costs nothing
    now[0] += 100                                   # the bucket never holds more than its burst
    assert compressed(2) and not compressed(3)


@pytest.mark.parametrize("extension", ["gz", "br", "zst", "xz", "bz2", "zip", "7z", "png", "jpg", "gif",
                                       "webp", "avif", "mp4", "webm", "woff2", "JPG", "tar.gz"])
def test_compressed_formats_are_never_compressed_again(extension):
    assert already_compressed(f"/srv/name.{extension}")
