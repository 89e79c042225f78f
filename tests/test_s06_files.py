"""Stage 6: GET /files/{name} returns the file's bytes, and nothing outside --directory."""
import os

import pytest

from rawhttp import DELIVERIES, fetch, get, random_text
from servers import servers_from

pytestmark = pytest.mark.servers(*servers_from("s06_files"))

CONTENTS = {"empty": b"", "every_byte_value": bytes(range(256)) * 4, "300_kb": os.urandom(300_000)}


@pytest.mark.parametrize("delivery", DELIVERIES)
@pytest.mark.parametrize("content", CONTENTS.values(), ids=CONTENTS.keys())
def test_file_is_returned_byte_for_byte(server, delivery, content):
    name = f"{random_text()}.bin"
    (server.directory / name).write_bytes(content)
    response = get(server, f"/files/{name}", delivery=delivery)
    assert response.status_line == "HTTP/1.1 200 OK"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(content))
    assert response.body == content


def test_missing_file_gets_404(server):
    assert get(server, f"/files/{random_text()}").status_line == "HTTP/1.1 404 Not Found"


def test_directory_gets_404(server):
    name = random_text()
    (server.directory / name).mkdir()
    assert get(server, f"/files/{name}").status == 404


@pytest.fixture
def outside_file(server):
    """A file next to the served directory, which no request may read or overwrite."""
    path = server.directory.parent / f"outside-{random_text()}"
    path.write_text(f"secret {random_text()}")
    return path


# Each name tries to reach `outside_file` from inside the served directory.
TRAVERSALS = {
    "dot_dot": "../{name}",
    "percent_encoded_dots": "%2e%2e/{name}",
    "percent_encoded_dots_uppercase": "%2E%2E/{name}",
    "percent_encoded_slash": "..%2f{name}",
    "fully_percent_encoded": "%2e%2e%2f{name}",
    "dot_dot_after_subdirectory": "sub/../../{name}",
    "absolute_path": "/{path}",
    "percent_encoded_absolute_path": "%2f{path_without_slash}",
    "percent_encoded_nul": "..%2f{name}%00.txt",
}


@pytest.mark.parametrize("template", TRAVERSALS.values(), ids=TRAVERSALS.keys())
def test_traversal_outside_directory_gets_403(server, outside_file, template):
    target = "/files/" + template.format(
        name=outside_file.name, path=outside_file, path_without_slash=str(outside_file).lstrip("/"))
    response = get(server, target)
    assert response.status_line == "HTTP/1.1 403 Forbidden"
    assert outside_file.read_bytes() not in response.body


def test_raw_nul_byte_in_file_name_gets_400(server):
    response = fetch(server, b"GET /files/x\x00y HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.status == 400


def test_symlink_to_file_outside_gets_403(server, outside_file):
    link = server.directory / random_text()
    link.symlink_to(outside_file)
    assert get(server, f"/files/{link.name}").status == 403


def test_symlink_to_directory_outside_gets_403(server, outside_file):
    link = server.directory / random_text()
    link.symlink_to(outside_file.parent)
    assert get(server, f"/files/{link.name}/{outside_file.name}").status == 403


@pytest.mark.servers("s05_concurrency")
def test_stage_5_has_no_files_route(server):
    name = random_text()
    (server.directory / name).write_bytes(b"content")
    assert get(server, f"/files/{name}").status == 404
