"""Stage 3: the path picks the status; a malformed request gets 400, not a crash."""
import pytest

from rawhttp import DELIVERIES, Client, build_request, fetch, get, random_text
from servers import servers_from

pytestmark = pytest.mark.servers(*servers_from("s03_paths"))


@pytest.mark.parametrize("delivery", DELIVERIES)
@pytest.mark.parametrize(("target", "status_line"), [
    ("/", "HTTP/1.1 200 OK"),
    ("/?query=string", "HTTP/1.1 200 OK"),
    ("/{random}", "HTTP/1.1 404 Not Found"),
    ("/{random}/", "HTTP/1.1 404 Not Found"),
])
def test_path_selects_status(server, delivery, target, status_line):
    response = get(server, target.format(random=random_text()), delivery=delivery)
    assert response.status_line == status_line


MALFORMED_REQUEST_LINES = {
    "empty": b"",
    "method_only": b"GET",
    "no_version": b"GET /",
    "double_space": b"GET  / HTTP/1.1",
    "extra_word": b"GET / HTTP/1.1 extra",
    "lowercase_version": b"GET / http/1.1",
    "version_without_minor": b"GET / HTTP/1",
    "method_not_a_token": b"G(T / HTTP/1.1",
    "relative_target": b"GET index.html HTTP/1.1",
    "nul_in_target": b"GET /a\x00b HTTP/1.1",
    "non_ascii_target": b"GET /\xc3\xa9 HTTP/1.1",
    "tls_handshake": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
}


@pytest.mark.parametrize("line", MALFORMED_REQUEST_LINES.values(), ids=MALFORMED_REQUEST_LINES.keys())
def test_malformed_request_line_gets_400_and_server_keeps_serving(server, line):
    assert fetch(server, line + b"\r\nHost: localhost\r\n\r\n").status_line == "HTTP/1.1 400 Bad Request"
    assert get(server, "/").status == 200


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/0.9"])
def test_unsupported_http_version_gets_505(server, version):
    response = fetch(server, f"GET / {version}\r\nHost: localhost\r\n\r\n".encode())
    assert response.status_line == "HTTP/1.1 505 HTTP Version Not Supported"


def test_request_head_over_16_kib_gets_431(server):
    request = build_request("GET", "/", headers=[("X-Padding", "x" * 20_000)])
    assert fetch(server, request).status_line == "HTTP/1.1 431 Request Header Fields Too Large"


def test_client_hanging_up_mid_request_does_not_stop_the_server(server):
    with Client(server) as client:
        client.send(b"GET / HTT")
    assert get(server, "/").status == 200


@pytest.mark.servers("s03_paths")
@pytest.mark.parametrize(("target", "expected"), [
    ("/", b"HTTP/1.1 200 OK\r\n\r\n"),
    ("/{random}", b"HTTP/1.1 404 Not Found\r\n\r\n"),
])
def test_stage_3_answers_with_a_bare_status_line(server, target, expected):
    # Exactly what the tester's stage ih0 shows; fields and bodies come in stage 4.
    with Client(server) as client:
        client.send(build_request("GET", target.format(random=random_text())))
        received = b""
        while data := client.sock.recv(65536):  # the stage closes after answering
            received += data
        assert received == expected


@pytest.mark.servers("s02_status")
def test_stage_2_answers_200_to_any_path(server):
    assert get(server, f"/{random_text()}").status == 200
