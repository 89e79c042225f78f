"""A server process carries only the modules it uses: memory is per process, and core runs two or more.

Each module below was once imported by core and cost resident memory in the supervisor and in every
worker for a job a few lines do (measured, --workers 1, idle: 39.4 MiB summed VmRSS before, 31.4
after; README, "Results"). hashlib loads OpenSSL's libcrypto (3.6 MiB per process) for the build
check at start; tempfile brings shutil, random, bz2 and lzma; email.utils formatted one date.
argparse imported shutil for the terminal's width; traceback (linecache, tokenize) printed a bug's
traceback, which the interpreter prints itself.
"""
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Imported on demand where they are needed (the upload committer's thread pool), or not at all.
NOT_AT_START = {"hashlib", "_hashlib", "email", "email.utils", "calendar", "dataclasses", "inspect",
                "tempfile", "shutil", "bz2", "lzma", "fnmatch", "concurrent.futures", "ssl",
                "traceback", "linecache", "tokenize"}
PATHS = pytest.mark.parametrize("pure", ["0", "1"], ids=["compiled", "pure"])


def environment(pure):
    env = {k: v for k, v in os.environ.items() if k not in ("CORE_PURE_PYTHON", "CORE_REQUIRE_COMPILED")}
    env["CORE_PURE_PYTHON"] = pure
    return env


@PATHS
def test_starting_a_server_imports_none_of_the_modules_it_does_not_need(pure):
    # -S: without site-packages' start-up hooks, which import what they like (this
    # machine's CA hook imports tempfile); core itself needs nothing from site-packages.
    # parse_args too: argparse's help formatter asked shutil for the terminal's width.
    code = ("import sys, core.cli, core.server; core.cli.parse_args(['--directory', '.']); "
            "print(' '.join(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, env=environment(pure),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    modules = set(result.stdout.split())
    assert "core.server" in modules and ("core.loop_c" in modules) == (pure == "0")
    assert sorted(modules & NOT_AT_START) == []


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(child) for child in f.read().split()]


@PATHS
def test_no_server_process_maps_openssl(pure, tmp_path):
    (tmp_path / "a.txt").write_bytes(b"x" * 100)
    process = subprocess.Popen([sys.executable, "-S", "-m", "core", "--port", "0", "--workers", "1",
                                "--directory", str(tmp_path)], cwd=REPO, env=environment(pure),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        port = int(re.search(r":(\d+)$", line.strip()).group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"GET /files/a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := client.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"x" * 100)
        pids = [process.pid] + children(process.pid)
        assert len(pids) == 2               # the supervisor and its worker, after serving
        for pid in pids:
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "libcrypto" not in maps and "libssl" not in maps, pid
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_a_bug_is_printed_with_its_traceback_without_the_traceback_module():
    code = ("import sys\n"
            "from core.errors import print_exception\n"
            "def handler():\n"
            "    raise KeyError('the bug')\n"
            "try:\n"
            "    handler()\n"
            "except Exception:\n"
            "    print_exception()\n"
            "print('traceback' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "False\n"
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):" and lines[-1] == "KeyError: 'the bug'"
    assert "in handler" in result.stderr
