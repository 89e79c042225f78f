"""Temporary uploads left behind by a worker that died mid-body are removed at start-up.

An upload streams into files.create_temporary(<the target's directory>),
named as tempfile.mkstemp(prefix=".upload-") would name it, and a killed
worker never removes it.  core removes, before its workers start, exactly
those: regular files named ".upload-" and eight random characters, anywhere under --directory (symlinked
directories not followed), not modified for longer than --body-timeout --
another instance serving the same directory may be writing a fresh one.
"""
import os
import signal
import time

import pytest

from core import files
from servers import ServerProcess

pytestmark = pytest.mark.servers("core", "core-py")

HOUR_AGO = time.time() - 3600


def make(path, old):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"part of an upload")
    if old:
        os.utime(path, (HOUR_AGO, HOUR_AGO))
    return path


def test_a_temporary_upload_is_new_private_and_named_for_the_sweep(tmp_path, monkeypatch):
    fd, path = files.create_temporary(str(tmp_path))
    os.close(fd)
    assert os.path.dirname(path) == str(tmp_path)
    assert files.TEMPORARY_UPLOAD.fullmatch(os.path.basename(path))
    assert os.stat(path).st_mode & 0o777 == 0o600 and os.stat(path).st_size == 0
    # A name that exists is never opened again (O_EXCL): the next random name is taken,
    # and when every name tried exists the caller gets an error, not someone's file.
    existing = [b"\0" * 8] * 3 + [b"\1" * 8]
    monkeypatch.setattr(files.os, "urandom", lambda n: existing.pop(0))
    (tmp_path / ".upload-aaaaaaaa").write_bytes(b"someone else's")
    fd, path = files.create_temporary(str(tmp_path))
    os.close(fd)
    assert os.path.basename(path) == ".upload-bbbbbbbb"
    assert (tmp_path / ".upload-aaaaaaaa").read_bytes() == b"someone else's"
    monkeypatch.setattr(files.os, "urandom", lambda n: b"\0" * 8)
    with pytest.raises(FileExistsError):
        files.create_temporary(str(tmp_path))


def test_only_old_temporary_uploads_are_removed_at_start(server_name, tmp_path):
    served, outside = tmp_path / "served", tmp_path / "outside"
    stale = [make(served / ".upload-k2_9xq0a", old=True),
             make(served / "sub" / "deeper" / ".upload-abcdefgh", old=True)]
    kept = [
        make(served / ".upload-fresh123", old=False),        # another instance may be writing it
        make(served / ".upload-notes.txt", old=True),         # not mkstemp's pattern
        make(served / "x.upload-12345678", old=True),
        make(served / ".upload-1234567", old=True),           # seven characters
        make(served / ".upload-123456789", old=True),         # nine
        make(served / ".upload-ABCDEFGH", old=True),          # mkstemp never uses capitals
        make(served / ".upload-abcdefgh.tmp", old=True),
        make(served / "upload-abcdefgh", old=True),
        make(outside / ".upload-outside1", old=True),         # reached only through a link
    ]
    (served / "link").symlink_to(outside, target_is_directory=True)
    target = make(tmp_path / "target", old=True)
    (served / ".upload-symlink1").symlink_to(target)          # a link, not a regular file
    os.utime(served / ".upload-symlink1", (HOUR_AGO, HOUR_AGO), follow_symlinks=False)
    (served / ".upload-dir12345").mkdir()                     # a directory
    os.utime(served / ".upload-dir12345", (HOUR_AGO, HOUR_AGO))

    process = ServerProcess(server_name, served, extra_args=["--body-timeout", "30"])
    try:
        process.wait_until_listening()          # the sweep is done before anything listens
    finally:
        assert process.stop(signal.SIGTERM) == 0
        process.close()
    assert [path for path in stale if os.path.lexists(path)] == []
    assert [path for path in kept if not path.exists()] == []
    assert (served / ".upload-symlink1").is_symlink() and target.exists()
    assert (served / ".upload-dir12345").is_dir()


def test_a_temporary_upload_younger_than_the_body_timeout_is_kept(server_name, tmp_path):
    minute_ago = time.time() - 60
    temp = tmp_path / ".upload-a1b2c3d4"
    temp.write_bytes(b"x")
    os.utime(temp, (minute_ago, minute_ago))
    process = ServerProcess(server_name, tmp_path, extra_args=["--body-timeout", "120"])
    try:
        process.wait_until_listening()
    finally:
        assert process.stop(signal.SIGTERM) == 0
        process.close()
    assert temp.exists()
