"""The request parser core uses: compiled unless CORE_PURE_PYTHON=1 (see implementation.py)."""
from importlib import import_module

from .errors import HTTPError, ParseError
from .events import END_OF_MESSAGE, NEED_DATA
from .implementation import check_current, load

_module, COMPILED = load("_parser_c", "_parser_py")
if COMPILED:
    # The compiled parser runs on these, cimported (_parser_c.pxd): each must be current too.
    for _part in ("_scan_c", "_framing_c", "request_c"):
        check_current(import_module(f"core.{_part}"))
RequestParser = _module.RequestParser
# The class of the heads it returns: core/request.py, compiled along with the parser.
Request = import_module("core.request_c" if COMPILED else "core.request").Request

__all__ = ["RequestParser", "Request", "ParseError", "HTTPError", "NEED_DATA",
           "END_OF_MESSAGE", "COMPILED"]
