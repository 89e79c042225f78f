"""How core answers files, as nginx does: HEAD, validators, conditional requests, ranges, gzip.

RFC 9110 §8.8 (validators), §13 (preconditions), §14 (ranges), §12.5.3
(Accept-Encoding).  Run against both event loops: the compiled loop answers
plain GETs of files from a cached head and must give the same fields.
"""
import gzip
import os
import random
from email.utils import formatdate

import pytest

from core.conditional import UNSATISFIABLE, byte_range, entity_tags, http_date, parse_http_date
from rawhttp import Client, build_request, random_text, read_reply

pytestmark = pytest.mark.servers("core", "core-py")

MiB = 1024 * 1024
EARLY = "Sun, 06 Nov 1994 08:49:37 GMT"
LATE = "Fri, 01 Jan 2100 00:00:00 GMT"




def ask(server, method, target, headers=()):
    """method target on a fresh connection, then /echo on the same one: nothing may be left over."""
    with Client(server) as client:
        client.send(build_request(method, target, headers) + build_request("GET", "/echo/next"))
        response = read_reply(client, method)
        after = read_reply(client)
        assert (after.status, after.body) == (200, b"next"), "the connection did not stay usable"
        return response


def make(server, content, name=None):
    name = name or random_text() + ".bin"
    path = server.directory / name
    path.write_bytes(content)
    return name, path


def etag_of(path):
    info = os.stat(path)
    return '"%x-%x"' % (info.st_mtime_ns, info.st_size)


def last_modified_of(path):
    return formatdate(os.stat(path).st_mtime_ns // 10**9, usegmt=True)


def without_date(headers):
    return {name: value for name, value in headers.items() if name != "date"}


# -- the rules on their own (no server) -------------------------------------------------

@pytest.mark.parametrize("value, seconds", [
    (b"Sun, 06 Nov 1994 08:49:37 GMT", 784111777),
    (b"Sunday, 06-Nov-94 08:49:37 GMT", 784111777),
    (b"Sun Nov  6 08:49:37 1994", 784111777),
    (b"Sun, 06 Nov 1994 08:49:37 +0100", None),      # HTTP-dates are GMT only
    (b"Sun, 32 Nov 1994 08:49:37 GMT", None),
    (b"Sun, 06 Nov 1994 24:00:00 GMT", None),
    (b"sun, 06 nov 1994 08:49:37 gmt", None),        # names are case-sensitive (§5.6.7)
    (b"Thu, 29 Feb 2024 00:00:00 GMT", 1709164800),    # a leap day
    (b"Thu, 29 Feb 2100 00:00:00 GMT", None),          # 2100 is not a leap year
    (b"Tue, 29 Feb 2000 00:00:00 GMT", 951782400),     # 2000 is
    (b"Fri, 31 Dec 9999 23:59:59 GMT", 253402300799),
    (b"Mon, 01 Jan 0001 00:00:00 GMT", -62135596800),
    (b"Sat, 01 Jan 0000 00:00:00 GMT", None),
    (b"Wed, 31 Apr 2024 00:00:00 GMT", None),
    (b"Sun, 06 Nov 1994 08:49:60 GMT", 784111799),     # a leap second counts as :59
    (b"784111777", None),
    (b"", None),
])
def test_http_dates_in_all_three_formats_and_nothing_else(value, seconds):
    assert parse_http_date(value) == seconds


def test_http_dates_we_send_are_imf_fixdates_that_read_back_the_same():
    days = [0, 784111777, 951782400, 1709164800, 253402300799]
    days += [random.Random(seed).randrange(253402300800) for seed in range(2000)]
    for seconds in days:
        assert http_date(seconds) == formatdate(seconds, usegmt=True).encode()
        assert parse_http_date(http_date(seconds)) == seconds


def test_entity_tag_lists_keep_commas_inside_tags_and_skip_junk():
    assert entity_tags(b'"a,b", W/"c" ,, junk, "d"') == [b'"a,b"', b'W/"c"', b'"d"']
    assert entity_tags(b" * ") is None


@pytest.mark.parametrize("value, size, expected", [
    (b"bytes=0-0", 1, (0, 1)), (b"bytes=-1", 1, (0, 1)), (b"bytes=0-", 0, UNSATISFIABLE),
    (b"bytes=-1", 0, UNSATISFIABLE), (b"bytes=1-", 1, UNSATISFIABLE), (b"bytes=1-0", 5, None),
    (b"bytes=0-1,2-3", 5, None), (b"bytes=1-2", 5, (1, 2)), (b"bytes = 1-2", 5, None),
])
def test_byte_range_values(value, size, expected):
    assert byte_range(value, size) == expected


# -- HEAD ------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["/", "/echo/abc", "/user-agent", "/files/{name}", "/files/missing", "/nowhere"])
@pytest.mark.parametrize("accept", [None, "gzip"])
def test_head_gives_the_get_status_and_fields_without_a_body(server, target, accept):
    name, _ = make(server, b"head me " * 100)
    target = target.format(name=name)
    headers = [("User-Agent", "agent/1")] + ([("Accept-Encoding", accept)] if accept else [])
    get = ask(server, "GET", target, headers)
    head = ask(server, "HEAD", target, headers)
    assert head.status == get.status and head.body == b""
    assert without_date(head.headers) == without_date(get.headers)
    assert int(head.headers["content-length"]) == len(get.body)


# -- validators --------------------------------------------------------------------------

def test_a_file_carries_etag_last_modified_accept_ranges_and_vary(server):
    name, path = make(server, b"validated")
    response = ask(server, "GET", f"/files/{name}")
    assert response.status == 200 and response.body == b"validated"
    assert response.headers["etag"] == etag_of(path)
    assert response.headers["last-modified"] == last_modified_of(path)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["content-type"] == "application/octet-stream"


def test_the_cached_head_matches_the_handlers_head(server):
    """The compiled loop's hot path (no conditional fields) and app.handle give the same fields."""
    name, _ = make(server, b"same fields")
    plain = ask(server, "GET", f"/files/{name}")
    handled = ask(server, "GET", f"/files/{name}", [("Accept-Encoding", "identity")])
    with Client(server) as client:
        client.send(build_request("GET", f"/files/{name}", [("Connection", "close")]))
        closing = read_reply(client)
    assert without_date(plain.headers) == without_date(handled.headers)
    assert without_date(closing.headers) == {**without_date(plain.headers), "connection": "close"}


def test_a_changed_file_gets_a_new_etag(server):
    name, path = make(server, b"version 1")
    first = ask(server, "GET", f"/files/{name}").headers["etag"]
    path.write_bytes(b"version 2")                     # same size
    os.utime(path, ns=(os.stat(path).st_mtime_ns + 1000,) * 2)
    response = ask(server, "GET", f"/files/{name}", [("If-None-Match", first)])
    assert response.status == 200 and response.body == b"version 2"
    assert response.headers["etag"] == etag_of(path) != first


# -- If-None-Match and If-Modified-Since --------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("form", ["exact", "weak", "list", "star"])
def test_if_none_match_gets_304_with_validators_and_no_body(server, method, form):
    name, path = make(server, b"not modified")
    tag = etag_of(path)
    value = {"exact": tag, "weak": "W/" + tag, "list": f'"other", {tag} , "x"', "star": "*"}[form]
    with Client(server) as client:
        client.send(build_request(method, f"/files/{name}", [("If-None-Match", value)])
                    + build_request("GET", "/echo/after"))
        response = read_reply(client, method)
        assert response.status == 304
        assert "content-length" not in response.headers and "transfer-encoding" not in response.headers
        assert response.headers["etag"] == tag and response.headers["last-modified"] == last_modified_of(path)
        assert response.headers["vary"] == "Accept-Encoding"
        after = read_reply(client)           # no body bytes came between the two
        assert (after.status, after.body) == (200, b"after")


def test_if_none_match_that_differs_gets_the_file(server):
    name, _ = make(server, b"changed")
    response = ask(server, "GET", f"/files/{name}", [("If-None-Match", '"other", W/"x"')])
    assert response.status == 200 and response.body == b"changed"


@pytest.mark.parametrize("date, status", [("modified", 304), (LATE, 304), (EARLY, 200), ("yesterday", 200),
                                          ("Sun, 32 Nov 1994 08:49:37 GMT", 200)])
def test_if_modified_since(server, date, status):
    name, path = make(server, b"dated")
    date = last_modified_of(path) if date == "modified" else date
    assert ask(server, "GET", f"/files/{name}", [("If-Modified-Since", date)]).status == status


def test_if_modified_since_accepts_the_obsolete_date_formats(server):
    name, path = make(server, b"old formats")
    os.utime(path, (784111777, 784111777))             # Sun, 06 Nov 1994 08:49:37 GMT
    for date in ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"]:
        assert ask(server, "GET", f"/files/{name}", [("If-Modified-Since", date)]).status == 304


def test_if_none_match_wins_over_if_modified_since(server):
    name, path = make(server, b"precedence")
    mismatch = ask(server, "GET", f"/files/{name}", [("If-None-Match", '"other"'), ("If-Modified-Since", LATE)])
    assert mismatch.status == 200
    match = ask(server, "GET", f"/files/{name}", [("If-None-Match", etag_of(path)), ("If-Modified-Since", EARLY)])
    assert match.status == 304


def test_failing_if_match_on_get_gets_412(server):
    name, path = make(server, b"if-match")
    assert ask(server, "GET", f"/files/{name}", [("If-Match", '"other"')]).status == 412
    assert ask(server, "GET", f"/files/{name}", [("If-Match", etag_of(path))]).status == 200
    assert ask(server, "GET", f"/files/{name}", [("If-Unmodified-Since", EARLY)]).status == 412


# -- ranges --------------------------------------------------------------------------------

CONTENT = bytes(range(100))


@pytest.mark.parametrize("spec, status, part", [
    ("bytes=0-9", 206, (0, 10)),
    ("bytes=90-", 206, (90, 100)),
    ("bytes=-5", 206, (95, 100)),
    ("bytes=99-99", 206, (99, 100)),
    ("bytes=95-1000", 206, (95, 100)),              # a last position past the end is cut to it
    ("bytes=-1000", 206, (0, 100)),                 # a suffix longer than the file is all of it
    ("BYTES=3-4, ", 206, (3, 5)),                   # unit case-insensitive, empty list elements ignored
    ("bytes=100-", 416, None),
    ("bytes=100-200", 416, None),
    ("bytes=-0", 416, None),
    ("bytes=5-3", 200, None),                       # invalid: ignored
    ("bytes=abc", 200, None),
    ("bytes=-", 200, None),
    ("bytes=", 200, None),
    ("bytes 0-1", 200, None),
    ("items=0-1", 200, None),
    ("bytes=0-1,5-6", 200, None),                   # several ranges: the whole file
    ("bytes=0-1,200-300", 200, None),
    ("bytes=99999999999999999999999-", 416, None),  # beyond any file, not an overflow
])
def test_a_single_byte_range(server, spec, status, part):
    name, _ = make(server, CONTENT)
    response = ask(server, "GET", f"/files/{name}", [("Range", spec)])
    assert response.status == status
    if status == 206:
        start, end = part
        assert response.body == CONTENT[start:end]
        assert response.headers["content-range"] == f"bytes {start}-{end - 1}/100"
        assert response.headers["accept-ranges"] == "bytes" and "etag" in response.headers
    elif status == 416:
        assert response.headers["content-range"] == "bytes */100"
    else:
        assert response.body == CONTENT and "content-range" not in response.headers


@pytest.mark.parametrize("spec", ["bytes=0-", "bytes=0-0", "bytes=-1"])
def test_any_range_of_an_empty_file_gets_416(server, spec):
    name, _ = make(server, b"")
    response = ask(server, "GET", f"/files/{name}", [("Range", spec)])
    assert response.status == 416 and response.headers["content-range"] == "bytes */0"


def test_a_range_is_sent_from_its_offset_in_a_large_file(server):
    payload = os.urandom(3 * MiB)
    name, _ = make(server, payload)
    response = ask(server, "GET", f"/files/{name}", [("Range", f"bytes={MiB + 7}-{2 * MiB}")])
    assert response.status == 206 and response.body == payload[MiB + 7:2 * MiB + 1]


def test_head_ignores_range(server):
    """RFC 9110 §14.2: Range is defined for GET only, so HEAD answers as for a plain GET."""
    name, _ = make(server, CONTENT)
    response = ask(server, "HEAD", f"/files/{name}", [("Range", "bytes=0-9")])
    assert response.status == 200 and response.headers["content-length"] == "100"
    assert "content-range" not in response.headers


@pytest.mark.parametrize("validator, status", [
    ("etag", 206), ("date", 206), ("weak", 200), ("other etag", 200), ("other date", 200),
])
def test_if_range(server, validator, status):
    name, path = make(server, CONTENT)
    value = {"etag": etag_of(path), "date": last_modified_of(path), "weak": "W/" + etag_of(path),
             "other etag": '"0-64"', "other date": EARLY}[validator]
    response = ask(server, "GET", f"/files/{name}", [("Range", "bytes=10-19"), ("If-Range", value)])
    assert response.status == status
    assert response.body == (CONTENT[10:20] if status == 206 else CONTENT)


def test_if_range_with_an_old_etag_gets_the_whole_new_file(server):
    name, path = make(server, CONTENT)
    old = etag_of(path)
    path.write_bytes(CONTENT[::-1])
    os.utime(path, ns=(os.stat(path).st_mtime_ns + 1000,) * 2)
    response = ask(server, "GET", f"/files/{name}", [("Range", "bytes=0-9"), ("If-Range", old)])
    assert response.status == 200 and response.body == CONTENT[::-1]


def test_field_names_are_case_insensitive(server):
    """A conditional field in any case must leave the compiled loop's hot path."""
    name, path = make(server, CONTENT)
    assert ask(server, "GET", f"/files/{name}", [("rAnGe", "bytes=0-0")]).status == 206
    assert ask(server, "GET", f"/files/{name}", [("IF-NONE-MATCH", etag_of(path))]).status == 304


# -- gzip ------------------------------------------------------------------------------------

TEXT = b"the quick brown fox jumps over the lazy dog\n" * 200


@pytest.mark.parametrize("accept, gzipped", [
    ("gzip", True), ("br, GZIP;q=0.5", True), ("*", True), ("gzip;q=0", False), ("identity", False), (None, False),
])
def test_a_gz_sibling_is_sent_only_when_gzip_is_accepted(server, accept, gzipped):
    name, path = make(server, TEXT)
    sibling = path.with_name(name + ".gz")
    sibling.write_bytes(gzip.compress(TEXT, mtime=0))
    response = ask(server, "GET", f"/files/{name}", [("Accept-Encoding", accept)] if accept else [])
    assert response.status == 200 and response.headers["vary"] == "Accept-Encoding"
    assert response.headers["content-type"] == "application/octet-stream"
    if gzipped:
        assert response.headers["content-encoding"] == "gzip"
        assert response.body == sibling.read_bytes()
        assert response.headers["etag"] == etag_of(sibling)
        assert response.headers["last-modified"] == last_modified_of(sibling)
        assert "accept-ranges" not in response.headers
    else:
        assert "content-encoding" not in response.headers
        assert response.body == TEXT and response.headers["etag"] == etag_of(path)


def test_a_gz_sibling_answers_its_own_if_none_match(server):
    name, path = make(server, TEXT)
    sibling = path.with_name(name + ".gz")
    sibling.write_bytes(gzip.compress(TEXT, mtime=0))
    accept = ("Accept-Encoding", "gzip")
    assert ask(server, "GET", f"/files/{name}", [accept, ("If-None-Match", etag_of(sibling))]).status == 304
    assert ask(server, "GET", f"/files/{name}", [accept, ("If-None-Match", etag_of(path))]).status == 200


def test_a_gz_sibling_linking_outside_is_not_served(server):
    outside = server.directory.parent / f"{random_text()}.gz"
    outside.write_bytes(gzip.compress(b"secret"))
    name, path = make(server, TEXT)
    path.with_name(name + ".gz").symlink_to(outside)
    response = ask(server, "GET", f"/files/{name}", [("Accept-Encoding", "gzip")])
    assert gzip.decompress(response.body) == TEXT


def test_a_small_file_is_compressed_and_varies(server):
    name, path = make(server, TEXT)
    response = ask(server, "GET", f"/files/{name}", [("Accept-Encoding", "gzip")])
    assert response.headers["content-encoding"] == "gzip" and response.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(response.body) == TEXT and len(response.body) < len(TEXT)
    tag = response.headers["etag"]
    assert tag.startswith('W/"') and tag != etag_of(path)
    again = ask(server, "GET", f"/files/{name}", [("Accept-Encoding", "gzip"), ("If-None-Match", tag)])
    assert again.status == 304 and again.headers["etag"] == tag


def test_a_changed_file_is_compressed_afresh(server):
    name, path = make(server, TEXT)
    first = ask(server, "GET", f"/files/{name}", [("Accept-Encoding", "gzip")])
    changed = TEXT.replace(b"fox", b"cat")              # same size
    path.write_bytes(changed)
    os.utime(path, ns=(os.stat(path).st_mtime_ns + 1000,) * 2)
    second = ask(server, "GET", f"/files/{name}", [("Accept-Encoding", "gzip")])
    assert gzip.decompress(second.body) == changed and second.headers["etag"] != first.headers["etag"]


def test_a_range_request_gets_the_identity_file(server):
    name, _ = make(server, TEXT)
    response = ask(server, "GET", f"/files/{name}", [("Accept-Encoding", "gzip"), ("Range", "bytes=4-8")])
    assert response.status == 206 and response.body == TEXT[4:9]
    assert "content-encoding" not in response.headers


def test_files_over_the_gzip_limit_are_sent_as_they_are(server):
    name, _ = make(server, b"a" * (MiB + 1))
    response = ask(server, "GET", f"/files/{name}", [("Accept-Encoding", "gzip")])
    assert "content-encoding" not in response.headers and len(response.body) == MiB + 1
    assert response.headers["vary"] == "Accept-Encoding"


def test_a_file_that_gzip_would_not_shrink_is_sent_as_it_is(server):
    payload = os.urandom(2000)
    name, _ = make(server, payload)
    response = ask(server, "GET", f"/files/{name}", [("Accept-Encoding", "gzip")])
    assert "content-encoding" not in response.headers and response.body == payload


# -- preconditions on uploads --------------------------------------------------------------

def upload(server, name, headers, body=b"new body"):
    with Client(server) as client:
        client.send(build_request("POST", f"/files/{name}", [("Content-Length", str(len(body))), *headers], body)
                    + build_request("GET", "/echo/next"))
        response = read_reply(client)
        assert read_reply(client).body == b"next"        # the refused body was read and dropped
        return response.status


@pytest.mark.parametrize("field, value, exists, status", [
    ("If-Match", "current", True, 201),
    ("If-Match", '"other"', True, 412),
    ("If-Match", "*", True, 201),
    ("If-Match", "*", False, 412),                  # nothing to match: not created
    ("If-Match", "W/current", True, 412),           # If-Match compares strongly
    ("If-None-Match", "*", True, 412),              # create only
    ("If-None-Match", "*", False, 201),
    ("If-None-Match", "current", True, 412),
    ("If-Unmodified-Since", EARLY, True, 412),
    ("If-Unmodified-Since", LATE, True, 201),
    ("If-Unmodified-Since", EARLY, False, 201),     # no file, no date: ignored
])
def test_preconditions_on_an_upload(server, field, value, exists, status):
    name = random_text() + ".txt"
    path = server.directory / name
    if exists:
        path.write_bytes(b"old body")
    value = value.replace("current", etag_of(path)) if exists else value
    assert upload(server, name, [(field, value)]) == status
    expected = b"new body" if status == 201 else (b"old body" if exists else None)
    assert (path.read_bytes() if path.exists() else None) == expected
