"""A tiny HTTP/1.1 client over raw sockets, so tests control every byte and segment."""
import os
import random
import socket
import string
import time
from dataclasses import dataclass

TIMEOUT_SECONDS = 5.0
# How a request is handed to TCP: all at once, or one byte per send (the
# server must reassemble it either way).
DELIVERIES = ["whole", "bytewise"]


def random_text(length=12):
    return "".join(random.choices(string.ascii_letters + string.digits, k=length))


def build_request(method="GET", target="/", headers=(), body=b"", host="localhost"):
    lines = [f"{method} {target} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{name}: {value}" for name, value in headers]
    return "".join(line + "\r\n" for line in lines).encode("latin-1") + b"\r\n" + body


@dataclass
class Response:
    status_line: str
    status: int
    headers: dict  # lower-cased names -> value
    header_names: list  # as sent, in order
    body: bytes


class Client:
    """One connection; keeps bytes read past a response for the next one."""

    def __init__(self, server, timeout=TIMEOUT_SECONDS, receive_buffer=None):
        """receive_buffer: SO_RCVBUF set before connecting (a slow reader's small window)."""
        if receive_buffer is None:
            self.sock = socket.create_connection((server.host, server.port), timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_INET6 if ":" in server.host else socket.AF_INET)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            self.sock.settimeout(timeout)
            self.sock.connect((server.host, server.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one send, one segment
        self.buffer = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.sock.close()

    def send(self, data, delivery="whole"):
        if delivery == "whole":
            self.sock.sendall(data)
        else:
            for index in range(len(data)):
                self.sock.sendall(data[index:index + 1])

    def _receive(self):
        data = self.sock.recv(65536)
        self.buffer += data
        return data

    def read_response(self):
        while b"\r\n\r\n" not in self.buffer:
            if not self._receive():
                raise ConnectionError(f"connection closed before a full response head; got {self.buffer!r}")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        header_names = [line.split(":", 1)[0] for line in lines]
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        status = int(status_line.split(" ")[1])
        if "content-length" in headers:
            length = int(headers["content-length"])
            while len(self.buffer) < length:
                if not self._receive():
                    raise ConnectionError("connection closed inside the response body")
            body, self.buffer = self.buffer[:length], self.buffer[length:]
        elif 100 <= status < 200:
            body = b""
        else:  # no framing: the body runs to the end of the connection
            while self._receive():
                pass
            body, self.buffer = self.buffer, b""
        return Response(status_line, status, headers, header_names, body)

    def is_closed_by_server(self):
        """True if the server has closed (EOF), False if it sends more or stays silent."""
        try:
            return not self.buffer and not self._receive()
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


def fetch(server, data, delivery="whole"):
    """Send one request on a new connection and return the response."""
    with Client(server) as client:
        client.send(data, delivery)
        return client.read_response()


def get(server, target, headers=(), delivery="whole"):
    return fetch(server, build_request("GET", target, headers), delivery)


def wait_until(condition, timeout=5.0):
    """Poll `condition` until it is true or `timeout` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while not (result := condition()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return result


def read_reply(client, method="GET"):
    """One response from client's buffer, framed as RFC 9112 §6.3 says: no body after HEAD, nor on a 1xx or 304."""
    while b"\r\n\r\n" not in client.buffer:
        assert client._receive(), f"closed before a full head; got {client.buffer!r}"
    head, client.buffer = client.buffer.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    names = [line.split(":", 1)[0] for line in lines]
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    status = int(status_line.split(" ")[1])
    length = 0 if method == "HEAD" or status in (100, 304) else int(headers["content-length"])
    while len(client.buffer) < length:
        assert client._receive(), "closed inside the body"
    body, client.buffer = client.buffer[:length], client.buffer[length:]
    return Response(status_line, status, headers, names, body)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def settled_fd_count(pid, timeout=5.0):
    """A process's descriptor count once it stops changing (connections just closed are gone)."""
    last, deadline = fd_count(pid), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        current = fd_count(pid)
        if current == last:
            return current
        last = current
    return last
