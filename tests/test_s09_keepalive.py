"""Stage 9: one connection carries request after request, in order, until Connection: close."""
import os

import pytest

from rawhttp import DELIVERIES, Client, build_request, random_text
from servers import servers_from

pytestmark = pytest.mark.servers(*servers_from("s09_keepalive"))


def echo(text, headers=()):
    return build_request("GET", f"/echo/{text}", headers)


@pytest.mark.parametrize("delivery", DELIVERIES)
def test_requests_one_after_another_on_one_connection(server, delivery):
    with Client(server) as client:
        for _ in range(3):
            text = random_text()
            client.send(echo(text), delivery)
            response = client.read_response()
            assert response.body == text.encode()
            assert "connection" not in response.headers


@pytest.mark.parametrize("delivery", DELIVERIES)
def test_pipelined_requests_are_answered_in_order(server, delivery):
    name, content, agent = random_text(), os.urandom(300), random_text()
    text = random_text()
    requests = [
        echo(text),
        build_request("POST", f"/files/{name}", [("Content-Length", str(len(content)))], content),
        build_request("GET", f"/files/{name}"),
        build_request("GET", "/user-agent", [("User-Agent", agent)]),
        build_request("GET", f"/{random_text()}"),
    ]
    with Client(server) as client:
        client.send(b"".join(requests), delivery)
        responses = [client.read_response() for _ in requests]
    assert [response.status for response in responses] == [200, 201, 200, 200, 404]
    assert [responses[0].body, responses[2].body, responses[3].body] == [text.encode(), content, agent.encode()]


def test_several_persistent_connections_at_once(server):
    clients = [Client(server) for _ in range(5)]
    try:
        for _ in range(3):
            texts = [random_text() for _ in clients]
            for client, text in zip(clients, texts):
                client.send(echo(text))
            for client, text in reversed(list(zip(clients, texts))):
                assert client.read_response().body == text.encode()
    finally:
        for client in clients:
            client.sock.close()


def test_error_on_a_route_keeps_the_connection_open(server):
    with Client(server) as client:
        client.send(build_request("GET", f"/{random_text()}"))
        assert client.read_response().status == 404
        client.send(build_request("GET", "/"))
        assert client.read_response().status == 200


@pytest.mark.parametrize("request_bytes", [
    echo("bye", [("Connection", "close")]),
    echo("bye", [("connection", "Keep-Alive, CLOSE")]),
    b"GET /echo/bye HTTP/1.0\r\n\r\n",
], ids=["connection_close", "close_among_options", "http_1_0"])
def test_last_request_gets_connection_close_and_socket_closes(server, request_bytes):
    with Client(server) as client:
        client.send(request_bytes)
        response = client.read_response()
        assert response.body == b"bye"
        assert response.headers["connection"] == "close"
        assert client.is_closed_by_server()


def test_malformed_request_gets_400_and_connection_close(server):
    with Client(server) as client:
        client.send(b"NOT HTTP\r\n\r\n" + build_request("GET", "/"))
        response = client.read_response()
        assert response.status == 400
        assert response.headers["connection"] == "close"
        assert client.is_closed_by_server()


@pytest.mark.servers("s08_gzip")
def test_stage_8_answers_one_request_per_connection(server):
    with Client(server) as client:
        client.send(echo("first") + echo("second"))
        assert client.read_response().body == b"first"
        assert client.is_closed_by_server()
