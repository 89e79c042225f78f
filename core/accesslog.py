"""The access log (--access-log): one line per response, in the Common Log Format.

    127.0.0.1 - - [26/Nov/2026:10:02:03 +0000] "GET /files/a.bin HTTP/1.1" 200 10240

Both event loops call AccessLog.write when a response is queued; with no
--access-log there is no AccessLog and nothing is done per request.

What comes from the client (the method and the target; the version is one
of b"1.0" and b"1.1" once parsed) is escaped as nginx
escapes its log variables: `"` as \\x22, `\\` as \\x5C and every byte below
0x20 or from 0x7F up as \\xHH.  The target may hold `"` and `\\` (RFC 9112
§3.2), and written raw a `"` would end the quoted request line early and let
the client write fields of its own; escaped, every line has exactly two `"`
and each byte of it is printable ASCII.
"""
import re
import sys
import time

_UNSAFE = re.compile(rb'[\x00-\x1f"\\\x7f-\xff]')


def _hex(match) -> bytes:
    return b"\\x%02X" % match.group()[0]


def escape(data: bytes) -> str:
    """data as nginx writes a logged value: `"`, `\\`, controls and non-ASCII bytes as \\xHH."""
    return _UNSAFE.sub(_hex, data).decode("ascii")


_second = -1
_stamp = ""


def _now_clf() -> str:
    """The current time as CLF writes it, formatted once a second."""
    global _second, _stamp
    now = int(time.time())
    if now != _second:
        _second = now
        _stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
    return _stamp


class AccessLog:
    def __init__(self, destination: str):
        """destination: "-" for standard error, else a file appended to."""
        if destination == "-":
            self.stream = sys.stderr
        else:
            self.stream = open(destination, "a", buffering=1, encoding="utf-8", errors="replace")

    def write(self, peer: str, request, status: int, length: int) -> None:
        if request is None:         # the request could not be parsed
            line = "-"
        else:
            line = f"{escape(request.method)} {escape(request.target)} HTTP/{request.version.decode()}"
        self.stream.write(f'{peer} - - [{_now_clf()}] "{line}" {status} {length}\n')
        self.stream.flush()
