"""The request parser, run against both implementations (ids `py` and `c`).

Every case is fed whole, one byte at a time, and followed by a pipelined
second request, as h11's and httptools' suites do.
"""
import random

import pytest

from core.errors import ParseError
from core.events import END_OF_MESSAGE, NEED_DATA
from core.limits import Limits

from parsers import IMPLEMENTATIONS, parser_class

SECOND = b"GET /second HTTP/1.1\r\nHost: b\r\n\r\n"


@pytest.fixture(params=IMPLEMENTATIONS)
def Parser(request):
    return parser_class(request.param)


def summary(event):
    """A comparable form of an event."""
    if event is END_OF_MESSAGE:
        return "EOM"
    if isinstance(event, bytes):
        return event
    return (event.method, event.target, event.version, list(event.headers),
            event.keep_alive, event.content_length, event.chunked)


def parse(Parser, data, split=None, limits=None):
    """Feed data in pieces of `split` bytes; return (events, status or None, parser).

    Body pieces are joined, so the result does not depend on the split.
    """
    parser = Parser(limits) if limits else Parser()
    events = []
    split = split or max(len(data), 1)
    try:
        for i in range(0, max(len(data), 1), split):
            parser.feed(data[i:i + split])
            while (event := parser.next_event()) is not NEED_DATA:
                event = summary(event)
                if isinstance(event, bytes) and events and isinstance(events[-1], bytes):
                    events[-1] += event
                else:
                    events.append(event)
    except ParseError as error:
        return events, error.status, parser
    return events, None, parser


def feedings(data):
    """Whole, one byte at a time, and in pieces of 7 bytes."""
    return [("whole", None), ("bytewise", 1), ("by7", 7)]


# -- well-formed requests ------------------------------------------------------

GOOD = {
    "minimal": (b"GET /10k.bin HTTP/1.1\r\nHost: localhost\r\n\r\n",
                [(b"GET", b"/10k.bin", b"1.1", [(b"Host", b"localhost")], True, 0, False), "EOM"]),
    "ows_trimmed_and_case_kept": (
        b"GET / HTTP/1.1\r\nhOsT:\t x \t\r\nX-Empty:\r\nUser-Agent: a b\r\n\r\n",
        [(b"GET", b"/", b"1.1", [(b"hOsT", b"x"), (b"X-Empty", b""), (b"User-Agent", b"a b")],
          True, 0, False), "EOM"]),
    "content_length_body": (
        b"POST /files/a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
        [(b"POST", b"/files/a", b"1.1", [(b"Host", b"h"), (b"Content-Length", b"5")], True, 5, False),
         b"hello", "EOM"]),
    "identical_content_lengths": (
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
        [(b"POST", b"/", b"1.1", [(b"Host", b"h"), (b"Content-Length", b"2"), (b"Content-Length", b"2")],
          True, 2, False), b"ok", "EOM"]),
    "chunked_with_extension_and_trailer": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\nA\r\n 012345678\r\n0\r\nTrailer: x\r\n\r\n",
        [(b"POST", b"/", b"1.1", [(b"Host", b"h"), (b"Transfer-Encoding", b"chunked")], True, -1, True),
         b"hello 012345678", "EOM"]),
    "chunked_case_insensitive": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        [(b"POST", b"/", b"1.1", [(b"Host", b"h"), (b"Transfer-Encoding", b"CHUNKED")], True, -1, True),
         b"x", "EOM"]),
    "empty_lines_before_request_line": (
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        [(b"GET", b"/", b"1.1", [(b"Host", b"h")], True, 0, False), "EOM"]),
    "http10_closes_by_default": (
        b"GET / HTTP/1.0\r\n\r\n", [(b"GET", b"/", b"1.0", [], False, 0, False), "EOM"]),
    "http10_keep_alive": (
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        [(b"GET", b"/", b"1.0", [(b"Connection", b"Keep-Alive")], True, 0, False), "EOM"]),
    "http11_connection_close": (
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, CLOSE\r\n\r\n",
        [(b"GET", b"/", b"1.1", [(b"Host", b"h"), (b"Connection", b"upgrade, CLOSE")], False, 0, False),
         "EOM"]),
    "absolute_form_target": (
        b"GET http://example.com/a?b=c HTTP/1.1\r\nHost: example.com\r\n\r\n",
        [(b"GET", b"http://example.com/a?b=c", b"1.1", [(b"Host", b"example.com")], True, 0, False),
         "EOM"]),
    "obs_text_in_value": (
        b"GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n",
        [(b"GET", b"/", b"1.1", [(b"Host", b"h"), (b"X", b"caf\xc3\xa9")], True, 0, False), "EOM"]),
    "unusual_token_method": (
        b"M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n",
        [(b"M-SEARCH", b"*", b"1.1", [(b"Host", b"h")], True, 0, False), "EOM"]),
}

SECOND_EVENTS = [(b"GET", b"/second", b"1.1", [(b"Host", b"b")], True, 0, False), "EOM"]


@pytest.mark.parametrize("name", GOOD)
@pytest.mark.parametrize("feeding,split", feedings(None))
def test_good_request_parses_the_same_however_it_is_fed(Parser, name, feeding, split):
    data, expected = GOOD[name]
    events, status, parser = parse(Parser, data + SECOND, split)
    assert status is None
    assert events == expected + SECOND_EVENTS
    assert parser.trailing_data == b""


@pytest.mark.parametrize("version, connection, keep_alive", [
    (b"1.1", [], True), (b"1.1", [b"close"], False), (b"1.1", [b"Close"], False), (b"1.1", [b"keep-alive"], True),
    (b"1.1", [b"closed"], True), (b"1.1", [b"upgrade"], True), (b"1.1", [b"keep-alive, close"], False),
    (b"1.1", [b"keep-alive", b"close"], False),
    (b"1.0", [], False), (b"1.0", [b"keep-alive"], True), (b"1.0", [b"KEEP-ALIVE"], True), (b"1.0", [b"close"], False),
    (b"1.0", [b"keep-alivex"], False), (b"1.0", [b"upgrade,  Keep-Alive "], True), (b"1.0", [b"keep-alive, close"], False),
])
def test_connection_options_decide_persistence(Parser, version, connection, keep_alive):
    # RFC 9112 §9.3; one option alone is compared as it is, a list is split.
    fields = b"".join(b"Connection: " + value + b"\r\n" for value in connection)
    events, status, _ = parse(Parser, b"GET / HTTP/" + version + b"\r\nHost: h\r\n" + fields + b"\r\n")
    assert status is None and events[0][4] is keep_alive


def test_pipelined_bytes_after_a_message_are_left_for_the_next(Parser):
    events, status, parser = parse(Parser, GOOD["content_length_body"][0] + b"GET /nex")
    assert status is None and events[-1] == "EOM"
    assert parser.trailing_data == b"GET /nex"


def test_header_lookup_is_case_insensitive_and_first_wins(Parser):
    parser = Parser()
    parser.feed(b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: one\r\nuser-agent: two\r\n\r\n")
    request = parser.next_event()
    assert request.get(b"USER-AGENT") == b"one"
    assert request.get(b"x-missing", b"dflt") == b"dflt"


@pytest.mark.parametrize("name", [b"Host", b"host", b"HOST", b"hoSt", b"User-Agent", b"user-agent", b"User-agent",
                                  b"Sec-Fetch-Mode", b"Sec-Fetch-Modd", b"X-Unknown", b"x"])
def test_field_names_are_returned_as_sent(Parser, name):
    # The compiled scanner shares one bytes object for each name of a table, but
    # only for a byte-for-byte match: the case a client sent is kept.
    events, status, _ = parse(Parser, b"GET / HTTP/1.0\r\n" + name + b": v\r\n\r\n")
    assert status is None and events[0][3] == [(name, b"v")]


def test_both_parsers_return_the_one_request_class_of_core_request(Parser):
    # One source: the compiled parser's Request is core/request.py compiled as
    # core.request_c, with the same fields and the same repr.
    parser = Parser()
    parser.feed(b"GET /x HTTP/1.0\r\n\r\n")
    request = parser.next_event()
    assert type(request).__module__ in ("core.request", "core.request_c")
    assert type(request).__slots__ == ("method", "target", "version", "headers", "keep_alive",
                                       "content_length", "chunked")
    assert repr(request) == "<Request b'GET' b'/x' HTTP/1.0>"


def test_a_large_body_arrives_complete(Parser):
    body = random.Random(1).randbytes(3 * 1024 * 1024)
    data = b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    events, status, _ = parse(Parser, data, split=65536)
    assert status is None and events[1] == body and events[2] == "EOM"


# -- malformed requests: the exact status --------------------------------------

BAD = {
    # framing: RFC 9112 §6
    "content_length_and_chunked": (400, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
    "differing_content_lengths": (400, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
    "content_length_plus": (400, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n"),
    "content_length_minus": (400, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -3\r\n\r\n"),
    "content_length_underscore": (400, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1_0\r\n\r\n"),
    "content_length_hex": (400, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n"),
    "content_length_inner_space": (400, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 0\r\n\r\n"),
    "content_length_list": (400, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n"),
    "content_length_empty": (400, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n"),
    "content_length_overflow": (400, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n"),
    "content_length_unicode_digit": (400, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \xd9\xa3\r\n\r\n"),
    "chunked_not_final": (400, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
    "chunked_twice": (400, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
    "unknown_coding": (501, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
    "unknown_coding_alone": (501, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: foo\r\n\r\n"),
    "transfer_encoding_in_http10": (400, b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
    "chunk_size_not_hex": (400, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n"),
    "chunk_size_empty": (400, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n"),
    "chunk_size_space": (400, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"),
    "chunk_size_overflow": (400, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 17 + b"\r\n"),
    "chunk_data_without_crlf": (400, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n"),
    # field syntax: RFC 9112 §5
    "space_before_colon": (400, b"GET / HTTP/1.1\r\nHost : h\r\n\r\n"),
    "obs_fold": (400, b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  continued\r\n\r\n"),
    "bare_cr_in_value": (400, b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"),
    "bare_lf_in_value": (400, b"GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n"),
    "bare_lf_line_end": (400, b"GET / HTTP/1.1\nHost: h\n\n"),
    "bare_lf_in_header_section": (400, b"GET / HTTP/1.1\r\nHost: h\n\n"),
    "nul_in_value": (400, b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n"),
    "control_in_value": (400, b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x1bb\r\n\r\n"),
    "non_token_field_name": (400, b"GET / HTTP/1.1\r\nHost: h\r\nX(y): a\r\n\r\n"),
    "empty_field_name": (400, b"GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n"),
    "field_without_colon": (400, b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n"),
    # request line: RFC 9112 §3
    "non_token_method": (400, b"G@T / HTTP/1.1\r\nHost: h\r\n\r\n"),
    "space_in_target": (400, b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"),
    "double_space": (400, b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"),
    "control_in_target": (400, b"GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n"),
    "tab_in_target": (400, b"GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n"),
    "missing_version": (400, b"GET /\r\nHost: h\r\n\r\n"),
    "lowercase_version": (400, b"GET / http/1.1\r\nHost: h\r\n\r\n"),
    "garbage_version": (400, b"GET / HTTP/1.x\r\nHost: h\r\n\r\n"),
    "http2_version": (505, b"GET / HTTP/2.0\r\nHost: h\r\n\r\n"),
    "http12_version": (505, b"GET / HTTP/1.2\r\nHost: h\r\n\r\n"),
    "http09_version": (505, b"GET / HTTP/0.9\r\nHost: h\r\n\r\n"),
    "bare_cr_in_request_line": (400, b"GET /\r HTTP/1.1\r\nHost: h\r\n\r\n"),
    # Host: RFC 9112 §3.2
    "http11_without_host": (400, b"GET / HTTP/1.1\r\nX: y\r\n\r\n"),
    "duplicate_host": (400, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    "duplicate_host_http10": (400, b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n"),
    "host_with_space": (400, b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
    "host_with_slash": (400, b"GET / HTTP/1.1\r\nHost: x/y\r\n\r\n"),
    "host_with_at": (400, b"GET / HTTP/1.1\r\nHost: user@x\r\n\r\n"),
    "host_unclosed_bracket": (400, b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"),
    "host_empty_brackets": (400, b"GET / HTTP/1.1\r\nHost: []\r\n\r\n"),
    "host_after_bracket": (400, b"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"),
    "host_non_ascii": (400, b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n"),
    "host_port_not_digits": (400, b"GET / HTTP/1.1\r\nHost: x:80a\r\n\r\n"),
    "host_two_ports": (400, b"GET / HTTP/1.1\r\nHost: x:80:81\r\n\r\n"),
    "host_http10_invalid": (400, b"GET / HTTP/1.0\r\nHost: a b\r\n\r\n"),
    # RFC 9112 §3.2: no form of request-target has a fragment.
    "fragment_in_target": (400, b"GET /echo/a#frag HTTP/1.1\r\nHost: h\r\n\r\n"),
    "fragment_in_absolute_target": (400, b"GET http://x#/files/a HTTP/1.1\r\nHost: x\r\n\r\n"),
}


@pytest.mark.parametrize("host", [b"localhost", b"localhost:4221", b"127.0.0.1:80", b"[::1]", b"[::1]:8080",
                                  b"[v1.fe80::a+en1]", b"example.com:", b"", b"xn--bcher-kva.example",
                                  b"%65xample.com", b"a-b_c~d!$&'()*+,;=.x"])
def test_every_form_of_host_is_accepted(Parser, host):
    """RFC 3986 §3.2.2: reg-name, IPv4, IP-literal; an empty port; an empty Host (no authority)."""
    events, got, _ = parse(Parser, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", None)
    assert got is None and events[0][3] == [(b"Host", host)], events


@pytest.mark.parametrize("name", BAD)
@pytest.mark.parametrize("feeding,split", feedings(None))
def test_bad_request_gets_its_status(Parser, name, feeding, split):
    status, data = BAD[name]
    events, got, parser = parse(Parser, data + SECOND, split)
    assert got == status
    assert not any(isinstance(e, tuple) and e[1] == b"/second" for e in events)


def request_with(part, text):
    """A request whose method, target, field name or field value is text."""
    method, target, name, value = b"GET", b"/", b"X", b"v"
    if part == "method":
        method = text
    elif part == "target":
        target = b"/" + text
    elif part == "name":
        name = text
    else:
        value = text
    return method + b" " + target + b" HTTP/1.1\r\nHost: h\r\n" + name + b": " + value + b"\r\n\r\n"


# A byte outside the class of each part (RFC 9110 §5.6.2 tchar, RFC 9112 §3.2, RFC 9110 §5.5).
OUTSIDE = {"method": b"@", "target": b"\x7f", "name": b"@", "value": b"\x7f"}


@pytest.mark.parametrize("part", OUTSIDE)
@pytest.mark.parametrize("length", range(1, 26))
def test_a_byte_outside_its_class_is_refused_wherever_it_stands(Parser, part, length):
    # The compiled scanner looks up eight bytes at a time, and the last ones
    # in an overlapping block: every length and every position is tried.
    assert parse(Parser, request_with(part, b"a" * length))[1] is None
    for at in range(length):
        text = b"a" * at + OUTSIDE[part] + b"a" * (length - at - 1)
        assert parse(Parser, request_with(part, text))[1] == 400, (part, text)


def test_after_an_error_the_parser_keeps_refusing(Parser):
    parser = Parser()
    parser.feed(BAD["space_before_colon"][1])
    with pytest.raises(ParseError) as first:
        parser.next_event()
    parser.feed(SECOND)
    with pytest.raises(ParseError) as again:
        parser.next_event()
    assert again.value.status == first.value.status == 400
    assert first.value.close


def test_bare_lf_is_refused_before_the_head_is_complete(Parser):
    parser = Parser()
    parser.feed(b"GET / HTTP/1.1\n")
    with pytest.raises(ParseError) as error:
        parser.next_event()
    assert error.value.status == 400


# -- limits --------------------------------------------------------------------

SMALL = Limits(max_request_line=64, max_header_bytes=128, max_header_count=4,
               max_body_bytes=10, max_chunk_line=16)


def request_line_of(length):
    prefix, suffix = b"GET /", b" HTTP/1.1"
    return prefix + b"a" * (length - len(prefix) - len(suffix)) + suffix


def header_section_of(size):
    """Field lines plus the final CRLF, exactly size bytes."""
    host = b"Host: h\r\n"
    filler = b"X: " + b"v" * (size - len(host) - 2 - 5) + b"\r\n"
    return host + filler + b"\r\n"


LIMIT_CASES = {
    "request_line_at_limit": (None, request_line_of(64) + b"\r\nHost: h\r\n\r\n"),
    "request_line_over_limit": (414, request_line_of(65) + b"\r\nHost: h\r\n\r\n"),
    "request_line_over_limit_unterminated": (414, request_line_of(66)),
    "header_section_at_limit": (None, b"GET / HTTP/1.1\r\n" + header_section_of(128)),
    "header_section_over_limit": (431, b"GET / HTTP/1.1\r\n" + header_section_of(129)),
    "header_section_over_limit_unterminated": (431, b"GET / HTTP/1.1\r\n" + header_section_of(200)[:150]),
    "header_count_at_limit": (None, b"GET / HTTP/1.1\r\nHost: h\r\n" + b"A: 1\r\n" * 3 + b"\r\n"),
    "header_count_over_limit": (431, b"GET / HTTP/1.1\r\nHost: h\r\n" + b"A: 1\r\n" * 4 + b"\r\n"),
    "body_at_limit": (None, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"),
    "body_over_limit": (413, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"),
    "chunked_body_at_limit": (None, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    b"5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n"),
    "chunked_body_over_limit": (413, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     b"5\r\n01234\r\n6\r\n"),
    "chunk_line_over_limit": (400, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"1;" + b"e" * 20),
    "trailers_over_limit": (431, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 b"0\r\nT: " + b"t" * 200 + b"\r\n\r\n"),
}


@pytest.mark.parametrize("name", LIMIT_CASES)
@pytest.mark.parametrize("feeding,split", feedings(None))
def test_limits_are_enforced_at_their_exact_boundary(Parser, name, feeding, split):
    status, data = LIMIT_CASES[name]
    events, got, _ = parse(Parser, data, split, limits=SMALL)
    assert got == status
    if status is None:
        assert events[-1] == "EOM"


def test_over_limit_message_names_the_limit_and_echoes_little(Parser):
    events, status, parser = parse(Parser, b"GET /" + b"a" * 20000, limits=SMALL)
    assert status == 414
    with pytest.raises(ParseError) as error:
        parser.next_event()
    assert "max_request_line" in error.value.message
    assert len(error.value.message) < 200


def test_oversized_content_length_is_refused_before_any_body_arrives(Parser):
    parser = Parser(SMALL)
    parser.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n")
    with pytest.raises(ParseError) as error:
        parser.next_event()
    assert error.value.status == 413


# -- both implementations agree ------------------------------------------------

def outcome(name, data, splits):
    """Events, then status and message, of one implementation fed data at the given cut points."""
    parser = parser_class(name)(SMALL_DIFF)
    events = []
    try:
        last = 0
        for cut in splits + [len(data)]:
            parser.feed(data[last:cut])
            last = cut
            while (event := parser.next_event()) is not NEED_DATA:
                events.append(summary(event))
    except ParseError as error:
        return events, (error.status, error.message)
    return events, None


SMALL_DIFF = Limits(max_request_line=200, max_header_bytes=300, max_header_count=8,
                    max_body_bytes=100, max_chunk_line=20)


def corpus():
    pieces = [data for data, _ in GOOD.values()] + [data for _, data in BAD.values()]
    pieces += [data for _, data in LIMIT_CASES.values()]
    return pieces


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if not data:
            break
        i = rng.randrange(len(data))
        if choice < 0.3:
            data[i] = rng.choice(b"\r\n \t:;,\x00\x7f\xffaZ09-")
        elif choice < 0.5:
            del data[i]
        elif choice < 0.7:
            data.insert(i, rng.randrange(256))
        elif choice < 0.85:
            data[i:i] = rng.choice([b"\r\n", b"\r\n\r\n", b"Content-Length: 3\r\n",
                                    b"Transfer-Encoding: chunked\r\n", b"Host: x\r\n"])
        else:
            del data[i:]
    return bytes(data)


@pytest.mark.skipif(len(IMPLEMENTATIONS) < 2, reason="needs the compiled parser (CORE_PURE_PYTHON=1)")
def test_both_implementations_agree_on_random_splits_and_garbage():
    rng = random.Random(20261126)
    base = corpus()
    for round_ in range(3000):
        kind = rng.random()
        if kind < 0.4:
            data = rng.choice(base) + rng.choice(base)
        elif kind < 0.8:
            data = mutate(rng, rng.choice(base))
        else:
            data = rng.randbytes(rng.randrange(1, 300))
        splits = sorted(rng.sample(range(len(data) + 1), min(len(data), rng.randrange(0, 6))))
        assert outcome("py", data, splits) == outcome("c", data, splits), (round_, data, splits)


def test_fuzz_only_yields_requests_need_data_or_parse_errors(Parser):
    rng = random.Random(7)
    base = corpus()
    for _ in range(1500):
        data = mutate(rng, rng.choice(base)) if rng.random() < 0.7 else rng.randbytes(rng.randrange(300))
        parser = Parser(SMALL_DIFF)
        try:
            for i in range(0, len(data), rng.randrange(1, 40)):
                parser.feed(data[i:i + 40])
                for _ in range(len(data) + 5):
                    event = parser.next_event()
                    if event is NEED_DATA:
                        break
                    assert event is END_OF_MESSAGE or isinstance(event, bytes) or hasattr(event, "method")
                else:
                    pytest.fail(f"parser did not settle on {data!r}")
        except ParseError as error:
            assert error.status in (400, 413, 414, 431, 501, 505)
