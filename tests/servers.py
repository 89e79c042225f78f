"""The servers the suite runs against, oldest stage first, and how to start them.

Tests are cumulative, like the CodeCrafters tester: the tests of a stage run
against that stage and every server after it in SERVERS (`servers_from`).
Your own server (`--server-cmd`) is `OwnServer`, named OWN in test ids.
"""
import errno
import os
import re
import selectors
import signal
import socket
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
STAGES = [name for name in NAMES if re.fullmatch(r"s[0-9][0-9]_\w+", name)]
# `--server-cmd CMD`: a server of yours, at the stage `--stage` names; OWN is its name in test ids.
OWN = "cmd"
CODECRAFTERS_PORT = 4221  # where the CodeCrafters tester expects a server (internal/stage_common.go)

LISTENING_LINE = re.compile(r"Listening on http://127\.0\.0\.1:(\d+)")
START_TIMEOUT_SECONDS = 15.0
EXIT_TIMEOUT_SECONDS = 5.0


def servers_from(first):
    """The server `first` and every later one: all that must pass `first`'s tests."""
    return NAMES[NAMES.index(first):]


def stages_from(first):
    """Like servers_from, without core: for rules of the course that core deliberately differs from."""
    return [name for name in servers_from(first) if name.startswith("s")]


def first_stage(names):
    """The earliest stage among `names` (a test's servers), or None."""
    return next((name for name in STAGES if name in names), None)


def is_cumulative(names):
    """True for a stage's test that every later stage must pass too (servers_from/stages_from),
    not for a check of one stage's own limits (`servers("s03_paths")`)."""
    first = first_stage(names)
    return first is not None and set(STAGES[STAGES.index(first):]) <= set(names)


def command(name, directory, port=0, extra_args=()):
    fill = {PORT: str(port), DIRECTORY: str(directory)}
    return [fill.get(arg, arg) for arg in dict(SERVERS)[name]] + list(extra_args)


# `process`, when set, has exit_code(): None while the server runs.
RunningServer = namedtuple("RunningServer", "host port directory name process", defaults=(None,))


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

    def exit_code(self):
        return self.process.poll()

    def wait_for_connection_threads(self, timeout=2.0):
        """Wait until a threaded stage has only its main thread left, its clients served.

        A SIGTERM sent meanwhile may be taken by a connection thread, and the main thread,
        blocked in accept(), then runs the handler only at the next connection: the stages
        exit 0 on SIGTERM reliably only when idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if len(os.listdir(f"/proc/{self.process.pid}/task")) <= 1:
                    return
            except FileNotFoundError:
                return
            time.sleep(0.01)

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

    def stop_cleanly(self):
        """SIGTERM, then assert the server exited 0 with no traceback on stderr (the course's rule)."""
        exit_code = self.stop()
        assert exit_code == 0, f"{self.name} exited {exit_code} on SIGTERM, not 0\n{self.stderr()}"
        assert "Traceback" not in self.stderr(), self.stderr()

    def close(self):
        self.stderr_file.close()


class PortBusy(Exception):
    pass


def port_is_busy(port):
    """True if something accepts connections on `port` or holds it bound."""
    for host in ("127.0.0.1", "::1"):
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            pass
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def describe_exit(code):
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


class OwnServer:
    """`--server-cmd CMD`: a server of yours, run as the CodeCrafters tester runs it.

    CMD goes to `sh -c` in a process group of its own, with `{port}` and `{directory}`
    replaced (no `{port}`: the server is expected on 4221, as on CodeCrafters).  Nothing
    is asked of its output: stdout and stderr go to one file, shown when a test fails.
    `stop` ends the group as the tester does: SIGTERM, then SIGKILL after 2 s; the exit
    code does not matter.  The same port and directory serve every start.
    """

    host = "localhost"  # as the tester dials it: IPv4 or IPv6, whichever the server listens on
    STOP_TIMEOUT_SECONDS = 2.0  # tester-utils executable/executable.go, Kill

    def __init__(self, template, directory):
        self.template = template
        self.fixed_port = PORT not in template
        self.port = CODECRAFTERS_PORT if self.fixed_port else free_port()
        self.command = template.replace(PORT, str(self.port)).replace(DIRECTORY, str(directory))
        # O_APPEND: the server's writes always land at the end, whatever we read meanwhile.
        self.output_file = tempfile.TemporaryFile(mode="a+b")
        self.output_start = 0
        self.process = None
        self.last_test = None  # the last test run against this process

    def start(self):
        """Start a fresh process; it may not listen yet (see wait_until_accepting)."""
        self.stop()
        if self.fixed_port and port_is_busy(self.port):
            raise PortBusy(
                f"port {self.port} is busy before starting your server: something else listens there "
                f"(another server, or a process your server left behind). Stop it, or put {PORT} in "
                f"--server-cmd so that each start gets a free port.")
        self.output_start = os.fstat(self.output_file.fileno()).st_size
        self.note(f"started: sh -c {self.command!r}")
        self.process = subprocess.Popen(
            self.command, shell=True, start_new_session=True, stdin=subprocess.DEVNULL,
            stdout=self.output_file, stderr=subprocess.STDOUT)

    def note(self, text):
        """A line of ours among the server's output, so that it reads as a transcript."""
        self.output_file.write(f"[httpcourse] {text}\n".encode())
        self.output_file.flush()

    def wait_until_accepting(self, timeout=START_TIMEOUT_SECONDS):
        """Readiness is a connection accepted on the port (then closed, sending nothing)."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.exit_code()
            if code is not None:
                raise RuntimeError(f"your server stopped ({describe_exit(code)}) before accepting a connection "
                                   f"on {self.host}:{self.port}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    pass
                time.sleep(0.1)  # what the server makes of that connection is logged before the first test
                code = self.exit_code()
                if code is not None:
                    raise RuntimeError(f"your server stopped ({describe_exit(code)}) after the readiness check: "
                                       "a connection accepted and closed without a request")
                self.note(f"ready: a connection to {self.host}:{self.port} was accepted (and closed, nothing sent)")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"your server accepted no connection on {self.host}:{self.port} "
                                       f"within {timeout:g} s") from None
                time.sleep(0.05)

    def exit_code(self):
        """None while the server runs; else its exit code (negative: the signal).

        The process is not reaped here (WNOWAIT): until `stop` reaps it, its PID, which is
        its group's ID, cannot be reused, so signalling the group reaches only our processes.
        """
        if self.process is None:
            return 0
        if self.process.returncode is not None:
            return self.process.returncode
        info = os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def running(self):
        return self.process is not None and self.exit_code() is None

    def _signal_group(self, signum):
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def group_members(self):
        """PIDs of the live (not zombie) processes in the server's process group."""
        members = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", "rb") as f:
                        fields = f.read().rsplit(b")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == self.process.pid and fields[0] != b"Z":
                    members.append(int(entry))
        return members

    def stop(self):
        """SIGTERM to the group, SIGKILL after 2 s, as the tester stops a program; then wait until
        every process of the group is gone, so that none of them still holds the port when the
        next start binds it (with SO_REUSEPORT it could, and take that start's connections)."""
        if self.process is None or self.process.returncode is not None:
            return
        if self.exit_code() is None:
            self._signal_group(signal.SIGTERM)
            deadline = time.monotonic() + self.STOP_TIMEOUT_SECONDS
            while self.group_members() and time.monotonic() < deadline:
                time.sleep(0.02)
        self._signal_group(signal.SIGKILL)  # the leader is at most a zombie: its group ID is still ours
        deadline = time.monotonic() + 10
        while self.group_members() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.process.wait()

    def output(self, limit=8000):
        """What the current (or last) process wrote to stdout and stderr, with our notes; the end of it."""
        fd = self.output_file.fileno()
        text = os.pread(fd, os.fstat(fd).st_size - self.output_start, self.output_start).decode(errors="replace")
        if len(text) > limit:
            text = f"[... {len(text) - limit} characters before ...]\n" + text[-limit:]
        return text or "(nothing)"

    def close(self):
        self.stop()
        self.output_file.close()
