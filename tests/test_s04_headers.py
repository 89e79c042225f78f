"""Stage 4: /echo/{text} and /user-agent answer with a body; header names are case-insensitive."""
import pytest

from rawhttp import DELIVERIES, build_request, fetch, get, random_text
from servers import servers_from, stages_from

pytestmark = pytest.mark.servers(*servers_from("s04_headers"))


@pytest.mark.parametrize("delivery", DELIVERIES)
def test_echo_answers_with_the_text(server, delivery):
    text = random_text()
    response = get(server, f"/echo/{text}", delivery=delivery)
    assert response.status_line == "HTTP/1.1 200 OK"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["content-length"] == str(len(text))
    assert response.body == text.encode()


@pytest.mark.parametrize("delivery", DELIVERIES)
def test_user_agent_answers_with_the_header_value(server, delivery):
    agent = f"{random_text(6)}/{random_text(3)}"
    response = get(server, "/user-agent", headers=[("User-Agent", agent)], delivery=delivery)
    assert response.status == 200
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["content-length"] == str(len(agent))
    assert response.body == agent.encode()


@pytest.mark.parametrize("spelling", ["user-agent", "USER-AGENT", "uSeR-aGeNt"])
def test_header_names_are_case_insensitive(server, spelling):
    agent = random_text()
    assert get(server, "/user-agent", headers=[(spelling, agent)]).body == agent.encode()


def test_whitespace_around_header_value_is_not_part_of_it(server):
    agent = random_text()
    request = f"GET /user-agent HTTP/1.1\r\nHost: x\r\nUser-Agent: \t {agent} \t\r\n\r\n".encode()
    assert fetch(server, request).body == agent.encode()


MALFORMED_HEADER_LINES = {
    "no_colon": b"User-Agent curl",
    "space_in_name": b"User Agent: curl",
    "space_before_colon": b"User-Agent : curl",
    "obs_fold": b"User-Agent: curl\r\n  continued",
    "empty_name": b": curl",
    "control_character": b"User-Agent: cu\x01rl",
}


@pytest.mark.parametrize("line", MALFORMED_HEADER_LINES.values(), ids=MALFORMED_HEADER_LINES.keys())
def test_malformed_header_line_gets_400(server, line):
    request = b"GET /user-agent HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n"
    assert fetch(server, request).status_line == "HTTP/1.1 400 Bad Request"


def test_http_1_1_request_without_host_gets_400(server):
    assert fetch(server, build_request("GET", "/", host=None)).status == 400


def test_absolute_form_target_is_routed_by_its_path(server):
    assert get(server, "http://localhost/").status == 200
    assert get(server, f"http://localhost/{random_text()}").status == 404


# What each refusal must let the client see: its status, and a text/plain body that says why
# (the HTTPError's detail), framed by Content-Length like any other body.
ERRORS = {
    "no_route": (build_request("GET", "/{random}"), 404, "/{random}"),
    "malformed_request_line": (b"GET /{random}\r\nHost: x\r\n\r\n", 400, "request line"),
    "malformed_header_line": (b"GET / HTTP/1.1\r\nHost: x\r\nX-{random} oops\r\n\r\n", 400, "X-{random}"),
    "missing_host": (build_request("GET", "/", host=None), 400, "Host"),
}


@pytest.mark.parametrize(("request_bytes", "status", "mentions"), ERRORS.values(), ids=ERRORS.keys())
def test_error_answer_says_why_in_a_text_body(server, request_bytes, status, mentions):
    word = random_text()
    response = fetch(server, request_bytes.replace(b"{random}", word.encode()))
    assert response.status == status
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-length"] == str(len(response.body))
    assert response.body.strip()


# core words its own messages ("not found" names no path), so the exact detail is the stages' rule.
@pytest.mark.servers(*stages_from("s04_headers"))
@pytest.mark.parametrize(("request_bytes", "status", "mentions"), ERRORS.values(), ids=ERRORS.keys())
def test_error_body_carries_the_detail_of_the_http_error(server, request_bytes, status, mentions):
    word = random_text()
    response = fetch(server, request_bytes.replace(b"{random}", word.encode()))
    assert mentions.format(random=word).lower() in response.body.decode().lower()


@pytest.mark.servers("s03_paths")
def test_stage_3_has_no_echo(server):
    assert get(server, f"/echo/{random_text()}").status == 404
