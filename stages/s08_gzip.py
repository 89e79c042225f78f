"""Stage 8: HTTP compression.

CodeCrafters: "Compression headers" (tester stage df4), "Multiple compression
     schemes" (ij8), "Gzip compression" (cr8): the HTTP compression extension.
Task:
  Sends:   GET /echo/{word} with `Accept-Encoding: gzip`
  Expects: `HTTP/1.1 200 OK` with `Content-Encoding: gzip`, `Content-Length`
           equal to the length of the body as sent, and a body that gunzips
           to {word} (cr8; df4 checks only the field).
  Sends:   the same with `Accept-Encoding: invalid-encoding`
  Expects: 200 and no Content-Encoding field.
  Sends:   `Accept-Encoding: encoding-1, gzip, encoding-2`, then `encoding-1, encoding-2`
  Expects: Content-Encoding gzip for the first, none for the second (ij8).
  Try:     python -m stages.s08_gzip --directory /tmp/
           curl -i -H 'Accept-Encoding: encoding-1, gzip' http://localhost:4221/echo/abc --output -
           curl -s -H 'Accept-Encoding: gzip' http://localhost:4221/echo/abc | gunzip
           curl -i -H 'Accept-Encoding: invalid-encoding' http://localhost:4221/echo/abc
New: reading Accept-Encoding as a list of codings with weights, and sending
     bodies gzip-compressed when the client accepts that.
Reused from: s07_post (everything else), s03_paths (`Server.respond_to`,
     the one place every routed response passes through).

Beyond the tester: weights (`gzip;q=0` refuses gzip, `*` stands for codings
not named, `x-gzip` is gzip), error bodies compressed too, and `Vary:
Accept-Encoding` on every response with a body, so that caches keep the two
versions apart.
"""
import gzip
import re

from stages import s07_post

# RFC 9110 section 12.4.2: a weight is 0 to 1 with at most three decimals.
QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")


def coding_weights(accept_encoding):
    """'gzip;q=0.5, br' -> {'gzip': 0.5, 'br': 1.0} (RFC 9110 section 12.5.3).

    core/encoding.py follows the same rules (tests/test_s08_gzip.py feeds both
    the same values): names are case-insensitive and "x-gzip" is "gzip"
    (RFC 9110 section 8.4.1.3); the first "q" parameter is the weight, and one
    that is not a qvalue counts as 0, as nginx reads it: better uncompressed
    than unreadable; a coding named twice keeps its first weight (nginx again).
    """
    weights = {}
    for element in accept_encoding.split(","):
        coding, *parameters = (part.strip() for part in element.split(";"))
        if not coding:
            continue  # empty list elements are allowed and mean nothing (RFC 9110 section 5.6.1)
        coding = coding.lower()
        weight = 1.0
        for name, _, value in (parameter.partition("=") for parameter in parameters):
            if name.strip().lower() == "q":
                weight = float(value) if QVALUE.fullmatch(value := value.strip()) else 0.0
                break
        weights.setdefault("gzip" if coding == "x-gzip" else coding, weight)
    return weights


def accepts_gzip(accept_encoding):
    # Without the header RFC 9110 would allow any coding, but a client that
    # says nothing may not be able to decompress: send it plain.
    if accept_encoding is None:
        return False
    weights = coding_weights(accept_encoding)
    # "*" covers every coding not named.  A weight of 0 means "not acceptable".
    return weights.get("gzip", weights.get("*", 0.0)) > 0


class Server(s07_post.Server):
    """Stage 8: gzip response bodies for clients that accept gzip."""

    def respond_to(self, request):
        response = super().respond_to(request)
        if response.body:
            # Caches must know the body depends on Accept-Encoding (RFC 9110 section 12.5.5).
            response.headers.append(("Vary", "Accept-Encoding"))
            if accepts_gzip(request.headers.get("accept-encoding")):
                response.headers.append(("Content-Encoding", "gzip"))
                # mtime=0: the same body always compresses to the same bytes.
                # Content-Length is counted later, on these compressed bytes (s04).
                response.body = gzip.compress(response.body, mtime=0)
        return response


if __name__ == "__main__":
    Server.main()
