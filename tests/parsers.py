"""The two parser implementations, for tests that must hold for both.

The compiled parser is expected unless CORE_PURE_PYTHON=1: a missing build
fails the `c` cases loudly instead of quietly testing Python twice.
"""
import os

import pytest

from core import _parser_py

COMPILED_EXPECTED = os.environ.get("CORE_PURE_PYTHON") != "1"


def compiled_parser_module():
    try:
        from core import _parser_c
    except ImportError as error:
        pytest.fail(f"the compiled parser is expected but missing ({error}); "
                    "run `pip install -e .` with Cython, or set CORE_PURE_PYTHON=1")
    return _parser_c


IMPLEMENTATIONS = ["py", "c"] if COMPILED_EXPECTED else ["py"]


def parser_class(name):
    return _parser_py.RequestParser if name == "py" else compiled_parser_module().RequestParser
