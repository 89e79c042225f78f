"""Stage 2: every request gets a well-formed 200."""
import pytest

from rawhttp import Client, build_request, get
from servers import servers_from, stages_from

pytestmark = pytest.mark.servers(*servers_from("s02_status"))


def test_request_for_root_gets_200_ok(server):
    assert get(server, "/").status_line == "HTTP/1.1 200 OK"


# core sends Date (RFC 9110 §6.6.1) and Server like any production server.
@pytest.mark.servers(*stages_from("s02_status"))
def test_responses_have_no_date_or_server_header(server):
    headers = get(server, "/").headers
    assert "date" not in headers and "server" not in headers


@pytest.mark.servers("s01_bind")
def test_stage_1_closes_without_answering(server):
    with Client(server) as client:
        client.send(build_request("GET", "/"))
        assert client.is_closed_by_server()
