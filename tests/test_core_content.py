"""What core says about a file's bytes: Content-Type, nosniff, br and gzip siblings, Cache-Control.

core/mediatypes.py is the one table of types; encoding.preferred_codings
picks name.br or name.gz by Accept-Encoding (RFC 9110 §12.5.3, br on a tie);
--cache-control goes on every file response that would carry it, 304s
included (§15.4.5).  Run against both event loops: the compiled loop's
cached heads must say the same as app.handle.
"""
import gzip
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from brotli_stored import compress_stored
from core import encoding, mediatypes
from core.conditional import validators
from rawhttp import Client, build_request, read_reply
from servers import RunningServer, ServerProcess
from test_s08_gzip import ACCEPTING_GZIP, NOT_ACCEPTING_GZIP

pytestmark = pytest.mark.servers("core", "core-py")

TEXT = b"body { color: rebeccapurple }\n" * 100
TYPES = {
    "index.html": "text/html; charset=utf-8",
    "site.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "module.mjs": "text/javascript; charset=utf-8",
    "data.json": "application/json",
    "notes.txt": "text/plain; charset=utf-8",
    "icon.svg": "image/svg+xml",
    "feed.xml": "application/xml",
    "table.csv": "text/csv; charset=utf-8",
    "app.js.map": "application/json",
    "pixel.png": "image/png",
    "photo.jpg": "image/jpeg",
    "photo.jpeg": "image/jpeg",
    "anim.gif": "image/gif",
    "pic.webp": "image/webp",
    "pic.avif": "image/avif",
    "favicon.ico": "image/x-icon",
    "code.wasm": "application/wasm",
    "paper.pdf": "application/pdf",
    "clip.mp4": "video/mp4",
    "clip.webm": "video/webm",
    "song.mp3": "audio/mpeg",
    "song.ogg": "audio/ogg",
    "sound.wav": "audio/wav",
    "font.woff": "font/woff",
    "font.woff2": "font/woff2",
    # Case does not matter, as nginx lowercases an extension before its lookup.
    "SHOUT.HTML": "text/html; charset=utf-8",
    "Photo.JPG": "image/jpeg",
    # No extension, an unknown one, a dot file: octets (the course's file stage).
    "README": "application/octet-stream",
    "archive.unknownext": "application/octet-stream",
    ".hidden": "application/octet-stream",
    "bundle.tar.gz": "application/octet-stream",
}


def ask(server, target, headers=(), method="GET"):
    with Client(server) as client:
        client.send(build_request(method, target, headers))
        return read_reply(client, method)


@pytest.fixture(scope="module")
def site(server):
    for name in TYPES:
        (server.directory / name).write_bytes(TEXT)
    # Siblings: both codings beside app.js, gzip only beside site.css, br only beside index.html.
    for name, suffixes in {"app.js": (".gz", ".br"), "site.css": (".gz",), "index.html": (".br",)}.items():
        for suffix in suffixes:
            data = gzip.compress(TEXT, mtime=0) if suffix == ".gz" else compress_stored(TEXT)
            (server.directory / (name + suffix)).write_bytes(data)
    (server.directory / "subdir.d").mkdir(exist_ok=True)
    (server.directory / "subdir.d" / "inside").write_bytes(TEXT)
    return server


# == Content-Type by extension ==================================================================

@pytest.mark.parametrize("name", sorted(TYPES))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("query", ["", "?general"])       # the file cache, then app.handle
def test_content_type_by_extension(site, name, method, query):
    for _ in range(2):      # the second answer from what the cache remembered
        response = ask(site, f"/files/{name}{query}", method=method)
        assert response.status == 200
        assert response.headers["content-type"] == TYPES[name]
        assert response.headers["x-content-type-options"] == "nosniff"


def test_a_dot_in_a_directory_name_is_no_extension(site):
    assert ask(site, "/files/subdir.d/inside").headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize("headers", [[("Range", "bytes=0-9")], [("Accept-Encoding", "gzip")]])
def test_a_part_or_a_compressed_form_keeps_the_type(site, headers):
    response = ask(site, "/files/notes.txt", headers)
    assert response.status in (200, 206)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_mediatypes_table():
    assert mediatypes.media_type("/srv/A.Css") == "text/css; charset=utf-8"
    assert mediatypes.media_type(b"dir/x.MJS") == "text/javascript; charset=utf-8"
    assert mediatypes.media_type("noextension") == "application/octet-stream"
    assert mediatypes.media_type("trailing.") == "application/octet-stream"
    # Every text/* type says its charset; JSON, SVG and XML never do.
    for extension, (media_type, _) in mediatypes.MEDIA_TYPES.items():
        if media_type.startswith("text/"):
            assert media_type.endswith("; charset=utf-8"), extension
        elif "charset" in media_type:
            pytest.fail(f"{extension}: {media_type}")
    # The same table says what is compressed already.
    assert mediatypes.already_compressed("x.PNG") and not mediatypes.already_compressed("x.html")


# == br and gzip siblings ========================================================================

@pytest.mark.parametrize("accept_encoding, name, coding", [
    ("gzip, deflate, br, zstd", "app.js", "br"),        # a tie: br
    ("br, gzip", "app.js", "br"),
    ("gzip, br", "app.js", "br"),
    ("br;q=0.5, gzip", "app.js", "gzip"),              # weights decide
    ("gzip;q=0.9, br;q=0.8", "app.js", "gzip"),
    ("br;q=0, gzip", "app.js", "gzip"),
    ("br", "app.js", "br"),
    ("*", "app.js", "br"),
    ("*;q=0.5, gzip", "app.js", "gzip"),                # gzip named: 1 beats br's 0.5 from *
    ("gzip;q=0, br;q=0", "app.js", None),
    ("identity", "app.js", None),
    ("br", "site.css", None),                          # no site.css.br; no br made in memory
    ("gzip, br", "site.css", "gzip"),
    ("gzip, br", "index.html", "br"),
    ("gzip;q=0.5, br;q=0.1", "index.html", "gzip"),   # no index.html.gz: a gzip copy in memory
    ("br", "notes.txt", None),
])
@pytest.mark.parametrize("query", ["", "?general"])
def test_sibling_picked_by_accept_encoding(site, accept_encoding, name, coding, query):
    for _ in range(2):
        response = ask(site, f"/files/{name}{query}", [("Accept-Encoding", accept_encoding)])
        assert response.status == 200
        assert response.headers.get("content-encoding") == coding
        assert response.headers["vary"] == "Accept-Encoding"
        assert response.headers["content-type"] == TYPES[name]     # the original's type
        if coding == "br":
            assert response.body == compress_stored(TEXT)
            assert "accept-ranges" not in response.headers
        elif coding == "gzip":
            assert gzip.decompress(response.body) == TEXT
        else:
            assert response.body == TEXT


def test_br_sibling_has_its_own_validators(site):
    sibling = site.directory / "app.js.br"
    response = ask(site, "/files/app.js", [("Accept-Encoding", "br")])
    tag, modified = validators(os.stat(sibling))
    assert response.headers["etag"] == tag.decode()
    assert response.headers["etag"] != ask(site, "/files/app.js").headers["etag"]
    again = ask(site, "/files/app.js", [("Accept-Encoding", "br"), ("If-None-Match", tag.decode())])
    assert again.status == 304 and again.headers["vary"] == "Accept-Encoding"
    # The br tag does not match the gzip representation.
    other = ask(site, "/files/app.js", [("Accept-Encoding", "gzip"), ("If-None-Match", tag.decode())])
    assert other.status == 200 and other.headers["content-encoding"] == "gzip"


def test_a_range_gets_the_file_itself_not_its_br_form(site):
    response = ask(site, "/files/app.js", [("Accept-Encoding", "br"), ("Range", "bytes=0-9")])
    assert response.status == 206 and response.body == TEXT[:10]
    assert "content-encoding" not in response.headers


def test_a_br_file_asked_for_by_name_goes_out_as_it_is(site):
    response = ask(site, "/files/app.js.br", [("Accept-Encoding", "br, gzip")])
    assert response.body == compress_stored(TEXT) and "content-encoding" not in response.headers
    assert response.headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize("accept_encoding", ACCEPTING_GZIP + NOT_ACCEPTING_GZIP)
def test_preferred_codings_agrees_with_accepts_gzip(accept_encoding):
    """The stage's list: for gzip alone, preferred_codings reads it as accepts_gzip does."""
    value = None if accept_encoding is None else accept_encoding.encode()
    assert (encoding.preferred_codings(value, (b"gzip",)) == [b"gzip"]) is encoding.accepts_gzip(value)
    ranked = encoding.preferred_codings(value, (b"br", b"gzip"))
    assert (b"gzip" in ranked) is encoding.accepts_gzip(value)


def test_preferred_codings_order():
    offered = (b"br", b"gzip")
    assert encoding.preferred_codings(b"gzip, br", offered) == [b"br", b"gzip"]
    assert encoding.preferred_codings(b"BR;Q=0.2, X-GZIP;q=0.3", offered) == [b"gzip", b"br"]
    assert encoding.preferred_codings(b"br;q=0, br, gzip;q=0.001", offered) == [b"gzip"]   # first weight holds
    assert encoding.preferred_codings(b"br;q=1.5, gzip", offered) == [b"gzip"]             # not a qvalue: 0
    assert encoding.preferred_codings(b"", offered) == [] and encoding.preferred_codings(None, offered) == []


# == --cache-control =============================================================================

@pytest.fixture
def cached_site(server_name, tmp_path):
    (tmp_path / "page.html").write_bytes(TEXT)
    (tmp_path / "page.html.br").write_bytes(compress_stored(TEXT))
    process = ServerProcess(server_name, tmp_path, extra_args=["--cache-control", "public, max-age=60"])
    try:
        yield RunningServer("127.0.0.1", process.wait_until_listening(), tmp_path, server_name)
    finally:
        assert process.stop(signal.SIGTERM) == 0
        process.close()


@pytest.mark.parametrize("query", ["", "?general"])
def test_cache_control_on_200_206_and_304(cached_site, query):
    target = f"/files/page.html{query}"
    for _ in range(2):
        for headers, status in [((), 200), ([("Accept-Encoding", "br")], 200),
                                ([("Accept-Encoding", "gzip")], 200), ([("Range", "bytes=1-5")], 206)]:
            response = ask(cached_site, target, headers)
            assert response.status == status
            assert response.headers["cache-control"] == "public, max-age=60"
            revalidated = ask(cached_site, target, list(headers) + [("If-None-Match", response.headers["etag"])])
            assert revalidated.status == 304
            assert revalidated.headers["cache-control"] == "public, max-age=60"
    assert "cache-control" not in ask(cached_site, "/files/missing").headers
    assert "cache-control" not in ask(cached_site, "/echo/x").headers


def test_no_cache_control_by_default(site):
    response = ask(site, "/files/notes.txt")
    assert "cache-control" not in response.headers
    assert "cache-control" not in ask(site, "/files/notes.txt", [("If-None-Match", response.headers["etag"])]).headers


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "", " ", "caf\u00e9"])
def test_cache_control_must_be_a_field_value(tmp_path, value):
    result = subprocess.run([sys.executable, "-m", "core", "--directory", str(tmp_path), "--cache-control", value],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 2 and "--cache-control" in result.stderr and "Traceback" not in result.stderr


# == the console command =========================================================================

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_declares_the_console_command():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"httpcourse-serve": "core.cli:main"}


def test_console_command_runs(capsys):
    """The entry point as installed when its metadata has it, else the function it names."""
    from importlib import metadata

    from core.cli import main
    installed = [point for point in metadata.entry_points(group="console_scripts") if point.name == "httpcourse-serve"]
    entry = installed[0].load() if installed else main
    assert entry is main
    with pytest.raises(SystemExit) as exit_info:
        entry(["--help"])
    assert exit_info.value.code == 0
    assert "--cache-control" in capsys.readouterr().out
