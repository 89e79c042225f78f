"""Build script: declares the Cython extensions of ``core``.

The metadata lives in pyproject.toml; this file only exists because extension
modules are declared in code.  ``CORE_PURE_PYTHON=1`` skips them (the
pure-Python path then serves everything), and so does a missing Cython.
"""
import os

from setuptools import setup

# Each compiled module of core: (extension name, Cython source).
EXTENSIONS = [
    ("core._parser_c", "core/_parser_c.pyx"),
    ("core._server_c", "core/_server_c.pyx"),
    ("core._io_c", "core/_io_c.pyx"),
    # One source: loop_py.py compiled under the name whose .pxd (loop_c.pxd) types it.
    ("core.loop_c", "core/loop_py.py"),
]


def ext_modules():
    if os.environ.get("CORE_PURE_PYTHON") == "1" or not EXTENSIONS:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if os.environ.get("CORE_REQUIRE_COMPILED") == "1":
            raise
        return []
    from setuptools import Extension

    return cythonize(
        [Extension(name, [src], extra_compile_args=["-O3"]) for name, src in EXTENSIONS],
        compiler_directives={"language_level": "3"},
    )


setup(ext_modules=ext_modules())
