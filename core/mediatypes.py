"""What a file's name says about its bytes: its media type, and whether they are compressed already.

One table, by extension, that the project owns (never /etc/mime.types, which
differs from machine to machine): every Content-Type of a file response and
every decision about compressing a file read it.  gzip of a JPEG or a .gz
costs CPU and saves nothing, and a name.gz asked for by its own name is a
file like any other, sent as it is, never compressed again nor labelled with
a Content-Encoding.

Extensions compare case-insensitively, as nginx compares them
(ngx_http_set_content_type lowercases an extension before its types
lookup): PHOTO.JPG is a JPEG.  A name with no extension, or one not in the
table, is application/octet-stream: the course's file stage requires it for
its names, which have none.

Charset: `; charset=utf-8` on text/* and JavaScript, whose bytes a browser
would otherwise decode as windows-1252 (HTML's and CSS's own declarations
aside).  Not on JSON (RFC 8259 §11 defines no charset parameter; JSON is
UTF-8), SVG or XML (an XML document declares its encoding itself, and RFC
7303 §3 lets a charset parameter override that declaration, so none is
safer), nor on binary formats.
"""
import os

UTF8 = "; charset=utf-8"
OCTETS = "application/octet-stream"

# extension: (media type, compressed already)
MEDIA_TYPES = {
    # Text, compressible.
    ".html": ("text/html" + UTF8, False),
    ".htm": ("text/html" + UTF8, False),
    ".css": ("text/css" + UTF8, False),
    # RFC 9239 §6: text/javascript for scripts and modules alike.
    ".js": ("text/javascript" + UTF8, False),
    ".mjs": ("text/javascript" + UTF8, False),
    ".json": ("application/json", False),
    ".map": ("application/json", False),        # a source map is JSON
    ".txt": ("text/plain" + UTF8, False),
    ".csv": ("text/csv" + UTF8, False),
    ".svg": ("image/svg+xml", False),
    ".xml": ("application/xml", False),         # RFC 7303 §4.1 prefers it to text/xml
    ".wasm": ("application/wasm", False),       # required by WebAssembly.instantiateStreaming
    ".ico": ("image/x-icon", False),            # BMP/PNG inside, often uncompressed; nginx's name for it
    ".wav": ("audio/wav", False),               # PCM: uncompressed
    # Compressed already: images, audio and video, fonts, documents.
    ".png": ("image/png", True),
    ".jpg": ("image/jpeg", True),
    ".jpeg": ("image/jpeg", True),
    ".gif": ("image/gif", True),
    ".webp": ("image/webp", True),
    ".avif": ("image/avif", True),
    ".mp4": ("video/mp4", True),
    ".webm": ("video/webm", True),
    ".mp3": ("audio/mpeg", True),
    ".ogg": ("audio/ogg", True),
    ".woff": ("font/woff", True),
    ".woff2": ("font/woff2", True),
    ".pdf": ("application/pdf", True),
    ".oga": ("audio/ogg", True),
    ".opus": ("audio/ogg", True),
    ".m4a": ("audio/mp4", True),
    ".aac": ("audio/aac", True),
    ".flac": ("audio/flac", True),
    ".m4v": ("video/mp4", True),
    ".ogv": ("video/ogg", True),
    # Compressed already, served as octets (a download): archives and
    # compressed streams, and formats browsers do not agree on.
    **{extension: (OCTETS, True) for extension in (
        ".gz", ".tgz", ".br", ".zst", ".xz", ".txz", ".lz", ".lzma", ".lz4", ".bz2", ".tbz2", ".z",
        ".zip", ".7z", ".rar", ".jar", ".apk", ".deb", ".rpm", ".whl", ".cab",
        ".heic", ".heif", ".jxl", ".mkv", ".mov", ".avi",
    )},
}

ALREADY_COMPRESSED = frozenset(extension for extension, (_, compressed) in MEDIA_TYPES.items() if compressed)


def extension(path) -> str:
    """The lowercased extension of a path (str or bytes), "" if it has none."""
    return os.fsdecode(os.path.splitext(path)[1]).lower()


def already_compressed(path) -> bool:
    """Whether the file's extension names a compressed format (compared case-insensitively)."""
    return extension(path) in ALREADY_COMPRESSED


def media_type(path) -> str:
    """The Content-Type of the file a path (str or bytes) names."""
    entry = MEDIA_TYPES.get(extension(path))
    return OCTETS if entry is None else entry[0]
