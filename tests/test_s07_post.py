"""Stage 7: POST /files/{name} stores the body, atomically, and refuses what it cannot store."""
import os

import pytest

from rawhttp import DELIVERIES, Client, build_request, fetch, get, random_text, wait_until
from servers import servers_from, stages_from

pytestmark = pytest.mark.servers(*servers_from("s07_post"))


def upload(name, body, headers=None):
    headers = [("Content-Length", str(len(body)))] if headers is None else headers
    return build_request("POST", f"/files/{name}", headers, body)


@pytest.mark.parametrize("delivery", DELIVERIES)
def test_post_stores_body_and_answers_201(server, delivery):
    name, body = random_text(), os.urandom(2000)
    response = fetch(server, upload(name, body), delivery)
    assert response.status_line == "HTTP/1.1 201 Created"
    # Complete on disk by the time the 201 arrives.
    assert (server.directory / name).read_bytes() == body
    assert get(server, f"/files/{name}").body == body


def test_10_mb_upload_is_stored_whole(server):
    name, body = random_text(), os.urandom(10 * 1024 * 1024)
    assert fetch(server, upload(name, body)).status == 201
    assert (server.directory / name).read_bytes() == body


def test_upload_replaces_existing_file(server):
    name = random_text()
    (server.directory / name).write_bytes(b"old content, longer than the new one")
    assert fetch(server, upload(name, b"new")).status == 201
    assert (server.directory / name).read_bytes() == b"new"


def test_client_disconnecting_mid_body_leaves_no_file(server):
    name = random_text()
    before = set(os.listdir(server.directory))
    with Client(server) as client:
        client.send(upload(name, b"x" * 500, headers=[("Content-Length", "1000")]))
        # Let the upload start (a temporary file appears) before hanging up.
        wait_until(lambda: set(os.listdir(server.directory)) != before, timeout=2)
    assert wait_until(lambda: set(os.listdir(server.directory)) == before), "file left behind"
    assert get(server, f"/files/{name}").status == 404


def test_post_without_content_length_gets_411(server):
    response = fetch(server, upload(random_text(), b"", headers=[]))
    assert response.status_line == "HTTP/1.1 411 Length Required"


BAD_CONTENT_LENGTHS = ["abc", "-1", "1.5", "0x10", "+5", "5, 6", "", "1 000"]


@pytest.mark.parametrize("value", BAD_CONTENT_LENGTHS)
def test_bad_content_length_gets_400(server, value):
    name = random_text()
    response = fetch(server, upload(name, b"hello", headers=[("Content-Length", value)]))
    assert response.status_line == "HTTP/1.1 400 Bad Request"
    assert not (server.directory / name).exists()


def test_body_over_limit_gets_413_before_it_is_sent(server):
    response = fetch(server, upload(random_text(), b"", headers=[("Content-Length", str(10**12))]))
    assert response.status_line == "HTTP/1.1 413 Content Too Large"


# core decodes chunked uploads (tests/test_core.py); the stages refuse them.
@pytest.mark.servers(*stages_from("s07_post"))
def test_chunked_transfer_encoding_gets_501(server):
    request = upload(random_text(), b"5\r\nhello\r\n0\r\n\r\n", headers=[("Transfer-Encoding", "chunked")])
    assert fetch(server, request).status == 501


@pytest.mark.parametrize("template", ["../{name}", "%2e%2e%2f{name}", "/{path}"])
def test_upload_outside_directory_gets_403(server, template):
    outside = server.directory.parent / random_text()
    name = template.format(name=outside.name, path=outside)
    assert fetch(server, upload(name, b"intruder")).status == 403
    assert not outside.exists()


def test_expect_100_continue_gets_interim_response_before_body(server):
    name, body = random_text(), os.urandom(100)
    with Client(server) as client:
        client.send(upload(name, b"", headers=[("Content-Length", "100"), ("Expect", "100-continue")]))
        assert client.read_response().status_line == "HTTP/1.1 100 Continue"
        client.send(body)
        assert client.read_response().status == 201
    assert (server.directory / name).read_bytes() == body


def test_unknown_method_on_known_route_gets_405_listing_allowed_methods(server):
    response = fetch(server, build_request("DELETE", "/"))
    assert response.status_line == "HTTP/1.1 405 Method Not Allowed"
    allowed = [method.strip() for method in response.headers["allow"].split(",")]
    assert "GET" in allowed and "DELETE" not in allowed   # core also allows HEAD


@pytest.mark.servers("s06_files")
def test_stage_6_does_not_accept_uploads(server):
    name = random_text()
    assert fetch(server, upload(name, b"data")).status == 404  # no route yet; 405 comes with POST
    assert not (server.directory / name).exists()
