"""One exception family for everything a peer can get wrong.

Each error carries the HTTP status to answer with (like h11's
``error_status_hint``); the connection layer turns it into a response and
closes the connection when the byte stream can no longer be trusted.
"""
import sys
from http import HTTPStatus

# RFC 9110 §15 names; older Pythons still say "Request Entity Too Large" etc.
REASONS = {s.value: s.phrase for s in HTTPStatus}
REASONS.update({413: "Content Too Large", 416: "Range Not Satisfiable", 422: "Unprocessable Content"})


def print_exception():
    """The exception being handled, with its traceback, on stderr: traceback.print_exc().

    Printed by the interpreter itself: a server process does not import the
    traceback module (with linecache and tokenize) for a path taken by a bug.
    """
    sys.__excepthook__(*sys.exc_info())


# How much of the peer's input an error message may quote.
ECHO_LIMIT = 100


def echo(data) -> str:
    """Quote at most ECHO_LIMIT bytes of peer input, safely printable."""
    data = bytes(data)
    text = repr(data[:ECHO_LIMIT])
    return text + ("..." if len(data) > ECHO_LIMIT else "")


class HTTPError(Exception):
    """A request we refuse, with the status to answer it with."""

    def __init__(self, status: int, message: str, close: bool = True, fields=()):
        super().__init__(message)
        self.status = status
        self.reason = REASONS[status]
        self.message = message
        # After most parse errors the framing of what follows is unknown, so
        # the connection must close once the error response is sent.
        self.close = close
        self.fields = fields        # extra response fields, e.g. Retry-After with a 503

    def __repr__(self):
        return f"HTTPError({self.status}, {self.message!r})"


class ParseError(HTTPError):
    """The request bytes break RFC 9112 (or one of our limits)."""
