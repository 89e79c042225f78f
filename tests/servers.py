"""The servers the suite runs against, oldest stage first, and how to start them.

Tests are cumulative, like the CodeCrafters tester: the tests of a stage run
against that stage and every server after it in SERVERS (`servers_from`).
"""
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import namedtuple

PORT, DIRECTORY = "{port}", "{directory}"  # placeholders, filled in by `command`


def stage(name):
    return name, [sys.executable, "-m", f"stages.{name}", "--port", PORT, "--directory", DIRECTORY]


SERVERS = [
    stage("s01_bind"),
    stage("s02_status"),
    stage("s03_paths"),
    stage("s04_headers"),
    stage("s05_concurrency"),
    stage("s06_files"),
    stage("s07_post"),
    stage("s08_gzip"),
    stage("s09_keepalive"),
    stage("s10_eventloop"),
    # The production server must pass every stage's tests, with both event loops:
    # `core` is the compiled build, `core-py` the pure-Python reference.
    ("core", [sys.executable, "-m", "core", "--port", PORT, "--directory", DIRECTORY, "--workers", "1"]),
    ("core-py", ["env", "-u", "CORE_REQUIRE_COMPILED", "CORE_PURE_PYTHON=1", sys.executable, "-m", "core", "--port", PORT,
                 "--directory", DIRECTORY, "--workers", "1"]),
]
# core's compiled build is expected unless CORE_PURE_PYTHON=1 (then `core` runs pure Python too).
COMPILED_EXPECTED = os.environ.get("CORE_PURE_PYTHON") != "1"
NAMES = [name for name, _ in SERVERS]

LISTENING_LINE = re.compile(r"Listening on http://127\.0\.0\.1:(\d+)")
START_TIMEOUT_SECONDS = 15.0
EXIT_TIMEOUT_SECONDS = 5.0


def servers_from(first):
    """The server `first` and every later one: all that must pass `first`'s tests."""
    return NAMES[NAMES.index(first):]


def stages_from(first):
    """Like servers_from, without core: for rules of the course that core deliberately differs from."""
    return [name for name in servers_from(first) if name.startswith("s")]


def command(name, directory, port=0, extra_args=()):
    fill = {PORT: str(port), DIRECTORY: str(directory)}
    return [fill.get(arg, arg) for arg in dict(SERVERS)[name]] + list(extra_args)


RunningServer = namedtuple("RunningServer", "host port directory name")


class ServerProcess:
    """A server started as a real subprocess, stopped by PID."""

    def __init__(self, name, directory, port=0, extra_args=()):
        self.name = name
        self.stderr_file = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server cannot block
        self.process = subprocess.Popen(
            command(name, directory, port, extra_args), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self.stderr_file,
        )

    def wait_until_listening(self, timeout=START_TIMEOUT_SECONDS):
        """Read the one line a server prints on start; return the port it names."""
        line = self._read_stdout_line(timeout)
        match = LISTENING_LINE.fullmatch(line.rstrip("\n"))
        assert match, f"{self.name} printed {line!r}, not 'Listening on http://127.0.0.1:PORT'\n{self.stderr()}"
        return int(match.group(1))

    def _read_stdout_line(self, timeout):
        received = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while b"\n" not in received:
                time_left = deadline - time.monotonic()
                if time_left <= 0:
                    raise TimeoutError(f"{self.name} printed nothing within {timeout}s\n{self.stderr()}")
                if selector.select(time_left):
                    data = os.read(self.process.stdout.fileno(), 4096)
                    if not data:
                        self.process.wait()
                        raise RuntimeError(f"{self.name} exited {self.process.returncode} before listening\n{self.stderr()}")
                    received += data
        return received.decode()

    def stderr(self):
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode(errors="replace")

    def stop(self, signum=signal.SIGTERM):
        """Signal the server; return its exit code (None if it had to be killed)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signum)
        try:
            return self.process.wait(EXIT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        finally:
            self.process.stdout.close()

    def close(self):
        self.stderr_file.close()
