"""Stage 5: a silent client does not hold up anyone else."""
import os
import signal
import socket

import pytest

from rawhttp import Client, build_request, get, random_text, wait_until
from servers import ServerProcess, servers_from

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


THREADED_STAGES = ["s05_concurrency", "s06_files", "s07_post", "s08_gzip", "s09_keepalive"]
STOP_SIGNAL_BITS = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))


@pytest.mark.servers(*THREADED_STAGES)
def test_connection_threads_leave_the_stop_signals_to_the_main_thread(server_name, tmp_path):
    """A connection thread blocks SIGTERM and SIGINT, so the main thread, in accept(), gets them.

    The kernel hands a process's signal to any thread that does not block
    it; Python runs the handler only in the main thread, once it wakes.  A
    connection thread that took SIGTERM left the server in accept() until the
    next client came (seen once in 40 stops under load).
    """
    process = ServerProcess(server_name, f"{tmp_path}/")
    try:
        port = process.wait_until_listening()
        with socket.create_connection(("127.0.0.1", port)):     # one connection thread, waiting
            pid = process.process.pid
            tasks = lambda: [task for task in os.listdir(f"/proc/{pid}/task") if task != str(pid)]
            assert wait_until(lambda: tasks(), timeout=5), "no connection thread appeared"
            for task in tasks():
                with open(f"/proc/{pid}/task/{task}/status") as status:
                    blocked = int(next(line for line in status if line.startswith("SigBlk:")).split()[1], 16)
                assert blocked & STOP_SIGNAL_BITS == STOP_SIGNAL_BITS, f"thread {task} can take SIGTERM"
    finally:
        process.stop()
        process.close()
