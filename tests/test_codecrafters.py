"""The official CodeCrafters tester's checks, stage by stage, exactly: `-m codecrafters`.

One test per CodeCrafters stage (plus its anti-cheat check), marked
`codecrafters(slug, name)` and listed among the servers of the course stage that
first does it, so `--stage` takes them cumulatively as the tester does.  Each
sends what github.com/codecrafters-io/http-server-tester (a13e959) sends and
asserts what it asserts, no more: see tests/cctester.py and the file:line in
each docstring.  Against your server (`--server-cmd`) each gets a process of its
own, as the tester starts one per stage.  Everything else the course checks is
marked `course`.
"""
import socket
import time

import pytest

import cctester as cc
from servers import servers_from, stages_from


@pytest.mark.codecrafters("at4", "Bind to a port")
@pytest.mark.servers(*servers_from("s01_bind"))
def test_at4_bind_to_a_port(server):
    """internal/stage_1.go:11-51: connect, retrying once a second for about 16 s; fail early
    if the program has exited.  Nothing is sent."""
    deadline_attempts = 16 * 10  # 16 retries of 1 s, in steps of 100 ms
    for attempt in range(deadline_attempts + 1):
        try:
            socket.create_connection((server.host, server.port), timeout=10).close()
            return
        except OSError as error:
            if server.process is not None and server.process.exit_code() is not None:
                raise cc.TesterError("Looks like your program has terminated. "
                                     "A HTTP server is expected to be a long-running process.") from None
            if attempt == deadline_attempts:
                raise cc.TesterError(f"All retries failed. {error}") from None
            time.sleep(0.1)


@pytest.mark.codecrafters("ia4", "Respond with 200")
@pytest.mark.servers(*servers_from("s02_status"))
def test_ia4_respond_with_200(server):
    """internal/stage_2.go:9-29, http_messages.go:17-44: GET / gets status 200, reason "OK"."""
    cc.send_request(server, *cc.base_pair())


@pytest.mark.codecrafters("ih0", "Extract URL path")
@pytest.mark.servers(*servers_from("s03_paths"))
def test_ih0_extract_url_path(server):
    """internal/stage_3.go:12-35: GET /{random word} gets 404, reason "Not Found".
    (GET / getting 200 is ia4's check, which runs at this stage too.)"""
    cc.send_request(server, cc.Request("GET", f"/{cc.random_url_path()}"), cc.Expected(404, "Not Found"))


@pytest.mark.codecrafters("cn2", "Respond with body")
@pytest.mark.servers(*servers_from("s04_headers"))
def test_cn2_respond_with_body(server):
    """internal/stage_4.go:9-28, http_messages.go:46-84: GET /echo/{word} gets 200 OK with
    Content-Type text/plain, Content-Length the word's length, and the word as body."""
    cc.send_request(server, *cc.echo_pair())


@pytest.mark.codecrafters("fs3", "Read header")
@pytest.mark.servers(*servers_from("s04_headers"))
def test_fs3_read_header(server):
    """internal/stage_5.go:9-28, http_messages.go:86-124: GET /user-agent with `User-Agent: word/word`
    gets 200 OK, Content-Type text/plain, Content-Length, and the agent as body."""
    cc.send_request(server, *cc.user_agent_pair())


@pytest.mark.codecrafters("ej5", "Concurrent connections")
@pytest.mark.servers(*servers_from("s05_concurrency"))
def test_ej5_concurrent_connections(server):
    """internal/stage_6.go:11-73, utils.go:74-88: open 2 connections (RandomInt(2, 3) is 2), send
    GET / on the last one first, expect 200 OK, close each; then 2 new ones, in order."""
    count = 2
    connections = [cc.Connection(server) for _ in range(count)]
    for connection in reversed(connections):
        cc.send_request_on(connection, *cc.base_pair())
        connection.close()
    connections = [cc.Connection(server) for _ in range(count)]
    for connection in connections:
        cc.send_request_on(connection, *cc.base_pair())
        connection.close()


@pytest.mark.codecrafters("ap6", "Get a file")
@pytest.mark.servers(*servers_from("s06_files"))
def test_ap6_get_a_file(server):
    """internal/stage_7.go:13-54, http_messages.go:126-172 (server started with --directory):
    a file written to the directory is answered 200 OK with Content-Type application/octet-stream,
    its Content-Length and its bytes; GET /files/non-existent{name} gets 404 Not Found."""
    name, content = cc.random_file_name(), cc.random_file_content()
    (server.directory / name).write_text(content)
    cc.send_request(server, cc.Request("GET", f"/files/{name}"),
                    cc.Expected(*cc.OK, [("Content-Type", "application/octet-stream"),
                                         ("Content-Length", str(len(content)))], content.encode()))
    missing = "non-existent" + cc.random_file_name()
    cc.send_request(server, cc.Request("GET", f"/files/{missing}"), cc.Expected(404, "Not Found"))


@pytest.mark.codecrafters("qv8", "Post a file")
@pytest.mark.servers(*servers_from("s07_post"))
def test_qv8_post_a_file(server):
    """internal/stage_8.go:15-53, files.go:31-44: POST /files/{name} with Content-Length and
    Content-Type application/octet-stream gets 201 Created, and the file holds the body."""
    name, content = cc.random_file_name(), cc.random_file_content()
    headers = [("Content-Length", str(len(content))), ("Content-Type", "application/octet-stream")]
    cc.send_request(server, cc.Request("POST", f"/files/{name}", headers, content.encode()),
                    cc.Expected(201, "Created"))
    try:
        on_disk = (server.directory / name).read_text()
    except OSError as error:
        raise cc.TesterError(f"Error reading file: {error}") from None
    if on_disk != content:
        raise cc.TesterError(f"File content does not match: expected {cc.go_quote(content)}, "
                             f"received {cc.go_quote(on_disk)}")


def encoding_case(server, content, accept_encoding, gzip_expected):
    url = f"/echo/{content}"
    if gzip_expected:
        expected = cc.Expected(*cc.OK, [("Content-Encoding", "gzip")])
    else:
        expected = cc.Expected(*cc.OK)
    response = cc.send_request(server, cc.Request("GET", url, [("Accept-Encoding", accept_encoding)]), expected)
    if not gzip_expected and response.find_header("Content-Encoding") != "":
        raise cc.TesterError("Content-Encoding header should not be present")
    return response


@pytest.mark.codecrafters("df4", "Content-Encoding header")
@pytest.mark.servers(*servers_from("s08_gzip"))
def test_df4_content_encoding_header(server):
    """internal/stage_9.go:13-71: GET /echo/{word} with `Accept-Encoding: gzip` gets 200 OK with
    Content-Encoding gzip; with `Accept-Encoding: invalid-encoding`, 200 OK without Content-Encoding."""
    content = cc.random_url_path()
    encoding_case(server, content, "gzip", True)
    encoding_case(server, content, "invalid-encoding", False)


@pytest.mark.codecrafters("ij8", "Multiple compression schemes")
@pytest.mark.servers(*servers_from("s08_gzip"))
def test_ij8_multiple_compression_schemes(server):
    """internal/stage_10.go:13-71: `encoding-1, gzip, encoding-2` gets Content-Encoding gzip;
    `encoding-1, encoding-2` gets 200 OK without Content-Encoding."""
    content = cc.random_url_path()
    encoding_case(server, content, "encoding-1, gzip, encoding-2", True)
    encoding_case(server, content, "encoding-1, encoding-2", False)


@pytest.mark.codecrafters("cr8", "Gzip compression")
@pytest.mark.servers(*servers_from("s08_gzip"))
def test_cr8_gzip_compression(server):
    """internal/stage_11.go:13-65: with `Accept-Encoding: gzip`, 200 OK, Content-Encoding gzip,
    a Content-Length equal to the body's length, and a body that gunzips to the word."""
    content = cc.random_url_path()
    response = encoding_case(server, content, "gzip", True)
    length = response.find_header("Content-Length")
    if length == "":
        raise cc.TesterError('Expected "Content-Length" header to be present')
    if length != str(len(response.body)):
        raise cc.TesterError(f"Content-Length header ({length} bytes) does not match the length of the body "
                             f"({len(response.body)} bytes)")
    decoded = cc.decode_gzip(response.body)
    if decoded != content.encode():
        raise cc.TesterError(f"Expected {cc.go_quote(content)}, got {cc.go_quote(decoded)}")


@pytest.mark.codecrafters("ag9", "Persistent connections")
@pytest.mark.servers(*servers_from("s09_keepalive"))
def test_ag9_persistent_connections(server):
    """internal/stage_12.go:12-60, http_messages.go:174-200: two requests, each one of GET /,
    /echo/{word} or /user-agent, one after the other on one connection, which must stay open."""
    with cc.Connection(server) as connection:
        for pair in cc.random_pairs(2):
            cc.send_request_on(connection, *pair)


@pytest.mark.codecrafters("ul1", "Concurrent persistent connections")
@pytest.mark.servers(*servers_from("s09_keepalive"))
def test_ul1_concurrent_persistent_connections(server):
    """internal/stage_13.go:14-75: 2 connections (RandomInt(2, 3)), one request each, last
    connection first; then the same requests again on the same connections, in order."""
    pairs = cc.random_pairs(2)
    connections = [cc.Connection(server) for _ in pairs]
    try:
        for connection, pair in reversed(list(zip(connections, pairs))):
            cc.send_request_on(connection, *pair)
        for connection, pair in zip(connections, pairs):
            cc.send_request_on(connection, *pair)
    finally:
        for connection in connections:
            connection.close()


@pytest.mark.codecrafters("kh7", "Connection closure")
@pytest.mark.servers(*servers_from("s09_keepalive"))
def test_kh7_connection_closure(server):
    """internal/stage_14.go:14-71: two requests on one connection, the last with
    `Connection: close`, whose response must carry `Connection: close`; then the server must
    have closed the connection (the tester looks once, 1 ms; here for up to 200 ms)."""
    pairs = cc.random_pairs(2)
    last_request, last_expected = pairs[-1]
    last_request.headers = list(last_request.headers) + [("Connection", "close")]
    last_expected.headers = (last_expected.headers or []) + [("Connection", "close")]
    with cc.Connection(server) as connection:
        for pair in pairs:
            cc.send_request_on(connection, *pair)
        if connection.is_open(wait=0.2):
            raise cc.TesterError("connection is still open")


# Not a stage: the tester runs it after the stages of every run.  core sends Date and Server.
@pytest.mark.codecrafters("ac1", "anti-cheat")
@pytest.mark.servers(*stages_from("s01_bind"))
def test_ac1_anti_cheat(server):
    """internal/anti_cheat_basic.go:10-38: GET / by Go's http client; a response that is not
    HTTP/1.1 or carries a Date or Server field fails; no response at all passes."""
    cc.anti_cheat(server)
