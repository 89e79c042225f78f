"""`python -m stages flatten sNN`: the server at a stage as one file, generated from the stage chain.

Each flattened program is run on its own, outside the repository, and must
pass a representative check of its stage and of every stage before it.
"""
import ast
import gzip
import os
import re
import selectors
import signal
import socket
import subprocess
import sys

import pytest

from rawhttp import Client, build_request, fetch, get, random_text
from servers import NAMES, LISTENING_LINE, RunningServer

STAGES = [name for name in NAMES if re.fullmatch(r"s[0-9][0-9]_\w+", name)]
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def flatten(name, output):
    result = subprocess.run([sys.executable, "-m", "stages", "flatten", name[:3], "-o", str(output)],
                            capture_output=True, text=True, timeout=30, cwd=REPOSITORY)
    assert result.returncode == 0, result.stderr
    return output


def test_flatten_embeds_each_stage_of_the_chain_unchanged(tmp_path):
    last = STAGES[-1]
    tree = ast.parse(flatten(last, tmp_path / "flat.py").read_text())
    defined = [(call.args[0].value, ast.literal_eval(call.args[1]))
               for call in ast.walk(tree)
               if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "define_stage"]
    assert [name for name, _ in defined] == STAGES
    for name, source in defined:
        with open(os.path.join(REPOSITORY, "stages", f"{name}.py")) as file:
            assert source == file.read(), f"{name} differs from stages/{name}.py"


def test_flatten_to_standard_output_is_the_same_program(tmp_path):
    written = flatten("s04_headers", tmp_path / "flat.py").read_text()
    result = subprocess.run([sys.executable, "-m", "stages", "flatten", "s04"], capture_output=True, text=True,
                            timeout=30, cwd=REPOSITORY)
    assert result.returncode == 0 and result.stdout == written


class FlatServer:
    """The flattened program run as a server: isolated (-I), from a directory outside the repository."""

    def __init__(self, program, directory):
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(program), "--port", "0", "--directory", f"{directory}/"],
            cwd=directory.parent, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_until_listening(self, timeout=15):
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            assert selector.select(timeout), "the flattened program printed nothing"
        line = self.process.stdout.readline().decode()
        match = LISTENING_LINE.fullmatch(line.rstrip("\n"))
        assert match, f"printed {line!r}\n{self.process.stderr.read().decode()}"
        return int(match.group(1))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        exit_code = self.process.wait(10)
        stderr = self.process.stderr.read().decode()
        self.process.stdout.close()
        self.process.stderr.close()
        return exit_code, stderr


def check_connects(server):
    socket.create_connection((server.host, server.port), timeout=5).close()


def check_root_gets_200(server):
    assert get(server, "/").status_line == "HTTP/1.1 200 OK"


def check_unknown_path_gets_404(server):
    assert get(server, f"/{random_text()}").status_line == "HTTP/1.1 404 Not Found"


def check_echo_and_user_agent(server):
    text, agent = random_text(), f"{random_text()}/1.0"
    response = get(server, f"/echo/{text}")
    assert (response.headers["content-type"], response.body) == ("text/plain", text.encode())
    assert get(server, "/user-agent", [("User-Agent", agent)]).body == agent.encode()


def check_idle_client_does_not_block_others(server):
    with Client(server):
        check_root_gets_200(server)


def check_file_is_served(server):
    name, content = random_text(), os.urandom(1000)
    (server.directory / name).write_bytes(content)
    response = get(server, f"/files/{name}")
    assert (response.headers["content-type"], response.body) == ("application/octet-stream", content)


def check_upload_is_stored(server):
    name, body = random_text(), os.urandom(1000)
    request = build_request("POST", f"/files/{name}", [("Content-Length", str(len(body)))], body)
    assert fetch(server, request).status_line == "HTTP/1.1 201 Created"
    assert (server.directory / name).read_bytes() == body


def check_gzip(server):
    text = random_text(40)
    response = get(server, f"/echo/{text}", [("Accept-Encoding", "encoding-1, gzip")])
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(response.body) == text.encode()


def check_keep_alive_until_connection_close(server):
    with Client(server) as client:
        client.send(build_request("GET", "/echo/one"))
        assert client.read_response().body == b"one"
        client.send(build_request("GET", "/echo/two", [("Connection", "close")]))
        response = client.read_response()
        assert (response.body, response.headers["connection"]) == (b"two", "close")
        assert client.is_closed_by_server()


def check_one_thread(server):
    with open(f"/proc/{server.name}/status") as status:  # server.name holds the pid here
        assert re.search(r"^Threads:\s+1$", status.read(), re.MULTILINE)


# (first stage, check): a stage's flattened program runs its checks and those of every earlier stage.
CHECKS = [
    ("s01_bind", check_connects),
    ("s02_status", check_root_gets_200),
    ("s03_paths", check_unknown_path_gets_404),
    ("s04_headers", check_echo_and_user_agent),
    ("s05_concurrency", check_idle_client_does_not_block_others),
    ("s06_files", check_file_is_served),
    ("s07_post", check_upload_is_stored),
    ("s08_gzip", check_gzip),
    ("s09_keepalive", check_keep_alive_until_connection_close),
    ("s10_eventloop", check_one_thread),
]


@pytest.mark.parametrize("name", STAGES)
def test_flattened_program_serves_as_its_stage(name, tmp_path):
    program = flatten(name, tmp_path / f"{name}_flat.py")
    stage_number = int(name[1:3])
    help_text = subprocess.run([sys.executable, "-I", str(program), "--help"], capture_output=True, text=True,
                               timeout=30, cwd=tmp_path).stdout
    assert f"Stage {stage_number}:" in help_text  # the last stage's Server runs
    directory = tmp_path / "served"
    directory.mkdir()
    flat = FlatServer(program, directory)
    try:
        port = flat.wait_until_listening()
        server = RunningServer("127.0.0.1", port, directory, str(flat.process.pid))
        for first, check in CHECKS:
            if first in STAGES and STAGES.index(first) <= STAGES.index(name):
                check(server)
    finally:
        exit_code, stderr = flat.stop()
    assert exit_code == 0, stderr
    assert "Traceback" not in stderr, stderr
