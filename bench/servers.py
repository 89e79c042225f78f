"""Server adapters: for each server, how to start it, know it is ready, and stop it.

Every server serves GET /files/{name} from the same directory, binds 127.0.0.1 on a
port the harness picked, and is started fresh for each run so CPU time and peak memory
belong to that run alone.  A server that is not installed (or not written yet) is
skipped with one line saying what to install.
"""
from __future__ import annotations

import hashlib
import http.client
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import launch

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PEERS_DIR = BENCH_DIR / "peers"
LISTENING = re.compile(r"Listening on http://")


@dataclass
class ServerSetup:
    """What a server needs to start: where to listen, what to serve, where to write."""

    port: int
    directory: str  # the served files
    workdir: str  # per-run scratch directory: logs, rendered configs, pid files
    max_clients: int
    workers: int = 1  # --workers: for the servers that can run several (core, nginx)
    # The names the run will request under /files/ (probe first).  Servers that load their
    # files at start (floor) load these; empty: every regular file in ``directory``.
    files: tuple[str, ...] = ()


@dataclass
class ServerSpec:
    name: str
    description: str
    command: Callable[[ServerSetup], list[str]]
    # None when the server can run here, else the one-line reason it is skipped.
    unavailable: Callable[[], str | None]
    env: dict[str, str] = field(default_factory=dict)
    ready_line: re.Pattern | None = None  # printed by the server once it accepts
    keep_alive: bool = True
    prepare: Callable[[ServerSetup], None] | None = None  # e.g. render nginx.conf
    cwd: Path | None = None  # where the command runs; None: this repository
    # Whether --workers N reaches it (core's workers, nginx's worker_processes); the others
    # (Node.js, uvicorn, the stages) run as they are, one process, whatever N is.
    scales_with_workers: bool = False


# --- the adapters -----------------------------------------------------------------


def _core_missing() -> str | None:
    if (REPO_ROOT / "core" / "__main__.py").exists():
        return None
    return "core/__main__.py does not exist yet"


def core_command(setup: ServerSetup) -> list[str]:
    return _core_base(setup) + ["--workers", str(setup.workers)]


def core_alone_command(setup: ServerSetup) -> list[str]:
    # --no-supervisor: the one worker is the process, as a manager that restarts the server
    # itself runs it (systemd's Restart=, a container); one Python process instead of two.
    return _core_base(setup) + ["--no-supervisor"]


def _core_base(setup: ServerSetup) -> list[str]:
    # -S: no site-packages start-up hooks.  core needs nothing from site-packages, and the
    # .pth files a development install runs (here an editable-install finder and this
    # machine's CA hook, 4.4 MiB of imports per process) are not part of the server; a
    # clean deployment's venv has none of them.
    return [sys.executable, "-S", "-m", "core", "--host", "127.0.0.1", "--port", str(setup.port),
            "--directory", setup.directory]  # fmt: skip


def _stage_module(prefix: str) -> str | None:
    """'s08' -> 'stages.s08_gzip', whatever the stage's suffix turns out to be."""
    found = sorted((REPO_ROOT / "stages").glob(f"{prefix}_*.py"))
    return f"stages.{found[0].stem}" if found else None


_stage_host_flag: dict[str, bool] = {}


def _stage_accepts_host(module: str) -> bool:
    """Whether the stage's CLI has --host (then it is told 127.0.0.1 explicitly)."""
    if module not in _stage_host_flag:
        try:
            out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                                 timeout=10, cwd=REPO_ROOT).stdout  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        _stage_host_flag[module] = "--host" in out
    return _stage_host_flag[module]


def _stage_spec(prefix: str, description: str, keep_alive: bool) -> ServerSpec:
    def command(setup: ServerSetup) -> list[str]:
        module = _stage_module(prefix)
        cmd = [sys.executable, "-m", module, "--port", str(setup.port), "--directory", setup.directory]
        if _stage_accepts_host(module):
            cmd[3:3] = ["--host", "127.0.0.1"]
        return cmd

    def unavailable() -> str | None:
        return None if _stage_module(prefix) else f"stages/{prefix}_*.py does not exist yet"

    return ServerSpec(prefix, description, command, unavailable, ready_line=LISTENING, keep_alive=keep_alive)


def _node_spec(mode: str, description: str) -> ServerSpec:
    def command(setup: ServerSetup) -> list[str]:
        return ["node", str(PEERS_DIR / "node_http.js"), "--mode", mode, "--host", "127.0.0.1",
                "--port", str(setup.port), "--directory", setup.directory]  # fmt: skip

    def unavailable() -> str | None:
        return None if shutil.which("node") else "node not found (apt-get install nodejs)"

    return ServerSpec(f"node-{mode}", description, command, unavailable, ready_line=LISTENING)


def _nginx_binary() -> str | None:
    # /usr/sbin is not on a normal user's PATH on Debian.
    if shutil.which("nginx"):
        return shutil.which("nginx")
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def _nginx_configure_flags() -> str:
    try:
        return subprocess.run([_nginx_binary(), "-V"], capture_output=True, text=True, timeout=10).stderr
    except (OSError, subprocess.TimeoutExpired):
        return ""


# nginx-tuned's additions: descriptors, sizes and failed lookups (the absent name.gz that
# gzip_static looks for) cached for 1 s; name.gz served as is to clients that accept gzip.
FILE_CACHE = """    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 1s;
    open_file_cache_errors on;"""
GZIP_STATIC = "    gzip_static on;"


def render_nginx_conf(setup: ServerSetup, configure_flags: str = "", tuned: bool = False) -> str:
    """nginx.conf for one run, from bench/peers/nginx.conf.template: nginx-tuned when ``tuned``."""
    # Temp paths must point into the scratch dir (the defaults under /var/lib/nginx need root
    # and are shared with the system's nginx); a module built without cannot take its directive.
    temp_paths = "\n".join(
        f"    {module}_temp_path {setup.workdir}/{module}_temp;"
        for module in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        if f"--without-http_{module}_module" not in configure_flags
    )
    file_cache = "    # open_file_cache is left off: nginx opens the file per request."
    if tuned:
        file_cache = FILE_CACHE
        # A build without the module cannot take the directive; unknown flags: assume Debian's, which has it.
        if not configure_flags or "--with-http_gzip_static_module" in configure_flags:
            file_cache += "\n" + GZIP_STATIC
    values = {
        "@WORKERS@": str(setup.workers),
        "@FILE_CACHE@": file_cache,
        "@NOFILE@": str(launch.nofile_limit()),
        # Per worker: with --workers N the kernel may still hand one worker every client.
        "@CONNECTIONS@": str(max(1024, setup.max_clients * 2 + 256)),
        "@WORKDIR@": setup.workdir,
        "@PORT@": str(setup.port),
        "@DIRECTORY@": setup.directory,
        "@TEMP_PATHS@": temp_paths,
    }
    text = (PEERS_DIR / "nginx.conf.template").read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def _nginx_prepare(tuned: bool) -> Callable[[ServerSetup], None]:
    def prepare(setup: ServerSetup) -> None:
        Path(setup.workdir, "nginx.conf").write_text(render_nginx_conf(setup, _nginx_configure_flags(), tuned))

    return prepare


def _nginx_unavailable() -> str | None:
    return None if _nginx_binary() else "nginx not found (apt-get install nginx-light)"


def _nginx_command(setup: ServerSetup) -> list[str]:
    # -p/-e keep even the first error-log write out of /var/log/nginx.
    return [_nginx_binary(), "-p", setup.workdir, "-c", f"{setup.workdir}/nginx.conf",
            "-e", f"{setup.workdir}/error.log"]  # fmt: skip


def _uvicorn_unavailable() -> str | None:
    missing = [m for m in ("uvicorn", "httptools") if importlib.util.find_spec(m) is None]
    return f"{' and '.join(missing)} not installed (pip install uvicorn httptools uvloop)" if missing else None


def _uvicorn_command(setup: ServerSetup) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "bench.peers.uvicorn_app:app", "--host", "127.0.0.1",
            "--port", str(setup.port), "--http", "httptools", "--loop", "auto", "--backlog", "4096",
            "--no-access-log", "--log-level", "warning"]  # fmt: skip


# The floor (bench/peers/floor.c): what a server costs that does nothing but accept, recv, find
# the end of the head and send a prebuilt response from memory.  Built with the system's C
# compiler at first use, into a cache directory of this user under the temp dir (keyed by the
# source's hash, so an edit rebuilds it).
FLOOR_SOURCE = PEERS_DIR / "floor.c"


def _c_compiler() -> str | None:
    return next((found for cc in ("cc", "gcc", "clang") if (found := shutil.which(cc))), None)


def _floor_unavailable() -> str | None:
    if _c_compiler() is None:
        return "no C compiler to build bench/peers/floor.c (cc, gcc or clang; apt-get install gcc)"
    return None


def floor_binary() -> Path:
    """bench/peers/floor.c compiled with ``cc -O2`` (once per version of the source); ServerError if it fails."""
    compiler = _c_compiler()
    if compiler is None:
        raise ServerError(_floor_unavailable())
    source = FLOOR_SOURCE.read_bytes()
    digest = hashlib.sha256(source + compiler.encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"bench-floor-{os.getuid()}"
    cache.mkdir(mode=0o700, exist_ok=True)
    # The temp dir is shared: run nothing from a cache directory someone else could write to.
    st = cache.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise ServerError(f"{cache} is not a private directory of this user; remove it")
    binary = cache / f"floor-{digest}"
    if not binary.exists():
        partial = cache / f"floor-{digest}.{os.getpid()}.tmp"
        built = subprocess.run([compiler, "-O2", "-o", str(partial), str(FLOOR_SOURCE)], capture_output=True,
                               text=True, timeout=120)  # fmt: skip
        if built.returncode != 0:
            partial.unlink(missing_ok=True)
            detail = (built.stderr.strip().splitlines() or ["no output"])[0]
            raise ServerError(f"{compiler} -O2 bench/peers/floor.c failed: {detail}")
        os.replace(partial, binary)  # whole or not at all, also when two runs build at once
    return binary


def _floor_command(setup: ServerSetup) -> list[str]:
    names = setup.files or sorted(e.name for e in os.scandir(setup.directory) if e.is_file())
    return [str(floor_binary()), str(setup.port), setup.directory, *names]


SPECS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec("core", "core, compiled", core_command, _core_missing,
                   ready_line=LISTENING, scales_with_workers=True),  # fmt: skip
        ServerSpec("core-alone", "core, compiled, --no-supervisor (one process, no supervisor)", core_alone_command,
                   _core_missing, ready_line=LISTENING),  # fmt: skip
        ServerSpec("core-py", "core, pure Python (CORE_PURE_PYTHON=1)", core_command,
                   _core_missing, env={"CORE_PURE_PYTHON": "1", "CORE_REQUIRE_COMPILED": "0"},
                   ready_line=LISTENING, scales_with_workers=True),  # fmt: skip
        # s05 (threads) has no /files/ route yet; s06 is the earliest stage that can be measured.
        _stage_spec("s06", "stage 06 (files), threaded, closes after each response", keep_alive=False),
        _stage_spec("s08", "stage 08 (gzip), threaded, closes after each response", keep_alive=False),
        _stage_spec("s09", "stage 09 (keep-alive), threaded", keep_alive=True),
        _stage_spec("s10", "stage 10 (event loop), one thread", keep_alive=True),
        _node_spec("readfile", "Node.js http, fs.readFile per request"),
        _node_spec("cached", "Node.js http, file cached in a Buffer"),
        ServerSpec("nginx-tuned", "nginx, sendfile on, access_log off, open_file_cache, gzip_static on",
                   _nginx_command, _nginx_unavailable, prepare=_nginx_prepare(tuned=True),
                   scales_with_workers=True),  # fmt: skip
        ServerSpec("nginx-plain", "nginx, sendfile on, access_log off, no file cache (opens the file per request)",
                   _nginx_command, _nginx_unavailable, prepare=_nginx_prepare(tuned=False),
                   scales_with_workers=True),  # fmt: skip
        ServerSpec("uvicorn", "uvicorn + httptools, cached bytes", _uvicorn_command, _uvicorn_unavailable,
                   env={"BENCH_FILES_DIR": ""}),  # fmt: skip
        ServerSpec("floor", "the floor: minimal C epoll loop, files in memory, one send per response, "
                   "no header parsing (bench/peers/floor.c; a yardstick, not a server)", _floor_command,
                   _floor_unavailable, ready_line=LISTENING),  # fmt: skip
    )
}

# `python -m bench` without --servers: every server above except the earliest stage and the floor.
DEFAULT_SERVERS = ["core", "core-py", "s08", "s09", "node-readfile", "node-cached", "nginx-tuned", "nginx-plain",
                   "uvicorn"]  # fmt: skip
QUICK_SERVERS = ["core", "node-cached", "nginx-tuned"]
# The peers every scenario is compared against (ratio columns).  nginx-tuned, not nginx-plain:
# a server that caches descriptors compared with an nginx that does not looks ~30 % better
# than it is (PERFORMANCE.md).
BASELINES = ["node-cached", "nginx-tuned"]


def available(names: list[str], err) -> tuple[list[ServerSpec], dict[str, str]]:
    """The specs of names that can run here, and why each other one cannot (also told to err)."""
    chosen, skipped = [], {}
    for name in names:
        why = SPECS[name].unavailable()
        if why:
            skipped[name] = why
            print(f"skip {name}: {why}", file=err)
        else:
            chosen.append(SPECS[name])
    return chosen, skipped


# --- running one server -----------------------------------------------------------


class ServerError(RuntimeError):
    """The server did not start, or died."""


def free_port() -> int:
    """A port that is free on 127.0.0.1 right now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    """One started server: its PID, its port, and how to stop it."""

    def __init__(self, spec: ServerSpec, setup: ServerSetup, cpus: set[int] | None):
        self.spec = spec
        self.setup = setup
        self.log_path = os.path.join(setup.workdir, "server.log")
        if spec.prepare:
            spec.prepare(setup)
        env = dict(os.environ, **spec.env)
        if "BENCH_FILES_DIR" in spec.env:
            env["BENCH_FILES_DIR"] = setup.directory
        # The server logs to a file, never to a pipe: a pipe nobody drains would block a
        # server that logs every request.  Its own session, so stop() reaches its children.
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                spec.command(setup),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=spec.cwd or REPO_ROOT,
                env=env,
                start_new_session=True,
                preexec_fn=launch.preexec(cpus),
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the server's output and of its own error log (nginx's error.log)."""
        tail = []
        for path in (self.log_path, os.path.join(self.setup.workdir, "error.log")):
            try:
                with open(path, errors="replace") as f:
                    tail += f.read().strip().splitlines()[-lines:]
            except OSError:
                pass
        return " | ".join(tail) or "no output"

    def wait_ready(self, probe_path: str, timeout: float = 20.0) -> None:
        """Wait for the Listening line (if the server prints one), then for a 200 on ``probe_path``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.spec.name} exited with {self.proc.returncode}: {self.log_tail()}")
            if self.spec.ready_line is None or self._printed_ready_line():
                if self._probe(probe_path):
                    return
            time.sleep(0.05)
        raise ServerError(f"{self.spec.name} not ready within {timeout:.0f} s: {self.log_tail()}")

    def _printed_ready_line(self) -> bool:
        try:
            with open(self.log_path, errors="replace") as f:
                return bool(self.spec.ready_line.search(f.read(65536)))
        except OSError:
            return False

    def _probe(self, path: str) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.setup.port, timeout=5)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            resp = conn.getresponse()
            resp.read()
            return resp.status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the server's process group (ours: start_new_session), SIGKILL after ``grace``."""
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # Children (nginx's worker, core's workers) may outlive the leader: kill what is left.
        self._signal_group(signal.SIGKILL)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
