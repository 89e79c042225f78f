"""Stage 5: a silent client does not hold up anyone else."""
import socket

import pytest

from rawhttp import Client, build_request, get, random_text
from servers import servers_from

pytestmark = pytest.mark.servers(*servers_from("s05_concurrency"))


@pytest.mark.parametrize("idle_bytes", [b"", b"GET /echo/x HTT"], ids=["silent", "half_a_request"])
def test_idle_client_does_not_block_others(server, idle_bytes):
    with Client(server) as idle:
        idle.send(idle_bytes)
        text = random_text()
        assert get(server, f"/echo/{text}").body == text.encode()


def test_many_clients_sending_at_once_all_get_their_answer(server):
    texts = [random_text() for _ in range(20)]
    clients = [Client(server) for _ in texts]
    try:
        requests = [build_request("GET", f"/echo/{text}") for text in texts]
        for client, request in zip(clients, requests):
            client.send(request[:10])
        for client, request in reversed(list(zip(clients, requests))):
            client.send(request[10:])
        assert [client.read_response().body for client in clients] == [text.encode() for text in texts]
    finally:
        for client in clients:
            client.sock.close()


@pytest.mark.servers("s04_headers")
def test_stage_4_makes_others_wait_for_an_idle_client(server):
    idle = Client(server)
    with Client(server, timeout=0.5) as waiting:
        waiting.send(build_request("GET", "/"))
        with pytest.raises(socket.timeout):
            waiting.read_response()
        idle.sock.close()  # now the server gets to the waiting client
        waiting.sock.settimeout(5)
        assert waiting.read_response().status == 200
