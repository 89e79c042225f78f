"""The CodeCrafters tester's client in Python: what it sends, how it reads, what it asserts.

Mirrors github.com/codecrafters-io/http-server-tester at a13e959 (and its
github.com/codecrafters-io/tester-utils at 32e4ddf); file:line references are
to those commits.  Used by tests/test_codecrafters.py, so that `-m
codecrafters` passes exactly when the official tester would, no stricter:

- requests are the bytes Go's httputil.DumpRequest makes (connection.go:63-75);
- a response is read until its bytes parse, for at most 2 s, and parsed as the
  tester parses it (parser/http_response.go): `HTTP/1.1 `, a 3-digit status and
  a space, a reason up to CRLF, `Name: value` fields, then Content-Length bytes
  of body, or no body at all without Content-Length (no waiting for the close);
- an expected response is checked as HTTPResponseAssertion does
  (assertions/http_response_assertion.go:22-65): status code, reason exactly,
  each expected field present with a value equal ignoring case, the body
  exactly; nothing else (the tester's EnsureNoUnreadData result is ignored,
  send_request_test_case.go:50-52, so extra bytes are not a failure here either).

The error messages are the tester's.
"""
import gzip
import random
import re
import socket
import time
import zlib
from dataclasses import dataclass

# tester-utils random/helpers.go:16-27
WORDS = ["apple", "orange", "banana", "pear", "grape", "pineapple", "mango", "strawberry", "raspberry", "blueberry"]


def random_string(count, joiner):  # random_strings.go:9-17
    return joiner.join(random.choice(WORDS) for _ in range(count))


def random_url_path():  # random_strings.go:24-26
    return random.choice(WORDS)


def random_user_agent():  # random_strings.go:19-30; RandomInt(1, 3) is 1 or 2 (helpers.go:47-50)
    return random.choice(WORDS) + "/" + random_string(random.randint(1, 2), "-")


def random_file_name():  # random_strings.go:32-34
    return random_string(4, "_")


def random_file_content():  # random_strings.go:40-42
    return random_string(8, " ")


class TesterError(AssertionError):
    """A check failed; the message is the tester's."""


def go_quote(value):
    """Go's %q, near enough for messages."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n") + '"'


@dataclass
class Request:
    method: str
    path: str
    headers: list = ()  # [(name, value)]
    body: bytes = b""

    def bytes(self, port):
        """What httputil.DumpRequest writes for the tester's http.NewRequest: the request line,
        Host, the other fields sorted by name (Header.WriteSubset), an empty line, the body."""
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: localhost:{port}"]
        lines += [f"{name}: {value}" for name, value in sorted(self.headers)]
        return ("".join(line + "\r\n" for line in lines) + "\r\n").encode() + self.body


@dataclass
class Expected:
    status: int
    reason: str
    headers: list = None  # [(name, value)]; None: not checked
    body: bytes = None  # None: not checked


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list  # [(name, value)] as received, values trimmed
    body: bytes

    def find_header(self, name):
        """The first field of that name (any case), or "" (http_response.go:215-223)."""
        return next((value for key, value in self.headers if key.lower() == name.lower()), "")


class Incomplete(Exception):
    pass


class Invalid(Exception):
    pass


def go_atoi(text):
    return int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else None


def parse(data):
    """parser/http_response.go:37-213: (response, bytes used), or Incomplete / Invalid."""
    if len(data) < 9:
        raise Incomplete(f"Expected: HTTP-version, Received: {go_quote(data)}")
    if data[:8] != b"HTTP/1.1":
        raise Invalid(f"Expected 'HTTP/1.1', Received: {go_quote(data[:8])}")
    if data[8:9] != b" ":
        raise Invalid("Expected space character after 'HTTP/1.1'")
    if len(data) < 13:
        raise Incomplete("Expected 3-digit status code followed by space, received EOF")
    status = go_atoi(data[9:12].decode("latin-1"))
    if status is None:
        raise Invalid(f"Expected integer status-code, received {go_quote(data[9:12])}")
    if data[12:13] != b" ":
        raise Invalid("Expected space character after 3 digit status code")
    end = data.find(b"\r\n", 13)
    if end < 0:
        raise Incomplete("Expected CRLF after status line")
    reason = data[13:end].decode("latin-1")
    position, headers = end + 2, []
    while True:
        end = data.find(b"\r\n", position)
        if end < 0:
            raise Incomplete("Expected CRLF after all headers" if position == len(data)
                             else "Expected CRLF after header value")
        if end == position:
            position += 2
            break
        colon = data.find(b":", position)
        if colon < 0:
            raise Incomplete("Expected ':' after header key")
        key = data[position:colon]
        if not key or key.endswith(b" "):
            raise Invalid("No whitespace allowed before colon (:)")
        end = data.find(b"\r\n", colon + 1)
        if end < 0:
            raise Incomplete("Expected CRLF after header value")
        value = data[colon + 1:end].replace(b"\r", b" ").replace(b"\n", b" ").replace(b"\0", b" ")
        headers.append((key.decode("latin-1"), value.decode("latin-1").strip()))
        position = end + 2
    response = Response("HTTP/1.1", status, reason, headers, b"")
    length = go_atoi(response.find_header("Content-Length"))  # None: no body (ContentLength() == -1)
    if length is not None and length > 0:
        if len(data) - position < length:
            raise Incomplete(f"Expected content of length {length} bytes, Received {len(data) - position} bytes")
        response.body = data[position:position + length]
        position += length
    return response, position


class Connection:
    """connection/connection.go: one TCP connection; bytes read past a response stay for the next."""

    def __init__(self, server, attempts=50):
        __tracebackhide__ = True
        # newConn (connection.go:156-183): a refused connection is tried again every 100 ms, 50 times.
        for attempt in range(attempts + 1):
            if server.process is not None and server.process.exit_code() is not None:
                raise TesterError("Failed to create connection: your program is not running")
            try:
                self.sock = socket.create_connection((server.host, server.port), timeout=10)
                self.port = server.port
                break
            except OSError as error:
                if attempt == attempts:
                    raise TesterError(f"Failed to create connection: {error}") from None
                time.sleep(0.1)
        self.buffer = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        __tracebackhide__ = True
        try:
            self.sock.sendall(data)
        except OSError as error:
            raise TesterError(f"Failed to send request: {error}") from None

    def _read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return
        except OSError:
            data = b""
        self.buffer += data
        self.eof = not data

    def read_response(self, timeout=2.0):
        """ReadResponseWithTimeout (connection.go:94-139): read until the bytes parse, at most 2 s."""
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        while True:
            try:
                response, used = parse(self.buffer)
                self.buffer = self.buffer[used:]
                return response
            except (Incomplete, Invalid) as error:
                problem = error
            if self.eof or time.monotonic() > deadline:  # the tester waits out the 2 s even after EOF
                raise TesterError(f"Failed to read response: \n{problem} (received {go_quote(self.buffer)})")
            self._read(min(0.01, max(0.001, deadline - time.monotonic())))

    def is_open(self, wait=0.001):
        """IsOpen (connection.go:194-216): a read that times out means open; EOF or an error, closed."""
        if self.eof:
            return False
        self._read(wait)
        return not self.eof


def check(response, expected):
    """HTTPResponseAssertion.Run (assertions/http_response_assertion.go:22-65)."""
    __tracebackhide__ = True
    if response.status != expected.status:
        raise TesterError(f"Expected status code {expected.status}, got {response.status}")
    if response.reason != expected.reason:
        raise TesterError(f"Expected reason to be {go_quote(expected.reason)}, got {go_quote(response.reason)}")
    for name, value in expected.headers or []:
        actual = response.find_header(name)
        if actual == "":
            raise TesterError(f"Expected {go_quote(name)} header to be present")
        if actual.lower() != value.lower():
            raise TesterError(f"Expected {go_quote(name)} header value to be {go_quote(value)}, got {go_quote(actual)}")
    if expected.body is not None:
        if len(response.body) != len(expected.body):
            raise TesterError(f"Expected body of length {len(expected.body)}, got {len(response.body)}")
        if response.body != expected.body:
            raise TesterError(f"Expected body {go_quote(expected.body)}, got {go_quote(response.body)}")


def send_request(server, request, expected):
    """SendRequestTestCase.Run (test_cases/send_request_test_case.go:24-55): a new connection, one request."""
    __tracebackhide__ = True
    with Connection(server) as connection:
        connection.send(request.bytes(server.port))
        response = connection.read_response()
        check(response, expected)
        return response


def send_request_on(connection, request, expected):
    """SendRequestTestCase.RunWithConn (send_request_test_case.go:57-90): on an open connection."""
    __tracebackhide__ = True
    if not connection.is_open():
        raise TesterError("Expected connection to stay open, but it is closed")
    connection.send(request.bytes(connection.port))
    response = connection.read_response()
    check(response, expected)
    return response


OK = (200, "OK")


# http_messages.go: the request/response pairs.
def base_pair():  # :17-44
    return Request("GET", "/"), Expected(*OK)


def echo_pair(content=None):  # :46-84
    content = random_url_path() if content is None else content
    return (Request("GET", f"/echo/{content}"),
            Expected(*OK, [("Content-Type", "text/plain"), ("Content-Length", str(len(content)))], content.encode()))


def user_agent_pair():  # :86-124
    agent = random_user_agent()
    return (Request("GET", "/user-agent", [("User-Agent", agent)]),
            Expected(*OK, [("Content-Type", "text/plain"), ("Content-Length", str(len(agent)))], agent.encode()))


def random_pairs(count):  # :174-200: each one of GET /, /echo/{word}, /user-agent
    return [random.choice([base_pair, echo_pair, user_agent_pair])() for _ in range(count)]


def decode_gzip(data):  # stage_common.go:14-28
    __tracebackhide__ = True
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise TesterError(f"Failed to decode gzip: Failed to decompress data: {error}") from None


def anti_cheat(server):
    """anti_cheat_basic.go:10-38 (run after the stages, tester-utils tester.go:61,80): a GET / by Go's
    http client; any failure to get a response passes, as there; an answer whose version is not
    HTTP/1.1 or that carries Date or Server fails."""
    __tracebackhide__ = True
    data = b""
    try:
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: localhost:{server.port}\r\n"
                         "User-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n".encode())
            deadline = time.monotonic() + 10  # new_http_client.go: Timeout 10 s
            while b"\r\n\r\n" not in data and time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                data += chunk
    except OSError:
        return
    if b"\r\n\r\n" not in data:
        return
    status_line, *lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    proto, _, rest = status_line.partition(" ")
    if not re.fullmatch(r"HTTP/[0-9]\.[0-9]", proto) or not re.match(r"[0-9]{3}( |$)", rest):
        return  # http.ReadResponse fails: the anti-cheat passes
    fields = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            return
        fields.setdefault(name.strip().lower(), value.strip())
    if proto != "HTTP/1.1" or fields.get("date") or fields.get("server"):
        raise TesterError("anti-cheat (ac1) failed")
