"""What a file's name says about its bytes: the formats that are already compressed.

One table, by extension, that every decision about compressing a file reads:
gzip of a JPEG or a .gz costs CPU and saves nothing, and a name.gz asked for
by its own name is a file like any other, sent as it is, never compressed
again nor labelled with a Content-Encoding.
"""
import os

# Formats whose bytes are compressed already: archives and compressed
# streams, images, audio and video, and web fonts.
ALREADY_COMPRESSED = frozenset((
    ".gz", ".tgz", ".br", ".zst", ".xz", ".txz", ".lz", ".lzma", ".lz4", ".bz2", ".tbz2", ".z",
    ".zip", ".7z", ".rar", ".jar", ".apk", ".deb", ".rpm", ".whl", ".cab",
    ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".heic", ".heif", ".jxl",
    ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".flac",
    ".mp4", ".m4v", ".webm", ".mkv", ".mov", ".avi", ".ogv",
    ".woff", ".woff2", ".pdf",
))


def already_compressed(path: str) -> bool:
    """Whether the file's extension names a compressed format (compared case-insensitively)."""
    return os.path.splitext(path)[1].lower() in ALREADY_COMPRESSED
