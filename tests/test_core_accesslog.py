"""--access-log: what the client sends cannot forge a field of the log line.

The request target may hold `"` and `\\` (RFC 9112 §3.2 allows every visible
ASCII character; core/_framing.py TARGET_CHAR), so written raw a target such
as /x"_200_1_"y closes the quoted request line early and invents fields.
They are escaped as nginx escapes its log variables: `"` -> \\x22,
`\\` -> \\x5C, and any control or non-ASCII byte as \\xHH.
"""
import signal

import pytest

from core import accesslog
from rawhttp import Client, build_request, wait_until
from servers import RunningServer, ServerProcess

pytestmark = pytest.mark.servers("core", "core-py")


@pytest.mark.parametrize("raw, logged", [
    (b"/files/a.bin", "/files/a.bin"),
    (b'/x"y', "/x\\x22y"),
    (b"/x\\y", "/x\\x5Cy"),
    (b"/x\x00\x1f\x7f\x80\xffy", "/x\\x00\\x1F\\x7F\\x80\\xFFy"),
    (b"/\\x22", "/\\x5Cx22"),       # an escape sequence sent by the client is itself escaped
])
def test_escape(raw, logged):
    assert accesslog.escape(raw) == logged


def test_quotes_and_backslashes_in_the_target_are_escaped(server_name, tmp_path):
    # The file's name holds both, so the second GET takes the compiled loop's
    # cached-file path and the first the handler's: both must log the same way.
    (tmp_path / 'q"uote\\.bin').write_bytes(b"0123456789")
    log = tmp_path / "access.log"
    process = ServerProcess(server_name, tmp_path, extra_args=["--access-log", str(log)])
    try:
        server = RunningServer("127.0.0.1", process.wait_until_listening(), tmp_path, server_name)
        with Client(server) as client:
            for target in ('/files/q"uote\\.bin', '/files/q"uote\\.bin', '/x"_200_1_"\\'):
                client.send(build_request("GET", target))
                client.read_response()
        assert wait_until(lambda: len(log.read_text().splitlines()) == 3)
    finally:
        assert process.stop(signal.SIGTERM) == 0
        process.close()
    lines = log.read_text().splitlines()
    assert lines[0].endswith(' "GET /files/q\\x22uote\\x5C.bin HTTP/1.1" 200 10'), lines[0]
    assert lines[1].endswith(' "GET /files/q\\x22uote\\x5C.bin HTTP/1.1" 200 10'), lines[1]
    assert lines[2].endswith(' "GET /x\\x22_200_1_\\x22\\x5C HTTP/1.1" 404 10'), lines[2]
    assert all(line.count('"') == 2 for line in lines), lines
