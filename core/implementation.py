"""Choose between a compiled module and its pure-Python reference.

``CORE_PURE_PYTHON=1`` selects the pure-Python path (as it does at build
time); ``CORE_REQUIRE_COMPILED=1`` turns a missing compiled build into an
error instead of a silent fallback.
"""
import importlib
import os

PURE_PYTHON = os.environ.get("CORE_PURE_PYTHON") == "1"
REQUIRE_COMPILED = os.environ.get("CORE_REQUIRE_COMPILED") == "1"

if PURE_PYTHON and REQUIRE_COMPILED:
    raise ImportError("CORE_PURE_PYTHON=1 and CORE_REQUIRE_COMPILED=1 contradict each other")


def load(compiled: str, pure: str):
    """Return (module, is_compiled) for core.<compiled> or core.<pure>."""
    if not PURE_PYTHON:
        try:
            return importlib.import_module(f"core.{compiled}"), True
        except ImportError:
            if REQUIRE_COMPILED:
                raise ImportError(f"core.{compiled} is not built (CORE_REQUIRE_COMPILED=1): "
                                  "install with `pip install -e .` and Cython available") from None
    return importlib.import_module(f"core.{pure}"), False
