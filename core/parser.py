"""The request parser core uses: compiled unless CORE_PURE_PYTHON=1 (see implementation.py)."""
from .errors import HTTPError, ParseError
from .events import END_OF_MESSAGE, NEED_DATA
from .implementation import load

_module, COMPILED = load("_parser_c", "_parser_py")
RequestParser = _module.RequestParser
Request = getattr(_module, "Request", None)
if Request is None:
    from .events import Request

__all__ = ["RequestParser", "Request", "ParseError", "HTTPError", "NEED_DATA",
           "END_OF_MESSAGE", "COMPILED"]
