"""The file cache answers exactly as app.handle does, for the requests browsers send.

core/filecache.py remembers a file's answers keyed on the fields they depend
on (Accept-Encoding, If-None-Match, If-Modified-Since).  A query string keeps
a request off that path (app.handle answers it, ignoring the query), so
every request here is sent twice on one connection -- `/files/NAME` (the
cache) and `/files/NAME?general` (app.handle) -- and the two answers must be
the same bytes apart from Date.  Each is sent again so that the second
answer comes from what the cache remembered.  Runs against both loops.
"""
import gzip
import os
import random

import pytest

from brotli_stored import compress_stored
from rawhttp import Client, build_request, read_reply

pytestmark = pytest.mark.servers("core", "core-py")

TEXT = b"<p>the quick brown fox jumps over the lazy dog</p>\n" * 200
FILES = {
    "random.bin": random.Random(7).randbytes(10 * 1024),   # gzip cannot shrink it
    "page.txt": TEXT,                                        # compressed in memory
    "site.css": TEXT.upper(),                                # a site.css.gz lies beside it
    "photo.png": TEXT,                                       # already compressed: never gzipped
    "empty.txt": b"",
    "index.html": TEXT,                                      # a site.html.br lies beside it
    "app.js": TEXT.lower(),                                  # app.js.br and app.js.gz beside it
    "PAGE.HTML": TEXT,                                       # its type whatever the case
    "module.mjs": b"export const answer = 42;\n",
}
BROWSER = [
    ("Accept", "text/css,*/*;q=0.1"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Accept-Language", "en-GB,en;q=0.9"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
    ("Sec-Fetch-Dest", "style"), ("Sec-Fetch-Mode", "no-cors"), ("Sec-Fetch-Site", "same-origin"),
    ("Sec-CH-UA", '"Chromium";v="131", "Not_A Brand";v="24"'), ("Sec-CH-UA-Mobile", "?0"),
    ("Sec-CH-UA-Platform", '"Linux"'), ("Cache-Control", "max-age=0"), ("Connection", "keep-alive"),
]


@pytest.fixture(scope="module")
def files(server):
    for name, data in FILES.items():
        (server.directory / name).write_bytes(data)
    (server.directory / "site.css.gz").write_bytes(gzip.compress(FILES["site.css"], mtime=0))
    (server.directory / "index.html.br").write_bytes(compress_stored(FILES["index.html"]))
    (server.directory / "app.js.br").write_bytes(compress_stored(FILES["app.js"]))
    (server.directory / "app.js.gz").write_bytes(gzip.compress(FILES["app.js"], mtime=0))
    return server


def exchange(server, request, method):
    with Client(server) as client:
        client.send(request)
        return read_reply(client, method)


def same_answer(server, method, name, headers, version="1.1"):
    """Ask through the cache and through app.handle, twice each; return the cached answer."""
    answers = []
    for target in (f"/files/{name}", f"/files/{name}?general") * 2:
        request = build_request(method, target, headers)
        if version != "1.1":
            request = request.replace(b" HTTP/1.1\r\n", f" HTTP/{version}\r\n".encode(), 1)
        if version == "1.1" and ("Connection", "close") not in headers:
            answers.append(exchange_keep_alive(server, request, method))
        else:
            answers.append(exchange(server, request, method))
    for answer in answers:
        answer.headers.pop("date")
    cached = answers[0]
    for other in answers[1:]:
        assert (other.status_line, other.headers, other.header_names, other.body) == \
               (cached.status_line, cached.headers, cached.header_names, cached.body)
    return cached


def exchange_keep_alive(server, request, method):
    """The answer to request on a connection that stays open (a second request proves it)."""
    with Client(server) as client:
        client.send(request + build_request("GET", "/"))
        answer = read_reply(client, method)
        assert read_reply(client).status == 200
        return answer


def validators(server, name, accept_encoding):
    answer = exchange(server, build_request("GET", f"/files/{name}?general",
                                            [("Accept-Encoding", accept_encoding)]), "GET")
    return answer.headers["etag"], answer.headers["last-modified"]


ACCEPT_ENCODINGS = [None, "gzip", "gzip, deflate, br, zstd", "identity", "gzip;q=0", "*", "br",
                    "br;q=0.5, gzip", "br;q=0"]


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("accept_encoding", ACCEPT_ENCODINGS)
def test_accept_encoding(files, name, method, accept_encoding):
    headers = [] if accept_encoding is None else [("Accept-Encoding", accept_encoding)]
    same_answer(files, method, name, headers)


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("accept_encoding", ["gzip, deflate, br, zstd", "identity"])
def test_if_none_match_of_either_representation(files, name, accept_encoding):
    identity_tag, modified = validators(files, name, "identity")
    gzip_tag, _ = validators(files, name, "gzip")
    br_tag, _ = validators(files, name, "br")
    for tag in {identity_tag, gzip_tag, br_tag}:
        headers = [("Accept-Encoding", accept_encoding), ("If-None-Match", tag)]
        answer = same_answer(files, "GET", name, headers)
        current = validators(files, name, accept_encoding)[0]
        assert answer.status == (304 if tag.removeprefix("W/") == current.removeprefix("W/") else 200)
    same_answer(files, "GET", name, [("Accept-Encoding", accept_encoding), ("If-None-Match", '"nope"')])
    same_answer(files, "GET", name, [("If-Modified-Since", modified)])
    same_answer(files, "HEAD", name, [("If-None-Match", '"nope"'), ("If-Modified-Since", modified)])


@pytest.mark.parametrize("name", ["page.txt", "site.css", "random.bin", "index.html", "app.js"])
def test_a_browser_request_and_its_revalidation(files, name):
    first = same_answer(files, "GET", name, BROWSER)
    assert first.status == 200
    again = same_answer(files, "GET", name, BROWSER + [("If-None-Match", first.headers["etag"]),
                                                        ("If-Modified-Since", first.headers["last-modified"])])
    assert again.status == 304 and again.body == b""


@pytest.mark.parametrize("headers", [
    [("Connection", "close")],
    [("Accept-Encoding", "gzip"), ("Connection", "close")],
])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_connection_about_to_close(files, headers, method):
    for name in sorted(FILES):
        answer = same_answer(files, method, name, headers)
        assert answer.headers["connection"] == "close"


@pytest.mark.parametrize("version", ["1.0"])
def test_http10(files, version):
    for name in sorted(FILES):
        same_answer(files, "GET", name, [("Accept-Encoding", "gzip")], version=version)


@pytest.mark.parametrize("headers", [
    [("Accept-Encoding", "gzip"), ("Accept-Encoding", "br")],         # a list field given twice
    [("Range", "bytes=0-9")],
    [("Accept-Encoding", "gzip"), ("If-Match", "*")],
    [("If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")],
    [("Range", "bytes=5-"), ("If-Range", '"x"')],
])
def test_fields_left_to_app_handle(files, headers):
    for name in sorted(FILES):
        same_answer(files, "GET", name, headers)


def test_a_changed_file_and_a_new_sibling_are_seen(files):
    """The remembered answers go with the entry: a new file or name.gz is answered anew."""
    headers = [("Accept-Encoding", "gzip")]
    path = files.directory / "change.txt"
    path.write_bytes(TEXT)
    before = same_answer(files, "GET", "change.txt", headers)
    assert gzip.decompress(before.body) == TEXT
    path.write_bytes(TEXT + b"more\n")
    os.utime(path, ns=(1, 1))
    after = same_answer(files, "GET", "change.txt", headers)
    assert gzip.decompress(after.body) == TEXT + b"more\n" and after.headers["etag"] != before.headers["etag"]
