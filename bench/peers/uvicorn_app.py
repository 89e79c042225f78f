"""uvicorn peer for ``python -m bench``: an ASGI app serving GET /files/{name} from cached bytes.

Run as ``uvicorn bench.peers.uvicorn_app:app --http httptools`` with BENCH_FILES_DIR set.
Every file is read at import, before uvicorn listens, as in PERFORMANCE.md's "uvicorn +
httptools, cached bytes" (a lazy cache would let thousands of first requests all miss).
"""
import os

DIRECTORY = os.environ.get("BENCH_FILES_DIR", ".")
_cache: dict[str, bytes] = {}
_NOT_FOUND = [(b"content-type", b"text/plain"), (b"content-length", b"9")]


def _load(name: str) -> bytes | None:
    if name in _cache:
        return _cache[name]
    if not name or os.path.basename(name) != name or name == "..":
        return None
    try:
        with open(os.path.join(DIRECTORY, name), "rb") as f:
            _cache[name] = f.read()
    except OSError:
        return None
    return _cache[name]


for _entry in os.scandir(DIRECTORY):
    if _entry.is_file():
        _load(_entry.name)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    body = _load(path[len("/files/") :]) if scope["method"] == "GET" and path.startswith("/files/") else None
    if body is None:
        await send({"type": "http.response.start", "status": 404, "headers": _NOT_FOUND})
        await send({"type": "http.response.body", "body": b"Not Found"})
        return
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
