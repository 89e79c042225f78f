"""Pick the request parser: the compiled one unless told otherwise.

``CORE_PURE_PYTHON=1`` selects the pure-Python reference (as it does at build
time); ``CORE_REQUIRE_COMPILED=1`` makes a missing compiled build an error
instead of a silent fallback.  ``COMPILED`` says which one was picked.
"""
import os

from .errors import HTTPError, ParseError
from .events import END_OF_MESSAGE, NEED_DATA

PURE_PYTHON = os.environ.get("CORE_PURE_PYTHON") == "1"
REQUIRE_COMPILED = os.environ.get("CORE_REQUIRE_COMPILED") == "1"

if PURE_PYTHON and REQUIRE_COMPILED:
    raise ImportError("CORE_PURE_PYTHON=1 and CORE_REQUIRE_COMPILED=1 contradict each other")

if PURE_PYTHON:
    from ._parser_py import RequestParser
    from .events import Request
    COMPILED = False
else:
    try:
        from ._parser_c import Request, RequestParser
        COMPILED = True
    except ImportError:
        if REQUIRE_COMPILED:
            raise ImportError("core's compiled parser is missing (CORE_REQUIRE_COMPILED=1): "
                              "build it with `pip install -e .` and Cython installed") from None
        from ._parser_py import RequestParser
        from .events import Request
        COMPILED = False

__all__ = ["RequestParser", "Request", "ParseError", "HTTPError", "NEED_DATA",
           "END_OF_MESSAGE", "COMPILED"]
