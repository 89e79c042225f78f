"""What the parser hands back: a request head, body bytes, or one of two markers.

A parser's ``next_event()`` returns, for each message, one ``Request`` (the
head, core/request.py), then zero or more ``bytes`` (the decoded body, in
pieces as they arrive), then ``END_OF_MESSAGE``; ``NEED_DATA`` whenever it
must be fed more.  The markers are compared with ``is``, so this module is
never compiled: there is one of each, whichever parser is in use.
"""


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


NEED_DATA = _Marker("NEED_DATA")
END_OF_MESSAGE = _Marker("END_OF_MESSAGE")
