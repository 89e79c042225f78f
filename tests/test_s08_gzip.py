"""Stage 8: bodies are gzip-compressed exactly when Accept-Encoding accepts gzip."""
import gzip

import pytest

from core import encoding as core_encoding
from rawhttp import DELIVERIES, get, random_text
from servers import servers_from
from stages import s08_gzip

pytestmark = pytest.mark.servers(*servers_from("s08_gzip"))

# One rule for the stages and core (README, "One rule for Accept-Encoding"): the first
# mention of a coding counts, x-gzip is gzip, "*" stands for codings not named, and a
# weight that is not a qvalue (0 to 1, at most three decimals) counts as 0.
ACCEPTING_GZIP = [
    "gzip", "a, gzip, b", "GZIP", "deflate;q=1, gzip;q=0.5", "br;q=0, gzip;q=0.001",
    " gzip ; q=1.0 ", "*", "x-gzip", "X-GZIP", "gzip, *;q=0", "*;q=0.001", "gzip;q=1.",
    "gzip;q=0.5;q=0", "gzip;level=9", ", ,gzip",
]
NOT_ACCEPTING_GZIP = [
    None, "", "deflate", "invalid-encoding", "identity", "gzip;q=0", "GZIP;Q=0",
    "a, gzip;q=0, b", "gzip;q=0.000", "*;q=0", "gzip;q=0, *", "*, gzip;q=0",
    "gzip;q=2", "gzip;q=1.5", "gzip;q=1.0001", "gzip;q=-1", "gzip;q=.5", "gzip;q=abc", "gzip;q=",
    "gzip;q=0, gzip", "x-gzip;q=0, gzip", "gzip;q=0, x-gzip",
]


@pytest.mark.parametrize("delivery", DELIVERIES)
@pytest.mark.parametrize("accept_encoding", ACCEPTING_GZIP)
def test_gzip_accepted_gets_gzip_body(server, accept_encoding, delivery):
    text = random_text(40)
    response = get(server, f"/echo/{text}", [("Accept-Encoding", accept_encoding)], delivery)
    assert response.status == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["content-length"] == str(len(response.body))
    assert gzip.decompress(response.body) == text.encode()


@pytest.mark.parametrize("accept_encoding", NOT_ACCEPTING_GZIP)
def test_gzip_not_accepted_gets_plain_body(server, accept_encoding):
    text = random_text(40)
    headers = [] if accept_encoding is None else [("Accept-Encoding", accept_encoding)]
    response = get(server, f"/echo/{text}", headers)
    assert "content-encoding" not in response.headers
    assert response.body == text.encode()


@pytest.mark.parametrize("accept_encoding", ACCEPTING_GZIP + NOT_ACCEPTING_GZIP)
def test_core_and_stage_8_read_accept_encoding_alike(accept_encoding):
    expected = accept_encoding in ACCEPTING_GZIP
    assert s08_gzip.accepts_gzip(accept_encoding) is expected
    field = None if accept_encoding is None else accept_encoding.encode("latin-1")
    assert core_encoding.accepts_gzip(field) is expected


@pytest.mark.servers("s07_post")
def test_stage_7_does_not_compress(server):
    text = random_text()
    response = get(server, f"/echo/{text}", [("Accept-Encoding", "gzip")])
    assert "content-encoding" not in response.headers
    assert response.body == text.encode()
