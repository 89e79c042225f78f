"""The served files: one temporary directory of random bytes that every server reads.

Random bytes so no server (or a gzip stage) gets an easy ride from compressible content.
"""
from __future__ import annotations

import os
import shutil
import tempfile

CHUNK = 1024 * 1024


def make_file_dir(sizes: dict[str, int]) -> str:
    """Create a temp directory holding ``name -> size`` files of random bytes; return its path."""
    directory = tempfile.mkdtemp(prefix="bench-files-")
    # mkdtemp makes it 0700; nginx started as root serves from a worker running as nobody.
    os.chmod(directory, 0o755)
    for name, size in sizes.items():
        with open(os.path.join(directory, name), "wb") as f:
            left = size
            while left:
                n = min(left, CHUNK)
                f.write(os.urandom(n))
                left -= n
        os.chmod(os.path.join(directory, name), 0o644)
    return directory


def remove_file_dir(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)
