"""The access log (--access-log): one line per response, in the Common Log Format.

    127.0.0.1 - - [26/Nov/2026:10:02:03 +0000] "GET /files/a.bin HTTP/1.1" 200 10240

Both event loops call AccessLog.write when a response is queued; with no
--access-log there is no AccessLog and nothing is done per request.
"""
import sys
import time

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
            line = (f"{request.method.decode('latin-1')} {request.target.decode('latin-1')} "
                    f"HTTP/{request.version.decode()}")
        self.stream.write(f'{peer} - - [{_now_clf()}] "{line}" {status} {length}\n')
        self.stream.flush()
