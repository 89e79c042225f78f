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


def test_absolute_form_target_is_routed_by_its_path(server):
    assert get(server, "http://localhost/").status == 200
    assert get(server, f"http://localhost/{random_text()}").status == 404


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


def test_unknown_method_on_known_route_gets_405_listing_allowed_methods(server):
    response = fetch(server, build_request("DELETE", "/"))
    assert response.status_line == "HTTP/1.1 405 Method Not Allowed"
    allowed = [method.strip() for method in response.headers["allow"].split(",")]
    assert "GET" in allowed and "DELETE" not in allowed   # core also allows HEAD


def test_request_head_over_16_kib_gets_431(server):
    request = build_request("GET", "/", headers=[("X-Padding", "x" * 20_000)])
    assert fetch(server, request).status_line == "HTTP/1.1 431 Request Header Fields Too Large"


def test_client_hanging_up_mid_request_does_not_stop_the_server(server):
    with Client(server) as client:
        client.send(b"GET / HTT")
    assert get(server, "/").status == 200


@pytest.mark.servers("s02_status")
def test_stage_2_answers_200_to_any_path(server):
    assert get(server, f"/{random_text()}").status == 200
