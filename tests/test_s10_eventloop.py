"""Stage 10: one thread serves every connection; idle, silent and slow clients hold up nobody."""
import os
import re

import pytest

from rawhttp import Client, build_request, get, random_text, wait_until
from servers import RunningServer, ServerProcess, servers_from

pytestmark = pytest.mark.servers(*servers_from("s10_eventloop"))

IDLE_CONNECTIONS = 300


def thread_count(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"^Threads:\s+(\d+)$", status.read(), re.MULTILINE).group(1))


def open_clients(server, count):
    clients = []
    try:
        for _ in range(count):
            clients.append(Client(server))
    except BaseException:
        close_all(clients)
        raise
    return clients


def close_all(clients):
    for client in clients:
        client.sock.close()


def test_hundreds_of_idle_keep_alive_connections_do_not_hold_up_a_new_client(server):
    clients = open_clients(server, IDLE_CONNECTIONS)
    try:
        for index, client in enumerate(clients):  # one request each, then they stay open and idle
            client.send(build_request("GET", f"/echo/{index}"))
        assert [client.read_response().body for client in clients] == [str(i).encode() for i in range(len(clients))]
        text = random_text()
        assert get(server, f"/echo/{text}").body == text.encode()
        for client in clients[::50]:  # and every idle connection can still be used
            client.send(build_request("GET", "/echo/again"))
            assert client.read_response().body == b"again"
    finally:
        close_all(clients)


def test_a_client_that_does_not_read_does_not_hold_up_others(server):
    name, content = random_text(), os.urandom(4 * 1024 * 1024)
    (server.directory / name).write_bytes(content)
    with Client(server, timeout=10) as slow:
        # 12 MiB of answers that the client does not read: far more than the socket buffers hold.
        slow.send(build_request("GET", f"/files/{name}") * 3)
        for _ in range(3):
            text = random_text()
            with Client(server, timeout=2) as other:
                other.send(build_request("GET", f"/echo/{text}"))
                assert other.read_response().body == text.encode()
        # The slow client reads at last: every answer whole and in order, sent piece by piece.
        for _ in range(3):
            assert slow.read_response().body == content


def test_a_thousand_pipelined_requests_in_one_send_are_answered_in_order(server):
    texts = [random_text(8) for _ in range(1000)]
    with Client(server, timeout=10) as client:
        client.send(b"".join(build_request("GET", f"/echo/{text}") for text in texts))
        assert [client.read_response().body for _ in texts] == [text.encode() for text in texts]


def test_half_a_request_from_one_client_holds_up_nobody(server):
    with Client(server) as partial:
        partial.send(build_request("POST", f"/files/{random_text()}", [("Content-Length", "100")], b"x" * 40))
        text = random_text()
        assert get(server, f"/echo/{text}").body == text.encode()
        partial.send(b"x" * 60)
        assert partial.read_response().status == 201


@pytest.fixture
def started(server_name, tmp_path):
    """The server as a process of our own, so that the test can look at its threads."""
    process = ServerProcess(server_name, tmp_path)
    try:
        port = process.wait_until_listening()
        yield process.process.pid, RunningServer("127.0.0.1", port, tmp_path, server_name)
    finally:
        process.stop()
        process.close()


@pytest.mark.servers("s10_eventloop")
def test_one_thread_serves_every_connection(started):
    pid, server = started
    clients = open_clients(server, IDLE_CONNECTIONS)
    try:
        for client in clients[: IDLE_CONNECTIONS // 2]:
            client.send(build_request("GET", "/echo/x"))
        for client in clients[IDLE_CONNECTIONS // 2:]:
            client.send(b"GET /echo/x HTT")  # half a request, never finished
        assert all(client.read_response().body == b"x" for client in clients[: IDLE_CONNECTIONS // 2])
        assert thread_count(pid) == 1
    finally:
        close_all(clients)


@pytest.mark.servers("s09_keepalive")
def test_stage_9_holds_a_thread_per_connection(started):
    pid, server = started
    clients = open_clients(server, 50)
    try:
        assert wait_until(lambda: thread_count(pid) > 50), f"{thread_count(pid)} threads for 50 connections"
    finally:
        close_all(clients)
