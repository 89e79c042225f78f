"""The byte scanner under the request parser, in plain Python: twin of ``_scan_c.pyx``.

The request parser (``_parser_py.py``) says which line comes next and what
each one means; a scanner finds where a line ends, splits it into its parts
and checks its bytes against the classes ``_framing`` defines.  It reports
what it found -- positions, the parts as bytes, or a fault code of
``_framing`` with the bytes to quote -- and decides nothing.  Same interface
as the compiled scanner, which the compiled parser uses; bytes methods
(find, partition, translate) do the loops here.
"""
from ._framing import (BAD_FIELD_NAME, BAD_FIELD_VALUE, BAD_METHOD, BAD_REQUEST_LINE, BAD_TARGET, BARE_CR,
                       BARE_LF, FIELD_VALUE_BYTES, OBS_FOLD, TARGET_BYTES, TCHAR_BYTES, WHITESPACE)


class Scanner:
    def __init__(self):
        self._buf = bytearray()
        self.pos = 0            # the first byte not yet consumed
        self._scanned = 0       # bytes up to here were already searched for a line end
        # What the last split found, or what was wrong (fault, a code of _framing).
        self.method = self.target = self.version = self.name = self.value = None
        self.fault = 0
        self.fault_data = None

    # -- the buffer --------------------------------------------------------

    def feed(self, data):
        """Append bytes received from the peer."""
        self.append(data, len(data))

    def append(self, data, n):
        """Append the first n bytes of data."""
        pos = self.pos
        if pos and pos * 2 >= len(self._buf):
            # Drop what was consumed; amortised linear however data arrives.
            del self._buf[:pos]
            self._scanned -= pos
            self.pos = 0
        self._buf += data if n == len(data) else memoryview(data)[:n]

    def buffered(self):
        """How many bytes are buffered and not yet consumed."""
        return len(self._buf) - self.pos

    def unconsumed(self):
        return bytes(self._buf[self.pos:])

    def release(self):
        """Drop the buffer while nothing is buffered (an idle keep-alive connection)."""
        if self.pos == len(self._buf):
            self._buf = bytearray()
            self.pos = self._scanned = 0

    # -- lines ---------------------------------------------------------------

    def line_end(self, bare_check):
        """Where the CRLF of the line starting at pos is, moving pos past it; -1 if not buffered.

        Resumable: bytes already searched are not searched again.  With
        bare_check, an unfinished line holding a bare LF, or a CR not followed
        by LF, is reported in fault (BARE_LF, BARE_CR) as soon as it arrives.
        """
        buf = self._buf
        start = max(self.pos, self._scanned - 1)
        end = buf.find(b"\r\n", start)
        if end < 0:
            if bare_check:
                self._find_bare(start)
            self._scanned = len(buf)
            return -1
        self.pos = self._scanned = end + 2
        return end

    def _find_bare(self, start):
        """Note a bare LF or a CR not followed by LF from start on (no CRLF is there)."""
        buf = self._buf
        if buf.find(b"\n", start) >= 0:
            self._fail(BARE_LF, buf[self.pos:])
        elif buf.find(b"\r", start, len(buf) - 1) >= 0:
            self._fail(BARE_CR, buf[self.pos:])

    def unfinished_length(self):
        """How long the unfinished line at pos will be at least, once its CRLF arrives."""
        return len(self._buf) - self.pos - (self._buf[-1:] == b"\r")

    def bytes_at(self, start, end):
        """The buffered bytes [start, end), end cut to what is buffered."""
        return bytes(self._buf[start:end])

    def _fail(self, fault, data):
        self.fault = fault
        self.fault_data = bytes(data)
        return fault

    def split_request_line(self, start, end):
        """Split [start, end) into method, target and version; 0, or a fault code.

        RFC 9112 §3: method SP request-target SP HTTP-version, one space each.
        """
        line = bytes(self._buf[start:end])
        method, space1, rest = line.partition(b" ")
        target, space2, version = rest.rpartition(b" ")
        if not (space1 and space2):
            return self._fail(BAD_REQUEST_LINE, line)
        if not method or method.translate(None, TCHAR_BYTES):
            return self._fail(BAD_METHOD, method)
        if not target or target.translate(None, TARGET_BYTES):
            return self._fail(BAD_TARGET, target)
        self.method, self.target, self.version = method, target, version
        return 0

    def split_field_line(self, start, end):
        """Split [start, end) into name and value (without surrounding whitespace); 0, or a fault code."""
        line = bytes(self._buf[start:end])
        # RFC 9112 §5.2: a line starting with whitespace is obs-fold.
        if line[0] in WHITESPACE:
            return self._fail(OBS_FOLD, line)
        name, colon, value = line.partition(b":")
        # RFC 9112 §5.1: no whitespace between name and colon (not a tchar).
        if not colon or not name or name.translate(None, TCHAR_BYTES):
            return self._fail(BAD_FIELD_NAME, line)
        value = value.strip(WHITESPACE)
        if value.translate(None, FIELD_VALUE_BYTES):
            return self._fail(BAD_FIELD_VALUE, name)
        self.name, self.value = name, value
        return 0

    # -- bodies --------------------------------------------------------------

    def take(self, limit):
        """Consume and return up to limit buffered bytes; None if none is buffered."""
        available = len(self._buf) - self.pos
        if available == 0:
            return None
        n = min(available, limit)
        data = bytes(self._buf[self.pos:self.pos + n])
        self.pos += n
        return data

    def peek(self, n):
        """Up to n buffered bytes at pos, not consumed."""
        return bytes(self._buf[self.pos:self.pos + n])

    def skip(self, n):
        self.pos += n
