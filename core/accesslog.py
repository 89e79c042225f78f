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

Log rotation (logrotate's convention): rename the file, send the server
SIGUSR1, and each worker opens a new file under the old name at its next
sweep; a line is one write(2) to a descriptor opened with O_APPEND, so no
line is split or lost whichever file it lands in.

Behind a proxy the peer is the proxy.  When the peer is trusted
(--forwarded-allow-ips, or a unix-socket peer, as gunicorn trusts one) the
client logged is taken from X-Forwarded-For: the right-most address that is
not itself a trusted proxy.  Each proxy appends the address it received the
connection from, so everything left of the last trusted hop was written by
the client and may be forged; the right-most untrusted entry is the first
one a trusted proxy vouches for (uvicorn chooses the same).
"""
import ipaddress
import os
import re
import sys
import time

UNIX_PEER = "unix:"             # what the I/O layer reports for a unix-socket peer, as nginx logs it

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
    def __init__(self, destination: str, trusted=()):
        """destination: "-" for standard error, else a file appended to.

        trusted: the ip_networks whose X-Forwarded-For is believed, None for
        every peer (--forwarded-allow-ips "*").
        """
        self.path = None if destination == "-" else destination
        self.fd = -1
        self.trusted = trusted
        self.trust_of = {UNIX_PEER: True}       # peer -> trusted, cached
        self.reopen_asked = False
        if self.path is not None:
            self.open()         # fail at start-up, not in a worker, when it cannot be opened...
            os.close(self.fd)   # ...but each worker writes through its own (server.py)
            self.fd = -1

    def open(self):
        """(Re)open the file: the new descriptor replaces the old between two lines."""
        if self.path is None:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        old, self.fd = self.fd, fd
        if old >= 0:
            os.close(old)

    def ask_reopen(self, *_):
        """The SIGUSR1 handler: only note it; the loop reopens at its next sweep."""
        self.reopen_asked = True

    def reopen_if_asked(self):
        if self.reopen_asked:
            self.reopen_asked = False
            self.open()

    def client(self, peer: str, request) -> str:
        """The address to log: the peer, or the client a trusted proxy names."""
        trusted = self.trust_of.get(peer)
        if trusted is None:
            if len(self.trust_of) > 4096:
                self.trust_of = {UNIX_PEER: True}
            trusted = self.trust_of[peer] = self.is_trusted(peer)
        if not trusted:
            return peer
        hops = [value for name, value in request.headers if name.lower() == b"x-forwarded-for"]
        if not hops:
            return peer
        client = peer
        for hop in reversed(b",".join(hops).split(b",")):
            try:
                address = ipaddress.ip_address(hop.strip().decode("ascii"))
            except (ValueError, UnicodeDecodeError):
                break               # not an address: nothing left of it can be believed
            if getattr(address, "scope_id", None) is not None:
                break               # fe80::1%<anything>: a zone names a link of the sender's, and is text
            address = str(address)
            client = address
            if not self.is_trusted(address):
                break
        return client

    def is_trusted(self, address: str) -> bool:
        if self.trusted is None or address == UNIX_PEER:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def write(self, peer: str, request, status: int, length: int) -> None:
        if request is None:         # the request could not be parsed
            line = "-"
        else:
            line = f"{escape(request.method)} {escape(request.target)} HTTP/{request.version.decode()}"
            peer = self.client(peer, request)
        text = f'{peer} - - [{_now_clf()}] "{line}" {status} {length}\n'
        if self.path is None:
            sys.stderr.write(text)
            sys.stderr.flush()
        else:
            os.write(self.fd, text.encode("ascii", "replace"))
