"""Choose between a compiled module and its pure-Python reference.

``CORE_PURE_PYTHON=1`` selects the pure-Python path (as it does at build
time); ``CORE_REQUIRE_COMPILED=1`` turns a missing compiled build into an
error instead of a silent fallback.  A compiled module built from other
sources than the ones beside it (extensions.stale_reason) is reported once on
stderr and used as built; under ``CORE_REQUIRE_COMPILED=1`` it is an error.
"""
import importlib
import os
import sys

from . import extensions

PURE_PYTHON = os.environ.get("CORE_PURE_PYTHON") == "1"
REQUIRE_COMPILED = os.environ.get("CORE_REQUIRE_COMPILED") == "1"

if PURE_PYTHON and REQUIRE_COMPILED:
    raise ImportError("CORE_PURE_PYTHON=1 and CORE_REQUIRE_COMPILED=1 contradict each other")


class StaleBuildError(ImportError):
    """A compiled module does not match its sources, and CORE_REQUIRE_COMPILED=1."""


_stale = {}     # module name -> why it is stale (None: current), checked once per process


def load(compiled: str, pure: str):
    """Return (module, is_compiled) for core.<compiled> or core.<pure>."""
    if not PURE_PYTHON:
        try:
            module = importlib.import_module(f"core.{compiled}")
        except StaleBuildError:
            raise           # from a load() run while importing it: not a missing build
        except ImportError:
            if REQUIRE_COMPILED:
                raise ImportError(f"core.{compiled} is not built (CORE_REQUIRE_COMPILED=1): "
                                  "install with `pip install -e .` and Cython available") from None
        else:
            check_current(module)
            return module, True
    return importlib.import_module(f"core.{pure}"), False


def check_current(module):
    """Report a compiled module built from other sources: once on stderr, or StaleBuildError."""
    name = module.__name__
    first = name not in _stale
    if first:
        _stale[name] = extensions.stale_reason(module)
    reason = _stale[name]
    if reason is None:
        return
    if REQUIRE_COMPILED:
        raise StaleBuildError(f"{name} is stale (CORE_REQUIRE_COMPILED=1): {reason}; "
                              f"rebuild: {extensions.REBUILD}")
    if first:
        print(f"core: warning: {name} is stale: {reason}; it runs as built. "
              f"Rebuild: {extensions.REBUILD}", file=sys.stderr, flush=True)
