"""Testing your own server (`--server-cmd`), proved on CodeCrafters-style solutions.

tests/fixtures/cc_stage4_server.py is written as learners write the course's
stage 4 on CodeCrafters; each test runs the suite on it in a subprocess, with
{port} so that nothing needs port 4221.
"""
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from servers import OwnServer, PortBusy

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path("tests") / "fixtures"


def solution(*args, script="cc_stage4_server.py"):
    return shlex.join([sys.executable, str(FIXTURES / script), *args]) + " --port {port}"


def run_suite(tmp_path, *args):
    """`python -m pytest tests ARGS` in the repository; its output, with its exit code in `.returncode`."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "inner"),
         "-o", "console_output_style=classic", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300)


def summary(result):
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(("stage", "passed"), [("s04_headers", 6), ("s05_concurrency", 7)])
def test_a_codecrafters_style_solution_passes_the_codecrafters_checks(tmp_path, stage, passed):
    """at4, ia4, ih0, cn2, fs3 and the anti-cheat; its threads pass ej5 (stage 5) too."""
    result = run_suite(tmp_path, "--server-cmd", solution(), "--stage", stage, "-m", "codecrafters")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.fullmatch(rf"=+ {passed} passed, \d+ deselected in .*", summary(result)), result.stdout


def test_a_wrong_content_length_fails_naming_the_check(tmp_path):
    result = run_suite(tmp_path, "--server-cmd", solution("echo-length", script="cc_stage4_server_broken.py"),
                       "--stage", "s04_headers", "-m", "codecrafters")
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.fullmatch(r"=+ 1 failed, 5 passed, \d+ deselected in .*", summary(result)), result.stdout
    assert "FAILED tests/test_codecrafters.py::test_cn2_respond_with_body[cmd]" in result.stdout
    assert 'Expected "Content-Length" header value to be' in result.stdout
    assert 'CodeCrafters stage CN2 "Respond with body"' in result.stdout
    assert "your server's output (stdout+stderr)" in result.stdout


def test_the_course_asks_more_of_the_same_solution(tmp_path):
    """Without -m: the CodeCrafters checks pass, the course's stricter ones fail; nothing else runs."""
    result = run_suite(tmp_path, "--server-cmd", solution(), "--stage", "s04_headers", "-v")
    assert result.returncode == 1, result.stdout + result.stderr
    for slug in ["at4", "ia4", "ih0", "cn2", "fs3", "ac1"]:
        assert re.search(rf"test_codecrafters.py::test_{slug}_\w+\[cmd\] PASSED", result.stdout), slug
    assert "test_s03_paths.py::test_malformed_request_line_gets_400_and_server_keeps_serving[cmd-empty] FAILED" \
        in result.stdout
    assert "course check of stage s03_paths" in result.stdout
    ran = set(re.findall(r"^tests/(\w+\.py)::", result.stdout, re.MULTILINE))
    assert ran == {"test_codecrafters.py", "test_s01_bind.py", "test_s02_status.py", "test_s03_paths.py",
                   "test_s04_headers.py"}


def test_a_crash_is_reported_at_the_test_that_saw_it(tmp_path):
    """The server exits on /echo: that test errors with the server's output; the next starts a new one."""
    result = run_suite(tmp_path, "--server-cmd", solution("exit-on-echo", script="cc_stage4_server_broken.py"),
                       "--stage", "s04_headers", "-v", "-rA",
                       "-k", "test_echo_answers_with_the_text or test_user_agent_answers_with_the_header_value")
    assert "ERROR tests/test_s04_headers.py::test_echo_answers_with_the_text[cmd-whole]" in result.stdout
    assert "your server stopped (exit code 3) during this test" in result.stdout
    assert "exit-on-echo: exiting on /echo/" in result.stdout
    assert "test_s04_headers.py::test_user_agent_answers_with_the_header_value[cmd-whole] PASSED" in result.stdout
    # Delivered a byte at a time, the request never reaches the route that exits: one error only.
    assert result.stdout.count("ERROR tests/") == 1


def test_a_server_that_never_listens_fails_at_once_with_its_output(tmp_path):
    result = run_suite(tmp_path, "--server-cmd", "echo starting on {port}; echo no luck >&2; exit 3",
                       "--stage", "s01_bind", "-m", "codecrafters")
    assert result.returncode == 1
    assert "Looks like your program has terminated" in result.stdout
    assert "no luck" in result.stdout


def test_a_busy_port_4221_stops_before_your_server_starts(tmp_path):
    own = OwnServer("python my_server.py", f"{tmp_path}/")
    assert own.port == 4221
    with socket.create_server(("127.0.0.1", 0)) as taken:
        own.port = taken.getsockname()[1]  # stands in for 4221, which other programs may use
        with pytest.raises(PortBusy, match=r"busy before starting your server.*\{port\}"):
            own.start()
    assert own.process is None


@pytest.mark.parametrize(("args", "modules"), [
    (["--server", "s01_bind"], {"test_s01_bind.py", "test_s02_status.py", "test_codecrafters.py"}),
    (["--stage", "s02_status"], {"test_s01_bind.py", "test_s02_status.py", "test_s03_paths.py",
                                 "test_codecrafters.py"}),
])
def test_asking_for_a_server_selects_only_tests_that_drive_it(tmp_path, args, modules):
    result = run_suite(tmp_path, *args, "--collect-only", "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(re.findall(r"^tests/(\w+\.py)::", result.stdout, re.MULTILINE)) == modules


@pytest.mark.parametrize(("args", "message"), [
    (["--server-cmd", "my-server {port}"], "--server-cmd needs --stage"),
    (["--server-cmd", "my-server {port}", "--stage", "s06_files"], "pass --directory {directory}"),
    (["--server-cmd", "my-server {port}", "--stage", "s04_headers", "--server", "core"], "leave out --server"),
], ids=["no_stage", "files_without_directory", "with_server"])
def test_server_cmd_usage_errors(tmp_path, args, message):
    result = run_suite(tmp_path, *args)
    assert result.returncode == 4
    assert message in result.stderr
